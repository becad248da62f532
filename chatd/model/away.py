"""Who is away where: what a joiner, an attaching device or /who is told.

docs/protocol.md, Away on join: AWAY lines go out when someone's away state
changes (Chat.set_away), so a connection that arrives later would not know
who already is away. The model answers who that is; each door spells it
(the line door's AWAY lines; IRC's own words: WHO's G, 301 and away-notify).
"""

from __future__ import annotations

from collections.abc import Iterable

from chatd.model.state import Room, User

# The most senders an away user's "told once" keeps (Chat.away_reply): an
# always-on user may be away for weeks, and every new nickname that writes to
# it would otherwise be remembered until it comes back. Past it the record
# starts again: a sender may be told twice, and memory stays bounded.
AWAY_TOLD_MAX = 512


def away_members(rooms: Iterable[Room], me: User | None = None) -> list[User]:
    """The members of rooms who are away, but me: once each, room by room
    in the order given, each room's in the order they joined."""
    seen: dict[str, User] = {}
    for room in rooms:
        for key, member in room.members.items():
            if member.away and member is not me:
                seen.setdefault(key, member)
    return list(seen.values())
