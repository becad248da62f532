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
import time
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
    id_at,
)
from chatd.store.sqlite_search import SEARCH_MIGRATION, SEARCH_TABLES, SearchIndex

# The schema this chatd writes. A later release adds a step to MIGRATIONS
# (from version n to n + 1) and raises it; an older chatd refuses a newer file.
SCHEMA_VERSION = 8
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
# Version 4: server bans (K-lines; chatd.model.server_bans). key: the mask's
# folded form (server_ban_key), mask as given, reason, by (the operator's
# nickname), time it was set and expires (seconds since 1970 UTC; 0: never).
SERVER_BAN_TABLES = (
    """CREATE TABLE server_bans (
        key TEXT PRIMARY KEY,
        mask TEXT NOT NULL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time REAL NOT NULL,
        expires REAL NOT NULL
    ) WITHOUT ROWID""",
)
# Version 5: deleting messages (docs/protocol.md, Deleting messages). author:
# who said it, as chatd.model.redaction names a speaker (a folded account, or
# "~" and the session of a user not identified; a private message's is its
# sender's party), "" for messages kept before. A deleted message stays as a
# tombstone: its row with text '' (no message is empty), which reads leave out.
AUTHOR_COLUMNS = (
    "ALTER TABLE messages ADD COLUMN author TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE private_messages ADD COLUMN author TEXT NOT NULL DEFAULT ''",
)
# Version 6: rooms' messages as written, before they are settled into messages
# (HistoryDatabase.settle). No index: a write appends to one place in the
# file, where an insert into messages touches one page of the (room, id) index
# per room said in; settling a second's worth at once touches each such page
# once. Empty after a clean stop; what a crash left is settled at the next open.
# And no index on time: an id is its message's time in microseconds
# (chatd.store.interface.id_at), so retention deletes a range of ids.
STAGED_TABLES = (
    "DROP INDEX IF EXISTS messages_by_time",
    "DROP INDEX IF EXISTS private_by_time",
    """CREATE TABLE staged_messages (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL,
        author TEXT NOT NULL
    )""",
)
# Version 7: read markers (docs/protocol.md, Read markers and catch-up):
# account, folded; target: a room's folded name or the other party of a
# private conversation (as low and high are spelled); id and time: the
# message read up to (time in ms); name: the target as shown.
MARKER_TABLES = (
    """CREATE TABLE read_markers (
        account TEXT NOT NULL,
        target TEXT NOT NULL,
        id INTEGER NOT NULL,
        time INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (account, target)
    ) WITHOUT ROWID""",
)
# Version 8: the search index (chatd.store.sqlite_search: FTS5 tables, their
# queue and triggers); a file of version 7 is indexed as it migrates.
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
    # Every room that ever had a message: read at start, so that a join to a
    # room without history needs no trip to the disk.
    "CREATE TABLE rooms (room TEXT PRIMARY KEY) WITHOUT ROWID",
    *ACCOUNT_TABLES,
    *PRIVATE_TABLES,
    *SERVER_BAN_TABLES,
    *AUTHOR_COLUMNS,
    *STAGED_TABLES,
    *MARKER_TABLES,
    *SEARCH_TABLES,
)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ACCOUNT_TABLES,
    2: PRIVATE_TABLES,
    3: SERVER_BAN_TABLES,
    4: AUTHOR_COLUMNS,
    5: STAGED_TABLES,
    6: MARKER_TABLES,
    7: SEARCH_MIGRATION,
}
MEMORY = ":memory:"
NO_ID = 2**63 - 1  # above every id: SQLite's largest integer
START_BUSY = 2.0  # seconds to wait at start for another process's write lock
RUN_BUSY = 1.0  # and while running, before a write is given up as failed
# Rows per INSERT statement (8 values at most, within SQLite's limit on bound
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
# Reads leave tombstones (deleted messages) out.
LIVE = "text != ''"
ROOM_INSERT = "INSERT INTO messages (id, room, time, kind, nick, text, author) VALUES "
STAGED_INSERT = (
    "INSERT INTO staged_messages (id, room, time, kind, nick, text, author) VALUES "
)
PRIVATE_INSERT = (
    "INSERT INTO private_messages (id, low, high, time, kind, sender, text, author) "
    "VALUES "
)
RoomRow = tuple[int, str, int, str, str, str]  # id, room, time (ms), kind, nick, text
# id, low, high (the two parties, in order), time, kind, sender, text
PrivateRow = tuple[int, str, str, int, str, str, str]
# The same with the author last (version 4); a row without one has "".
AuthoredRoomRow = tuple[int, str, int, str, str, str, str]
AuthoredPrivateRow = tuple[int, str, str, int, str, str, str, str]
AnyRow = RoomRow | PrivateRow | AuthoredRoomRow | AuthoredPrivateRow


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
        # Private messages per party (Bound.account), in all its conversations:
        # never below the truth (deletions elsewhere leave it high), so it is
        # counted again before it deletes anything.
        self._party_counts: dict[str, int] = {}
        self.words = SearchIndex(connection)  # the words of what is kept
        self.deleted_over = 0  # messages the bound deleted (the writer logs them)
        # Staging (settle): rooms' messages go to staged_messages first. The
        # writer thread turns it on, and settles before anything else it does.
        self.staging = False
        self.staged = 0  # rows in staged_messages
        self.staged_since = 0.0  # time.monotonic() when the first of them came

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
        # What is deleted (a deleted message's text, what the bound and the
        # days take) is overwritten with zeros, not left in free space for a
        # backup to copy (docs/protocol.md, Deleting messages).
        execute("PRAGMA secure_delete = ON")
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
        # What a crash left staged is settled before anything reads.
        self.staged = int(execute("SELECT count(*) FROM staged_messages").fetchone()[0])
        self.settle()

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

    def append(self, rows: Iterable[AnyRow]) -> None:
        """Keep messages in one transaction: rooms' (id, room, time, kind, nick,
        text[, author]) and private ones (PrivateRow[, author]), told apart by
        their third value (a room's time, a conversation's second party)."""
        room_rows: list[AuthoredRoomRow] = []
        private_rows: list[AuthoredPrivateRow] = []
        for row in rows:
            if isinstance(row[2], int):
                room_rows.append(row if len(row) == 7 else (*row, ""))
            else:
                private_rows.append(row if len(row) == 8 else (*row, ""))
        self.append_sorted(room_rows, private_rows)

    def append_sorted(
        self,
        room_rows: Sequence[AuthoredRoomRow],
        private_rows: Sequence[AuthoredPrivateRow],
    ) -> None:
        """append, for rows already apart (the writer thread's batches): no
        Python for each row, one transaction."""
        execute = self.connection.execute
        private_added = _by_key(r[1:3] for r in private_rows) if private_rows else {}
        execute("BEGIN IMMEDIATE")
        try:
            room_added: dict[tuple[str, ...], int] = {}
            if self.staging:
                self._insert(STAGED_INSERT, 7, room_rows)
            else:
                self._insert(ROOM_INSERT, 7, room_rows)
                room_added = _by_key(r[1:2] for r in room_rows)
                self._add_rooms(room_added)
            self._insert(PRIVATE_INSERT, 8, private_rows)
            self._keep_bound(room_added, private_added)
            # Rows in messages now wait for the search index (staged ones: at
            # their settle).
            self.words.index_when_due(
                len(private_rows) + (0 if self.staging else len(room_rows))
            )
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            self._recount()  # what was counted may not have been written
            raise
        if self.staging and room_rows:
            if not self.staged:
                self.staged_since = time.monotonic()
            self.staged += len(room_rows)

    def settle(self) -> None:
        """Move the staged rooms' messages into messages, in one transaction.

        Ordered by room, so that each room's pages of the (room, id) index are
        written once for all of its messages since the last settle.
        """
        if not self.staged:
            return
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        try:
            room_added: dict[tuple[str, ...], int] = {
                (str(room),): int(count)
                for room, count in execute(
                    "SELECT room, count(*) FROM staged_messages GROUP BY room"
                ).fetchall()
            }
            execute(
                "INSERT INTO messages (id, room, time, kind, nick, text, author) "
                "SELECT id, room, time, kind, nick, text, author FROM staged_messages "
                "ORDER BY room, id"
            )
            execute("DELETE FROM staged_messages")
            self._add_rooms(room_added)
            self._keep_bound(room_added, {})
            self.words.index_when_due(self.staged)
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            self._recount()
            raise
        self.staged = 0

    def _add_rooms(self, added: dict[tuple[str, ...], int]) -> None:
        if added:
            self.connection.executemany(
                "INSERT OR IGNORE INTO rooms (room) VALUES (?)", list(added)
            )

    # -- the bound (Bound): the oldest go first ---------------------------------

    def _keep_bound(
        self,
        room_added: dict[tuple[str, ...], int],
        private_added: dict[tuple[str, ...], int],
    ) -> None:
        """Delete what the rows just added put over the bound, oldest first.

        Each room (and conversation) written to is counted once, at its first
        write since the start (an index range, at most the bound long), then
        kept count of; one that is over loses its oldest through the index on
        (room, id). The total is counted once too, then the oldest ids go, a
        range of the primary key. A write below the bound deletes nothing.
        """
        added = sum(room_added.values()) + sum(private_added.values())
        if self.bound.room:
            if room_added:
                added -= self._keep_room_bound(ROOM, room_added)
            if private_added:
                added -= self._keep_room_bound(PRIVATE, private_added)
        if self.bound.account and private_added:
            added -= self._keep_party_bound(private_added)
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

    def _keep_party_bound(self, private_added: dict[tuple[str, ...], int]) -> int:
        """Bound each party of the conversations written to (Bound.account):
        its oldest private messages, of all its conversations, go first.
        Return how many went."""
        added: dict[str, int] = {}
        for key, new in private_added.items():
            for party in set(key):
                added[party] = added.get(party, 0) + new
        counts = self._party_counts
        deleted = 0
        for party, new in added.items():
            count = counts.get(party)
            count = self._count_party(party) if count is None else count + new
            if self.bound.over_account(count):  # the count may be high: learn it
                count = self._count_party(party)
            over = min(self.bound.over_account(count), BOUND_CHUNK)
            if over:
                cursor = self.connection.execute(
                    "DELETE FROM private_messages WHERE id IN (SELECT id FROM "
                    "private_messages WHERE low = ? UNION ALL SELECT id FROM "
                    "private_messages WHERE high = ? AND low != ? ORDER BY id LIMIT ?)",
                    (party, party, party, over),
                )
                count -= cursor.rowcount
                deleted += cursor.rowcount
            counts[party] = count
        if deleted:  # the conversations' counts are learnt again
            self._counts[PRIVATE] = {}
        self.deleted_over += deleted
        return deleted

    def _count_party(self, party: str) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM private_messages WHERE low = ? OR high = ?",
            (party, party),
        ).fetchone()
        return int(row[0])

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
        self._party_counts = {}
        self._total = None
        self.words.forget_count()

    def _forget_room_counts(self, deleted: int) -> None:
        """Rows went another way (retention, a dropped account): the rooms'
        counts are learnt again, the total is lowered by deleted."""
        self._counts = {ROOM: {}, PRIVATE: {}}
        self._party_counts = {}
        if self._total is not None:
            self._total -= deleted

    def _insert(
        self,
        head: str,
        width: int,
        rows: Sequence[AuthoredRoomRow | AuthoredPrivateRow],
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
                f"{columns}WHERE {where} AND {LIVE} ORDER BY id DESC LIMIT ?",
                (*key, count),
            )
        else:
            found = execute(
                f"SELECT 1 FROM {kept.table} WHERE id = ? AND {where}", (before, *key)
            ).fetchone()
            if found is None:
                raise UnknownId(before)
            cursor = execute(
                f"{columns}WHERE {where} AND id < ? AND {LIVE} "
                "ORDER BY id DESC LIMIT ?",
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
            f"{kept.columns}WHERE {kept.where} AND id > ? AND id < ? AND {LIVE} "
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
                ROOM.columns + f"WHERE room = ? AND {LIVE} ORDER BY id DESC LIMIT 1",
                (room,),
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
                f"FROM private_messages WHERE {side} = ? AND {LIVE} "
                f"GROUP BY {other}",
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

    # -- deleting one message (docs/protocol.md, Deleting messages) ---------------

    def _author(self, kept: _Kept, key: tuple[str, ...], msg_id: int) -> str | None:
        row = self.connection.execute(
            f"SELECT author FROM {kept.table} WHERE id = ? AND {kept.where} AND {LIVE}",
            (msg_id, *key),
        ).fetchone()
        return None if row is None else str(row[0])

    def author(self, room: str, msg_id: int) -> str | None:
        """The author of the room's live message msg_id; None if there is none."""
        return self._author(ROOM, (room,), msg_id)

    def private_author(self, me: str, other: str, msg_id: int) -> str | None:
        """The author of the conversation's live message msg_id, or None."""
        return self._author(PRIVATE, conversation(me, other), msg_id)

    def _delete(self, kept: _Kept, key: tuple[str, ...], msg_id: int) -> bool:
        """Empty one message's text (the tombstone), then fold the WAL in.

        secure_delete zeroes the old text in the page; the checkpoint writes
        that page over the file's and empties the WAL, whose older frames
        still held the text. A reader (a backup running) can keep the WAL
        from being emptied: the next checkpoint does it.
        """
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        try:
            cursor = execute(
                f"UPDATE {kept.table} SET text = '' WHERE id = ? AND {kept.where} "
                f"AND {LIVE}",
                (msg_id, *key),
            )
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            raise
        if cursor.rowcount and self.path != MEMORY:
            execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return bool(cursor.rowcount)

    def delete(self, room: str, msg_id: int) -> bool:
        """Forget the text of the room's message msg_id; whether there was one."""
        return self._delete(ROOM, (room,), msg_id)

    def delete_private(self, me: str, other: str, msg_id: int) -> bool:
        """Forget the text of the conversation's message msg_id, as delete."""
        return self._delete(PRIVATE, conversation(me, other), msg_id)

    def prune(self, older_than: int, limit: int) -> int:
        """Delete up to limit messages older than a time (ms); return how many.

        Rooms' first, then private ones with what is left of limit. By id: a
        message's id is the time it was received (id_at), so the oldest are a
        range of the primary key and no index on time is kept (the time is
        still asked: a message whose id ran ahead of its time, the clock having
        gone back, stays until both are old enough).
        """
        deleted = 0
        for table in ("messages", "private_messages"):
            cursor = self.connection.execute(
                f"DELETE FROM {table} WHERE id IN "
                f"(SELECT id FROM {table} WHERE id < ? AND time < ? "
                "ORDER BY id LIMIT ?)",
                (id_at(older_than), older_than, limit - deleted),
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
