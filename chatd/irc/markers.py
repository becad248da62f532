"""IRCv3 draft/read-marker: MARKREAD, the account's read markers on IRC.

docs/irc.md, Read markers. The markers are the model's (chatd.model.read_markers,
the same ones /read moves on the line door): a marker is an id and a time, and
IRC speaks of it by its time. So:

- `MARKREAD <target>` asks: `MARKREAD <target> timestamp=<time>`, or `*` when
  there is no marker there (nor such a room);
- `MARKREAD <target> timestamp=<time>` moves the marker to that time: its id is
  the position after every message received by then (catch_up.position_at),
  forward only; every client of the account with the cap then gets `MARKREAD
  <target> timestamp=<time>` (Chat.mark_read's ReadMoved, rendered by
  chatd.irc.render), the line and web connections `READ <target> <position>`.
  A time that would not move it is answered with the marker as it is, to the
  asker only;
- after a JOIN, right after NickServ IDENTIFY and after registering with SASL,
  a client with the cap is sent the markers (or `*` for the room joined).

A user that is not identified has markers for its connection's life only (its
own, by the nickname for a private conversation). Refusals are standard
replies: FAIL MARKREAD NEED_MORE_PARAMS, INVALID_PARAMS (a bad target or time,
a room one may not set a marker of).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure

from chatd.config import HISTORY_MAX
from chatd.irc.caps import CHATHISTORY, READ_MARKER
from chatd.irc.history import HistorySession, parse_time, replay
from chatd.irc.history import last_messages as _last
from chatd.irc.message import IrcMessage, irc_line
from chatd.model.catch_up import CatchUp, catch_up, position_at, read_target
from chatd.model.chat import Room
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.private_history import with_party
from chatd.model.times import utc_time
from chatd.store.interface import AccountRecord, HistoryUnavailable, Marker, Span

__all__ = [
    "READ_MARKER",
    "markread",
    "markread_line",
    "on_identify",
    "on_join",
    "on_welcome",
    "replay_after",
    "replay_on_login",
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


def markread(session: HistorySession, msg: IrcMessage) -> None:
    """MARKREAD <target> [timestamp=<time>]."""
    user = session.user
    if user is None:
        return
    if not msg.params:
        session.send(_fail(session, "NEED_MORE_PARAMS", text="Missing parameters"))
        return
    name = msg.params[0]
    chat = session.chat
    try:
        target = read_target(session.accounts, user, name, session=True)
    except ChatError as error:
        if len(msg.params) < 2 and error.code is ErrorCode.BAD_ARGS:
            # Asking of a room that is not there: it has no marker.
            session.send(markread_line(session, name, None))
        else:
            session.send(_refusal(session, name, error))
        return
    kept = chat.marker_of(user, target.key)
    if len(msg.params) < 2:
        session.send(markread_line(session, target.name, kept))
        return
    kind, _, value = msg.params[1].partition("=")
    millis = parse_time(value) if kind.lower() == "timestamp" else None
    if millis is None:
        session.send(_fail(session, "INVALID_PARAMS", name, text="Invalid timestamp"))
        return
    position = position_at(millis)
    if kept is not None and kept.id >= position:
        # Forward only: the marker as it is, to the asker only.
        session.send(markread_line(session, target.name, kept))
        return
    # Every client of the account (of the user, if not identified) hears it.
    chat.mark_read(user, target.key, target.name, position, millis)


def on_join(session: HistorySession, room: Room) -> None:
    """After a JOIN: the room's marker (or *), to a client with the cap."""
    user = session.user
    if user is None or not session.caps.has(READ_MARKER):
        return
    marker = session.chat.marker_of(user, room.key)
    session.send(markread_line(session, room.name, marker))


def on_identify(session: HistorySession, account: AccountRecord) -> bytes:
    """Right after identifying: every marker of account, to a client with the cap
    (its catch-up: what it missed it asks with CHATHISTORY)."""
    if not session.caps.has(READ_MARKER):
        return b""
    kept = session.chat.markers.get(fold(account.name), {})
    ordered = sorted(kept.values(), key=lambda marker: marker.id)
    return b"".join(markread_line(session, marker.name, marker) for marker in ordered)


