"""The history database alone: a temporary file and :memory:, no reactor."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from chatd.store.interface import (
    Entry,
    IHistory,
    Kind,
    Span,
    Stamps,
    UnknownId,
    id_at,
    millis,
)
from chatd.store.memory import MemoryHistory
from chatd.store.sqlite import (
    MEMORY,
    ROWS_PER_INSERT,
    SCHEMA_VERSION,
    HistoryDatabase,
    StoreError,
    explain,
)

DAY_MS = 86_400_000


@pytest.fixture(params=["file", "memory"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[HistoryDatabase]:
    """An open database, in a temporary file or in memory."""
    path = str(tmp_path / "chatd.sqlite3") if request.param == "file" else MEMORY
    opened = HistoryDatabase.open(path)
    yield opened
    opened.close()


def rows(room: str, first: int, count: int, time: int = 1000) -> list[tuple]:
    """count messages in room with ids from first, one a millisecond apart."""
    return [
        (first + n, room, time + n, "MSG", "alice", f"message {first + n}")
        for n in range(count)
    ]


def test_new_database_has_the_schema_version(database: HistoryDatabase) -> None:
    """A new database holds its schema version in a table, and no messages."""
    version = database.connection.execute("SELECT version FROM schema_version")
    assert version.fetchall() == [(SCHEMA_VERSION,)]
    assert database.last_id() == 0 and database.rooms() == set()
    assert database.read("#lobby", 20) == []


def test_read_gives_the_latest_oldest_first(database: HistoryDatabase) -> None:
    """read(room, n) is the room's n latest messages, oldest first, only that room."""
    database.append(rows("#lobby", 1, 10) + rows("#dev", 11, 3))
    latest = database.read("#lobby", 4)
    assert [entry.id for entry in latest] == [7, 8, 9, 10]
    assert latest[0] == Entry(7, 1006, Kind.MESSAGE, "alice", "message 7")
    assert [entry.id for entry in database.read("#dev", 20)] == [11, 12, 13]
    assert database.rooms() == {"#lobby", "#dev"} and database.last_id() == 13


def test_a_large_batch_spans_several_statements(database: HistoryDatabase) -> None:
    """More rows than one INSERT takes are all kept, in one transaction."""
    count = ROWS_PER_INSERT * 2 + 7
    database.append(rows("#lobby", 1, count))
    assert database.last_id() == count
    assert [entry.id for entry in database.read("#lobby", 3)] == [
        count - 2,
        count - 1,
        count,
    ]


def test_read_before_an_id(database: HistoryDatabase) -> None:
    """read(room, n, before) is the n messages before that id, oldest first."""
    database.append(rows("#lobby", 1, 10))
    assert [entry.id for entry in database.read("#lobby", 3, before=5)] == [2, 3, 4]
    assert database.read("#lobby", 3, before=1) == []


def test_an_id_of_another_room_is_unknown(database: HistoryDatabase) -> None:
    """before must be one of the room's own ids."""
    database.append(rows("#lobby", 1, 3) + rows("#dev", 4, 3))
    with pytest.raises(UnknownId):
        database.read("#lobby", 3, before=5)
    with pytest.raises(UnknownId):
        database.read("#lobby", 3, before=99)


def test_actions_are_kept_as_actions(database: HistoryDatabase) -> None:
    """kind comes back as it went in."""
    database.append([(1, "#lobby", 5, "ACTION", "bob", "waves")])
    assert database.read("#lobby", 1) == [Entry(1, 5, Kind.ACTION, "bob", "waves")]


def test_prune_deletes_older_rows_only(database: HistoryDatabase) -> None:
    """Retention: messages older than the cutoff go, a chunk at a time."""
    old = rows("#lobby", 1, 5, time=1 * DAY_MS)
    new = rows("#lobby", 6, 5, time=40 * DAY_MS)
    database.append(old + new)
    assert database.prune(30 * DAY_MS, limit=3) == 3
    assert database.prune(30 * DAY_MS, limit=3) == 2
    assert database.prune(30 * DAY_MS, limit=3) == 0
    assert [entry.id for entry in database.read("#lobby", 20)] == [6, 7, 8, 9, 10]


def test_a_failed_batch_writes_nothing(database: HistoryDatabase) -> None:
    """A batch is one transaction: a row that cannot go in takes the others back."""
    database.append(rows("#lobby", 1, 1))
    with pytest.raises(sqlite3.IntegrityError):
        database.append(rows("#lobby", 2, 1) + rows("#lobby", 1, 1))
    assert [entry.id for entry in database.read("#lobby", 20)] == [1]


