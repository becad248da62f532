"""Accounts, registered rooms and server bans, kept in the history's database.

Both are few and small, so the daemon holds them all in memory (read once
as the database opens) and writes every change behind, through the history's
writer thread: the reactor never waits for the disk, and a change is on disk
within milliseconds, in the order it was made.

AccountStore (chatd.store.interface, beside IHistory: the model imports no
store) is what chatd.model.accounts asks of a store; MemoryAccounts keeps
them only while the daemon runs (--no-history: there is no database), and
SQLiteAccounts keeps them in the file. A cluster keeps its accounts in Redis
(chatd.store.redis_accounts): there the dict is a cache, so whatever grants
a right (adding an account, checking a password, changing or dropping one)
goes through the asynchronous methods, which ask the one record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.model.room_rules import RoomRecord
from chatd.model.server_bans import ServerBan
from chatd.store.interface import (
    AccountRecord,
    AlwaysOnRecord,
    Marker,
    keep_marker,
    same_account,
)
from chatd.store.sqlite import HistoryDatabase


class LocalAccounts:
    """The asynchronous AccountStore methods for a store whose dict is the truth."""

    accounts: dict[str, AccountRecord]

    def save_account(self, key: str, record: AccountRecord) -> None:
        raise NotImplementedError

    def delete_account(self, key: str) -> None:
        raise NotImplementedError

    def fetch_account(self, key: str) -> defer.Deferred[AccountRecord | None]:
        return defer.succeed(self.accounts.get(key))

    def add_account(self, key: str, record: AccountRecord) -> defer.Deferred[bool]:
        if key in self.accounts:
            return defer.succeed(False)
        self.save_account(key, record)
        return defer.succeed(True)

    def replace_account(
        self, key: str, old: AccountRecord, new: AccountRecord | None
    ) -> defer.Deferred[bool]:
        if not same_account(self.accounts.get(key), old):
            return defer.succeed(False)
        if new is None:
            self.delete_account(key)
        else:
            self.save_account(key, new)
        return defer.succeed(True)


class MemoryAccounts(LocalAccounts):
    """An AccountStore in memory only."""

    durable = False

    def __init__(self) -> None:
        self.accounts: dict[str, AccountRecord] = {}
        self.rooms: dict[str, RoomRecord] = {}
        self.server_bans: dict[str, ServerBan] = {}
        self.always_on: dict[str, AlwaysOnRecord] = {}

        self.markers: dict[str, dict[str, Marker]] = {}

    def save_always_on(self, key: str, record: AlwaysOnRecord | None) -> None:
        keep_always_on(self.always_on, key, record)

    def when_loaded(self, call: Callable[[], None]) -> None:
        call()  # nothing to read

    def save_marker(self, account: str, target: str, marker: Marker | None) -> None:
        keep_marker(self.markers, account, target, marker)

    def forget_markers(self, account: str) -> None:
        self.markers.pop(account, None)

    def save_account(self, key: str, record: AccountRecord) -> None:
        self.accounts[key] = record

    def delete_account(self, key: str) -> None:
        self.accounts.pop(key, None)

    def save_room(self, key: str, record: RoomRecord | None) -> None:
        if record is None:
            self.rooms.pop(key, None)
        else:
            self.rooms[key] = record

    def save_server_ban(self, key: str, ban: ServerBan | None) -> None:
        """Nothing to do: the model's dictionary is this store's."""


def keep_always_on(
    kept: dict[str, AlwaysOnRecord], key: str, record: AlwaysOnRecord | None
) -> None:
    """Put record (None: nothing) as account key's always-on user in kept."""
    if record is None:
        kept.pop(key, None)
    else:
        kept[key] = record


# -- the database side (the writer thread, or the start) ----------------------------

# Always-on users (docs/protocol.md, Always-on): a table of its own, made
# when missing, so that the schema's version need not change for it.
ALWAYS_ON_TABLE = """CREATE TABLE IF NOT EXISTS always_on (
    account TEXT PRIMARY KEY,  -- folded account name
    record TEXT NOT NULL       -- JSON: nick, account, host, rooms
) WITHOUT ROWID"""


