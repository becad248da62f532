"""The history database's search index: FTS5 tables, their queue, searching them.

docs/protocol.md, Searching history; docs/running.md, Searching history. The
database (chatd.store.sqlite.HistoryDatabase) holds one SearchIndex on its
connection and calls it from the writer thread only: as it writes
(index_when_due), and for searches (search).

Schema version 4: an FTS5 index over the text of messages and of
private_messages, kept in step by triggers, so that whatever deletes or
changes a message (retention, the bound, a dropped account, a deletion)
takes it out of the index in the same transaction. The index holds no text
of its own (external content: it reads the message's row). Where a message
is (its room; a conversation's two parties) is indexed too, so that a
search in a quiet room need not walk every message of a common word
(_place_filter).

A new message is indexed a little later, not in its own write: the insert
trigger only queues its id (<table>_unindexed), and the queue is indexed in
one statement once INDEX_EVERY have waited, and before any search, so that
a search sees every message written before it. FTS5 writes a segment per
transaction: indexing each 5 ms batch as it was written cost the writer
about 2.5 times its work per message, indexing a thousand at a time a
fraction of that (docs/performance.md, Search). A message deleted or
changed while queued is only taken out of the queue (or left in it).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatd.store.interface import Entry, Found, Kind, Search, SearchTooSlow

# The indexed columns of each table: the text first, then where it was said.
WORDS = {"messages": ("text", "room"), "private_messages": ("text", "low", "high")}
INDEX_EVERY = 1000  # messages queued before they are indexed while writing
# Seconds one search may hold the thread (reads and writes wait behind it):
# past it the search stops with what it found (the newest matches), or
# SearchTooSlow if nothing yet. Checked every SEARCH_STEPS virtual machine steps.
SEARCH_TIME = 0.25
SEARCH_STEPS = 1000
# Matches of the words alone looked at before a search asks the index for its
# places too (SearchIndex._search_table).
FIRST_LOOK = 1000
NO_ID = 2**63 - 1  # above every id: SQLite's largest integer


def _search_statements(table: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The index of table's columns, its queue, and the triggers that keep them."""
    named = ", ".join(columns)
    new = ", ".join(f"new.{column}" for column in columns)
    old = ", ".join(f"old.{column}" for column in columns)
    words, queue = f"{table}_words", f"{table}_unindexed"
    return (
        f"""CREATE VIRTUAL TABLE {words} USING fts5(
            {named}, content='{table}', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        f"CREATE TABLE {queue} (id INTEGER PRIMARY KEY)",
        f"""CREATE TRIGGER {words}_add AFTER INSERT ON {table} BEGIN
            INSERT INTO {queue} (id) VALUES (new.id);
        END""",
        f"""CREATE TRIGGER {words}_gone AFTER DELETE ON {table} BEGIN
            INSERT INTO {words} ({words}, rowid, {named})
            SELECT 'delete', old.id, {old}
            WHERE NOT EXISTS (SELECT 1 FROM {queue} WHERE id = old.id);
            DELETE FROM {queue} WHERE id = old.id;
        END""",
        f"""CREATE TRIGGER {words}_changed AFTER UPDATE OF {named} ON {table}
        WHEN NOT EXISTS (SELECT 1 FROM {queue} WHERE id = old.id) BEGIN
            INSERT INTO {words} ({words}, rowid, {named})
            VALUES ('delete', old.id, {old});
            INSERT INTO {words} (rowid, {named}) VALUES (new.id, {new});
        END""",
    )


def _index_queued(table: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The statements that index table's queued messages, then empty the queue."""
    named = ", ".join(columns)
    picked = ", ".join(f"m.{column}" for column in columns)
    queue = f"{table}_unindexed"
    return (
        f"INSERT INTO {table}_words (rowid, {named}) SELECT m.id, {picked} "
        f"FROM {queue} AS u JOIN {table} AS m ON m.id = u.id",
        f"DELETE FROM {queue}",
    )


SEARCH_TABLES = tuple(
    statement
    for table, columns in WORDS.items()
    for statement in _search_statements(table, columns)
)
# A database from before version 4 has its messages indexed as it migrates.
SEARCH_MIGRATION = (
    *SEARCH_TABLES,
    "INSERT INTO messages_words (messages_words) VALUES ('rebuild')",
    "INSERT INTO private_messages_words (private_messages_words) VALUES ('rebuild')",
)
INDEX_QUEUED = tuple(
    statement
    for table, columns in WORDS.items()
    for statement in _index_queued(table, columns)
)


@dataclass(frozen=True, slots=True)
class _Table:
    """One kind of kept message: its table, its speaker, the columns of its place."""

    name: str
    speaker: str
    place: tuple[str, ...]


ROOMS = _Table("messages", "nick", ("room",))
PRIVATE = _Table("private_messages", "sender", ("low", "high"))


def _phrase(words: str) -> str:
    """words as one FTS5 phrase: quoted, so that nothing in them is syntax."""
    return '"' + words.replace('"', '""') + '"'


def _place_filter(table: _Table, keys: Sequence[str]) -> str:
    """What narrows a search to its places in the index itself, or "".

    The room (or parties) column holds the folded names' words as FTS5
    splits them; the SQL that follows keeps exactly the places asked for,
    so this only has to let them through. Only names of ASCII letters,
    digits and punctuation are put in it: for them FTS5 and Python split
    words alike, and a name with no word at all would let nothing through.
    """
    if not all(key.isascii() and any(c.isalnum() for c in key) for key in keys):
        return ""
    names = " OR ".join(_phrase(key) for key in dict.fromkeys(keys))
    column = "room" if table is ROOMS else "{low high}"
    return f" AND {column} : ({names})"


def _place_check(search: Search, table: _Table) -> Callable[[tuple[object, ...]], bool]:
    """Whether a row's place (its room; its parties) is one search asks for."""
    if table is ROOMS:
        rooms = frozenset(search.rooms)
        return lambda place: place[0] in rooms
    pairs = frozenset(search.conversations)
    party = search.party
    return lambda place: party in place or (place[0], place[1]) in pairs


def _scopes(search: Search) -> list[tuple[_Table, str, tuple[str, ...]]]:
    """Each table to search: the SQL that picks the search's places in it,
    and their keys."""
    scopes: list[tuple[_Table, str, tuple[str, ...]]] = []
    if search.rooms:
        marks = ", ".join("?" * len(search.rooms))
        scopes.append((ROOMS, f"m.room IN ({marks})", search.rooms))
    picks: list[str] = []
    keys: list[str] = []
    if search.party is not None:
        picks.append("m.low = ? OR m.high = ?")
        keys += [search.party, search.party]
    for low, high in search.conversations:
        picks.append("(m.low = ? AND m.high = ?)")
        keys += [low, high]
    if picks:
        scopes.append((PRIVATE, " OR ".join(picks), tuple(keys)))
    return scopes


class SearchIndex:
    """The search index of one history database connection (its writer's)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._queued: int | None = None  # messages waiting to be indexed (None: count)

    # -- the queue ------------------------------------------------------------------

    def forget_count(self) -> None:
        """A write was rolled back: count the queue again when next needed."""
        self._queued = None

    def _queue_length(self) -> int:
        """How many messages wait to be indexed (counted once, then kept)."""
        if self._queued is None:
            row = self.connection.execute(
                "SELECT (SELECT count(*) FROM messages_unindexed) "
                "+ (SELECT count(*) FROM private_messages_unindexed)"
            ).fetchone()
            self._queued = int(row[0])
        return self._queued

    def index_when_due(self, added: int) -> None:
        """In a write's transaction: index the queue once INDEX_EVERY wait."""
        if self._queued is None:
            self._queue_length()  # counts the rows just added too
        else:
            self._queued += added
        if self._queue_length() >= INDEX_EVERY:
            self._index_queued()

    def _index_queued(self) -> None:
        for statement in INDEX_QUEUED:
            self.connection.execute(statement)
        self._queued = 0

    def index_now(self) -> None:
        """Index every message still queued, in a transaction of its own."""
        if self._queued == 0:
            return
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        try:
            if self._queue_length():
                self._index_queued()
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            self._queued = None
            raise

    def purge(self) -> None:
        """Rewrite the index without what deleted messages left in it.

        FTS5 (before SQLite 3.42's secure-delete) takes a message out of the
        index by writing a tombstone: its words stay in older segments of the
        file until a merge reaches them. A deletion that must leave no trace
        in the file (a message taken back, docs/protocol.md) calls this after
        it: every segment is merged into one ('optimize'), on the pages of
        the file that secure_delete zeroes. About 4 s for a million kept
        messages on the benchmarks' machine (docs/performance.md, Search):
        for deletions that must forget, not for retention.
        """
        execute = self.connection.execute
        self.index_now()
        secure = int(execute("PRAGMA secure_delete").fetchone()[0])
        execute("PRAGMA secure_delete = ON")
        execute("BEGIN IMMEDIATE")
        try:
            for table in WORDS:
                words = f"{table}_words"
                execute(f"INSERT INTO {words} ({words}) VALUES ('optimize')")
            execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                execute("ROLLBACK")
            raise
        finally:
            execute(f"PRAGMA secure_delete = {secure}")

    # -- searching ------------------------------------------------------------------

    def search(self, search: Search) -> list[Found]:
        """The newest search.limit messages that match, newest first.

        The FTS5 index gives the matching ids newest first; each is kept if
        it is in one of the search's rooms or conversations (and said by its
        nick, if given), until there are enough. Phrases are quoted, so
        nothing a user types is read as FTS5's own syntax. Past SEARCH_TIME
        the search stops with the newest it found (SearchTooSlow if none).
        """
        if not search.phrases or not (
            search.rooms or search.conversations or search.party
        ):
            return []
        self.index_now()  # what was written before the search is found
        deadline = time.monotonic() + SEARCH_TIME
        self.connection.set_progress_handler(
            lambda: time.monotonic() > deadline, SEARCH_STEPS
        )
        found: list[Found] = []
        floor = -1  # an interrupted table found nothing below this
        try:
            for table, where, keys in _scopes(search):
                mine: list[Found] = []
                try:
                    self._search_table(search, table, where, keys, mine)
                except sqlite3.OperationalError as error:
                    if "interrupt" not in str(error):
                        raise
                    if not mine:
                        raise SearchTooSlow() from None
                    floor = max(floor, mine[-1].entry.id)
                found += mine
        finally:
            self.connection.set_progress_handler(None, SEARCH_STEPS)
        found = [one for one in found if one.entry.id >= floor]
        found.sort(key=lambda one: one.entry.id, reverse=True)
        return found[: search.limit]

    def _search_table(
        self,
        search: Search,
        table: _Table,
        where: str,
        keys: tuple[str, ...],
        found: list[Found],
    ) -> None:
        """Add to found the newest matches in table, in two looks.

        First the matches of the words alone, newest first, each kept if it
        is in one of the places (Python checks): the usual search, where the
        places hold a fair share of the messages, ends here within a few
        hundred. After FIRST_LOOK matches without enough found, the places
        are few among many (a quiet room, a common word): the rest is asked
        of the index with the places in the query (_place_filter), which
        walks only their messages.
        """
        text = "text : (" + " ".join(map(_phrase, search.phrases)) + ")"
        place = ", ".join(f"m.{column}" for column in table.place)
        head = (
            f"SELECT m.id, m.time, m.kind, m.{table.speaker}, m.text, {place} "
            f"FROM {table.name}_words AS w CROSS JOIN {table.name} AS m "
            f"ON m.id = w.rowid WHERE {table.name}_words MATCH ? "
            "AND w.rowid > ? AND w.rowid < ? "
        )
        after = -1 if search.after is None else search.after
        before = NO_ID if search.before is None else search.before
        wanted = _place_check(search, table)
        looked = 0
        for row in self.connection.execute(
            head + "ORDER BY w.rowid DESC", (text, after, before)
        ):
            looked += 1
            if wanted(row[5:]) and _keep(search, table, row, found):
                return
            before = row[0]
            if looked >= FIRST_LOOK:
                break
        else:
            return  # every match looked at
        rows = self.connection.execute(
            head + f"AND ({where}) ORDER BY w.rowid DESC",
            (text + _place_filter(table, keys), after, before, *keys),
        )
        for row in rows:
            if _keep(search, table, row, found):
                return


# A row a search reads: id, time, kind, speaker, text, then its room or parties.
Row = tuple[int, int, str, str, str, str] | tuple[int, int, str, str, str, str, str]


def _keep(search: Search, table: _Table, row: Row, found: list[Found]) -> bool:
    """Add row's message to found unless its nick is not the one asked for;
    tell whether found has enough."""
    entry = Entry(row[0], row[1], Kind(row[2]), row[3], row[4])
    if search.nick is not None and not search.matches_nick(entry):
        return False
    place = row[5:]
    if table is ROOMS:
        found.append(Found(entry, room=place[0]))
    else:
        found.append(Found(entry, pair=(place[0], place[-1])))
    return len(found) >= search.limit
