"""The cluster log applied by nodes in one process (cluster_fakes): no Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from cluster_fakes import (
    FakeLog,
    FakeNode,
    fresh_log,
    know_each_other,
    make_node,
    pump_all,
)
from helpers import lines
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyRequest

from chatd.cluster import snapshot
from chatd.cluster.doors import ClusterLines
from chatd.cluster.entries import Changes, Effects, Hello, Lost, Turn
from chatd.cluster.ops import Op
from chatd.cluster.replica import RemoteClient
from chatd.irc.message import parse_message
from chatd.model.chat import Event, Private
from chatd.net.connection import Connection
from chatd.ops.health import health
from chatd.store.memory import MemoryHistory
from chatd.web.door import WebConnection
from chatd.web.site import SocketDoor


def two_nodes() -> tuple[Clock, FakeLog, FakeNode, FakeNode]:
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    a, b = make_node(log, "a", clock), make_node(log, "b", clock)
    know_each_other(a, b)
    return clock, log, a, b


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


def test_a_node_delivers_to_its_own_members_as_they_come_and_go() -> None:
    """Talk from the log reaches this node's members only, kept up to date.

    The list of a room's local members is cached; a join, a part, a rename
    and a quit must each be seen by the next message.
    """
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    carol, c_out = a.connect("carol")
    pump_all(a, b)
    lines(a_out), lines(b_out), lines(c_out)
    bob.dataReceived(b"/join #r\r\none\r\n")
    pump_all(a, b)
    assert "MSG #r bob one" not in lines(a_out)  # alice is not in #r
    alice.dataReceived(b"/join #r\r\n")
    pump_all(a, b)
    lines(a_out)
    bob.dataReceived(b"two\r\n")
    pump_all(a, b)
    assert "MSG #r bob two" in lines(a_out)  # joined: in the list now
    assert all(
        not isinstance(member.client, RemoteClient)
        for member in a.chat.rooms["#r"].local or []
    )
    alice.dataReceived(b"/nick alicia\r\n")
    carol.dataReceived(b"/join #r\r\n")
    pump_all(a, b)
    lines(a_out), lines(c_out)
    bob.dataReceived(b"three\r\n")
    pump_all(a, b)
    assert "MSG #r bob three" in lines(a_out)
    assert "MSG #r bob three" in lines(c_out)
    alice.dataReceived(b"/part #r\r\n")
    pump_all(a, b)
    lines(a_out)
    bob.dataReceived(b"four\r\n")
    pump_all(a, b)
    assert "MSG #r bob four" not in lines(a_out)  # parted: out of the list
    assert "MSG #r bob four" in lines(c_out)
    carol.connectionLost(Failure(ConnectionDone()))
    pump_all(a, b)
    bob.dataReceived(b"five\r\n")
    pump_all(a, b)
    assert a.chat.rooms["#r"].local == []
    assert "MSG #r bob five" in lines(b_out)


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


def test_talk_read_at_once_or_behind_a_turn_is_delivered_alike() -> None:
    """Talk with nothing ahead is applied from its JSON (no Talk made); behind a
    stalled turn it waits as a Talk: say, act and notice come out the same."""
    clock, log, a, b = two_nodes()
    a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(b_out)
    uid = a.chat.users["alice"].client.uid  # type: ignore[attr-defined]
    talk: list[dict[str, object]] = [
        {"k": "say", "u": uid, "r": "#lobby", "t": "one"},
        {"k": "act", "u": uid, "r": "#lobby", "t": "waves"},
        {"k": "say", "u": uid, "r": "#lobby", "t": "psst", "x": 1},
        {"k": "say", "u": "a/999", "r": "#lobby", "t": "nobody's"},
        {"k": "say", "u": uid, "r": "#nowhere", "t": "no room"},
    ]
    b.node.receive([(f"1800000000000-{i}", entry) for i, entry in enumerate(talk)])
    at_once = lines(b_out)
    assert at_once[:2] == ["MSG #lobby alice one", "ACTION #lobby alice waves"]
    assert len(at_once) == 3 and "psst" in at_once[2]
    turn = {"k": "turn", "n": "a", "u": uid}
    b.node.receive(
        [("1800000001000-0", turn)]
        + [(f"1800000001000-{i + 1}", entry) for i, entry in enumerate(talk)]
    )
    assert b.node.stalled and lines(b_out) == []
    fx = {"k": "fx", "n": "a", "turn": "1800000001000-0", "ops": []}
    b.node.receive([("1800000001000-9", fx)])
    assert not b.node.stalled
    assert lines(b_out) == at_once


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
    log.append(Lost("a"))
    b.pump()
    assert not b.node.stalled
    assert lines(b_out) == ["MSG #lobby bob still here?", "QUIT alice node lost"]
    assert set(b.chat.users) == {"bob"}


def test_an_fx_for_a_turn_already_passed_is_not_kept() -> None:
    """A lost node's turn is passed without effects; its late fx is dropped.

    It would otherwise stay in Node.effects for ever: nothing reads it again.
    """
    clock, log, a, b = two_nodes()
    alice, _ = a.connect("alice")
    bob, _ = b.connect("bob")
    pump_all(a, b)
    alice.dataReceived(b"/join #x\r\n")  # a's turn
    turn_id = log.entries[-1][0]
    log.append(Lost("a"))  # a is declared lost before it runs it
    b.pump()
    assert not b.node.stalled
    log.append(Effects("a", turn_id, ()))  # a, late
    b.pump()
    assert b.node.effects == {}


def test_an_fx_read_with_its_turn_is_applied_at_the_turn() -> None:
    """A turn and its fx in one read of the log: the fx is kept until the turn."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    alice.dataReceived(b"/join #x\r\n")
    a.pump()  # a runs its turn: turn and fx are both in the log now
    b.pump()  # b reads both at once
    assert not b.node.stalled and b.node.effects == {}
    assert "#x" in b.chat.rooms


