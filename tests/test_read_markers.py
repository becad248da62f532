"""Read markers and catch-up (docs/protocol.md, Read markers and catch-up).

/read moves an account's marker forward only, and every user identified to the
account gets READ; someone not identified has none; an id that is not the
target's is refused; the cap drops the marker read longest ago; a dropped
account takes its markers; right after /identify the connection gets READ
lines, then each room's missed messages, then each private conversation's.
StringTransport, Clock and a MemoryHistory; the stores on their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon import LineClient, running_daemon
from helpers import CHEAP, Mailbox, RecordingClient, connect, lines
from test_store_accounts import closed, opened
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import parse_server_line
from chatd.model.chat import Chat, ReadMoved
from chatd.protocol import LineConnection
from chatd.store.accounts import MemoryAccounts
from chatd.store.interface import Marker
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
PASSWORD = "s3cret-pw"


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def say(proto: LineConnection, out: StringTransport, text: str) -> list[str]:
    """Send one line; return what the connection was sent since."""
    proto.dataReceived(text.encode() + b"\r\n")
    return lines(out)


def registered(
    factory: ChatFactory, nick: str
) -> tuple[LineConnection, StringTransport]:
    """Connect nick and register it as an account (identified at once)."""
    proto, out = connect(factory, nick)
    say(proto, out, f"/register {PASSWORD} {PASSWORD}")
    assert proto.user is not None and proto.user.account == nick
    return proto, out


def identified(
    factory: ChatFactory, nick: str, account: str
) -> tuple[LineConnection, StringTransport, list[str]]:
    """Connect as nick, /identify to account; return the lines after it."""
    proto, out = connect(factory, nick)
    answer = say(proto, out, f"/identify {account} {PASSWORD}")
    return proto, out, answer


def ids_of(received: list[str], verb: str = "MSG") -> list[str]:
    """The ids of the HISTORY lines received (their second word)."""
    return [
        parse_server_line(text).words[1]
        for text in received
        if text.startswith("HISTORY ")
    ]


def newest(proto: LineConnection, out: StringTransport, target: str) -> str:
    """The id of target's newest message, as /history gives it."""
    answer = say(proto, out, f"/history {target} 1")
    assert answer[-1].startswith("ENDHISTORY "), answer
    return ids_of(answer)[-1]


# -- the rules, on the line door -------------------------------------------------


def test_read_moves_forward_only_and_every_connection_gets_read(
    factory: ChatFactory, clock: Clock
) -> None:
    """/read #lobby <id> gives READ #lobby <id> to both users identified to the
    account (the one that asked too), and to nobody else; an id at or before
    the marker changes nothing and answers nothing."""
    alice, a_out = registered(factory, "alice")
    second, s_out, _ = identified(factory, "alice2", "alice")
    bob, b_out = connect(factory, "bob")
    say(bob, b_out, "one")
    clock.advance(1)
    say(bob, b_out, "two")
    lines(a_out), lines(s_out)
    two = newest(alice, a_out, "#lobby")
    one = ids_of(say(alice, a_out, "/history #lobby 2"))[0]
    assert say(alice, a_out, f"/read #lobby {two}") == [f"READ #lobby {two}"]
    assert lines(s_out) == [f"READ #lobby {two}"]
    assert lines(b_out) == []
    assert say(alice, a_out, f"/read #lobby {one}") == []
    assert say(second, s_out, f"/read #LOBBY {two}") == []
    assert lines(a_out) == []
    assert factory.chat.marker("alice", "#lobby") == Marker(
        int(two), int(two) // 1000, "#lobby"
    )


def test_read_needs_an_account(factory: ChatFactory) -> None:
    """Someone who is not identified has no markers: ERR not-identified."""
    bob, b_out = connect(factory, "bob")
    say(bob, b_out, "hello")
    (refused,) = say(bob, b_out, "/read #lobby 1")
    assert refused.startswith("ERR not-identified read markers are kept only")


def test_an_id_that_is_not_the_targets_is_refused(
    factory: ChatFactory, clock: Clock
) -> None:
    """An id of another room, an id that is no message and a word that is no id
    are ERR bad-args; so is a room one may not read; nothing moves."""
    alice, a_out = registered(factory, "alice")
    say(alice, a_out, "/join #dev")
    say(alice, a_out, "in dev")
    dev = newest(alice, a_out, "#dev")
    (refused,) = say(alice, a_out, f"/read #lobby {dev}")
    assert refused == f"ERR bad-args {dev} is not a message id of #lobby"
    (refused,) = say(alice, a_out, "/read #dev 12345")
    assert refused == "ERR bad-args 12345 is not a message id of #dev"
    (refused,) = say(alice, a_out, "/read #dev soon")
    assert refused == "ERR bad-args soon is not a message id"
    (refused,) = say(alice, a_out, f"/read #nowhere {dev}")
    assert refused == "ERR bad-args #nowhere: no such room to read"
    (refused,) = say(alice, a_out, "/read #dev")
    assert refused.startswith("ERR bad-args usage: /read")
    assert factory.chat.markers == {}


