"""The line extensions a connection turned on (/ids on, /tags on): which
renderer, and which shared journal, its events go through.

Both doors that carry the line protocol (chatd.protocol.LineConnection and
chatd.web.door.WebConnection) list ShowsExtensions with SpeaksLine; each
gives its table of renderers (one per set of extensions, shared by every
connection with that set: a broadcast is spelled once for them all), its
plain renderer and how its lines are framed (as they are on TCP; a text
frame each on a WebSocket).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, cast

from chatd.line.wire import IDS, TAGS, private_id, tag_lines
from chatd.model.events import Event, Private

if TYPE_CHECKING:
    from chatd.model.state import User

Renderer = Callable[[Event], bytes]


class ShowsExtensions:
    """show_ids and show_tags for a connection speaking the line protocol."""

    # No __slots__ here: the doors name extensions and _shared_render in theirs.
    # By set of extensions (IDS | TAGS): the shared renderer, and the suffix of
    # the journal its connections share ("" none: the door's own).
    renderers: ClassVar[Mapping[int, tuple[Renderer, str]]]
    extensions: int
    _shared_render: Renderer
    if TYPE_CHECKING:  # the connection's own (chatd.net.connection)
        door: ClassVar[str]
        user: User | None

        def use_renderer(
            self, render: Renderer, journal_key: str | None = None
        ) -> None: ...

    def plain_lines(self, event: Event) -> bytes:
        """The door's bytes for an event without any extension."""
        raise NotImplementedError

    def framed_lines(self, data: bytes) -> bytes:
        """Lines as this door writes them (on TCP: as they are)."""
        return data

    def show_ids(self, on: bool) -> None:
        """Room messages led by their ID line (/ids on), or not."""
        self._extend(IDS, on)

    def show_tags(self, on: bool) -> None:
        """Show typing, reactions and replies (/tags on), or not."""
        self._extend(TAGS, on)

    def _extend(self, extension: int, on: bool) -> None:
        """Turn a line extension on or off: the renderer and journal of the rest."""
        self.extensions = (
            self.extensions | extension if on else self.extensions & ~extension
        )
        renderer, suffix = self.renderers[self.extensions]
        if self.extensions & IDS:  # a kept private message's ID is this one's
            self._shared_render = renderer
            renderer = self._render_ids
        self.use_renderer(renderer, self.door + suffix if suffix else None)

    def _render_ids(self, event: Event) -> bytes:
        """The shared renderer of this connection's extensions, and a kept
        private message led by its ID line (after /tags on's REPLY, if any).

        The private ID names the other side as this connection sees it
        (docs/protocol.md, Devices), so it is spelled for each connection.
        """
        if event.__class__ is Private:
            user = self.user
            seen = private_id(cast(Private, event), user.nick if user else "")
            tags = tag_lines(event) if self.extensions & TAGS else b""
            return self.framed_lines(tags + seen) + self.plain_lines(event)
        return self._shared_render(event)
