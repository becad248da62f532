"""The bound on history (Bound): per room, per conversation and in all, oldest first.

docs/running.md, How much history: a room (and a private conversation) keeps
at most --history-room-max messages and the SQLite history at most
--history-total-max in all; past that the oldest are deleted as new ones are
written. Each store is flooded past a small bound and must hold the bound,
keep the newest, and answer a `before` that was deleted as after retention
(UnknownId: ERR bad-args on the line door). The Redis store's own test is in
test_redis_history.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import NOW, Mailbox, connect, lines
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from chatd.config import HISTORY_ROOM_MAX, HISTORY_TOTAL_MAX, ServerConfig
from chatd.factory import ChatFactory
from chatd.store.interface import Bound, Entry, Kind, Span, UnknownId
from chatd.store.memory import MemoryHistory
from chatd.store.sqlite import MEMORY, HistoryDatabase, PrivateRow, RoomRow
from chatd.store.writer import BATCH_DELAY, SQLiteHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
BASE = int(NOW * 1_000_000)


def result(deferred: Deferred[list[Entry]]) -> list[Entry]:
    found: list[list[Entry]] = []
    deferred.addCallback(found.append)
    assert found, "the store did not answer at once"
    return found[0]


def refusal(deferred: Deferred[list[Entry]]) -> BaseException:
    failed: list[Failure] = []
    deferred.addErrback(failed.append)
    assert failed, "the store did not refuse at once"
    return failed[0].value


def test_the_default_bound_is_the_documented_one() -> None:
    """10,000 messages a room, 1,000,000 in all, unless told otherwise."""
    assert Bound() == Bound(HISTORY_ROOM_MAX, HISTORY_TOTAL_MAX)
    assert (HISTORY_ROOM_MAX, HISTORY_TOTAL_MAX) == (10_000, 1_000_000)
    assert Bound(0, 0).over_room(10**9) == Bound(0, 0).over_total(10**9) == 0
    assert Bound(5, 7).over_room(9) == 4 and Bound(5, 7).over_total(9) == 2
    # Within a hundredth of itself: 10,000 a room deletes nothing up to 10,100,
    # then 101 at once; the total deletes 10,001 past 1,010,000.
    assert Bound().over_room(10_100) == 0 and Bound().over_room(10_101) == 101
    assert Bound().over_total(1_010_000) == 0
    assert Bound().over_total(1_010_001) == 10_001


# -- the memory store ------------------------------------------------------------


def test_memory_store_keeps_the_newest_of_a_room(clock: Clock) -> None:
    """200 messages into a room bounded at 50: the newest 50 stay, another room
    keeps its own, and a deleted id is an unknown `before`."""
    store = MemoryHistory(clock, bound=Bound(room=50, total=0))
    other, _ = store.record("#other", Kind.MESSAGE, "bob", "mine")
    ids = [store.record("#flood", Kind.MESSAGE, "m", str(n))[0] for n in range(200)]
    kept = result(store.read("#flood", 100))
    assert [e.text for e in kept] == [str(n) for n in range(150, 200)]
    assert [e.id for e in result(store.read("#other", 5))] == [other]
    assert [e.text for e in result(store.read("#flood", 2, before=ids[151]))] == ["150"]
    assert isinstance(refusal(store.read("#flood", 5, before=ids[10])), UnknownId)
    # CHATHISTORY's spans take any id: one below what is left answers nothing.
    assert result(store.select("#flood", Span(10, before=ids[10]))) == []
    assert len(result(store.select("#flood", Span(10, after=ids[10])))) == 10


def test_memory_store_bounds_a_conversation_and_the_total(clock: Clock) -> None:
    """A conversation is bounded as a room is; the total deletes the oldest of all,
    private ones included."""
    store = MemoryHistory(clock, bound=Bound(room=30, total=50))
    for n in range(40):
        store.record_private("alice", "bob", Kind.MESSAGE, "alice", str(n))
    assert [e.text for e in result(store.read_private("bob", "alice", 100))] == [
        str(n) for n in range(10, 40)
    ]
    for n in range(30):
        store.record("#dev", Kind.MESSAGE, "carol", str(n))
    assert store.total == 50
    private = result(store.read_private("alice", "bob", 100))
    assert [e.text for e in private] == [str(n) for n in range(20, 40)]
    assert len(result(store.read("#dev", 100))) == 30


# -- the database (what the writer thread calls) -------------------------------


def room_rows(first: int, count: int, room: str = "#flood") -> list[RoomRow]:
    """Rows n of first..first+count-1: said at BASE + n ms, so ids as Stamps
    gives them (the time in microseconds)."""
    return [
        (BASE + n * 1000, room, BASE // 1000 + n, "MSG", "m", f"{n}")
        for n in range(first, first + count)
    ]


def private_rows(first: int, count: int) -> list[PrivateRow]:
    return [
        (BASE + n * 1000, "alice", "bob", BASE // 1000 + n, "MSG", "alice", f"{n}")
        for n in range(first, first + count)
    ]


def count(database: HistoryDatabase, table: str = "messages") -> int:
    found = database.connection.execute(f"SELECT count(*) FROM {table}")
    return int(found.fetchone()[0])


@pytest.fixture
def database() -> Iterator[HistoryDatabase]:
    opened = HistoryDatabase.open(MEMORY, bound=Bound(room=100, total=0))
    yield opened
    opened.close()


def test_database_prunes_a_flooded_room_to_the_bound(database: HistoryDatabase) -> None:
    """2,000 messages into one room bounded at 100, in batches of 40 as the
    writer hands them: 100 rows stay, the newest; the quiet room is untouched."""
    database.append(room_rows(0, 1, "#quiet"))
    for first in range(1, 2001, 40):
        database.append(room_rows(first, 40))
    assert count(database) == 101
    kept = database.read("#flood", 1000)
    assert [e.text for e in kept] == [str(n) for n in range(1901, 2001)]
    assert [e.text for e in database.read("#quiet", 5)] == ["0"]
    with pytest.raises(UnknownId):
        database.read("#flood", 5, before=BASE + 1000 * 1000)
    assert database.select("#flood", Span(5, before=BASE + 1000 * 1000)) == []


def test_database_learns_a_rooms_count_from_the_file(tmp_path: Path) -> None:
    """A database written without a bound is brought to it by the next writes,
    at most BOUND_CHUNK rows each: counted from the file, not from zero."""
    path = str(tmp_path / "chatd.sqlite3")
    unbounded = HistoryDatabase.open(path, bound=Bound(0, 0))
    unbounded.append(room_rows(0, 300))
    unbounded.close()
    bounded = HistoryDatabase.open(path, bound=Bound(room=100, total=0))
    bounded.append(room_rows(300, 1))
    assert [e.text for e in bounded.read("#flood", 1000)][0] == "201"
    assert count(bounded) == 100
    bounded.close()


def test_database_bounds_a_conversation(database: HistoryDatabase) -> None:
    """A private conversation keeps its newest 100 as a room does."""
    for first in range(0, 500, 50):
        database.append(private_rows(first, 50))
    assert count(database, "private_messages") == 100
    assert database.read_private("bob", "alice", 1)[0].text == "499"
    assert database.read_private("alice", "bob", 1000)[0].text == "400"


def test_database_bounds_the_total_oldest_of_all_first() -> None:
    """With a total of 150, the oldest of rooms' and private messages go, and the
    counts kept for the rooms' bound follow (no room is deleted twice)."""
    database = HistoryDatabase.open(MEMORY, bound=Bound(room=100, total=150))
    database.append(room_rows(0, 60, "#a"))
    database.append(private_rows(60, 60))
    database.append(room_rows(120, 60, "#b"))
    assert count(database) + count(database, "private_messages") == 150
    assert [e.text for e in database.read("#a", 100)][0] == "30"
    database.append(room_rows(180, 100, "#a"))  # #a: 130 written since, bound 100
    texts = [e.text for e in database.read("#a", 1000)]
    assert len(texts) <= 100 and texts[-1] == "279"
    assert count(database) + count(database, "private_messages") == 150
    database.close()


