"""A password reset or an account dropped, against a stopped daemon's database.

The daemon holds every account in memory and writes behind, so a change
made in the file under a running daemon would be lost or undone: these take
the database's lock (chatd.store.lock) first, which a running daemon holds,
and are refused while it runs. The change itself is the model's
(chatd.model.accounts.Accounts.reset_password and drop_account: the same
check of the password, the same Argon2id hash, the same rooms and
conversations forgotten as /unregister), over the file's accounts
(chatd.store.accounts.SQLiteAccounts) written at once instead of by the
daemon's thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatd.config import AccountSettings
from chatd.model.accounts import Accounts, Hasher, run_inline
from chatd.model.chat import Chat
from chatd.ops.admin.backup import AdminError
from chatd.store.accounts import SQLiteAccounts
from chatd.store.interface import AccountRecord, IHistory
from chatd.store.lock import DatabaseLock
from chatd.store.sqlite import HistoryDatabase, StoreError

T = TypeVar("T")


class DaemonRunning(AdminError):
    """The database's lock is held: a daemon runs on it."""


class _AtOnce:
    """What SQLiteAccounts writes through: the file itself, at once, in turn."""

    def __init__(self, database: HistoryDatabase) -> None:
        self.database = database
        self.openers: list[Callable[[HistoryDatabase], None]] = []
        self.failures: list[Failure] = []

    def submit(
        self, work: Callable[[HistoryDatabase], object]
    ) -> defer.Deferred[object]:
        done = defer.maybeDeferred(work, self.database)

        def failed(failure: Failure) -> Failure:
            self.failures.append(failure)
            return failure

        return done.addErrback(failed)


class _Conversations:
    """The one part of a history a dropped account needs: forget_private."""

    def __init__(self, database: HistoryDatabase) -> None:
        self.database = database

    def forget_private(self, account: str) -> None:
        self.database.forget_private(account)


@contextmanager
def stopped(path: str) -> Iterator[HistoryDatabase]:
    """The database at path, locked as a daemon locks it; DaemonRunning if one does."""
    if not os.path.isfile(path):
        raise AdminError(f"there is no history database at {path}")
    try:
        lock = DatabaseLock.take(path)
    except StoreError:
        raise DaemonRunning(
            f"chatd is running on {path} (it holds {path}.lock): stop it first "
            "(systemctl stop chatd), or have a server operator do it through the "
            "daemon (/resetpass <account> <password> or /dropaccount <account>; "
            "IRC: /msg NickServ RESETPASS or FDROP)"
        ) from None
    try:
        try:
            database = HistoryDatabase.open(path)
        except StoreError as error:
            raise AdminError(str(error).removeprefix("chatd: ")) from None
        try:
            yield database
        finally:
            database.close()
    finally:
        lock.release()


def _accounts(
    database: HistoryDatabase, settings: AccountSettings
) -> tuple[Accounts, _AtOnce]:
    """The model's Accounts over the file's accounts, its rooms and conversations."""
    writer = _AtOnce(database)
    store = SQLiteAccounts(writer)
    for opened in writer.openers:
        opened(database)
    # Only forget_private is asked of the history by the accounts.
    chat = Chat(history=cast(IHistory, _Conversations(database)))
    accounts = Accounts(chat, store, Hasher(settings, run_inline), Clock(), settings)
    return accounts, writer


def _outcome(answer: defer.Deferred[T], writer: _AtOnce) -> T:
    """What answer (already fired: everything ran at once) gave, or its error."""
    results: list[T] = []
    failures: list[Failure] = []
    answer.addCallbacks(results.append, failures.append)
    for failure in [*failures, *writer.failures]:
        failure.raiseException()
    return results[0]


def reset_password(
    path: str, name: str, password: str, settings: AccountSettings
) -> AccountRecord:
    """Give the account name in the stopped database at path a new password."""
    with stopped(path) as database:
        accounts, writer = _accounts(database, settings)
        return _outcome(accounts.reset_password(name, password), writer)


def drop_account(path: str, name: str) -> AccountRecord:
    """Drop the account name from the stopped database at path."""
    with stopped(path) as database:
        accounts, writer = _accounts(database, AccountSettings())
        return _outcome(accounts.drop_account(name), writer)
