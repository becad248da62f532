"""The WebSocket frames chatd writes itself, and a bound on a message arriving.

Twisted's WebSocket (wsproto under it) does the handshake, reads frames and
answers pings and closes. What the server sends most, a line to a thousand
members, it frames here instead: a server's frame is never masked and chatd
negotiates no extension, so a line's frame is the same bytes for every
recipient and is built once per broadcast (see door.web_render), where
wsproto would encode the text again for each member.
"""

from __future__ import annotations

from collections.abc import Callable

CRLF = b"\r\n"
TEXT = 0x81  # FIN + opcode 1 (text): one whole message per frame
PING_FRAME = b"\x89\x00"  # FIN + opcode 9 (ping), no payload

# RFC 6455 7.4.1 close codes chatd uses.
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009  # "a message that is too big for it to process"
CLOSE_TRY_LATER = 1013  # IANA registry: Try Again Later (server full)


def text_frame(payload: bytes) -> bytes:
    """Return one unmasked, unfragmented text frame carrying payload (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((TEXT, size)) + payload
    if size < 65536:
        return bytes((TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((TEXT, 127)) + size.to_bytes(8, "big") + payload


def frame_lines(data: bytes) -> bytes:
    """Turn wire lines (each ending in CRLF) into one text frame per line.

    The frame carries the line without its CRLF: a message is a line.
    """
    if not data:
        return b""
    if data.endswith(CRLF):
        data = data[:-2]
    if CRLF not in data:
        return text_frame(data)
    return b"".join(text_frame(part) for part in data.split(CRLF))


# What frames cost in lines of the flood gate (chatd.net.limits), before Twisted
# reads them: a frame that makes a line is paid for by its line; a ping or a
# pong is answered or read like a line; a piece of a message that is not its
# last (a fragment, an empty one too) costs a fraction of one.
CONTROL_COST = 1.0
FRAGMENT_COST = 1 / 16
MAX_FRAGMENTS = 64  # frames one data message may come in; browsers send one
# What feed() says instead of a count of bytes.
TOO_BIG = -1  # a message passed the limit
TOO_MANY = -2  # a message came in more than MAX_FRAGMENTS frames


class MessageGuard:
    """Reads the frame headers of what a client sends, before Twisted reads the frames.

    Twisted collects a message's frames until the last one before it hands
    the message over, however long it is, and answers every ping. This reads
    just the frame headers of what arrives (2 to 14 bytes each, RFC 6455
    5.2), so that

    - a message longer than `limit` is refused before it is held (TOO_BIG);
      control frames (ping, pong, close: at most 125 bytes) are not counted;
    - a message in more than MAX_FRAGMENTS frames is refused (TOO_MANY);
    - frames that make no line are paid for before they are read: feed()
      asks `afford` for each (CONTROL_COST, FRAGMENT_COST) and stops at the
      first it cannot pay, saying how many bytes may be read now.
    """

    __slots__ = ("limit", "message", "fragments", "_skip", "_head")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.message = 0  # bytes of the data message so far
        self.fragments = 0  # frames of the data message so far
        self._skip = 0  # payload bytes of the current frame still to come
        self._head = b""  # the start of a header split between reads

    def feed(self, data: bytes, afford: Callable[[float], bool] | None = None) -> int:
        """Account for received bytes; return how many of them may be read now.

        len(data) when all may; fewer when afford refused a frame (the rest,
        from that frame's header on, is to be fed again later); TOO_BIG or
        TOO_MANY once a message breaks a limit.
        """
        at, size = 0, len(data)
        while at < size:
            if self._skip:
                step = min(self._skip, size - at)
                self._skip -= step
                at += step
                continue
            kept = len(self._head)
            head = (
                self._head + data[at : at + 14 - kept] if kept else data[at : at + 14]
            )
            if len(head) < 2:
                self._head, at = head, size
                continue
            length = head[1] & 0x7F
            need = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            need += 4 if head[1] & 0x80 else 0  # the mask key
            if len(head) < need:
                self._head, at = head, size
                continue
            first = head[0]
            if afford is not None and (first & 0x08 or not first & 0x80):
                cost = CONTROL_COST if first & 0x08 else FRAGMENT_COST
                # (A header begun in an earlier read goes through unpaid.)
                if not afford(cost) and not kept:
                    return at
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            self._head = b""
            at += need - kept
            self._skip = length
            if first & 0x08:  # a control frame
                continue
            self.message += length
            if self.message > self.limit:
                return TOO_BIG
            self.fragments += 1
            if first & 0x80:  # FIN: the message is whole
                self.message = self.fragments = 0
            elif self.fragments >= MAX_FRAGMENTS:
                return TOO_MANY
        return size