def test_a_private_conversation_has_a_marker_by_the_other_side(
    factory: ChatFactory,
) -> None:
    """/read bob <id> marks the conversation with bob's account; the id must be
    one of that conversation's (a room's is refused)."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    say(bob, b_out, "/msg alice hi alice")
    lines(a_out)
    private = newest(alice, a_out, "bob")
    assert say(alice, a_out, f"/read Bob {private}") == [f"READ bob {private}"]
    assert lines(b_out) == []  # bob's account has its own markers
    say(alice, a_out, "in the lobby")
    room = newest(alice, a_out, "#lobby")
    (refused,) = say(alice, a_out, f"/read bob {room}")
    assert refused == f"ERR bad-args {room} is not a message id of bob"


def test_markers_are_capped_per_account(factory: ChatFactory) -> None:
    """Past the cap, the marker read longest ago (smallest id) goes."""
    chat = factory.chat
    chat.max_markers = 2
    alice, a_out = registered(factory, "alice")
    assert alice.user is not None
    for number, room in enumerate(("#a", "#b", "#c"), start=1):
        chat.mark_read(alice.user, room, room, number, number)
    assert sorted(chat.markers["alice"]) == ["#b", "#c"]


def test_a_dropped_account_takes_its_markers(factory: ChatFactory) -> None:
    """/unregister forgets the account's markers: a new account of the same
    name starts with none."""
    alice, a_out = registered(factory, "alice")
    say(alice, a_out, "hello")
    say(alice, a_out, f"/read #lobby {newest(alice, a_out, '#lobby')}")
    assert "alice" in factory.chat.markers
    say(alice, a_out, f"/unregister {PASSWORD}")
    assert "alice" not in factory.chat.markers
    assert "alice" not in factory.accounts.store.markers


# -- the catch-up ------------------------------------------------------------------


def test_catch_up_after_identify_in_order(factory: ChatFactory, clock: Clock) -> None:
    """Right after /identify's INFO: READ for each marker, then each room's
    messages after its marker (the latest 20 where there is none) with
    ENDHISTORY, then each private conversation with messages after its
    marker, as HISTORY <nick> <id> <time> PRIV <sender> <text>."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    say(alice, a_out, "/join #dev")
    say(bob, b_out, "/join #dev")
    say(bob, b_out, "/msg alice first private")
    say(bob, b_out, "seen in dev")
    seen = newest(alice, a_out, "#dev")
    say(alice, a_out, f"/read #dev {seen}")
    say(alice, a_out, f"/read bob {newest(alice, a_out, 'bob')}")
    clock.advance(1)  # alice's laptop reads no more; her phone comes
    say(bob, b_out, "missed in dev")
    say(bob, b_out, "/msg alice missed private")
    phone, p_out = connect(factory, "phone")
    say(phone, p_out, "/join #dev")
    answer = say(phone, p_out, f"/identify alice {PASSWORD}")
    assert answer.pop(0) == "ACCOUNT phone alice"
    verbs = [text.split(" ", 2)[:2] for text in answer]
    assert answer[0] == "INFO You are identified as alice."
    assert verbs[1:] == [
        ["READ", "bob"],  # oldest read first
        ["READ", "#dev"],
        ["ENDHISTORY", "#lobby"],
        ["HISTORY", "#dev"],
        ["ENDHISTORY", "#dev"],
        ["HISTORY", "bob"],
        ["ENDHISTORY", "bob"],
    ], answer
    assert answer[2] == f"READ #dev {seen}"
    dev = parse_server_line(answer[4])
    assert (dev.words[3], dev.words[4], dev.text) == ("MSG", "bob", "missed in dev")
    private = parse_server_line(answer[6])
    assert private.words[3:] == ("PRIV", "bob")
    assert private.text == "missed private"


