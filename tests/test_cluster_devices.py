"""One user's connections on two nodes of a cluster (docs/cluster.md, Several
devices on a cluster): two nodes in one process on the fake log (cluster_fakes),
one account store for both (as Redis is one for every node).

alice's laptop is on node a, her phone logs in on node b: one user on both
replicas, every connection gets what she gets, she quits only when her last
connection on any node goes, and a lost node takes only its own connections.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from cluster_fakes import (
    FakeLog,
    FakeNode,
    fresh_log,
    know_each_other,
    make_node,
    pump_all,
)
from helpers import lines
from redis_server import RedisServer
from test_redis_history import result
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.cluster import snapshot
from chatd.cluster.entries import Lost
from chatd.cluster.replica import RemoteClient, uid_of
from chatd.model.always_on import restore
from chatd.model.devices import ALWAYS_ON_AWAY
from chatd.net.connection import Connection
from chatd.store.accounts import MemoryAccounts
from chatd.store.interface import AlwaysOnRecord
from chatd.store.memory import MemoryHistory
from chatd.store.redis_accounts import RedisAccounts

PASSWORD = "long-enough"
Conn = tuple[Connection, StringTransport]


def two_nodes(
    hashing: Callable[[Callable[[], object]], Deferred[object]] | None = None,
    max_devices: int = 10,
) -> tuple[Clock, FakeNode, FakeNode]:
    """Nodes a and b, one account store and one history for both."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    store = MemoryAccounts()
    history = MemoryHistory(clock)
    extra: dict[str, object] = {"max_devices": max_devices}
    if hashing is not None:
        extra["hashing"] = hashing
    a = make_node(log, "a", clock, history, store, **extra)  # type: ignore[arg-type]
    b = make_node(log, "b", clock, history, store, **extra)  # type: ignore[arg-type]
    know_each_other(a, b)
    return clock, a, b


def on(node: FakeNode, other: FakeNode, nick: str) -> Conn:
    """A client registered as nick on node, its first lines read."""
    proto, out = node.connect(nick)
    pump_all(node, other)
    lines(out)
    return proto, out


def laptop_and_phone(a: FakeNode, b: FakeNode, *others: Conn) -> tuple[Conn, Conn]:
    """alice registers her account on a (the laptop) and logs in on b (the
    phone); what others were sent before the phone logs in is read."""
    laptop = on(a, b, "alice")
    send(laptop, f"/register {PASSWORD} {PASSWORD}")
    pump_all(a, b)
    lines(laptop[1])
    for conn in others:
        lines(conn[1])
    return laptop, log_in(b, a)


def log_in(node: FakeNode, other: FakeNode, nick: str = "alice") -> Conn:
    """A connection on node answering the nickname prompt with /identify."""
    proto, out = node.connect()
    lines(out)
    send((proto, out), f"/identify {nick} {PASSWORD}")
    pump_all(node, other)
    return proto, out


def send(conn: Conn, text: str) -> None:
    conn[0].dataReceived(text.encode() + b"\r\n")


def close(conn: Conn, *nodes: FakeNode) -> None:
    conn[0].connectionLost(Failure(ConnectionDone()))
    pump_all(*nodes)


