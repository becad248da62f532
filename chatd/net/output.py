"""Output coalescing: each recipient gets one write per round, not one per line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Flushable(Protocol):
    """A connection whose collected output can be written out."""

    def flush(self) -> None:
        """Write everything collected so far."""


SMALL_FLUSH = 16  # this many recipients or fewer: written at once, not on a timer
# After a timed flush that took t seconds, the next waits at least this many
# times t: in a storm at most a third of the time goes to writing, and each
# write carries more lines.
FLUSH_SPACING = 2.0

Spoken = TypeVar("Spoken")


def once_per_broadcast(spell: Callable[[Spoken], bytes]) -> Callable[[Spoken], bytes]:
    """Make a renderer that spells each broadcast once however many receive it.

    The chat hands one event object to every recipient in turn, so remembering
    the last event by identity is enough: the second to the thousandth member
    cost a pointer comparison, not a hash of the event's fields (an lru_cache
    hit costs about four times as much, per recipient). spell is called once
    per event, for its first recipient.
    """
    last: Spoken | None = None
    data = b""

    def render(event: Spoken) -> bytes:
        """Return spell(event), spelled once per broadcast."""
        nonlocal last, data
        if event is not last:
            data = spell(event)
            last = event
        return data

    return render


class Journal:
    """Broadcast lines, each kept once, in the order they were first delivered.

    A broadcast hands the same bytes to every member, one after the other, so
    a member's pending output is nearly always a run of consecutive lines
    here. The connection keeps that run as (journal, start, end) rather than
    a list of its own, and a flush joins each distinct run once: a thousand
    members waiting for the same lines send one shared bytes object.

    Lines are only ever appended, so a run stays valid however the journal
    grows. A member extends its run only while the run ends at the last line
    or just before it (see Connection.deliver); a line out of turn moves its
    output to a list of its own. Each flush round starts a new journal; the
    old one lives on only for members of that round not yet flushed.

    Per-member lists, made and dropped every round, also left the allocator
    holding their memory after a storm of JOINs: 0.4-0.9 KiB per connection
    at 5,000 in #lobby, depending on the size of the rounds.
    """

    __slots__ = ("lines", "_joined")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._joined: dict[tuple[int, int], bytes] = {}

    def add(self, data: bytes) -> int:
        """Append data unless it is the last line already; return the new length.

        The same bytes object in a row is the same broadcast reaching its next
        member (wire.render returns one object per event), not a repeat.
        """
        lines = self.lines
        if not lines or lines[-1] is not data:
            lines.append(data)
        return len(lines)

    def joined(self, start: int, end: int) -> bytes:
        """Return lines[start:end] as one bytes object, joined once per run."""
        if end - start == 1:
            return self.lines[start]
        key = (start, end)
        data = self._joined.get(key)
        if data is None:
            data = self._joined[key] = b"".join(self.lines[start:end])
        return data


class OutputBatch:
    """Collects what connections write, so each recipient gets one write per round.

    A line from one client can reach a thousand others, and a packet can hold
    many lines; one new user's JOIN reaches everyone in #lobby. Writing each
    line to each socket as it is made costs a transport.write, a send() and two
    epoll changes per line and recipient. Instead each connection appends to
    its own pending output, and a flush writes that with one transport.write.
    Broadcast lines are kept once, in the round's Journal, and a member holds
    just the run of them it is waiting for; other output (replies, or lines
    out of turn) goes to a list of the connection's own.

    With delay None, the lists are written when the outermost batch ends (a
    batch is one client's received bytes); writes outside a batch go straight
    out. This is deterministic, and what the unit tests use.

    With a delay (twistd uses 0), the client whose input was handled gets its
    own output at once (its echo, its replies); so do everyone else's when
    they are SMALL_FLUSH or fewer (a chat in a small room); larger broadcasts
    are written by a timer: at the next reactor turn, but never sooner
    after the previous flush ended than FLUSH_SPACING times what that flush
    took. Under light load flushes take microseconds and lines go out on the
    next turn; in a storm (hundreds of registrations, each a JOIN to everyone
    in #lobby) flushes take longer and so carry more lines each, and at most
    about a third of the time goes to them.
    Each connection's lines keep their order in both modes.
    """

    def __init__(self, clock: IReactorTime, delay: float | None = None) -> None:
        self.clock = clock
        self.delay = delay
        self.depth = 0  # > 0 while a batch is open
        self.collecting = delay is not None  # writes go to the lists, not out
        self.pending: list[Flushable] = []  # connections with collected output
        # This round's broadcast lines, one journal per door (each door
        # renders an event its own way; members of one door share runs).
        self.journals: dict[str, Journal] = {}
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

    def end_now(self) -> None:
        """Close a batch that is a round already (a cluster node's read of the log).

        The outermost end writes everything collected at once, timer or not:
        the read already holds whatever came since the last one (docs/cluster.md).
        """
        self.depth -= 1
        if self.depth:
            return
        if self.delay is None:
            self.collecting = False
        self.flush_all()

    def journal_for(self, door: str) -> Journal:
        """Return this round's journal of a door's broadcast lines."""
        journal = self.journals.get(door)
        if journal is None:
            journal = self.journals[door] = Journal()
        return journal

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
        self._quiet_until = finished + FLUSH_SPACING * (finished - started)

    def flush_all(self) -> None:
        """Write every connection's collected output."""
        pending, self.pending = self.pending, []
        if self.journals:  # lines from now on belong to the next round
            self.journals = {}
        for connection in pending:
            connection.flush()