def test_a_node_restarted_under_its_old_name_is_followed_again() -> None:
    """A lost node back under the same --node-name: its turns wait for their fx.

    Found trying docs/cluster.md: n2 killed with kill -9, declared lost, started
    again as n2; the others went on ignoring every turn of n2 (its users were
    never registered there) because n2 stayed in their set of gone nodes.
    """
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    b.connect("bob")
    pump_all(a, b)
    log.append(Lost("b"))  # b was killed
    pump_all(a)
    assert set(a.chat.users) == {"alice"}
    b2 = make_node(log, "b", clock)  # started again, same name
    b2.read = len(log.entries)
    log.append(Hello("b"))
    snapshot.load(b2.chat, snapshot.dump(a.chat, ["a"]), b2.node)
    b2.node.nodes["a"] = None
    pump_all(a, b2)
    lines(a_out)
    bob, _ = b2.connect("bob")
    pump_all(a, b2)
    bob.dataReceived(b"I am back\r\n")
    pump_all(a, b2)
    assert lines(a_out) == ["JOIN #lobby bob", "MSG #lobby bob I am back"]
    assert set(a.chat.users) == {"alice", "bob"}


def test_a_node_restarted_before_it_was_declared_lost_leaves_no_ghosts() -> None:
    """hello from a node the replica still holds: its old users quit, its turns go.

    Found trying docs/cluster.md: n2 killed with kill -9 and started again as n2
    within --node-timeout (systemd restarts after 2 s). The new n2 kept the
    heartbeat key alive, so no lost ever came: its old users stayed in every
    replica for ever, their nicknames taken.
    """
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, _ = b.connect("bob")
    pump_all(a, b)
    bob.dataReceived(b"/join #x\r\n")  # b's turn, never run: b dies
    alice.dataReceived(b"still here?\r\n")
    a.pump()
    assert a.node.stalled
    b2 = make_node(log, "b", clock)  # started again at once, same name
    b2.read = len(log.entries)
    log.append(Hello("b"))
    pump_all(a)
    assert not a.node.stalled
    assert lines(a_out)[-2:] == ["MSG #lobby alice still here?", "QUIT bob node lost"]
    assert set(a.chat.users) == {"alice"}
    snapshot.load(b2.chat, snapshot.dump(a.chat, ["a"]), b2.node)
    b2.node.nodes["a"] = None
    bob2, _ = b2.connect("bob")  # the nickname is free again
    pump_all(a, b2)
    assert lines(a_out) == ["JOIN #lobby bob"]
    assert set(a.chat.users) == set(b2.chat.users) == {"alice", "bob"}


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