def test_a_device_on_another_node_attaches_to_the_same_user() -> None:
    """The phone logs in on b while the laptop is alice on a: WELCOME back (one
    of 2), JOIN #lobby to the phone only; bob (on b) sees nothing, and /who on
    either node lists alice once."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    got = lines(phone[1])
    assert got[0] == (
        "WELCOME alice Welcome back to chatd, alice: this connection is one of 2 "
        "of your account."
    ), got
    assert got[1] == "JOIN #lobby alice"
    assert lines(bob[1]) == [] and lines(laptop[1]) == []
    assert phone[0].user is b.chat.users["alice"]
    for node in (a, b):
        assert [u.nick for u in node.chat.rooms["#lobby"].members.values()] == [
            "bob",
            "alice",
        ] or sorted(node.chat.users) == ["alice", "bob"]
        assert sorted(node.chat.users) == ["alice", "bob"]
        held = node.chat.users["alice"].devices
        assert held is not None and held.places == {"a": 1, "b": 1}
    send(bob, "/who")
    assert lines(bob[1]) == ["USERS #lobby alice bob"]


def test_every_connection_on_both_nodes_gets_what_the_user_gets() -> None:
    """A room message, a PRIV to alice and the echo of one she sends from the
    phone reach the laptop (a) and the phone (b); bob gets each once."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    lines(phone[1])
    send(bob, "hello all")
    send(bob, "/msg alice hi you")
    send(phone, "/msg bob from the phone")
    pump_all(a, b)
    expected = [
        "MSG #lobby bob hello all",
        "PRIV bob alice hi you",
        "PRIV alice bob from the phone",
    ]
    assert lines(laptop[1]) == expected
    assert lines(phone[1]) == expected
    assert lines(bob[1]) == expected
    send(laptop, "said on the laptop")
    pump_all(a, b)
    for conn in (laptop, phone, bob):
        assert lines(conn[1]) == ["MSG #lobby alice said on the laptop"]


def test_join_part_away_and_rename_made_on_either_node_reach_both() -> None:
    """The phone joins #dev and goes away; the laptop parts #dev and renames:
    each of alice's connections sees every one, and bob once."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    send(bob, "/join #dev")
    laptop, phone = laptop_and_phone(a, b, bob)
    pump_all(a, b)
    for conn in (laptop, phone, bob):
        lines(conn[1])
    send(phone, "/join #dev")
    pump_all(a, b)
    assert lines(laptop[1]) == lines(phone[1]) == ["JOIN #dev alice"]
    assert lines(bob[1]) == ["JOIN #dev alice"]
    send(phone, "/away at lunch")
    pump_all(a, b)
    assert lines(laptop[1]) == ["AWAY alice at lunch"]
    assert lines(bob[1]) == ["AWAY alice at lunch"]
    assert lines(phone[1]) == ["AWAY alice at lunch"]  # her own, as in one process
    send(laptop, "/part #dev")
    pump_all(a, b)
    assert lines(phone[1])[0] == "PART #dev alice "
    send(laptop, "/nick alicia")
    pump_all(a, b)
    assert lines(phone[1]) == ["RENAME alice alicia"]
    assert "RENAME alice alicia" in lines(bob[1])
    assert sorted(a.chat.users) == sorted(b.chat.users) == ["alicia", "bob"]


def test_the_user_quits_only_when_its_last_connection_on_any_node_goes() -> None:
    """The laptop (a) closes: bob sees nothing, the phone (b) still talks and
    its talk is kept once; then the phone closes: bob sees QUIT, once."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    lines(phone[1])
    close(laptop, a, b)
    assert lines(bob[1]) == []
    for node in (a, b):
        assert node.chat.users["alice"].devices.places == {"b": 1}  # type: ignore[union-attr]
    send(phone, "still here")
    pump_all(a, b)
    assert lines(bob[1]) == ["MSG #lobby alice still here"]
    kept = [e.text for e in a.chat.history.rooms["#lobby"]]  # type: ignore[union-attr]
    assert kept.count("still here") == 1, kept
    close(phone, a, b)
    assert [text.split(" ")[:2] for text in lines(bob[1])] == [["QUIT", "alice"]]
    assert "alice" not in a.chat.users and "alice" not in b.chat.users


