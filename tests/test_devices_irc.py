"""Several devices on the IRC door (docs/irc.md, Several devices).

Two IRC connections that log in with SASL PLAIN to one account, and a line
connection of the same account, are one user: the second and third attach
(the JOIN burst, NAMES), each sees what the others say, echo-message decides
only for the connection that typed it; NickServ SET ALWAYS-ON.
"""

from __future__ import annotations

import base64

import pytest
from helpers import CHEAP, connect, disconnect, lines
from test_devices import PASSWORD, registered
from test_irc_protocol import irc_connect, irc_open
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.protocol import IrcConnection
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def sasl(
    factory: ChatFactory, nick: str, *caps: str
) -> tuple[IrcConnection, StringTransport]:
    """An IRC client that logs in with SASL PLAIN as account alice."""
    proto, out = irc_open(factory)
    plain = base64.b64encode(f"alice\0alice\0{PASSWORD}".encode()).decode()
    proto.dataReceived(
        (
            f"CAP LS 302\r\nCAP REQ :{' '.join(('sasl', *caps))}\r\n"
            f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nAUTHENTICATE PLAIN\r\n"
            f"AUTHENTICATE {plain}\r\nCAP END\r\n"
        ).encode()
    )
    return proto, out


def test_two_sasl_connections_and_a_line_one_are_one_user(
    factory: ChatFactory,
) -> None:
    """alice is on the line door in #lobby and #dev; irssi at work logs in with
    SASL (asking for nick alice_w): it is alice, with JOIN #lobby and #dev and
    their NAMES; a second SASL connection too. bob sees one alice; what bob says
    reaches all three; what alice says on IRC reaches bob, the line connection
    and the other IRC connection, not the one that typed it (no echo-message)."""
    line = registered(factory, "alice")
    line[0].dataReceived(b"/join #dev\r\n")
    bob = connect(factory, "bob")
    bob[0].dataReceived(b"/join #dev\r\n")
    lines(line[1]), lines(bob[1])
    work, w_out = sasl(factory, "alice_w")
    got = lines(w_out)
    assert any(" 001 alice " in text for text in got)
    joins = [text for text in got if " JOIN " in text]
    assert [text.split(" JOIN ")[1] for text in joins] == ["#lobby", "#dev"]
    assert any(" 353 alice = #dev :" in text and "bob" in text for text in got)
    home, h_out = sasl(factory, "alice")
    lines(h_out)
    assert work.user is home.user is line[0].user
    assert lines(bob[1]) == [] and lines(line[1]) == []
    assert len(factory.chat.users) == 2
    bob[0].dataReceived(b"/join #dev\r\nhello #dev\r\n")
    said = ":bob!bob@"
    assert any(
        text.startswith(said) and "PRIVMSG #dev :hello #dev" in text
        for text in lines(w_out)
    )
    assert any("PRIVMSG #dev :hello #dev" in text for text in lines(h_out))
    assert lines(line[1])[-1] == "MSG #dev bob hello #dev"
    lines(bob[1])
    work.dataReceived(b"PRIVMSG #dev :from work\r\n")
    assert lines(bob[1]) == ["MSG #dev alice from work"]
    assert lines(line[1]) == ["MSG #dev alice from work"]
    assert [t for t in lines(h_out) if "from work" in t]
    assert lines(w_out) == []  # the typing connection: no echo-message
    line[0].dataReceived(b"/join #dev\r\nfrom the line\r\n")
    assert [t for t in lines(w_out) if "from the line" in t]


def test_an_attached_irc_connection_gets_each_rooms_latest_as_a_join_does(
    factory: ChatFactory,
) -> None:
    """The JOIN burst of a SASL attach plays each room's latest messages back,
    as a JOIN does, to a client that does not ask with CHATHISTORY (The Lounge
    showed an empty #lobby without it); one that asks gets none unasked."""
    line = registered(factory, "alice")
    line[0].dataReceived(b"/join #dev\r\nsaid before the laptop came\r\n")
    lines(line[1])
    plain, p_out = sasl(factory, "alice_w")
    got = lines(p_out)
    joined = next(at for at, text in enumerate(got) if text.endswith(" JOIN #dev"))
    replayed = [text for text in got[joined:] if "said before the laptop came" in text]
    assert len(replayed) == 1 and " #dev :" in replayed[0]
    asks, a_out = sasl(factory, "alice_x", "draft/chathistory")
    assert not [text for text in lines(a_out) if "said before the laptop" in text]


