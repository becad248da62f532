"""A cluster in one process for the tests: a list for the log, nodes pumped by hand.

FakeLog gives entries stream-like ids ("<ms>-<seq>") from a fake clock and
hands them to every node only when the test says (pump), so each test
decides exactly what each node has read, with no Redis and no waiting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from helpers import CHEAP
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.cluster.entries import Entry
from chatd.cluster.node import Node
from chatd.cluster.replica import ClusterChat, Wire
from chatd.cluster.service import cluster_node
from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.protocol import IrcConnection
from chatd.model.accounts import Runner, run_inline
from chatd.net.connection import Connection
from chatd.protocol import LineConnection
from chatd.store.interface import AccountStore, IHistory


@dataclass
class FakeLog:
    """The shared log: every entry ever appended, in order."""

    clock: Clock
    entries: list[tuple[str, dict[str, Wire]]] = field(default_factory=list)
    _last: tuple[int, int] = (0, 0)

    def append(self, entry: Entry | dict[str, Wire]) -> str:
        """Append entry (typed, as a node sends it; or JSON, replayed); its id."""
        data = entry if isinstance(entry, dict) else entry.to_json()
        ms = int(self.clock.seconds() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, last_seq + 1) if ms <= last_ms else (ms, 0)
        entry_id = f"{self._last[0]}-{self._last[1]}"
        # Through JSON, as over Redis: nothing is shared but the text.
        self.entries.append((entry_id, json.loads(json.dumps(data))))
        return entry_id


@dataclass
class FakeNode:
    """One node: its factory (doors, replica) and how far it has read."""

    name: str
    log: FakeLog
    factory: ChatFactory
    node: Node
    read: int = 0

    @property
    def chat(self) -> ClusterChat:
        return self.node.chat

    def pump(self, count: int | None = None) -> None:
        """Read count more entries (all there are, by default)."""
        end = len(self.log.entries) if count is None else self.read + count
        batch = self.log.entries[self.read : end]
        self.read += len(batch)
        if batch:
            self.node.receive(batch)

    def connect(
        self, nick: str | None = None, irc: bool = False
    ) -> tuple[Connection, StringTransport]:
        """Open a connection (and send nick, unpumped)."""
        door = IrcConnection if irc else LineConnection
        port = next(_ports)
        address = IPv4Address(
            "TCP", f"127.0.{port // 250 % 250}.{port % 250 + 1}", port
        )
        proto = self.factory.build(door, address)
        assert isinstance(proto, Connection)
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        if nick is not None:
            proto.dataReceived(nick.encode() + b"\r\n")
        return proto, transport


_ports = iter(range(42000, 60000))


def make_node(
    log: FakeLog,
    name: str,
    clock: Clock,
    history: IHistory | None = None,
    accounts: AccountStore | None = None,
    operators: tuple[str, ...] = (),
    hashing: Runner[object] = run_inline,
    max_devices: int = 10,
) -> FakeNode:
    """A node on the fake log, up, with line and IRC doors.

    hashing: where passwords are hashed (the daemon: a thread, so the answer
    comes outside the line's turn); the default, at once.
    """
    factory = ChatFactory(
        ServerConfig(accounts=CHEAP, operators=operators, max_devices=max_devices),
        clock,
        history,
        accounts,
        hashing,
        chat_type=ClusterChat,
    )
    chat = factory.chat
    assert isinstance(chat, ClusterChat)
    node = cluster_node(factory, name)
    node.send = log.append
    chat.up = True
    return FakeNode(name, log, factory, node)


def know_each_other(*nodes: FakeNode) -> None:
    """Each node knows the others (as hello entries or a snapshot would tell it)."""
    for node in nodes:
        for other in nodes:
            if other is not node:
                node.node.nodes[other.name] = None


def fresh_log(clock: Clock, *nodes: FakeNode) -> FakeLog:
    """Redis came back empty: every node reads and appends a new, empty log."""
    fresh = FakeLog(clock)
    for node in nodes:
        node.log, node.read = fresh, 0
        node.node.send = fresh.append
    return fresh


def pump_all(*nodes: FakeNode, rounds: int = 10) -> None:
    """Let every node read everything, again while anything new was appended."""
    for _ in range(rounds):
        before = len(nodes[0].log.entries)
        for node in nodes:
            node.pump()
        if len(nodes[0].log.entries) == before and all(
            node.read == before for node in nodes
        ):
            return
