"""Logging in at the nickname prompt: who takes the nickname (protocol.md, Devices).

`/identify <nick> <password>` in answer to the nickname prompt checks the
password as /identify does (Accounts.identify: the same words and the same
time whether the account exists or not), then decides, for every door:

- nobody holds <nick>: the connection registers as <nick>, identified;
- a user identified to the same account holds it: the connection attaches
  to that user (Chat.attach), up to max_devices connections per account;
- someone else holds it: they are renamed to a guest name at once, and
  told why, and the connection takes the nickname as if it were free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from chatd.model import devices
from chatd.model.accounts import NICKSERV, Accounts
from chatd.model.chat import User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold
from chatd.store.interface import AccountRecord


@dataclass(frozen=True, slots=True)
class Login:
    """A right password at the prompt: the account, and the user to attach to.

    holder None: the nickname is free now; register as record.name.
    """

    record: AccountRecord
    holder: User | None


def log_in(
    accounts: Accounts, nick: str, password: str, host: str, max_devices: int
) -> Deferred[Login]:
    """Check password for account nick; decide who takes the nickname (claim).

    Fails with auth-failed or throttled (Accounts.identify), or
    too-many-devices (claim). The claim, and what the caller's callbacks do
    with the Login, run where shared state may change (Chat.changing: on a
    cluster, in a turn of the node's own, since the check ends after the
    line's turn).
    """
    checked = accounts.identify(None, nick, password, host)

    def claimed(record: AccountRecord) -> Deferred[Login]:
        done: Deferred[Login] = Deferred()

        def run() -> None:
            try:
                login = claim(accounts, record, max_devices)
            except ChatError as error:
                done.errback(error)
                return
            done.callback(login)  # the caller's callbacks run now, here

        accounts.chat.changing(run)
        return done

    return checked.addCallback(claimed)


def attachable(
    users: Mapping[str, User], account: str, max_devices: int, nick: str = ""
) -> User | None:
    """The user identified to account to attach to: holding its name, or nick.

    nick is the nickname the connection asked for (IRC's NICK, which a SASL
    client may choose apart from its account's name, as Ergo allows): its
    holder is attached to when identified to the same account. None if
    neither is held so identified. ChatError too-many-devices when it has
    max_devices connections, counted on every node of a cluster (the holder
    may be connected through another node: this connection is then one
    more of it, held here; docs/cluster.md, Several devices on a cluster).
    """
    key = fold(account)
    holder = users.get(key)
    if holder is None or not holder.account or fold(holder.account) != key:
        holder = users.get(fold(nick)) if nick else None
        if holder is None or not holder.account or fold(holder.account) != key:
            return None
    if devices.count(holder) >= max_devices:
        raise ChatError(
            ErrorCode.TOO_MANY_DEVICES,
            f"{holder.nick} is connected from {max_devices} devices, the "
            "most one account may be; close one of them first",
        )
    return holder


def claim(accounts: Accounts, record: AccountRecord, max_devices: int) -> Login:
    """Who takes record's nickname now that its password was given.

    The holder identified to record attaches the connection (unless it has
    max_devices already, on every node of a cluster); any other holder is
    renamed to a guest name first.
    """
    chat = accounts.chat
    holder = chat.users.get(fold(record.name))
    if holder is None:
        return Login(record, None)
    attached = attachable(chat.users, record.name, max_devices)
    if attached is not None:
        return Login(record, attached)
    old, guest = holder.nick, accounts.guest_name()
    chat.rename(holder, guest)
    accounts.log.info("{old} renamed {new}: its account logged in", old=old, new=guest)
    chat.notify(  # replicated: the holder may be another node's user
        holder,
        f"{old} is the nickname of an account that just logged in, so you "
        f"are now {guest}. Choose another nickname with /nick.",
        NICKSERV,
    )
    return Login(record, None)
