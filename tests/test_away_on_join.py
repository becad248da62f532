"""Who is already away, told on join (docs/protocol.md, Away on join).

AWAY lines go out when someone's away state changes; a connection that
arrives later is told who already is: right after its own JOIN (a /join,
#lobby at registration, the attach burst), in /who's answer, and a room is
told that someone joined away. The model decides who (chatd.model.away); the
line door spells it, the web door with it; IRC has its own words (WHO's G,
301 on PRIVMSG and WHOIS, away-notify after an away user's JOIN).
"""

from __future__ import annotations

import pytest
from helpers import RecordingClient, connect, lines, make_factory, open_connection
from irc_helpers import make_server, registered
from test_client import Client, FakeConnector, Loopback, RecordingView
from test_devices import burst, log_in, say
from test_devices import factory as factory  # noqa: F401 (the fixture)
from test_devices import registered as registered_line
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from web_helpers import FakeBrowser, make_site

from chatd.client.client import ClientSession
from chatd.factory import ChatFactory
from chatd.model.away import away_members
from chatd.model.chat import Chat
from chatd.model.names import fold

pytestmark = pytest.mark.dated


def test_the_model_names_the_away_members_once_each_in_join_order() -> None:
    """away_members: room by room, each in join order, once, never me."""
    chat = Chat()
    users = {nick: chat.register(nick, RecordingClient()) for nick in "abcd"}
    for nick in "dcba":
        chat.join(users[nick], "#x")
    for nick in "abc":
        chat.join(users[nick], "#lobby")
    for nick in "bcd":
        chat.set_away(users[nick], f"{nick} out")
    rooms = [chat.rooms[fold("#lobby")], chat.rooms[fold("#x")]]
    assert [u.nick for u in away_members(rooms, users["c"])] == ["b", "d"]
    assert [u.nick for u in away_members(rooms)] == ["b", "c", "d"]
    chat.set_away(users["b"], "")
    assert [u.nick for u in away_members(rooms, users["a"])] == ["c", "d"]


def test_a_joiner_is_told_who_is_away_right_after_its_join(
    factory: ChatFactory,
) -> None:
    """bob and carol are in #dev, carol away: alice's /join #dev gets JOIN, then
    AWAY carol (hers alone), then the backfill; bob sees only the JOIN."""
    bob, carol = connect(factory, "bob"), connect(factory, "carol")
    say(bob, "/join #dev")
    say(bob, "before alice came")
    say(carol, "/join #dev")
    say(carol, "/away at the dentist")
    alice = connect(factory, "alice")
    for conn in (alice, bob, carol):
        lines(conn[1])
    say(alice, "/join #dev")
    got = lines(alice[1])
    assert got[:2] == ["JOIN #dev alice", "AWAY carol at the dentist"]
    assert got[2].startswith("HISTORY #dev ") and got[-1] == "ENDHISTORY #dev 1"
    assert lines(bob[1]) == ["JOIN #dev alice"]
    say(alice, "/join #dev")  # a member already: nothing said again
    assert [text for text in lines(alice[1]) if text.startswith("AWAY")] == []


def test_registration_tells_who_in_lobby_is_away(factory: ChatFactory) -> None:
    """A new user's JOIN #lobby is followed by AWAY for each away member."""
    bob = connect(factory, "bob")
    say(bob, "/away gone fishing")
    proto, out = open_connection(factory, port=42000)
    out.clear()
    proto.dataReceived(b"alice\r\n")
    got = lines(out)
    at = got.index("JOIN #lobby alice")
    assert got[at + 1] == "AWAY bob gone fishing"


def test_an_away_joiner_is_shown_away_to_the_room(factory: ChatFactory) -> None:
    """bob, away, joins #dev: alice there gets JOIN then AWAY bob."""
    alice, bob = connect(factory, "alice"), connect(factory, "bob")
    say(alice, "/join #dev")
    say(bob, "/away lunch")
    lines(alice[1])
    say(bob, "/join #dev")
    assert lines(alice[1]) == ["JOIN #dev bob", "AWAY bob lunch"]


def test_who_lists_who_is_away_after_users(factory: ChatFactory) -> None:
    """/who #lobby: USERS, then AWAY for each away member (the asker too)."""
    alice, bob, carol = (connect(factory, nick) for nick in ("alice", "bob", "carol"))
    say(carol, "/away brb")
    say(alice, "/away lunch")
    lines(alice[1])
    say(alice, "/who")
    assert lines(alice[1]) == [
        "USERS #lobby alice bob carol",
        "AWAY alice lunch",
        "AWAY carol brb",
    ]
    del bob