def test_catch_up_without_markers_gives_the_latest(factory: ChatFactory) -> None:
    """No marker: a room's latest messages; a conversation whose last message
    the account did not send itself, too; one whose last word is its own, not."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    carol, c_out = registered(factory, "carol")
    say(bob, b_out, "/msg alice from bob")
    say(alice, a_out, "/msg carol from alice")
    say(bob, b_out, "in the lobby")
    _, _, answer = identified(factory, "tablet", "alice")
    assert answer[:2] == ["ACCOUNT tablet alice", "INFO You are identified as alice."]
    del answer[0]
    assert [text.split(" ")[0:2] for text in answer[1:]] == [
        ["HISTORY", "#lobby"],
        ["ENDHISTORY", "#lobby"],
        ["HISTORY", "bob"],
        ["ENDHISTORY", "bob"],
    ], answer
    assert answer[1].endswith(" MSG bob in the lobby")


def test_while_history_fails_the_catch_up_is_the_markers_only(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """History unavailable: READ lines still come, no HISTORY; /read answers
    ERR no-history."""
    alice, a_out = registered(factory, "alice")
    say(alice, a_out, "hello")
    say(alice, a_out, f"/read #lobby {newest(alice, a_out, '#lobby')}")
    store.reason = "the disk is full"
    _, _, answer = identified(factory, "phone", "alice")
    assert [text.split(" ")[0] for text in answer] == ["ACCOUNT", "INFO", "READ"]
    refused = say(alice, a_out, "/read #lobby 5")[-1]
    assert refused == "ERR no-history history is unavailable: the disk is full"


def test_a_wrong_password_gets_no_catch_up(factory: ChatFactory) -> None:
    """ERR auth-failed, and nothing else."""
    registered(factory, "alice")
    eve, e_out = connect(factory, "eve")
    assert say(eve, e_out, "/identify alice wrong-password") == [
        "ERR auth-failed wrong password, or no account of that name"
    ]


# -- the model and the stores ---------------------------------------------------


def test_the_model_delivers_one_event_to_the_accounts_users() -> None:
    """mark_read hands ReadMoved to each user identified to the account only."""
    chat = Chat()
    one = chat.register("one", RecordingClient())
    two = chat.register("two", RecordingClient())
    other = chat.register("other", RecordingClient())
    chat.set_account(one, "Alice")
    chat.set_account(two, "alice")
    chat.set_account(other, "bob")
    for user in (one, two, other):
        user.client.take()  # type: ignore[attr-defined]
    chat.mark_read(one, "#dev", "#dev", 5, 7)
    assert one.client.take() == [ReadMoved("#dev", 5, 7)]  # type: ignore[attr-defined]
    assert two.client.take() == [ReadMoved("#dev", 5, 7)]  # type: ignore[attr-defined]
    assert other.client.take() == []  # type: ignore[attr-defined]


def test_memory_store_keeps_markers_forward_only() -> None:
    """A smaller id changes nothing; None forgets the target."""
    store = MemoryAccounts()
    store.save_marker("alice", "#dev", Marker(5, 1, "#dev"))
    store.save_marker("alice", "#dev", Marker(4, 1, "#dev"))
    assert store.markers == {"alice": {"#dev": Marker(5, 1, "#dev")}}
    store.save_marker("alice", "#dev", None)
    assert store.markers == {}


def test_sqlite_keeps_markers_across_a_restart(tmp_path: Path) -> None:
    """Written behind by the writer thread, forward only, read back at open;
    forget_markers deletes the account's rows."""
    path = tmp_path / "chatd.sqlite3"
    mailbox = Mailbox()
    history, store = opened(path, mailbox)
    store.save_marker("alice", "#dev", Marker(5, 1, "#dev"))
    store.save_marker("alice", "bob", Marker(9, 2, "Bob"))
    store.save_marker("alice", "bob", Marker(8, 2, "Bob"))
    store.save_marker("carol", "#dev", Marker(3, 1, "#dev"))
    store.forget_markers("carol")
    closed(history, mailbox)
    history, again = opened(path, mailbox)
    assert again.markers == {
        "alice": {"#dev": Marker(5, 1, "#dev"), "bob": Marker(9, 2, "Bob")}
    }
    closed(history, mailbox)


# -- a real daemon ---------------------------------------------------------------


def test_markers_survive_a_restart(tmp_path: Path) -> None:
    """The real twistd: alice reads #lobby up to a message and stops the
    server; after a restart, identifying gets her READ #lobby <id> first, then
    only what was said after it."""
    loopback = "tcp:0:interface=127.0.0.1"
    cheap = ["--argon2-time", "1", "--argon2-memory", "64", "--argon2-lanes", "1"]
    args = ["--listen", loopback, *cheap]
    with running_daemon(args, tmp_path) as daemon:
        alice = LineClient.tcp(daemon.ports[loopback])
        alice.register("alice")
        alice.send(f"/register {PASSWORD} {PASSWORD}")
        alice.expect("INFO alice is registered to you")
        alice.send("read this")
        alice.expect("MSG #lobby alice read this")
        alice.send("/history 1")
        seen = parse_server_line(alice.expect("HISTORY ")).words[1]
        alice.send(f"/read #lobby {seen}")
        assert alice.expect("READ ") == f"READ #lobby {seen}"
        alice.send("not this")
        alice.expect("MSG #lobby alice not this")
        daemon.terminate()  # a clean stop: everything is written
    with running_daemon(args, tmp_path) as daemon:
        phone = LineClient.tcp(daemon.ports[loopback])
        phone.register("phone")
        phone.send(f"/identify alice {PASSWORD}")
        phone.expect("INFO You are identified as alice.")
        assert phone.read_line() == f"READ #lobby {seen}"
        missed = parse_server_line(phone.read_line())
        assert (missed.verb, missed.text) == ("HISTORY", "not this")
        assert phone.read_line() == "ENDHISTORY #lobby 1"
