"""How chatd's lines are spelled: rendering server lines and splitting them.

docs/protocol.md: every server line is a VERB, a fixed number of one-word
arguments and, for most verbs, one free-text field that runs to the end of
the line. The server ends every line with CRLF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chatd.model.chat import (
    AccountChanged,
    Action,
    Away,
    Deleted,
    Event,
    Invited,
    Joined,
    Kicked,
    Message,
    ModesChanged,
    Notice,
    Parted,
    Private,
    Quit,
    ReadMoved,
    Renamed,
    Tagged,
    TopicChanged,
)
from chatd.model.client_tags import reaction, reply_to, typing_state
from chatd.model.names import fold
from chatd.model.room_rules import BAN_MODE, OP_MODE, VOICE_MODE, Change
from chatd.model.state import User
from chatd.model.times import utc_time
from chatd.net.bulk import pack_words
from chatd.net.output import once_per_broadcast
from chatd.store.interface import Entry, Kind, millis

CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Shape:
    """The shape of one server verb: how many words, and whether text follows."""

    words: int
    text: bool


# docs/protocol.md, Server to client. USERS and ROOMS carry a list of words instead.
SERVER_VERBS: dict[str, Shape] = {
    "HELLO": Shape(1, True),
    "NICK": Shape(0, True),
    "WELCOME": Shape(1, True),
    "MSG": Shape(2, True),
    "ACTION": Shape(2, True),
    "PRIV": Shape(2, True),
    "JOIN": Shape(2, False),
    "PART": Shape(2, True),
    "QUIT": Shape(1, True),
    "RENAME": Shape(2, False),
    "INFO": Shape(0, True),
    "ERR": Shape(1, True),
    "BYE": Shape(0, True),
    # Version 2: HISTORY <target> <id> <time> <kind> <nick> <text>.
    "HISTORY": Shape(5, True),
    "ENDHISTORY": Shape(2, False),
    # chatd's extension, the answer to /search (docs/protocol.md, Searching
    # history): FOUND <target> <id> <time> <kind> <nick> <text>, newest
    # first, then ENDSEARCH <count>.
    "FOUND": Shape(5, True),
    "ENDSEARCH": Shape(1, False),
    # chatd's extension, only after /ids on: ID <room> <id> <time> before the
    # MSG or ACTION it names (docs/protocol.md, Message ids).
    "ID": Shape(3, False),
    # Version 3 (docs/protocol.md, Devices (version 3)): AWAY <nick> <text>.
    "AWAY": Shape(1, True),
    # chatd's extension, only after /ids on: DELETED <target> <id> <by>
    # <reason> (docs/protocol.md, Deleting messages).
    "DELETED": Shape(3, True),
    # Version 3: READ <target> <id>, an account's read marker (docs/protocol.md,
    # Read markers and catch-up).
    "READ": Shape(2, False),
    # chatd's extension, only after /tags on (docs/protocol.md, Typing,
    # reactions and replies): TYPING <target> <nick> <state>; REACT <target>
    # <nick> <id> <reaction>; REPLY <target> <id> before the message it marks.
    "TYPING": Shape(3, False),
    "REACT": Shape(3, True),
    "REPLY": Shape(2, False),
    # chatd's extension, rooms people run (docs/protocol.md): TOPIC <room>
    # <nick> <text>; OP, DEOP, VOICE, DEVOICE <room> <nick> <by>; BAN, UNBAN
    # <room> <mask> <by>; MODE <room> <by> <change> <argument>; KICK <room>
    # <nick> <by> <reason>; INVITE <room> <by>; MODES <room> <modes>
    # <arguments>; and accounts: ACCOUNT <nick> <account>.
    "TOPIC": Shape(2, True),
    "OP": Shape(3, False),
    "DEOP": Shape(3, False),
    "VOICE": Shape(3, False),
    "DEVOICE": Shape(3, False),
    "BAN": Shape(3, False),
    "UNBAN": Shape(3, False),
    "MODE": Shape(3, True),
    "KICK": Shape(3, True),
    "INVITE": Shape(2, False),
    "MODES": Shape(2, True),
    "ACCOUNT": Shape(2, False),
    # chatd's extension, server bans (docs/protocol.md, Server bans): KLINE
    # <mask> <by> <set> <expires> <reason>, then ENDKLINES <count>.
    "KLINE": Shape(4, True),
    "ENDKLINES": Shape(1, False),
}
# USERS <room> <nick>...; ROOMS <room:count>...; and the extension's OPS and
# VOICES <room> <nick>... (after USERS) and BANS <room> <mask>...
LIST_VERBS = frozenset({"USERS", "ROOMS", "OPS", "VOICES", "BANS"})
NO_ACCOUNT = "*"  # ACCOUNT's account when the nick is identified no more
_STATUS_VERBS = {
    (OP_MODE, True): "OP",
    (OP_MODE, False): "DEOP",
    (VOICE_MODE, True): "VOICE",
    (VOICE_MODE, False): "DEVOICE",
    (BAN_MODE, True): "BAN",
    (BAN_MODE, False): "UNBAN",
}


def change_line(room: str, by: str, change: Change) -> bytes:
    """The line for one mode change: OP, DEOP, VOICE, DEVOICE, BAN, UNBAN or MODE."""
    verb = _STATUS_VERBS.get((change.letter, change.on))
    if verb is not None:
        return line(verb, room, change.arg, by)
    return line("MODE", room, by, change.spelled(), text=change.arg)


def line(verb: str, *words: str, text: str | None = None) -> bytes:
    """Encode one server line: verb, one-word arguments, optional free text, CRLF.

    An empty text still gets its separating space, so that a reader splitting
    with line.split(" ", n) always finds the field.
    """
    fields = [verb, *words]
    if text is not None:
        fields.append(text)
    return " ".join(fields).encode("utf-8") + CRLF


def render_event(event: Event) -> bytes:
    """Return the wire line for a chat event (docs/protocol.md, Server to client).

    An event the protocol has no verb for (Away) renders as b"": not shown.
    A notice is shown as the message it is; a private action, which has no
    verb of its own, as a private message reading "* nick text".
    """
    match event:
        case Message(room, nick, text):
            return line("MSG", room, nick, text=text)
        case Private(sender, recipient, text, _, True):
            return line("PRIV", sender, recipient, text=f"* {sender} {text}")
        case Action(room, nick, text):
            return line("ACTION", room, nick, text=text)
        case Private(sender, recipient, text):
            return line("PRIV", sender, recipient, text=text)
        case Joined(room, nick, away):
            # An away joiner: the room learns it at once (docs/protocol.md,
            # Away on join), as IRC's away-notify does.
            joined = line("JOIN", room, nick)
            return joined + line("AWAY", nick, text=away) if away else joined
        case Parted(room, nick, reason):
            return line("PART", room, nick, text=reason)
        case Quit(nick, reason):
            return line("QUIT", nick, text=reason)
        case Renamed(old, new):
            return line("RENAME", old, new)
        case Away(nick, text):
            return line("AWAY", nick, text=text)
        case Tagged():
            return b""  # typing and reactions only after /tags on
        case TopicChanged(room, nick, text):
            return line("TOPIC", room, nick, text=text)
        case ModesChanged(room, by, changes):
            return b"".join(change_line(room, by, change) for change in changes)
        case Kicked(room, nick, by, reason):
            # PART follows so that a client that does not know KICK still
            # sees the member leave (docs/protocol.md, Rooms people run).
            return line("KICK", room, nick, by, text=reason) + line(
                "PART", room, nick, text=f"kicked by {by}: {reason}"
            )
        case Invited(room, _, by):
            return line("INVITE", room, by)
        case AccountChanged(nick, account):
            return line("ACCOUNT", nick, account or NO_ACCOUNT)
        case Notice(_, text):
            return line("INFO", text=text)
        case Deleted():
            return b""  # only for /ids on (render_ids): the others saw no ids
        case ReadMoved(target, msg_id):
            return line("READ", target, str(msg_id))
    raise TypeError(f"not a chat event: {event!r}")


def history_lines(target: str, entries: Sequence[Entry]) -> bytes:
    """Return HISTORY lines for entries (oldest first), then ENDHISTORY."""
    parts = [
        line(
            "HISTORY",
            target,
            str(entry.id),
            utc_time(entry.time),
            entry.kind.value,
            entry.nick,
            text=entry.text,
        )
        for entry in entries
    ]
    parts.append(line("ENDHISTORY", target, str(len(entries))))
    return b"".join(parts)


def private_history_lines(target: str, entries: Sequence[Entry]) -> bytes:
    """HISTORY lines of a private conversation with target, then ENDHISTORY.

    docs/protocol.md, Read markers and catch-up: the kind is PRIV and the
    nick the sender; an action reads "* sender text", as its PRIV line did.
    """
    parts = [
        line(
            "HISTORY",
            target,
            str(entry.id),
            utc_time(entry.time),
            "PRIV",
            entry.nick,
            text=entry.text
            if entry.kind is Kind.MESSAGE
            else f"* {entry.nick} {entry.text}",
        )
        for entry in entries
    ]
    parts.append(line("ENDHISTORY", target, str(len(entries))))
    return b"".join(parts)


def away_lines(users: Iterable[User]) -> bytes:
    """AWAY <nick> <text> for each of users (who is away already: chatd.model.away)."""
    return b"".join(line("AWAY", user.nick, text=user.away) for user in users)


def read_line(target: str, msg_id: int) -> bytes:
    """READ <target> <id>: an account's read marker."""
    return line("READ", target, str(msg_id))


