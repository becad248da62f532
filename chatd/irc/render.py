"""Chat events as IRC lines, rendered once per broadcast (per tag variant).

The chat hands one event object to every member in turn; the renderer keeps
the last event by identity, as chatd.line.wire.render does, and spells it at most
once per tag variant: no tags, the IRCv3 server-time tag, the msgid tag
(message-tags, with the client tags a message carries), or both. A room
message's time is its history time
(event.time), so the stamp is the same for every door and for history; other
events are stamped once, when first rendered, so every member sees the same.
What differs between members (the speaker's own client without echo-message,
away-notify) is worked out once per event too, so most members cost a few
comparisons (IrcRenderer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from chatd.irc.message import CRLF, MAX_LINE, escape_tag_value, irc_line, split_utf8
from chatd.model.chat import (
    AccountChanged,
    Action,
    Away,
    Chat,
    Deleted,
    Event,
    IChatClient,
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
    User,
)
from chatd.model.client_tags import Tags
from chatd.model.names import fold
from chatd.model.room_rules import MAX_MODE_ARGS, Change
from chatd.model.state import NO_HOST
from chatd.model.times import utc_time
from chatd.store.interface import millis

CTCP = "\x01"
# Tag variants, as bits: what a client's caps ask for on the lines it is sent.
TIME = 1  # server-time: @time=
# message-tags: @msgid= on messages that have an id, and their client tags
MSGID = 2
VARIANTS = 4
# Per-client variants, above the tag bits (IrcRenderer.lines_for's keys).
EXTENDED = 4  # extended-join: JOIN #room account :realname
ACCOUNT = 8  # account-tag: @account= on lines from identified users
PERSONAL_CAPS = frozenset({"extended-join", "account-tag"})
# Mode changes one MODE line carries: as many as one MODE command applies
# with an argument (ISUPPORT MODES, room_rules.MAX_MODE_ARGS).
MODES_PER_LINE = MAX_MODE_ARGS
SERVICES_HOST = "services"  # NickServ!NickServ@services
# IRCv3 draft/message-redaction: REDACT goes only to clients with this cap.
REDACTION = "draft/message-redaction"


def server_time(seconds: float) -> str:
    """Spell a time as IRCv3 server-time does: 2026-11-30T23:50:01.123Z.

    Cut to the millisecond as history keeps it (millis), so that a message's
    time tag and its HISTORY line or CHATHISTORY replay always agree.
    """
    return utc_time(millis(seconds))


def shown_host(host: str) -> str:
    """Spell a host as one IRC parameter: an IPv6 address may start with ':'.

    As other servers do, ::1 is shown as 0::1 (a parameter starting with ':'
    would be read as the line's last).
    """
    return "0" + host if host.startswith(":") else host


def user_at_host(user: User) -> tuple[str, str]:
    """Return the username and host IRC shows for user: the model's (User).

    The same on every door: the host is the peer's address the user's door
    gave, what bans by address match (state.Ban).
    """
    username, host = user.user_and_host()
    return username, shown_host(host)


def mask(chat: Chat, nick: str, shown: str | None = None) -> str:
    """Return nick!user@host for the registered user called nick.

    shown replaces the nickname in front (a rename shows the old one).
    """
    user = chat.users.get(fold(nick))
    name = shown or nick
    if user is None:
        return f"{name}!{name}@{NO_HOST}"
    return user_mask(user, name)


def user_mask(user: User, name: str | None = None) -> str:
    """Return user's nick!user@host (name in front instead of the nickname)."""
    username, host = user.user_and_host()  # user_at_host, a call less
    return f"{name or user.nick}!{username}@{shown_host(host)}"


def source_mask(chat: Chat, nick: str, origin: User | None) -> str:
    """mask(chat, nick) for an event's source nick, whose user origin is if given."""
    return user_mask(origin, nick) if origin is not None else mask(chat, nick)


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


def text_lines(source: str, command: str, target: str, text: str) -> list[bytes]:
    """PRIVMSG/NOTICE lines for text, split so that each fits in 512 bytes."""
    whole = f":{source} {command} {target} :{text}\r\n".encode()
    if len(whole) <= MAX_LINE:  # nearly always: irc_line's bytes, spelled once
        return [whole]
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


def render_lines(chat: Chat, event: Event, origin: User | None = None) -> list[bytes]:
    """Return the IRC lines (CRLF included, no tags) that show event.

    origin: the user the event comes from (source_nick), when the caller has
    looked them up already; its mask is then not looked up again.
    """
    match event:
        case Message(room, nick, text, notice):
            verb = "NOTICE" if notice else "PRIVMSG"
            return text_lines(source_mask(chat, nick, origin), verb, room, text)
        case Action(room, nick, text):
            return action_lines(source_mask(chat, nick, origin), room, text)
        case Private(sender, recipient, text, notice, action):
            source = source_mask(chat, sender, origin)
            if action:
                return action_lines(source, recipient, text)
            return text_lines(
                source, "NOTICE" if notice else "PRIVMSG", recipient, text
            )
        case Tagged(target, nick):
            return [irc_line("TAGMSG", target, source=source_mask(chat, nick, origin))]
        case Joined(room, nick):
            return [irc_line("JOIN", room, source=source_mask(chat, nick, origin))]
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
        case Deleted(target, msg_id, by, reason):
            return [
                irc_line(
                    "REDACT",
                    target,
                    str(msg_id),
                    text=reason or None,
                    source=mask(chat, by),
                )
            ]
        case ReadMoved(target, _, millis):
            # draft/read-marker (chatd.irc.markers): to clients with the cap only.
            when = f"timestamp={utc_time(millis)}"
            return [irc_line("MARKREAD", target, when, source=chat.server_name)]
    raise TypeError(f"not a chat event: {event!r}")


def tag_section(
    time: str | None, msgid: int, batch: str | None = None, client: str = ""
) -> str:
    """The tags of a server line (without '@'): batch, msgid, time, client tags."""
    tags = []
    if batch is not None:
        tags.append(f"batch={batch}")
    if msgid:
        tags.append(f"msgid={msgid}")
    if time is not None:
        tags.append(f"time={time}")
    if client:
        tags.append(client)
    return ";".join(tags)


def spelled_client_tags(tags: Tags) -> str:
    """Client tags as a tag section's part (no '@'), values escaped."""
    return ";".join(
        f"{name}={escape_tag_value(value)}" if value else name for name, value in tags
    )


def tagged_lines(
    parts: list[bytes], time: str | None, msgid: int, client: str = ""
) -> bytes:
    """Put the tags on lines: time on each; msgid and client tags on the first.

    A message too long for one IRC line is several PRIVMSG lines; a client
    that drops a msgid it has seen must not drop the rest of the message.
    """
    first = tag_section(time, msgid, client=client)
    rest = tag_section(time, 0)
    out = []
    for at, data in enumerate(parts):
        tags = first if at == 0 else rest
        out.append(b"@" + tags.encode() + b" " + data if tags else data)
    return b"".join(out)


def variant_of(caps: set[str]) -> int:
    """The tag variant (TIME | MSGID) the caps on ask for."""
    return (TIME if "server-time" in caps else 0) | (
        MSGID if "message-tags" in caps else 0
    )


# Events a user says (their time, id and client tags go in IRCv3 tags).
SAID: frozenset[type] = frozenset({Message, Action, Private, Tagged})
# Events only clients with a cap are sent, and the cap.
ONLY_FOR: dict[type, str] = {
    Away: "away-notify",
    AccountChanged: "account-notify",
    Deleted: REDACTION,
    ReadMoved: "draft/read-marker",
    Tagged: "message-tags",  # IRCv3: TAGMSG to them only
}


class IrcRenderer:
    """Renders each broadcast once per tag variant (none, TIME, MSGID, both).

    Besides the lines, it works out once per event who is sent something
    else: the speaker's own client (nothing, without echo-message), clients
    without away-notify (no AWAY) or account-notify (no ACCOUNT), away-notify
    clients after the JOIN of an away user (the AWAY line too), and whether
    the event is one that extended-join (a JOIN) or account-tag (a line from
    an identified user) clients are sent their own way (personal). Everyone
    else gets the event as it is, in the bytes of their variant, and
    IrcConnection.render hands them that without calling lines_for.
    """

    __slots__ = (
        "chat",
        "now",
        "last",
        "common",
        "mask",
        "variants",
        "plain",
        "speaker",
        "speaker_client",
        "typing",
        "uniform",
        "personal",
        "_parts",
        "_time",
        "_only_for",
        "_account",
        "_personal",
        "_joiner",
        "_away",
        "_with_away",
        "renders",
    )

    def __init__(self, chat: Chat, now: Callable[[], float] = time.time) -> None:
        self.chat = chat
        self.now = now
        self.last: Event | None = None  # the event rendered last, by identity
        # The last event again when everyone but the speaker is sent it as it
        # is (None when some other client is sent something else), and the
        # speaker's connection: IrcConnection.render compares both by identity.
        self.common: Event | None = None
        self.speaker_client: IChatClient | None = None
        # The IRC connection whose line is being handled (IrcConnection sets
        # it): of a user on several devices, only it is the speaker's.
        self.typing: IChatClient | None = None
        self.mask = 0  # the variant bits that change its lines
        # its lines by variant (masked), spelled when first asked for
        self.variants: list[bytes | None] = [None] * VARIANTS
        self.plain = b""  # variants[0], the lines most clients are sent
        self.speaker: User | None = None  # sees its own words only with echo
        self.uniform = True  # False: some clients other than the speaker differ
        self._parts: list[bytes] = []
        self.personal = False  # extended-join or account-tag clients differ
        self._time = 0.0  # the event's time: its own, or the clock's when first due
        self._only_for: str | None = None  # the cap a client needs to be sent it
        self._account = ""  # the account tag of the event's source, if identified
        # lines for extended-join and account-tag clients, by variant | EXTENDED
        # | ACCOUNT: made for the first such client, shared by the others
        self._personal: dict[int, bytes] = {}
        self._joiner: User | None = None  # an away user who joined, and
        self._away = b""  # the AWAY line away-notify clients get after it
        self._with_away: dict[int, bytes] = {}  # JOIN + AWAY, by personal key
        self.renders = 0  # how many times an event was actually spelled (tests)

    def _prepare(self, event: Event) -> None:
        """Spell event and note who is sent something else, once per broadcast."""
        chat = self.chat
        # The user the event comes from, looked up once for the lines, the
        # speaker and the account tag.
        nick = source_nick(event)
        source = chat.users.get(fold(nick)) if nick is not None else None
        parts = self._parts = render_lines(chat, event, source)
        self.last = event
        self.plain = plain = b"".join(parts)  # without tags (render_plain)
        self.variants = [plain, None, None, None]
        kind = type(event)  # events are final classes: a dict finds their words
        if kind in SAID:
            said = cast(Message | Action | Private | Tagged, event)
            self._time = said.time  # 0.0: stamped when first spelled (_stamp)
            self.mask = TIME | MSGID if said.id or said.tags else TIME
        else:
            self._time = 0.0
            self.mask = TIME
        self.speaker = speaker = source if speaks(event) else None
        self.speaker_client = speaker.client if speaker is not None else None
        if speaker is not None and speaker.devices is not None:
            # Several connections (chatd.model.devices): the others are shown
            # what one of them said; only the one that typed it needs
            # echo-message (IrcConnection.render), and none if another door's.
            self.speaker, self.speaker_client = None, self.typing
        self._only_for = ONLY_FOR.get(kind)
        self._account = account_tag_of(source)
        self.personal = bool(self._account) or kind is Joined
        if self._personal:
            self._personal = {}
        self._joiner, self._away = None, b""
        if isinstance(event, Joined):
            joiner = chat.users.get(fold(event.nick))
            if joiner is not None and joiner.away:
                self._joiner = joiner
                self._away = away_on_join(chat, None, event)
                self._with_away = {}
        self.uniform = not (self._only_for or self._away)
        self.common = event if self.uniform else None
        self.renders += 1

    def render(self, event: Event, variant: int = 0) -> bytes:
        """Return event's lines with the tags variant asks for (TIME | MSGID)."""
        if event is not self.last:
            self._prepare(event)
        return self.lines(variant)

    def lines(self, variant: int) -> bytes:
        """The last event's lines in variant; one bytes object per variant."""
        variant &= self.mask  # no msgid to add: the same bytes as without
        data = self.variants[variant]
        if data is None:
            data = self.variants[variant] = self._spell(variant)
        return data

    def _stamp(self) -> str:
        """The last event's server-time stamp, taken once for every member."""
        if not self._time:
            self._time = self.now()
        return server_time(self._time)

    def _spell(self, variant: int) -> bytes:
        stamp = self._stamp() if variant & TIME else None
        msgid, client = 0, ""
        event = self.last
        if variant & MSGID and isinstance(event, Message | Action | Private | Tagged):
            msgid = event.id
            client = spelled_client_tags(event.tags)
        return tagged_lines(self._parts, stamp, msgid, client)

    def lines_for(
        self, event: Event, me: User | None, caps: set[str], variant: int | None = None
    ) -> bytes:
        """Return what an IRC client (user me, caps on) is sent for event, or b"".

        variant is the client's tag variant (variant_of(caps) if not given).
        Every client of one variant that is sent the event as it is gets the
        same bytes object, so that their output can share one journal run
        (chatd.net.output).
        """
        if event is not self.last:
            self._prepare(event)
        if me is not None and me is self.speaker and "echo-message" not in caps:
            return b""  # IRC does not echo one's own message without the cap
        if self._only_for is not None and self._only_for not in caps:
            return b""  # AWAY to away-notify clients only, ACCOUNT account-notify
        if variant is None:
            variant = variant_of(caps)
        key = variant & self.mask
        if self.personal:
            if isinstance(self.last, Joined) and "extended-join" in caps:
                key |= EXTENDED
            if self._account and "account-tag" in caps:
                key |= ACCOUNT
        data = self._personal.get(key) if key >= VARIANTS else self.lines(key)
        if data is None:  # the first extended-join or account-tag client
            data = self._personal[key] = self._spell_personal(key)
        if self._away and me is not self._joiner and "away-notify" in caps:
            combined = self._with_away.get(key)
            if combined is None:
                combined = self._with_away[key] = data + self._away
            return combined
        return data

    def _spell_personal(self, key: int) -> bytes:
        """The last event for extended-join or account-tag clients (key's bits)."""
        event = self.last
        variant = key & (VARIANTS - 1)
        if key & EXTENDED and isinstance(event, Joined):
            stamp = self._stamp() if variant & TIME else None
            data = extended_join(self.chat, event, stamp)
        else:
            data = self.lines(variant)
        if key & ACCOUNT and data:
            data = add_tag(data, self._account)
        return data


def speaks(event: Event) -> bool:
    """Tell whether event's source (source_nick) is its speaker.

    The speaker's own client is shown the event only with echo-message. The
    chat gives a speaker their own room message back (and a private one,
    unless sent to oneself); IRC shows it only with echo-message. So too
    one's own AWAY (the model tells the user's own connections: docs/irc.md,
    Several devices), which IRC answers with 306 or 305 besides.
    """
    match event:
        case Message() | Action() | Away():
            return True
        case Private(sender=sender, recipient=recipient):
            return sender != recipient
        case Tagged(target=target, nick=nick, private=private):
            return not (private and fold(target) == fold(nick))
    return False


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
        case Tagged(nick=nick):
            return nick
        case Renamed(new=nick) | Away(nick=nick) | TopicChanged(nick=nick):
            return nick
        case ModesChanged(by=nick) | Kicked(by=nick) | Invited(by=nick):
            return nick
        case AccountChanged(nick=nick) | Deleted(by=nick):
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


def account_tag_of(source: User | None) -> str:
    """The account tag (account=name) of source, or "" if not identified."""
    if source is None or not source.account:
        return ""
    return "account=" + _tag_value(source.account)


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