def test_sasl_for_an_account_nobody_uses_registers_as_before(
    factory: ChatFactory,
) -> None:
    """SASL to alice's account while alice is not connected: a user of its own,
    under the nickname asked for."""
    first = registered(factory, "alice")
    first[0].dataReceived(b"/nick alice_old\r\n")
    proto, out = sasl(factory, "alice")
    assert proto.user is not None and proto.user is not first[0].user
    assert proto.user.nick == "alice" and proto.user.account == "alice"


def test_nickserv_set_always_on(factory: ChatFactory) -> None:
    """NS SET ALWAYS-ON ON: a NickServ notice, and the user stays after QUIT."""
    line = registered(factory, "alice")
    bob = connect(factory, "bob")
    proto, out = sasl(factory, "alice")
    lines(out)
    proto.dataReceived(b"NS SET ALWAYS-ON ON\r\n")
    assert "Always-on is on" in lines(out)[0]
    anon, a_out = irc_connect(factory, "carol")
    anon.dataReceived(b"NS SET ALWAYS-ON ON\r\n")
    assert lines(a_out)[0].endswith(
        "Always-on is for identified users; identify first "
        "(/msg NickServ IDENTIFY <password>), or register your nickname if it "
        "has no account yet."
    )
    line[0].dataReceived(b"/quit\r\n")
    line[0].connectionLost()
    proto.dataReceived(b"QUIT :bye\r\n")
    proto.connectionLost()
    assert "alice" in factory.chat.users
    assert lines(bob[1])[-1].startswith("AWAY alice not connected")


def test_away_reaches_the_other_connections_not_the_one_that_set_it(
    factory: ChatFactory,
) -> None:
    """AWAY on one SASL connection (away-notify, no echo-message): 306 to it, the
    AWAY line to the other IRC connection (away-notify) and the line connection."""
    line = registered(factory, "alice")
    one, one_out = sasl(factory, "alice", "away-notify")
    two, two_out = sasl(factory, "alice", "away-notify")
    lines(one_out), lines(two_out), lines(line[1])
    one.dataReceived(b"AWAY :lunch\r\n")
    assert [text.split(" ", 2)[1] for text in lines(one_out)] == ["306"]
    assert lines(two_out)[0].endswith(" AWAY :lunch")
    assert lines(line[1]) == ["AWAY alice lunch"]


def test_sasl_attaches_to_the_accounts_user_under_another_nickname(
    factory: ChatFactory,
) -> None:
    """As Ergo: a SASL client may hold a nickname apart from its account's name
    (alice as alice_w). A second SASL connection of the account asking for that
    nickname attaches to it (one user, no 433); one asking for a third nickname
    while neither alice nor it is held by the account gets a user of its own."""
    first = registered(factory, "alice")  # the account; then its user goes
    disconnect(first[0])
    assert not factory.chat.users
    work, w_out = sasl(factory, "alice_w")
    assert work.user is not None and work.user.nick == "alice_w"
    assert work.user.account == "alice"
    lines(w_out)
    home, h_out = sasl(factory, "alice_w")
    got = lines(h_out)
    assert any(" 001 alice_w " in text for text in got)
    assert not any(" 433 " in text for text in got)
    assert home.user is work.user
    assert len(factory.chat.users) == 1
    other, o_out = sasl(factory, "alice_h")
    assert other.user is not None and other.user is not work.user
    assert other.user.nick == "alice_h" and len(factory.chat.users) == 2


def test_authenticate_while_registering_under_cap_needs_no_cap_req(
    factory: ChatFactory,
) -> None:
    """As Ergo (irctest's bouncer tests): after CAP LS, AUTHENTICATE works before
    registration without CAP REQ sasl; once registered, only with the cap."""
    registered(factory, "alice")  # the account, with a first connection
    proto, out = irc_open(factory)
    plain = base64.b64encode(f"alice\0alice\0{PASSWORD}".encode()).decode()
    proto.dataReceived(
        (
            "CAP LS 302\r\nAUTHENTICATE PLAIN\r\n"
            f"AUTHENTICATE {plain}\r\nNICK alice\r\nUSER a 0 * a\r\nCAP END\r\n"
        ).encode()
    )
    got = lines(out)
    assert any(" 903 " in text for text in got), got
    assert proto.user is not None and proto.user.account == "alice"
    late, l_out = irc_connect(factory, "carol")
    lines(l_out)
    late.dataReceived(b"AUTHENTICATE PLAIN\r\n")
    assert any(" 904 " in text for text in lines(l_out))
