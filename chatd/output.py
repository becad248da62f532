"""Output coalescing: each recipient gets one write per round, not one per line."""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Flushable(Protocol):
    """A connection whose collected output can be written out."""

    def flush(self) -> None:
        """Write everything collected so far."""


SMALL_FLUSH = 16  # this many recipients or fewer: written at once, not on a timer


class OutputBatch:
    """Collects what connections write, so each recipient gets one write per round.

    A line from one client can reach a thousand others, and a packet can hold
    many lines; one new user's JOIN reaches everyone in #lobby. Writing each
    line to each socket as it is made costs a transport.write, a send() and two
    epoll changes per line and recipient. Instead each connection appends to
    its own list, and a flush writes each list with one transport.write.

    With delay None, the lists are written when the outermost batch ends (a
    batch is one client's received bytes); writes outside a batch go straight
    out. This is deterministic, and what the unit tests use.

    With a delay (twistd uses 0), the client whose input was handled gets its
    own output at once (its echo, its replies); so do everyone else's when
    they are SMALL_FLUSH or fewer (a chat in a small room); larger broadcasts
    are written by a timer: at the next reactor turn, but never sooner
    after the previous flush ended than that flush took. Under light load flushes take
    microseconds and lines go out on the next turn; in a storm (hundreds of
    registrations, each a JOIN to everyone in #lobby) flushes take longer and
    so carry more lines each, and at most about half of the time goes to them.
    Each connection's lines keep their order in both modes.
    """

    def __init__(self, clock: IReactorTime, delay: float | None = None) -> None:
        self.clock = clock
        self.delay = delay
        self.depth = 0  # > 0 while a batch is open
        self.collecting = delay is not None  # writes go to the lists, not out
        self.pending: list[Flushable] = []  # connections with collected output
        self._flush_call: IDelayedCall | None = None
        self._quiet_until = 0.0  # no timed flush before this (see above)

    def begin(self) -> None:
        """Open a batch (batches nest; the outermost end flushes)."""
        self.depth += 1
        self.collecting = True

    def end(self, origin: Flushable) -> None:
        """Close a batch opened for origin's input."""
        self.depth -= 1
        if self.depth:
            return
        if self.delay is None:
            self.collecting = False
            self.flush_all()
            return
        origin.flush()  # the sender's echo and replies need not wait
        if len(self.pending) <= SMALL_FLUSH:
            self.flush_all()  # a few recipients: waiting would save little
        else:
            self._schedule()

    def add(self, connection: Flushable) -> None:
        """Note that connection has collected output (its list was empty)."""
        self.pending.append(connection)
        if not self.depth:  # within a batch, end() decides
            self._schedule()

    def _schedule(self) -> None:
        if self.delay is not None and self._flush_call is None and self.pending:
            wait = max(self.delay, self._quiet_until - self.clock.seconds())
            self._flush_call = self.clock.callLater(wait, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_call = None
        started = self.clock.seconds()
        self.flush_all()
        finished = self.clock.seconds()
        self._quiet_until = finished + (finished - started)

    def flush_all(self) -> None:
        """Write every connection's collected output."""
        pending, self.pending = self.pending, []
        for connection in pending:
            connection.flush()
