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

from chatd.irc.caps import READ_MARKER
from chatd.irc.history import HistorySession, parse_time
from chatd.irc.message import IrcMessage, irc_line
from chatd.model.catch_up import position_at, read_target
from chatd.model.chat import Room
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.times import utc_time
from chatd.store.interface import AccountRecord, Marker

__all__ = [
    "READ_MARKER",
    "markread",
    "markread_line",
    "on_identify",
    "on_join",
    "on_welcome",
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


def on_welcome(session: HistorySession) -> None:
    """After registering identified (SASL): every marker of the account, to a
    client with the cap (its channels it joins afterwards, each with its own)."""
    user = session.user
    if user is None or not user.account:
        return
    record = session.accounts.account(user.account)
    if record is not None:
        session.send(on_identify(session, record))