def test_closing_both_at_once_on_two_nodes_quits_the_user_everywhere() -> None:
    """Laptop and phone close before either node has read the other's change:
    the log's order decides, and both replicas have alice gone; bob sees QUIT."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    laptop[0].connectionLost(Failure(ConnectionDone()))
    phone[0].connectionLost(Failure(ConnectionDone()))
    pump_all(a, b)
    assert [text.split(" ")[:2] for text in lines(bob[1])] == [["QUIT", "alice"]]
    assert "alice" not in a.chat.users and "alice" not in b.chat.users


def test_a_lost_node_takes_only_its_own_connections_of_the_user() -> None:
    """Node a is lost: alice's laptop goes with it, but her phone on b keeps
    her in the chat (no QUIT for bob); carol, on a alone, quits."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    on(a, b, "carol")
    lines(bob[1]), lines(phone[1])
    assert "carol" in b.chat.users
    b.log.append(Lost("a"))
    b.pump()
    assert lines(bob[1]) == ["QUIT carol node lost"]
    assert lines(phone[1]) == ["QUIT carol node lost"]
    assert "alice" in b.chat.users
    assert b.chat.users["alice"].devices.places == {"b": 1}  # type: ignore[union-attr]
    send(bob, "are you there")
    b.pump()
    assert lines(phone[1]) == ["MSG #lobby bob are you there"]


def test_max_devices_counts_connections_on_every_node() -> None:
    """--max-devices 2: the laptop on a and the phone on b are two; a third
    login, on either node, is refused (too-many-devices)."""
    clock, a, b = two_nodes(max_devices=2)
    laptop, phone = laptop_and_phone(a, b)
    assert lines(phone[1])[0].startswith("WELCOME alice ")
    for node, other in ((a, b), (b, a)):
        third = log_in(node, other)
        got = lines(third[1])
        assert got[0].startswith("ERR too-many-devices "), got
        assert third[0].user is None


def test_a_device_attached_after_a_threaded_password_check_is_counted() -> None:
    """As the daemon hashes on a thread: the phone's attach comes after its
    turn, and is counted through the log all the same (an op of its own)."""

    clock = Clock()

    def later(work: Callable[[], object]) -> Deferred[object]:
        return deferLater(clock, 0, work)

    _, a, b = two_nodes(hashing=later)
    clock.advance(1_700_000_000)
    bob = on(b, a, "bob")
    laptop = on(a, b, "alice")
    send(laptop, f"/register {PASSWORD} {PASSWORD}")
    for _ in range(3):
        pump_all(a, b)
        clock.advance(0)
    phone = b.connect()
    lines(phone[1])
    send(phone, f"/identify alice {PASSWORD}")
    for _ in range(3):
        pump_all(a, b)
        clock.advance(0)
    assert lines(phone[1])[0].startswith("WELCOME alice Welcome back")
    for node in (a, b):
        assert node.chat.users["alice"].devices.places == {"a": 1, "b": 1}  # type: ignore[union-attr]
    lines(bob[1])
    close(laptop, a, b)
    assert lines(bob[1]) == []


def test_always_on_is_replicated_and_decides_on_every_node() -> None:
    """alice turns always-on on from the phone (b); both her connections close:
    bob sees AWAY, not QUIT, and both replicas keep her; the laptop logs in
    again on a: she is back (AWAY with no text)."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    lines(phone[1])
    send(phone, "/always-on on")
    pump_all(a, b)
    assert lines(phone[1])[0].startswith("INFO Always-on is on")
    for node in (a, b):
        assert node.chat.users["alice"] in node.chat.always_on
    close(phone, a, b)
    close(laptop, a, b)
    assert lines(bob[1]) == [f"AWAY alice {ALWAYS_ON_AWAY}"]
    assert "alice" in a.chat.users and "alice" in b.chat.users
    again = log_in(a, b)
    assert lines(again[1])[0].startswith("WELCOME alice Welcome back")
    assert lines(bob[1]) == ["AWAY alice "]


def test_a_kill_closes_the_users_connections_on_every_node() -> None:
    """A server operator on b kills alice: the laptop (a) and the phone (b)
    both get BYE; everybody sees one QUIT."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    store = MemoryAccounts()
    a = make_node(log, "a", clock, accounts=store, operators=("root",))
    b = make_node(log, "b", clock, accounts=store, operators=("root",))
    know_each_other(a, b)
    root = on(b, a, "root")
    send(root, f"/register {PASSWORD} {PASSWORD}")
    pump_all(a, b)
    laptop, phone = laptop_and_phone(a, b, root)
    lines(phone[1])
    send(root, "/kill alice enough")
    pump_all(a, b)
    assert lines(laptop[1])[-1].startswith("BYE Killed by root")
    assert lines(phone[1])[-1].startswith("BYE Killed by root")
    assert [t for t in lines(root[1]) if t.startswith("QUIT")] == [
        "QUIT alice Killed by root: enough"
    ]
    assert "alice" not in a.chat.users and "alice" not in b.chat.users


