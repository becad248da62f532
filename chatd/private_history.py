"""Private history: who may read which conversation, for every door.

docs/protocol.md, Private history: a private message between two users who
are both identified is kept under the pair of their accounts (Chat.tell).
Reading it back needs the same: the asker is identified to one of the two
accounts, and names the other by an account name or by the nickname of a
user identified now. Nothing here goes by the asker's nickname: a nickname
can pass to another person, an account cannot.

An account that is dropped takes its conversations with it (Accounts asks
the store to forget them). Should that deletion fail (the store is down),
a later account of the same name must still not read them: every read keeps
only messages said after both accounts were created (since()).
"""

from __future__ import annotations

from collections.abc import Iterable

from chatd.accounts import Accounts
from chatd.chat import User
from chatd.errors import ChatError, ErrorCode
from chatd.names import fold, nick_problem, normalize_name
from chatd.store.accounts import AccountRecord
from chatd.store.interface import Entry


def own_account(accounts: Accounts, user: User | None) -> AccountRecord | None:
    """The account user is identified to now, if any."""
    if user is None or not user.account:
        return None
    return accounts.account(user.account)


def partner(accounts: Accounts, name: str) -> AccountRecord | None:
    """The account name means: the account of that name, else the account the
    user with that nickname is identified to now; None if neither."""
    record = accounts.account(name)
    if record is not None:
        return record
    holder = accounts.chat.users.get(fold(name))
    if holder is None or not holder.account:
        return None
    return accounts.account(holder.account)


def conversation_of(
    accounts: Accounts, user: User, name: str
) -> tuple[AccountRecord, AccountRecord]:
    """The two accounts of user's conversation with name, or raise ChatError.

    not-identified: the asker has no account now; no-such-nick: name is
    neither an account nor a user identified to one.
    """
    mine = own_account(accounts, user)
    if mine is None:
        raise ChatError(
            ErrorCode.NOT_IDENTIFIED,
            "private history is kept only between identified users; "
            "/identify [<nick>] <password> first",
        )
    shown = normalize_name(name)
    problem = nick_problem(shown, frozenset())
    if problem is not None:
        raise ChatError(ErrorCode.NICK_INVALID, f"{shown}: {problem}")
    theirs = partner(accounts, shown)
    if theirs is None:
        raise ChatError(
            ErrorCode.NO_SUCH_NICK,
            f"{shown} has no account and is not identified to one; private "
            "messages are kept only between two accounts",
        )
    return mine, theirs


def since(*records: AccountRecord) -> int:
    """The time (ms) from which the accounts' conversation may be read."""
    return max(record.created for record in records)


def visible(entries: Iterable[Entry], start: int) -> list[Entry]:
    """The entries said at start (ms) or later: none of an earlier owner's."""
    return [entry for entry in entries if entry.time >= start]
