"""draft/read-marker on the IRC door: MARKREAD (docs/irc.md, Read markers).

IrcConnection on StringTransport beside a line user of the same account, a
MemoryHistory on a Clock, cheap Argon2 run inline: a marker set on IRC by time
is the line door's READ, and one set with /read reaches IRC as MARKREAD.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, connect, lines
from test_irc_private_history import irc_registered
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.irc.protocol import IrcConnection
from chatd.line.wire import utc_time
from chatd.model.catch_up import position_at
from chatd.protocol import LineConnection
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
PASSWORD = "s3cret-pw"
CAP = "draft/read-marker"


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock, store)


def send(
    proto: LineConnection | IrcConnection, out: StringTransport, text: str
) -> list[str]:
    proto.dataReceived(text.encode() + b"\r\n")
    return lines(out)


def line_identified(
    factory: ChatFactory, nick: str, account: str
) -> tuple[LineConnection, StringTransport]:
    proto, out = connect(factory, nick)
    send(proto, out, f"/identify {account} {PASSWORD}")
    assert proto.user is not None and proto.user.account == account
    return proto, out


def test_the_cap_is_offered_with_history(factory: ChatFactory) -> None:
    """CAP LS lists draft/read-marker beside draft/chathistory."""
    proto, out = irc_connect(factory, "alice")
    assert CAP in " ".join(send(proto, out, "CAP LS 302"))


def test_markread_by_time_moves_the_accounts_marker_everywhere(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """MARKREAD #lobby timestamp=T marks everything received up to T: every IRC
    client of the account with the cap gets MARKREAD with T as given, the line
    connection READ with the position after those messages; an earlier time
    answers the marker as it is, to the asker only; MARKREAD <target> asks; a
    /read on the line door reaches IRC as its message's time."""
    alice, a_out = irc_registered(factory, "alice", CAP)
    laptop, l_out = line_identified(factory, "laptop", "alice")
    bob, b_out = connect(factory, "bob")
    send(bob, b_out, "first")
    clock.advance(5)
    send(bob, b_out, "second")
    lines(a_out), lines(l_out)
    first, second = store.rooms["#lobby"]
    (answer,) = send(alice, a_out, "MARKREAD #lobby")
    assert parse_message(answer).params == ("#lobby", "*")
    stamp = utc_time(first.time + 1000)  # after first, before second
    (moved,) = send(alice, a_out, f"MARKREAD #lobby timestamp={stamp}")
    assert parse_message(moved).command == "MARKREAD"
    assert parse_message(moved).params == ("#lobby", f"timestamp={stamp}")
    position = position_at(first.time + 1000)
    assert first.id < position < second.id
    assert lines(l_out) == [f"READ #lobby {position}"]
    earlier = utc_time(first.time - 1000)
    (kept,) = send(alice, a_out, f"MARKREAD #lobby timestamp={earlier}")
    assert parse_message(kept).params == ("#lobby", f"timestamp={stamp}")
    (asked,) = send(alice, a_out, "MARKREAD #LOBBY")
    assert parse_message(asked).params == ("#lobby", f"timestamp={stamp}")
    assert lines(l_out) == []
    send(laptop, l_out, f"/read #lobby {second.id}")
    (moved,) = lines(a_out)
    assert parse_message(moved).params == (
        "#lobby",
        f"timestamp={utc_time(second.time)}",
    )


def test_a_client_not_identified_has_markers_for_its_connection(
    factory: ChatFactory,
) -> None:
    """erin (no account) sets and reads her own markers (a room, a nickname);
    nobody else hears of them, and they go with her connection."""
    erin, e_out = irc_connect(factory, "erin", CAP)
    other, o_out = irc_connect(factory, "other", CAP)
    stamp = "2019-01-04T14:33:26.123Z"
    (moved,) = send(erin, e_out, f"MARKREAD #lobby timestamp={stamp}")
    assert parse_message(moved).params == ("#lobby", f"timestamp={stamp}")
    (moved,) = send(erin, e_out, f"MARKREAD Other timestamp={stamp}")
    assert parse_message(moved).params == ("Other", f"timestamp={stamp}")
    (asked,) = send(erin, e_out, "MARKREAD other")
    assert parse_message(asked).params == ("other", f"timestamp={stamp}")
    assert lines(o_out) == []
    (asked,) = send(other, o_out, "MARKREAD #lobby")
    assert parse_message(asked).params == ("#lobby", "*")
    line_user, l_out = connect(factory, "nobody")
    (refused,) = send(line_user, l_out, "/read #lobby 5")  # the line door: no
    assert refused.startswith("ERR not-identified ")


