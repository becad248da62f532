"""SQLiteHistory: the writer thread, batching, reads in order, faults, retention.

The reactor is a task.Clock and a Mailbox: what the thread hands back waits
until the test runs it, so every step is in the test's hands and every wait
is bounded.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from helpers import NOW, Mailbox
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from chatd.store.interface import Entry, HistoryUnavailable, IHistory, Kind, Span
from chatd.store.sqlite import AuthoredPrivateRow, AuthoredRoomRow, HistoryDatabase
from chatd.store.writer import (
    BATCH_DELAY,
    DAY,
    PRUNE_EVERY,
    WRITER_NICENESS,
    SQLiteHistory,
)

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW


class Counting(HistoryDatabase):
    """A HistoryDatabase that counts the rows of each write transaction."""

    batches: list[int]

    def append_sorted(
        self,
        room_rows: Sequence[AuthoredRoomRow],
        private_rows: Sequence[AuthoredPrivateRow],
    ) -> None:
        self.batches.append(len(room_rows) + len(private_rows))
        super().append_sorted(room_rows, private_rows)


class CountingHistory(SQLiteHistory):
    """SQLiteHistory on a Counting database."""

    def open_database(self) -> HistoryDatabase:
        database = Counting.open(self.path)
        assert isinstance(database, Counting)
        database.batches = []
        return database


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


def start(path: str, clock: Clock, mailbox: Mailbox, days: float = 30) -> SQLiteHistory:
    history = SQLiteHistory(path, clock, mailbox, keep_days=days)
    history.open()
    return history


def stop(history: SQLiteHistory, mailbox: Mailbox) -> None:
    stopped = history.close()
    mailbox.run_until(lambda: stopped.called)


@pytest.fixture
def history(tmp_path: Path, clock: Clock, mailbox: Mailbox) -> Iterator[SQLiteHistory]:
    opened = start(str(tmp_path / "chatd.sqlite3"), clock, mailbox)
    yield opened
    stop(opened, mailbox)


def read(
    history: SQLiteHistory,
    mailbox: Mailbox,
    room: str,
    count: int = 20,
    before: int | None = None,
) -> list[Entry] | Failure:
    """Ask the thread, wait for its answer through the mailbox, return it."""
    got: list[list[Entry] | Failure] = []
    answer: Deferred[list[Entry]] = history.read(room, count, before)
    answer.addBoth(got.append)
    mailbox.run_until(lambda: bool(got))
    return got[0]


def test_sqlite_history_provides_ihistory(history: SQLiteHistory) -> None:
    """The store the daemon uses keeps the interface the chat is given."""
    assert verifyObject(IHistory, history)


def test_record_stamps_at_once_and_writes_in_batches(
    tmp_path: Path, clock: Clock, mailbox: Mailbox
) -> None:
    """Ids and times come at once; rows go to the thread every BATCH_DELAY,
    one transaction for everything that reached it."""
    history = CountingHistory(str(tmp_path / "chatd.sqlite3"), clock, mailbox)
    history.open()
    database = history.database
    assert isinstance(database, Counting)
    first, when = history.record("#lobby", Kind.MESSAGE, "alice", "one")
    second, _ = history.record("#lobby", Kind.ACTION, "alice", "two")
    assert when == NOW and first == int(NOW * 1_000_000) and second == first + 1
    assert history.has_history("#lobby")
    assert database.batches == []  # nothing handed over yet
    clock.advance(BATCH_DELAY)
    third, _ = history.record("#lobby", Kind.MESSAGE, "bob", "three")
    assert third == int((NOW + BATCH_DELAY) * 1_000_000)
    entries = read(history, mailbox, "#lobby")
    assert isinstance(entries, list)
    assert [(e.id, e.kind, e.nick, e.text) for e in entries] == [
        (first, Kind.MESSAGE, "alice", "one"),
        (second, Kind.ACTION, "alice", "two"),
        (third, Kind.MESSAGE, "bob", "three"),
    ]
    assert entries[0].time == int(NOW * 1000)
    assert sum(database.batches) == 3 and len(database.batches) <= 2
    stop(history, mailbox)


def test_a_read_sees_everything_recorded_before_it_and_nothing_after(
    history: SQLiteHistory, mailbox: Mailbox
) -> None:
    """The batch not yet handed over goes first; what is said after waits."""
    history.record("#lobby", Kind.MESSAGE, "alice", "before")
    got: list[list[Entry]] = []
    history.read("#lobby", 20).addCallback(got.append)
    history.record("#lobby", Kind.MESSAGE, "alice", "after")
    mailbox.run_until(lambda: bool(got))
    assert [entry.text for entry in got[0]] == ["before"]


def test_close_writes_everything_and_ids_go_on_after_a_restart(
    tmp_path: Path, clock: Clock, mailbox: Mailbox
) -> None:
    """A clean stop writes what was recorded; the next start continues the ids."""
    path = str(tmp_path / "chatd.sqlite3")
    history = start(path, clock, mailbox)
    ids = [history.record("#dev", Kind.MESSAGE, "bob", f"m{n}")[0] for n in range(5)]
    stop(history, mailbox)  # no clock.advance: the batch is still waiting
    again = start(path, clock, mailbox)
    entries = read(again, mailbox, "#dev")
    assert isinstance(entries, list)
    assert [entry.id for entry in entries] == ids
    clock.pump([0.000001])  # a restart within the same microsecond
    later, _ = again.record("#dev", Kind.MESSAGE, "bob", "later")
    assert later > ids[-1]
    stop(again, mailbox)


def test_unknown_id_fails_the_read(history: SQLiteHistory, mailbox: Mailbox) -> None:
    """before that is not the room's id: the Deferred fails with UnknownId."""
    history.record("#lobby", Kind.MESSAGE, "alice", "hi")
    answer = read(history, mailbox, "#lobby", before=12345)
    assert isinstance(answer, Failure) and answer.type.__name__ == "UnknownId"