def test_a_joining_node_learns_where_the_users_connections_are() -> None:
    """The snapshot (version 5) carries each counted user's places and who is
    always-on: a node that joins later decides as the others do."""
    clock, a, b = two_nodes()
    laptop, phone = laptop_and_phone(a, b)
    send(phone, "/always-on on")
    pump_all(a, b)
    c = make_node(a.log, "c", clock)
    data = json.loads(json.dumps(snapshot.dump(a.chat, ["a", "b"])))
    snapshot.load(c.chat, data, c.node)
    alice = c.chat.users["alice"]
    assert alice.devices is not None and alice.devices.places == {"a": 1, "b": 1}
    assert uid_of(alice) == uid_of(a.chat.users["alice"])
    assert alice in c.chat.always_on
    assert not isinstance(alice.client, RemoteClient)
    assert c.chat.drop_node("a", "node lost") == []
    assert alice.devices.places == {"b": 1}


def test_always_on_users_come_back_in_a_turn_of_the_node_that_starts_the_cluster() -> (
    None
):
    """The store keeps alice always-on in #dev; node a brings her back in a turn
    of its own (as the node that starts a cluster does): both replicas have her
    in #lobby and #dev, away and always-on; her phone logs in on b and bob (on
    a) sees her back; then node a is lost and she stays."""
    clock, a, b = two_nodes()
    account = on(a, b, "alice")
    send(account, f"/register {PASSWORD} {PASSWORD}")
    pump_all(a, b)
    close(account, a, b)
    store = a.factory.accounts.store
    store.always_on["alice"] = AlwaysOnRecord(
        "alice", "alice", "10.0.0.1", ["#lobby", "#dev"]
    )
    bob = on(a, b, "bob")
    a.node.restore_in_turn(lambda: restore(a.chat, dict(store.always_on)))
    pump_all(a, b)
    for node in (a, b):
        alice = node.chat.users["alice"]
        assert alice.devices is not None and alice.devices.places == {}
        assert sorted(alice.rooms) == ["#dev", "#lobby"]
        assert alice.away == ALWAYS_ON_AWAY and alice in node.chat.always_on
        assert uid_of(alice).startswith("a/")
    lines(bob[1])
    phone = log_in(b, a)
    assert lines(phone[1])[:3] == [
        "WELCOME alice Welcome back to chatd, alice: yours was kept while no "
        "device was connected (always-on).",
        "JOIN #lobby alice",
        "JOIN #dev alice",
    ]
    assert lines(bob[1]) == ["AWAY alice "]
    for node in (a, b):
        assert node.chat.users["alice"].devices.places == {"b": 1}  # type: ignore[union-attr]
    b.log.append(Lost("a"))
    b.pump()
    assert "alice" in b.chat.users and b.chat.users["alice"].away == ""


