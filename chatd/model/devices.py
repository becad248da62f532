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

On a cluster a user's connections may be on several nodes (places): each
node's Devices holds that node's own connections as clients, and places
counts them all, by node, as the cluster's log has them (Chat.set_connections,
replicated); count() adds the other places' to this one's. In one process
places stays None and costs nothing.
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

    __slots__ = (
        "clients",
        "currents",
        "uid",
        "identify_hint",
        "places",
        "here",
        "elsewhere",
    )

    def __init__(self, first: IChatClient, current: str) -> None:
        self.clients: list[IChatClient] = [first]
        # Each connection's current room (a room key), by connection.
        self.currents: dict[IChatClient, str] = {first: current}
        # The first connection's cluster uid (chatd.cluster.replica.uid_of):
        # the user's, whichever connections it has now.
        self.uid: str = getattr(first, "uid", "")
        self.identify_hint: str = first.identify_hint
        self._no_places()

    def _no_places(self) -> None:
        # Where the user's connections are (a cluster's nodes) and how many
        # at each, as the log counts them; None: never counted (one process).
        self.places: dict[str, int] | None = None
        self.here = ""  # this node's place ("" in one process)
        # Closes the user's connections at the other places (a cluster's).
        self.elsewhere: IChatClient | None = None

    @classmethod
    def none(cls, identify_hint: str) -> Devices:
        """The connections of a user restored with none (chatd.model.always_on)."""
        devices = cls.__new__(cls)
        devices.clients, devices.currents = [], {}
        devices.uid, devices.identify_hint = "", identify_hint
        devices._no_places()
        return devices

    def deliver(self, event: Event) -> None:
        """Hand event to every attached connection, in the order they came."""
        for client in self.clients:
            client.deliver(event)

    def close(self, reason: str) -> None:
        """Close every connection (a /kill): each leaves as it closes."""
        for client in list(self.clients):
            client.close(reason)
        if self.elsewhere is not None:
            self.elsewhere.close(reason)

    def room_left(self, key: str) -> None:
        """The user left room key: connections whose current room it was fall
        back to #lobby, as the one that parted does (docs/protocol.md, /part)."""
        currents = self.currents
        for client, current in currents.items():
            if current == key:
                currents[client] = _LOBBY


def count(user: User) -> int:
    """How many connections user has now: here, and at the other places."""
    devices = user.devices
    if devices is None:
        return 1
    places, here = devices.places, devices.here
    elsewhere = sum(n for at, n in places.items() if at != here) if places else 0
    return len(devices.clients) + elsewhere


def counted(user: User) -> int:
    """How many connections the log counts user as having at every place."""
    devices = user.devices
    places = devices.places if devices is not None else None
    return sum(places.values()) if places else 0


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
    """user's Devices, made (with its one connection) on first need.

    A user whose client is remote (its connection is on another node of a
    cluster) gets one with no connection here, and that client's uid.
    """
    devices = user.devices
    if devices is None:
        client = user.client
        if getattr(client, "remote", False):
            devices = Devices.none(client.identify_hint)
            devices.uid = getattr(client, "uid", "")
            user.devices = devices
            user.client = devices
            rebind(user, devices)
            return devices
        devices = user.devices = Devices(client, user.current)
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
