"""Read markers: how far an account has read each room and private conversation.

docs/protocol.md, Read markers and catch-up: a marker is the account's, not a
connection's nor a nickname's: every message of a target up to and including
its id has been read on some device. It only moves forward, and every user
identified to the account sees it move (READ on the line door, MARKREAD on
IRC). The markers live with the accounts (chatd.store.interface.AccountStore:
SQLite, memory, or Redis for a cluster); Chat holds the store's dict and
writes through marker_changed. At most MAX_READ_MARKERS targets an account:
past it, the marker read longest ago (the smallest id) goes.

What a /read may name (and whether the id is the target's) is checked before,
on the reader's node (chatd.model.catch_up.check_read); mark_read is the
change every node of a cluster applies.
"""

from __future__ import annotations

from collections.abc import Callable

from chatd.config import MAX_READ_MARKERS
from chatd.model.events import Event, ReadMoved
from chatd.model.names import fold
from chatd.model.state import User
from chatd.store.interface import Marker, keep_marker

MarkerWriter = Callable[[str, str, Marker | None], None]


def keep_in_memory(markers: dict[str, dict[str, Marker]]) -> MarkerWriter:
    """Chat's marker_changed without a store: kept in markers only."""

    def changed(account: str, target: str, marker: Marker | None) -> None:
        keep_marker(markers, account, target, marker)

    return changed


class ReadMarking:
    """The read-marker part of Chat; the attributes below are Chat's."""

    users: dict[str, User]
    # folded account -> target key -> Marker: the account store's dict.
    markers: dict[str, dict[str, Marker]]
    # Keeps a marker (None: forgets it), forward only: the store's save_marker.
    marker_changed: MarkerWriter
    max_markers: int = MAX_READ_MARKERS

    def marker(self, account: str, target: str) -> Marker | None:
        """account's marker (folded) for target (a key), if it has one."""
        kept = self.markers.get(account)
        return None if kept is None else kept.get(target)

    def account_users(self, account: str) -> list[User]:
        """The users identified to account (folded) now."""
        return [
            user
            for user in self.users.values()
            if user.account and fold(user.account) == account
        ]

    def marker_of(self, user: User, target: str) -> Marker | None:
        """user's marker for target: its account's, or (not identified) its own."""
        if user.account:
            return self.marker(fold(user.account), target)
        kept = user.session_markers
        return None if kept is None else kept.get(target)

    def mark_read(
        self, user: User, target: str, name: str, msg_id: int, time: int
    ) -> None:
        """Move the marker of user's account for target to msg_id, forward only.

        target: a room's key or the other party of a private conversation;
        name: how it is shown; msg_id: a message's id, or a position between
        ids (IRC sets a marker by time: chatd.model.catch_up.position_at);
        time: the message's, or that time (ms). An id at or before the marker
        changes nothing; otherwise every user identified to the account gets
        ReadMoved. A user not identified keeps markers for its connection's
        life only (IRC's MARKREAD; the line door refuses it), and only it
        hears of them.
        """
        old = self.marker_of(user, target)
        if old is not None and old.id >= msg_id:
            return
        marker = Marker(msg_id, time, name)
        event: Event = ReadMoved(name, msg_id, time)
        if not user.account:
            own: dict[str, Marker] = user.session_markers or {}
            user.session_markers = own
            own[target] = marker
            if len(own) > self.max_markers:
                del own[min(own, key=lambda key: own[key].id)]
            user.deliver(event)
            return
        account = fold(user.account)
        self.marker_changed(account, target, marker)
        kept = self.markers.get(account, {})
        if len(kept) > self.max_markers:
            oldest = min(kept, key=lambda key: kept[key].id)
            self.marker_changed(account, oldest, None)
        for each in self.account_users(account):
            each.deliver(event)