def test_a_snapshot_round_trips_a_replica_with_rooms_people_run() -> None:
    """dump then load gives a replica that dumps the same: users, rooms, rules."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    alice.dataReceived(
        b"/join #ops\r\n/topic #ops a topic\r\n/mode #ops +mtk sekrit\r\n"
    )
    pump_all(a, b)
    bob.dataReceived(b"/join #ops sekrit\r\n")
    pump_all(a, b)
    alice.dataReceived(b"/voice #ops bob\r\n/ban #ops mallory\r\n")
    carol, _ = b.connect(irc=True)
    carol.dataReceived(b"NICK carol\r\nUSER c 0 * :Carol\r\n")
    pump_all(a, b)
    carol.dataReceived(b"MODE carol +i\r\n")
    pump_all(a, b)
    c = make_node(log, "c", clock)
    data = snapshot.dump(a.chat, ["a", "b"])
    nodes = snapshot.load(c.chat, json.loads(json.dumps(data)), c.node)
    assert nodes == ["a", "b"]
    assert snapshot.dump(c.chat, ["a", "b"]) == data
    assert snapshot.dump(b.chat, ["a", "b"]) == data  # the replicas agree
    room = c.chat.rooms["#ops"]
    assert room.rules.topic == "a topic" and room.rules.key == "sekrit"
    assert [u.nick for u in room.rules.ops] == ["alice"]
    assert [u.nick for u in room.rules.voiced] == ["bob"]
    assert isinstance(c.chat.users["alice"].client, RemoteClient)
    assert data["invisible"] == ["b/2"] and c.chat.users["carol"].invisible


def test_a_joining_node_applies_the_log_after_its_snapshot() -> None:
    """A node that loaded a snapshot at hello's place follows the log from there."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    c = make_node(log, "c", clock)
    answered: list[str] = []
    a.node.on_hello = lambda node, entry_id: answered.append(node)
    log.append(Hello("c"))
    pump_all(a, b)
    assert answered == ["c"]
    snapshot.load(c.chat, snapshot.dump(a.chat, ["a", "b"]), c.node)
    c.read = len(log.entries)
    carol, c_out = c.connect("carol")
    pump_all(a, b, c)
    lines(a_out)
    alice.dataReceived(b"/who\r\n")
    assert lines(a_out) == ["USERS #lobby alice carol"]
    alice.dataReceived(b"hi carol\r\n")
    pump_all(a, b, c)
    assert lines(c_out)[-1] == "MSG #lobby alice hi carol"


def test_a_kill_from_another_node_closes_the_connection_where_it_is() -> None:
    """A server operator's /kill of a user of another node: BYE there, QUIT here."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    a.chat.server_operators = frozenset({"alice"})
    b.chat.server_operators = frozenset({"alice"})
    for node in (a, b):
        node.chat.users["alice"].account = "alice"
    alice.dataReceived(b"/kill bob spamming\r\n")
    pump_all(a, b)
    assert lines(b_out)[-1].startswith("BYE Killed by alice: spamming")
    assert "QUIT bob Killed by alice: spamming" in lines(a_out)
    assert set(a.chat.users) == set(b.chat.users) == {"alice"}


def test_a_node_cut_off_refuses_changes_and_talk_but_answers_reads() -> None:
    """While the cluster is down: ERR cluster-down for talk and turns, /who works."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    lines(a_out)
    a.chat.up = False
    alice.dataReceived(b"hello?\r\n/join #x\r\n/who\r\n")
    got = lines(a_out)
    assert got[0].startswith("ERR cluster-down ")
    assert got[1].startswith("ERR cluster-down ")
    assert got[2] == "USERS #lobby alice"


def test_an_irc_client_cut_off_gets_try_again() -> None:
    """IRC says cluster-down as 263 (RPL_TRYAGAIN)."""
    clock, log, a, b = two_nodes()
    carol, c_out = a.connect(irc=True)
    carol.dataReceived(b"NICK carol\r\nUSER c 0 * :Carol\r\n")
    pump_all(a, b)
    c_out.clear()
    a.chat.up = False
    carol.dataReceived(b"JOIN #x\r\n")
    assert b" 263 carol " in c_out.value()