def test_an_attaching_device_is_told_who_is_away_once_each(
    factory: ChatFactory,
) -> None:
    """alice is in #lobby and #dev with bob (away) and carol (away, #dev only):
    the phone's burst is the JOINs, then AWAY bob and AWAY carol once each, then
    alice's own AWAY, then the catch-up."""
    laptop = registered_line(factory, "alice")
    bob, carol = connect(factory, "bob"), connect(factory, "carol")
    for conn in (laptop, bob, carol):
        say(conn, "/join #dev")
    say(carol, "/part #lobby")
    say(bob, "/away out")
    say(carol, "/away in a meeting")
    say(laptop, "/away on the train")
    phone = log_in(factory, "alice")
    said = burst(lines(phone[1]))
    assert said[1:] == [
        "JOIN #lobby alice",
        "JOIN #dev alice",
        "AWAY bob out",
        "AWAY carol in a meeting",
        "AWAY alice on the train",
    ]


def test_the_web_door_tells_a_joiner_the_same(factory: ChatFactory) -> None:
    """The web door shares the line door's words: after the page's JOIN #lobby
    and its /join #dev, AWAY bob, one text message a line."""
    bob = connect(factory, "bob")
    say(bob, "/join #dev")
    say(bob, "/away gone")
    browser = FakeBrowser(make_site(factory))
    browser.lines()
    browser.send("alice")
    got = browser.lines()
    assert got[got.index("JOIN #lobby alice") + 1] == "AWAY bob gone"
    browser.send("/join #dev")
    assert browser.lines()[:2] == ["JOIN #dev alice", "AWAY bob gone"]


# -- IRC: WHO's flags, 301 on PRIVMSG and WHOIS ---------------------------------------


def test_irc_who_says_g_for_away_and_whois_gives_301() -> None:
    """A line user away is G in WHO (H once back); WHOIS and PRIVMSG give 301."""
    server = make_server()
    alice = registered(server, "alice")
    carol = server.chat.register("carol", RecordingClient(), host="192.0.2.7")
    server.chat.join(carol, "#a")
    server.chat.set_away(carol, "at lunch")
    alice.line("JOIN #a")
    alice.lines()
    alice.line("WHO #a")
    assert alice.lines()[1] == (
        ":irc.test 352 alice #a carol 192.0.2.7 irc.test carol G@ :0 carol"
    )
    alice.line("WHOIS carol")
    got = alice.lines()
    assert ":irc.test 301 alice carol :at lunch" in got
    alice.line("PRIVMSG carol :hi")
    assert alice.lines() == [":irc.test 301 alice carol :at lunch"]
    server.chat.set_away(carol, "")
    alice.line("WHO carol")
    assert " carol H :0 carol" in alice.lines()[0]


# -- chatd-tk's state, through a real LineConnection -----------------------------------


def test_chatd_tk_shows_who_is_away_from_its_join_and_forgets_on_reconnect(
    clock: Clock,
) -> None:
    """bob is away before chatd-tk connects: its state has him away right after
    its JOIN #lobby (his row greys); a new connection forgets what the last one
    heard (bob came back meanwhile: the server tells nobody of him again)."""
    factory = make_factory(clock)
    bob = connect(factory, "bob")
    say(bob, "/away at lunch")
    view, dialer = RecordingView(), FakeConnector()
    tk = Client(ClientSession(view, clock, dialer), view, clock, dialer)
    tk.session.connect("127.0.0.1", 5501, "alice")
    server = Loopback(tk, factory)
    server.carry()
    state = tk.session.state
    assert state.away == {"bob": "at lunch"}
    assert state.conversations["#lobby"].member_names() == ["alice", "bob"]
    say(bob, "/away")
    server.carry()
    assert state.away == {}
    say(bob, "/away again")
    server.carry()
    server.server.connectionLost(Failure(ConnectionDone()))
    tk.drop()
    say(bob, "/away")  # back while chatd-tk was away: nobody tells it
    (retry,) = clock.getDelayedCalls()
    clock.advance(retry.getTime() - clock.seconds())
    Loopback(tk, factory).carry()
    assert tk.session.phase.name == "REGISTERED" and state.away == {}


# -- bounds --------------------------------------------------------------------------


def test_who_was_told_of_an_away_message_is_bounded() -> None:
    """An away user's "told once" record (Chat.away_reply) holds AWAY_TOLD_MAX
    senders at most: past it, it starts again (a sender may be told twice)."""
    from chatd.model.away import AWAY_TOLD_MAX

    chat = Chat()
    alice = chat.register("alice", RecordingClient())
    chat.set_away(alice, "always on")
    senders = [
        chat.register(f"s{n}", RecordingClient()) for n in range(AWAY_TOLD_MAX + 1)
    ]
    assert all(chat.away_reply(sender, alice) for sender in senders[:AWAY_TOLD_MAX])
    assert chat.away_reply(senders[0], alice) == ""  # told once already
    assert len(chat.away_told[alice]) == AWAY_TOLD_MAX
    assert chat.away_reply(senders[-1], alice) == "always on"
    assert len(chat.away_told[alice]) == 1
