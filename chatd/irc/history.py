"""History for IRC clients: the backfill after a JOIN and IRCv3 CHATHISTORY.

What is kept is the line protocol's history (chatd.store): every MSG and
ACTION said in a room, with its id and time. IRC shows a kept message as the
PRIVMSG it was, tagged as the client's caps ask: `time` (server-time, the
same time the message was first shown with), `msgid` (message-tags, the id
it was first shown with) and `batch` (batch).

- The backfill: a client that did not ask for draft/chathistory gets a room's
  latest messages right after its JOIN (and NAMES), as a line user does. With
  batch they come as a `chathistory` batch of PRIVMSGs. Without batch a
  client cannot tell a replayed PRIVMSG from a live one: a bot would answer
  last week's commands again and a client would notify a mention from last
  week as new. So it gets them as NOTICEs from the server to the room
  (`[2026-11-30 23:50 UTC] <alice> text`, the time as a tag instead when it
  has server-time), which RFC 2812 says no one answers. A draft/chathistory
  client gets no backfill: it asks for what it wants (the spec says so).
- CHATHISTORY LATEST/BEFORE/AFTER/AROUND/BETWEEN/TARGETS as the IRCv3 draft
  has it, with msgid= and timestamp= selectors.

The source of a replayed line is the speaker's nickname alone: history keeps
the nickname a message was said under, not the user@host of whoever had it.

Private conversations (docs/protocol.md, Private history) are kept for their
identified sides; CHATHISTORY on a nickname answers the asker's conversation
with the party it names (chatd.model.private_history), and TARGETS lists them
beside the rooms. A replayed private message comes from the asker's nickname
to the target, or from the target to the asker's nickname, so that a client
files it where it asked; with account-tag it carries the sending account.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.config import HISTORY_MAX
from chatd.irc.caps import CHATHISTORY, CapState
from chatd.irc.message import IrcMessage, irc_line
from chatd.irc.render import _tag_value as tag_value
from chatd.irc.render import action_lines, add_tag, tag_section, text_lines
from chatd.irc.server import IrcServer
from chatd.model.accounts import Accounts
from chatd.model.chat import Chat, Room, User
from chatd.model.errors import ChatError
from chatd.model.names import clean_text, fold, valid_nick
from chatd.model.private_history import (
    PrivateConversation,
    own_account,
    visible,
    with_party,
)
from chatd.model.times import EPOCH, utc_time
from chatd.net.bulk import newest_within
from chatd.store.interface import (
    NICK_PARTY,
    Entry,
    HistoryUnavailable,
    Kind,
    Span,
    id_at,
)

BATCH_TYPE = "chathistory"
TARGETS_BATCH_TYPE = "draft/chathistory-targets"
SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")
# One or two selectors and a limit after the target; TARGETS has no target.
PARAMS = {
    "LATEST": 4,
    "BEFORE": 4,
    "AFTER": 4,
    "AROUND": 4,
    "BETWEEN": 5,
    "TARGETS": 4,
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
MAX_MSGID_DIGITS = 19  # ids are 64-bit whole numbers
UNAVAILABLE = "Messages could not be retrieved"


class HistorySession(Protocol):
    """What history needs of the IRC connection it answers."""

    chat: Chat
    server: IrcServer
    caps: CapState
    log: Logger
    user: User | None

    @property
    def accounts(self) -> Accounts:
        """The server's accounts: who may read which private conversation."""

    def send(self, data: bytes) -> None:
        """Write encoded lines."""

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come, everything sent later behind them."""

    def batch_id(self) -> str:
        """A batch reference unique on this connection."""

    def charge_answer(self, lines: int) -> None:
        """Charge the flood budget for an answer of lines lines (chatd.net.bulk)."""


class Refused(Exception):
    """A command that cannot be answered (CHATHISTORY, SEARCH): its FAIL line,
    ready to send."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = data


HistoryRefused = Refused  # a CHATHISTORY's


def standard_fail(
    session: HistorySession, command: str, code: str, *params: str, text: str
) -> bytes:
    """FAIL command code params :text (IRCv3 standard replies)."""
    words = [clean_text(param)[:64] or "*" for param in params]
    return irc_line(
        "FAIL", command, code, *words, text=text, source=session.server.name
    )


def fail(session: HistorySession, code: str, *params: str, text: str) -> bytes:
    """FAIL CHATHISTORY code params :text."""
    return standard_fail(session, "CHATHISTORY", code, *params, text=text)


