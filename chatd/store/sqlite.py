"""The history database itself: SQLite, synchronous, one connection.

Only the writer thread of chatd.store.writer calls this once the daemon runs
(opening it happens at start, before the reactor serves anyone). Every fault
is turned into a sentence: StoreError at start (with the path and what to
do), explain() while running (for the log and for users, without the path).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from chatd.store.interface import (
    DEFAULT_BOUND,
    Bound,
    Entry,
    Found,
    Kind,
    Search,
    Span,
    UnknownId,
    conversation,
)
from chatd.store.sqlite_search import SEARCH_MIGRATION, SEARCH_TABLES, SearchIndex

# The schema this chatd writes. A later release adds a step to MIGRATIONS
# (from version n to n + 1) and raises it; an older chatd refuses a newer file.
SCHEMA_VERSION = 4
# Version 2: accounts and registered rooms (chatd.store.accounts).
ACCOUNT_TABLES = (
    # account: the folded name that identifies it; name as registered; hash:
    # Argon2's encoded string (the parameters and salt are in it); created:
    # milliseconds since 1970 UTC.
    """CREATE TABLE accounts (
        account TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # room: folded; founder: a folded account name; record: the room's kept
    # state (operators, modes, key, limit, topic, bans) as JSON.
    """CREATE TABLE registered_rooms (
        room TEXT PRIMARY KEY,
        founder TEXT NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID""",
)
# Version 3: private messages with at least one identified side
# (docs/protocol.md, Private history), kept apart from rooms' so that no room
# query can reach them. low and high: the two parties in order (an account's
# folded name, or "~" and the folded nickname of a side not identified: see
# chatd.store.interface.conversation), so that a conversation is one pair
# whoever writes; sender: the writer's account as registered, or its nickname
# at the time. id from the same sequence as messages' ids; time as theirs.
PRIVATE_TABLES = (
    """CREATE TABLE private_messages (
        id INTEGER PRIMARY KEY,
        low TEXT NOT NULL,
        high TEXT NOT NULL,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('MSG', 'ACTION')),
        sender TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX private_by_low ON private_messages (low, high, id)",
    "CREATE INDEX private_by_high ON private_messages (high, low, id)",
    "CREATE INDEX private_by_time ON private_messages (time)",
)
# Version 4: the search index (chatd.store.sqlite_search: FTS5 tables, their
# queue and triggers); a file of version 3 is indexed as it migrates.
SCHEMA = (
    # One row: the version of the schema in this file.
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    # id: unique among all messages (chatd.store.interface.Stamps), so the
    # rowid itself; time in milliseconds since 1970 UTC; room folded.
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('MSG', 'ACTION')),
        nick TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX messages_by_room ON messages (room, id)",
    "CREATE INDEX messages_by_time ON messages (time)",
    # Every room that ever had a message: read at start, so that a join to a
    # room without history needs no trip to the disk.
    "CREATE TABLE rooms (room TEXT PRIMARY KEY) WITHOUT ROWID",
    *ACCOUNT_TABLES,
    *PRIVATE_TABLES,
    *SEARCH_TABLES,
)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ACCOUNT_TABLES,
    2: PRIVATE_TABLES,
    3: SEARCH_MIGRATION,
}
MEMORY = ":memory:"
NO_ID = 2**63 - 1  # above every id: SQLite's largest integer
START_BUSY = 2.0  # seconds to wait at start for another process's write lock
RUN_BUSY = 1.0  # and while running, before a write is given up as failed
# Rows per INSERT statement (6 values each, within SQLite's limit on bound
# values: 32766 since 3.32, 999 before). One statement for many rows, not
# executemany's one step per row: the thread gives up and takes back the GIL
# per step, and while the reactor is busy each taking back can wait for the
# interpreter's switch interval (5 ms). So a batch costs a few waits however
# large it is, and a writer that falls behind catches up with larger batches.
ROWS_PER_INSERT = 1000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 160
# Messages one write deletes at most for a room's bound, and for the total: a
# bound lowered on a full database is reached over the next writes, not in one
# long transaction that every read waits for.
BOUND_CHUNK = 1000  # about 12 ms of the thread at a million rows


@dataclass(frozen=True, slots=True)
class _Kept:
    """Where one kind of history lives: its table, its speaker, what a key picks."""

    table: str
    speaker: str
    where: str
    key: str  # the columns of the key, as the where clause names them

    @property
    def columns(self) -> str:
        return f"SELECT id, time, kind, {self.speaker}, text FROM {self.table} "


ROOM = _Kept("messages", "nick", "room = ?", "room")
# One conversation: the key is conversation(one, other).
PRIVATE = _Kept("private_messages", "sender", "low = ? AND high = ?", "low, high")
ROOM_INSERT = "INSERT INTO messages (id, room, time, kind, nick, text) VALUES "
PRIVATE_INSERT = (
    "INSERT INTO private_messages (id, low, high, time, kind, sender, text) VALUES "
)
RoomRow = tuple[int, str, int, str, str, str]  # id, room, time (ms), kind, nick, text
# id, low, high (the two parties, in order), time, kind, sender, text
PrivateRow = tuple[int, str, str, int, str, str, str]


@lru_cache(maxsize=128)
def _insert(head: str, width: int, count: int) -> str:
    """The INSERT (head) of count rows of width values in one statement."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return head + ",".join([row] * count)


def _entries(rows: Iterable[tuple[int, int, str, str, str]]) -> list[Entry]:
    """Entries of rows (id, time, kind, nick or sender, text)."""
    return [Entry(row[0], row[1], Kind(row[2]), row[3], row[4]) for row in rows]


def _by_key(keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """How many of keys are each key (a Counter costs more for a batch of one)."""
    counted: dict[tuple[str, ...], int] = {}
    for key in keys:
        counted[key] = counted.get(key, 0) + 1
    return counted


class StoreError(Exception):
    """The database cannot be used at start; the text is one sentence for a person."""


def _name(error: sqlite3.Error) -> str:
    return getattr(error, "sqlite_errorname", "") or ""


def explain(error: Exception) -> str:
    """Say in a few words, without the path, why the database failed (for users)."""
    if isinstance(error, sqlite3.Error):
        name = _name(error)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return "the history database is locked by another process"
        if name == "SQLITE_FULL":
            return "the disk is full"
        if name.startswith("SQLITE_READONLY"):
            return "the history database has become read-only"
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return "the history database is damaged"
        if name.startswith("SQLITE_IOERR"):
            return "the disk reported an error"
        if name.startswith("SQLITE_CANTOPEN"):
            return "the history database cannot be opened"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "the disk is full"
    return "the history database failed"


def start_error(path: str, error: Exception) -> StoreError:
    """The sentence that stops the daemon at start, for error on path."""
    detail = str(error)
    if isinstance(error, OSError):
        detail = error.strerror or detail
    name = _name(error) if isinstance(error, sqlite3.Error) else ""
    readonly = isinstance(error, PermissionError) or (
        isinstance(error, OSError) and error.errno == errno.EROFS
    )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        text = (
            f"the history database {path} is locked by another process ({detail}); "
            "stop that process, or give chatd another --database"
        )
    elif name.startswith("SQLITE_READONLY") or readonly:
        text = (
            f"cannot write the history database {path} ({detail}): chatd must be "
            "able to write the file and its directory; fix the permissions, give "
            "another --database, or start with --no-history"
        )
    elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        text = (
            f"{path} is not a usable history database: it is damaged or not a "
            f"SQLite file ({detail}); move it away to start a new history (or put "
            "a backup in its place), or give another --database"
        )
    elif name == "SQLITE_FULL" or (
        isinstance(error, OSError) and error.errno == errno.ENOSPC
    ):
        text = (
            f"cannot write the history database {path}: the disk is full; free "
            "some space, or give another --database"
        )
    else:
        text = (
            f"cannot open the history database {path} ({detail}); check that it "
            "is a file chatd may read and write, in a directory it may write to, "
            "or start with --no-history"
        )
    return StoreError(f"chatd: {text}.")


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only, unless it exists."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


class HistoryDatabase:
    """chatd's history in one SQLite file (WAL mode), or in memory."""

    def __init__(
        self, connection: sqlite3.Connection, path: str, bound: Bound = DEFAULT_BOUND
    ) -> None:
        self.connection = connection
        self.path = path
        self.bound = bound
        # What the bound counts, learnt as writes need it: messages per room
        # (by (room,)) and per conversation (by (low, high)), and in all.
        self._counts: dict[_Kept, dict[tuple[str, ...], int]] = {ROOM: {}, PRIVATE: {}}
        self._total: int | None = None
        self.words = SearchIndex(connection)  # the words of what is kept
        self.deleted_over = 0  # messages the bound deleted (the writer logs them)

    @classmethod
    def open(
        cls, path: str, busy: float = START_BUSY, bound: Bound = DEFAULT_BOUND
    ) -> HistoryDatabase:
        """Open (or create) the database at path and check it can be written.

        Raises StoreError with a sentence for a person: locked by another
        process, read-only, damaged, not chatd's, or from a newer chatd.
        """
        connection: sqlite3.Connection | None = None
        try:
            if path != MEMORY:
                _create_private(path)
            # Autocommit (isolation_level None): transactions are explicit.
            connection = sqlite3.connect(
                path, timeout=busy, isolation_level=None, check_same_thread=False
            )
            database = cls(connection, path, bound)
            database._prepare()
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise start_error(path, error) from None
        except OSError as error:
            raise start_error(path, error) from None
        except StoreError:
            if connection is not None:
                connection.close()
            raise
        connection.execute(f"PRAGMA busy_timeout = {int(RUN_BUSY * 1000)}")
        return database

    def _prepare(self) -> None:
        """WAL mode, then the schema: created, checked, or migrated; then a write."""
        execute = self.connection.execute
        # WAL: the writer does not block readers (a backup, say), and a commit
        # is one append; NORMAL: no fsync per commit, yet a crash of the
        # process loses nothing committed (only the machine's may).
        execute("PRAGMA journal_mode = WAL")
        execute("PRAGMA synchronous = NORMAL")
        execute("BEGIN IMMEDIATE")  # the write lock: another writer shows now
        try:
            tables = {
                row[0]
                for row in execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                for statement in SCHEMA:
                    execute(statement)
                execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif "schema_version" not in tables:
                raise StoreError(
                    f"chatd: {self.path} is a SQLite database but not chatd's "
                    "history (it has no schema_version table); give another "
                    "--database."
                )
            else:
                self._migrate(execute("SELECT version FROM schema_version").fetchone())
            # A write, so that a read-only file or directory shows now.
            execute("UPDATE schema_version SET version = version")
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            raise

    def _migrate(self, row: tuple[int] | None) -> None:
        version = row[0] if row is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"chatd: the history database {self.path} has schema version "
                f"{version}, from a newer chatd; this one knows version "
                f"{SCHEMA_VERSION}. Run the newer chatd, or give another --database."
            )
        if version < 1:
            raise StoreError(
                f"chatd: the history database {self.path} has no valid schema "
                "version; give another --database."
            )
        while version < SCHEMA_VERSION:
            for statement in MIGRATIONS[version]:
                self.connection.execute(statement)
            version += 1
            self.connection.execute("UPDATE schema_version SET version = ?", (version,))

    # -- what the writer thread does --------------------------------------------

    def last_id(self) -> int:
        """Return the highest message id kept, rooms' and private (0 if none)."""
        row = self.connection.execute(
            "SELECT max(coalesce((SELECT max(id) FROM messages), 0), "
            "coalesce((SELECT max(id) FROM private_messages), 0))"
        ).fetchone()
        return int(row[0] or 0)

    def rooms(self) -> set[str]:
        """Return every room (folded) that ever had a message kept."""
        return {row[0] for row in self.connection.execute("SELECT room FROM rooms")}

    def append(self, rows: Iterable[RoomRow | PrivateRow]) -> None:
        """Keep messages in one transaction: rooms' (id, room, time, kind, nick,
        text) and private ones (PrivateRow), told apart by their length."""
        room_rows: list[RoomRow] = []
        private_rows: list[PrivateRow] = []
        for row in rows:
            if len(row) == 6:
                room_rows.append(row)
            else:
                private_rows.append(row)
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        try:
            self._insert(ROOM_INSERT, 6, room_rows)
            self._insert(PRIVATE_INSERT, 7, private_rows)
            if room_rows:
                self.connection.executemany(
                    "INSERT OR IGNORE INTO rooms (room) VALUES (?)",
                    [(room,) for room in {row[1] for row in room_rows}],
                )
            self._keep_bound(room_rows, private_rows)
            self.words.index_when_due(len(room_rows) + len(private_rows))
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            self._recount()  # what was counted may not have been written
            raise

    # -- the bound (Bound): the oldest go first ---------------------------------

    def _keep_bound(
        self, room_rows: Sequence[RoomRow], private_rows: Sequence[PrivateRow]
    ) -> None:
        """Delete what the rows just added put over the bound, oldest first.

        Each room (and conversation) written to is counted once, at its first
        write since the start (an index range, at most the bound long), then
        kept count of; one that is over loses its oldest through the index on
        (room, id). The total is counted once too, then the oldest ids go, a
        range of the primary key. A write below the bound deletes nothing.
        """
        added = len(room_rows) + len(private_rows)
        if self.bound.room:
            if room_rows:
                added -= self._keep_room_bound(ROOM, _by_key(r[1:2] for r in room_rows))
            if private_rows:
                added -= self._keep_room_bound(
                    PRIVATE, _by_key(r[1:3] for r in private_rows)
                )
        if self.bound.total:
            if self._total is None:
                self._total = self._count_all()
            else:
                self._total += added
            over = min(self.bound.over_total(self._total), BOUND_CHUNK)
            if over:
                self._delete_oldest(over)

    def _keep_room_bound(self, kept: _Kept, added: dict[tuple[str, ...], int]) -> int:
        """Bound each key of kept that added (new rows by key) wrote to; return
        how many went."""
        counts = self._counts[kept]
        deleted = 0
        for key, new in added.items():
            count = counts.get(key)
            count = self._count(kept, key) if count is None else count + new
            over = min(self.bound.over_room(count), BOUND_CHUNK)
            if over:
                cursor = self.connection.execute(
                    f"DELETE FROM {kept.table} WHERE id IN (SELECT id FROM "
                    f"{kept.table} WHERE {kept.where} ORDER BY id LIMIT ?)",
                    (*key, over),
                )
                count -= cursor.rowcount
                deleted += cursor.rowcount
            counts[key] = count
        self.deleted_over += deleted
        return deleted

    def _count(self, kept: _Kept, key: tuple[str, ...]) -> int:
        row = self.connection.execute(
            f"SELECT count(*) FROM {kept.table} WHERE {kept.where}", key
        ).fetchone()
        return int(row[0])

    def _count_all(self) -> int:
        row = self.connection.execute(
            "SELECT (SELECT count(*) FROM messages) "
            "+ (SELECT count(*) FROM private_messages)"
        ).fetchone()
        return int(row[0])

    def _delete_oldest(self, over: int) -> None:
        """Delete the over oldest messages of all, rooms' and private."""
        execute = self.connection.execute
        # Ids are unique across both tables: the over-th smallest is the cutoff.
        row = execute(
            "SELECT id FROM messages UNION ALL SELECT id FROM private_messages "
            "ORDER BY id LIMIT 1 OFFSET ?",
            (over - 1,),
        ).fetchone()
        if row is None:
            return
        for kept in (ROOM, PRIVATE):
            counts = self._counts[kept]
            width = kept.key.count(",") + 1
            # NOT INDEXED: a range of the primary key, not the whole index
            # on (room, id) that GROUP BY would otherwise walk.
            for found in execute(
                f"SELECT {kept.key}, count(*) FROM {kept.table} NOT INDEXED "
                f"WHERE id <= ? GROUP BY {kept.key}",
                (row[0],),
            ).fetchall():
                key = tuple(found[:width])
                if key in counts:
                    counts[key] -= found[width]
            cursor = execute(f"DELETE FROM {kept.table} WHERE id <= ?", (row[0],))
            self.deleted_over += cursor.rowcount
            if self._total is not None:
                self._total -= cursor.rowcount

    def _recount(self) -> None:
        """Forget every count: a write was rolled back."""
        self._counts = {ROOM: {}, PRIVATE: {}}
        self._total = None
        self.words.forget_count()

    def _forget_room_counts(self, deleted: int) -> None:
        """Rows went another way (retention, a dropped account): the rooms'
        counts are learnt again, the total is lowered by deleted."""
        self._counts = {ROOM: {}, PRIVATE: {}}
        if self._total is not None:
            self._total -= deleted

    def _insert(
        self, head: str, width: int, rows: Sequence[RoomRow | PrivateRow]
    ) -> None:
        for at in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[at : at + ROWS_PER_INSERT]
            self.connection.execute(
                _insert(head, width, len(chunk)), list(chain.from_iterable(chunk))
            )

    def _read(
        self, kept: _Kept, key: tuple[str, ...], count: int, before: int | None
    ) -> list[Entry]:
        """The latest count messages of key in kept (before the id, if given)."""
        execute = self.connection.execute
        columns, where = kept.columns, kept.where
        if before is None:
            cursor = execute(
                f"{columns}WHERE {where} ORDER BY id DESC LIMIT ?", (*key, count)
            )
        else:
            found = execute(
                f"SELECT 1 FROM {kept.table} WHERE id = ? AND {where}", (before, *key)
            ).fetchone()
            if found is None:
                raise UnknownId(before)
            cursor = execute(
                f"{columns}WHERE {where} AND id < ? ORDER BY id DESC LIMIT ?",
                (*key, before, count),
            )
        rows = cursor.fetchall()
        rows.reverse()
        return _entries(rows)

    def _select(self, kept: _Kept, key: tuple[str, ...], span: Span) -> list[Entry]:
        """The messages of key in kept within span, oldest first."""
        after = -1 if span.after is None else span.after
        before = NO_ID if span.before is None else span.before
        if after >= before - 1:
            return []
        order = "DESC" if span.newest else "ASC"
        rows = self.connection.execute(
            f"{kept.columns}WHERE {kept.where} AND id > ? AND id < ? "
            f"ORDER BY id {order} LIMIT ?",
            (*key, after, before, span.limit),
        ).fetchall()
        if span.newest:
            rows.reverse()
        return _entries(rows)

    def read(self, room: str, count: int, before: int | None = None) -> list[Entry]:
        """The room's latest count messages (before the id, if given), oldest first.

        Raises UnknownId when before is not one of the room's messages.
        """
        return self._read(ROOM, (room,), count, before)

    def select(self, room: str, span: Span) -> list[Entry]:
        """The room's messages in span (see Span), oldest first."""
        return self._select(ROOM, (room,), span)

    def latest(self, rooms: Sequence[str]) -> dict[str, Entry]:
        """The latest message of each of rooms that has one."""
        found: dict[str, Entry] = {}
        for room in rooms:
            rows = self.connection.execute(
                ROOM.columns + "WHERE room = ? ORDER BY id DESC LIMIT 1", (room,)
            ).fetchall()
            if rows:
                found[room] = _entries(rows)[0]
        return found

    # -- private conversations (docs/protocol.md, Private history) --------------

    def read_private(
        self, me: str, other: str, count: int, before: int | None = None
    ) -> list[Entry]:
        """The conversation's latest count messages, as read reads a room's."""
        return self._read(PRIVATE, conversation(me, other), count, before)

    def select_private(self, me: str, other: str, span: Span) -> list[Entry]:
        """The conversation's messages in span, oldest first."""
        return self._select(PRIVATE, conversation(me, other), span)

    def private_latest(self, me: str) -> dict[str, Entry]:
        """The latest message of each of me's conversations, by the other account."""
        found: dict[str, Entry] = {}
        # SQLite gives the other columns of the row that has the max(id).
        for side, other in (("low", "high"), ("high", "low")):
            for row in self.connection.execute(
                f"SELECT {other}, max(id), time, kind, sender, text "
                f"FROM private_messages WHERE {side} = ? GROUP BY {other}",
                (me,),
            ):
                found[row[0]] = _entries([row[1:]])[0]
        return found

    def forget_private(self, account: str) -> int:
        """Delete every conversation of account; return how many messages."""
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        try:
            cursor = execute(
                "DELETE FROM private_messages WHERE low = ? OR high = ?",
                (account, account),
            )
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            raise
        self._forget_room_counts(cursor.rowcount)
        return cursor.rowcount

    def prune(self, older_than: int, limit: int) -> int:
        """Delete up to limit messages older than a time (ms); return how many.

        Rooms' first, then private ones with what is left of limit.
        """
        deleted = 0
        for table in ("messages", "private_messages"):
            cursor = self.connection.execute(
                f"DELETE FROM {table} WHERE id IN "
                f"(SELECT id FROM {table} WHERE time < ? ORDER BY time LIMIT ?)",
                (older_than, limit - deleted),
            )
            deleted += cursor.rowcount
            if deleted >= limit:
                break
        if deleted:
            self._forget_room_counts(deleted)
        return deleted

    # -- searching (docs/protocol.md, Searching history: chatd.store.sqlite_search)

    def search(self, search: Search) -> list[Found]:
        """The newest search.limit messages that match, newest first."""
        return self.words.search(search)

    def index_now(self) -> None:
        """Index every message still queued for the search index."""
        self.words.index_now()

    def purge_words(self) -> None:
        """Rewrite the search index without what deleted messages left in it."""
        self.words.purge()

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL back in)."""
        self.connection.close()