class RenderStats:
    """How many times render() actually encoded an event (tests read it)."""

    renders = 0


def _counted(event: Event) -> bytes:
    """render_event(event), counted in RenderStats."""
    RenderStats.renders += 1
    return render_event(event)


# The wire line of an event, encoded once per broadcast however many receive it.
render = once_per_broadcast(_counted)


def _with_id(event: Event) -> bytes:
    """render's lines, a room message led by its ID line."""
    plain = render(event)
    match event:
        case Message(room, id=msg_id, time=when) | Action(
            room, id=msg_id, time=when
        ) if msg_id:
            RenderStats.renders += 1
            return line("ID", room, str(msg_id), utc_time(millis(when))) + plain
        case Deleted(target, msg_id, by, reason):
            RenderStats.renders += 1
            return line("DELETED", target, str(msg_id), by, text=reason)
        case _:
            return plain


def private_id(event: Private, me: str) -> bytes:
    """The ID line of a kept private message, as the side called me sees it.

    docs/protocol.md, Devices: ID <nick> <id> <time>, <nick> the other side
    of the conversation; b"" for a message that is not kept (no id, or a
    live one below zero: chatd.model.chat, _live_id).
    """
    if event.id <= 0:
        return b""
    other = event.recipient if fold(event.sender) == fold(me) else event.sender
    return line("ID", other, str(event.id), utc_time(millis(event.time)))


