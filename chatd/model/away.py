"""Who is away where: what a joiner, an attaching device or /who is told.

docs/protocol.md, Away on join: AWAY lines go out when someone's away state
changes (Chat.set_away), so a connection that arrives later would not know
who already is away. The model answers who that is; each door spells it
(the line door's AWAY lines; IRC's own words: WHO's G, 301 and away-notify).
"""

from __future__ import annotations

from collections.abc import Iterable

from chatd.model.state import Room, User


def away_members(rooms: Iterable[Room], me: User | None = None) -> list[User]:
    """The members of rooms who are away, but me: once each, room by room
    in the order given, each room's in the order they joined."""
    seen: dict[str, User] = {}
    for room in rooms:
        for key, member in room.members.items():
            if member.away and member is not me:
                seen.setdefault(key, member)
    return list(seen.values())
