"""Chat events as IRC lines, rendered once per broadcast (per tag variant).

The chat hands one event object to every member in turn; the renderer keeps
the last event by identity, as chatd.wire.render does, and spells it at most
once per tag variant: no tags, the IRCv3 server-time tag, the msgid tag
(message-tags), or both. A room message's time is its history time
(event.time), so the stamp is the same for every door and for history; other
events are stamped once, when first rendered, so every member sees the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chatd.chat import (
    Action,
    Away,
    Chat,
    Event,
    Joined,
    Message,
    Parted,
    Private,
    Quit,
    Renamed,
    User,
)
from chatd.irc.message import CRLF, MAX_LINE, irc_line, split_utf8
from chatd.names import fold
from chatd.store.interface import millis
from chatd.wire import utc_time

CTCP = "\x01"
# Tag variants, as bits: what a client's caps ask for on the lines it is sent.
TIME = 1  # server-time: @time=
MSGID = 2  # message-tags: @msgid= on room messages that have a history id
VARIANTS = 4


def server_time(seconds: float) -> str:
    """Spell a time as IRCv3 server-time does: 2026-11-30T23:50:01.123Z.

    Cut to the millisecond as history keeps it (millis), so that a message's
    time tag and its HISTORY line or CHATHISTORY replay always agree.
    """
    return utc_time(millis(seconds))


def user_at_host(user: User) -> tuple[str, str]:
    """Return the username and host IRC shows for user.

    A user a door registered without them (the line protocol) shows its
    nickname as the username and "line" as the host: the line protocol never
    tells anyone a peer's address, and IRC does not start to.
    """
    return user.username or user.nick, user.host or "line"


def mask(chat: Chat, nick: str, shown: str | None = None) -> str:
    """Return nick!user@host for the registered user called nick.

    shown replaces the nickname in front (a rename shows the old one).
    """
    user = chat.users.get(fold(nick))
    name = shown or nick
    if user is None:
        return f"{name}!{name}@line"
    username, host = user_at_host(user)
    return f"{name}!{username}@{host}"


def text_lines(source: str, command: str, target: str, text: str) -> list[bytes]:
    """PRIVMSG/NOTICE lines for text, split so that each fits in 512 bytes."""
    head = len(f":{source} {command} {target} :".encode()) + len(CRLF)
    return [
        irc_line(command, target, text=piece, source=source)
        for piece in split_utf8(text, MAX_LINE - head)
    ]


def action_lines(source: str, target: str, text: str) -> list[bytes]:
    """CTCP ACTION lines for text, each piece wrapped in its own \\x01 pair."""
    head = len(f":{source} PRIVMSG {target} :{CTCP}ACTION {CTCP}".encode()) + 2
    return [
        irc_line("PRIVMSG", target, text=f"{CTCP}ACTION {piece}{CTCP}", source=source)
        for piece in split_utf8(text, MAX_LINE - head)
    ]


def render_lines(chat: Chat, event: Event) -> list[bytes]:
    """Return the IRC lines (CRLF included, no tags) that show event."""
    match event:
        case Message(room, nick, text, notice):
            verb = "NOTICE" if notice else "PRIVMSG"
            return text_lines(mask(chat, nick), verb, room, text)
        case Action(room, nick, text):
            return action_lines(mask(chat, nick), room, text)
        case Private(sender, recipient, text, notice, action):
            source = mask(chat, sender)
            if action:
                return action_lines(source, recipient, text)
            return text_lines(
                source, "NOTICE" if notice else "PRIVMSG", recipient, text
            )
        case Joined(room, nick):
            return [irc_line("JOIN", room, source=mask(chat, nick))]
        case Parted(room, nick, reason):
            source = mask(chat, nick)
            if reason:
                return [irc_line("PART", room, text=reason, source=source)]
            return [irc_line("PART", room, source=source)]
        case Quit(nick, reason):
            return [irc_line("QUIT", text=reason or "Quit", source=mask(chat, nick))]
        case Renamed(old, new):
            return [irc_line("NICK", text=new, source=mask(chat, new, shown=old))]
        case Away(nick, text):
            source = mask(chat, nick)
            if text:
                return [irc_line("AWAY", text=text, source=source)]
            return [irc_line("AWAY", source=source)]
    raise TypeError(f"not a chat event: {event!r}")


def tag_section(time: str | None, msgid: int, batch: str | None = None) -> str:
    """The tags of a server line (without '@'): batch, msgid and time, as given."""
    tags = []
    if batch is not None:
        tags.append(f"batch={batch}")
    if msgid:
        tags.append(f"msgid={msgid}")
    if time is not None:
        tags.append(f"time={time}")
    return ";".join(tags)


def tagged_lines(parts: list[bytes], time: str | None, msgid: int) -> bytes:
    """Put the tags on lines: time on each; msgid on the first only.

    A message too long for one IRC line is several PRIVMSG lines; a client
    that drops a msgid it has seen must not drop the rest of the message.
    """
    first = tag_section(time, msgid)
    rest = tag_section(time, 0)
    out = []
    for at, data in enumerate(parts):
        tags = first if at == 0 else rest
        out.append(b"@" + tags.encode() + b" " + data if tags else data)
    return b"".join(out)


class IrcRenderer:
    """Renders each broadcast once per tag variant (TIME, MSGID, both, none)."""

    __slots__ = (
        "chat",
        "now",
        "_last",
        "_parts",
        "_mask",
        "_time",
        "_variants",
        "renders",
    )

    def __init__(self, chat: Chat, now: Callable[[], float] = time.time) -> None:
        self.chat = chat
        self.now = now
        self._last: Event | None = None
        self._parts: list[bytes] = []
        self._mask = 0  # the variant bits that change this event's lines
        self._time = 0.0  # the event's time: its own, or the clock's when first due
        self._variants: list[bytes | None] = [None] * VARIANTS
        self.renders = 0  # how many times an event was actually spelled (tests)

    def render(self, event: Event, variant: int = 0) -> bytes:
        """Return event's lines with the tags variant asks for (TIME | MSGID)."""
        if event is not self._last:
            self._parts = render_lines(self.chat, event)
            self._last = event
            self._variants = [None] * VARIANTS
            if isinstance(event, Message | Action) and event.time:
                self._time = event.time
                self._mask = TIME | MSGID if event.id else TIME
            else:
                self._time = 0.0
                self._mask = TIME
            self.renders += 1
        variant &= self._mask  # no msgid to add: the same bytes as without
        data = self._variants[variant]
        if data is None:
            data = self._variants[variant] = self._spell(event, variant)
        return data

    def _spell(self, event: Event, variant: int) -> bytes:
        if not variant:
            return b"".join(self._parts)
        stamp: str | None = None
        if variant & TIME:
            if not self._time:  # taken once, so every member sees the same
                self._time = self.now()
            stamp = server_time(self._time)
        msgid = 0
        if variant & MSGID and isinstance(event, Message | Action):
            msgid = event.id
        return tagged_lines(self._parts, stamp, msgid)


def hidden_from(me: User | None, event: Event, echo: bool, away_notify: bool) -> bool:
    """Tell whether an IRC client (user me, with these caps) is not shown event.

    The chat gives a speaker their own message back; IRC shows it only with
    echo-message. AWAY changes reach only away-notify clients.
    """
    if me is not None and not echo:
        match event:
            case Message(nick=nick) | Action(nick=nick) if nick == me.nick:
                return True
            case Private(sender=sender, recipient=recipient) if (
                sender == me.nick and recipient != me.nick
            ):
                return True
    return isinstance(event, Away) and not away_notify


def away_on_join(chat: Chat, me: User | None, event: Event) -> bytes:
    """The AWAY line an away-notify client gets after an away user's JOIN, or b""."""
    if not isinstance(event, Joined):
        return b""
    joiner = chat.users.get(fold(event.nick))
    if joiner is None or joiner is me or not joiner.away:
        return b""
    return irc_line("AWAY", text=joiner.away, source=mask(chat, joiner.nick))
