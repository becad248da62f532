"""Rooms people run: topics, operators, voice, bans, invitations and room modes.

The rules of who may do what to whom, for every door. Chat (chatd.model.chat)
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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import (
    Event,
    Invited,
    Kicked,
    ModesChanged,
    TopicChanged,
)
from chatd.model.names import LOBBY, clean_text, fold
from chatd.model.room_rules import (
    BAN_MODE,
    DEFAULT_FLAGS,
    FLAG_MODES,
    INVITE_SECONDS,
    KEY_MODE,
    KICK_REASON_LENGTH,
    LIMIT_MODE,
    MAX_BAN_BYTES,
    MAX_BANS,
    MAX_INVITES,
    MAX_KEY,
    MAX_LIMIT,
    MEMBER_MODES,
    OP_MODE,
    TOPIC_LENGTH,
    Change,
    RoomRecord,
    ban_key,
    ban_problem,
    limit_value,
    valid_key,
)
from chatd.model.state import NO_INVITATIONS, Ban, Room, User
from chatd.store.interface import Marker

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
    markers: dict[str, dict[str, Marker]]

    if TYPE_CHECKING:

        def room(self, name: str) -> Room: ...

        def visible_room(self, user: User | None, name: str) -> Room: ...

        def user(self, nick: str) -> User: ...

        def current_room(self, user: User) -> Room: ...

        def neighbours(self, user: User) -> list[User]: ...

        def _remove_member(
            self, room: Room, user: User, quiet: bool = False
        ) -> None: ...

        def _always_on_moved(self, user: User) -> None: ...

        def quit(self, user: User, reason: str) -> None: ...

    # -- who is what ------------------------------------------------------------

    def is_server_operator(self, user: User) -> bool:
        """Tell whether user is identified to an account of --operators."""
        return bool(user.account) and fold(user.account) in self.server_operators

    def check_server_operator(self, user: User, doing: str) -> None:
        """Refuse (NOT_OPERATOR) a command of server operators to anyone else.

        doing: what only they do, in words ("reload the configuration").
        """
        if not self.is_server_operator(user):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                f"you are not a server operator; only they {doing}",
            )

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
        # A secret room of others is none (chatd.model.permissions).
        if name is None:
            return self.current_room(user)
        return self.visible_room(user, name)

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
        if rules.has("i") and not self.is_invited(room, user):
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
        if user in rules.invited:
            kept = {other: t for other, t in rules.invited.items() if other is not user}
            rules.invited = kept or NO_INVITATIONS
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

    def check_speaker(self, room: Room, user: User) -> None:
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
            elif letter == OP_MODE and not done.on:
                # The one who lost the status (themselves stepping down, or
                # de-opped by a server operator) is not handed it back.
                stepped_down = room.members.get(fold(done.arg))
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
            value = limit_value(arg)
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
                ban = Ban(arg, user.nick, self.now())
                if len(bans) >= MAX_BANS:
                    raise ChatError(
                        ErrorCode.BAN_LIST_FULL,
                        f"{room.name} has {MAX_BANS} bans, the most it may have",
                        room=room.name,
                        mode=letter,
                        arg=arg,
                    )
                if sum(old.size for old in bans) + ban.size > MAX_BAN_BYTES:
                    raise ChatError(
                        ErrorCode.BAN_LIST_FULL,
                        f"{room.name} has bans of {MAX_BAN_BYTES} bytes together, "
                        "the most it may have; lift one, or ban with a shorter mask",
                        room=room.name,
                        mode=letter,
                        arg=arg,
                    )
                bans.append(ban)
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
        if target.devices is not None:  # several connections (chatd.model.devices)
            target.devices.room_left(room.key)
            self._always_on_moved(target)
        return room

    def invite(self, user: User, nick: str, name: str) -> tuple[Room, User]:
        """Invite nick to room: they may then join it once, invite-only or not.

        Only the invitee is told (Invited); the door answers the inviter.
        """
        target = self.user(nick)
        room = self.visible_room(user, name)
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
        self._add_invitation(room, target)
        target.deliver(Invited(room.name, target.nick, user.nick))
        return room, target

    def is_invited(self, room: Room, user: User) -> bool:
        """Tell whether user, whatever their nickname now, holds a live invitation."""
        until = room.rules.invited.get(user)
        return until is not None and until > self.now()

    def _add_invitation(self, room: Room, target: User) -> None:
        """Give target an invitation to room for INVITE_SECONDS.

        Expired invitations and those of users gone are dropped, and past
        MAX_INVITES the oldest: a room's invitations stay few and recent.
        """
        now, users = self.now(), self.users
        kept = {
            other: until
            for other, until in room.rules.invited.items()
            if until > now and other is not target and users.get(other.key) is other
        }
        for other in list(kept)[: max(0, len(kept) - MAX_INVITES + 1)]:
            del kept[other]  # the oldest first: dicts keep insertion order
        kept[target] = now + INVITE_SECONDS
        room.rules.invited = kept

    def kill(self, user: User, nick: str, reason: str) -> User:
        """Disconnect nick (server operators only); the others see them quit."""
        if not self.is_server_operator(user):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                "you are not a server operator; only they disconnect people",
            )
        target = self.user(nick)
        reason = clean_text(reason).strip()[:KICK_REASON_LENGTH] or "no reason given"
        said = f"Killed by {user.nick}: {reason}"
        target.client.close(said)
        if target.devices is not None and self.users.get(target.key) is target:
            self.quit(target, said)  # always-on: its last connection left it in
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
        keep their status for as long as they stay). Its read markers go.
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
        # Its read markers go too (the store forgets them: Accounts.unregister);
        # on a cluster every node's copy of them.
        self.markers.pop(key, None)

    def _status_by_account(self, user: User) -> None:
        """user just identified: op them where a registered room lists the account."""
        if not user.account:
            return
        account = fold(user.account)
        for room in list(user.rooms.values()):
            record = room.rules.record
            if record is not None and account in record.operators:
                self._give(room, user, self.server_name)
