"""An online backup of a history database: SQLite's backup API, then a rename.

The daemon may run meanwhile: the copy reads through a read-only connection
(the daemon's lock is not taken; in WAL mode a reader and the writer do not
wait for each other) in one step, so it is the database as of one moment,
every committed message in it. The copy is written to a temporary file
beside the destination and renamed over it once complete, so the
destination is never half a database; it is one file (journal mode DELETE,
no -wal beside it), readable by its owner only (it holds password hashes).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from urllib.parse import quote

RETRY = 5.0  # seconds a read waits for a moment the database can be read


class AdminError(Exception):
    """What chatd-admin cannot do; the text is one sentence for the operator."""


@dataclass(frozen=True, slots=True)
class BackupDone:
    """What a backup copied."""

    path: str
    messages: int
    accounts: int
    size: int  # bytes


def read_only(database: str) -> sqlite3.Connection:
    """A read-only connection to a chatd history database; AdminError if unusable.

    Read-only by its URI (mode=ro): it never writes, creates or migrates,
    and takes no lock of the daemon's.
    """
    if not os.path.isfile(database):
        raise AdminError(f"there is no history database at {database}")
    uri = f"file:{quote(os.path.abspath(database))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout = {int(RETRY * 1000)}")
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        }
    except sqlite3.Error as error:
        raise AdminError(f"cannot read {database}: {error}") from None
    if "schema_version" not in tables:
        connection.close()
        raise AdminError(f"{database} is not a chatd history database")
    return connection


def backup(database: str, destination: str) -> BackupDone:
    """Copy database to destination while the daemon may be writing it."""
    source = read_only(database)
    directory = os.path.dirname(os.path.abspath(destination))
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(destination)}.", suffix=".tmp", dir=directory
        )
    except OSError as error:
        source.close()
        raise AdminError(f"cannot write {destination}: {error.strerror}") from None
    os.close(descriptor)  # mkstemp made it 0600: the copy holds password hashes
    try:
        copy = sqlite3.connect(temporary, isolation_level=None)
        try:
            source.backup(copy)  # pages=-1: one step, one consistent moment
            copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal
            problems = copy.execute("PRAGMA quick_check").fetchall()
            if problems != [("ok",)]:
                raise AdminError(
                    f"the copy of {database} failed its check: {problems[0][0]}"
                )
            done = _counted(copy)
        finally:
            copy.close()
        _sync(temporary)
        os.replace(temporary, destination)
        _sync(directory)
    except sqlite3.Error as error:
        raise AdminError(f"the backup of {database} failed: {error}") from None
    except OSError as error:
        raise AdminError(f"cannot write {destination}: {error.strerror}") from None
    finally:
        source.close()
        if os.path.exists(temporary):
            os.unlink(temporary)
    return BackupDone(destination, done[0], done[1], os.path.getsize(destination))


def _counted(copy: sqlite3.Connection) -> tuple[int, int]:
    """Messages (rooms' and private) and accounts in the copy."""
    tables = {
        row[0]
        for row in copy.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }

    def count(table: str) -> int:
        if table not in tables:  # an older schema (chatd.store.sqlite.MIGRATIONS)
            return 0
        return int(copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    return count("messages") + count("private_messages"), count("accounts")


def _sync(path: str) -> None:
    """Flush path (a file, or a directory after a rename) to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