def test_markread_refusals(factory: ChatFactory) -> None:
    """No target: NEED_MORE_PARAMS; a bad time, `*` as a time, or setting a
    room that does not exist: INVALID_PARAMS; asking of one: `*`."""
    alice, a_out = irc_registered(factory, "alice", CAP)
    (refused,) = send(alice, a_out, "MARKREAD")
    assert parse_message(refused).params[:2] == ("MARKREAD", "NEED_MORE_PARAMS")
    for bad in ("timestamp=yesterday", "*"):
        (refused,) = send(alice, a_out, f"MARKREAD #lobby {bad}")
        assert parse_message(refused).params[:3] == (
            "MARKREAD",
            "INVALID_PARAMS",
            "#lobby",
        )
    (refused,) = send(alice, a_out, "MARKREAD #nowhere timestamp=2019-01-04T14:33:26Z")
    assert parse_message(refused).params[:3] == (
        "MARKREAD",
        "INVALID_PARAMS",
        "#nowhere",
    )
    (asked,) = send(alice, a_out, "MARKREAD #nowhere")
    assert parse_message(asked).params == ("#nowhere", "*")


def test_join_and_identify_send_the_markers(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """After JOIN a client with the cap gets the room's MARKREAD (before NAMES);
    after NickServ IDENTIFY, every marker of the account; one without the cap
    gets none."""
    laptop, l_out = connect(factory, "laptop")
    send(laptop, l_out, f"/register {PASSWORD} {PASSWORD}")
    send(laptop, l_out, "/join #dev")
    send(laptop, l_out, "hello dev")
    (said,) = store.rooms["#dev"]
    send(laptop, l_out, f"/read #dev {said.id}")
    # The laptop goes first: an IDENTIFY while it holds the nickname would
    # attach the phone to it (chatd.irc.reattach) instead of identifying.
    send(laptop, l_out, "/quit")
    phone, p_out = irc_connect(factory, "phone", CAP)
    answer = send(phone, p_out, f"PRIVMSG NickServ :IDENTIFY laptop {PASSWORD}")
    marks = [parse_message(text) for text in answer if " MARKREAD " in text]
    assert [m.params for m in marks] == [("#dev", f"timestamp={utc_time(said.time)}")]
    answer = send(phone, p_out, "JOIN #dev")
    commands = [parse_message(text).command for text in answer]
    assert commands[:2] == ["JOIN", "MARKREAD"]
    assert commands.index("MARKREAD") < commands.index("366")
    plain, o_out = irc_connect(factory, "plain")
    send(plain, o_out, f"PRIVMSG NickServ :IDENTIFY laptop {PASSWORD}")
    answer = send(plain, o_out, "JOIN #dev")
    assert not [text for text in answer if "MARKREAD" in text]


def test_a_client_without_chathistory_gets_what_it_missed_on_identify(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """After NickServ IDENTIFY, a client that does not ask with CHATHISTORY gets
    what came after the account's marker in each room it is in, as NOTICEs from
    the server (it has no batch), then each private conversation's; a client
    with draft/chathistory gets none of it (it asks)."""
    laptop, l_out = connect(factory, "laptop")
    send(laptop, l_out, f"/register {PASSWORD} {PASSWORD}")
    bob, b_out = connect(factory, "bob")
    send(bob, b_out, f"/register {PASSWORD} {PASSWORD}")
    for proto, out in ((laptop, l_out), (bob, b_out)):
        send(proto, out, "/join #dev")
    send(bob, b_out, "seen")
    (seen,) = store.rooms["#dev"]
    send(laptop, l_out, f"/read #dev {seen.id}")
    send(bob, b_out, "missed in dev")
    send(bob, b_out, "/msg laptop missed private")
    send(laptop, l_out, "/quit")  # else the phone's IDENTIFY attaches to it
    phone, p_out = irc_connect(factory, "phone")
    send(phone, p_out, "JOIN #dev")
    answer = send(phone, p_out, f"PRIVMSG NickServ :IDENTIFY laptop {PASSWORD}")
    texts = [parse_message(text).params[-1] for text in answer]
    at = texts.index("You are now identified for laptop.")
    assert texts[at + 1].startswith("Missed: 1 message in #dev, since ")
    assert texts[at + 2].endswith("<bob> missed in dev")
    assert parse_message(answer[at + 2]).params[0] == "#dev"
    assert texts[at + 3].startswith("Missed private: 1 message in bob, since ")
    assert texts[at + 4].endswith("<bob> missed private")
    assert parse_message(answer[at + 4]).params[0] == "phone"
    assert len(texts) == at + 5
    asks, a_out = irc_connect(factory, "asks", "draft/chathistory")
    answer = send(asks, a_out, f"PRIVMSG NickServ :IDENTIFY laptop {PASSWORD}")
    assert not [text for text in answer if "Missed" in text]
