"""Chat events as IRC lines, rendered once per broadcast (per tag variant).

The chat hands one event object to every member in turn; the renderer keeps
the last event by identity, as chatd.wire.render does, and spells it at most
once without tags and once with the IRCv3 server-time tag. The time is taken
once, so every member sees the same stamp.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from chatd.chat import (
    AccountChanged,
    Action,
    Away,
    Chat,
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
    Renamed,
    TopicChanged,
    User,
)
from chatd.irc.message import CRLF, MAX_LINE, irc_line, split_utf8
from chatd.moderation import Change
from chatd.names import fold

CTCP = "\x01"
# Mode changes with an argument one MODE line carries (ISUPPORT MODES).
MODES_PER_LINE = 6
SERVICES_HOST = "services"  # NickServ!NickServ@services


def server_time(seconds: float) -> str:
    """Spell a time as IRCv3 server-time does: 2026-11-30T23:50:01.123Z."""
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


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


def source_of(chat: Chat, nick: str) -> str:
    """The source of a line by nick: their mask, or the server's own name."""
    if fold(nick) in chat.users or fold(nick) != fold(chat.server_name):
        return mask(chat, nick)
    return nick


def mode_words(changes: tuple[Change, ...] | list[Change]) -> list[str]:
    """MODE's parameters for changes: +o-v alice bob."""
    letters: list[str] = []
    args: list[str] = []
    sign = ""
    for change in changes:
        wanted = "+" if change.on else "-"
        if wanted != sign:
            letters.append(wanted)
            sign = wanted
        letters.append(change.letter)
        if change.arg and not (change.letter == "l" and not change.on):
            args.append(change.arg)
    return ["".join(letters), *args]


def _mode_lines(source: str, room: str, changes: tuple[Change, ...]) -> list[bytes]:
    """MODE lines for changes, at most MODES_PER_LINE changes each."""
    lines = []
    for start in range(0, len(changes), MODES_PER_LINE):
        words = mode_words(changes[start : start + MODES_PER_LINE])
        lines.append(irc_line("MODE", room, *words, source=source))
    return lines


def _text_lines(source: str, command: str, target: str, text: str) -> list[bytes]:
    """PRIVMSG/NOTICE lines for text, split so that each fits in 512 bytes."""
    head = len(f":{source} {command} {target} :".encode()) + len(CRLF)
    return [
        irc_line(command, target, text=piece, source=source)
        for piece in split_utf8(text, MAX_LINE - head)
    ]


