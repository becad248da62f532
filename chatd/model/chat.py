"""The chat itself: users, rooms, the rules and the events they produce.

Nothing here knows about sockets, bytes or how a line is spelled on the wire.
A user's connection is anything that provides IChatClient, so a line protocol,
an IRC listener or a WebSocket can share the same rooms.
"""

from __future__ import annotations

import secrets
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import cast

from twisted.internet.interfaces import IReactorTime

from chatd.config import MAX_ROOMS, MAX_ROOMS_PER_USER, SERVER_NAME
from chatd.model import devices
from chatd.model.away import AWAY_TOLD_MAX
from chatd.model.client_tags import (
    NO_TAGS,
    TAG_BURST,
    TAG_RATE,
    Tags,
    check_size,
)
from chatd.model.devices import ALWAYS_ON_AWAY
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import (
    AccountChanged,
    Action,
    Away,
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
)
from chatd.model.moderation import Moderation
from chatd.model.names import (
    LOBBY,
    fold,
    nick_problem,
    normalize_name,
    reserved_nicks,
    room_problem,
)
from chatd.model.permissions import Permissions
from chatd.model.rates import TokenBucket
from chatd.model.read_markers import ReadMarking, keep_in_memory
from chatd.model.room_rules import RoomRecord
from chatd.model.server_banning import ServerBanRules
from chatd.model.server_bans import ServerBans
from chatd.model.state import Room, RoomRules, User, same_or
from chatd.model.whowas import PastNicks
from chatd.store.interface import IHistory, Kind, Marker, Stamps, nick_party

# The model's front: the doors take users, rooms and events from here.
__all__ = [
    "AccountChanged",
    "Action",
    "Away",
    "Chat",
    "Deleted",
    "Event",
    "IChatClient",
    "Invited",
    "Joined",
    "Kicked",
    "Message",
    "ModesChanged",
    "Notice",
    "Parted",
    "Private",
    "Quit",
    "ReadMoved",
    "Renamed",
    "Room",
    "RoomRecord",
    "RoomRules",
    "Tagged",
    "TopicChanged",
    "User",
    "author_of",
    "deliver_to",
    "party_of",
]


def deliver_to(users: Iterable[User], event: Event) -> None:
    """Hand one event object to each user's client."""
    for user in users:
        deliver = user.deliver  # a slot read, then a call: quicker than a slot's call
        deliver(event)


def party_of(user: User) -> str:
    """Who user is in a kept private conversation: their account, if any."""
    return fold(user.account) if user.account else nick_party(user.key)


# An account's folded name, remembered: author_of runs once per message said.
_folded_account = lru_cache(maxsize=4096)(fold)


def author_of(user: User) -> str:
    """Who user is as the author of what they say now (chatd.model.redaction).

    Their account (folded) if identified; otherwise their session ("~" and a
    token), which is this registration's only: a nickname can pass to another
    person, and whoever takes it later is not the author of what was said.
    """
    return _folded_account(user.account) if user.account else user.session


class _Seconds:
    """The chat's clock as a TokenBucket reads one (seconds())."""

    __slots__ = ("now",)

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now

    def seconds(self) -> float:
        """The chat's time now."""
        return self.now()


def usable_history(chat: Chat) -> IHistory:
    """The chat's history store, or ChatError(NO_HISTORY) when it cannot be read:
    none is kept (--no-history), or the store said why it is down."""
    history = chat.history
    if history is None:
        raise ChatError(ErrorCode.NO_HISTORY, "this server keeps no history")
    if history.reason is not None:
        raise ChatError(
            ErrorCode.NO_HISTORY, f"history is unavailable: {history.reason}"
        )
    return history


def _nothing(record: RoomRecord | None, key: str) -> None:
    """The default for Chat.record_changed: registered rooms are not kept."""


def _not_kept(user: User, on: bool) -> None:
    """The default for Chat.always_on_changed: always-on users are not kept."""


