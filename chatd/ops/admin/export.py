"""A room's or an account's kept history as JSON lines, read-only.

One object a message, oldest first: {"id", "time" (ISO 8601, UTC, to the
millisecond), "kind" ("MSG" or "ACTION"), "nick" (the speaker as kept: a
room's nickname at the time, a private message's account or nickname),
"text", "target" (the room; for a private message the other side)}. A room's
messages are read from chatd.store.sqlite's messages table; an account's
history is its private conversations (docs/protocol.md, Private history):
room messages are kept under nicknames, not accounts. It reads through a
read-only connection, a page of ids at a time, so a daemon writing meanwhile
never waits for it and a large room never sits in memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO, cast

from chatd.model.names import fold, room_problem
from chatd.ops.admin.backup import AdminError, read_only
from chatd.store.interface import NICK_PARTY

PAGE = 1000  # rows per query


def iso(millis: int) -> str:
    """A kept time (milliseconds since 1970 UTC) in ISO 8601."""
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pages(
    connection: sqlite3.Connection, query: str, key: tuple[str, ...]
) -> Iterator[tuple[object, ...]]:
    """Every row of query (ordered by id, "id > ?" its last condition), by page."""
    last = -1
    while True:
        rows = connection.execute(query, (*key, last, PAGE)).fetchall()
        yield from rows
        if len(rows) < PAGE:
            return
        last = cast(int, rows[-1][0])


def _party_name(party: str) -> str:
    """How a conversation's party reads: an account's name, or a nickname."""
    return party.removeprefix(NICK_PARTY)


def room_messages(database: str, room: str) -> Iterator[dict[str, object]]:
    """The kept messages of room, oldest first, as export's objects.

    A bad name or database is refused here, before the first line is written.
    """
    problem = room_problem(room)
    if problem is not None:
        raise AdminError(f"{room}: {problem}")
    return _room_rows(read_only(database), fold(room))


def _room_rows(connection: sqlite3.Connection, key: str) -> Iterator[dict[str, object]]:
    try:
        # A running daemon's latest messages may still be staged, not yet
        # settled into messages (chatd.store.sqlite, schema version 4).
        staged = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'staged_messages'"
        ).fetchone()
        table = (
            "(SELECT id, room, time, kind, nick, text FROM messages UNION ALL "
            "SELECT id, room, time, kind, nick, text FROM staged_messages)"
            if staged
            else "messages"
        )
        query = (
            f"SELECT id, time, kind, nick, text FROM {table} "
            # text '': a deleted message's tombstone (docs/protocol.md,
            # Deleting messages): nothing of it is exported.
            "WHERE room = ? AND id > ? AND text != '' ORDER BY id LIMIT ?"
        )
        for row in _pages(connection, query, (key,)):
            message_id, millis, kind, nick, text = row
            yield _message(message_id, millis, kind, nick, text, key)
    finally:
        connection.close()


def account_messages(database: str, account: str) -> Iterator[dict[str, object]]:
    """The kept private messages of account, oldest first, as export's objects.

    A database without accounts (an older schema) is refused here.
    """
    key = fold(account)
    connection = read_only(database)
    try:
        found = connection.execute(
            "SELECT name FROM accounts WHERE account = ?", (key,)
        ).fetchone()
    except sqlite3.OperationalError as error:  # an older schema: no such table
        connection.close()
        raise AdminError(f"cannot read accounts: {error}") from None
    name = str(found[0]) if found else account  # as registered, if it still is
    return _account_rows(connection, key, name)


def _account_rows(
    connection: sqlite3.Connection, key: str, name: str
) -> Iterator[dict[str, object]]:
    try:
        query = (
            "SELECT id, time, kind, sender, text, low, high FROM private_messages "
            "WHERE (low = ? OR high = ?) AND id > ? AND text != '' "
            "ORDER BY id LIMIT ?"
        )
        for row in _pages(connection, query, (key, key)):
            message_id, millis, kind, sender, text, low, high = row
            other = _party_name(str(high if low == key else low))
            # Written by the account (its name as registered): to the other side.
            target = other if fold(str(sender)) == key else name
            yield _message(message_id, millis, kind, sender, text, target)
    finally:
        connection.close()


def _message(
    message_id: object,
    millis: object,
    kind: object,
    nick: object,
    text: object,
    target: str,
) -> dict[str, object]:
    return {
        "id": message_id,
        "time": iso(int(str(millis))),
        "kind": kind,
        "nick": nick,
        "text": text,
        "target": target,
    }


def write_lines(messages: Iterator[dict[str, object]], out: TextIO) -> int:
    """Write each message as one JSON line; return how many."""
    count = 0
    for message in messages:
        out.write(json.dumps(message, ensure_ascii=False) + "\n")
        count += 1
    return count