def test_rejoining_adds_local_users_again_and_shows_who_is_there() -> None:
    """After the log lost its place, a node's users come back through a turn:
    their nick if free (else a guest name), their rooms, JOIN of the others."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    bob.dataReceived(b"/join #x\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    # Redis came back empty: a fresh log; a rejoins first (keeps its state),
    # b rejoins after, from a's snapshot.
    fresh = fresh_log(clock, a, b)
    a.node.reset("a2")
    assert lines(a_out) == ["QUIT bob cluster link lost"]
    saved = b.node.save_locals()
    b.node.reset("b2")
    fresh.append(Hello("b2"))
    pump_all(a)
    snapshot.load(b.chat, snapshot.dump(a.chat, ["a2"]), b.node)
    b.read = len(fresh.entries)
    b.node.readd_locals(saved, loaded=True)
    pump_all(a, b)
    assert set(a.chat.users) == set(b.chat.users) == {"alice", "bob"}
    assert "JOIN #lobby bob" in lines(a_out)
    got = lines(b_out)
    assert "JOIN #lobby alice" in got and "JOIN #x bob" in got
    alice.dataReceived(b"still there?\r\n")
    bob.dataReceived(b"/msg alice yes\r\n")
    pump_all(a, b)
    assert lines(a_out) == ["MSG #lobby alice still there?", "PRIV bob alice yes"]
    assert lines(b_out) == ["MSG #lobby alice still there?", "PRIV bob alice yes"]


def test_irc_in_a_cluster_offers_sasl() -> None:
    """SASL registers a client in a turn of its node's own when its check ends
    (tests/test_cluster_devices.py): CAP LS offers it, as in one process."""
    clock, log, a, b = two_nodes()
    carol, c_out = a.connect(irc=True)
    carol.dataReceived(b"CAP LS 302\r\n")
    pump_all(a, b)
    text = c_out.value().decode()
    assert " LS " in text and "sasl" in text


def test_lines_behind_a_turn_wait_for_it_and_keep_their_order() -> None:
    """/join then a plain line in one packet: the line goes to the new room."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    bob.dataReceived(b"/join #x\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"/join #x\r\nhello x\r\n/who\r\n")
    assert lines(a_out) == []  # all three wait behind the join's turn
    pump_all(a, b)
    got = lines(a_out)
    assert got[0] == "JOIN #x alice"
    assert got[-3:] == ["USERS #x alice bob", "OPS #x bob", "MSG #x alice hello x"]
    assert lines(b_out) == ["JOIN #x alice", "MSG #x alice hello x"]


def test_a_connection_gone_before_its_turn_still_releases_the_others() -> None:
    """The turn of a closed connection gets an empty fx: nobody stalls on it."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    alice.dataReceived(b"/join #x\r\n")
    alice.connectionLost(Failure(ConnectionDone()))
    pump_all(a, b)
    assert not b.node.stalled
    assert set(a.chat.users) == set(b.chat.users) == {"bob"}
    assert "x" not in "".join(b.chat.rooms)


def test_lines_held_when_the_client_half_closes_still_run_then_it_leaves() -> None:
    """printf 'alice\\nhello\\n/quit\\n' | nc: every line runs, in order."""
    clock, log, a, b = two_nodes()
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(b_out)
    alice, a_out = a.connect()
    alice.dataReceived(b"alice\r\nhello\r\n/nick alicia\r\nagain\r\n/quit bye\r\n")
    alice.connectionLost(Failure(ConnectionDone()))  # before any turn came
    assert a.node.locals  # still there: its lines have yet to run
    pump_all(a, b)
    assert lines(b_out) == [
        "JOIN #lobby alice",
        "MSG #lobby alice hello",
        "RENAME alice alicia",
        "MSG #lobby alicia again",
        "QUIT alicia bye",
    ]
    assert not a.node.locals
    assert set(a.chat.users) == set(b.chat.users) == {"bob"}
    assert not b.node.stalled


def test_a_half_closed_client_gets_the_replies_of_its_held_lines() -> None:
    """printf 'alice\\n/nick alicia\\n/quit\\n' | nc -N: replies, BYE, the close."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect()
    alice.dataReceived(b"alice\r\n/nick alicia\r\n/quit bye\r\n")
    alice.readConnectionLost()  # the end of input, before any turn came
    assert not a_out.disconnecting  # its lines wait for their turns
    pump_all(a, b)
    got = lines(a_out)
    assert any(g.startswith("WELCOME alice") for g in got)
    assert "RENAME alice alicia" in got
    assert got[-1] == "BYE Goodbye, alicia."
    assert a_out.disconnecting


