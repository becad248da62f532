"""The line door's read markers: /read, and the catch-up after identifying.

docs/protocol.md, Read markers and catch-up. What a marker may name and what
a device missed are the model's (chatd.model.catch_up); here they are spelled
as READ, HISTORY and ENDHISTORY lines, in order with everything else the
connection is sent (Session.send_later).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatd.config import HISTORY_MAX
from chatd.line.wire import history_lines, line, private_history_lines, read_line
from chatd.model.catch_up import CatchUp, ReadTarget, catch_up, check_read, mark
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.net.bulk import newest_within
from chatd.store.interface import AccountRecord, Entry

if TYPE_CHECKING:
    from chatd.line.session import Session

# The smallest share of the send queue one room's or conversation's part of a
# catch-up may take (its newest messages go first; the rest is /history's).
SMALLEST_PART = 4096


def _refusal(failure: Failure) -> bytes:
    failure.trap(ChatError)
    error = cast(ChatError, failure.value)
    return line("ERR", error.code.value, text=clean_text(error.text))


def message_id(word: str) -> int:
    """The id a client gave (a whole number), or ChatError(BAD_ARGS)."""
    if not (word.isascii() and word.isdecimal() and len(word) <= 19):
        raise ChatError(ErrorCode.BAD_ARGS, f"{word} is not a message id")
    return int(word)


def read(session: Session, args: list[str]) -> None:
    """/read <target> <id>: move the account's read marker forward.

    Every connection of the account, this one included, gets the READ line
    from the model (an id at or before the marker changes nothing, and so
    answers nothing); a refusal is ERR.
    """
    user = session.registered_user()
    msg_id = message_id(args[1])

    def moved(found: tuple[ReadTarget, Entry]) -> bytes:
        target, entry = found
        if session.chat.users.get(user.key) is user:
            mark(session.accounts, user, target, entry)
        return b""

    checked = check_read(session.accounts, user, args[0], msg_id)
    answer: Deferred[bytes] = checked.addCallbacks(moved, _refusal)
    session.send_later(answer, _LATE)


_LATE = line(
    "ERR", ErrorCode.NO_HISTORY.value, text="history did not answer in time; try again"
)


def spell(found: CatchUp, budget: int) -> bytes:
    """A catch-up as lines: READ for each marker, then each room's HISTORY lines
    and ENDHISTORY, then each private conversation's (kind PRIV)."""
    parts = [read_line(marker.name, marker.id) for marker in found.markers]
    share = max(SMALLEST_PART, budget // max(1, len(found.rooms) + len(found.privates)))
    for room in found.rooms:
        parts.append(
            newest_within(room.entries, share, partial(history_lines, room.name))
        )
    for private in found.privates:
        parts.append(
            newest_within(
                private.entries, share, partial(private_history_lines, private.name)
            )
        )
    return b"".join(parts)


def _caught_up(session: Session, account: AccountRecord) -> Deferred[bytes]:
    """The catch-up's lines for the connection's user, identified to account."""
    user = session.registered_user()
    answer = catch_up(session.accounts, user, account, HISTORY_MAX)
    return answer.addCallback(spell, session.config.sendq // 2)


def send_catch_up(session: Session, account: AccountRecord) -> None:
    """Send this connection its catch-up (docs/protocol.md): the connection's
    user has just identified to account (or attached to a user that is), in
    order with everything else it is sent."""
    session.send_later(_caught_up(session, account), b"")


def send_catch_up_after(session: Session, identified: Deferred[AccountRecord]) -> None:
    """Send the catch-up once identified fires (nothing if it fails): after
    whatever the connection was sent before this call, the answer to the
    identify included, however soon the check comes."""

    def then(record: AccountRecord) -> Deferred[bytes]:
        return _caught_up(session, record)

    def failed(failure: Failure) -> bytes:
        return b""

    session.send_later(identified.addCallbacks(then, failed), b"")
