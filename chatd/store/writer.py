"""History on SQLite with the disk kept off the reactor: one writer thread.

The reactor side only appends to a list. Every BATCH_DELAY seconds (or the
next reactor turn after, when turns are longer) the list is handed to the
thread, which writes everything that has reached it in one transaction:
rooms' messages to a staging table with no index, settled into their own
table (one transaction, room by room) about once a second, and before any
other job, so that no read or deletion misses one.
Reads go through the same thread, in the same queue: a read sees every
message recorded before it was asked for and none after, which is what lets
a door hold a client's later lines until the answer is there (see
Connection.send_later). Answers come back with reactor.callFromThread.

A fault while running (locked, read-only, full, damaged) is logged once;
history is then unavailable (reads fail with the reason at once) while the
chat goes on. The thread keeps trying each batch, and the first one written
brings history back (logged too). Messages said while it was failing are
lost.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar, cast

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.net.stats import Histogram
from chatd.store.interface import (
    DEFAULT_BOUND,
    Bound,
    Entry,
    Found,
    HistoryUnavailable,
    IHistory,
    Kind,
    Search,
    SearchTooSlow,
    Span,
    Stamps,
    UnknownId,
    conversation,
    millis,
)
from chatd.store.lock import DatabaseLock
from chatd.store.sqlite import (
    MEMORY,
    AuthoredPrivateRow,
    AuthoredRoomRow,
    HistoryDatabase,
    explain,
)

# Seconds between hand-overs to the thread: each batch is one transaction, so
# a busy daemon makes at most 200 a second, and a kill -9 loses about this.
BATCH_DELAY = 0.02
# Rooms' messages are staged (chatd.store.sqlite, HistoryDatabase.settle) and
# settled into their table at most this long after the first, or at this many.
SETTLE_EVERY = 1.0
SETTLE_ROWS = 5000
PRUNE_EVERY = 3600.0  # seconds between looks for messages past their days
PRUNE_CHUNK = 5000  # messages deleted per statement; other work goes between
STOP_WAIT = 10.0  # seconds a stop waits for the thread before giving up
# How much nicer than the reactor the writer thread runs (Linux: a thread's own
# nice value). The daemon is usually one core's worth of work: a message that
# arrives while the writer is in SQLite should wake the reactor at once, not
# wait for the writer's time slice. Under full load the writer still gets about
# a tenth of the core (CFS weights), and a writer that falls behind writes
# larger batches, which cost less per row.
WRITER_NICENESS = 10
DAY = 86400.0

T = TypeVar("T")


@dataclass(slots=True)
class _Batch:
    """Messages recorded since the last hand-over: one transaction.

    Rooms' rows (id, room, time (ms), kind, nick, text, author) and private
    ones (chatd.store.sqlite.AuthoredPrivateRow) are kept apart as they are
    recorded, so the thread writes each list as it is, with no Python per row.
    """

    rooms: list[AuthoredRoomRow]
    private: list[AuthoredPrivateRow]

    def __len__(self) -> int:
        return len(self.rooms) + len(self.private)


@dataclass(slots=True)
class _Read(Generic[T]):
    """A question for the database, asked in the thread, answered in the reactor."""

    ask: Callable[[HistoryDatabase], T]
    answer: defer.Deferred[T]


@dataclass(slots=True)
class _Prune:
    older_than: int  # milliseconds
    deleted: int = 0


class _Stop:
    """The last job: close the database and end the thread."""


@dataclass(slots=True)
class _Call:
    """Other work on the database (accounts, registered rooms), in turn."""

    work: Callable[[HistoryDatabase], object]
    answer: defer.Deferred[object]


Job = _Batch | _Read[object] | _Prune | _Stop | _Call


@implementer(IHistory)
class SQLiteHistory:
    """IHistory in a SQLite file, written and read by one thread of its own."""

    log = Logger()

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        threads: IReactorFromThreads,
        keep_days: float = 30.0,
        bound: Bound = DEFAULT_BOUND,
    ) -> None:
        self.path = path
        self.clock = clock
        self.threads = threads
        self.keep_days = keep_days  # 0: keep forever
        # The most messages kept per room and in all: the thread deletes the
        # oldest as it writes (HistoryDatabase.append).
        self.bound = bound
        self.reason: str | None = None
        self.database: HistoryDatabase | None = None
        self.lock: DatabaseLock | None = None  # held from open until closed
        self.stamps = Stamps()
        self._rooms: set[str] = set()
        self._room_rows: list[AuthoredRoomRow] = []  # since the last hand-over
        self._private_rows: list[AuthoredPrivateRow] = []
        self._hand_over_call: IDelayedCall | None = None
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        # Called with the database as it opens, before the thread starts: what
        # else lives in the file (chatd.store.accounts) is read there.
        self.openers: list[Callable[[HistoryDatabase], None]] = []
        self._thread: threading.Thread | None = None
        self._pruner: LoopingCall | None = None
        self._stopped: defer.Deferred[None] | None = None
        self._down = False  # the thread's own view: the last attempt failed
        self._over_noted = -PRUNE_EVERY  # when the thread last logged the bound's
        # For --metrics, written by the thread once per batch (chatd.net.stats).
        self.written = 0  # messages written to the database
        self.batch_seconds = Histogram()  # how long each batch's transaction took

    # -- start and stop (the reactor's thread) -----------------------------------

    def open(self) -> None:
        """Open the database and start the thread; StoreError if it cannot be used.

        This waits for the disk: it is meant for the daemon's start, before
        the reactor serves anyone. The database is locked first: a second
        daemon on the same file gets StoreError (chatd.store.lock).
        """
        if self.path != MEMORY:
            self.lock = DatabaseLock.take(self.path)
        try:
            database = self.database = self.open_database()
        except BaseException:
            self._release()
            raise
        self.stamps = Stamps(database.last_id())
        self._rooms = database.rooms()
        for opener in self.openers:
            opener(database)
        self._thread = threading.Thread(
            target=self._run, name="chatd-history", daemon=True
        )
        self._thread.start()
        if self.keep_days:
            self._pruner = LoopingCall(self._prune)
            self._pruner.clock = self.clock
            self._pruner.start(PRUNE_EVERY, now=True)

    def open_database(self) -> HistoryDatabase:
        """Open the database at self.path (StoreError if it cannot be used)."""
        return HistoryDatabase.open(self.path, bound=self.bound)

    def close(self) -> defer.Deferred[None]:
        """Write everything recorded, close the database; fires when done."""
        if self._thread is None:
            return defer.succeed(None)
        if self._stopped is not None:
            return self._stopped
        if self._pruner is not None and self._pruner.running:
            self._pruner.stop()
        self._hand_over()
        stopped: defer.Deferred[None] = defer.Deferred()
        self._stopped = stopped
        self._jobs.put(_Stop())
        timer = self.clock.callLater(STOP_WAIT, self._stop_timed_out)

        def finished(result: None) -> None:
            if timer.active():
                timer.cancel()

        stopped.addCallback(finished)
        return stopped

    def _stop_timed_out(self) -> None:
        self.log.warn(
            "the history thread did not finish within {wait:g}s; "
            "the last messages may not be kept",
            wait=STOP_WAIT,
        )
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _finished(self) -> None:
        self._release()
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    # -- IHistory (the reactor's thread) -----------------------------------------

    def record(
        self, room: str, kind: Kind, nick: str, text: str, author: str = ""
    ) -> tuple[int, float]:
        # Not through record_at: one process's every message comes here.
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        if self._thread is not None and self._stopped is None:
            self._room_rows.append(
                (msg_id, room, millis(now), kind.value, nick, text, author)
            )
            self._rooms.add(room)
            if self._hand_over_call is None:
                self._hand_over_call = self.clock.callLater(
                    BATCH_DELAY, self._hand_over
                )
        return msg_id, now

    def record_at(
        self,
        room: str,
        kind: Kind,
        nick: str,
        text: str,
        msg_id: int,
        time: float,
        author: str = "",
    ) -> None:
        self.stamps.passed(msg_id)
        if self._thread is not None and self._stopped is None:
            self._room_rows.append(
                (msg_id, room, millis(time), kind.value, nick, text, author)
            )
            self._rooms.add(room)
            if self._hand_over_call is None:
                self._hand_over_call = self.clock.callLater(
                    BATCH_DELAY, self._hand_over
                )

    def record_private(
        self, sender: str, recipient: str, kind: Kind, name: str, text: str
    ) -> tuple[int, float]:
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        self.record_private_at(sender, recipient, kind, name, text, msg_id, now)
        return msg_id, now

    def record_private_at(
        self,
        sender: str,
        recipient: str,
        kind: Kind,
        name: str,
        text: str,
        msg_id: int,
        time: float,
    ) -> None:
        self.stamps.passed(msg_id)
        if self._thread is not None and self._stopped is None:
            low, high = conversation(sender, recipient)
            self._private_rows.append(
                (msg_id, low, high, millis(time), kind.value, name, text, sender)
            )
            if self._hand_over_call is None:
                self._hand_over_call = self.clock.callLater(
                    BATCH_DELAY, self._hand_over
                )

    def has_history(self, room: str) -> bool:
        return room in self._rooms

    def read(
        self, room: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        return self._ask(lambda database: database.read(room, count, before))

    def select(self, room: str, span: Span) -> defer.Deferred[list[Entry]]:
        return self._ask(partial(HistoryDatabase.select, room=room, span=span))

    def latest(self, rooms: Sequence[str]) -> defer.Deferred[dict[str, Entry]]:
        rooms = list(rooms)
        return self._ask(partial(HistoryDatabase.latest, rooms=rooms))

    def read_private(
        self, me: str, other: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        return self._ask(
            partial(
                HistoryDatabase.read_private,
                me=me,
                other=other,
                count=count,
                before=before,
            )
        )

    def select_private(
        self, me: str, other: str, span: Span
    ) -> defer.Deferred[list[Entry]]:
        return self._ask(
            partial(HistoryDatabase.select_private, me=me, other=other, span=span)
        )

    def private_latest(self, me: str) -> defer.Deferred[dict[str, Entry]]:
        return self._ask(partial(HistoryDatabase.private_latest, me=me))

    def search(self, search: Search) -> defer.Deferred[list[Found]]:
        # In turn with the reads (docs/protocol.md, Searching history): the
        # database bounds how long one holds the thread (sqlite_search.SEARCH_TIME).
        return self._ask(partial(HistoryDatabase.search, search=search))

    def forget_private(self, account: str) -> None:
        def failed(failure: Failure) -> None:
            self.log.error(
                "could not delete the private history of a dropped account: {reason}",
                reason=failure.getErrorMessage(),
            )

        forget = partial(HistoryDatabase.forget_private, account=account)
        self.submit(forget).addErrback(failed)

    def author(self, room: str, msg_id: int) -> defer.Deferred[str | None]:
        return self._ask(partial(HistoryDatabase.author, room=room, msg_id=msg_id))

    def private_author(
        self, me: str, other: str, msg_id: int
    ) -> defer.Deferred[str | None]:
        return self._ask(
            partial(HistoryDatabase.private_author, me=me, other=other, msg_id=msg_id)
        )

    def delete(self, room: str, msg_id: int) -> defer.Deferred[bool]:
        return self._deleting(partial(HistoryDatabase.delete, room=room, msg_id=msg_id))

    def delete_private(self, me: str, other: str, msg_id: int) -> defer.Deferred[bool]:
        return self._deleting(
            partial(HistoryDatabase.delete_private, me=me, other=other, msg_id=msg_id)
        )

    def _deleting(
        self, work: Callable[[HistoryDatabase], bool]
    ) -> defer.Deferred[bool]:
        """Run a deletion in turn; False (and logged) when it could not be done."""

        def failed(failure: Failure) -> bool:
            self.log.error(
                "history: could not delete a message: {reason}",
                reason=failure.getErrorMessage(),
            )
            return False

        done = self.submit(work).addCallback(bool)
        return done.addErrback(failed)

    def _ask(self, ask: Callable[[HistoryDatabase], T]) -> defer.Deferred[T]:
        """Queue a question for the thread, behind everything recorded so far."""
        if self.reason is not None:
            return defer.fail(HistoryUnavailable(self.reason))
        if self._thread is None or self._stopped is not None:
            return defer.fail(HistoryUnavailable("history is not open"))
        self._hand_over()  # what was said before the question goes first
        answer: defer.Deferred[T] = defer.Deferred()
        # Typed for what it gives back; the thread only passes the answer on.
        self._jobs.put(cast(_Read[object], _Read(ask, answer)))
        return answer

    def set_retention(self, keep_days: float, bound: Bound) -> None:
        """Keep messages keep_days (0: for ever) and within bound from now on.

        A reloaded config file's --history-days, --history-room-max,
        --history-total-max and --history-account-max (chatd.ops.reload): the
        next prune and the next writes follow them; a lowered bound is reached
        over the next writes.
        """
        self.keep_days, self.bound = keep_days, bound
        if self._thread is None or self._stopped is not None:
            return  # not open: open() starts with these
        self.submit(partial(_set_bound, bound=bound)).addErrback(
            lambda failure: None  # the database is down: it says so itself
        )
        pruning = self._pruner is not None and self._pruner.running
        if keep_days and not pruning:
            self._pruner = LoopingCall(self._prune)
            self._pruner.clock = self.clock
            self._pruner.start(PRUNE_EVERY, now=True)
        elif not keep_days and pruning and self._pruner is not None:
            self._pruner.stop()

    def submit(
        self, work: Callable[[HistoryDatabase], object]
    ) -> defer.Deferred[object]:
        """Run work(database) on the thread, after what is queued; fires with its
        result (or fails with HistoryUnavailable when the database fails).

        Work submitted while the database opens (by an opener, or what it
        calls: always-on users coming back save their record) waits in the
        queue for the thread, which starts right after the openers.
        """
        if self.database is None or self._stopped is not None:
            return defer.fail(HistoryUnavailable("the database is not open"))
        self._hand_over()
        answer: defer.Deferred[object] = defer.Deferred()
        self._jobs.put(_Call(work, answer))
        return answer

    def _hand_over(self) -> None:
        """Give the batch so far to the thread."""
        call, self._hand_over_call = self._hand_over_call, None
        if call is not None and call.active():
            call.cancel()
        if self._room_rows or self._private_rows:
            self._jobs.put(_Batch(self._room_rows, self._private_rows))
            self._room_rows, self._private_rows = [], []

    def _prune(self) -> None:
        cutoff = self.clock.seconds() - self.keep_days * DAY
        self._jobs.put(_Prune(millis(cutoff)))

    def _went_down(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.log.error(
            "history is off: {reason} ({detail}); the chat goes on without it, "
            "and chatd keeps trying",
            reason=reason,
            detail=detail,
        )

    def _came_back(self) -> None:
        self.reason = None
        self.log.info("history is kept again")

    def _bounded(self, deleted: int) -> None:
        # Numbers in the fields (0: no bound), the words in the text.
        room = "{room} a room" if self.bound.room else "no bound a room"
        total = "{total} in all" if self.bound.total else "no bound in all"
        self.log.info(
            "history: deleted {count} {messages} past the bound ("
            + room
            + ", "
            + total
            + ")",
            count=deleted,
            messages="message" if deleted == 1 else "messages",
            room=self.bound.room,
            total=self.bound.total,
        )

    def _pruned(self, deleted: int) -> None:
        self.log.info(
            "history: deleted {count} {messages} older than {days:g} days",
            count=deleted,
            messages="message" if deleted == 1 else "messages",
            days=self.keep_days,
        )

    # -- the writer thread -------------------------------------------------------

    def _run(self) -> None:
        """Take jobs in order; consecutive batches make one transaction."""
        database = self.database
        if database is None:
            return
        _be_nicer(WRITER_NICENESS)
        jobs = self._jobs
        database.staging = True
        waiting: Job | None = None
        while True:
            job = waiting if waiting is not None else self._next_job(database)
            waiting = None
            if not isinstance(job, _Batch):
                self._settle(database)  # whatever comes next sees every message
            if isinstance(job, _Batch):
                batch = job
                while True:  # everything already queued behind it, up to a read
                    try:
                        after = jobs.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(after, _Batch):
                        batch.rooms += after.rooms
                        batch.private += after.private
                    else:
                        waiting = after
                        break
                self._write(database, batch)
            elif isinstance(job, _Read):
                self._answer(database, job)
            elif isinstance(job, _Prune):
                self._delete_old(database, job)
            elif isinstance(job, _Call):
                self._call(database, job)
            else:
                break
        try:
            database.close()
        except Exception as error:
            self.threads.callFromThread(self._went_down, explain(error), str(error))
        self.threads.callFromThread(self._finished)

    def _next_job(self, database: HistoryDatabase) -> Job:
        """The next job; while messages are staged, settle them when they have
        waited SETTLE_EVERY seconds or number SETTLE_ROWS."""
        jobs = self._jobs
        while database.staged:
            wait = database.staged_since + SETTLE_EVERY - time.monotonic()
            if wait <= 0 or database.staged >= SETTLE_ROWS:
                self._settle(database)
                break
            try:
                return jobs.get(timeout=wait)
            except queue.Empty:
                pass
        return jobs.get()

    def _settle(self, database: HistoryDatabase) -> None:
        if not database.staged:
            return
        try:
            database.settle()
        except Exception as error:
            self._failed(error)  # the rows stay staged; the next settle tries again
        else:
            self._wrote(database)

    def _failed(self, error: Exception) -> None:
        if not self._down:
            self._down = True
            self.threads.callFromThread(self._went_down, explain(error), str(error))

    def _write(self, database: HistoryDatabase, batch: _Batch) -> None:
        started = time.perf_counter()
        try:
            database.append_sorted(batch.rooms, batch.private)
        except Exception as error:
            self._failed(error)  # these rows are lost; the next batch tries again
            return
        self.batch_seconds.observe(time.perf_counter() - started)
        self.written += len(batch)
        self._wrote(database)

    def _wrote(self, database: HistoryDatabase) -> None:
        """After a write that succeeded: note the bound's deletions, and that
        history is back if it was down."""
        over = database.deleted_over
        # Logged once as it begins, then at most once per PRUNE_EVERY: a
        # flooded room deletes with nearly every write.
        if over and time.monotonic() - self._over_noted >= PRUNE_EVERY:
            database.deleted_over = 0
            self._over_noted = time.monotonic()
            self.threads.callFromThread(self._bounded, over)
        if self._down:
            self._down = False
            self.threads.callFromThread(self._came_back)

    def _answer(self, database: HistoryDatabase, job: _Read[object]) -> None:
        call = self.threads.callFromThread
        try:
            entries = job.ask(database)
        except (UnknownId, SearchTooSlow) as error:
            call(job.answer.errback, error)
        except Exception as error:
            self._failed(error)
            call(job.answer.errback, HistoryUnavailable(explain(error)))
        else:
            call(job.answer.callback, entries)

    def _call(self, database: HistoryDatabase, job: _Call) -> None:
        call = self.threads.callFromThread
        try:
            result = job.work(database)
        except Exception as error:
            self._failed(error)
            call(job.answer.errback, HistoryUnavailable(explain(error)))
        else:
            call(job.answer.callback, result)

    def _delete_old(self, database: HistoryDatabase, job: _Prune) -> None:
        try:
            deleted = database.prune(job.older_than, PRUNE_CHUNK)
        except Exception as error:
            self._failed(error)
            return
        job.deleted += deleted
        if deleted == PRUNE_CHUNK:
            self._jobs.put(job)  # more to do, after whatever waits now
        elif job.deleted:
            self.threads.callFromThread(self._pruned, job.deleted)


def _be_nicer(step: int) -> None:
    """Lower the calling thread's scheduling priority by step, where it can be."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS is the whole process, reactor included
    thread = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + step
        )
    except OSError:
        pass  # not allowed, or not supported: the writer runs as the reactor does


def _set_bound(database: HistoryDatabase, bound: Bound) -> None:
    """Give the thread's database a new bound (SQLiteHistory.set_retention)."""
    database.bound = bound
