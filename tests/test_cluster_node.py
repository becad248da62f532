"""The cluster log applied by nodes in one process (cluster_fakes): no Redis."""

from __future__ import annotations

from cluster_fakes import FakeLog, FakeNode, make_node, pump_all
from helpers import lines
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatd.cluster.replica import RemoteClient


def two_nodes() -> tuple[Clock, FakeLog, FakeNode, FakeNode]:
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    return clock, log, make_node(log, "a", clock), make_node(log, "b", clock)


def test_a_nickname_waits_for_its_turn_then_is_welcomed() -> None:
    """NICK is handled when its turn is read, and the other node learns the user."""
    clock, log, a, b = two_nodes()
    proto, out = a.connect("alice")
    assert proto.user is None  # not before its turn comes back from the log
    pump_all(a, b)
    got = lines(out)
    assert any(text.startswith("WELCOME alice") for text in got), got
    assert "JOIN #lobby alice" in got
    remote = b.chat.users["alice"]
    assert isinstance(remote.client, RemoteClient)
    assert [u.nick for u in b.chat.rooms["#lobby"].members.values()] == ["alice"]


def test_a_nickname_race_has_one_winner() -> None:
    """Two nodes ask for one nick at once: the first turn in the log wins."""
    clock, log, a, b = two_nodes()
    _, a_out = a.connect("alice")
    _, b_out = b.connect("Alice")
    pump_all(a, b)
    a_lines, b_lines = lines(a_out), lines(b_out)
    assert any(text.startswith("WELCOME alice") for text in a_lines)
    assert any(text.startswith("ERR nick-taken") for text in b_lines), b_lines
    assert set(a.chat.users) == set(b.chat.users) == {"alice"}


def test_room_talk_has_one_order_on_every_node() -> None:
    """Lines said on two nodes arrive at every member in the log's order."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"one\r\n")
    bob.dataReceived(b"two\r\n")
    alice.dataReceived(b"three\r\n")
    assert lines(a_out) == []  # nothing before its place in the order is fixed
    pump_all(a, b)
    expected = ["MSG #lobby alice one", "MSG #lobby bob two", "MSG #lobby alice three"]
    assert lines(a_out) == expected
    assert lines(b_out) == expected


def test_a_foreign_turn_stalls_what_follows_until_its_effects() -> None:
    """Node b applies a's join at the turn's place, even when talk follows it."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    bob.dataReceived(b"/join #x\r\n")
    alice.dataReceived(b"/join #x\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    bob.dataReceived(b"/part #x\r\n")  # a turn of b's
    alice.dataReceived(b"/msg bob hi\r\n")
    b.pump()  # b runs its turn (publishes fx)
    a.pump(1)  # a reads b's turn: it must wait for the fx
    assert a.node.stalled
    a.pump()
    assert not a.node.stalled
    assert "x" not in [k.strip("#") for k in a.chat.users["bob"].rooms]
    pump_all(a, b)
    assert lines(a_out) == ["PART #x bob ", "OP #x alice chatd", "PRIV alice bob hi"]


def test_who_and_private_messages_cross_nodes() -> None:
    """/who lists members of both nodes; /msg reaches a user on the other node."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"/who\r\n")
    assert lines(a_out) == ["USERS #lobby alice bob"]
    bob.dataReceived(b"/msg alice psst\r\n")
    pump_all(a, b)
    assert lines(a_out) == ["PRIV bob alice psst"]
    assert lines(b_out) == ["PRIV bob alice psst"]


def test_a_dropped_connection_quits_everywhere_in_order() -> None:
    """A closed connection's quit is applied by every node when read."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.connectionLost(Failure(ConnectionDone()))
    pump_all(a, b)
    assert lines(b_out) == ["QUIT alice connection closed"]
    assert set(a.chat.users) == set(b.chat.users) == {"bob"}


def test_a_lost_node_takes_its_users_and_its_pending_turn() -> None:
    """lost(node) quits its users with 'node lost', and releases a stall on it."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"/join #x\r\n")  # a's turn, never run: a dies
    bob.dataReceived(b"still here?\r\n")
    b.pump()
    assert b.node.stalled
    log.append({"k": "lost", "node": "a"})
    b.pump()
    assert not b.node.stalled
    assert lines(b_out) == ["MSG #lobby bob still here?", "QUIT alice node lost"]
    assert set(b.chat.users) == {"bob"}


def test_talk_is_refused_at_once_by_the_home_node() -> None:
    """A refusal (not in the room) comes back at once, nothing published."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    lines(a_out)
    before = len(log.entries)
    alice.dataReceived(b"/msg nobody hi\r\n")
    assert lines(a_out)[0].startswith("ERR no-such-nick")
    assert len(log.entries) == before


def test_irc_clients_register_and_join_across_nodes() -> None:
    """An IRC client on b sees a line user of a in NAMES and their messages."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    carol, c_out = b.connect(irc=True)
    carol.dataReceived(b"NICK carol\r\nUSER c 0 * :Carol\r\n")
    pump_all(a, b)
    carol.dataReceived(b"JOIN #lobby\r\n")
    pump_all(a, b)
    text = c_out.value().decode()
    assert " 001 carol " in text
    assert "alice" in text and "353" in text
    lines(a_out)
    c_out.clear()
    alice.dataReceived(b"hello carol\r\n")
    pump_all(a, b)
    assert (
        b":alice!" in c_out.value() and b"PRIVMSG #lobby :hello carol" in c_out.value()
    )
