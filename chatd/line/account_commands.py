"""The line door's account commands (docs/protocol.md, Accounts).

/register, /identify, /password and /unregister, for a nickname; /register
and /unregister #room for a room; /resetpass and /dropaccount, anyone's
account, for server operators. Checking a password takes a moment on
another thread: the answer comes when it is known, and whatever the server
sends this client meanwhile waits behind it (Connection.send_later).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatd.line.catch_up import send_catch_up_after
from chatd.line.room_commands import error_line
from chatd.line.wire import line
from chatd.model import logins
from chatd.model.catch_up import fork
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.logins import Login
from chatd.store.accounts import AccountRecord

if TYPE_CHECKING:
    from chatd.line.session import Session

T = TypeVar("T")

TOO_SLOW = error_line(
    ChatError(
        ErrorCode.THROTTLED,
        "the server is busy checking passwords; try again in a moment",
    )
)


def info(text: str) -> bytes:
    """An INFO line."""
    return line("INFO", text=text)


def answer_later(
    session: Session, answer: Deferred[T], said: Callable[[T], bytes]
) -> None:
    """Send said(result) when answer comes, or its refusal as ERR."""

    def refused(failure: Failure) -> bytes:
        failure.trap(ChatError)
        return error_line(cast(ChatError, failure.value))

    session.send_later(answer.addCallbacks(said, refused), TOO_SLOW)


def register(session: Session, args: list[str]) -> None:
    """/register <password> <password>, or /register [#room]."""
    user = session.registered_user()
    if not args or args[0].startswith("#"):
        record = session.chat.register_room(user, args[0] if args else None)
        session.log.info(
            "{room} registered by {account}", room=record.name, account=user.account
        )
        session.send_info(
            f"{record.name} is registered to your account, {user.account}: its "
            "operators keep their status, and its topic, modes and bans are kept."
        )
        return
    if len(args) != 2:
        raise ChatError(
            ErrorCode.BAD_ARGS,
            "type your password twice: /register <password> <password>",
        )

    def done(record: AccountRecord) -> bytes:
        return info(
            f"{record.name} is registered to you, and you are identified. Next "
            f"time, /identify <password> (within "
            f"{session.accounts.settings.grace:g} seconds of taking the name)."
        )

    answer_later(
        session,
        session.accounts.register(user, args[0], args[1], session.host),
        done,
    )


def identify(session: Session, args: list[str]) -> None:
    """/identify [<nick>] <password>; at the nickname prompt, log in (log_in)."""
    if session.awaiting_nick:
        log_in(session, args)
        return
    user = session.registered_user()
    name, password = (user.nick, args[0]) if len(args) == 1 else (args[0], args[1])

    def done(record: AccountRecord) -> bytes:
        return info(f"You are identified as {record.name}.")

    checked = session.accounts.identify(user, name, password, session.host)
    caught_up = fork(checked)
    answer_later(session, checked, done)
    # docs/protocol.md, Read markers and catch-up: right after this answer.
    send_catch_up_after(session, caught_up)


def log_in(session: Session, args: list[str]) -> None:
    """/identify <nick> <password> at the nickname prompt (docs/protocol.md, Devices).

    A right password registers the connection as <nick>, or attaches it to
    the user of the same account (chatd.model.logins decides); a wrong one
    is ERR auth-failed and the nickname prompt again.
    """
    if len(args) != 2:
        raise ChatError(
            ErrorCode.BAD_ARGS,
            "at the nickname prompt: /identify <nick> <password>, or a nickname",
        )
    config = session.config
    answer = logins.log_in(
        session.accounts, args[0], args[1], session.host, config.max_devices
    )

    def logged_in(login: Login) -> bytes:
        if session.awaiting_nick:  # not if it chose a nickname meanwhile
            session.log_in(login)
            return b""
        return info("You chose a nickname meanwhile; /identify <password> now.")

    def refused(failure: Failure) -> bytes:
        failure.trap(ChatError)
        session.reply_error(cast(ChatError, failure.value))  # and the prompt again
        return b""

    session.send_later(answer.addCallback(logged_in).addErrback(refused), TOO_SLOW)


def always_on(session: Session, args: list[str]) -> None:
    """/always-on on|off: stay in your rooms with no device (docs/protocol.md)."""
    word = args[0].lower()
    if word not in ("on", "off"):
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /always-on on|off")
    user = session.registered_user()
    on = word == "on"
    session.chat.set_always_on(user, on, session.config.max_always_on_per_ip)
    if on:
        session.send_info(
            "Always-on is on: when your last device goes, you stay in your rooms, "
            "marked away, and what is said to you is kept."
        )
    else:
        session.send_info("Always-on is off: when your last device goes, you quit.")


def password(session: Session, args: list[str]) -> None:
    """/password <new> <new>: a new password for your account."""
    user = session.registered_user()

    def done(record: AccountRecord) -> bytes:
        return info(f"{record.name} has its new password.")

    answer = session.accounts.set_password(user, args[0], args[1], session.host)
    answer_later(session, answer, done)


def unregister(session: Session, args: list[str]) -> None:
    """/unregister <password>, or /unregister #room."""
    user = session.registered_user()
    if args[0].startswith("#"):
        room = session.chat.unregister_room(user, args[0])
        session.log.info(
            "{room} unregistered by {nick}", room=room.name, nick=user.nick
        )
        session.send_info(f"{room.name} is not registered any more.")
        return

    def done(record: AccountRecord) -> bytes:
        return info(
            f"The account {record.name} is gone; the nickname is free for anyone."
        )

    answer_later(
        session, session.accounts.unregister(user, args[0], session.host), done
    )


def resetpass(session: Session, args: list[str]) -> None:
    """/resetpass <account> <password>: a new password (server operators)."""
    user = session.registered_user()

    def done(record: AccountRecord) -> bytes:
        return info(f"{record.name} has its new password.")

    answer = session.accounts.reset_password(args[0], args[1], by=user)
    answer_later(session, answer, done)


def dropaccount(session: Session, args: list[str]) -> None:
    """/dropaccount <account>: drop someone's account (server operators)."""
    user = session.registered_user()

    def done(record: AccountRecord) -> bytes:
        return info(
            f"The account {record.name} is gone; the nickname is free for anyone."
        )

    answer_later(session, session.accounts.drop_account(args[0], by=user), done)
