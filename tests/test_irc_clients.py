"""What real IRC clients (WeeChat, irssi) showed wrong on chatd (docs/clients.md).

Each test is one thing a client displayed from the wire: the away status of a
device that attaches to an away user, the MOTD's "no room yet" to a user in
rooms, LUSERS counting a user's other connections as unknown.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, lines
from test_devices import registered
from test_devices_irc import sasl
from twisted.internet.task import Clock

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def test_a_device_attaching_to_an_away_user_is_told_it_is_away(
    factory: ChatFactory,
) -> None:
    """alice is away on the line door; irssi logs in with SASL and attaches:
    after its JOIN burst it gets 306, so its status bar says away (as after
    its own AWAY); not away, no 306."""
    line = registered(factory, "alice")
    line[0].dataReceived(b"/away in a meeting\r\n")
    _, out = sasl(factory, "alice_w")
    got = lines(out)
    nowaway = [i for i, text in enumerate(got) if " 306 alice " in text]
    assert nowaway and got[nowaway[0]].endswith(":You have been marked as being away")
    last_join = max(i for i, text in enumerate(got) if " JOIN " in text)
    assert nowaway[0] > last_join
    line[0].dataReceived(b"/away\r\n")
    _, back = sasl(factory, "alice_h")
    assert not [text for text in lines(back) if " 306 " in text]


def test_the_motd_says_no_room_yet_only_to_a_user_in_none(
    factory: ChatFactory,
) -> None:
    """An attached device is in alice's rooms: its MOTD does not tell it that it
    is in no room yet (the JOINs right after would contradict it)."""
    registered(factory, "alice")
    _, out = sasl(factory, "alice_w")
    motd = [text for text in lines(out) if " 372 " in text]
    assert motd and not [text for text in motd if "no room yet" in text]
    assert [text for text in motd if "Rooms: #lobby (1)" in text]


def test_lusers_counts_a_users_other_connections_as_its_own(
    factory: ChatFactory,
) -> None:
    """alice on the line door and two SASL devices: three connections, one
    user, nobody unregistered: 253 says 0, not 2."""
    registered(factory, "alice")
    sasl(factory, "alice_w")
    proto, out = sasl(factory, "alice_h")
    lines(out)
    proto.dataReceived(b"LUSERS\r\n")
    unknown = [text for text in lines(out) if " 253 " in text]
    assert unknown == [":chatd 253 alice 0 :unknown connection(s)"]
