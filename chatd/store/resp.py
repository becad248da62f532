"""A Redis link that parses whole replies at once, with no Nagle delay.

Used by the cluster's log (chatd.cluster.redis) and by RedisHistory.

txredisapi's reader (LineReceiver) parses a reply line by line, and after
each bulk string that is followed by more data it pauses the transport and
goes on at the next reactor turn (setLineMode's callLater(0)). An XREAD
reply holds three bulk strings per entry (its id, the field, the JSON), so a
reply of n entries took about 3n reactor turns, each a pause and a resume of
the socket (two epoll changes), and the buffer was copied at every line:
most of a node's Redis cost, and the log's entries reached the members a
turn per string later.

LogLink reads RESP2 (the only protocol the cluster speaks: no HELLO 3) in
one pass over what arrived: every complete reply is handed on as
txredisapi's parser would have built it (bulk strings decoded with the
link's charset, or bytes when they are not text; integers as int; errors as
ResponseError; nil as None); an incomplete one waits for more bytes. With
convertNumbers off only (what the cluster asks for), and without
MULTI/EXEC (which neither uses).

It builds commands with fewer steps per argument than txredisapi's
_build_command (the same bytes), and turns Nagle's algorithm off
(TCP_NODELAY) as it connects: small commands go out at once, never waiting
for the ACK of the one before (up to 40 ms with delayed ACKs).
"""

from __future__ import annotations

from typing import Any

from txredisapi import RedisProtocol, ResponseError

CRLF = b"\r\n"


class Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def parse(buf: bytes, pos: int, charset: str | None) -> tuple[Any, int]:
    """The reply starting at buf[pos], and where the next one starts."""
    end = buf.find(CRLF, pos)
    if end < 0:
        raise Incomplete
    kind = buf[pos]
    if kind == 36:  # $: a bulk string
        size = int(buf[pos + 1 : end])
        if size < 0:
            return None, end + 2
        start = end + 2
        stop = start + size
        if stop + 2 > len(buf):
            raise Incomplete
        data = buf[start:stop]
        if charset is not None:
            try:
                return data.decode(charset), stop + 2
            except UnicodeDecodeError:
                pass
        return data, stop + 2
    if kind == 42:  # *: an array
        count = int(buf[pos + 1 : end])
        if count < 0:
            return None, end + 2
        items = []
        pos = end + 2
        for _ in range(count):
            item, pos = parse(buf, pos, charset)
            items.append(item)
        return items, pos
    if kind == 58:  # :: an integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # +: a status
        return buf[pos + 1 : end].decode(charset or "utf-8", "replace"), end + 2
    if kind == 45:  # -: an error, its text whole (as txredisapi keeps it)
        text = buf[pos + 1 : end].decode(charset or "utf-8", "replace")
        return ResponseError(text), end + 2
    raise ValueError(f"not a RESP2 reply: {buf[pos : pos + 20]!r}")


class LogLink(RedisProtocol):
    """txredisapi's RedisProtocol with a reader that takes whole replies at once."""

    _unparsed = b""

    def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
        """The command's RESP bytes, as txredisapi's, with fewer steps per argument."""
        charset, errors = self.charset, self.errors
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is str and charset is not None:
                try:
                    data = arg.encode(charset, errors)
                except UnicodeEncodeError:
                    data = self._encode_value(arg)  # raises as txredisapi does
            elif kind is bytes:
                data = arg
            elif kind is int:
                data = b"%d" % arg
            else:
                data = self._encode_value(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    def connectionMade(self) -> Any:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        return super().connectionMade()

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        buf = self._unparsed + data if self._unparsed else data
        pos = 0
        size = len(buf)
        charset = self.charset
        while pos < size:
            try:
                reply, pos_after = parse(buf, pos, charset)
            except Incomplete:
                break
            pos = pos_after
            self.replyReceived(reply)
        self._unparsed = buf[pos:] if pos < size else b""