def _action_lines(source: str, target: str, text: str) -> list[bytes]:
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
            return _text_lines(mask(chat, nick), verb, room, text)
        case Action(room, nick, text):
            return _action_lines(mask(chat, nick), room, text)
        case Private(sender, recipient, text, notice, action):
            source = mask(chat, sender)
            if action:
                return _action_lines(source, recipient, text)
            return _text_lines(
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
        case TopicChanged(room, nick, text):
            return [irc_line("TOPIC", room, text=text, source=source_of(chat, nick))]
        case ModesChanged(room, by, changes):
            return _mode_lines(source_of(chat, by), room, changes)
        case Kicked(room, nick, by, reason):
            source = source_of(chat, by)
            return [irc_line("KICK", room, nick, text=reason, source=source)]
        case Invited(room, nick, by):
            return [irc_line("INVITE", nick, room, source=source_of(chat, by))]
        case AccountChanged(nick, account):
            return [irc_line("ACCOUNT", account or "*", source=mask(chat, nick))]
        case Notice(nick, text, service):
            source = f"{service}!{service}@{SERVICES_HOST}" if service else ""
            return [
                irc_line("NOTICE", nick, text=text, source=source or chat.server_name)
            ]
    raise TypeError(f"not a chat event: {event!r}")


class IrcRenderer:
    """Renders each broadcast once per variant: plain, or with @time tags."""

    __slots__ = ("chat", "now", "_last", "_parts", "_plain", "_tagged", "renders")

    def __init__(self, chat: Chat, now: Callable[[], float] = time.time) -> None:
        self.chat = chat
        self.now = now
        self._last: Event | None = None
        self._parts: list[bytes] = []
        self._plain: bytes | None = None
        self._tagged: bytes | None = None
        self.renders = 0  # how many times an event was actually spelled (tests)

    def render(self, event: Event, tagged: bool = False) -> bytes:
        """Return event's lines, with the server-time tag when tagged."""
        if event is not self._last:
            self._parts = render_lines(self.chat, event)
            self._last = event
            self._plain = self._tagged = None
            self.renders += 1
        if tagged:
            if self._tagged is None:
                stamp = "@time=" + server_time(self.now()) + " "
                self._tagged = b"".join(stamp.encode() + data for data in self._parts)
            return self._tagged
        if self._plain is None:
            self._plain = b"".join(self._parts)
        return self._plain


def hidden_from(
    me: User | None,
    event: Event,
    echo: bool,
    away_notify: bool,
    account_notify: bool = False,
) -> bool:
    """Tell whether an IRC client (user me, with these caps) is not shown event.

    The chat gives a speaker their own message back; IRC shows it only with
    echo-message. AWAY changes reach only away-notify clients, ACCOUNT
    changes only account-notify ones.
    """
    if isinstance(event, AccountChanged):
        return not account_notify
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


def source_nick(event: Event) -> str | None:
    """The nickname an event's line comes from, if a user's (for account-tag)."""
    match event:
        case Message(nick=nick) | Action(nick=nick) | Joined(nick=nick):
            return nick
        case Private(sender=nick) | Parted(nick=nick) | Quit(nick=nick):
            return nick
        case Renamed(new=nick) | Away(nick=nick) | TopicChanged(nick=nick):
            return nick
        case ModesChanged(by=nick) | Kicked(by=nick) | Invited(by=nick):
            return nick
        case AccountChanged(nick=nick):
            return nick
    return None


def _tag_value(value: str) -> str:
    """Escape a tag value (IRCv3 message-tags)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\:")
        .replace(" ", "\\s")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )


def add_tag(data: bytes, tag: str) -> bytes:
    """Add tag (key=value, spelled) to every line of data, after any tags it has."""
    out = []
    for piece in data.split(CRLF)[:-1]:
        if piece.startswith(b"@"):
            head, _, rest = piece.partition(b" ")
            out.append(head + b";" + tag.encode() + b" " + rest + CRLF)
        else:
            out.append(b"@" + tag.encode() + b" " + piece + CRLF)
    return b"".join(out)


def account_tag(chat: Chat, event: Event) -> str:
    """The account tag (account=name) of event's source, or "" if not identified."""
    nick = source_nick(event)
    if nick is None:
        return ""
    user = chat.users.get(fold(nick))
    if user is None or not user.account:
        return ""
    return "account=" + _tag_value(user.account)


def extended_join(chat: Chat, event: Joined, stamp: str | None) -> bytes:
    """JOIN as extended-join spells it: the account (or *) and the realname."""
    user = chat.users.get(fold(event.nick))
    account = (user.account if user is not None else "") or "*"
    realname = (user.realname if user is not None else "") or event.nick
    return irc_line(
        "JOIN",
        event.room,
        account,
        text=realname,
        source=mask(chat, event.nick),
        tags=f"time={stamp}" if stamp else "",
    )


def variant(
    chat: Chat,
    renderer: IrcRenderer,
    event: Event,
    enabled: set[str],
    now: Callable[[], float],
) -> bytes | None:
    """The bytes of event for a client whose caps change them, or None.

    extended-join spells JOIN with the account and realname; account-tag
    tags lines from identified users. Neither is shared with other clients,
    so neither goes through the render-once path (joins are rare, and
    account-tag clients few).
    """
    if "extended-join" in enabled and isinstance(event, Joined):
        stamp = server_time(now()) if "server-time" in enabled else None
        data = extended_join(chat, event, stamp)
    elif "account-tag" in enabled:
        data = renderer.render(event, "server-time" in enabled)
    else:
        return None
    if "account-tag" in enabled and data:
        tag = account_tag(chat, event)
        if tag:
            data = add_tag(data, tag)
    return data