def test_lines_held_without_a_quit_run_then_the_user_leaves() -> None:
    """The connection closed: after its last held line, the user quits as usual."""
    clock, log, a, b = two_nodes()
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(b_out)
    alice, a_out = a.connect()
    alice.dataReceived(b"alice\r\nhello\r\n")
    alice.connectionLost(Failure(ConnectionDone()))
    pump_all(a, b)
    assert lines(b_out) == [
        "JOIN #lobby alice",
        "MSG #lobby alice hello",
        "QUIT alice connection closed",
    ]
    assert not a.node.locals
    assert set(a.chat.users) == set(b.chat.users) == {"bob"}


def test_a_turn_that_comes_twice_runs_its_line_once() -> None:
    """A turn request sent again after Redis came back: the second does nothing."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    alice.dataReceived(b"/join #x\r\n/join #y\r\n")
    log.append(dict(log.entries[-1][1]))  # the same turn request, again
    pump_all(a, b)
    assert sorted(a.chat.users["alice"].rooms) == ["#lobby", "#x", "#y"]
    assert sorted(b.chat.users["alice"].rooms) == ["#lobby", "#x", "#y"]
    assert not a.node.stalled and not b.node.stalled


def test_a_turn_of_a_node_never_known_does_not_stall() -> None:
    """Nobody would ever answer it (an old node's turn after a rejoin)."""
    clock, log, a, b = two_nodes()
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    lines(b_out)
    log.append(Turn("ghost", "ghost/1"))
    bob.dataReceived(b"still flowing\r\n")
    pump_all(a, b)
    assert not a.node.stalled and not b.node.stalled
    assert lines(b_out) == ["MSG #lobby bob still flowing"]


def test_healthz_says_cluster_down_while_a_node_is_cut_off() -> None:
    """/healthz: 503 and status cluster-down while the node cannot reach Redis."""
    clock, log, a, b = two_nodes()
    assert health(a.factory)[0] == 200
    a.chat.up = False
    status, body = health(a.factory)
    assert (status, body["status"]) == (503, "cluster-down")


def test_history_ids_come_from_the_log_and_agree_on_every_node() -> None:
    """A room message and a kept private message carry the same id everywhere."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    a = make_node(log, "a", clock, MemoryHistory(clock))
    b = make_node(log, "b", clock, MemoryHistory(clock))
    know_each_other(a, b)
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    for node in (a, b):  # alice is identified: her private messages are kept
        node.chat.users["alice"].account = "alice"
    alice.dataReceived(b"/ids on\r\n")
    bob.dataReceived(b"/ids on\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"hello\r\n")
    pump_all(a, b)
    a_ids = [text for text in lines(a_out) if text.startswith("ID ")]
    b_ids = [text for text in lines(b_out) if text.startswith("ID ")]
    assert a_ids == b_ids and len(a_ids) == 1
    delivered: list[Private] = []
    for node in (a, b):
        user = node.chat.users["bob" if node is b else "alice"]
        client = user.client
        original = client.deliver

        def keep(event: Event, original: Callable[[Event], None] = original) -> None:
            if isinstance(event, Private):
                delivered.append(event)
            original(event)

        user.deliver = keep
    alice.dataReceived(b"/msg bob psst\r\n")
    pump_all(a, b)
    assert len(delivered) == 2
    assert delivered[0].id == delivered[1].id != 0


def test_the_web_door_builds_the_clusters_connections_too() -> None:
    """/ws in a cluster makes the cluster's WebConnection: its lines wait for turns."""
    clock, log, a, b = two_nodes()
    request = DummyRequest([b"ws"])
    connection = SocketDoor(a.factory, False).buildProtocol(cast(Request, request))
    assert isinstance(connection, WebConnection)
    assert isinstance(getattr(connection, "turns", None), ClusterLines)


def irc_client(
    node: FakeNode, nick: str, *caps: str
) -> tuple[Connection, StringTransport]:
    """An IRC client of node with caps, registered (all pumped), output cleared."""
    proto, out = node.connect(irc=True)
    text = ""
    if caps:
        text += "CAP LS 302\r\nCAP REQ :" + " ".join(caps) + "\r\n"
    text += f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"
    if caps:
        text += "CAP END\r\n"
    proto.dataReceived(text.encode())
    return proto, out


def test_a_labeled_privmsgs_echo_carries_the_label_as_in_one_process() -> None:
    """labeled-response with echo-message: the echo, come from the log, is the
    labeled response (not an ACK at once and a bare echo later); without
    echo-message the command gets its ACK."""
    clock, log, a, b = two_nodes()
    caps = ("batch", "labeled-response", "echo-message")
    alice, a_out = irc_client(a, "alice", *caps)
    bob, b_out = irc_client(b, "bob", "batch", "labeled-response")
    pump_all(a, b)
    alice.dataReceived(b"JOIN #x\r\n")
    bob.dataReceived(b"JOIN #x\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    alice.dataReceived(b"@label=m1 PRIVMSG #x :hi\r\nPING :after\r\n")
    assert lines(a_out) == []  # the response waits for the echo, the PONG behind it
    pump_all(a, b)
    echo, pong = [parse_message(text) for text in lines(a_out)]
    assert echo.command == "PRIVMSG" and echo.params == ("#x", "hi")
    assert echo.tags == {"label": "m1"}
    assert pong.command == "PONG" and pong.tags == {}
    assert [parse_message(text).tags for text in lines(b_out)] == [{}]
    alice.dataReceived(b"@label=m2 PRIVMSG bob :psst\r\n")
    pump_all(a, b)
    (echo,) = [parse_message(text) for text in lines(a_out)]
    assert echo.params == ("bob", "psst") and echo.tags == {"label": "m2"}
    assert [parse_message(text).tags for text in lines(b_out)] == [{}]
    bob.dataReceived(b"@label=m3 PRIVMSG #x :hello\r\n")
    (ack,) = [parse_message(text) for text in lines(b_out)]
    assert ack.command == "ACK" and ack.tags == {"label": "m3"}


def test_a_labeled_privmsg_refused_meanwhile_gets_an_ack() -> None:
    """The echo never comes (the speaker left the room before it was applied):
    the labeled response is an ACK, when the entry is applied; what came
    meanwhile (the PART) follows it."""
    clock, log, a, b = two_nodes()
    caps = ("batch", "labeled-response", "echo-message")
    alice, a_out = irc_client(a, "alice", *caps)
    pump_all(a, b)
    alice.dataReceived(b"JOIN #x\r\n")
    pump_all(a, b)
    lines(a_out)
    alice.dataReceived(b"@label=m1 PRIVMSG #x :hi\r\n")
    talk_id, talk = log.entries.pop()
    log.append(Changes("a", (Op("part", talk["u"], ("#x", "gone")),)))
    log.append(talk)  # the part is applied before the talk
    pump_all(a, b)
    got = [parse_message(text) for text in lines(a_out)]
    assert [(m.command, m.tags) for m in got] == [
        ("ACK", {"label": "m1"}),
        ("PART", {}),
    ]


def test_registering_on_a_node_does_not_call_the_owner_an_impostor() -> None:
    """Right after /register the user is identified, and is never told to
    identify within the grace or be renamed (the account reaches the replicas
    through the log, after the registration's answer)."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)

    def later(work: Callable[[], object]) -> Deferred[object]:
        # As the daemon's thread: the hash is done after the turn is over.
        return deferLater(clock, 0, work)

    a = make_node(log, "a", clock, hashing=later)
    b = make_node(log, "b", clock, hashing=later)
    know_each_other(a, b)
    alice, out = a.connect("alice")
    pump_all(a, b)
    lines(out)
    alice.dataReceived(b"/register long-enough long-enough\r\n")
    pump_all(a, b)
    clock.advance(0)
    pump_all(a, b)
    got = lines(out)
    assert any("is registered to you" in text for text in got), got
    assert not any("registered nickname" in text for text in got), got
    assert a.chat.users["alice"].account == b.chat.users["alice"].account == "alice"
    clock.advance(a.factory.config.accounts.grace + 1)
    pump_all(a, b)
    assert not any(text.startswith("RENAME") for text in lines(out))
    assert "alice" in b.chat.users


def test_a_joining_node_learns_the_registered_rooms_from_its_snapshot() -> None:
    """A room registered before a node joined is registered there too: its
    founder's record comes in the snapshot (else the new node would let
    anyone register it again and run it)."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    alice.dataReceived(b"/register long-enough long-enough\r\n/join #ops\r\n")
    pump_all(a, b)
    alice.dataReceived(b"/register #ops\r\n")
    pump_all(a, b)
    assert "#ops" in a.chat.records and "#ops" in b.chat.records
    c = make_node(log, "c", clock)
    data = snapshot.dump(a.chat, ["a", "b"])
    snapshot.load(c.chat, json.loads(json.dumps(data)), c.node)
    record = c.chat.records["#ops"]
    assert record.founder == "alice" and record.operators == {"alice"}
    assert c.chat.rooms["#ops"].rules.record is record
    assert c.factory.accounts.store.rooms is c.chat.records  # the store's, in place


def test_an_operator_made_while_cut_off_is_taken_back_at_the_merge() -> None:
    """alice runs #x (a), bob is in it (b). Redis comes back empty: a is back
    first and keeps its state; b, cut off, dropped alice and made bob the
    operator (OP #x bob). At the merge the log's state wins: bob is shown
    DEOP #x bob and OP #x alice, and every replica has alice alone running #x."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    alice.dataReceived(b"/join #x\r\n")
    pump_all(a, b)
    bob.dataReceived(b"/join #x\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out)
    fresh = fresh_log(clock, a, b)
    a.node.reset("a2")
    b.node.reset("b2")
    assert lines(b_out) == ["QUIT alice cluster link lost", "OP #x bob chatd"]
    saved = b.node.save_locals()
    fresh.append(Hello("b2"))
    pump_all(a)
    snapshot.load(b.chat, snapshot.dump(a.chat, ["a2"]), b.node)
    b.read = len(fresh.entries)
    b.node.readd_locals(saved, loaded=True)
    pump_all(a, b)
    for chat in (a.chat, b.chat):
        assert [user.nick for user in chat.rooms["#x"].rules.ops] == ["alice"]
    got = lines(b_out)
    assert "DEOP #x bob chatd" in got and "OP #x alice chatd" in got, got
    bob.dataReceived(b"/kick #x alice\r\n")
    pump_all(a, b)
    assert lines(b_out)[0].startswith("ERR not-operator ")


def test_irc_invisible_mode_is_replicated_to_the_other_node() -> None:
    """MODE alice +i on node a: node b's replica has alice invisible, so a stranger
    on b does not find her by a WHO mask and LUSERS there counts her invisible;
    MODE alice -i shows her again."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect(irc=True)
    alice.dataReceived(b"NICK alice\r\nUSER a 0 * :Alice\r\n")
    bob, b_out = b.connect(irc=True)
    bob.dataReceived(b"NICK bob\r\nUSER b 0 * :Bob\r\n")
    pump_all(a, b)
    bob.dataReceived(b"PART #lobby\r\n")  # no room shared with alice
    alice.dataReceived(b"MODE alice +i\r\n")
    pump_all(a, b)
    assert ":alice MODE alice :+i" in a_out.value().decode()
    assert b.chat.users["alice"].invisible and a.chat.users["alice"].invisible
    b_out.clear()
    bob.dataReceived(b"WHO al*\r\nLUSERS\r\n")
    pump_all(a, b)
    text = b_out.value().decode()
    assert " 352 bob " not in text, text
    assert "There are 1 users and 1 invisible" in text, text
    alice.dataReceived(b"MODE alice -i\r\n")
    pump_all(a, b)
    b_out.clear()
    bob.dataReceived(b"WHO al*\r\n")
    pump_all(a, b)
    assert " 352 bob * ~a " in b_out.value().decode()
    assert not b.chat.users["alice"].invisible


def test_a_newer_nodes_entry_or_op_is_skipped_and_the_log_goes_on() -> None:
    """During an upgrade an older node reads a kind of entry, or an op, it does
    not know (docs/cluster.md, Upgrades): it skips it, says so in its log, and
    applies what follows."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    pump_all(a, b)
    lines(a_out)
    log.append({"k": "colour", "n": "b", "u": "b/9"})
    log.append(Changes("b", (Op("colour", alice_uid(a), ("red",)),)))
    alice.dataReceived(b"still here\r\n")
    pump_all(a, b)
    assert lines(a_out) == ["MSG #lobby alice still here"]


def alice_uid(node: FakeNode) -> str:
    """The uid of alice on node's replica."""
    return next(uid for uid, user in node.chat.by_uid.items() if user.nick == "alice")
