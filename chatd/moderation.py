"""Rooms people run: topics, operators, voice, bans, invitations and room modes.

The rules of who may do what to whom, for every door. Chat (chatd.chat)
takes them in as a mixin, so they share its users and rooms; like the rest
of the model they check first, then change state, then hand one event to
every recipient, and refuse with ChatError.

The rules, in a few lines (docs/protocol.md, Rooms people run, has them all):

- The first member of a new room is its operator; #lobby has none of its
  own: server operators run it.
- Operators op and de-op, voice and de-voice, kick, ban and unban, invite to
  an invite-only room, and set the room's modes: i (invite-only), k (a key),
  l (a member limit), m (moderated: only operators and voiced members
  speak), n (no messages from outside), s (secret), t (the topic is the
  operators'). n is on in a new room, the rest off.
- A banned user cannot join and never speaks, not even an operator: unban
  first. Bans match a nickname, an IRC mask (nick!user@host, with * and ?)
  or an account (account:name).
- A room with members always has an operator: when its last one leaves,
  the member there longest becomes one. An operator may step down (-o on
  themselves); alone in the room, that leaves it without one until someone
  joins, who then runs it.
- Server operators (identified to an account of --operators) are operators
  of every room and may disconnect anyone. Nobody but they and the room's
  founder may kick or de-op the founder of a registered room, and room
  operators cannot kick a server operator.
- A registered room keeps its topic, modes, bans and operators (by account)
  across restarts; its operators are given their status when they join
  identified, or identify while in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatd.errors import ChatError, ErrorCode
from chatd.names import LOBBY, clean_text, fold

if TYPE_CHECKING:
    from chatd.chat import Event, Room, User

# Mode letters, as IRC spells them; the line protocol uses the same ones.
FLAG_MODES = "imnst"  # on or off, no argument
KEY_MODE, LIMIT_MODE = "k", "l"  # an argument to set
OP_MODE, VOICE_MODE = "o", "v"  # a member as argument
BAN_MODE = "b"  # a list of masks
ROOM_MODES = FLAG_MODES + KEY_MODE + LIMIT_MODE
MEMBER_MODES = OP_MODE + VOICE_MODE
ALL_MODES = ROOM_MODES + MEMBER_MODES + BAN_MODE
DEFAULT_FLAGS = frozenset("n")
MODE_NAMES = {
    "i": "invite-only",
    "k": "key",
    "l": "limit",
    "m": "moderated",
    "n": "no-external",
    "s": "secret",
    "t": "topic-ops",
    "o": "operator",
    "v": "voice",
    "b": "ban",
}
MAX_BANS = 100  # per room (IRC's MAXLIST=b:100)
MAX_KEY = 23  # characters of a key (RFC 2812)
MAX_LIMIT = 1_000_000
TOPIC_LENGTH = 390  # characters kept of a topic (IRC's TOPICLEN)
KICK_REASON_LENGTH = 300
ACCOUNT_PREFIXES = ("account:", "$a:", "~a:")  # ban masks that name an account


# -- events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One mode change: letter, on or off, and its argument ("" if none)."""

    letter: str
    on: bool
    arg: str = ""

    def spelled(self) -> str:
        """The change as IRC writes it alone: +o, -k, ..."""
        return ("+" if self.on else "-") + self.letter


@dataclass(frozen=True, slots=True)
class TopicChanged:
    """Someone set a room's topic (text "" clears it); time is the clock's."""

    room: str
    nick: str
    text: str
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class ModesChanged:
    """Someone (or the server, by its name) changed room modes or member status."""

    room: str
    by: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Kicked:
    """Someone was put out of a room by an operator, with a reason."""

    room: str
    nick: str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Invited:
    """Someone was invited to a room (only the invitee receives it)."""

    room: str
    nick: str
    by: str


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Someone identified as account, or stopped being identified ("")."""

    nick: str
    account: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice for one user from the server or one of its services.

    service: "" for the server itself, or "NickServ" for what the accounts
    say (IRC shows it as a NOTICE from NickServ; the line protocol as INFO).
    """

    nick: str
    text: str
    service: str = ""


# -- bans -------------------------------------------------------------------------