# -- spelling kept messages ------------------------------------------------------


def entry_lines(
    entry: Entry, target: str, time: bool, msgid: bool, batch: str | None
) -> bytes:
    """A kept message as the PRIVMSG lines it was first shown as, tagged.

    Split over lines as a live message is, the msgid on the first only.
    """
    if entry.kind is Kind.ACTION:
        parts = action_lines(entry.nick, target, entry.text)
    else:
        parts = text_lines(entry.nick, "PRIVMSG", target, entry.text)
    stamp = utc_time(entry.time) if time else None
    out = []
    for at, data in enumerate(parts):
        tags = tag_section(stamp, entry.id if msgid and at == 0 else 0, batch)
        out.append(b"@" + tags.encode() + b" " + data if tags else data)
    return b"".join(out)


def notice_lines(entry: Entry, target: str, time: bool, source: str) -> bytes:
    """A kept message as NOTICEs from the server: for clients without batch.

    The time is a tag with server-time, else it leads the text.
    """
    if entry.kind is Kind.ACTION:
        said = f"* {entry.nick} {entry.text}"
    else:
        said = f"<{entry.nick}> {entry.text}"
    lines = []
    for data in text_lines(source, "NOTICE", target, _when(entry, time) + said):
        lines.append(f"@time={utc_time(entry.time)} ".encode() + data if time else data)
    return b"".join(lines)


def _when(entry: Entry, time: bool) -> str:
    """What leads a NOTICE's text: its time, unless the client has server-time."""
    if time:
        return ""
    moment = datetime.fromtimestamp(entry.time / 1000, UTC)
    return f"[{moment:%Y-%m-%d %H:%M} UTC] "


def batch_answer(
    session: HistorySession,
    target: str,
    entries: Sequence[Entry],
    budget: int,
    private: PrivateConversation | None = None,
) -> bytes:
    """A history answer for this client: a batch if it has batch, else lines.

    Past budget bytes the oldest messages are left out (the newest always
    goes), so that an answer never fills the send queue. private: when
    entries are the asker's private conversation with target.
    """
    caps = session.caps
    time, msgid = caps.has("server-time"), caps.has("message-tags")
    reference = session.batch_id() if caps.has("batch") else None
    if private is None:
        body = [entry_lines(entry, target, time, msgid, reference) for entry in entries]
    else:
        body = [_private_lines(session, entry, private, reference) for entry in entries]
    body = newest_within(body, budget, list, _total)
    if reference is None:
        return b"".join(body)
    source = session.server.name
    return b"".join(
        [
            irc_line("BATCH", f"+{reference}", BATCH_TYPE, target, source=source),
            *body,
            irc_line("BATCH", f"-{reference}", source=source),
        ]
    )


def _total(lines: list[bytes]) -> int:
    """The bytes of lines, all told."""
    return sum(map(len, lines))


def _private_lines(
    session: HistorySession,
    entry: Entry,
    private: PrivateConversation,
    batch: str | None,
) -> bytes:
    """A kept private message, from the asker to the other side or back.

    The other side is named as its account was registered (or the nickname
    asked for), which is what the asker's own messages were sent to, so that
    they replay as they were first shown; the batch keeps the target as
    asked. The entry's nick is the sender's account (or, on a side that was
    not identified, its nickname then); account-tag clients see an account.
    """
    me = session.user.nick if session.user is not None else private.mine.name
    caps = session.caps
    mine = fold(entry.nick) == private.me
    if mine:
        source, to = me, private.name
    else:
        source, to = private.name, me
    data = entry_lines(
        replace(entry, nick=source),
        to,
        caps.has("server-time"),
        caps.has("message-tags"),
        batch,
    )
    if (mine or private.account) and caps.has("account-tag"):
        data = add_tag(data, "account=" + tag_value(entry.nick))
    return data


def replay(
    session: HistorySession,
    target: str,
    entries: list[Entry],
    lead: Callable[[int], str],
    private: PrivateConversation | None = None,
) -> bytes:
    """Kept messages played back unasked (a backfill, a catch-up): a batch with
    batch, else NOTICEs from the server after one saying what they are (lead:
    how that one starts, given the count). b"" for none."""
    if not entries:
        return b""
    if session.caps.has("batch"):
        return batch_answer(session, target, entries, _budget(session), private)
    time = session.caps.has("server-time")
    source = session.server.name
    first = datetime.fromtimestamp(entries[0].time / 1000, UTC)
    # A private conversation's NOTICEs go to the user, its room's to the room.
    to = session.user.nick if private is not None and session.user else target
    head = irc_line(
        "NOTICE",
        to,
        text=f"{lead(len(entries))} in {target}, since {first:%Y-%m-%d %H:%M} UTC:",
        source=source,
    )
    lines = [notice_lines(entry, to, time, source) for entry in entries]
    return head + b"".join(lines)


