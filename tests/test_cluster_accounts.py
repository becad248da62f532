"""Accounts on a cluster: one record in Redis for every node (docs/cluster.md).

Two nodes in one process on the fake log (cluster_fakes), each with its own
RedisAccounts on one real redis-server (redis_server.py): a name registered
on one node is registered on the other, and what one node grants is checked
against the record both see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from cluster_fakes import FakeLog, FakeNode, know_each_other, make_node, pump_all
from helpers import lines
from redis_server import WAIT, RedisServer
from test_redis_history import result
from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.net.connection import Connection
from chatd.store.accounts import AccountRecord
from chatd.store.memory import MemoryHistory
from chatd.store.redis_accounts import RedisAccounts

PASSWORD = "correct-horse"
OPERATORS = ("opadmin",)


@pytest.fixture
def cluster(redis_server: RedisServer) -> Iterator[tuple[FakeNode, FakeNode]]:
    """Nodes a and b on one fake log, their accounts in one real Redis."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    stores = [RedisAccounts.start(reactor, redis_server.url) for _ in "ab"]
    for store in stores:
        result(store.ready())
    a = make_node(log, "a", clock, accounts=stores[0], operators=OPERATORS)
    b = make_node(log, "b", clock, accounts=stores[1], operators=OPERATORS)
    know_each_other(a, b)
    yield a, b
    for store in stores:
        result(store.close())


def settle(a: FakeNode, b: FakeNode, done: Callable[[], bool]) -> None:
    """Pump the log and turn the reactor (Redis's answers) until done()."""
    deadline = time.monotonic() + WAIT
    while True:
        pump_all(a, b)
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("waited too long")
        reactor.iterate(0.005)


def say(
    a: FakeNode, b: FakeNode, proto: Connection, out: StringTransport, line: str
) -> list[str]:
    """Send line, and wait for its answer (an INFO or an ERR); the lines sent."""
    got: list[str] = []

    def answered() -> bool:
        got.extend(lines(out))
        return any(text.startswith(("INFO ", "ERR ")) for text in got)

    proto.dataReceived(line.encode() + b"\r\n")
    settle(a, b, answered)
    pump_all(a, b)
    got.extend(lines(out))
    return got


def join(
    node: FakeNode, other: FakeNode, nick: str
) -> tuple[Connection, StringTransport]:
    """A client on node, welcomed, its first lines read."""
    proto, out = node.connect(nick)
    pump_all(node, other)
    assert any(text.startswith("WELCOME ") for text in lines(out))
    return proto, out


def leave(node: FakeNode, other: FakeNode, proto: Connection) -> None:
    proto.connectionLost(Failure(ConnectionDone()))
    pump_all(node, other)


def registered(a: FakeNode, b: FakeNode, nick: str) -> None:
    """nick registers (PASSWORD) on a, and leaves."""
    proto, out = join(a, b, nick)
    got = say(a, b, proto, out, f"/register {PASSWORD} {PASSWORD}")
    assert any("is registered to you" in text for text in got), got
    leave(a, b, proto)


