"""Devices: the connections of one user on several at once (docs/protocol.md, Devices).

A user whose account is logged in from a second connection gets a Devices as
its client: a fan-out that hands each event to every attached connection, in
the same order. User.deliver, what a broadcast calls for every member, is
rebound whenever the count changes: the fan-out's deliver while two or more
are attached, the one connection's own deliver while one is, and nothing
while none is (an always-on user). So a user on one device costs a broadcast
nothing more, and the usual user, who never attached a second, has no Devices.

Each connection keeps its own current room (the room its plain lines go to):
the line door brings a connection's in before its line (take_current) and
keeps it after (keep_current); User.current is the one a command acts on.

Once a user had a Devices it keeps it as its client (with the first
connection's cluster uid, chatd.cluster.replica.uid_of), so that the user's
identity stays one while connections come and go.
"""

from __future__ import annotations

from zope.interface import implementer

from chatd.model.events import Event, IChatClient
from chatd.model.names import LOBBY, fold
from chatd.model.state import Room, User

# What others see of an always-on user while none of its devices is
# connected (docs/protocol.md, Always-on: text chosen by the server).
ALWAYS_ON_AWAY = "not connected (always-on: messages are kept)"
_LOBBY = fold(LOBBY)


def _nowhere(event: Event) -> None:
    """The deliver of a user with no connection: what it misses is kept."""


@implementer(IChatClient)
class Devices:
    """The connections of one user: each event goes to every one, in order."""

    __slots__ = ("clients", "currents", "uid", "identify_hint")

    def __init__(self, first: IChatClient, current: str) -> None:
        self.clients: list[IChatClient] = [first]
        # Each connection's current room (a room key), by connection.
        self.currents: dict[IChatClient, str] = {first: current}
        # The first connection's cluster uid (chatd.cluster.replica.uid_of):
        # the user's, whichever connections it has now.
        self.uid: str = getattr(first, "uid", "")
        self.identify_hint: str = first.identify_hint

    @classmethod
    def none(cls, identify_hint: str) -> Devices:
        """The connections of a user restored with none (chatd.model.always_on)."""
        devices = cls.__new__(cls)
        devices.clients, devices.currents = [], {}
        devices.uid, devices.identify_hint = "", identify_hint
        return devices

    def deliver(self, event: Event) -> None:
        """Hand event to every attached connection, in the order they came."""
        for client in self.clients:
            client.deliver(event)

    def close(self, reason: str) -> None:
        """Close every connection (a /kill): each leaves as it closes."""
        for client in list(self.clients):
            client.close(reason)

    def room_left(self, key: str) -> None:
        """The user left room key: connections whose current room it was fall
        back to #lobby, as the one that parted does (docs/protocol.md, /part)."""
        currents = self.currents
        for client, current in currents.items():
            if current == key:
                currents[client] = _LOBBY


def count(user: User) -> int:
    """How many connections user has now."""
    devices = user.devices
    return len(devices.clients) if devices is not None else 1


def rebind(user: User, devices: Devices) -> None:
    """Point the broadcast path at what user's connections are now."""
    clients = devices.clients
    if len(clients) == 1:
        user.deliver = clients[0].deliver  # one device: its own, as before
    elif clients:
        user.deliver = devices.deliver
    else:
        user.deliver = _nowhere


def devices_of(user: User) -> Devices:
    """user's Devices, made (with its one connection) on first need."""
    devices = user.devices
    if devices is None:
        devices = user.devices = Devices(user.client, user.current)
        user.client = devices
    return devices


def attach(user: User, client: IChatClient) -> None:
    """Add client to user's connections; its current room is #lobby if the
    user is in it, else the user's current one."""
    devices = devices_of(user)
    devices.clients.append(client)
    devices.currents[client] = _LOBBY if _LOBBY in user.rooms else user.current
    rebind(user, devices)


def detach(user: User, client: IChatClient) -> int:
    """Take client out of user's connections; return how many are left.

    A user on one connection that never had a second gets a Devices here
    (with none left): only an always-on user is detached from its last.
    """
    devices = devices_of(user)
    if client in devices.currents:
        del devices.currents[client]
        devices.clients.remove(client)
        rebind(user, devices)
    return len(devices.clients)


def take_current(user: User, client: IChatClient) -> None:
    """Before client's line: user's current room is client's own."""
    devices = user.devices
    if devices is not None:
        current = devices.currents.get(client)
        if current is not None:
            user.current = current


def keep_current(user: User, client: IChatClient) -> None:
    """After client's line: client keeps the current room the line left."""
    devices = user.devices
    if devices is not None and client in devices.currents:
        devices.currents[client] = user.current


def rooms_in_order(user: User) -> list[Room]:
    """user's rooms as an attached connection is told of them: #lobby first
    (if the user is in it), then in the order joined (docs/protocol.md, Devices)."""
    rooms = list(user.rooms.values())
    lobby = user.rooms.get(_LOBBY)
    if lobby is not None:
        rooms.remove(lobby)
        rooms.insert(0, lobby)
    return rooms


def carry_devices(old: User, new: User) -> None:
    """new stands for old (a cluster node registered it again): old's
    connections are new's (the node tells each connection its user)."""
    devices = old.devices
    if devices is not None:
        new.devices, new.client = devices, devices
        rebind(new, devices)