def last_messages(count: int) -> str:
    """How a backfill's NOTICEs are led: "The last message", "The last 3 messages"."""
    return "The last message" if count == 1 else f"The last {count} messages"


def _budget(session: HistorySession) -> int:
    """Bytes one answer may take: half the send queue, as for the line door."""
    return session.server.config.sendq // 2


# -- the backfill ------------------------------------------------------------------


def backfill(session: HistorySession, room: Room) -> None:
    """After a client's JOIN: the room's latest messages, unless it asks itself.

    A draft/chathistory client asks with CHATHISTORY (and the spec says not
    to play history back to it unasked); nothing is sent for a room without
    history, nor while history cannot be read.
    """
    history = session.chat.history
    count = min(session.server.config.backfill, HISTORY_MAX)
    if (
        history is None
        or not count
        or session.caps.has(CHATHISTORY)
        or history.reason is not None
        or not history.has_history(room.key)
    ):
        return
    target = room.name

    def spelled(entries: list[Entry]) -> bytes:
        return replay(session, target, entries, last_messages)

    def nothing_when_unavailable(failure: Failure) -> bytes:
        failure.trap(HistoryUnavailable)
        return b""

    answer = history.select(room.key, Span(count)).addCallback(spelled)
    answer.addErrback(nothing_when_unavailable)
    session.send_later(answer, b"")


# -- CHATHISTORY -----------------------------------------------------------------


class Point:
    """Where a selector points in history: a msgid, or a time's place (id_at)."""

    __slots__ = ("position", "millis")

    def __init__(self, position: int, millis: int | None = None) -> None:
        self.position = position  # messages with smaller ids are before it
        self.millis = millis  # the time given, for timestamp=

    @property
    def before(self) -> int:
        """The exclusive upper id bound of the messages before this point."""
        return self.position

    @property
    def after(self) -> int:
        """The exclusive lower id bound of the messages after this point.

        After a msgid: larger ids. After a timestamp: received in a later
        millisecond (the time has no finer grain).
        """
        if self.millis is None:
            return self.position
        return id_at(self.millis + 1) - 1


def parse_time(text: str) -> int | None:
    """Read 2026-11-30T23:50:01.123Z as milliseconds since 1970, or None."""
    if not TIMESTAMP.fullmatch(text):
        return None
    try:
        moment = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        try:
            moment = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
    delta = moment.replace(tzinfo=UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_point(
    session: HistorySession, subcommand: str, text: str, timestamps_only: bool = False
) -> Point:
    """Read a msgid= or timestamp= selector, or raise HistoryRefused."""
    kind, _, value = text.partition("=")
    if kind.lower() == "timestamp":
        millis = parse_time(value)
        if millis is not None:
            return Point(id_at(millis), millis)
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text, text="Invalid timestamp")
        )
    if kind.lower() == "msgid" and not timestamps_only:
        if value.isascii() and value.isdecimal() and len(value) <= MAX_MSGID_DIGITS:
            return Point(int(value))
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text, text="Invalid msgid")
        )
    what = "a timestamp=" if timestamps_only else "a msgid= or timestamp="
    raise HistoryRefused(
        fail(
            session,
            "INVALID_PARAMS",
            subcommand,
            text,
            text=f"Invalid message reference: {what} selector is needed",
        )
    )


def parse_limit(session: HistorySession, subcommand: str, text: str) -> int:
    """Read the limit: 1 and up, lowered to the CHATHISTORY ISUPPORT maximum."""
    if not (text.isascii() and text.isdecimal()) or not text.strip("0"):
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text, text="Invalid limit")
        )
    return min(int(text) if len(text) <= 9 else HISTORY_MAX, HISTORY_MAX)