def ban_key(mask: str) -> str:
    """Return the form two equivalent ban masks share (for matching and unban).

    account:name (or $a:name, ~a:name) names an account; a mask with ! or @
    or a wildcard is IRC's nick!user@host; a plain nickname means nick!*@*.
    """
    lowered = mask.lower()
    for prefix in ACCOUNT_PREFIXES:
        if lowered.startswith(prefix):
            return "account:" + fold(mask[len(prefix) :])
    if "!" not in mask and "@" not in mask:
        return fold(mask) + "!*@*"
    nick, bang, rest = mask.partition("!")
    if not bang:  # user@host without a nick
        nick, rest = "*", mask
    user, at, host = rest.partition("@")
    if not at:
        host = "*"
    return f"{fold(nick or '*')}!{fold(user or '*')}@{fold(host or '*')}"


def _glob(pattern: str) -> re.Pattern[str]:
    parts = (
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern
    )
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def ban_problem(mask: str) -> str | None:
    """Say what is wrong with a ban mask, or return None."""
    if not mask or len(mask) > 200 or any(ch.isspace() for ch in mask):
        return f"{mask or 'an empty mask'} is not a nickname, mask or account:name"
    if mask != clean_text(mask) or mask.startswith(":") or "," in mask:
        return f"{mask} is not a nickname, mask or account:name"
    key = ban_key(mask)
    if key.startswith("account:") and key == "account:":
        return "account: needs an account name after it"
    return None


@dataclass(eq=False, slots=True)
class Ban:
    """One ban of a room: the mask as given, who set it and when."""

    mask: str
    by: str
    time: float
    key: str = field(init=False)
    _pattern: re.Pattern[str] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.key = ban_key(self.mask)

    def matches(self, user: User) -> bool:
        """Tell whether this ban applies to user as they are now."""
        if self.key.startswith("account:"):
            return bool(user.account) and fold(user.account) == self.key[8:]
        if self._pattern is None:
            self._pattern = _glob(self.key)
        username = fold(user.username or user.nick)
        host = fold(user.host or "line")
        return self._pattern.match(f"{user.key}!{username}@{host}") is not None


# -- the state of one room ------------------------------------------------------------


@dataclass(eq=False, slots=True)
class RoomRecord:
    """A registered room as kept in the database: it outlives its members.

    operators holds folded account names (the founder's among them); flags,
    key, limit, topic and bans are what the room had when last changed.
    """

    name: str
    founder: str  # folded account name
    operators: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=lambda: set(DEFAULT_FLAGS))
    key: str = ""
    limit: int = 0
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    bans: list[tuple[str, str, float]] = field(default_factory=list)
    created: float = 0.0


@dataclass(eq=False, slots=True)
class RoomRules:
    """What a room's operators decide, and who they are.

    ops and voiced hold the User objects themselves, so a rename keeps
    the status; invited holds folded nicknames, used up by the join.

    A server holds thousands of rooms, most of which nobody moderates: what
    is usually empty (flags but n, bans, invitations, voices) starts as a
    shared empty (immutable) value and is replaced, never changed in place,
    so a room costs about 500 bytes more than before rooms were run, not a
    kilobyte.
    """

    created: float = 0.0
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    flags: AbstractSet[str] = DEFAULT_FLAGS
    key: str = ""
    limit: int = 0
    bans: Sequence[Ban] = ()
    invited: AbstractSet[str] = frozenset()
    ops: set[User] = field(default_factory=set)
    voiced: AbstractSet[User] = frozenset()
    record: RoomRecord | None = None  # set while the room is registered

    def has(self, letter: str) -> bool:
        """Tell whether flag mode letter is on."""
        return letter in self.flags

    def mode_string(self, show_key: bool) -> tuple[str, list[str]]:
        """The modes as IRC lists them (+iklmnst) and their arguments."""
        letters = sorted(self.flags | ({"k"} if self.key else set()))
        if self.limit:
            letters = sorted({*letters, "l"})
        args: list[str] = []
        for letter in letters:
            if letter == "k":
                args.append(self.key if show_key else "*")
            elif letter == "l":
                args.append(str(self.limit))
        return "+" + "".join(letters), args

    def banned(self, user: User) -> Ban | None:
        """Return the first ban that applies to user, if any."""
        for ban in self.bans:
            if ban.matches(user):
                return ban
        return None

    def restore(self, record: RoomRecord) -> None:
        """Take a registered room's kept state (its first member just came)."""
        self.record = record
        self.created = record.created or self.created
        self.flags = frozenset(record.flags)
        self.key, self.limit = record.key, record.limit
        self.topic, self.topic_by, self.topic_time = (
            record.topic,
            record.topic_by,
            record.topic_time,
        )
        self.bans = [Ban(mask, by, time) for mask, by, time in record.bans]

    def keep(self) -> None:
        """Copy the room's state into its record (when registered)."""
        record = self.record
        if record is None:
            return
        record.flags = set(self.flags)
        record.key, record.limit = self.key, self.limit
        record.topic, record.topic_by, record.topic_time = (
            self.topic,
            self.topic_by,
            self.topic_time,
        )
        record.bans = [(ban.mask, ban.by, ban.time) for ban in self.bans]


