"""IRCv3 draft/read-marker: MARKREAD, the account's read markers on IRC.

docs/irc.md, Read markers. The markers are the model's (chatd.model.read_markers,
the same ones /read moves on the line door): a marker is an id, and IRC speaks
of it by its message's time. So:

- `MARKREAD <target>` asks: `MARKREAD <target> timestamp=<time>`, or `*` when
  the account has no marker there;
- `MARKREAD <target> timestamp=<time>` moves the marker to the target's last
  message at or before that time, forward only (chatd.model.catch_up); every
  client of the account with the cap then gets `MARKREAD <target>
  timestamp=<its time>` (Chat.mark_read's ReadMoved, rendered by
  chatd.irc.render). A time that would not move it is answered with the
  marker as it is, to the asker only;
- after a JOIN, and for every marker right after identifying, a client with
  the cap is sent the marker (or `*`).

Refusals are standard replies: FAIL MARKREAD NEED_MORE_PARAMS,
INVALID_PARAMS (a bad target or time, a room one may not read),
ACCOUNT_REQUIRED (not identified), INTERNAL_ERROR (no history to read).
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatd.config import HISTORY_MAX
from chatd.irc.caps import CHATHISTORY, READ_MARKER
from chatd.irc.history import HistorySession, parse_time, replay
from chatd.irc.message import IrcMessage, irc_line
from chatd.model.catch_up import (
    CatchUp,
    ReadTarget,
    catch_up,
    check_read_at,
    mark,
    read_target,
)
from chatd.model.chat import Room
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.private_history import with_party
from chatd.model.times import utc_time
from chatd.store.interface import AccountRecord, Entry, Marker

__all__ = [
    "READ_MARKER",
    "markread",
    "markread_line",
    "on_identify",
    "on_join",
    "replay_after",
]


def markread_line(session: HistorySession, target: str, marker: Marker | None) -> bytes:
    """MARKREAD <target> timestamp=<time> (or * without a marker), from the server."""
    when = f"timestamp={utc_time(marker.time)}" if marker is not None else "*"
    return irc_line("MARKREAD", target, when, source=session.server.name)


def _fail(session: HistorySession, code: str, *words: str, text: str) -> bytes:
    shown = [clean_text(word)[:64] or "*" for word in words]
    return irc_line(
        "FAIL", "MARKREAD", code, *shown, text=text, source=session.server.name
    )


_CODES = {
    ErrorCode.NOT_IDENTIFIED: "ACCOUNT_REQUIRED",
    ErrorCode.NO_HISTORY: "INTERNAL_ERROR",
}


def _refusal(session: HistorySession, target: str, error: ChatError) -> bytes:
    code = _CODES.get(error.code, "INVALID_PARAMS")
    return _fail(session, code, target, text=clean_text(error.text))


def _marker_of(session: HistorySession, target: ReadTarget) -> Marker | None:
    return session.chat.marker(fold(target.account.name), target.key)


def markread(session: HistorySession, msg: IrcMessage) -> None:
    """MARKREAD <target> [timestamp=<time>]."""
    user = session.user
    if user is None:
        return
    if not msg.params:
        session.send(_fail(session, "NEED_MORE_PARAMS", text="Missing parameters"))
        return
    name = msg.params[0]
    try:
        target = read_target(session.accounts, user, name)
    except ChatError as error:
        session.send(_refusal(session, name, error))
        return
    if len(msg.params) < 2:
        session.send(markread_line(session, target.name, _marker_of(session, target)))
        return
    kind, _, value = msg.params[1].partition("=")
    millis = parse_time(value) if kind.lower() == "timestamp" else None
    if millis is None:
        session.send(_fail(session, "INVALID_PARAMS", name, text="Invalid timestamp"))
        return

    def found(answer: tuple[ReadTarget, Entry | None]) -> bytes:
        target, entry = answer
        kept = _marker_of(session, target)
        if entry is not None and (kept is None or entry.id > kept.id):
            if session.chat.users.get(user.key) is user:
                mark(session.accounts, user, target, entry)
            return b""  # every client of the account is sent the new marker
        return markread_line(session, target.name, kept)

    def refused(failure: Failure) -> bytes:
        failure.trap(ChatError)
        return _refusal(session, name, cast(ChatError, failure.value))

    checked = check_read_at(session.accounts, user, name, millis)
    answer: Deferred[bytes] = checked.addCallbacks(found, refused)
    late = _fail(session, "INTERNAL_ERROR", name, text="History did not answer")
    session.send_later(answer, late)


def on_join(session: HistorySession, room: Room) -> None:
    """After a JOIN: the room's marker, to a client with the cap that is identified."""
    user = session.user
    if user is None or not user.account or not session.caps.has(READ_MARKER):
        return
    marker = session.chat.marker(fold(user.account), room.key)
    session.send(markread_line(session, room.name, marker))


def on_identify(session: HistorySession, account: AccountRecord) -> bytes:
    """Right after identifying: every marker of account, to a client with the cap
    (its catch-up: what it missed it asks with CHATHISTORY)."""
    if not session.caps.has(READ_MARKER):
        return b""
    kept = session.chat.markers.get(fold(account.name), {})
    ordered = sorted(kept.values(), key=lambda marker: marker.id)
    return b"".join(markread_line(session, marker.name, marker) for marker in ordered)


def _missed(count: int) -> str:
    return f"Missed: {count} message{'' if count == 1 else 's'}"


def _missed_private(count: int) -> str:
    return f"Missed private: {count} message{'' if count == 1 else 's'}"


def replay_after(session: HistorySession, identified: Deferred[AccountRecord]) -> None:
    """After NickServ IDENTIFY, for a client that does not ask with CHATHISTORY:
    what came after each marker of the account, in each room it is in and in
    each private conversation (chatd.model.catch_up), played back as the
    backfill is (a batch, or NOTICEs). Rooms without a marker had their
    backfill at JOIN: nothing more for them. Nothing if identify fails."""
    user = session.user
    if user is None or session.caps.has(CHATHISTORY):
        return

    def spelled(found: CatchUp, record: AccountRecord) -> bytes:
        marked = session.chat.markers.get(fold(record.name), {})
        parts = [
            replay(session, room.name, room.entries, _missed)
            for room in found.rooms
            if fold(room.name) in marked
        ]
        for private in found.privates:
            party = with_party(session.accounts, record, private.name)
            missed = private.entries
            parts.append(replay(session, private.name, missed, _missed_private, party))
        return b"".join(parts)

    def then(record: AccountRecord) -> Deferred[bytes]:
        found = catch_up(session.accounts, user, record, HISTORY_MAX)
        return found.addCallback(spelled, record)

    def failed(failure: Failure) -> bytes:
        return b""

    session.send_later(identified.addCallbacks(then, failed), b"")