def test_retention_and_a_dropped_account_keep_the_counts_right(
    database: HistoryDatabase,
) -> None:
    """Rows deleted by age, or with an account, are not counted again: the
    bound still keeps 100, not fewer."""
    database.append(room_rows(0, 100))
    assert database.prune(older_than=BASE // 1000 + 50, limit=1000) == 50
    database.append(room_rows(100, 60))
    assert len(database.read("#flood", 1000)) == 100
    database.append(private_rows(200, 10))
    assert database.forget_private("alice") == 10
    database.append(private_rows(300, 100))
    assert count(database, "private_messages") == 100


# -- the writer thread -----------------------------------------------------------


def test_the_writer_thread_keeps_the_bound(tmp_path: Path, clock: Clock) -> None:
    """SQLiteHistory hands its bound to the database: messages recorded past it
    are written, and the oldest deleted, in the thread."""
    mailbox = Mailbox()
    history = SQLiteHistory(
        str(tmp_path / "chatd.sqlite3"), clock, mailbox, bound=Bound(room=20, total=0)
    )
    history.open()
    try:
        for n in range(100):
            history.record("#flood", Kind.MESSAGE, "m", str(n))
            if n % 10 == 9:
                clock.advance(BATCH_DELAY)
        answer = history.read("#flood", 100)
        found: list[list[Entry]] = []
        answer.addCallback(found.append)
        with capturedLogs() as events:
            mailbox.run_until(lambda: bool(found))
        assert [e.text for e in found[0]] == [str(n) for n in range(80, 100)]
        # Said once as it begins (then at most hourly), not per write.
        said = [e for e in events if "past the bound" in e["log_format"]]
        assert len(said) == 1 and 10 <= said[0]["count"] <= 80
    finally:
        stopped = history.close()
        mailbox.run_until(lambda: stopped.called)


# -- what a client sees -----------------------------------------------------------


def test_a_pruned_before_is_refused_as_after_retention(clock: Clock) -> None:
    """/history before an id the bound deleted: ERR bad-args, as for retention;
    the page before the oldest kept is empty."""
    store = MemoryHistory(clock, bound=Bound(room=3, total=0))
    factory = ChatFactory(ServerConfig(flood_rate=0.0, backfill=0), clock, store)
    alice, out = connect(factory, "alice")
    first = store.record("#lobby", Kind.MESSAGE, "bob", "gone")[0]
    kept = [store.record("#lobby", Kind.MESSAGE, "bob", str(n))[0] for n in range(3)]
    out.clear()
    alice.dataReceived(f"/history before {first}\r\n".encode())
    alice.dataReceived(f"/history before {kept[0]}\r\n".encode())
    assert lines(out) == [
        f"ERR bad-args {first} is not a message id of #lobby",
        "ENDHISTORY #lobby 0",
    ]
