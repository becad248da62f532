"""Answers: what a connection still owes its client, and the end of its input.

An answer that comes later (a history read on the store's thread, a
password check, a cluster's turn) holds the connection's later output
behind it, so that the client sees every answer where it asked, and the
lines that came meanwhile after it. A goodbye after /quit or QUIT waits for
the answers still to come (close_after_answers), and so does the close of a
client that ended its input (TCP half-close): ANSWER_WAIT seconds at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from chatd.net.phase import Phase

if TYPE_CHECKING:
    from chatd.net.connection import Connection

_CLOSING = Phase.CLOSING
# Seconds an answer that comes later may take before its fallback is sent
# instead: the output held behind it is bounded by what arrives meanwhile.
ANSWER_WAIT = 10.0


@dataclass(eq=False, slots=True)
class Hold:
    """An answer a connection waits for, and its output that came after it."""

    after: list[bytes] = field(default_factory=list)
    answer: bytes | None = None  # set once it has come (or its fallback)
    started: bool = False  # False while send_later is still deciding
    timer: IDelayedCall | None = None


class Answers:
    """One connection's answers still to come, and what waits for them.

    The connection is the delegate, given on every call (no reference is
    kept, so no cycle waits for the cycle collector): its output (a hold's
    list takes the place of its own while an answer is awaited), its clock
    and its close.
    """

    __slots__ = ("holds", "bye_after", "deadline", "input_ended")

    def __init__(self) -> None:
        self.holds: list[Hold] | None = None  # answers waited for, oldest first
        # The goodbye waits behind answers still to come (close_after_answers).
        self.bye_after = False
        # The bound on waiting for answers at the end (close or end of input).
        self.deadline: IDelayedCall | None = None
        self.input_ended = False  # the client sent all it will (readConnectionLost)

    # -- answers that come later -------------------------------------------------

    def send_later(
        self, conn: Connection, answer: Deferred[bytes], fallback: bytes
    ) -> None:
        """Send answer's bytes when they come, in order with everything else.

        See Connection.send_later.
        """
        if conn.phase is _CLOSING:
            return
        hold = Hold()
        answer.addCallbacks(
            self._answered,
            self._answer_failed,
            callbackArgs=(conn, hold),
            errbackArgs=(conn, hold, fallback),
        )
        if hold.answer is not None:  # it was there at once: no wait
            if hold.answer:
                conn._write(hold.answer)  # not send: a door's send may encode
            return
        conn.flush()  # what came before the question goes now (unless held too)
        hold.started = True
        holds = self.holds
        if holds is None:
            holds = self.holds = []
        holds.append(hold)
        conn._out = hold.after  # later output collects behind the answer
        hold.timer = conn.hub.clock.callLater(
            ANSWER_WAIT, self._answer_late, conn, hold, fallback
        )

    def _answered(self, data: bytes, conn: Connection, hold: Hold) -> None:
        if not hold.started:
            hold.answer = data
            return
        self._resolve(conn, hold, data)

    def _answer_failed(
        self, failure: Failure, conn: Connection, hold: Hold, fallback: bytes
    ) -> None:
        conn.log.failure("an answer for {peer} failed", failure, peer=conn.peer)
        self._answered(fallback, conn, hold)

    def _answer_late(self, conn: Connection, hold: Hold, fallback: bytes) -> None:
        hold.timer = None
        conn.log.warn(
            "an answer for {peer} did not come within {wait:g}s; its fallback was sent",
            peer=conn.peer,
            wait=ANSWER_WAIT,
        )
        self._resolve(conn, hold, fallback)

    def _resolve(self, conn: Connection, hold: Hold, data: bytes) -> None:
        """hold's answer is data: send every answer now due, with what followed."""
        holds = self.holds
        if hold.answer is not None or holds is None or hold not in holds:
            return  # already resolved (late, or the connection is closing)
        hold.answer = data
        if hold.timer is not None and hold.timer.active():
            hold.timer.cancel()
        hold.timer = None
        ready: list[bytes] = []
        while holds and holds[0].answer is not None:
            done = holds.pop(0)
            ready.append(done.answer or b"")
            ready.extend(done.after)
        if not holds:
            self.holds = conn._out = None
        out = b"".join(ready)
        if out and (conn.phase is not _CLOSING or self.bye_after):
            conn._transmit(out)
        if not holds:
            conn.answers_settled()

    def drop(self, conn: Connection) -> None:
        """Stop waiting: output held behind answers is collected as if never held.

        Answers not yet come are left out; the connection is closing.
        """
        holds, self.holds = self.holds, None
        if holds is None:
            return
        out: list[bytes] = []
        for hold in holds:
            if hold.timer is not None and hold.timer.active():
                hold.timer.cancel()
            hold.timer = None
            if hold.answer:
                out.append(hold.answer)
            hold.answer = b""
            out.extend(hold.after)
        conn._out = out or None  # close() flushes it, before its goodbye

    def stop(self, conn: Connection) -> None:
        """Nothing more is sent: forget the answers and the goodbye's wait."""
        self.bye_after = False
        self.drop(conn)
        self.cancel_deadline()

    # -- what waits for the answers: a goodbye, or the end of input --------------

    def end_of_input(self, conn: Connection) -> None:
        """The client will send nothing more: close once nothing it sent is due."""
        self.input_ended = True
        self.finish_input(conn)

    def finish_input(self, conn: Connection) -> None:
        """Close a client whose input ended once nothing it sent is still due.

        Held lines call this again as they drain (Connection.release), answers
        as they come (settled); answers are waited for ANSWER_WAIT at most.
        """
        gate = conn.gate
        if conn.phase is _CLOSING or (gate is not None and gate.held is not None):
            return  # closing already; or release() calls again
        if conn.awaiting_answers():
            self.wait_for_deadline(conn)
            return
        conn.closing.after_input(conn)

    def wait_for_deadline(self, conn: Connection) -> None:
        """Bound the wait for the answers still to come by ANSWER_WAIT."""
        if self.deadline is None:
            self.deadline = conn.hub.clock.callLater(ANSWER_WAIT, self._overdue, conn)

    def settled(self, conn: Connection) -> None:
        """Answers awaited have come: a goodbye or an end of input waiting goes on."""
        if conn.awaiting_answers():
            return
        if self.bye_after:
            self.bye_after = False
            self.cancel_deadline()
            conn.closing.hang_up_within_grace(conn)
        elif self.input_ended:
            self.finish_input(conn)

    def _overdue(self, conn: Connection) -> None:
        """Answers did not all come within ANSWER_WAIT: close without them."""
        self.deadline = None
        conn.log.warn(
            "answers for {peer} did not come within {wait:g}s after its end; closed",
            peer=conn.peer,
            wait=ANSWER_WAIT,
        )
        if self.bye_after:
            self.bye_after = False
            self.drop(conn)
            conn.flush()  # what came, then the goodbye behind it
            conn.closing.hang_up_within_grace(conn)
        else:
            conn.closing.after_input(conn)

    def cancel_deadline(self) -> None:
        """No more waiting for answers at the end."""
        deadline, self.deadline = self.deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()
