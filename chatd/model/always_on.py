"""Always-on users across restarts (docs/protocol.md, Devices: Always-on).

An always-on user stays in its rooms while none of its devices is connected
(Chat.set_always_on, Chat.drop_connection). What the store keeps of it is an
AlwaysOnRecord (chatd.store.interface): its nickname, account, host and
rooms, written whenever they change (Chat.always_on_changed, which Accounts
points at its store) and read back when the server starts (restore): each
comes back with no connection, in its rooms, away, until a device logs in.

Each is brought back through Chat's own operations (register, set_always_on,
set_away, join), so that a cluster replicates it (the node that starts the
cluster restores, in a turn of its own: docs/cluster.md).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from twisted.logger import Logger

from chatd.model.chat import Chat, User
from chatd.model.devices import ALWAYS_ON_AWAY, Devices, rebind
from chatd.model.errors import ChatError
from chatd.model.names import LOBBY, fold
from chatd.store.interface import AlwaysOnRecord

log = Logger()
# How a user restored with no connection is told to identify (never shown:
# only a connection's own hint is quoted, and one that attaches brings its own).
RESTORED_HINT = "/identify <password>"


def record_of(user: User) -> AlwaysOnRecord:
    """What is kept of always-on user: nickname, account, host and rooms."""
    rooms = [room.name for room in user.rooms.values()]
    return AlwaysOnRecord(user.nick, user.account, user.host, rooms)


def restore(chat: Chat, records: Mapping[str, AlwaysOnRecord]) -> list[User]:
    """Bring back the kept always-on users, with no connection, away.

    A nickname someone holds already, or a room that refuses the user now
    (a ban, a key set since), is left out, and said in the log.
    """
    restored: list[User] = []
    for record in records.values():
        devices = Devices.none(RESTORED_HINT)
        try:
            user = chat.register(
                record.nick, devices, host=record.host, account=record.account
            )
        except ChatError as error:
            log.warn(
                "always-on {nick} not restored: {why}", nick=record.nick, why=error
            )
            continue
        user.devices = devices
        rebind(user, devices)
        # Its address's count was checked when it was turned on.
        chat.set_always_on(user, True, per_address=sys.maxsize)
        chat.set_away(user, ALWAYS_ON_AWAY)
        for name in record.rooms:
            try:
                chat.join(user, name)
            except ChatError as error:
                log.warn(
                    "always-on {nick} not back in {room}: {why}",
                    nick=record.nick,
                    room=name,
                    why=error,
                )
        user.current = fold(LOBBY)
        restored.append(user)
    return restored