def valid_key(key: str) -> bool:
    """Tell whether key may be a room key: 1 to 23 visible ASCII characters, no ','."""
    return (
        0 < len(key) <= MAX_KEY
        and all("!" <= ch <= "~" for ch in key)
        and "," not in key
        and not key.startswith(":")
    )


def _limit_value(arg: str) -> int | None:
    if not (arg.isascii() and arg.isdecimal()) or len(arg) > 7:
        return None
    value = int(arg)
    return value if 0 < value <= MAX_LIMIT else None


def parse_changes(
    words: list[str],
) -> tuple[list[Change], list[str], list[ChatError]]:
    """Read IRC-style mode words (+o-v alice bob) into changes.

    Returns the changes, the list modes asked for without an argument (b:
    show the ban list) and refusals for letters not known or arguments
    missing. A missing argument to +o, +v, +b, +k, +l or -o, -v, -b is a
    refusal; -k takes an argument on IRC but needs none; -l takes none.
    """
    changes: list[Change] = []
    lists: list[str] = []
    errors: list[ChatError] = []
    if not words:
        return changes, lists, errors
    args = list(words[1:])
    on = True
    for letter in words[0]:
        if letter in "+-":
            on = letter == "+"
            continue
        if letter in MEMBER_MODES or letter == BAN_MODE:
            if not args:
                if letter == BAN_MODE:
                    lists.append(letter)
                else:
                    errors.append(
                        ChatError(
                            ErrorCode.BAD_ARGS,
                            f"{'+' if on else '-'}{letter} needs a nickname",
                            mode=letter,
                        )
                    )
                continue
            changes.append(Change(letter, on, args.pop(0)))
        elif letter == KEY_MODE:
            if on and not args:
                errors.append(
                    ChatError(ErrorCode.BAD_ARGS, "+k needs a key", mode=letter)
                )
                continue
            arg = args.pop(0) if args else ""
            changes.append(Change(letter, on, arg if on else ""))
        elif letter == LIMIT_MODE:
            if on:
                if not args:
                    errors.append(
                        ChatError(ErrorCode.BAD_ARGS, "+l needs a number", mode=letter)
                    )
                    continue
                changes.append(Change(letter, on, args.pop(0)))
            else:
                changes.append(Change(letter, on))
        elif letter in FLAG_MODES:
            changes.append(Change(letter, on))
        else:
            errors.append(
                ChatError(
                    ErrorCode.BAD_ARGS,
                    f"{letter} is not a room mode; the modes are {ALL_MODES}",
                    mode=letter,
                )
            )
    return changes, lists, errors


# -- the rules, as part of Chat -------------------------------------------------