def test_messages_survive_reopening(tmp_path: Path) -> None:
    """What was appended is there after close and open, and the last id with it."""
    path = str(tmp_path / "chatd.sqlite3")
    first = HistoryDatabase.open(path)
    first.append(rows("#lobby", 100, 3))
    first.close()
    again = HistoryDatabase.open(path)
    assert again.last_id() == 102 and again.rooms() == {"#lobby"}
    assert [entry.text for entry in again.read("#lobby", 20)] == [
        "message 100",
        "message 101",
        "message 102",
    ]
    again.close()


def test_file_is_created_for_its_owner_only_in_wal_mode(tmp_path: Path) -> None:
    """chatd.sqlite3 is created 0600, and so are the WAL files beside it."""
    path = tmp_path / "chatd.sqlite3"
    database = HistoryDatabase.open(str(path))
    database.append(rows("#lobby", 1, 1))
    mode = database.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    for name in ("chatd.sqlite3", "chatd.sqlite3-wal", "chatd.sqlite3-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    database.close()
    assert not (tmp_path / "chatd.sqlite3-wal").exists()  # folded in at close


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file from a newer chatd stops the start with a sentence, not a traceback."""
    path = tmp_path / "chatd.sqlite3"
    HistoryDatabase.open(str(path)).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = 99")
    connection.close()
    with pytest.raises(StoreError, match="schema version 99, from a newer chatd"):
        HistoryDatabase.open(str(path))


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    """A SQLite file without chatd's tables is not taken over."""
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE accounts (name TEXT)")
    connection.close()
    with pytest.raises(StoreError, match="not chatd's history"):
        HistoryDatabase.open(str(path))


def test_garbage_bytes_are_a_damaged_database(tmp_path: Path) -> None:
    """A corrupt file: one sentence saying what to do."""
    path = tmp_path / "chatd.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(StoreError) as refused:
        HistoryDatabase.open(str(path))
    text = str(refused.value)
    assert text.startswith(f"chatd: {path} is not a usable history database")
    assert "move it away" in text and "\n" not in text


def test_a_database_locked_by_another_connection_is_refused(tmp_path: Path) -> None:
    """Another writer holding the lock: refused after a short wait, with why."""
    path = tmp_path / "chatd.sqlite3"
    HistoryDatabase.open(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="is locked by another process"):
            HistoryDatabase.open(str(path), busy=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_missing_directory_is_explained(tmp_path: Path) -> None:
    """A --database in a directory that does not exist says so."""
    path = tmp_path / "nowhere" / "chatd.sqlite3"
    with pytest.raises(StoreError, match="No such file or directory"):
        HistoryDatabase.open(str(path))


def test_a_full_database_fails_writes_with_a_reason(database: HistoryDatabase) -> None:
    """A full disk (here: the page limit) fails the batch; explain says so."""
    database.connection.execute("PRAGMA max_page_count = 1")
    big = [(n, "#lobby", n, "MSG", "alice", "x" * 2000) for n in range(1, 50)]
    with pytest.raises(sqlite3.Error) as failed:
        database.append(big)
    assert explain(failed.value) == "the disk is full"


def test_read_only_connection_is_explained(database: HistoryDatabase) -> None:
    """A database that became read-only fails writes with that reason."""
    database.connection.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.Error) as failed:
        database.append(rows("#lobby", 1, 1))
    assert "read-only" in explain(failed.value)


def test_stamps_grow_and_never_repeat() -> None:
    """Ids are microseconds, bumped past the last one when the clock stalls or
    steps back; started from the highest id kept, they never repeat."""
    stamps = Stamps()
    assert stamps.next(1.0) == 1_000_000
    assert stamps.next(1.0) == 1_000_001
    assert stamps.next(0.5) == 1_000_002  # the clock stepped back
    assert stamps.next(2.0) == 2_000_000
    assert Stamps(last=5_000_000).next(1.0) == 5_000_001


def test_memory_history_is_the_same_contract(clock: Clock) -> None:
    """The fake keeps, reads and refuses like the real store."""
    history = MemoryHistory(clock)
    assert verifyObject(IHistory, history)
    clock.advance(10)
    first, when = history.record("#lobby", Kind.MESSAGE, "alice", "one")
    history.record("#lobby", Kind.ACTION, "alice", "two")
    history.record("#dev", Kind.MESSAGE, "bob", "elsewhere")
    assert when == 10.0 and history.has_history("#lobby")
    got: list[list[Entry]] = []
    history.read("#lobby", 20).addCallback(got.append)
    assert [(e.kind, e.text, e.time) for e in got[0]] == [
        (Kind.MESSAGE, "one", 10_000),
        (Kind.ACTION, "two", 10_000),
    ]
    failed: list[object] = []
    history.read("#dev", 20, before=first).addErrback(failed.append)
    assert failed and not history.has_history("#nowhere")


# -- spans of ids and the latest of each room (IRC's CHATHISTORY) ----------------


def ids(entries: list[Entry]) -> list[int]:
    return [entry.id for entry in entries]


def test_select_takes_the_newest_or_oldest_of_a_range(
    database: HistoryDatabase,
) -> None:
    """select(room, Span): ids strictly between after and before; the newest or
    the oldest limit of them, always oldest first; other rooms never."""
    database.append(rows("#lobby", 1, 10) + rows("#dev", 11, 3))
    assert ids(database.select("#lobby", Span(3))) == [8, 9, 10]
    assert ids(database.select("#lobby", Span(3, newest=False))) == [1, 2, 3]
    assert ids(database.select("#lobby", Span(3, before=6))) == [3, 4, 5]
    assert ids(database.select("#lobby", Span(3, after=6, newest=False))) == [7, 8, 9]
    assert ids(database.select("#lobby", Span(20, after=2, before=6))) == [3, 4, 5]
    assert ids(database.select("#lobby", Span(20, after=5, before=6))) == []
    assert ids(database.select("#lobby", Span(20, after=9, before=3))) == []
    assert ids(database.select("#dev", Span(20, after=0))) == [11, 12, 13]
    assert database.select("#nowhere", Span(20)) == []


def test_select_bounds_need_not_be_ids_of_the_room(database: HistoryDatabase) -> None:
    """A bound is a position: an id of another room, or none at all, works."""
    database.append(rows("#lobby", 10, 3) + rows("#dev", 20, 3) + rows("#lobby", 30, 3))
    assert ids(database.select("#lobby", Span(20, after=21))) == [30, 31, 32]
    assert ids(database.select("#lobby", Span(2, before=25))) == [11, 12]


def test_latest_of_each_room(database: HistoryDatabase) -> None:
    """latest(rooms): the last message of each room that has one."""
    database.append(rows("#lobby", 1, 4) + rows("#dev", 5, 2))
    found = database.latest(["#lobby", "#dev", "#empty"])
    assert {room: entry.id for room, entry in found.items()} == {"#lobby": 4, "#dev": 6}
    assert found["#dev"] == Entry(6, 1001, Kind.MESSAGE, "alice", "message 6")


def test_id_at_splits_history_at_a_millisecond() -> None:
    """Ids are receive times in microseconds: a millisecond's messages lie in
    [id_at(ms), id_at(ms + 1))."""
    stamps = Stamps()
    first = stamps.next(1.0005)  # 1000 ms and a half
    assert id_at(1000) <= first < id_at(1001)


def test_memory_history_selects_like_the_database(
    clock: Clock, database: HistoryDatabase
) -> None:
    """The fake answers select and latest as SQLite does, on the same messages."""
    history = MemoryHistory(clock)
    for n in range(10):
        clock.advance(0.001)
        room = "#dev" if n % 3 == 0 else "#lobby"
        msg_id, when = history.record(room, Kind.MESSAGE, "alice", f"m{n}")
        database.append([(msg_id, room, millis(when), "MSG", "alice", f"m{n}")])
    every = history.rooms["#lobby"] + history.rooms["#dev"]
    marks = sorted(entry.id for entry in every)
    spans = [Span(3), Span(4, newest=False), Span(20, after=marks[2], before=marks[8])]
    spans += [Span(2, before=marks[5]), Span(2, after=marks[5], newest=False)]
    for span in spans:
        for room in ("#lobby", "#dev", "#none"):
            got: list[list[Entry]] = []
            history.select(room, span).addCallback(got.append)
            assert got == [database.select(room, span)], (room, span)
    latest: list[dict[str, Entry]] = []
    history.latest(["#lobby", "#dev", "#none"]).addCallback(latest.append)
    assert latest == [database.latest(["#lobby", "#dev", "#none"])]


def test_memory_history_records_at_the_id_given(clock: Clock) -> None:
    """record_at and record_private_at (IHistory) keep the id and time given;
    record() then carries on above it."""
    history = MemoryHistory(clock)
    history.record_at("#dev", Kind.MESSAGE, "alice", "hi", 7_000_123, 7.0)
    history.record_private_at(
        "alice", "bob", Kind.MESSAGE, "alice", "psst", 8_000_000, 8.0
    )
    assert history.record("#dev", Kind.MESSAGE, "bob", "next")[0] == 8_000_001
    got: list[list[Entry]] = []
    history.read("#dev", 20).addCallback(got.append)
    history.read_private("bob", "alice", 20).addCallback(got.append)
    assert [(e.id, e.time, e.text) for e in got[0]] == [
        (7_000_123, 7_000, "hi"),
        (8_000_001, 0, "next"),
    ]
    assert [(e.id, e.time, e.text) for e in got[1]] == [(8_000_000, 8_000, "psst")]
