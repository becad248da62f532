"""Private history on the IRC door: msgid on kept private messages, CHATHISTORY
on a nickname, TARGETS with conversations (docs/protocol.md, Private history).

IrcConnection on StringTransport beside line users, a MemoryHistory on a Clock,
cheap Argon2 run inline.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, connect, lines
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.irc.protocol import IrcConnection
from chatd.line.wire import utc_time
from chatd.protocol import LineConnection
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
PASSWORD = "s3cret-pw"
FULL = ("batch", "message-tags", "server-time", "draft/chathistory", "account-tag")


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock, store)


def irc_registered(
    factory: ChatFactory, nick: str, *caps: str
) -> tuple[IrcConnection, StringTransport]:
    """An IRC client that registers its nickname with NickServ."""
    proto, out = irc_connect(factory, nick, *caps)
    proto.dataReceived(f"PRIVMSG NickServ :REGISTER {PASSWORD}\r\n".encode())
    assert proto.user is not None and proto.user.account == nick, lines(out)
    out.clear()
    return proto, out


def line_registered(
    factory: ChatFactory, nick: str
) -> tuple[LineConnection, StringTransport]:
    proto, out = connect(factory, nick)
    proto.dataReceived(f"/register {PASSWORD} {PASSWORD}\r\n".encode())
    assert proto.user is not None and proto.user.account == nick, lines(out)
    out.clear()
    return proto, out


def batch(received: list[str], target: str) -> list[str]:
    """Check one chathistory batch for target; return the lines inside."""
    opening, *inside, closing = received
    start = parse_message(opening)
    assert start.params[1:] == ("chathistory", target), opening
    assert parse_message(closing).params == ("-" + start.params[0][1:],), closing
    return inside


def test_a_kept_private_message_carries_its_msgid_live(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """A kept PRIVMSG has the msgid and time it is kept with; between two users
    who are not identified it has a live msgid (for replies), which no
    history holds (it is not kept)."""
    alice, a_out = irc_registered(factory, "alice", "message-tags", "server-time")
    bob, _ = line_registered(factory, "bob")
    dave, _ = connect(factory, "dave")
    erin, e_out = irc_connect(factory, "erin", "message-tags", "server-time")
    bob.dataReceived(b"/msg alice kept\r\n")
    dave.dataReceived(b"/msg alice kept for alice\r\n")
    kept, one_sided = lines(a_out)
    (entry,) = store.conversations["alice", "bob"]
    tags = parse_message(kept).tags
    assert tags == {"msgid": str(entry.id), "time": utc_time(entry.time)}
    assert parse_message(kept).params == ("alice", "kept")
    (entry,) = store.conversations["alice", "~dave"]
    assert parse_message(one_sided).tags["msgid"] == str(entry.id)
    dave.dataReceived(b"/msg erin not kept\r\n")
    (unkept,) = lines(e_out)
    live = int(parse_message(unkept).tags["msgid"])
    assert live not in {e.id for kept in store.conversations.values() for e in kept}
    assert ("dave", "erin") not in store.conversations


def test_chathistory_on_a_nickname_replays_the_conversation(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """CHATHISTORY LATEST bob: the asker's own messages come from its nickname
    to bob, bob's from bob to the asker, with msgid, time and the sending
    account; BEFORE and AFTER a msgid page through it."""
    alice, a_out = irc_registered(factory, "alice", *FULL)
    bob, _ = line_registered(factory, "bob")
    alice.dataReceived(b"PRIVMSG bob :one\r\n")
    clock.advance(0.01)
    bob.dataReceived(b"/msg alice two\r\n")
    clock.advance(0.01)
    alice.dataReceived(b"PRIVMSG bob :\x01ACTION three\x01\r\n")
    alice.dataReceived(b"NICK alicia\r\n")
    a_out.clear()
    alice.dataReceived(b"CHATHISTORY LATEST bob * 10\r\n")
    inside = [parse_message(text) for text in batch(lines(a_out), "bob")]
    entries = store.conversations["alice", "bob"]
    assert [((m.source or "").split("!")[0], m.params) for m in inside] == [
        ("alicia", ("bob", "one")),
        ("bob", ("alicia", "two")),
        ("alicia", ("bob", "\x01ACTION three\x01")),
    ]
    assert [m.tags["msgid"] for m in inside] == [str(e.id) for e in entries]
    assert [m.tags["account"] for m in inside] == ["alice", "bob", "alice"]
    assert inside[0].tags["time"] == utc_time(entries[0].time)
    alice.dataReceived(f"CHATHISTORY BEFORE bob msgid={entries[2].id} 1\r\n".encode())
    assert [m.params[1] for m in map(parse_message, batch(lines(a_out), "bob"))] == [
        "two"
    ]
    alice.dataReceived(f"CHATHISTORY AFTER BOB msgid={entries[0].id} 5\r\n".encode())
    inside = [parse_message(text) for text in batch(lines(a_out), "BOB")]
    assert [m.params[1] for m in inside] == ["two", "\x01ACTION three\x01"]


def test_chathistory_is_empty_without_two_accounts(
    factory: ChatFactory,
) -> None:
    """Not identified, a third account, or a nickname one never wrote with: the
    empty batch of a conversation with nothing in it (nothing said about
    anyone else's)."""
    alice, _ = line_registered(factory, "alice")
    bob, _ = line_registered(factory, "bob")
    alice.dataReceived(b"/msg bob between us\r\n")
    dave, d_out = irc_connect(factory, "dave", *FULL)
    dave.dataReceived(b"CHATHISTORY LATEST alice * 10\r\n")
    assert batch(lines(d_out), "alice") == []
    carol, c_out = irc_registered(factory, "carol", *FULL)
    carol.dataReceived(b"CHATHISTORY LATEST dave * 10\r\n")
    assert batch(lines(c_out), "dave") == []
    carol.dataReceived(b"CHATHISTORY LATEST alice * 10\r\n")  # a third account
    assert batch(lines(c_out), "alice") == []


def test_a_nickname_that_changed_hands_reveals_nothing_on_irc(
    factory: ChatFactory,
) -> None:
    """mallory takes bob's nickname after bob left: not identified she gets
    nothing; identified to her own account, her own conversation (none)."""
    alice, _ = line_registered(factory, "alice")
    bob, _ = line_registered(factory, "bob")
    bob.dataReceived(b"/msg alice for alice only\r\n/quit\r\n")
    mallory, m_out = irc_connect(factory, "bob", *FULL)
    mallory.dataReceived(b"CHATHISTORY LATEST alice * 10\r\n")
    assert batch(lines(m_out)[-2:], "alice") == []  # after NickServ's notice
    mallory.dataReceived(b"NICK mallory\r\n")
    mallory.dataReceived(f"PRIVMSG NickServ :REGISTER {PASSWORD}\r\n".encode())
    mallory.dataReceived(b"NICK bob\r\n")
    assert mallory.user is not None and mallory.user.account == "mallory"
    m_out.clear()
    mallory.dataReceived(b"CHATHISTORY LATEST alice * 10\r\n")
    assert batch(lines(m_out), "alice") == []


def test_targets_lists_private_conversations_beside_rooms(
    clock: Clock, factory: ChatFactory
) -> None:
    """TARGETS names each conversation of the asker's account by the other
    account, with its latest message's time, among the rooms, oldest first."""
    alice, a_out = irc_registered(factory, "alice", *FULL)
    bob, _ = line_registered(factory, "bob")
    carol, _ = line_registered(factory, "carol")
    alice.dataReceived(b"JOIN #dev\r\n")
    times = {}
    for speaker, command, name in [
        (bob, b"/msg alice hi\r\n", "bob"),
        (alice, b"PRIVMSG #dev :hi\r\n", "#dev"),
        (carol, b"/msg alice hi\r\n", "carol"),
    ]:
        clock.advance(0.01)
        speaker.dataReceived(command)
        times[name] = utc_time(int(clock.seconds() * 1000))
    bob.dataReceived(b"/msg carol not alice's\r\n")
    a_out.clear()
    alice.dataReceived(
        b"CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z "
        b"timestamp=2262-01-01T00:00:00.000Z 100\r\n"
    )
    listed = [parse_message(text).params for text in lines(a_out)[1:-1]]
    assert listed == [
        ("TARGETS", "bob", times["bob"]),
        ("TARGETS", "#dev", times["#dev"]),
        ("TARGETS", "carol", times["carol"]),
    ]
    dave, d_out = irc_connect(factory, "dave", *FULL)
    dave.dataReceived(b"JOIN #dev\r\n")
    d_out.clear()
    dave.dataReceived(
        b"CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z "
        b"timestamp=2262-01-01T00:00:00.000Z 100\r\n"
    )
    assert [parse_message(text).params[1] for text in lines(d_out)[1:-1]] == ["#dev"]


def test_a_conversation_with_someone_not_identified_is_the_identified_sides(
    factory: ChatFactory,
) -> None:
    """alice (identified) and dave (not): CHATHISTORY dave replays it for alice,
    dave's lines without an account tag; dave has none to read."""
    alice, a_out = irc_registered(factory, "alice", *FULL)
    dave, d_out = irc_connect(factory, "dave", *FULL)
    alice.dataReceived(b"PRIVMSG dave :hello dave\r\n")
    dave.dataReceived(b"PRIVMSG alice :hello alice\r\n")
    a_out.clear(), d_out.clear()
    alice.dataReceived(b"CHATHISTORY LATEST dave * 10\r\n")
    inside = [parse_message(text) for text in batch(lines(a_out), "dave")]
    assert [(m.source, m.params, m.tags.get("account")) for m in inside] == [
        ("alice", ("dave", "hello dave"), "alice"),
        ("dave", ("alice", "hello alice"), None),
    ]
    dave.dataReceived(b"CHATHISTORY LATEST alice * 10\r\n")
    assert batch(lines(d_out), "alice") == []