# For a connection that said /ids on. Other events are render()'s very bytes,
# so both kinds of connection share them; a room message is spelled once per
# broadcast for all /ids connections.
render_ids = once_per_broadcast(_with_id)


def tag_lines(event: Event) -> bytes:
    """What /tags on adds for event: TYPING, REACT, or the REPLY a message leads with.

    Tags alone that mean nothing to the line door (an IRC client's own) and
    messages that answer none add nothing.
    """
    match event:
        case Tagged(target, nick, tags):
            state = typing_state(tags)
            if state is not None:
                return line("TYPING", target, nick, state)
            react = reaction(tags)
            if react is not None:
                return line("REACT", target, nick, react[0], text=react[1])
            return b""
        case Message(room, tags=tags) | Action(room, tags=tags) if tags:
            to = reply_to(tags)
            return line("REPLY", room, to) if to else b""
        case Private(recipient=recipient, tags=tags) if tags:
            to = reply_to(tags)
            return line("REPLY", recipient, to) if to else b""
    return b""


def _with_tags(event: Event) -> bytes:
    """render's lines, led or replaced by what /tags on adds (tag_lines)."""
    return tag_lines(event) + render(event)


def _with_ids_and_tags(event: Event) -> bytes:
    """render_ids's lines, led or replaced by what /tags on adds (tag_lines)."""
    return tag_lines(event) + render_ids(event)


# For a connection that said /tags on (and /ids on too): other events are
# render()'s (render_ids') very bytes, shared with the connections without.
render_tags = once_per_broadcast(_with_tags)
render_ids_tags = once_per_broadcast(_with_ids_and_tags)
IDS, TAGS = 1, 2  # a connection's line extensions, as bits (LINE_RENDERERS)


LINE_RENDERERS: dict[int, tuple[Callable[[Event], bytes], str]] = {
    0: (render, ""),
    IDS: (render_ids, "+ids"),
    TAGS: (render_tags, "+tags"),
    IDS | TAGS: (render_ids_tags, "+ids+tags"),
}


def word_lines(
    verb: str, head: list[str], items: list[str], budget: int
) -> list[bytes]:
    """Split a USERS/ROOMS style list over as many lines as keep each under budget.

    head is repeated on every line (the room for USERS); at least one line is
    returned even when items is empty.
    """
    chunks = pack_words(items, len(line(verb, *head)), budget) or [[]]
    return [line(verb, *head, *chunk) for chunk in chunks]


@dataclass(frozen=True, slots=True)
class ServerLine:
    """One server line split by its verb's shape."""

    verb: str
    words: tuple[str, ...]
    text: str | None


def parse_server_line(raw: str) -> ServerLine:
    """Split a server line (no CRLF) by its verb's shape; ValueError if malformed."""
    verb, _, rest = raw.partition(" ")
    if verb in LIST_VERBS:
        words = tuple(rest.split(" ")) if rest else ()
        if not words or "" in words:
            raise ValueError(f"malformed {verb} line: {raw!r}")
        return ServerLine(verb, words, None)
    shape = SERVER_VERBS.get(verb)
    if shape is None:
        raise ValueError(f"unknown verb: {raw!r}")
    fields = raw.split(" ", shape.words + 1 if shape.text else shape.words)
    expected = 1 + shape.words + (1 if shape.text else 0)
    words = tuple(fields[1 : 1 + shape.words])
    if len(fields) != expected or any(not w or " " in w for w in words):
        raise ValueError(f"malformed {verb} line: {raw!r}")
    return ServerLine(verb, words, fields[-1] if shape.text else None)
