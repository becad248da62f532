"""Rooms' messages staged, then settled into their table (chatd.store.sqlite).

The writer thread stages rooms' messages in a table without an index and
settles them about once a second, room by room; these tests check that
nothing is lost or reordered on the way, that the bound and the list of rooms
follow, and that what a crash left staged is settled at the next open.
"""

from __future__ import annotations

import queue
import sqlite3
from pathlib import Path

from chatd.store.interface import Bound
from chatd.store.sqlite import HistoryDatabase, RoomRow
from chatd.store.writer import SETTLE_EVERY, SQLiteHistory


def rows(room: str, first: int, count: int) -> list[RoomRow]:
    return [
        (first + n, room, 1000 + first + n, "MSG", "alice", f"{room} {first + n}")
        for n in range(count)
    ]


def texts(database: HistoryDatabase, room: str) -> list[str]:
    return [entry.text for entry in database.read(room, 100)]


def count(database: HistoryDatabase, table: str) -> int:
    return int(
        database.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    )


def test_staged_messages_reach_their_table_when_settled(tmp_path: Path) -> None:
    database = HistoryDatabase.open(str(tmp_path / "h.sqlite3"))
    database.staging = True
    database.append(rows("#a", 1, 3) + rows("#b", 10, 2))
    database.append(rows("#a", 20, 1))
    assert count(database, "messages") == 0
    assert count(database, "staged_messages") == database.staged == 6
    database.settle()
    assert database.staged == 0 and count(database, "staged_messages") == 0
    assert texts(database, "#a") == ["#a 1", "#a 2", "#a 3", "#a 20"]
    assert texts(database, "#b") == ["#b 10", "#b 11"]
    assert database.rooms() == {"#a", "#b"}
    database.settle()  # nothing staged: nothing happens
    assert count(database, "messages") == 6
    database.close()


def test_the_room_bound_is_kept_when_settling(tmp_path: Path) -> None:
    database = HistoryDatabase.open(str(tmp_path / "h.sqlite3"), bound=Bound(room=3))
    database.staging = True
    database.append(rows("#a", 1, 5))
    database.settle()
    assert texts(database, "#a") == ["#a 3", "#a 4", "#a 5"]
    assert database.deleted_over == 2
    database.close()


def test_what_a_crash_left_staged_is_settled_at_the_next_open(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite3")
    database = HistoryDatabase.open(path)
    database.staging = True
    database.append(rows("#a", 1, 2))
    database.connection.close()  # no settle: as a kill -9 would leave it
    again = HistoryDatabase.open(path)
    assert texts(again, "#a") == ["#a 1", "#a 2"]
    assert count(again, "staged_messages") == 0
    assert again.last_id() == 2
    again.close()
    plain = sqlite3.connect(path)
    assert plain.execute("SELECT count(*) FROM messages").fetchone() == (2,)
    plain.close()


def test_private_messages_are_not_staged(tmp_path: Path) -> None:
    database = HistoryDatabase.open(str(tmp_path / "h.sqlite3"))
    database.staging = True
    database.append([(5, "alice", "bob", 1005, "MSG", "alice", "hi")])
    assert database.staged == 0
    assert [e.text for e in database.read_private("alice", "bob", 10)] == ["hi"]
    database.close()


class Jobs:
    """The writer's queue, as _next_job uses it: what get was asked to wait."""

    def __init__(self, *jobs: object) -> None:
        self.jobs = list(jobs)
        self.waits: list[float | None] = []

    def get(self, timeout: float | None = None) -> object:
        self.waits.append(timeout)
        if not self.jobs:
            raise queue.Empty
        return self.jobs.pop(0)


def writer_with(jobs: Jobs) -> SQLiteHistory:
    writer = SQLiteHistory.__new__(SQLiteHistory)
    writer._jobs = jobs  # type: ignore[assignment]
    writer._down = False
    writer._over_noted = 0.0
    return writer


def test_the_writer_settles_what_waited_long_enough_before_the_next_job(
    tmp_path: Path,
) -> None:
    database = HistoryDatabase.open(str(tmp_path / "h.sqlite3"))
    database.staging = True
    database.append(rows("#a", 1, 2))
    database.staged_since -= SETTLE_EVERY  # staged a second ago
    jobs = Jobs("next")
    assert writer_with(jobs)._next_job(database) == "next"
    assert database.staged == 0 and texts(database, "#a") == ["#a 1", "#a 2"]
    assert jobs.waits == [None]  # nothing left staged: it waits for a job
    database.close()


def test_the_writer_waits_for_a_job_no_longer_than_the_settle_time(
    tmp_path: Path,
) -> None:
    database = HistoryDatabase.open(str(tmp_path / "h.sqlite3"))
    database.staging = True
    database.append(rows("#a", 1, 2))
    database.staged_since -= SETTLE_EVERY / 2  # staged half a settle time ago
    waits: list[float | None] = []

    class Quiet(Jobs):
        """No job comes while messages are staged; the wait passes in full."""

        def get(self, timeout: float | None = None) -> object:
            waits.append(timeout)
            if timeout is not None:
                assert database.staged  # waiting for a job with messages staged
                database.staged_since -= timeout  # the time waited
                raise queue.Empty
            return "after"

    assert writer_with(Quiet())._next_job(database) == "after"
    assert database.staged == 0 and texts(database, "#a") == ["#a 1", "#a 2"]
    first = waits[0]
    assert first is not None and 0 < first <= SETTLE_EVERY / 2
    assert waits[-1] is None
    database.close()