class Chat(Moderation, Permissions, ServerBanRules, ReadMarking):
    """All users and rooms of one server, and the rules between them.

    The rules of rooms people run (operators, bans, modes) are
    chatd.model.moderation's, who may see a room and read its history
    chatd.model.permissions's, server bans (K-lines) chatd.model.server_banning's,
    and accounts' read markers chatd.model.read_markers's; Chat inherits them.
    """

    def __init__(
        self,
        *,
        server_name: str = SERVER_NAME,
        max_rooms: int = MAX_ROOMS,
        max_rooms_per_user: int = MAX_ROOMS_PER_USER,
        history: IHistory | None = None,
        now: Callable[[], float] = time.time,
        server_operators: Iterable[str] = (),
        motd: tuple[str, ...] = (),
    ) -> None:
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {fold(LOBBY): Room(LOBBY)}
        self.most_users = 0  # the most users registered at once (IRC's LUSERS)
        # The rooms' keys in order, kept as rooms come and go, so that a page
        # of /rooms is a slice rather than a sort of every room on each ask.
        self.room_keys: list[str] = [fold(LOBBY)]
        self.max_rooms = max_rooms  # #lobby included
        self.max_rooms_per_user = max_rooms_per_user  # #lobby included
        # Nobody may take the server's name or a verb (names.RESERVED_NICKS).
        self.reserved_nicks = reserved_nicks(server_name)
        # Where room messages are kept (docs/protocol.md, History); None: nowhere.
        self.history = history
        self.server_name = server_name  # the "by" of what the server itself does
        self.now = now  # the clock's time: rooms' creation and topics
        # Folded account names whose users run every room (--operators).
        self.server_operators = frozenset(fold(name) for name in server_operators)
        # The message of the day (--motd), one line each: every door shows it.
        self.motd = motd
        # Registered rooms by folded name, and who keeps them when they change
        # (chatd.model.accounts: the database); the default keeps nothing.
        self.records: dict[str, RoomRecord] = {}
        self.record_changed: Callable[[RoomRecord | None, str], None] = _nothing
        # Told of every user who took a nickname by a rename (and, through the
        # door, after registration), so that the accounts can guard
        # registered ones (chatd.model.accounts).
        self.nick_watchers: list[Callable[[User], None]] = []
        # Keys of the rooms that are secret (+s), so that listing rooms need
        # not look at every room's modes (chatd.model.moderation keeps it).
        self.secret_rooms: set[str] = set()
        # Who gave up which nickname lately (IRC's WHOWAS).
        self.past_nicks = PastNicks()
        # Users who stay while no device is connected (docs/protocol.md,
        # Always-on), and who is told of whose away message in a private
        # conversation (folded sender nicks, by away user; once each).
        self.always_on: set[User] = set()
        self.away_told: dict[User, set[str]] = {}
        # Told when an always-on user changes (its rooms, its nickname) or
        # stops being one (on False), so that the store keeps it across
        # restarts (chatd.model.always_on); the default keeps nothing.
        self.always_on_changed: Callable[[User, bool], None] = _not_kept
        # Who may not use the server (K-lines); kept by the accounts' store
        # (chatd.model.accounts attaches it).
        self.server_bans = ServerBans()
        # Accounts' read markers (chatd.model.read_markers): the account
        # store's, once chatd.model.accounts sets them; in memory until then.
        self.markers: dict[str, dict[str, Marker]] = {}
        self.marker_changed = keep_in_memory(self.markers)

        # Ids for what no history keeps (a private message between users not
        # identified, tags sent alone), so that a reply or a reaction can
        # name it: from the clock, as history's, in a sequence of their own,
        # below zero so that none is ever a kept message's (_live_id).
        self.live_ids = Stamps()
        self._seconds = cast(IReactorTime, _Seconds(now))  # for the tag budgets

    # -- the server's settings ---------------------------------------------

    def reconfigure(
        self,
        *,
        motd: tuple[str, ...],
        max_rooms: int,
        max_rooms_per_user: int,
        server_operators: Iterable[str],
    ) -> None:
        """Take the settings a reload of the config file changes (chatd.ops.reload).

        Each is read when it is used: the next join counts against the new
        room limits, the next registration shows the new MOTD, and the next
        command of a server operator is checked against the new list (a user
        no longer listed loses the powers at once). Rooms past a lowered limit
        stay; only new ones are refused.
        """
        self.motd = motd
        self.max_rooms = max_rooms
        self.max_rooms_per_user = max_rooms_per_user
        self.server_operators = frozenset(fold(name) for name in server_operators)

    # -- looking things up ------------------------------------------------

    def user(self, nick: str) -> User:
        """Return the registered user called nick, ignoring case."""
        found = self.users.get(fold(nick))
        if found is None:
            raise ChatError(ErrorCode.NO_SUCH_NICK, f"nobody is called {nick}")
        return found

    def room(self, name: str) -> Room:
        """Return the existing room called name, ignoring case."""
        found = self.rooms.get(fold(name))
        if found is not None and found.name == name:
            return found  # a room's own name, which it was made with, is valid
        problem = room_problem(name)
        if problem is not None:
            raise ChatError(ErrorCode.ROOM_INVALID, f"{name}: {problem}")
        if found is None:
            raise ChatError(ErrorCode.NO_SUCH_ROOM, f"there is no room {name}")
        return found

    def room_sizes(
        self, start: int = 0, count: int | None = None
    ) -> list[tuple[str, int]]:
        """Return rooms' names and member counts, sorted by name.

        All of them, or count of them from the start-th (0 is the first).
        """
        end = None if count is None else start + count
        rooms = [self.rooms[key] for key in self.room_keys[start:end]]
        return [(room.name, len(room.members)) for room in rooms]

    def neighbours(self, user: User) -> list[User]:
        """Return everyone else who shares at least one room with user, once each."""
        seen: dict[str, User] = {}
        for room in user.rooms.values():
            seen.update(room.members)
        seen.pop(user.key, None)
        return list(seen.values())

    def current_room(self, user: User) -> Room:
        """Return the room user's plain lines go to; user must be in it."""
        room = user.rooms.get(user.current)
        if room is None:
            gone = self.rooms.get(user.current)
            shown = gone.name if gone is not None else LOBBY
            raise ChatError(
                ErrorCode.NOT_IN_ROOM, f"you are not in {shown}; /join a room to talk"
            )
        return room

    # -- registration and names -------------------------------------------

    def _check_free(self, nick: str, owner: User | None = None) -> str:
        """Validate nick and check nobody else holds it; return its display form."""
        nick = normalize_name(nick)
        problem = nick_problem(nick, self.reserved_nicks)
        if problem is not None:
            raise ChatError(ErrorCode.NICK_INVALID, f"{nick}: {problem}")
        holder = self.users.get(fold(nick))
        if holder is not None and holder is not owner:
            raise ChatError(ErrorCode.NICK_TAKEN, f"{holder.nick} is taken")
        return nick

    def check_nick(self, nick: str) -> str:
        """Check that nick is valid and free now; return its display form."""
        return self._check_free(nick)

    def register(
        self,
        nick: str,
        client: IChatClient,
        *,
        username: str = "",
        realname: str = "",
        host: str = "",
        account: str = "",
    ) -> User:
        """Register client under nick; it is in no room until join().

        account: the account the client identified to before (IRC's SASL).
        A server ban that matches refuses it (ServerBanned): the door says
        why and closes.
        """
        nick = self._check_free(nick)
        self.check_server_bans(nick, username, host, account)
        user = User(
            nick,
            client,
            username=username,
            realname=realname,
            host=host,
            account=account,
        )
        user.session = self._new_session(client)
        self.users[user.key] = user
        self.most_users = max(self.most_users, len(self.users))
        # The nick watchers hear of it from the door, once it has said its
        # welcome (Connection.welcomed): nothing may come before that.
        return user

    def _new_session(self, client: IChatClient) -> str:
        """A session nobody had before (author_of): random, so not after a restart.

        On a cluster each replica of a user has its own: only the user's own
        node keeps what they say (with their author) and checks what they
        delete (chatd.model.redaction), and both are that node's one User.
        """
        return "~" + secrets.token_hex(8)

    def nick_taken(self, user: User) -> None:
        """Tell the nick watchers that user took their nickname (this node only).

        Not replicated: what the watchers do (the accounts' reservation
        clock) is the user's own node's (chatd.cluster.replica).
        """
        for watcher in self.nick_watchers:
            watcher(user)

    def set_account(self, user: User, account: str) -> None:
        """user is now identified as account ("" for none); those around are told.

        In a registered room that lists the account, user becomes operator.
        """
        if user.account == account or self.users.get(user.key) is not user:
            return
        if user in self.always_on:  # always-on is the account's: it ends with it
            self.set_always_on(user, False)
            if self.users.get(user.key) is not user:
                return
        user.account = account
        deliver_to([user, *self.neighbours(user)], AccountChanged(user.nick, account))
        self._status_by_account(user)

    def rename(self, user: User, new: str) -> None:
        """Change user's nickname; user and everyone sharing a room see RENAME."""
        new = self._check_free(new, owner=user)
        if new == user.nick:
            return
        if not self.is_server_operator(user):  # a banned nickname is refused too
            self.check_server_bans(new, user.username, user.host, user.account)
        old, old_key = user.nick, user.key
        user.nick, user.key = new, same_or(fold(new), new)
        del self.users[old_key]
        self.users[user.key] = user
        for room in user.rooms.values():
            # Rebuilt rather than re-keyed, to keep the member's place in join order.
            room.members = {
                (user.key if key == old_key else key): member
                for key, member in room.members.items()
            }
            room.local = None
        self.past_nicks.left(old, user.username, user.host, user.realname, self.now())
        deliver_to([user, *self.neighbours(user)], Renamed(old, new))
        self.nick_taken(user)
        if self.always_on:
            self._always_on_moved(user)

    def quit(self, user: User, reason: str) -> None:
        """Remove user; each user sharing a room with them gets one QUIT."""
        if self.users.get(user.key) is not user:
            return  # already gone
        neighbours = self.neighbours(user)
        rooms = list(user.rooms.values())
        for room in rooms:
            self._remove_member(room, user, quiet=True)
        # Still registered while the others hear it: a door may look the
        # quitter up (IRC spells nick!user@host); the nick is free after.
        deliver_to(neighbours, Quit(user.nick, reason))
        del self.users[user.key]
        if user in self.always_on:
            self.always_on.discard(user)
            self.always_on_changed(user, False)
        self.away_told.pop(user, None)
        self.past_nicks.left(
            user.nick, user.username, user.host, user.realname, self.now()
        )
        for room in rooms:  # then whoever runs a room the quitter ran
            if self.rooms.get(room.key) is room:
                self._left(room, user)

    def notify(self, user: User, text: str, service: str = "") -> None:
        """Tell user alone a notice from the server or a service (NickServ).

        Replicated on a cluster, so that it reaches a user held by another
        node (a guest renamed there because its account logged in here).
        """
        user.deliver(Notice(user.nick, text, service))

    def set_away(self, user: User, text: str) -> None:
        """Mark user away with text, or back with "".

        Those sharing a room see it, and so do the user's own connections
        (docs/protocol.md, Away).
        """
        if text == user.away:
            return
        user.away = text
        self.away_told.pop(user, None)
        deliver_to([user, *self.neighbours(user)], Away(user.nick, text))

    def away_reply(self, sender: User, recipient: User) -> str:
        """recipient's away text if sender is to be told it now, else "".

        docs/protocol.md, Away: the sender of a private message to an away
        user is told once per conversation (until the away text changes).
        """
        if not recipient.away or recipient is sender:
            return ""
        told = self.away_told.setdefault(recipient, set())
        if sender.key in told:
            return ""
        if len(told) >= AWAY_TOLD_MAX:  # bounded (chatd.model.away)
            told.clear()
        told.add(sender.key)
        return recipient.away

    # -- several connections (docs/protocol.md, Devices; chatd.model.devices) ----

    def changing(self, run: Callable[[], None]) -> None:
        """Run run, which changes shared state, where that may be done: at once
        here; a cluster node runs it in a turn of its own (chatd.cluster)."""
        run()

    def attach(self, user: User, client: IChatClient) -> None:
        """Add client as another connection of user: nobody else sees anything.

        An always-on user none of whose devices was connected is back.
        """
        was = devices.count(user)
        devices.attach(user, client)
        if not was and user.away == ALWAYS_ON_AWAY:
            self.set_away(user, "")

    def drop_connection(self, user: User, client: IChatClient, reason: str) -> bool:
        """client closed: tell whether user quit (its last connection went).

        One of several connections just goes; the last of an always-on
        user's leaves it in its rooms, marked away; otherwise the user quits
        (everyone sharing a room sees QUIT).
        """
        if self.users.get(user.key) is not user:
            return True
        if user.devices is not None or user in self.always_on:
            if devices.detach(user, client):
                return False
            if user in self.always_on:
                self.set_away(user, ALWAYS_ON_AWAY)
                return False
        self.quit(user, reason)
        return True

    def set_connections(self, user: User, place: str, count: int, reason: str) -> None:
        """user has count connections at place now (a node of a cluster).

        docs/cluster.md, Several devices on a cluster: a user's connections
        may be on several nodes; each node holds its own, and this counts
        them all, in the log's order, so every node decides alike. When none
        is left at any place the user quits with reason (everyone sharing a
        room sees QUIT), or, always-on, stays in its rooms, away; an
        always-on user none of whose devices was connected is back when one
        comes. One process never calls it (drop_connection decides there).
        """
        if self.users.get(user.key) is not user:
            return
        held = devices.devices_of(user)
        if held.places is None:
            held.places = {}
        places = held.places
        was = sum(places.values())
        if count > 0:
            places[place] = count
        else:
            places.pop(place, None)
        if places:
            if not was and user.away == ALWAYS_ON_AWAY:
                self.set_away(user, "")
        elif user in self.always_on:
            if was:
                self.set_away(user, ALWAYS_ON_AWAY)
        else:
            self.quit(user, reason)

    def check_always_on(self, user: User, on: bool, per_address: int) -> bool:
        """Refuse what set_always_on would refuse; tell whether it changes anything."""
        if on and not user.account:
            raise ChatError(
                ErrorCode.NOT_IDENTIFIED,
                "always-on is for identified users; identify first "
                f"({user.client.identify_hint}), or register your nickname if it "
                "has no account yet",
            )
        if on == (user in self.always_on):
            return False
        if on and sum(1 for u in self.always_on if u.host == user.host) >= per_address:
            raise ChatError(
                ErrorCode.TOO_MANY_DEVICES,
                f"your address has {per_address} always-on users, the most it may",
            )
        return True

    def set_always_on(self, user: User, on: bool, per_address: int = 4) -> bool:
        """Keep user in its rooms while no device is connected, or stop.

        Identified users only (ERR not-identified), per_address of them from
        one address at most (the user's host). Off with no device
        connected: the user quits. Tell whether that changed anything.
        """
        if not self.check_always_on(user, on, per_address):
            return False
        if on:
            self.always_on.add(user)
        else:
            self.always_on.discard(user)
        self.always_on_changed(user, on)
        held = user.devices
        # Connected nowhere: here, or (a cluster) at any place the log counts.
        if (
            not on
            and held is not None
            and not (held.clients if held.places is None else held.places)
        ):
            self.quit(user, "always-on ended")
        return True

    def _always_on_moved(self, user: User) -> None:
        """user's rooms or nickname changed: kept again if it is always-on."""
        if user in self.always_on:
            self.always_on_changed(user, True)

    def set_invisible(self, user: User, invisible: bool) -> bool:
        """Make user invisible (IRC's +i) or not; tell whether that changed it.

        Whoever shares no room with an invisible user does not find them by
        a mask (IRC's WHO), and counts of users tell them apart (LUSERS).
        """
        if user.invisible == invisible:
            return False
        user.invisible = invisible
        return True

    # -- rooms ----------------------------------------------------------------

    def join(self, user: User, name: str, key: str | None = None) -> tuple[Room, bool]:
        """Put user in room name (created on first join) and make it current.

        Returns the room and whether user was newly added; everyone in the
        room, the joiner included, sees JOIN only in that case. An existing
        room may refuse: banned, invite-only, key (given as key), full
        (chatd.model.moderation); so may an empty registered room, by its kept
        rules, since the joiner would read its history in the backfill.
        """
        name = normalize_name(name)
        problem = room_problem(name)
        if problem is not None:
            raise ChatError(ErrorCode.ROOM_INVALID, f"{name}: {problem}")
        folded = fold(name)
        room = self.rooms.get(folded)
        if room is not None and user.is_member(room):
            user.current = folded
            return room, False
        if len(user.rooms) >= self.max_rooms_per_user:
            raise ChatError(
                ErrorCode.TOO_MANY_ROOMS,
                f"you are in {len(user.rooms)} rooms, the most one may be in; "
                "/part one of them to join another",
            )
        if room is None:
            if len(self.rooms) >= self.max_rooms:
                raise ChatError(
                    ErrorCode.TOO_MANY_ROOMS,
                    f"the server has {len(self.rooms)} rooms, as many as it holds; "
                    "join one of them (see /rooms) or try again later",
                )
            record = self.records.get(folded)
            if record is not None:
                self._check_kept_room(record, name, user, key)
        else:
            self._check_join(room, user, key)
        new = room is None
        if room is None:
            room = self.rooms[folded] = Room(name)
            insort(self.room_keys, folded)
            self._created(room)
        user.current = folded
        room.members[user.key] = user
        room.local = None
        user.rooms[folded] = room
        deliver_to(room.members.values(), Joined(room.name, user.nick, user.away))
        self._joined(room, user, new)
        if self.always_on:
            self._always_on_moved(user)
        return room, True

    def _check_kept_room(
        self, record: RoomRecord, name: str, user: User, key: str | None
    ) -> None:
        """Refuse the join that would make registered room name again, as if it
        stood with its kept modes, key and bans; its kept operators come in."""
        if user.account and fold(user.account) in record.operators:
            return
        kept = Room(name)
        kept.rules.restore(record)
        self._check_join(kept, user, key)

    def part(self, user: User, name: str | None, reason: str) -> Room:
        """Take user out of room name (default: current); current becomes #lobby."""
        room = (
            self.visible_room(user, name)
            if name is not None
            else self.current_room(user)
        )
        if not user.is_member(room):
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"you are not in {room.name}")
        deliver_to(room.members.values(), Parted(room.name, user.nick, reason))
        self._remove_member(room, user)
        if user.current == room.key:
            user.current = fold(LOBBY)
        if user.devices is not None:
            user.devices.room_left(room.key)
            self._always_on_moved(user)
        return room

    def _remove_member(self, room: Room, user: User, quiet: bool = False) -> None:
        """Drop user from room, and drop the room once empty (#lobby stays).

        Unless quiet (the caller does it after), a room left without an
        operator is given to its longest member (chatd.model.moderation).
        """
        del room.members[user.key]
        room.local = None
        del user.rooms[room.key]
        if not room.members and room.key != fold(LOBBY):
            del self.rooms[room.key]
            del self.room_keys[bisect_left(self.room_keys, room.key)]
            self.secret_rooms.discard(room.key)
        elif not quiet:
            self._left(room, user)

    # -- talking --------------------------------------------------------------

    def speaking_room(self, user: User, name: str | None) -> Room:
        """Return room name (default: the current room) if user may speak there."""
        room = self.current_room(user) if name is None else self.room(name)
        # Membership (+n), bans and +m: chatd.model.moderation.
        self.check_speaker(room, user)
        return room

    def _kept(self, room: Room, kind: Kind, user: User, text: str) -> tuple[int, float]:
        """Keep a room message in the history; return its id and time (0s: none)."""
        if self.history is None:
            return 0, 0.0
        return self.history.record(room.key, kind, user.nick, text, author_of(user))

    def _kept_private(
        self, sender: User, recipient: User, action: bool, text: str
    ) -> tuple[int, float]:
        """Keep a private message if a side is identified; (0, 0.0) if neither.

        Kept under the pair of parties: an identified side's account, never
        its nickname (a nickname can pass to another person, an account
        cannot), so only an identified side ever reads it back; read back as
        sent by the sender's account, or its nickname if not identified.
        """
        if self.history is None or not (sender.account or recipient.account):
            return 0, 0.0
        kind = Kind.ACTION if action else Kind.MESSAGE
        return self.history.record_private(
            party_of(sender),
            party_of(recipient),
            kind,
            sender.account or sender.nick,
            text,
        )

    def say(
        self,
        user: User,
        text: str,
        room: str | None = None,
        notice: bool = False,
        tags: Tags = NO_TAGS,
    ) -> None:
        """Send text to room (default: the current one); every member sees MSG.

        tags: client tags it carries (a reply's), passed on, never kept.
        """
        found = self.speaking_room(user, room)
        if tags:  # most messages carry none: no call
            check_size(tags)
        msg_id, time = self._kept(found, Kind.MESSAGE, user, text)
        event = Message(
            found.name, user.nick, text, notice, id=msg_id, time=time, tags=tags
        )
        deliver_to(found.members.values(), event)

    def act(
        self, user: User, text: str, room: str | None = None, tags: Tags = NO_TAGS
    ) -> None:
        """Send an action to room (default: user's current room)."""
        found = self.speaking_room(user, room)
        if tags:  # most messages carry none: no call
            check_size(tags)
        msg_id, time = self._kept(found, Kind.ACTION, user, text)
        event = Action(found.name, user.nick, text, id=msg_id, time=time, tags=tags)
        deliver_to(found.members.values(), event)

    def tell(
        self,
        user: User,
        nick: str,
        text: str,
        notice: bool = False,
        action: bool = False,
        tags: Tags = NO_TAGS,
    ) -> None:
        """Send a private message; the recipient gets it and the sender an echo.

        Not kept, it has a live id all the same (live_ids), for replies.
        """
        recipient = self.user(nick)
        if tags:  # most messages carry none: no call
            check_size(tags)
        msg_id, time = self._kept_private(user, recipient, action, text)
        if not msg_id:
            time = self.now()
            msg_id = self._live_id(time)
        event = Private(
            user.nick,
            recipient.nick,
            text,
            notice,
            action,
            id=msg_id,
            time=time,
            tags=tags,
        )
        deliver_to([recipient] if recipient is user else [recipient, user], event)

    # -- deleting kept messages (who may: chatd.model.redaction) ---------------

    def delete_message(self, user: User, room: str, msg_id: int, reason: str) -> None:
        """Delete room's kept message msg_id; its members see it go (Deleted).

        chatd.model.redaction decides first whether user may; this only does
        it. room: the room's name (it may be empty of people now).
        """
        found = self.rooms.get(fold(room))
        if self.history is not None:
            self.history.delete(fold(room), msg_id)
        if found is not None:
            event = Deleted(found.name, msg_id, user.nick, reason)
            deliver_to(found.members.values(), event)

    def delete_private_message(
        self, user: User, me: str, other: str, name: str, msg_id: int, reason: str
    ) -> None:
        """Delete message msg_id of the kept conversation of parties me (user's)
        and other, which user named name; both sides see it go, if here."""
        if self.history is not None:
            self.history.delete_private(me, other, msg_id)
        event = Deleted(name, msg_id, user.nick, reason)
        recipients = [user]
        named = self.users.get(fold(name))
        if named is not None and named is not user and party_of(named) == other:
            recipients.append(named)
        deliver_to(recipients, event)

    def _live_id(self, now: float) -> int:
        """A new id for what no history keeps: below zero, unique, by the clock."""
        return -self.live_ids.next(now)

    def send_tags(self, user: User, target: str, tags: Tags) -> None:
        """Send client tags alone (typing, a reaction) to a room or a person.

        Who may speak in a room may send them there; each user may send
        TAG_BURST at once, then TAG_RATE a second (ERR flood past it, and
        nothing is sent). Never kept: a live id names it.
        """
        members, shown, private = self._tag_audience(user, target, tags)
        time = self.now()
        event = Tagged(
            shown, user.nick, tags, private, id=self._live_id(time), time=time
        )
        deliver_to(members, event)

    def _tag_audience(
        self, user: User, target: str, tags: Tags
    ) -> tuple[list[User], str, bool]:
        """Check tags alone from user to target and charge the rate.

        Returns who gets them, the target as shown and whether it is private;
        raises as send_tags says (a cluster node checks with it too).
        """
        if not tags:
            raise ChatError(ErrorCode.BAD_ARGS, "no client tags to send")
        check_size(tags)
        private = not target.startswith("#")
        if private:
            members = [self.user(target)]
            shown = members[0].nick
            if members[0] is not user:
                members.append(user)
        else:
            room = self.speaking_room(user, target)
            members, shown = list(room.members.values()), room.name
        budget = user.tag_budget
        if budget is None:
            budget = user.tag_budget = TokenBucket(TAG_BURST, TAG_RATE, self._seconds)
        if not budget.take():
            raise ChatError(
                ErrorCode.FLOOD,
                f"typing and reactions: at most {TAG_RATE:g} a second "
                f"after {TAG_BURST} at once; that one was dropped",
            )
        return members, shown, private
