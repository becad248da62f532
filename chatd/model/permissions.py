"""Who may see a room and read its history: the one rule every door asks.

Chat (chatd.model.chat) takes it in as a mixin, like chatd.model.moderation. The doors
never look at a room's modes or members to decide what to show: they ask
may_see, visible_room, hidden_rooms or may_read, and render the answer (or
the ChatError) in their own words. docs/security.md, "What every door and
node enforces", has the rule as a table, and tests/test_permissions.py walks
the line, IRC and web doors through that same table.

The rule, in a few lines:

- A secret room (+s) is seen only by its members and server operators. To
  everyone else it is answered exactly as a room that does not exist: no
  such room for /who, /topic, /mode, /bans and the commands that run a room,
  nothing to read for /history, and it is left out of /rooms, LIST, NAMES,
  WHO, WHOIS and the MOTD. (Joining and speaking to it by name are refused
  or allowed by its modes as for any room, as on IRC.)
- A room's history is read by its members and server operators; by anyone
  else only when the room exists, is public (not +s, +i or +k) and no ban of
  it matches them. A room that does not exist (its last member left) has no
  modes, members or bans to ask, so it has nothing to read until it is made
  again (as a room that never had history): its history comes back to
  whoever then joins (the backfill). A secret room of others reads the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold, normalize_name, room_problem
from chatd.model.state import Room, User

# The modes that keep a room's history to its members.
MEMBERS_ONLY_MODES = frozenset("sik")


class Permissions:
    """The half of Chat that answers what a user may see and read.

    Chat inherits it; the attributes below are Chat's.
    """

    rooms: dict[str, Room]
    secret_rooms: set[str]

    if TYPE_CHECKING:

        def is_server_operator(self, user: User) -> bool: ...

    def may_see(self, user: User | None, room: Room) -> bool:
        """Tell whether user (None: not registered yet) may know room exists."""
        if not room.rules.has("s"):
            return True
        if user is None:
            return False
        return user.is_member(room) or self.is_server_operator(user)

    def hidden_rooms(self, user: User | None) -> set[str]:
        """The keys of the rooms user may not see (listings leave them out)."""
        secret = self.secret_rooms
        if not secret:
            return set()
        if user is not None and self.is_server_operator(user):
            return set()
        mine = user.rooms if user is not None else {}
        return {key for key in secret if key not in mine}

    def visible_rooms(self, user: User | None) -> list[Room]:
        """The rooms user may see, in no particular order."""
        hidden = self.hidden_rooms(user)
        return [room for key, room in self.rooms.items() if key not in hidden]

    def visible_room(self, user: User | None, name: str) -> Room:
        """Return room name as user may see it: a secret room of others is none.

        ChatError(ROOM_INVALID) for a name that cannot be a room,
        ChatError(NO_SUCH_ROOM) for a room that does not exist or that
        user may not see, in the same words.
        """
        name = _checked_room_name(name)
        found = self.rooms.get(fold(name))
        if found is None or not self.may_see(user, found):
            raise ChatError(
                ErrorCode.NO_SUCH_ROOM, f"there is no room {name}", room=name
            )
        return found

    def may_read(self, user: User, name: str) -> Room | None:
        """Return room name if user may read its history; None if it has none.

        Members and server operators read; others read a public room (not
        +s, +i or +k) whose bans do not match them (ChatError otherwise).
        None: the room does not exist, or user may not see it; the door
        answers as for a room that never had history, in the same words.
        """
        room = self.rooms.get(fold(_checked_room_name(name)))
        if room is None or not self.may_see(user, room):
            return None
        if user.is_member(room) or self.is_server_operator(user):
            return room
        rules = room.rules
        ban = rules.banned(user)
        if ban is not None:
            raise ChatError(
                ErrorCode.BANNED,
                f"you are banned from {room.name} ({ban.mask}) and cannot read "
                "its history",
                room=room.name,
            )
        if rules.key or any(rules.has(letter) for letter in MEMBERS_ONLY_MODES):
            raise ChatError(
                ErrorCode.NOT_IN_ROOM,
                f"you are not in {room.name}: the history of a room that is "
                "invite-only or has a key is for its members",
                room=room.name,
            )
        return room


def _checked_room_name(name: str) -> str:
    """name as rooms are spelled, or ChatError(ROOM_INVALID) if it cannot be one."""
    name = normalize_name(name)
    problem = room_problem(name)
    if problem is not None:
        raise ChatError(ErrorCode.ROOM_INVALID, f"{name}: {problem}")
    return name
