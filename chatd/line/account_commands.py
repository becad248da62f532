"""The line door's account commands (docs/protocol.md, Accounts).

/register, /identify, /password and /unregister, for a nickname; /register
and /unregister #room for a room. Checking a password takes a moment on
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
from chatd.model.catch_up import fork
from chatd.model.errors import ChatError, ErrorCode
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
    """/identify [<nick>] <password>."""
    user = session.registered_user()
    name, password = (user.nick, args[0]) if len(args) == 1 else (args[0], args[1])

    def done(record: AccountRecord) -> bytes:
        return info(f"You are identified as {record.name}.")

    checked = session.accounts.identify(user, name, password, session.host)
    caught_up = fork(checked)
    answer_later(session, checked, done)
    # docs/protocol.md, Read markers and catch-up: right after this answer.
    send_catch_up_after(session, caught_up)


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
