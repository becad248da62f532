"""Accounts and registered rooms in the history's SQLite file (schema version 2).

The writer thread's answers come back through a Mailbox, so every step is
the test's; the database is a real file in a temporary directory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from helpers import Mailbox
from twisted.internet.task import Clock

from chatd.model.room_rules import RoomRecord
from chatd.model.server_bans import ServerBan
from chatd.store.accounts import (
    AccountRecord,
    SQLiteAccounts,
    room_from_json,
    room_to_json,
)
from chatd.store.sqlite import SCHEMA_VERSION, HistoryDatabase
from chatd.store.writer import SQLiteHistory

# The schema of version 1 (before accounts), as an older chatd made it.
VERSION_1 = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT NOT NULL,
        time INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('MSG', 'ACTION')),
        nick TEXT NOT NULL, text TEXT NOT NULL)""",
    "CREATE INDEX messages_by_room ON messages (room, id)",
    "CREATE INDEX messages_by_time ON messages (time)",
    "CREATE TABLE rooms (room TEXT PRIMARY KEY) WITHOUT ROWID",
    "INSERT INTO messages VALUES (7, '#dev', 1000, 'MSG', 'alice', 'kept')",
    "INSERT INTO rooms VALUES ('#dev')",
)


def opened(path: Path, mailbox: Mailbox) -> tuple[SQLiteHistory, SQLiteAccounts]:
    history = SQLiteHistory(str(path), Clock(), mailbox, keep_days=0)
    accounts = SQLiteAccounts(history)
    history.open()
    return history, accounts


def closed(history: SQLiteHistory, mailbox: Mailbox) -> None:
    done = history.close()
    finished: list[object] = []
    done.addBoth(finished.append)
    mailbox.run_until(lambda: bool(finished))


def test_a_version_1_file_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    """An older chatd's file gains the accounts tables (and, version 3, private
    messages'; 4 server bans'; 5 authors; 6 the staging table; 7 read markers;
    8 the search index); its messages stay."""
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path)
    for statement in VERSION_1:
        connection.execute(statement)
    connection.commit()
    connection.close()
    database = HistoryDatabase.open(str(path))
    version = database.connection.execute("SELECT version FROM schema_version")
    assert version.fetchone() == (SCHEMA_VERSION,) == (8,)
    assert database.read("#dev", 10)[0].text == "kept"
    tables = {
        row[0]
        for row in database.connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"accounts", "registered_rooms", "private_messages", "server_bans"} <= tables
    database.close()


def test_server_bans_are_written_behind_and_read_at_open(tmp_path: Path) -> None:
    """A server ban saved, one lifted: the next open reads the one kept, with
    its reason, setter, time and expiry."""
    path = tmp_path / "chatd.sqlite3"
    mailbox = Mailbox()
    history, store = opened(path, mailbox)
    kept = ServerBan("*@198.51.100.0/24", "open proxy", "root", 10.5, 99.0)
    store.server_bans[kept.key] = kept  # the model's dictionary is the store's
    store.save_server_ban(kept.key, kept)
    gone = ServerBan("troll", "spam", "root", 11.0)
    store.save_server_ban(gone.key, gone)
    store.save_server_ban(gone.key, None)
    closed(history, mailbox)
    history, store = opened(path, mailbox)
    assert list(store.server_bans) == ["address:198.51.100.0/24"]
    again = store.server_bans["address:198.51.100.0/24"]
    assert (again.mask, again.reason, again.by, again.time, again.expires) == (
        "*@198.51.100.0/24",
        "open proxy",
        "root",
        10.5,
        99.0,
    )
    closed(history, mailbox)


def test_accounts_and_rooms_are_written_behind_and_read_at_open(
    tmp_path: Path,
) -> None:
    """Saved through the writer thread, in order; read back at the next open."""
    path = tmp_path / "chatd.sqlite3"
    mailbox = Mailbox()
    history, store = opened(path, mailbox)
    record = AccountRecord("Alice", "$argon2id$v=19$fake", 1234)
    store.save_account("alice", record)
    store.save_account("bob", AccountRecord("bob", "$argon2id$bob", 5))
    store.delete_account("bob")
    room = RoomRecord("#Dev", "alice", {"alice", "carol"}, {"n", "t"}, "k3y", 5)
    room.topic, room.topic_by, room.topic_time = "hello", "alice", 99.5
    room.bans = [("mallory", "alice", 12.0)]
    store.save_room("#dev", room)
    store.save_room("#gone", RoomRecord("#gone", "alice"))
    store.save_room("#gone", None)
    closed(history, mailbox)
    history, store = opened(path, mailbox)
    assert store.accounts == {"alice": record}
    assert set(store.rooms) == {"#dev"}
    again = store.rooms["#dev"]
    assert room_to_json(again) == room_to_json(room)
    assert again.founder == "alice" and again.operators == {"alice", "carol"}
    closed(history, mailbox)


def test_a_room_record_always_lists_its_founder() -> None:
    """Read back from JSON that lacks it, the founder is among the operators."""
    record = room_from_json("alice", '{"name": "#dev", "operators": []}')
    assert record.operators == {"alice"} and record.flags == {"n"}


def test_what_is_saved_while_the_file_is_read_is_kept(tmp_path: Path) -> None:
    """What runs once the store is read (always-on users coming back, which
    join their rooms and so save their record) may save at once: it is
    written when the thread starts, not refused as "the database is not open"
    (the log said so at every daemon start with an always-on user)."""
    path = tmp_path / "chatd.sqlite3"
    mailbox = Mailbox()
    history = SQLiteHistory(str(path), Clock(), mailbox, keep_days=0)
    store = SQLiteAccounts(history)
    record = AccountRecord("alice", "$argon2id$v=19$fake", 1234)
    store.when_loaded(lambda: store.save_account("alice", record))
    history.open()
    closed(history, mailbox)
    history, store = opened(path, mailbox)
    assert store.accounts == {"alice": record}
    closed(history, mailbox)
