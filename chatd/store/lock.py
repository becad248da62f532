"""The lock that keeps a history database to one daemon: a file beside it.

An exclusive flock on <database>.lock, taken as the history opens and held
until it closes. The kernel drops it when the process ends, however it ends:
a lock file left by a dead daemon blocks nobody.
"""

from __future__ import annotations

import fcntl
import os

from chatd.store.sqlite import StoreError, start_error


class DatabaseLock:
    """The exclusive lock one daemon holds on its --database."""

    def __init__(self, path: str, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def take(cls, database: str) -> DatabaseLock:
        """Lock database for this process; StoreError if another holds it."""
        path = f"{database}.lock"
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise start_error(database, error) from None  # as the database's
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise StoreError(
                f"chatd: the history database {database} is in use by another "
                f"chatd (it holds {path}); one daemon per database: stop that "
                "one, or give this one another --database."
            ) from None
        return cls(path, descriptor)

    def release(self) -> None:
        """Let another daemon open the database (the file itself stays)."""
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None