def spans(
    session: HistorySession, subcommand: str, selectors: Sequence[str], limit: int
) -> list[Span]:
    """The spans of history one subcommand asks for, oldest first."""
    if subcommand == "LATEST":
        if selectors[0] == "*":
            return [Span(limit)]
        point = parse_point(session, subcommand, selectors[0])
        return [Span(limit, after=point.after)]
    point = parse_point(session, subcommand, selectors[0])
    if subcommand == "BEFORE":
        return [Span(limit, before=point.before)]
    if subcommand == "AFTER":
        return [Span(limit, after=point.after, newest=False)]
    if subcommand == "AROUND":
        # Half before, the rest from the point on (the message itself first).
        earlier = limit // 2
        later = Span(limit - earlier, after=point.before - 1, newest=False)
        return [Span(earlier, before=point.before), later] if earlier else [later]
    other = parse_point(session, subcommand, selectors[1])
    if point.position <= other.position:  # BETWEEN, forwards: the oldest first
        return [Span(limit, after=point.after, before=other.before, newest=False)]
    return [Span(limit, after=other.after, before=point.before)]


def chathistory(session: HistorySession, msg: IrcMessage) -> None:
    """CHATHISTORY <subcommand> <target> <selector> [<selector>] <limit>."""
    subcommand = msg.params[0].upper()
    try:
        answer = _chathistory(session, subcommand, msg.params)
    except HistoryRefused as refusal:
        session.send(refusal.data)
        return
    if isinstance(answer, bytes):
        session.send(answer)


def _chathistory(
    session: HistorySession, subcommand: str, params: Sequence[str]
) -> bytes | None:
    """Answer now (bytes), or start an answer that comes later (None)."""
    if subcommand not in PARAMS:
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text="Unknown subcommand")
        )
    if len(params) < PARAMS[subcommand]:
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text="Insufficient parameters")
        )
    if len(params) > PARAMS[subcommand]:
        raise HistoryRefused(
            fail(session, "INVALID_PARAMS", subcommand, text="Too many parameters")
        )
    limit = parse_limit(session, subcommand, params[-1])
    session.charge_answer(limit)  # by the lines asked for, before the work
    if subcommand == "TARGETS":
        low = parse_point(session, subcommand, params[1], timestamps_only=True)
        high = parse_point(session, subcommand, params[2], timestamps_only=True)
        return split_targets(session, low, high, limit)
    target = params[1]
    history = session.chat.history
    if history is None:
        raise HistoryRefused(
            fail(
                session,
                "MESSAGE_ERROR",
                subcommand,
                target,
                text=f"{UNAVAILABLE}: this server keeps no history",
            )
        )
    wanted = spans(session, subcommand, params[2:-1], limit)
    if not target.startswith("#"):
        if target == "*":
            return batch_answer(session, target, [], _budget(session))
        if valid_nick(target):
            return _private(session, subcommand, target, wanted)
        raise HistoryRefused(
            fail(session, "INVALID_TARGET", subcommand, target, text=UNAVAILABLE)
        )
    refused = HistoryRefused(
        fail(session, "INVALID_TARGET", subcommand, target, text=UNAVAILABLE)
    )
    user = session.user
    if user is None:
        raise refused
    try:
        # Who may read is the model's (Chat.may_read), as for /history; the
        # spec lets a server refuse the rest, all in the same words.
        room = session.chat.may_read(user, target)
    except ChatError:
        raise refused from None
    if room is None:  # no such room now, or a secret room of others
        raise refused
    if history.reason is not None:
        raise HistoryRefused(
            _unavailable(session, subcommand, room.name, history.reason)
        )
    if not history.has_history(room.key):
        return batch_answer(session, room.name, [], _budget(session))
    reads = [history.select(room.key, span) for span in wanted if span.limit]
    name, budget = room.name, _budget(session)
    answer = _joined(gatherResults(reads, consumeErrors=True)).addCallback(
        lambda entries: batch_answer(session, name, entries, budget)
    )
    answer.addErrback(_refused, session, subcommand, name)
    late = _unavailable(session, subcommand, room.name, "it did not answer in time")
    session.send_later(answer, late)
    return None


def _private(
    session: HistorySession, subcommand: str, target: str, wanted: list[Span]
) -> bytes | None:
    """CHATHISTORY on a nickname: the asker's conversation with its party.

    Kept only for identified users: an asker who is not identified has none,
    and gets the empty batch of a conversation without messages (which says
    nothing about anyone else's).
    """
    history = session.chat.history
    budget = _budget(session)
    mine = own_account(session.accounts, session.user)
    if history is None or mine is None:
        return batch_answer(session, target, [], budget)
    if history.reason is not None:
        raise HistoryRefused(_unavailable(session, subcommand, target, history.reason))
    found = with_party(session.accounts, mine, target)
    reads = [
        history.select_private(found.me, found.other, span)
        for span in wanted
        if span.limit
    ]
    answer = _joined(gatherResults(reads, consumeErrors=True)).addCallback(
        lambda entries: batch_answer(
            session, target, visible(entries, found.start), budget, found
        )
    )
    answer.addErrback(_refused, session, subcommand, target)
    late = _unavailable(session, subcommand, target, "it did not answer in time")
    session.send_later(answer, late)
    return None


