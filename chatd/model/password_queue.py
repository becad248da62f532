"""The queue in front of the password threads: fair between addresses, capped per key.

Every Argon2 hash and verify (chatd.model.accounts) waits here for one of the
THREADS hashing threads (chatd.ops.service.HashingService), so that nobody's
password work can starve anyone else's (docs/security.md):

- Each job is counted against keys, each with a small cap on its jobs
  waiting or running: its address (PER_ADDRESS), and for a new password its
  account too (PER_ACCOUNT). Past a cap it is refused at once, and only its
  own address or account is told to wait.
- Past MAX_PENDING jobs in all, only an address that has nothing waiting
  yet is let in (up to MAX_QUEUED): a few busy addresses cannot fill the
  queue for everyone else.
- The jobs are served round robin by lane (the address): one job of each
  lane in turn (each job is tagged with its turn, start-time fair queueing),
  so a newcomer waits behind one job of each other address, not behind all
  of them.
- A check of a password carries the wrong-password budgets it spends if
  the password is wrong (Budget): it starts while they have a try that no
  check on its way has reserved; while all their tries are reserved, it
  waits for those checks' answers (a right password spends nothing); with
  none left, it is refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from chatd.model.errors import ChatError, ErrorCode

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], "defer.Deferred[T]"]

THREADS = 2  # hashing threads (chatd.ops.service): jobs running at once
MAX_PENDING = 32  # jobs waiting or running before only new addresses get in
MAX_QUEUED = 4 * MAX_PENDING  # jobs waiting or running at most; more: "busy"
PER_ADDRESS = 16  # jobs one address may have waiting or running (--max-per-ip)
PER_ACCOUNT = 4  # new passwords (and rehashes) one account may have so
EPSILON = 1e-9  # the clock's floats may fall just short of a whole try


class Admission(Enum):
    """What a budget says to a check that would spend it."""

    OPEN = "open"  # a try is free: the check may start
    WAIT = "wait"  # every try left is reserved by checks on their way
    SPENT = "spent"  # no try left: refused


class Budget:
    """Wrong passwords allowed to one key: a burst, then one per 1/rate seconds.

    The tries of the checks on their way are reserved, not spent: a check's
    answer spends its try only if the password was wrong.
    """

    __slots__ = ("kind", "capacity", "rate", "clock", "tokens", "stamp", "reserved")

    def __init__(self, kind: str, burst: int, rate: float, clock: IReactorTime) -> None:
        self.kind = kind  # what it limits ("address", "account"): for the refusal
        self.capacity = burst
        self.rate = rate
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock.seconds()
        self.reserved = 0

    def _refill(self) -> float:
        now = self.clock.seconds()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def admission(self) -> Admission:
        """Whether a check may start now, must wait, or is refused."""
        tokens = self._refill()
        if tokens - self.reserved >= 1.0 - EPSILON:
            return Admission.OPEN
        if tokens >= 1.0 - EPSILON:
            return Admission.WAIT
        return Admission.SPENT

    def start(self) -> None:
        """A check started: its try is reserved."""
        self.reserved += 1

    def end(self, wrong: bool) -> None:
        """A check ended: a wrong password spends its try, a right one gives it back."""
        self.reserved = max(0, self.reserved - 1)
        if wrong:
            self.tokens = max(0.0, self._refill() - 1.0)

    def wait(self) -> float:
        """Seconds until a try is there again."""
        return max(0.0, (1.0 - self._refill()) / self.rate)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one piece of password work is counted against."""

    lane: str  # served round robin with the other lanes: the address
    caps: tuple[tuple[str, int], ...] = ()  # keys, and the jobs each may have
    budgets: tuple[Budget, ...] = ()  # spent by a wrong password (a check)
    refusal: Callable[[Budget], ChatError] | None = None  # a budget spent: why


@dataclass(slots=True)
class _Job:
    work: Callable[[], object]
    claim: Claim
    answer: defer.Deferred[object]
    turn: int  # served in order of turns: one more than its lane's last


BUSY = "the server is busy checking passwords; try again in a moment"


def busy() -> ChatError:
    """The refusal when the password threads have too much waiting."""
    return ChatError(ErrorCode.THROTTLED, BUSY)