def test_a_fault_is_logged_once_and_history_comes_back(
    history: SQLiteHistory, clock: Clock, mailbox: Mailbox
) -> None:
    """A full disk: logged once, reads refused with the reason at once while it
    lasts, the chat's ids go on; the first batch written brings history back."""
    assert history.database is not None
    connection = history.database.connection
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    with capturedLogs() as events:
        connection.execute(f"PRAGMA max_page_count = {pages}")
        for _batch in range(3):
            for _ in range(20):
                history.record("#lobby", Kind.MESSAGE, "alice", "x" * 2000)
            clock.advance(BATCH_DELAY)
        mailbox.run_until(lambda: history.reason is not None)
        assert history.reason == "the disk is full"
        refused = read(history, mailbox, "#lobby")
        assert isinstance(refused, Failure) and refused.check(HistoryUnavailable)
        connection.execute("PRAGMA max_page_count = 1073741823")
        history.record("#lobby", Kind.MESSAGE, "alice", "back")
        clock.advance(BATCH_DELAY)
        mailbox.run_until(lambda: history.reason is None)
    errors = [e for e in events if e["log_level"] == LogLevel.error]
    assert len(errors) == 1 and "the disk is full" in errors[0]["reason"]
    assert any(e["log_format"] == "history is kept again" for e in events)
    entries = read(history, mailbox, "#lobby")
    assert isinstance(entries, list) and entries[-1].text == "back"


def test_retention_deletes_old_messages_in_the_background(
    tmp_path: Path, clock: Clock, mailbox: Mailbox
) -> None:
    """At start, and every PRUNE_EVERY seconds, messages older than the days go."""
    path = str(tmp_path / "chatd.sqlite3")
    database = HistoryDatabase.open(path)
    old = int((NOW - 40 * DAY) * 1000)
    database.append([(1, "#lobby", old, "MSG", "alice", "forty days ago")])
    database.close()
    with capturedLogs() as events:
        history = start(path, clock, mailbox, days=30)
        mailbox.run_until(lambda: any("deleted" in e["log_format"] for e in events))
    assert events[-1]["count"] == 1
    history.record("#lobby", Kind.MESSAGE, "alice", "today")
    clock.advance(29 * DAY)
    history.record("#lobby", Kind.MESSAGE, "alice", "29 days later")
    clock.advance(2 * DAY - PRUNE_EVERY)  # "today" is now 31 days old
    with capturedLogs() as events:
        clock.advance(PRUNE_EVERY)
        mailbox.run_until(lambda: any("deleted" in e["log_format"] for e in events))
    entries = read(history, mailbox, "#lobby")
    assert isinstance(entries, list)
    assert [entry.text for entry in entries] == ["29 days later"]
    stop(history, mailbox)


