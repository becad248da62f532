"""Closing: how a connection ends (goodbye, grace, abort), and Refusal.

The user leaves the chat when the server says goodbye, not when the peer
agrees, and a connection that does not close within the grace (a TLS peer
that never finishes its handshake, a peer that stopped reading) is aborted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.net.phase import Phase

if TYPE_CHECKING:
    from chatd.net.connection import Connection

_CLOSING = Phase.CLOSING


class Closing:
    """One connection's end: its goodbye, the grace it is given, its abort.

    The connection is the delegate, given on every call (no reference is
    kept): it spells the goodbye (goodbye), hangs up in its door's way
    (hang_up) and takes its user out of the chat.
    """

    __slots__ = ("bye_reason", "abort_call")

    def __init__(self) -> None:
        self.bye_reason: str | None = None  # why the server closed, if it did
        self.abort_call: IDelayedCall | None = None  # the close's deadline

    def close(self, conn: Connection, reason: str, leave: bool) -> None:
        """Say goodbye with reason and close once it is written (Connection.close)."""
        if conn.phase is _CLOSING:
            return
        answers = conn.answers
        wait = answers.bye_after = answers.bye_after and conn.awaiting_answers()
        if not wait:
            answers.drop(conn)  # the goodbye cannot wait for an answer
        conn.send(conn.goodbye(reason))  # behind the answers it waits for, if any
        conn.flush()  # everything up to the goodbye, before the connection closes
        conn.phase = _CLOSING
        self.bye_reason = reason
        conn.stop_limits(keep_answers=wait)
        if leave:
            conn.leave(reason)
        if wait:
            answers.wait_for_deadline(conn)
            return
        self.hang_up_within_grace(conn)

    def hang_up_within_grace(self, conn: Connection) -> None:
        """Close once what was written is sent; abort a peer that holds it open.

        A peer that does not let the connection close within the grace (a
        TLS handshake never finished, a full send buffer) is aborted then.
        """
        # A registered producer would hold the connection open: let it go first.
        conn.transport.unregisterProducer()
        conn.hang_up()
        self.abort_call = conn.hub.clock.callLater(
            conn.config.shutdown_grace, self._abort_late, conn
        )

    def _abort_late(self, conn: Connection) -> None:
        self.abort_call = None
        conn.hub.stats.limit_hit(conn.door, "close-timeout")
        conn.log.warn(
            "{peer} did not close within {grace:g}s; aborted",
            peer=conn.peer,
            grace=conn.config.shutdown_grace,
        )
        conn.transport.abortConnection()

    def abort(self, conn: Connection, bye_reason: str | None) -> None:
        """Drop the connection now: no goodbye, nothing more written or handled.

        bye_reason is what the others hear in QUIT; None leaves it to
        connectionLost, which says "connection lost" for an abort.
        """
        if conn.phase is not _CLOSING:
            conn.phase = _CLOSING
            self.bye_reason = bye_reason
            conn.stop_limits()
            if bye_reason is not None:
                conn.leave(bye_reason)
        conn._out = conn._journal = None
        conn.transport.abortConnection()  # a goodbye would only join the unread

    def after_input(self, conn: Connection) -> None:
        """Close as a client that closes: once written, or aborted after the grace."""
        if conn.phase is _CLOSING or self.abort_call is not None:
            return
        conn.answers.cancel_deadline()
        conn.framer.partial = b""  # a last line without its LF is not a line
        # The send queue stops, so that what is still written goes through
        # the transport, which drops it once closed (a cluster node may run
        # held lines after that).
        conn.sendq.stopProducing()
        self.hang_up_within_grace(conn)

    def cancel(self) -> None:
        """There is no close left to enforce: the transport is gone."""
        if self.abort_call is not None and self.abort_call.active():
            self.abort_call.cancel()
        self.abort_call = None


class Refusal(Protocol):
    """Answers a connection the server cannot take, closes, and aborts if need be."""

    log = Logger()

    def __init__(self, answer: bytes, clock: IReactorTime, grace: float) -> None:
        self.answer = answer
        self.clock = clock
        self.grace = grace
        self._abort_call: IDelayedCall | None = None

    def connectionMade(self) -> None:
        transport = self.transport
        if transport is None:  # cannot happen: makeConnection set it
            return
        transport.write(self.answer)
        transport.loseConnection()
        # A TLS peer that never finishes its handshake would keep this open.
        self._abort_call = self.clock.callLater(self.grace, self._abort)

    def _abort(self) -> None:
        self._abort_call = None
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
