"""Answers in bulk: charged to the asker's flood budget by size, made in slices.

A command whose answer grows with the server (IRC's LIST, NAMES, WHO and
CHATHISTORY; the line door's /rooms, /who and /history) costs its asker one
line of flood budget per ANSWER_LINES_PER_TOKEN lines of answer, on top of
the line that asked. The charge is debt (chatd.net.limits.FloodGate.charge): the
asker's next lines wait while it is paid back at --flood-rate, so a client
that asks for the whole server again and again waits its turn, instead of
the server doing the work again and again for it. (Nobody else waits: the
budget is the asker's own.)

An answer that may be long (LIST of every room) is also made SLICE_LINES
lines per reactor turn (send_in_slices), so that making it never holds the
reactor for long: other clients' lines are handled between two slices. The
answer goes out whole once made, as an answer that comes later
(Connection.send_later), so it keeps its place among the asker's output and
inside an IRC labeled response; a connection that closes meanwhile stops
its making.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from chatd.net.limits import FloodGate

# Lines of answer that cost one line of flood budget: a LIST of 9,600 rooms
# costs 192 lines (96 s at the default --flood-rate 2), a NAMES or WHO of a
# room of 50, or a /history of 50 lines, one more line.
ANSWER_LINES_PER_TOKEN = 50
# Lines of a long answer made per reactor turn (a few hundred microseconds).
SLICE_LINES = 100


Item = TypeVar("Item")
Spelled = TypeVar("Spelled", bound=Sequence[object])


def pack_words(words: Iterable[str], start: int, budget: int) -> list[list[str]]:
    """Split words into lines of at most budget bytes, start bytes before the words.

    A word costs its UTF-8 bytes and one space; a line takes words while they
    fit, and at least one (a word longer than budget goes on a line alone). No
    words: no lines.
    """
    chunks: list[list[str]] = []
    chunk: list[str] = []
    size = start
    for word in words:
        cost = len(word.encode("utf-8")) + 1
        if chunk and size + cost > budget:
            chunks.append(chunk)
            chunk, size = [], start
        chunk.append(word)
        size += cost
    if chunk:
        chunks.append(chunk)
    return chunks


def newest_within(
    items: Sequence[Item],
    budget: int,
    spell: Callable[[Sequence[Item]], Spelled],
    size: Callable[[Spelled], int] = len,
) -> Spelled:
    """Spell the newest of items (oldest first) that fit in budget bytes.

    The oldest quarter is left out until the answer fits; the newest always
    goes, so a history answer never fills the send queue and never is empty
    when there is history.
    """
    spelled = spell(items)
    while len(items) > 1 and size(spelled) > budget:
        items = items[len(items) // 4 or 1 :]
        spelled = spell(items)
    return spelled


def charge_answer(gate: FloodGate | None, lines: int) -> None:
    """Charge gate one token per ANSWER_LINES_PER_TOKEN lines of an answer."""
    cost = lines // ANSWER_LINES_PER_TOKEN
    if gate is not None and cost > 0:
        gate.charge(cost)


class SlicedSession(Protocol):
    """What send_in_slices needs of the connection it answers."""

    def send(self, data: bytes) -> None:
        """Write encoded lines now (in order with the rest)."""

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come, everything sent later behind them."""

    def still_answering(self) -> bool:
        """Tell whether answers still reach the client (not closed, or closing
        after its answers)."""


def send_in_slices(
    session: SlicedSession,
    clock: IReactorTime,
    lines: Iterator[bytes],
    fallback: bytes,
) -> None:
    """Send the encoded lines of an answer, made SLICE_LINES per reactor turn.

    An answer of fewer lines is sent at once. fallback goes instead if the
    answer is not made within the time an answer may take (ANSWER_WAIT).
    """
    parts = list(islice(lines, SLICE_LINES))
    if len(parts) < SLICE_LINES:
        session.send(b"".join(parts))
        return
    answer: Deferred[bytes] = Deferred()
    session.send_later(answer, fallback)
    clock.callLater(0, _next_slice, session, clock, lines, parts, answer)


def _next_slice(
    session: SlicedSession,
    clock: IReactorTime,
    lines: Iterator[bytes],
    parts: list[bytes],
    answer: Deferred[bytes],
) -> None:
    """Make one more slice of the answer; send it all once the last is made."""
    if not session.still_answering():
        return  # the connection is gone: the rest is not made
    more = list(islice(lines, SLICE_LINES))
    parts += more
    if len(more) < SLICE_LINES:
        answer.callback(b"".join(parts))
        return
    clock.callLater(0, _next_slice, session, clock, lines, parts, answer)