def always_on_to_json(record: AlwaysOnRecord) -> str:
    """An always-on user as the JSON kept in always_on.record."""
    return json.dumps(
        {
            "nick": record.nick,
            "account": record.account,
            "host": record.host,
            "rooms": record.rooms,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def always_on_from_json(text: str) -> AlwaysOnRecord:
    """The AlwaysOnRecord kept as text (always_on_to_json)."""
    data = json.loads(text)
    return AlwaysOnRecord(
        str(data["nick"]),
        str(data["account"]),
        str(data.get("host", "")),
        [str(room) for room in data.get("rooms", [])],
    )


def room_to_json(record: RoomRecord) -> str:
    """A registered room's state as the JSON kept in registered_rooms.record."""
    return json.dumps(
        {
            "name": record.name,
            "operators": sorted(record.operators),
            "flags": "".join(sorted(record.flags)),
            "key": record.key,
            "limit": record.limit,
            "topic": record.topic,
            "topic_by": record.topic_by,
            "topic_time": record.topic_time,
            "bans": [list(ban) for ban in record.bans],
            "created": record.created,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def room_from_json(founder: str, text: str) -> RoomRecord:
    """The RoomRecord kept as text (room_to_json) for founder."""
    data = json.loads(text)
    return RoomRecord(
        name=str(data["name"]),
        founder=founder,
        operators={str(name) for name in data.get("operators", [])} | {founder},
        flags=set(str(data.get("flags", "n"))),
        key=str(data.get("key", "")),
        limit=int(data.get("limit", 0)),
        topic=str(data.get("topic", "")),
        topic_by=str(data.get("topic_by", "")),
        topic_time=float(data.get("topic_time", 0.0)),
        bans=[(str(m), str(b), float(t)) for m, b, t in data.get("bans", [])],
        created=float(data.get("created", 0.0)),
    )


def load_markers(database: HistoryDatabase) -> dict[str, dict[str, Marker]]:
    """Read every account's read markers."""
    markers: dict[str, dict[str, Marker]] = {}
    rows = database.connection.execute(
        "SELECT account, target, id, time, name FROM read_markers"
    )
    for account, target, msg_id, time, name in rows:
        markers.setdefault(account, {})[target] = Marker(msg_id, time, name)
    return markers


def load(
    database: HistoryDatabase,
) -> tuple[dict[str, AccountRecord], dict[str, RoomRecord]]:
    """Read every account and registered room (server bans: load_server_bans)."""
    execute = database.connection.execute
    accounts = {
        row[0]: AccountRecord(row[1], row[2], row[3])
        for row in execute("SELECT account, name, hash, created FROM accounts")
    }
    rooms = {
        row[0]: room_from_json(row[1], row[2])
        for row in execute("SELECT room, founder, record FROM registered_rooms")
    }
    return accounts, rooms


def load_server_bans(database: HistoryDatabase) -> dict[str, ServerBan]:
    """Read every server ban (schema v4), by its key."""
    bans = [
        ServerBan(mask, reason, by, time, expires)
        for mask, reason, by, time, expires in database.connection.execute(
            "SELECT mask, reason, by, time, expires FROM server_bans"
        )
    ]
    return {ban.key: ban for ban in bans}


def _write(database: HistoryDatabase, statement: str, args: tuple[object, ...]) -> None:
    execute = database.connection.execute
    execute("BEGIN IMMEDIATE")
    try:
        execute(statement, args)
        execute("COMMIT")
    except BaseException:
        if database.connection.in_transaction:
            execute("ROLLBACK")
        raise


class Submitter(Protocol):
    """What runs work on the database's thread (chatd.store.writer.SQLiteHistory)."""

    openers: list[Callable[[HistoryDatabase], None]]

    def submit(
        self, work: Callable[[HistoryDatabase], object]
    ) -> defer.Deferred[object]:
        """Run work(database) on the thread, in turn."""


class SQLiteAccounts(LocalAccounts):
    """An AccountStore in the history's SQLite file, written by its thread."""

    durable = True
    log = Logger()

    def __init__(self, writer: Submitter) -> None:
        self.writer = writer
        self.accounts: dict[str, AccountRecord] = {}
        self.rooms: dict[str, RoomRecord] = {}
        self.server_bans: dict[str, ServerBan] = {}
        self.always_on: dict[str, AlwaysOnRecord] = {}
        self.loaded = False
        self._when_loaded: list[Callable[[], None]] = []
        self.markers: dict[str, dict[str, Marker]] = {}
        writer.openers.append(self._opened)

    def _opened(self, database: HistoryDatabase) -> None:
        accounts, rooms = load(database)
        bans = load_server_bans(database)
        self.accounts.update(accounts)  # the same dicts the chat already holds
        self.rooms.update(rooms)
        self.server_bans.update(bans)
        execute = database.connection.execute
        execute(ALWAYS_ON_TABLE)
        self.always_on.update(
            (row[0], always_on_from_json(row[1]))
            for row in execute("SELECT account, record FROM always_on")
        )
        self.markers.update(load_markers(database))
        self.log.info(
            "{accounts} accounts, {rooms} registered rooms and {bans} server bans read",
            accounts=len(accounts),
            rooms=len(rooms),
            bans=len(bans),
        )
        if self.always_on:
            self.log.info("{count} always-on users read", count=len(self.always_on))
        self.loaded = True
        calls, self._when_loaded = self._when_loaded, []
        for call in calls:
            call()

    def when_loaded(self, call: Callable[[], None]) -> None:
        if self.loaded:
            call()
        else:
            self._when_loaded.append(call)

    def save_always_on(self, key: str, record: AlwaysOnRecord | None) -> None:
        keep_always_on(self.always_on, key, record)
        if record is None:
            self._submit(
                "an always-on user's end",
                "DELETE FROM always_on WHERE account = ?",
                key,
            )
            return
        self._submit(
            "an always-on user",
            "INSERT OR REPLACE INTO always_on (account, record) VALUES (?, ?)",
            key,
            always_on_to_json(record),
        )

    def _submit(self, what: str, statement: str, *args: object) -> None:
        def write(database: HistoryDatabase) -> None:
            _write(database, statement, args)

        def failed(failure: Failure) -> None:
            # Never the arguments: they hold a password hash.
            self.log.error(
                "could not keep {what}: {reason}",
                what=what,
                reason=failure.getErrorMessage(),
            )

        self.writer.submit(write).addErrback(failed)

    def save_account(self, key: str, record: AccountRecord) -> None:
        self.accounts[key] = record
        self._submit(
            "an account",
            "INSERT OR REPLACE INTO accounts (account, name, hash, created) "
            "VALUES (?, ?, ?, ?)",
            key,
            record.name,
            record.hash,
            record.created,
        )

    def delete_account(self, key: str) -> None:
        self.accounts.pop(key, None)
        self._submit(
            "an account's removal", "DELETE FROM accounts WHERE account = ?", key
        )

    def save_room(self, key: str, record: RoomRecord | None) -> None:
        if record is None:
            self.rooms.pop(key, None)
            self._submit(
                "a room's unregistration",
                "DELETE FROM registered_rooms WHERE room = ?",
                key,
            )
            return
        self.rooms[key] = record
        self._submit(
            "a registered room",
            "INSERT OR REPLACE INTO registered_rooms (room, founder, record) "
            "VALUES (?, ?, ?)",
            key,
            record.founder,
            room_to_json(record),
        )

    def save_server_ban(self, key: str, ban: ServerBan | None) -> None:
        if ban is None:
            self._submit(
                "a server ban's lifting", "DELETE FROM server_bans WHERE key = ?", key
            )
            return
        self._submit(
            "a server ban",
            "INSERT OR REPLACE INTO server_bans (key, mask, reason, by, time, expires) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            key,
            ban.mask,
            ban.reason,
            ban.by,
            ban.time,
            ban.expires,
        )

    def save_marker(self, account: str, target: str, marker: Marker | None) -> None:
        if not keep_marker(self.markers, account, target, marker):
            return
        if marker is None:
            self._submit(
                "a read marker's removal",
                "DELETE FROM read_markers WHERE account = ? AND target = ?",
                account,
                target,
            )
            return
        # Forward only on disk too: a later write of an older id changes nothing.
        self._submit(
            "a read marker",
            "INSERT INTO read_markers (account, target, id, time, name) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, target) DO UPDATE SET "
            "id = excluded.id, time = excluded.time, name = excluded.name "
            "WHERE excluded.id > read_markers.id",
            account,
            target,
            marker.id,
            marker.time,
            marker.name,
        )

    def forget_markers(self, account: str) -> None:
        self.markers.pop(account, None)
        self._submit(
            "an account's read markers' removal",
            "DELETE FROM read_markers WHERE account = ?",
            account,
        )
