"""NickServ IDENTIFY after registration attaches (docs/irc.md, NickServ IDENTIFY
from a second device; chatd.irc.reattach).

alice is connected and identified; irssi registers as alice_ (alice is taken)
and then says /msg NickServ IDENTIFY alice <password>: that connection becomes
one more of alice's: 900, a PART of its own channels and NICK alice_ -> alice to
it alone, the JOIN burst of alice's channels; the others see alice_ QUIT and
nothing of alice.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, connect, lines
from test_devices import PASSWORD, registered
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP, max_devices=2)
    return ChatFactory(config, clock, store)


def test_nickserv_identify_attaches_to_the_connected_user(
    factory: ChatFactory,
) -> None:
    line = registered(factory, "alice")
    line[0].dataReceived(b"/join #dev\r\n")
    bob = connect(factory, "bob")
    bob[0].dataReceived(b"/join #dev\r\n")
    irc, out = irc_connect(factory, "alice_")
    irc.dataReceived(b"JOIN #dev,#irc\r\n")
    old_user = irc.user
    lines(out), lines(line[1]), lines(bob[1])
    irc.dataReceived(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}\r\n".encode())
    got = lines(out)
    assert " 900 alice_ " in got[0]
    words = [text.split(" ", 3)[1:3] for text in got]
    assert ["PART", "#dev"] in words and ["PART", "#irc"] in words
    nick = [text for text in got if " NICK " in text]
    assert nick == [nick[0]] and nick[0].startswith(":alice_!")
    assert nick[0].endswith(" NICK alice") or nick[0].endswith(" NICK :alice")
    joins = [text.split(" JOIN ")[1] for text in got if " JOIN " in text]
    assert joins == ["#lobby", "#dev"]
    assert got.index(nick[0]) < got.index(
        next(text for text in got if " JOIN " in text)
    )
    assert any(" 353 alice = #dev :" in text and "bob" in text for text in got)
    assert got[-1].endswith("this connection is one more of alice's.")
    assert irc.user is line[0].user and irc.user is not old_user
    assert "alice_" not in factory.chat.users and len(factory.chat.users) == 2
    # Those sharing a room with alice_ see it go, and nothing of alice.
    assert lines(bob[1]) == ["QUIT alice_ Logged in as alice"]
    assert lines(line[1]) == ["QUIT alice_ Logged in as alice"]
    assert not [text for text in got if " QUIT " in text]
    bob[0].dataReceived(b"/join #dev\r\nhello\r\n")
    assert any("PRIVMSG #dev :hello" in text for text in lines(out))
    lines(bob[1]), lines(line[1])
    irc.dataReceived(b"PRIVMSG #dev :from irssi\r\n")
    assert lines(bob[1]) == ["MSG #dev alice from irssi"]
    assert lines(line[1]) == ["MSG #dev alice from irssi"]
    # QUIT on the IRC connection closes it alone: alice stays.
    irc.dataReceived(b"QUIT :bye\r\n")
    irc.connectionLost()
    assert factory.chat.users["alice"] is line[0].user
    assert lines(bob[1]) == []


def test_a_wrong_password_attaches_nothing(factory: ChatFactory) -> None:
    line = registered(factory, "alice")
    irc, out = irc_connect(factory, "alice_")
    lines(out)
    irc.dataReceived(b"PRIVMSG NickServ :IDENTIFY alice not-the-password\r\n")
    got = lines(out)
    assert len(got) == 1 and "NOTICE alice_ " in got[0]
    assert "wrong password" in got[0].lower()
    assert irc.user is not None and irc.user.nick == "alice_"
    assert irc.user is not line[0].user and not irc.user.account


def test_past_max_devices_refuses_with_a_notice(factory: ChatFactory) -> None:
    line = registered(factory, "alice")
    second, s_out = irc_connect(factory, "alice_2")
    second.dataReceived(f"NS IDENTIFY alice {PASSWORD}\r\n".encode())
    assert second.user is line[0].user
    third, t_out = irc_connect(factory, "alice_3")
    lines(t_out)
    third.dataReceived(f"NS IDENTIFY alice {PASSWORD}\r\n".encode())
    got = lines(t_out)
    assert len(got) == 1 and "connected from 2 devices" in got[0]
    assert third.user is not None and third.user.nick == "alice_3"
    assert not third.user.account


def test_identify_to_ones_own_nick_identifies_as_before(factory: ChatFactory) -> None:
    registered(factory, "alice")[0].dataReceived(b"/nick alice_old\r\n")
    irc, out = irc_connect(factory, "alice")
    lines(out)
    irc.dataReceived(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}\r\n".encode())
    got = lines(out)
    assert " 900 alice " in got[0] and "You are now identified for alice." in got[1]
    assert irc.user is not None and irc.user.account == "alice"
    assert [text for text in got if " NICK " in text or " JOIN " in text] == []
