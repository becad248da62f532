"""A Redis link that reads whole replies through hiredis, with no Nagle delay.

Used by the cluster's log (chatd.cluster.redis) and by RedisHistory.

txredisapi's pure-Python reader (a LineReceiver) parses a reply line by
line, and after each bulk string followed by more data it pauses the
transport and goes on at the next reactor turn (setLineMode's callLater(0)).
An XREAD reply holds three bulk strings per entry (its id, the field, the
JSON), so a reply of n entries took about 3n reactor turns, each a pause and
a resume of the socket: most of a node's Redis cost, and the log's entries
reached the members a turn per string later.

txredisapi ships the fix itself: HiredisProtocol, which hands what arrives
to hiredis's reader (the C parser of Redis's own client library, the
`hiredis` package) and takes every complete reply out in one pass. LogLink
is that protocol, plus:

- commands packed by hiredis too (`hiredis.pack_command`, the same bytes as
  txredisapi's `_build_command`, which costs several times more per XADD);
- Nagle's algorithm off (TCP_NODELAY) as it connects: small commands go out
  at once, never waiting for the ACK of the one before (up to 40 ms with
  delayed ACKs);
- with convertNumbers off (every chatd link), text decoded by hiredis as it
  parses, rather than by txredisapi's tryConvertData walking each reply
  again in Python (an XREAD reply: every id, field and value).
"""

from __future__ import annotations

from typing import Any

import hiredis
from txredisapi import HiredisProtocol, InvalidData, ResponseError


class LogLink(HiredisProtocol):
    """txredisapi's hiredis protocol, its commands packed by hiredis, TCP_NODELAY."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.convertNumbers and self.charset is not None:
            self._reader = hiredis.Reader(
                protocolError=InvalidData,
                replyError=ResponseError,
                encoding=self.charset,
                errors="replace",
            )
            self._decoded = True
        else:
            self._decoded = False

    def tryConvertData(self, data: Any) -> Any:
        if self._decoded:
            return data  # hiredis gave text already, and numbers stay text
        return super().tryConvertData(data)

    def connectionMade(self) -> Any:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        return super().connectionMade()

    def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
        try:
            return bytes(hiredis.pack_command(args))
        except TypeError:  # a value hiredis does not pack (None, a bool...)
            return bytes(super()._build_command(*args, **kwargs))
