"""Private history: who may read which conversation, for every door.

docs/protocol.md, Private history: a private message with at least one
identified side is kept under the pair of its parties (Chat.tell): an
identified side's account, a side that was not by its nickname. Reading it
back needs an account: the asker is identified, and reads the conversation
between its account and the party a name means: the account of that name,
else the account of the user identified under that nickname now, else the
nickname itself (what was said with whoever held it while not identified,
the asker being the identified side). Nothing here goes by the asker's
nickname: a nickname can pass to another person, an account cannot.

An account that is dropped takes its conversations with it (Accounts asks
the store to forget them). Should that deletion fail (the store is down),
a later account of the same name must still not read them: every read keeps
only messages said after the accounts involved were created (start).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatd.model.accounts import Accounts
from chatd.model.chat import User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold, nick_problem, normalize_name
from chatd.store.interface import AccountRecord, Entry, nick_party


@dataclass(frozen=True, slots=True)
class PrivateConversation:
    """The asker's side and the other side of one kept conversation."""

    mine: AccountRecord  # the asker's account
    me: str  # its party (folded name)
    other: str  # the other party: an account's folded name, or nick_party(...)
    account: bool  # whether the other party is an account
    name: str  # the other side as shown: the account as registered, or the nickname
    start: int  # ms: what was said before this is an earlier owner's


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


def with_party(
    accounts: Accounts, mine: AccountRecord, name: str
) -> PrivateConversation:
    """The conversation of account mine with the party name means (partner(),
    else the nickname itself)."""
    theirs = partner(accounts, name)
    me = fold(mine.name)
    if theirs is None:
        other = nick_party(fold(name))
        return PrivateConversation(mine, me, other, False, name, mine.created)
    start = max(mine.created, theirs.created)
    return PrivateConversation(mine, me, fold(theirs.name), True, theirs.name, start)


def conversation_of(accounts: Accounts, user: User, name: str) -> PrivateConversation:
    """user's conversation with name, or raise ChatError.

    not-identified: the asker has no account now (and so no private
    history); nick-invalid: name cannot be a nickname.
    """
    mine = own_account(accounts, user)
    if mine is None:
        raise ChatError(
            ErrorCode.NOT_IDENTIFIED,
            "private history is kept only for identified users; "
            "/identify [<nick>] <password> first",
        )
    shown = normalize_name(name)
    problem = nick_problem(shown, frozenset())
    if problem is not None:
        raise ChatError(ErrorCode.NICK_INVALID, f"{shown}: {problem}")
    return with_party(accounts, mine, shown)


def visible(entries: Iterable[Entry], start: int) -> list[Entry]:
    """The entries said at start (ms) or later: none of an earlier owner's."""
    return [entry for entry in entries if entry.time >= start]
