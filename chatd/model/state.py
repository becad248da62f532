"""Who is in the chat and where: users, rooms and each room's rules as they stand.

Plain data with a few lookups; what may change them, and how, is Chat's
(chatd.model.chat) and Moderation's (chatd.model.moderation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from chatd.model.events import Event, IChatClient
from chatd.model.globs import glob_match
from chatd.model.names import LOBBY, fold
from chatd.model.rates import TokenBucket
from chatd.model.room_rules import DEFAULT_FLAGS, RoomRecord, ban_key, ban_size
from chatd.store.interface import Marker

if TYPE_CHECKING:
    from chatd.model.devices import Devices

# The host of a user no door gave one: a test's, or a user a node of an
# earlier version replicated. Every door gives its peer's address
# (Connection.host), so that a ban by address catches a person on any door.
NO_HOST = "unknown"

# -- a room's rules as they stand (what may change them: chatd.model.moderation) ----


@dataclass(eq=False, slots=True)
class Ban:
    """One ban of a room: the mask as given, who set it and when."""

    mask: str
    by: str
    time: float
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = ban_key(self.mask)

    @property
    def size(self) -> int:
        """What the ban counts against its room's MAX_BAN_BYTES (room_rules)."""
        return ban_size(self.mask, self.key)

    def matches(self, user: User) -> bool:
        """Tell whether this ban applies to user as they are now.

        A mask is matched against the user's nick!user@host
        (User.user_and_host), folded, without backtracking (chatd.model.globs):
        at worst in time proportional to the two lengths' product, whatever
        the mask.
        """
        if self.key.startswith("account:"):
            return bool(user.account) and fold(user.account) == self.key[8:]
        username, host = user.user_and_host()
        return glob_match(self.key, f"{user.key}!{fold(username)}@{fold(host)}")


NO_INVITATIONS: Mapping[User, float] = MappingProxyType({})


# -- the state of one room ------------------------------------------------------------


@dataclass(eq=False, slots=True)
class RoomRules:
    """What a room's operators decide, and who they are.

    ops and voiced hold the User objects themselves, so a rename keeps
    the status; so does invited (with the time each invitation expires),
    so that an invitation follows its invitee through renames and nobody
    else gets it by taking the old nickname. An invitation is used up by
    the join; a room keeps MAX_INVITES of them (moderation).

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
    invited: Mapping[User, float] = field(default_factory=lambda: NO_INVITATIONS)
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


# -- users and rooms ------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Room:
    """A room and its members (keyed by folded nick), in the order they joined."""

    name: str
    members: dict[str, User] = field(default_factory=dict)
    key: str = field(init=False)  # the folded name that identifies the room
    # Topic, modes, operators, bans (chatd.model.moderation).
    rules: RoomRules = field(default_factory=RoomRules)
    # A cluster node's members of its own, in join order, for delivering what
    # the log brings (chatd.cluster.replica); None: to be listed again. Every
    # change of members sets it to None.
    local: list[User] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.key = fold(self.name)

    def nicks(self) -> list[str]:
        """Return the members' nicknames, sorted as a person would look them up."""
        return sorted((user.nick for user in self.members.values()), key=fold)


@dataclass(eq=False, slots=True)
class User:
    """A registered user: display nickname, rooms and current room."""

    nick: str
    client: IChatClient
    rooms: dict[str, Room] = field(default_factory=dict)  # keyed by Room.key
    current: str = fold(LOBBY)  # the key of the room plain lines go to
    key: str = field(init=False)  # the folded nickname that identifies the user
    # Who the user is beyond the nickname, for IRC's WHO, WHOIS and masks; a
    # door that does not ask (the line protocol) leaves them empty.
    username: str = ""
    realname: str = ""
    host: str = ""
    away: str = ""  # the away message; empty while the user is here
    account: str = ""  # the account the user identified to; empty if none
    # Hidden from those who share no room with them when they look users up
    # by a mask (IRC's user mode +i; chatd.model.chat, set_invisible).
    invisible: bool = False
    # What the user may still send of tags alone (typing, reactions; made on
    # the first: chatd.model.chat, send_tags).
    tag_budget: TokenBucket | None = field(default=None, repr=False)
    # Who the user is for deleting their own messages while not identified
    # (chatd.model.redaction): "~" and a token of this registration's, never
    # another's, whoever takes the nickname later. Chat.register sets it.
    session: str = ""
    # Read markers of a user who is not identified, for its connection's life
    # only (IRC's MARKREAD; chatd.model.read_markers): None until it sets one.
    session_markers: dict[str, Marker] | None = None
    # client.deliver, bound once: a broadcast calls it for every member. A
    # user on several connections (chatd.model.devices) has its Devices here:
    # the fan-out's deliver while two or more are attached, the one
    # connection's own while one is, so one device costs nothing more.
    deliver: Callable[[Event], None] = field(init=False, repr=False)
    # The user's connections once it had a second one (chatd.model.devices);
    # None for the usual user on one connection.
    devices: Devices | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.key = same_or(fold(self.nick), self.nick)
        self.deliver = self.client.deliver

    def user_and_host(self) -> tuple[str, str]:
        """The user and host of this user's nick!user@host, as every door shows it.

        What bans match (Ban.matches) and IRC shows. The host is the peer's
        address, which every door gives at registration; a door that asks
        no username (the line protocol, the web page) has the nickname
        stand for it.
        """
        return self.username or self.nick, self.host or NO_HOST

    def is_member(self, room: Room) -> bool:
        """Tell whether this user is in room."""
        return room.key in self.rooms


def same_or(folded: str, name: str) -> str:
    """Return name itself when folding left it unchanged: one string, not two."""
    return name if folded == name else folded