def test_a_node_lost_keeps_its_always_on_user_away() -> None:
    """alice, always-on, is connected on node a only: a is lost, and b keeps
    her, away (as her last connection's going would), not QUIT."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    alice = on(a, b, "alice")
    send(alice, f"/register {PASSWORD} {PASSWORD}")
    send(alice, "/always-on on")
    pump_all(a, b)
    lines(bob[1])
    b.log.append(Lost("a"))
    b.pump()
    assert lines(bob[1]) == [f"AWAY alice {ALWAYS_ON_AWAY}"]
    assert b.chat.users["alice"] in b.chat.always_on


def test_always_on_users_are_kept_in_redis_for_the_cluster(
    redis_server: RedisServer,
) -> None:
    """save_always_on writes chatd:always_on; a store that connects later reads
    it, and restore_always_on hands what brings them back to its caller once
    read; None deletes it."""
    record = AlwaysOnRecord("Alice", "Alice", "10.0.0.1", ["#lobby", "#dev"])
    first = RedisAccounts.start(reactor, redis_server.url)
    later: RedisAccounts | None = None
    try:
        result(first.ready())
        first.save_always_on("alice", record)
        later = RedisAccounts.start(reactor, redis_server.url)
        result(later.ready())
        restored: list[str] = []
        later.when_loaded(lambda: restored.append("back"))
        ran: Deferred[None] = Deferred()

        def run(call: Callable[[], None]) -> None:
            call()
            ran.callback(None)

        later.restore_always_on(run)
        result(ran)
        assert restored == ["back"]
        assert later.always_on == {"alice": record}
        first.save_always_on("alice", None)
        again = RedisAccounts.start(reactor, redis_server.url)
        result(again.ready())
        again.when_loaded(lambda: None)
        gone: Deferred[None] = Deferred()
        again.restore_always_on(lambda call: gone.callback(None))
        result(gone)
        assert again.always_on == {}
        result(again.close())
    finally:
        result(first.close())
        if later is not None:
            result(later.close())


def test_nickserv_identify_on_another_node_attaches_an_irc_client() -> None:
    """alice's line client is on a; an IRC client registered as alice_ on b
    says NickServ IDENTIFY alice: it becomes one of alice's connections (NICK
    alice_ -> alice, her channels), bob sees alice_ quit and no alice join; a
    message to #lobby reaches both of alice's connections."""
    clock, a, b = two_nodes()
    bob = on(a, b, "bob")
    laptop = on(a, b, "alice")
    send(laptop, f"/register {PASSWORD} {PASSWORD}")
    pump_all(a, b)
    irc, out = b.connect(irc=True)
    irc.dataReceived(b"NICK alice_\r\nUSER a 0 * :Alice\r\nJOIN #lobby\r\n")
    pump_all(a, b)
    lines(bob[1]), lines(laptop[1])
    out.clear()
    send((irc, out), f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    pump_all(a, b)
    said = out.value().decode()
    assert " NICK :alice\r\n" in said and "JOIN #lobby" in said, said
    assert irc.user is b.chat.users["alice"]
    assert [t.split(" ")[:2] for t in lines(bob[1])] == [["QUIT", "alice_"]]
    assert lines(laptop[1])[0].startswith("QUIT alice_ ")
    for node in (a, b):
        assert sorted(node.chat.users) == ["alice", "bob"]
    out.clear()
    send(bob, "both of you")
    pump_all(a, b)
    assert lines(laptop[1]) == ["MSG #lobby bob both of you"]
    assert "PRIVMSG #lobby :both of you" in out.value().decode()


def threaded() -> tuple[Clock, FakeNode, FakeNode, Callable[[], None]]:
    """Two nodes hashing as the daemon does (the answer after the line's turn),
    and what runs everything there is to run."""
    clock = Clock()

    def later(work: Callable[[], object]) -> Deferred[object]:
        return deferLater(clock, 0, work)

    _, a, b = two_nodes(hashing=later)

    def settle() -> None:
        for _ in range(4):
            pump_all(a, b)
            clock.advance(0)

    return clock, a, b, settle


def test_a_login_at_the_prompt_with_nobody_holding_the_name_registers() -> None:
    """With the password checked on a thread (after the line's turn), a login at
    the prompt for a free nickname registers the connection in a turn of its
    node's own: WELCOME, identified, and the other node has the user."""
    clock, a, b, settle = threaded()
    first = on(a, b, "alice")
    send(first, f"/register {PASSWORD} {PASSWORD}")
    settle()
    close(first, a, b)
    phone = b.connect()
    lines(phone[1])
    send(phone, f"/identify alice {PASSWORD}")
    settle()
    got = lines(phone[1])
    assert got[0].startswith("WELCOME alice "), got
    assert "INFO You are identified as alice." in got
    assert a.chat.users["alice"].account == "alice"


def test_a_login_on_one_node_takes_the_name_from_a_guest_on_the_other() -> None:
    """mallory holds alice's nickname on a without its account; alice logs in
    at the prompt on b: mallory is renamed to a guest name on both nodes, told
    why by NickServ on its own node, and the phone is alice, identified."""
    clock, a, b, settle = threaded()
    first = on(a, b, "alice")
    send(first, f"/register {PASSWORD} {PASSWORD}")
    settle()
    close(first, a, b)
    mallory = on(a, b, "alice")
    settle()
    lines(mallory[1])
    phone = b.connect()
    send(phone, f"/identify alice {PASSWORD}")
    settle()
    told = lines(mallory[1])
    assert told[0].startswith("RENAME alice "), told
    guest = told[0].split()[2]
    assert (
        f"INFO alice is the nickname of an account that just logged in, so you "
        f"are now {guest}. Choose another nickname with /nick." in told
    ), told
    assert any(text.startswith("WELCOME alice ") for text in lines(phone[1]))
    for node in (a, b):
        assert node.chat.users["alice"].account == "alice"
        assert len(node.chat.users) == 2


def test_a_rejoin_closes_the_connections_of_a_user_registered_elsewhere() -> None:
    """Redis comes back empty and both nodes rejoin: alice was registered on a,
    so her phone on b is closed (BYE, it logs in again) while her laptop on a
    stays hers; bob on b stays bob."""
    clock, a, b = two_nodes()
    bob = on(b, a, "bob")
    laptop, phone = laptop_and_phone(a, b, bob)
    lines(phone[1])
    fresh_log(clock, a, b)
    a.node.reset("a2")
    b.node.reset("b2")
    got = lines(phone[1])
    assert got[-1] == "BYE cluster link lost", got
    assert phone[0].user is None
    assert laptop[0].user is a.chat.users["alice"]
    assert sorted(b.chat.users) == ["bob"]


def sasl_phone(node: FakeNode, nick: str) -> Conn:
    """An IRC client on node that logs in to alice with SASL PLAIN as nick,
    sending CAP END before the (threaded) password check ends."""
    irc, out = node.connect(irc=True)
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    irc.dataReceived(
        f"CAP LS 302\r\nCAP REQ :sasl\r\nNICK {nick}\r\nUSER p 0 * :Phone\r\n"
        f"AUTHENTICATE PLAIN\r\nAUTHENTICATE {plain}\r\nCAP END\r\n".encode()
    )
    return irc, out


def test_sasl_on_another_node_attaches_an_irc_client() -> None:
    """alice's laptop is on a; an IRC client on b logs in with SASL PLAIN and
    sends CAP END before the (threaded) check ends: it is registered in a turn
    of b's own as one more of alice's connections (001 to alice, JOIN #lobby),
    and bob sees nothing."""
    clock, a, b, settle = threaded()
    bob = on(b, a, "bob")
    laptop = on(a, b, "alice")
    send(laptop, f"/register {PASSWORD} {PASSWORD}")
    settle()
    lines(bob[1])
    irc, out = sasl_phone(b, "phone")
    settle()
    said = out.value().decode()
    assert " 903 " in said and " 001 alice " in said, said
    assert ":alice!" in said and " JOIN #lobby" in said, said
    assert irc.user is b.chat.users["alice"]
    assert lines(bob[1]) == []
    for node in (a, b):
        assert sorted(node.chat.users) == ["alice", "bob"]
        assert node.chat.users["alice"].devices.places == {"a": 1, "b": 1}  # type: ignore[union-attr]


def test_sasl_with_nobody_holding_the_name_registers_in_a_turn() -> None:
    """SASL PLAIN on a cluster, CAP END sent before the (threaded) check ends
    and nobody holding the nickname: the client is registered as alice in a
    turn of its node's own, identified, and the other node has her."""
    clock, a, b, settle = threaded()
    first = on(a, b, "alice")
    send(first, f"/register {PASSWORD} {PASSWORD}")
    settle()
    close(first, a, b)
    irc, out = sasl_phone(b, "alice")
    settle()
    said = out.value().decode()
    assert " 903 " in said and " 001 alice " in said, said
    assert a.chat.users["alice"].account == "alice"
