"""The account's read markers, as the desktop client keeps and moves them.

docs/protocol.md, Read markers and catch-up: READ <target> <id> says how far the
account has read a room or private conversation, on any device. The client
counts as unread the messages after the marker (its own left out), shows where
they begin, and moves the marker (/read) when a conversation is actually seen:
on screen while the window has the focus, the user identified. No tkinter here:
the view says when the focus comes and goes (focus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall

from chatd.client.conversation import Conversation, EntryKind
from chatd.model.names import fold

if TYPE_CHECKING:
    from chatd.client.conversations import ChatState

# Seconds a conversation is on screen before its marker moves: one /read for a
# burst of messages, not one each.
READ_AFTER = 1.0
COUNTED = (EntryKind.MESSAGE, EntryKind.ACTION)


def unread_after(conversation: Conversation) -> tuple[int, int | None]:
    """How many messages of others come after the marker, and the first one's id."""
    count, first = 0, None
    for entry in conversation.scrollback:
        if (
            entry.id is not None
            and entry.id > conversation.read_id
            and entry.kind in COUNTED
            and entry.nick is not None
            and not entry.own
        ):
            count += 1
            first = entry.id if first is None else first
    return count, first


def newest_id(conversation: Conversation) -> int | None:
    """The id of the newest message in conversation's scrollback, if any has one."""
    for entry in reversed(conversation.scrollback):
        if entry.id is not None:
            return entry.id
    return None


class ReadMarkers:
    """The markers the server sent, and /read when the shown conversation is seen."""

    def __init__(self, state: ChatState) -> None:
        self.state = state
        self.focused = True  # the window has the keyboard focus (the view says)
        self.identified = False  # ACCOUNT for us: the server keeps our markers
        self._call: IDelayedCall | None = None
        # Every marker heard, by folded target: a conversation opened later
        # (a room joined again after the catch-up) starts from it (opened).
        self.known: dict[str, int] = {}

    def opened(self, conversation: Conversation) -> None:
        """A conversation was opened: it starts from the marker heard for it."""
        conversation.read_id = self.known.get(conversation.key, 0)

    def on_read(self, target: str, id_text: str) -> None:
        """READ <target> <id>: the account has read target up to id."""
        if not (id_text.isascii() and id_text.isdecimal()) or len(id_text) > 19:
            return
        msg_id = int(id_text)
        key = fold(target)
        self.known[key] = max(self.known.get(key, 0), msg_id)
        conversation = self.state.conversations.get(key)
        if conversation is None or msg_id <= conversation.read_id:
            return
        conversation.read_id = msg_id
        conversation.sent_read = max(conversation.sent_read, msg_id)
        self.recount(conversation)

    def recount(self, conversation: Conversation) -> None:
        """Unread and where it begins, from the marker (none if read here now)."""
        if not conversation.read_id:
            return
        count, first = unread_after(conversation)
        if self._seen_now(conversation):
            count, first = 0, None
            self.seen()
        conversation.unread = count
        conversation.new_from = first
        self.state.view.changed(conversation)

    def focus(self, focused: bool) -> None:
        """The window got (True) or lost the keyboard focus."""
        self.focused = focused
        if focused:
            self.seen()

    def seen(self) -> None:
        """The shown conversation may be seen now: /read its newest message soon."""
        if self._call is not None and self._call.active():
            return
        self._call = self.state.clock.callLater(READ_AFTER, self._mark)

    def stop(self) -> None:
        """The connection is gone: nothing to send."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.identified = False

    def _seen_now(self, conversation: Conversation) -> bool:
        return self.focused and conversation.key == self.state.current

    def _mark(self) -> None:
        self._call = None
        conversation = self.state.shown()
        if not (self.identified and self.focused):
            return
        newest = newest_id(conversation)
        done = max(conversation.read_id, conversation.sent_read)
        if newest is None or newest <= done:
            return
        conversation.sent_read = newest
        self.state.send(f"/read {conversation.name} {newest}")