def _joined(reads: Deferred[list[list[Entry]]]) -> Deferred[list[Entry]]:
    """The entries of several reads, in order."""
    return reads.addCallback(lambda parts: [entry for part in parts for entry in part])


def _unavailable(
    session: HistorySession, subcommand: str, target: str, reason: str
) -> bytes:
    return fail(
        session,
        "MESSAGE_ERROR",
        subcommand,
        target,
        text=f"{UNAVAILABLE}: history is unavailable: {reason}",
    )


def _refused(failure: Failure, session: HistorySession, sub: str, target: str) -> bytes:
    """The FAIL for a read that failed (gatherResults wraps the first failure).

    Anything but HistoryUnavailable is our bug: it goes on to send_later,
    which logs it and sends the fallback.
    """
    if failure.check(FirstError):
        failure = failure.value.subFailure
    failure.trap(HistoryUnavailable)
    return _unavailable(session, sub, target, failure.value.reason)


def split_targets(
    session: HistorySession, low: Point, high: Point, limit: int
) -> bytes | None:
    """TARGETS: the rooms one is in, and the private conversations of one's
    account, whose latest message lies between two times; oldest latest
    message first. A conversation is named by the other account's name, or
    the nickname of a side that was not identified.
    """
    history = session.chat.history
    user = session.user
    if history is None or user is None:
        raise HistoryRefused(
            fail(
                session,
                "MESSAGE_ERROR",
                "TARGETS",
                "*",
                text=f"{UNAVAILABLE}: this server keeps no history",
            )
        )
    if history.reason is not None:
        raise HistoryRefused(_unavailable(session, "TARGETS", "*", history.reason))
    start, end = sorted((low.millis or 0, high.millis or 0))
    names = {room.key: room.name for room in user.rooms.values()}
    kept = [key for key in names if history.has_history(key)]
    accounts = session.accounts
    mine = own_account(accounts, user)

    def with_private(latest: dict[str, Entry]) -> Deferred[list[tuple[str, Entry]]]:
        rooms = [(names[key], entry) for key, entry in latest.items()]
        if mine is None:
            return succeed(rooms)

        def add(private: dict[str, Entry]) -> list[tuple[str, Entry]]:
            found = list(rooms)
            for key, entry in private.items():
                if key.startswith(NICK_PARTY):
                    name, start = key[len(NICK_PARTY) :], mine.created
                else:
                    theirs = accounts.account(key)
                    if theirs is None:
                        continue  # dropped: its conversations are on their way out
                    name, start = theirs.name, max(mine.created, theirs.created)
                if entry.time >= start:
                    found.append((name, entry))
            return found

        return history.private_latest(fold(mine.name)).addCallback(add)

    def listed(latest: list[tuple[str, Entry]]) -> bytes:
        found = sorted(
            (entry.id, name, entry.time)
            for name, entry in latest
            if start < entry.time < end
        )[:limit]
        lines = [
            irc_line(
                "CHATHISTORY",
                "TARGETS",
                name,
                utc_time(time),
                source=session.server.name,
            )
            for _, name, time in found
        ]
        return _wrap(session, TARGETS_BATCH_TYPE, lines)

    answer = history.latest(kept).addCallback(with_private).addCallback(listed)
    answer.addErrback(_refused, session, "TARGETS", "*")
    late = _unavailable(session, "TARGETS", "*", "it did not answer in time")
    session.send_later(answer, late)
    return None


def _wrap(session: HistorySession, kind: str, lines: list[bytes]) -> bytes:
    """Lines in a batch of kind (no parameters), if the client has batch."""
    if not session.caps.has("batch"):
        return b"".join(lines)
    reference = session.batch_id()
    tag = f"@batch={reference} ".encode()
    source = session.server.name
    return b"".join(
        [
            irc_line("BATCH", f"+{reference}", kind, source=source),
            *(tag + data for data in lines),
            irc_line("BATCH", f"-{reference}", source=source),
        ]
    )