def _nothing_unavailable(failure: Failure) -> bytes:
    """History that cannot be read now: nothing played (the client did not ask)."""
    failure.trap(HistoryUnavailable)
    return b""


def _missed(count: int) -> str:
    return f"Missed: {count} message{'' if count == 1 else 's'}"


def _missed_private(count: int) -> str:
    return f"Missed private: {count} message{'' if count == 1 else 's'}"


def on_welcome(session: HistorySession) -> None:
    """After registering identified (SASL): every marker of the account, to a
    client with the cap (its channels it joins afterwards, each with its own)."""
    user = session.user
    if user is None or not user.account:
        return
    record = session.accounts.account(user.account)
    if record is not None:
        session.send(on_identify(session, record))


def replay_after(
    session: HistorySession,
    identified: Deferred[AccountRecord],
    every_room: bool = False,
) -> None:
    """After identifying, for a client that does not ask with CHATHISTORY:
    what came after each marker of the account, in each room it is in and in
    each private conversation (chatd.model.catch_up), played back as the
    backfill is (a batch, or NOTICEs). Nothing if identify fails.

    NickServ IDENTIFY: rooms without a marker had their backfill at JOIN,
    nothing more for them. An attach's burst (every_room, replay_on_login)
    plays no backfill of its own: those rooms get theirs here, the latest
    --backfill messages, so that no message is played twice.
    """
    if session.user is None or session.caps.has(CHATHISTORY):
        return
    fresh = min(session.server.config.backfill, HISTORY_MAX)

    def latest(name: str) -> Deferred[bytes]:
        """A room's latest messages, as a JOIN's backfill plays them."""
        history = session.chat.history
        if history is None:
            return succeed(b"")
        read = history.select(fold(name), Span(fresh))
        spelled = read.addCallback(lambda found: replay(session, name, found, _last))
        return spelled.addErrback(_nothing_unavailable)

    def spelled(found: CatchUp, record: AccountRecord) -> Deferred[bytes]:
        marked = session.chat.markers.get(fold(record.name), {})
        parts: list[Deferred[bytes]] = []
        for room in found.rooms:
            read = fold(room.name) in marked
            if read and room.entries:
                parts.append(succeed(replay(session, room.name, room.entries, _missed)))
            elif not every_room or not fresh:
                continue  # IDENTIFY: a room without a marker had its JOIN's backfill
            elif read:  # read to its end: the latest, as a JOIN gets them
                parts.append(latest(room.name))
            else:
                parts.append(succeed(replay(session, room.name, room.entries, _last)))
        for private in found.privates:
            party = with_party(session.accounts, record, private.name)
            missed = private.entries
            said = replay(session, private.name, missed, _missed_private, party)
            parts.append(succeed(said))
        joined = gatherResults(parts, consumeErrors=True)
        return joined.addCallback(b"".join)

    def then(record: AccountRecord) -> Deferred[bytes] | bytes:
        # The user now: an attach has made this connection another user's.
        user = session.user
        if user is None or fold(user.account) != fold(record.name):
            return b""  # not identified to it after all (too many devices)
        found = catch_up(session.accounts, user, record, HISTORY_MAX, fresh or 1)
        return found.addCallback(spelled, record)

    def failed(failure: Failure) -> bytes:
        return b""

    session.send_later(identified.addCallbacks(then, failed), b"")


def replay_on_login(session: HistorySession) -> None:
    """After a login with SASL, or an attach (SASL or NickServ IDENTIFY): the
    replay NickServ IDENTIFY gives (replay_after), every room of the user
    included (an attach's burst has no backfill of its own: docs/irc.md,
    Several devices). Nothing for a client that asks with CHATHISTORY."""
    user = session.user
    if user is None or not user.account or session.caps.has(CHATHISTORY):
        return
    record = session.accounts.account(user.account)
    if record is not None:
        replay_after(session, succeed(record), every_room=True)
