"""Random runs of three nodes on the fake log: replicas agree, orders agree.

Each run (a fixed seed: deterministic) opens clients on three nodes, has them
join, part, talk, rename, set topics and modes, kick and disconnect at random,
while each node reads a random part of the log now and then, so that turns,
fx and stalls interleave every way. At the end every node reads everything,
and then:

- every replica is the same (users, rooms, members in order, rules), as a
  snapshot dumps them;
- any two clients agree on the order of the room messages both saw.
"""

from __future__ import annotations

import random

import pytest
from cluster_fakes import FakeLog, FakeNode, know_each_other, make_node, pump_all
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.cluster import snapshot
from chatd.net.connection import Connection

ROOMS = ["#a", "#b", "#c"]


def one_run(seed: int, steps: int = 120) -> None:
    rng = random.Random(seed)
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    nodes = [make_node(log, name, clock) for name in "abc"]
    know_each_other(*nodes)
    clients: list[tuple[FakeNode, Connection, StringTransport]] = []
    seen: dict[int, list[str]] = {}
    said = 0
    for number in range(6):
        node = nodes[number % 3]
        proto, out = node.connect(f"u{number}")
        clients.append((node, proto, out))
    for _ in range(steps):
        clock.advance(rng.random() / 100)
        node, proto, out = rng.choice(clients)
        roll = rng.random()
        room = rng.choice(ROOMS)
        if roll < 0.35:
            said += 1
            proto.dataReceived(f"m{said}\r\n".encode())
        elif roll < 0.5:
            proto.dataReceived(f"/join {room}\r\n".encode())
        elif roll < 0.58:
            proto.dataReceived(f"/part {room}\r\n".encode())
        elif roll < 0.64:
            proto.dataReceived(f"/nick n{rng.randrange(8)}\r\n".encode())
        elif roll < 0.69:
            proto.dataReceived(f"/topic {room} t{rng.randrange(9)}\r\n".encode())
        elif roll < 0.74:
            flag = rng.choice("mntis")
            sign = rng.choice("+-")
            proto.dataReceived(f"/mode {room} {sign}{flag}\r\n".encode())
        elif roll < 0.78:
            target = rng.choice(clients)[1]
            nick = target.user.nick if target.user is not None else "nobody"
            proto.dataReceived(f"/kick {room} {nick}\r\n".encode())
        elif roll < 0.81:
            target = rng.choice(clients)[1]
            nick = target.user.nick if target.user is not None else "nobody"
            proto.dataReceived(f"/voice {room} {nick}\r\n".encode())
        elif roll < 0.84:
            proto.connectionLost(Failure(ConnectionDone()))
            index = next(i for i, c in enumerate(clients) if c[1] is proto)
            fresh, fresh_out = node.connect(f"r{index}x{rng.randrange(99)}")
            clients[index] = (node, fresh, fresh_out)
        # Each node reads a random part of what is there.
        for reader in nodes:
            if rng.random() < 0.5:
                reader.pump(rng.randrange(4))
        for _, _, out in clients:
            record(seen, id(out), out)
    pump_all(*nodes, rounds=50)
    for _, _, out in clients:
        record(seen, id(out), out)
    names = [node.name for node in nodes]
    dumps = [snapshot.dump(node.chat, names) for node in nodes]
    assert dumps[0] == dumps[1] == dumps[2], f"seed {seed}: replicas differ"
    assert all(not node.node.stalled for node in nodes)
    orders = list(seen.values())
    for first in orders:
        place = {text: at for at, text in enumerate(first)}
        for second in orders:
            common = [text for text in second if text in place]
            assert [place[text] for text in common] == sorted(
                place[text] for text in common
            ), f"seed {seed}: two clients saw messages in different orders"


def record(seen: dict[int, list[str]], key: int, out: StringTransport) -> None:
    """Keep the room messages a client was sent (m<n> texts), in order."""
    data = out.value().decode()
    out.clear()
    kept = seen.setdefault(key, [])
    for line in data.split("\r\n"):
        parts = line.split(" ")
        if parts[0] == "MSG" and len(parts) == 4 and parts[3].startswith("m"):
            kept.append(parts[3])


@pytest.mark.parametrize("seed", range(25))
def test_random_runs_keep_replicas_and_orders_the_same(seed: int) -> None:
    """Three nodes, random commands and reads: one state, one order."""
    one_run(seed)