class PasswordQueue:
    """Password work waiting for the hashing threads: round robin by address."""

    def __init__(self, run: Runner[object], threads: int = THREADS) -> None:
        self.run = run
        self.threads = threads
        self.lanes: dict[str, deque[_Job]] = {}  # jobs waiting, by lane
        # Each lane's jobs waiting or running, and the turn of its last one.
        self.lane_jobs: dict[str, tuple[int, int]] = {}
        self.turn = 0  # the turn of the job started last
        self.counts: dict[str, int] = {}  # jobs waiting or running, by cap key
        self.pending = 0  # jobs waiting or running
        self.running = 0
        self._pumping = False
        self._again = False

    def refusal(self, claim: Claim) -> ChatError | None:
        """Why a job with claim would be refused now (None: it would be let in)."""
        for key, cap in claim.caps:
            if self.counts.get(key, 0) >= cap:
                who = "your account" if key.startswith("account ") else "your address"
                return ChatError(
                    ErrorCode.THROTTLED,
                    f"too many password checks for {who} at once; "
                    "try again in a moment",
                )
        if self.pending >= MAX_QUEUED or (
            self.pending >= MAX_PENDING and claim.lane in self.lane_jobs
        ):
            return busy()
        return None

    def submit(self, work: Callable[[], T], claim: Claim) -> defer.Deferred[T]:
        """Queue work, counted against claim; its Deferred fires with the result."""
        refused = self.refusal(claim)
        if refused is not None:
            return defer.fail(refused)
        answer: defer.Deferred[object] = defer.Deferred()
        lane = self.lanes.get(claim.lane)
        if lane is None:
            lane = self.lanes[claim.lane] = deque()
        jobs, last = self.lane_jobs.get(claim.lane, (0, -1))
        turn = max(self.turn, last + 1)
        self.lane_jobs[claim.lane] = (jobs + 1, turn)
        lane.append(_Job(work, claim, answer, turn))
        self.pending += 1
        for key, _ in claim.caps:
            self.counts[key] = self.counts.get(key, 0) + 1
        self._pump()
        return answer  # type: ignore[return-value]

    def _uncount(self, job: _Job) -> None:
        self.pending -= 1
        name = job.claim.lane
        jobs, last = self.lane_jobs[name]
        if jobs > 1:
            self.lane_jobs[name] = (jobs - 1, last)
        else:
            del self.lane_jobs[name]
        for key, _ in job.claim.caps:
            left = self.counts[key] - 1
            if left:
                self.counts[key] = left
            else:
                del self.counts[key]

    def _pump(self) -> None:
        """Start waiting jobs while a thread is free: the next lane's first job."""
        if self._pumping:  # a job that ended inline, or a callback that submits
            self._again = True
            return
        self._pumping = True
        try:
            self._again = True
            while self._again:
                self._again = False
                while self.running < self.threads and self._start_one():
                    pass
        finally:
            self._pumping = False

    def _start_one(self) -> bool:
        """Start (or refuse) the waiting job of the earliest turn; tell if one."""
        best: tuple[str, list[Admission]] | None = None
        best_turn = 0
        for name, lane in self.lanes.items():
            job = lane[0]
            if best is not None and job.turn >= best_turn:
                continue
            states = [budget.admission() for budget in job.claim.budgets]
            if Admission.WAIT in states and Admission.SPENT not in states:
                continue  # the checks on their way with its budgets decide first
            best, best_turn = (name, states), job.turn
        if best is None:
            return False
        name, states = best
        lane = self.lanes[name]
        job = lane.popleft()
        if not lane:
            del self.lanes[name]
        if Admission.SPENT in states:
            self._refuse(job, states.index(Admission.SPENT))
        else:
            self.turn = max(self.turn, job.turn)
            self._start(job)
        return True

    def _refuse(self, job: _Job, index: int) -> None:
        self._uncount(job)
        claim = job.claim
        spent = claim.budgets[index]
        if claim.refusal is not None:
            error = claim.refusal(spent)
        else:
            error = ChatError(ErrorCode.THROTTLED, "too many wrong passwords")
        job.answer.errback(Failure(error))

    def _start(self, job: _Job) -> None:
        for budget in job.claim.budgets:
            budget.start()
        self.running += 1
        done = self.run(job.work)
        done.addBoth(self._ended, job)

    def _ended(self, result: object, job: _Job) -> None:
        self.running -= 1
        self._uncount(job)
        wrong = result is not True  # a check's answer: True only if right
        if isinstance(result, Failure):
            wrong = False  # our failure, not a guess
        for budget in job.claim.budgets:
            budget.end(wrong)
        if isinstance(result, Failure):
            job.answer.errback(result)
        else:
            job.answer.callback(result)
        self._pump()
