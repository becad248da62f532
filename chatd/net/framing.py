"""LineFramer: a connection's input split into lines, over-long ones refused whole.

Lines end in LF, with an optional CR before it dropped (docs/protocol.md). Every
line costs a flood token (an empty or over-long one too); when none is left
the rest of the input goes to the flood gate, unframed. A line over
--max-line is refused whole with one ERR too-long and the connection stays
open; its tail is skipped without being kept.

The framing is written here rather than taken from LineReceiver: that
re-splits its whole buffer for every line (a packet of 30,000 empty lines
copies megabytes), drops the connection on an over-long line, and when
paused keeps everything it is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatd.model.errors import ChatError, ErrorCode
from chatd.net.phase import Phase

if TYPE_CHECKING:
    from chatd.net.connection import Connection

_CLOSING = Phase.CLOSING
_REGISTERED = Phase.REGISTERED
_AWAITING_NICK = Phase.AWAITING_NICK
CR = 13  # a CR before the LF is dropped (docs/protocol.md)


def decode_line(raw: bytes) -> str:
    """Return a framed line's text; a line that is not UTF-8 is refused."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ChatError(
            ErrorCode.BAD_ENCODING, "that line was not valid UTF-8; dropped"
        ) from None


class LineFramer:
    """Splits one connection's input into lines and hands each to it.

    The connection is the delegate, given on every call (a part keeps no
    reference to it, so a closed connection is freed at once, without the
    cycle collector): it says its phase and flood gate, handles each line
    (handle_line) and replies to a refused one.
    """

    __slots__ = ("partial", "discarding", "refusing")

    def __init__(self) -> None:
        self.partial = b""  # the start of a line whose LF has not come yet
        self.discarding = False  # skipping the rest of an over-long line
        self.refusing = False  # an episode of over-long lines, logged once

    def frame(self, conn: Connection, data: bytes) -> None:
        """Split data into lines and handle each, as far as the budget allows.

        Every line costs a token, an empty or over-long one too; when none
        is left the rest of data is handed to the flood gate to hold.
        """
        if self.partial:
            data, self.partial = self.partial + data, b""
        max_line = conn.config.max_line + conn.tag_room  # (the door checks tags)
        limit = max_line + 1  # the line's text, and a CR that may end it
        gate = conn.gate
        size = len(data)
        at = 0
        while at < size:
            if self.discarding:  # the tail of a refused line: nothing is kept
                end = data.find(b"\n", at)
                if end < 0:
                    return
                self.discarding = False
                at = end + 1
                continue
            end = data.find(b"\n", at)
            if end < 0:
                if size - at > limit:  # over-long already: refuse, skip the rest
                    if gate is not None and not gate.take():
                        gate.hold(data[at:])
                        return
                    self.discarding = True
                    self.refuse_too_long(conn)
                else:
                    self.partial = data[at:]
                return
            if (
                gate is not None
                and not (
                    conn.phase is _AWAITING_NICK
                    and gate.registration_lines > 0
                    and conn.is_registration_line(data[at:end])
                    and gate.take_registration()
                )
                and not gate.take()
            ):
                gate.hold(data[at:])
                return
            stop = end - 1 if end > at and data[end - 1] == CR else end
            if stop - at > max_line:
                self.refuse_too_long(conn)
            else:
                self.refusing = False
                if conn.phase is _REGISTERED:
                    conn.resetTimeout()  # idle means silent; the nick deadline stays
                conn.counts.lines += 1
                conn.handle_line(data[at:stop])
            at = end + 1
            if conn.phase is _CLOSING:
                return

    def refuse_too_long(self, conn: Connection) -> None:
        """Refuse an over-long line whole; log the first of an episode."""
        # docs/protocol.md, Limits: refused whole, the connection stays open.
        conn.hub.stats.limit_hit(conn.door, "too-long")
        max_line = conn.config.max_line
        if not self.refusing:
            self.refusing = True
            conn.log.warn(
                "{peer} sent a line over {limit} bytes; refused "
                "(more in a row are not logged)",
                peer=conn.peer,
                limit=max_line,
            )
        conn.reply_error(
            ChatError(
                ErrorCode.TOO_LONG,
                f"lines are limited to {max_line} bytes; that one was dropped",
            )
        )
