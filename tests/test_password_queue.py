"""The password queue: round robin by address, caps per key, budgets that wait.

A fake pool of two threads on a fake clock (FakePool) stands for the
daemon's hashing threads: each job takes HASH_SECONDS of the clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.password_queue import (
    PER_ADDRESS,
    Admission,
    Budget,
    Claim,
    PasswordQueue,
)

HASH_SECONDS = 0.25


class FakePool:
    """Two threads on a fake clock: each job takes HASH_SECONDS, in order."""

    def __init__(self, clock: Clock, threads: int = 2) -> None:
        self.clock = clock
        self.threads = threads
        self.busy = 0
        self.most = 0  # the most jobs it ever held at once
        self.waiting: deque[tuple[Callable[[], object], defer.Deferred[object]]] = (
            deque()
        )

    def run(self, work: Callable[[], object]) -> defer.Deferred[object]:
        answer: defer.Deferred[object] = defer.Deferred()
        self.waiting.append((work, answer))
        self.most = max(self.most, self.busy + len(self.waiting))
        self._start()
        return answer

    def _start(self) -> None:
        while self.busy < self.threads and self.waiting:
            work, answer = self.waiting.popleft()
            self.busy += 1
            self.clock.callLater(HASH_SECONDS, self._finish, work, answer)

    def _finish(
        self, work: Callable[[], object], answer: defer.Deferred[object]
    ) -> None:
        self.busy -= 1
        try:
            outcome = work()
        except Exception:
            answer.errback(Failure())
        else:
            answer.callback(outcome)
        self._start()


def run_for(clock: Clock, seconds: float, step: float = 0.05) -> None:
    for _ in range(round(seconds / step)):
        clock.advance(step)


def test_lanes_are_served_in_turn() -> None:
    """Four jobs of one address, then one of another: the other's runs third,
    not fifth (one job of each lane in turn), and the pool never holds more
    than its two threads' worth."""
    clock = Clock()
    pool = FakePool(clock)
    queue = PasswordQueue(pool.run, threads=2)
    order: list[str] = []
    for n in range(4):
        queue.submit(partial(order.append, f"a{n}"), Claim("a"))
    queue.submit(lambda: order.append("b0"), Claim("b"))
    run_for(clock, 2)
    assert order == ["a0", "a1", "b0", "a2", "a3"]
    assert pool.most == 2 and queue.pending == 0


def test_a_key_past_its_cap_is_refused_at_once() -> None:
    """An address's PER_ADDRESS jobs waiting or running: the next is refused
    at once (throttled); another address is not."""
    clock = Clock()
    queue = PasswordQueue(FakePool(clock).run)
    claim = Claim("a", (("address a", PER_ADDRESS),))
    for _ in range(PER_ADDRESS):
        queue.submit(lambda: None, claim)
    refused: list[Failure] = []
    queue.submit(lambda: None, claim).addErrback(refused.append)
    (failure,) = refused
    assert isinstance(failure.value, ChatError)
    assert failure.value.code is ErrorCode.THROTTLED
    assert "your address" in failure.value.text
    done: list[object] = []
    queue.submit(lambda: 1, Claim("b", (("address b", PER_ADDRESS),))).addCallback(
        done.append
    )
    run_for(clock, 3)
    assert done == [1]


def test_a_budget_reserves_the_tries_of_checks_on_their_way() -> None:
    """Two tries: two checks start, a third waits for their answers. A right
    answer gives its try back (the third starts); wrong answers spend them
    (the third is refused)."""
    clock = Clock()
    for right, expected in ((True, Admission.OPEN), (False, Admission.SPENT)):
        budget = Budget("address", 2, 1 / 12, clock)
        budget.start()
        budget.start()
        assert budget.admission() is Admission.WAIT
        budget.end(wrong=not right)
        budget.end(wrong=not right)
        assert budget.admission() is expected


@pytest.mark.parametrize("right", [True, False])
def test_checks_past_a_budget_wait_for_the_answers(right: bool) -> None:
    """Eight checks at once on a budget of five: right passwords all pass;
    wrong ones, five are checked and three refused as throttled."""
    clock = Clock()
    queue = PasswordQueue(FakePool(clock).run)
    budget = Budget("address", 5, 1 / 12, clock)

    def refusal(spent: Budget) -> ChatError:
        return ChatError(ErrorCode.THROTTLED, "too many wrong passwords")

    outcomes: list[object] = []
    for _ in range(8):
        claim = Claim("a", (), (budget,), refusal)
        answer = queue.submit(lambda: right, claim)
        answer.addCallbacks(outcomes.append, lambda f: outcomes.append(f.value.code))
    run_for(clock, 5)
    if right:
        assert outcomes == [True] * 8
    else:
        assert outcomes == [False] * 5 + [ErrorCode.THROTTLED] * 3