class Moderation:
    """The moderation half of Chat: rooms' rules and the commands that change them.

    Chat inherits it; the attributes below are Chat's.
    """

    users: dict[str, User]
    rooms: dict[str, Room]
    server_name: str
    server_operators: frozenset[str]
    now: Callable[[], float]
    records: dict[str, RoomRecord]
    secret_rooms: set[str]
    record_changed: Callable[[RoomRecord | None, str], None]

    if TYPE_CHECKING:

        def room(self, name: str) -> Room: ...

        def user(self, nick: str) -> User: ...

        def current_room(self, user: User) -> Room: ...

        def neighbours(self, user: User) -> list[User]: ...

        def _remove_member(
            self, room: Room, user: User, quiet: bool = False
        ) -> None: ...

    # -- who is what ------------------------------------------------------------

    def is_server_operator(self, user: User) -> bool:
        """Tell whether user is identified to an account of --operators."""
        return bool(user.account) and fold(user.account) in self.server_operators

    def is_operator(self, room: Room, user: User) -> bool:
        """Tell whether user may run room: its operator, or a server operator."""
        return user in room.rules.ops or self.is_server_operator(user)

    def is_founder(self, room: Room, user: User) -> bool:
        """Tell whether user is identified as the founder of registered room."""
        record = room.rules.record
        return (
            record is not None
            and bool(user.account)
            and fold(user.account) == record.founder
        )

    def _named_room(self, user: User, name: str | None) -> Room:
        return self.room(name) if name is not None else self.current_room(user)

    def _must_run(self, room: Room, user: User) -> None:
        """Refuse unless user may run room (a member operator, or server operator)."""
        if self.is_server_operator(user):
            return
        if not user.is_member(room):
            raise ChatError(
                ErrorCode.NOT_IN_ROOM, f"you are not in {room.name}", room=room.name
            )
        if user not in room.rules.ops:
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                f"you are not an operator of {room.name}",
                room=room.name,
            )

    def _member(self, room: Room, nick: str) -> User:
        """Return the member of room called nick, or refuse."""
        target = self.users.get(fold(nick))
        if target is None:
            raise ChatError(
                ErrorCode.NO_SUCH_NICK, f"nobody is called {nick}", nick=nick
            )
        if not target.is_member(room):
            raise ChatError(
                ErrorCode.NOT_MEMBER,
                f"{target.nick} is not in {room.name}",
                room=room.name,
                nick=target.nick,
            )
        return target

    def _protected(self, room: Room, user: User, target: User, what: str) -> None:
        """Refuse what user would do to target if target is above them in room."""
        if target is user or self.is_server_operator(user):
            return
        if self.is_server_operator(target):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                f"{target.nick} is a server operator; you cannot {what} them",
                room=room.name,
            )
        if self.is_founder(room, target) and not self.is_founder(room, user):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                f"{target.nick} founded {room.name}; you cannot {what} them",
                room=room.name,
            )

    # -- hooks from Chat's join, say, part and quit ------------------------------------

    def _check_join(self, room: Room, user: User, key: str | None) -> None:
        """Refuse user's join of existing room: banned, invite-only, key, full."""
        rules = room.rules
        if self.is_server_operator(user):
            return  # server operators run every room (docs/protocol.md)
        ban = rules.banned(user)
        if ban is not None:
            raise ChatError(
                ErrorCode.BANNED,
                f"you are banned from {room.name} ({ban.mask})",
                room=room.name,
            )
        invited = user.key in rules.invited
        if rules.has("i") and not invited:
            raise ChatError(
                ErrorCode.INVITE_ONLY,
                f"{room.name} is invite-only: an operator must /invite you first",
                room=room.name,
            )
        if rules.key and key != rules.key:
            raise ChatError(
                ErrorCode.WRONG_KEY,
                f"{room.name} needs a key: /join {room.name} <key>"
                if not key
                else f"that is not the key of {room.name}",
                room=room.name,
            )
        if rules.limit and len(room.members) >= rules.limit:
            raise ChatError(
                ErrorCode.ROOM_FULL,
                f"{room.name} is full ({rules.limit} members at most)",
                room=room.name,
            )

    def _created(self, room: Room) -> None:
        """A room was just made: its time, and its record if registered."""
        rules = room.rules
        rules.created = self.now()
        record = self.records.get(room.key)
        if record is not None:
            rules.restore(record)
            if rules.has("s"):
                self.secret_rooms.add(room.key)

    def _joined(self, room: Room, user: User, new: bool) -> None:
        """After user joined room (JOIN already seen): status, invitation used."""
        rules = room.rules
        if user.key in rules.invited:
            rules.invited = rules.invited - {user.key}
        if room.name == LOBBY or fold(room.name) == fold(LOBBY):
            return
        record = rules.record
        if record is not None:
            if user.account and fold(user.account) in record.operators:
                self._give(room, user, self.server_name)
            return
        if new:
            rules.ops.add(user)  # the first member runs it (IRC shows @ in NAMES)
        elif not rules.ops:
            self._give(room, user, self.server_name)  # nobody ran it: now they do

    def _give(self, room: Room, user: User, by: str) -> None:
        """Make user an operator of room, everyone in it told."""
        if user in room.rules.ops:
            return
        room.rules.ops.add(user)
        self._tell(room, ModesChanged(room.name, by, (Change("o", True, user.nick),)))

    def _left(self, room: Room, user: User) -> None:
        """user is no longer in room: forget their status, keep the room run."""
        rules = room.rules
        rules.ops.discard(user)
        if user in rules.voiced:
            rules.voiced = rules.voiced - {user}
        if room.members:
            self._keep_run(room, None)

    def _keep_run(self, room: Room, stepped_down: User | None) -> None:
        """Give an unregistered room without operators to its longest member.

        stepped_down: the operator who just gave up the status; they are
        not given it back (alone in the room, it stays unrun).
        """
        rules = room.rules
        if rules.ops or rules.record is not None or room.key == fold(LOBBY):
            return
        for member in room.members.values():
            if member is not stepped_down:
                self._give(room, member, self.server_name)
                return

    def _check_speaker(self, room: Room, user: User) -> None:
        """Refuse a message to room from user: banned, moderated, or outside."""
        rules = room.rules
        if self.is_server_operator(user):
            return
        member = user.is_member(room)
        if not member and rules.has("n"):
            raise ChatError(
                ErrorCode.NOT_IN_ROOM, f"you are not in {room.name}", room=room.name
            )
        ban = rules.banned(user)
        if ban is not None:
            raise ChatError(
                ErrorCode.BANNED,
                f"you are banned from {room.name} ({ban.mask}) and cannot speak there",
                room=room.name,
            )
        if rules.has("m") and user not in rules.ops and user not in rules.voiced:
            raise ChatError(
                ErrorCode.MODERATED,
                f"{room.name} is moderated: only its operators and voiced "
                "members speak",
                room=room.name,
            )

    def _tell(self, room: Room, event: Event) -> None:
        for member in room.members.values():
            member.deliver(event)

    def _save_record(self, room: Room) -> None:
        """A registered room changed: copy its state into its record and save it."""
        rules = room.rules
        if rules.record is not None:
            rules.keep()
            self.record_changed(rules.record, room.key)

    # -- the commands -------------------------------------------------------------

    def set_topic(self, user: User, name: str | None, text: str) -> Room:
        """Set room's topic (default: the current room); "" clears it.

        Members may set it, unless the room keeps it to operators (+t).
        """
        room = self._named_room(user, name)
        rules = room.rules
        if not self.is_server_operator(user):
            if not user.is_member(room):
                raise ChatError(
                    ErrorCode.NOT_IN_ROOM, f"you are not in {room.name}", room=room.name
                )
            if rules.has("t") and user not in rules.ops:
                raise ChatError(
                    ErrorCode.NOT_OPERATOR,
                    f"only operators set the topic of {room.name}",
                    room=room.name,
                )
        text = clean_text(text).strip()[:TOPIC_LENGTH]
        now = self.now()
        rules.topic, rules.topic_by, rules.topic_time = text, user.nick, now
        self._save_record(room)
        self._tell(room, TopicChanged(room.name, user.nick, text, now))
        return room

    def change_modes(
        self, user: User, name: str | None, changes: Iterable[Change]
    ) -> tuple[Room, list[Change], list[ChatError]]:
        """Apply mode changes to room (default: the current one).

        The asker must run the room (ChatError otherwise, nothing changed).
        Each change is then checked on its own: the valid ones are applied
        and told in one ModesChanged, the others come back as refusals.
        Changes that change nothing (+i on an invite-only room) are left out.
        """
        room = self._named_room(user, name)
        changes = list(changes)
        self._must_run(room, user)
        rules = room.rules
        applied: list[Change] = []
        errors: list[ChatError] = []
        flags = set(rules.flags)
        key, limit = rules.key, rules.limit
        ops, voiced = set(rules.ops), set(rules.voiced)
        bans = list(rules.bans)
        stepped_down: User | None = None
        for change in changes:
            try:
                done = self._one_change(room, user, change, flags, ops, voiced, bans)
            except ChatError as error:
                errors.append(error)
                continue
            if done is None:
                continue
            letter = done.letter
            if letter == KEY_MODE:
                key = done.arg if done.on else ""
            elif letter == LIMIT_MODE:
                limit = int(done.arg) if done.on else 0
            elif letter == OP_MODE and not done.on and fold(done.arg) == user.key:
                stepped_down = user
            applied.append(done)
        if not applied:
            return room, applied, errors
        rules.flags = DEFAULT_FLAGS if flags == DEFAULT_FLAGS else frozenset(flags)
        rules.key, rules.limit = key, limit
        if "s" in flags:
            self.secret_rooms.add(room.key)
        else:
            self.secret_rooms.discard(room.key)
        rules.ops = ops
        rules.voiced = frozenset(voiced) if voiced else frozenset()
        rules.bans = tuple(bans)
        record = rules.record
        if record is not None:
            for change in applied:
                self._record_status(room, record, change)
        self._save_record(room)
        self._tell(room, ModesChanged(room.name, user.nick, tuple(applied)))
        if stepped_down is not None:
            self._keep_run(room, stepped_down)
        return room, applied, errors

    def _record_status(self, room: Room, record: RoomRecord, change: Change) -> None:
        """In a registered room, +o/-o of an identified member is kept by account."""
        if change.letter != OP_MODE:
            return
        target = self.users.get(fold(change.arg))
        if target is None or not target.account:
            return
        account = fold(target.account)
        if change.on:
            record.operators.add(account)
        elif account != record.founder:
            record.operators.discard(account)

    def _one_change(
        self,
        room: Room,
        user: User,
        change: Change,
        flags: set[str],
        ops: set[User],
        voiced: set[User],
        bans: list[Ban],
    ) -> Change | None:
        """Check and apply one change to the copies given (None: no change)."""
        letter, on, arg = change.letter, change.on, change.arg
        rules = room.rules
        if letter in FLAG_MODES:
            if (letter in flags) == on:
                return None
            (flags.add if on else flags.discard)(letter)
            return Change(letter, on)
        if letter == KEY_MODE:
            if not on:
                return Change(letter, False, "*") if rules.key else None
            if not valid_key(arg):
                raise ChatError(
                    ErrorCode.BAD_ARGS,
                    f"a key is 1 to {MAX_KEY} visible ASCII characters without "
                    "',' or spaces",
                    room=room.name,
                    mode=letter,
                    arg=arg,
                )
            return None if arg == rules.key else Change(letter, True, arg)
        if letter == LIMIT_MODE:
            if not on:
                return Change(letter, False) if rules.limit else None
            value = _limit_value(arg)
            if value is None:
                raise ChatError(
                    ErrorCode.BAD_ARGS,
                    f"a limit is a whole number from 1 to {MAX_LIMIT}",
                    room=room.name,
                    mode=letter,
                    arg=arg,
                )
            return None if value == rules.limit else Change(letter, True, str(value))
        if letter in MEMBER_MODES:
            target = self._member(room, arg)
            group = ops if letter == OP_MODE else voiced
            if (target in group) == on:
                return None
            if not on and letter == OP_MODE:
                self._protected(room, user, target, "de-op")
            (group.add if on else group.discard)(target)
            return Change(letter, on, target.nick)
        if letter == BAN_MODE:
            problem = ban_problem(arg)
            if problem is not None:
                raise ChatError(
                    ErrorCode.BAD_ARGS, problem, room=room.name, mode=letter, arg=arg
                )
            key = ban_key(arg)
            found = next((ban for ban in bans if ban.key == key), None)
            if on:
                if found is not None:
                    return None
                if len(bans) >= MAX_BANS:
                    raise ChatError(
                        ErrorCode.BAN_LIST_FULL,
                        f"{room.name} has {MAX_BANS} bans, the most it may have",
                        room=room.name,
                        mode=letter,
                    )
                bans.append(Ban(arg, user.nick, self.now()))
                return Change(letter, True, arg)
            if found is None:
                return None
            bans.remove(found)
            return Change(letter, False, found.mask)
        raise ChatError(ErrorCode.BAD_ARGS, f"{letter} is not a room mode", mode=letter)

    def kick(self, user: User, name: str | None, nick: str, reason: str) -> Room:
        """Put nick out of room (default: the current one); everyone there sees it."""
        room = self._named_room(user, name)
        self._must_run(room, user)
        target = self._member(room, nick)
        self._protected(room, user, target, "kick")
        reason = clean_text(reason).strip()[:KICK_REASON_LENGTH] or user.nick
        self._tell(room, Kicked(room.name, target.nick, user.nick, reason))
        self._remove_member(room, target)
        if target.current == room.key:
            target.current = fold(LOBBY)
        return room

    def invite(self, user: User, nick: str, name: str) -> tuple[Room, User]:
        """Invite nick to room: they may then join it once, invite-only or not.

        Only the invitee is told (Invited); the door answers the inviter.
        """
        target = self.user(nick)
        room = self.room(name)
        rules = room.rules
        if not self.is_server_operator(user):
            if not user.is_member(room):
                raise ChatError(
                    ErrorCode.NOT_IN_ROOM, f"you are not in {room.name}", room=room.name
                )
            if rules.has("i") and user not in rules.ops:
                raise ChatError(
                    ErrorCode.NOT_OPERATOR,
                    f"{room.name} is invite-only: only its operators invite",
                    room=room.name,
                )
        if target.is_member(room):
            raise ChatError(
                ErrorCode.ALREADY_IN_ROOM,
                f"{target.nick} is already in {room.name}",
                room=room.name,
                nick=target.nick,
            )
        rules.invited = rules.invited | {target.key}
        target.deliver(Invited(room.name, target.nick, user.nick))
        return room, target

    def kill(self, user: User, nick: str, reason: str) -> User:
        """Disconnect nick (server operators only); the others see them quit."""
        if not self.is_server_operator(user):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                "you are not a server operator; only they disconnect people",
            )
        target = self.user(nick)
        reason = clean_text(reason).strip()[:KICK_REASON_LENGTH] or "no reason given"
        target.client.close(f"Killed by {user.nick}: {reason}")
        return target

    # -- registered rooms ------------------------------------------------------

    def register_room(self, user: User, name: str | None) -> RoomRecord:
        """Register room under user's account: its operators keep their status."""
        room = self._named_room(user, name)
        if room.key == fold(LOBBY):
            raise ChatError(
                ErrorCode.BAD_ARGS, f"{LOBBY} belongs to the server", room=room.name
            )
        if not user.account:
            raise ChatError(
                ErrorCode.NOT_IDENTIFIED,
                "identify first (/identify <password>): a room is registered to "
                "your account",
            )
        if room.rules.record is not None:
            raise ChatError(
                ErrorCode.ALREADY_REGISTERED,
                f"{room.name} is already registered",
                room=room.name,
            )
        self._must_run(room, user)
        rules = room.rules
        founder = fold(user.account)
        operators = {founder} | {
            fold(op.account) for op in rules.ops if op.account and op.is_member(room)
        }
        record = RoomRecord(room.name, founder, operators, created=rules.created)
        rules.record = record
        self.records[room.key] = record
        self._save_record(room)
        return record

    def unregister_room(self, user: User, name: str | None) -> Room:
        """Forget room's registration (its founder, or a server operator)."""
        room = self._named_room(user, name)
        record = room.rules.record
        if record is None:
            raise ChatError(
                ErrorCode.UNREGISTERED,
                f"{room.name} is not registered",
                room=room.name,
            )
        if not (self.is_founder(room, user) or self.is_server_operator(user)):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                f"only the founder of {room.name} may unregister it",
                room=room.name,
            )
        room.rules.record = None
        del self.records[room.key]
        self.record_changed(None, room.key)
        self._keep_run(room, None)
        return room

    def forget_account(self, account: str) -> None:
        """An account is gone: take it out of every registered room.

        A room it founded is registered no more (its present operators
        keep their status for as long as they stay).
        """
        key = fold(account)
        for room_key, record in list(self.records.items()):
            if record.founder == key:
                del self.records[room_key]
                self.record_changed(None, room_key)
                room = self.rooms.get(room_key)
                if room is not None:
                    room.rules.record = None
                    self._keep_run(room, None)
            elif key in record.operators:
                record.operators.discard(key)
                self.record_changed(record, room_key)

    def _status_by_account(self, user: User) -> None:
        """user just identified: op them where a registered room lists the account."""
        if not user.account:
            return
        account = fold(user.account)
        for room in list(user.rooms.values()):
            record = room.rules.record
            if record is not None and account in record.operators:
                self._give(room, user, self.server_name)