def test_keep_for_ever_never_prunes(
    tmp_path: Path, clock: Clock, mailbox: Mailbox
) -> None:
    """--history-days 0: nothing is deleted, however old."""
    history = start(str(tmp_path / "chatd.sqlite3"), clock, mailbox, days=0)
    history.record("#lobby", Kind.MESSAGE, "alice", "old")
    clock.advance(400 * DAY)
    entries = read(history, mailbox, "#lobby")
    assert isinstance(entries, list) and len(entries) == 1
    assert not clock.getDelayedCalls()
    stop(history, mailbox)


def test_memory_database_works_through_the_thread(
    clock: Clock, mailbox: Mailbox
) -> None:
    """--database :memory:: kept while the daemon runs, through the same thread."""
    history = start(":memory:", clock, mailbox)
    history.record("#lobby", Kind.MESSAGE, "alice", "volatile")
    entries = read(history, mailbox, "#lobby")
    assert isinstance(entries, list) and entries[0].text == "volatile"
    stop(history, mailbox)


def test_after_close_nothing_is_recorded_or_read(
    tmp_path: Path, clock: Clock, mailbox: Mailbox
) -> None:
    """A closed store still stamps (the chat goes on), keeps nothing, reads nothing."""
    history = start(str(tmp_path / "chatd.sqlite3"), clock, mailbox)
    stop(history, mailbox)
    msg_id, _ = history.record("#lobby", Kind.MESSAGE, "alice", "late")
    assert msg_id > 0 and not clock.getDelayedCalls()
    failed: list[Failure] = []
    history.read("#lobby", 20).addErrback(failed.append)
    assert failed and failed[0].check(HistoryUnavailable)


def test_select_and_latest_go_through_the_thread_in_order(
    history: SQLiteHistory, mailbox: Mailbox
) -> None:
    """select and latest see what was recorded before them, as read does."""
    first, _ = history.record("#lobby", Kind.MESSAGE, "alice", "one")
    history.record("#dev", Kind.ACTION, "bob", "two")
    history.record("#lobby", Kind.MESSAGE, "carol", "three")
    got: list[object] = []
    history.select("#lobby", Span(10, after=first)).addCallback(got.append)
    history.latest(["#lobby", "#dev", "#none"]).addCallback(got.append)
    history.record("#lobby", Kind.MESSAGE, "dave", "later")
    mailbox.run_until(lambda: len(got) == 2)
    selected, latest = got
    assert isinstance(selected, list) and isinstance(latest, dict)
    assert [entry.text for entry in selected] == ["three"]
    assert {room: entry.text for room, entry in latest.items()} == {
        "#lobby": "three",
        "#dev": "two",
    }


def test_select_fails_while_history_is_unavailable(
    history: SQLiteHistory, mailbox: Mailbox
) -> None:
    """With the store down, select fails at once with the reason."""
    history.reason = "the disk is full"
    failed: list[Failure] = []
    history.select("#lobby", Span(10)).addErrback(failed.append)
    assert failed and failed[0].check(HistoryUnavailable)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux thread nice")
def test_the_writer_thread_runs_nicer_than_the_reactor(
    history: SQLiteHistory, mailbox: Mailbox
) -> None:
    """The writer lowers its own priority, so that the reactor preempts it."""
    read(history, mailbox, "#lobby")  # the thread has started by its answer
    assert history._thread is not None and history._thread.native_id is not None
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = os.getpriority(os.PRIO_PROCESS, history._thread.native_id)
    assert theirs == min(19, mine + WRITER_NICENESS)


def test_record_at_keeps_the_id_given_and_record_carries_on_above_it(
    history: SQLiteHistory, mailbox: Mailbox
) -> None:
    """IHistory.record_at (a cluster's log gives the id): kept under that id and
    time, and the next record() gives a larger id than it."""
    given = int((NOW + 50) * 1_000_000)
    history.record_at("#dev", Kind.ACTION, "alice", "waves", given, NOW + 50)
    later, _ = history.record("#dev", Kind.MESSAGE, "bob", "hi")
    entries = read(history, mailbox, "#dev")
    assert isinstance(entries, list)
    assert [(e.id, e.time, e.kind, e.text) for e in entries] == [
        (given, int((NOW + 50) * 1000), Kind.ACTION, "waves"),
        (later, int(NOW * 1000), Kind.MESSAGE, "hi"),
    ]
    assert later == given + 1
