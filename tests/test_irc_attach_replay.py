"""What a SASL login or an attach replays (docs/irc.md, Several devices).

A client that does not ask with CHATHISTORY is played back, once its JOIN
burst is done, what it missed since the account's read markers: the same
function NickServ IDENTIFY uses (chatd.irc.missed.replay_after, through
replay_on_login), a room without a marker getting its latest messages as a
JOIN's backfill; nothing twice. A client with draft/chathistory gets none of
it unasked.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, connect, lines
from test_devices import PASSWORD, registered
from test_devices_irc import sasl
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.model.times import utc_time
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def texts(got: list[str]) -> list[str]:
    """The last parameter of each IRC line."""
    return [parse_message(text).params[-1] for text in got]


def test_a_second_sasl_connection_is_replayed_what_was_missed_once(
    factory: ChatFactory, store: MemoryHistory, clock: Clock
) -> None:
    """alice's laptop logs in with SASL, joins #dev, reads up to "seen" (MARKREAD);
    bob says two more in #dev and one to alice privately, and one in #lobby.
    Her phone logs in with SASL (no chathistory): its burst (JOIN, NAMES) then,
    room by room, "The last message in #lobby" (no marker there: the backfill a
    JOIN gets), "Missed: 2 messages in #dev" with those two, and "Missed
    private: 1 message in bob": each once, "seen" not at all. A third SASL connection
    with draft/chathistory gets none of it (it asks)."""
    registered(factory, "alice")[0].dataReceived(b"/quit\r\n")
    bob = connect(factory, "bob")
    laptop, l_out = sasl(factory, "alice", "draft/read-marker")
    laptop.dataReceived(b"JOIN #lobby,#dev\r\n")
    bob[0].dataReceived(b"/join #dev\r\nseen\r\n")
    (seen,) = store.rooms["#dev"]
    laptop.dataReceived(f"MARKREAD #dev timestamp={utc_time(seen.time)}\r\n".encode())
    clock.advance(1)  # a marker is a time: what comes later is after it
    bob[0].dataReceived(b"missed one\r\nmissed two\r\n/msg alice psst\r\n")
    bob[0].dataReceived(b"/join #lobby\r\nin the lobby\r\n")
    lines(l_out)
    phone, p_out = sasl(factory, "alice_phone")
    got = lines(p_out)
    assert phone.user is laptop.user
    said = texts(got)
    last_names = max(at for at, text in enumerate(got) if " 366 " in text)
    replayed = said[last_names + 1 :]
    assert replayed[0].startswith("The last message in #lobby, since ")
    assert replayed[1].endswith("<bob> in the lobby")
    assert replayed[2].startswith("Missed: 2 messages in #dev, since ")
    assert replayed[3].endswith("<bob> missed one")
    assert replayed[4].endswith("<bob> missed two")
    assert replayed[5].startswith("Missed private: 1 message in bob, since ")
    assert replayed[6].endswith("<bob> psst")
    assert len(replayed) == 7
    assert not [text for text in said if text.endswith("<bob> seen")]
    joins = [text.split(" JOIN ")[1] for text in got if " JOIN " in text]
    assert joins == ["#lobby", "#dev"]  # the burst came first
    asks, a_out = sasl(factory, "alice_asks", "draft/chathistory")
    assert asks.user is laptop.user
    got = lines(a_out)
    assert not [text for text in texts(got) if "missed" in text or "psst" in text]


def test_sasl_to_an_account_nobody_uses_replays_its_missed_privates(
    factory: ChatFactory,
) -> None:
    """alice is not connected; bob's private message to her is kept with her
    account. Her SASL login, in no room yet, gets it after the welcome."""
    registered(factory, "alice")
    carol = connect(factory, "carol")
    carol[0].dataReceived(b"/msg alice while you were out\r\n")
    alice = factory.chat.users["alice"]
    factory.chat.quit(alice, "gone")
    proto, out = sasl(factory, "alice")
    assert proto.user is not None and proto.user.account == "alice"
    got = lines(out)
    said = texts(got)
    motd_end = next(at for at, text in enumerate(got) if " 376 " in text)
    assert said[motd_end + 1].startswith("Missed private: 1 message in carol, since ")
    assert said[motd_end + 2].endswith("<carol> while you were out")


def test_nickserv_identify_attach_replays_after_its_notice(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """An attach by NickServ IDENTIFY gets the same replay, after NickServ's
    notice; #dev has no marker: its latest, as a JOIN's backfill, once."""
    line = registered(factory, "alice")
    line[0].dataReceived(b"/join #dev\r\nfrom the laptop\r\n")
    irc, out = irc_connect(factory, "alice_")
    lines(out)
    irc.dataReceived(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}\r\n".encode())
    said = texts(lines(out))
    at = next(at for at, text in enumerate(said) if "one more of alice's" in text)
    assert said[at + 1].startswith("The last message in #dev, since ")
    assert said[at + 2].endswith("<alice> from the laptop")
    assert len(said) == at + 3
    assert len([text for text in said if "from the laptop" in text]) == 1


def test_a_room_read_to_its_end_gets_its_latest_as_a_join_does(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """#dev read up to its last message on the laptop: the phone's attach plays
    its latest as a JOIN's backfill (a client showing an empty channel looked
    broken, The Lounge's), once, with nothing said missed."""
    registered(factory, "alice")[0].dataReceived(b"/quit\r\n")
    bob = connect(factory, "bob")
    laptop, l_out = sasl(factory, "alice", "draft/read-marker")
    laptop.dataReceived(b"JOIN #dev\r\n")
    bob[0].dataReceived(b"/join #dev\r\nold news\r\n")
    (last,) = store.rooms["#dev"]
    laptop.dataReceived(f"MARKREAD #dev timestamp={utc_time(last.time)}\r\n".encode())
    phone, p_out = sasl(factory, "alice_phone")
    said = texts(lines(p_out))
    assert [text for text in said if "#dev, since" in text] == [
        next(text for text in said if text.startswith("The last message in #dev"))
    ]
    assert len([text for text in said if text.endswith("<bob> old news")]) == 1
    assert not [text for text in said if text.startswith("Missed")]


def test_the_replay_shares_half_the_send_queue(
    clock: Clock, store: MemoryHistory
) -> None:
    """Three rooms with 100 long messages each missed, --sendq 24 KiB: the
    replay stays within half of it, each room its share (the newest kept,
    as the line door's catch-up), so a client is never cut off by it."""
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP, sendq=24576)
    factory = ChatFactory(config, clock, store)
    line = registered(factory, "alice")
    bob = connect(factory, "bob")
    for room in ("#a", "#b", "#c"):
        line[0].dataReceived(f"/join {room}\r\n".encode())
        bob[0].dataReceived(f"/join {room}\r\n".encode())
        for n in range(100):
            bob[0].dataReceived(f"/join {room}\r\n{room} {n} {'x' * 300}\r\n".encode())
    lines(line[1]), lines(bob[1])
    phone, p_out = sasl(factory, "alice_phone")
    got = lines(p_out)
    names = max(at for at, text in enumerate(got) if " 366 " in text)
    replayed = got[names + 1 :]
    assert sum(len(text) + 2 for text in replayed) <= 24576 // 2
    for room in ("#a", "#b", "#c"):
        said = [text for text in replayed if f" {room} " in text]
        assert said[0].startswith(":chatd NOTICE") and f"{room} 99 " in said[-1]
        assert not [text for text in said if f"{room} 0 " in text]
    assert not p_out.disconnecting