def test_a_name_registered_on_one_node_is_registered_on_the_other(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """alice registers on node a; someone taking alice on node b cannot
    register it again (ERR already-registered), and is told it is reserved."""
    a, b = cluster
    registered(a, b, "alice")
    settle(a, b, lambda: "alice" in b.factory.accounts.store.accounts)
    mallory, out = b.connect("alice")
    pump_all(a, b)
    assert any("alice is a registered nickname" in text for text in lines(out))
    got = say(a, b, mallory, out, "/register mine-now mine-now")
    assert any(text.startswith("ERR already-registered ") for text in got), got
    assert b.chat.users["alice"].account == ""


def test_registering_on_two_nodes_at_once_has_one_winner(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """Neither node knows the name yet: Redis takes the first (HSETNX)."""
    a, b = cluster
    records = [AccountRecord("bob", "one", 1), AccountRecord("bob", "two", 2)]
    stores = [a.factory.accounts.store, b.factory.accounts.store]
    asked = [s.add_account("bob", r) for s, r in zip(stores, records, strict=True)]
    won = [result(answer) for answer in asked]
    assert sorted(won) == [False, True]
    winner = records[won.index(True)]
    assert result(stores[0].fetch_account("bob")) == winner
    assert result(stores[1].fetch_account("bob")) == winner


def test_an_operator_name_registered_on_one_node_stays_its_owners(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """opadmin (in --operators) is registered on a: on b, registering it is
    refused, so nobody there becomes a server operator and /kill is refused."""
    a, b = cluster
    registered(a, b, "opadmin")
    victim, v_out = join(a, b, "victim")
    mallory, out = join(b, a, "opadmin")
    got = say(a, b, mallory, out, "/register mine-now mine-now")
    assert any(text.startswith("ERR already-registered ") for text in got), got
    got = say(a, b, mallory, out, "/kill victim bye")
    assert any(text.startswith("ERR not-operator ") for text in got), got
    assert not a.chat.is_server_operator(a.chat.users["opadmin"])
    assert "victim" in a.chat.users


def test_unregistering_someone_elses_account_on_another_node_is_refused(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """alice is registered and identified on a; on b, mallory cannot drop her
    account: not identified to it, and a wrong password does not identify."""
    a, b = cluster
    alice, a_out = join(a, b, "alice")
    say(a, b, alice, a_out, f"/register {PASSWORD} {PASSWORD}")
    mallory, out = join(b, a, "mallory")
    got = say(a, b, mallory, out, "/unregister guess-one")
    assert any(text.startswith("ERR not-identified ") for text in got), got
    got = say(a, b, mallory, out, "/identify alice guess-two")
    assert any(text.startswith("ERR auth-failed ") for text in got), got
    assert result(b.factory.accounts.store.fetch_account("alice")) is not None
    assert a.chat.users["alice"].account == b.chat.users["alice"].account == "alice"


def test_identifying_on_another_node_with_the_accounts_password_works(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """alice registers on a and leaves; on b she identifies with her password,
    and both nodes see her identified; a new password set on b is the only
    one that works on a afterwards."""
    a, b = cluster
    registered(a, b, "alice")
    alice, out = join(b, a, "alice")
    got = say(a, b, alice, out, f"/identify {PASSWORD}")
    assert "INFO You are identified as alice." in got, got
    assert a.chat.users["alice"].account == b.chat.users["alice"].account == "alice"
    got = say(a, b, alice, out, "/password brand-new-one brand-new-one")
    assert "INFO alice has its new password." in got, got
    leave(b, a, alice)
    again, a_out = join(a, b, "alice")
    got = say(a, b, again, a_out, f"/identify {PASSWORD}")
    assert any(text.startswith("ERR auth-failed ") for text in got), got
    got = say(a, b, again, a_out, "/identify brand-new-one")
    assert "INFO You are identified as alice." in got, got


def test_an_account_dropped_on_one_node_is_gone_on_the_other(
    cluster: tuple[FakeNode, FakeNode],
) -> None:
    """alice drops her account on a: b no longer holds the name reserved, and
    her old password identifies nobody there."""
    a, b = cluster
    alice, a_out = join(a, b, "alice")
    say(a, b, alice, a_out, f"/register {PASSWORD} {PASSWORD}")
    settle(a, b, lambda: "alice" in b.factory.accounts.store.accounts)
    got = say(a, b, alice, a_out, f"/unregister {PASSWORD}")
    assert any("is gone" in text for text in got), got
    settle(a, b, lambda: "alice" not in b.factory.accounts.store.accounts)
    assert not b.factory.accounts.is_registered("alice")
    assert b.chat.users["alice"].account == ""


def test_a_read_marker_moved_on_one_node_reaches_the_other_and_redis(
    redis_server: RedisServer,
) -> None:
    """alice reads #lobby on node a; her phone, identified to her account on
    node b, gets READ; the marker is in Redis, where a node that starts later
    reads it (docs/cluster.md, Read markers)."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    history = MemoryHistory(clock)  # one history for both, as Redis's would be
    stores = [RedisAccounts.start(reactor, redis_server.url) for _ in "ab"]
    for store in stores:
        result(store.ready())
    a = make_node(log, "a", clock, history, accounts=stores[0])
    b = make_node(log, "b", clock, history, accounts=stores[1])
    know_each_other(a, b)
    later = None
    try:
        registered(a, b, "alice")
        alice, a_out = join(a, b, "alice")
        say(a, b, alice, a_out, f"/identify {PASSWORD}")
        phone, p_out = join(b, a, "phone")
        got = say(a, b, phone, p_out, f"/identify alice {PASSWORD}")
        assert "INFO You are identified as alice." in got, got
        alice.dataReceived(b"read this\r\n")
        pump_all(a, b)
        said = history.rooms["#lobby"][-1]
        alice.dataReceived(f"/read #lobby {said.id}\r\n".encode())
        moved = f"READ #lobby {said.id}"
        seen: list[str] = []

        def phone_told() -> bool:
            seen.extend(lines(p_out))
            return moved in seen

        settle(a, b, phone_told)
        assert moved in lines(a_out)  # the node that moved it told alice too
        later = RedisAccounts.start(reactor, redis_server.url)
        result(later.ready())
        settle(a, b, lambda: "alice" in later.markers)
        assert later.markers["alice"]["#lobby"].id == said.id
    finally:
        for store in [*stores, *([later] if later is not None else [])]:
            result(store.close())
