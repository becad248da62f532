"""The IRC door's commands over the chat model, with a fake session."""

from __future__ import annotations

from helpers import RecordingClient
from irc_helpers import FakeIrc, make_server, registered

from chatd.irc.commands import COMMANDS
from chatd.model.chat import Chat, Message


def test_registration_sends_welcome_isupport_lusers_motd() -> None:
    """NICK and USER give 001-005, LUSERS and a MOTD saying where people are."""
    session = FakeIrc(make_server())
    session.line("NICK alice")
    assert session.lines() == []
    session.line("USER alice 0 * :Alice Example")
    out = session.lines()
    codes = [line.split(" ")[1] for line in out]
    assert codes[:4] == ["001", "002", "003", "004"]
    assert "005" in codes and "251" in codes and codes[-1] == "376"
    assert out[0].startswith(":irc.test 001 alice :Welcome to the irc.test IRC network")
    assert "alice!~alice@127.0.0.1" in out[0]
    motd = " ".join(line for line in out if " 372 " in line)
    assert "/join #lobby" in motd
    assert session.user is not None and session.user.rooms == {}


def test_isupport_is_truthful() -> None:
    """005 names chatd's casemapping, channel types, lengths and UTF8ONLY."""
    session = FakeIrc(make_server())
    session.line("NICK alice")
    session.line("USER a 0 * :A")
    tokens = set()
    for line in session.lines():
        if " 005 " in line:
            tokens.update(line.split(" :")[0].split(" ")[3:])
    assert {
        "CASEMAPPING=rfc8265",
        "CHANTYPES=#",
        "NICKLEN=20",
        "CHANNELLEN=33",
    } <= tokens
    assert "UTF8ONLY" in tokens and "NETWORK=irc.test" in tokens


def test_cap_negotiation_holds_registration_until_end() -> None:
    """CAP LS 302 lists caps; REQ is ACKed; registration waits for CAP END."""
    session = FakeIrc(make_server())
    session.line("CAP LS 302")
    (ls,) = session.lines()
    assert ls.startswith(":irc.test CAP * LS :")
    assert "echo-message" in ls and "server-time" in ls and "sasl=PLAIN" in ls
    session.line("NICK alice")
    session.line("USER a 0 * :A")
    session.line("CAP REQ :server-time echo-message")
    assert session.lines() == [":irc.test CAP alice ACK :server-time echo-message"]
    session.line("CAP REQ :server-time draft/multiline")
    assert session.lines() == [":irc.test CAP alice NAK :server-time draft/multiline"]
    assert session.user is None
    session.line("CAP END")
    assert session.user is not None
    assert session.caps.enabled == {"server-time", "echo-message", "cap-notify"}


def test_unknown_command_gets_421_and_missing_params_461() -> None:
    """FOO is 421; JOIN without a channel is 461; before registering, 451."""
    server = make_server()
    early = FakeIrc(server)
    early.line("JOIN #a")
    assert early.lines() == [":irc.test 451 * :You have not registered"]
    alice = registered(server, "alice")
    alice.line("FOO bar")
    assert alice.lines() == [":irc.test 421 alice FOO :Unknown command"]
    alice.line("JOIN")
    assert alice.lines() == [":irc.test 461 alice JOIN :Not enough parameters"]


def test_nick_taken_on_either_side() -> None:
    """A nickname a line user holds is 433 for IRC, ignoring case."""
    server = make_server()
    server.chat.register("Bob", RecordingClient())
    session = FakeIrc(server)
    session.line("NICK bob")
    assert session.lines() == [":irc.test 433 * bob :Nickname is already in use"]


def test_nick_irc_cannot_spell_is_432() -> None:
    """A nickname chatd refuses (IRC's [] or a leading digit) is 432."""
    session = FakeIrc(make_server())
    session.line("NICK foo[away]")
    (line,) = session.lines()
    assert line.startswith(":irc.test 432 * foo[away] :Erroneous nickname")


def test_join_sends_join_then_names() -> None:
    """JOIN #a,#b: each room's JOIN, then 331 and the NAMES reply."""
    server = make_server()
    alice = registered(server, "alice")
    bob = registered(server, "bob")
    bob.line("JOIN #a")
    bob.lines()
    alice.line("JOIN #a,#b")
    out = alice.lines()
    assert out[0] == ":alice!~alice@127.0.0.1 JOIN #a"
    assert ":irc.test 353 alice = #a :alice @bob" in out  # bob made #a
    assert ":irc.test 366 alice #a :End of /NAMES list" in out
    assert ":alice!~alice@127.0.0.1 JOIN #b" in out
    assert bob.lines() == [":alice!~alice@127.0.0.1 JOIN #a"]


def test_join_zero_parts_every_room() -> None:
    """JOIN 0 leaves every room."""
    server = make_server()
    alice = registered(server, "alice")
    alice.line("JOIN #a,#b")
    alice.lines()
    alice.line("JOIN 0")
    assert sorted(alice.lines()) == [
        ":alice!~alice@127.0.0.1 PART #a",
        ":alice!~alice@127.0.0.1 PART #b",
    ]
    assert alice.user is not None and alice.user.rooms == {}


def test_privmsg_reaches_line_users_as_message() -> None:
    """An IRC PRIVMSG to a room is the model's Message; no echo without the cap."""
    server = make_server()
    line_user = RecordingClient()
    server.chat.join(server.chat.register("carol", line_user), "#lobby")
    alice = registered(server, "alice")
    alice.line("JOIN #lobby")
    alice.lines()
    line_user.take()
    alice.line("PRIVMSG #lobby :hi there")
    assert line_user.take() == [Message("#lobby", "alice", "hi there")]
    assert alice.lines() == []


def test_line_message_reaches_irc_with_mask() -> None:
    """A line user's message is :nick!nick@address PRIVMSG #room :text."""
    server = make_server()
    carol = server.chat.register("carol", RecordingClient(), host="192.0.2.7")
    server.chat.join(carol, "#lobby")
    alice = registered(server, "alice")
    alice.line("JOIN #lobby")
    alice.lines()
    server.chat.say(carol, "hello", room="#lobby")
    server.chat.act(carol, "waves", room="#lobby")
    assert alice.lines() == [
        ":carol!carol@192.0.2.7 PRIVMSG #lobby :hello",
        ":carol!carol@192.0.2.7 PRIVMSG #lobby :\x01ACTION waves\x01",
    ]


def test_ctcp_action_is_chatd_action() -> None:
    """PRIVMSG #a :\\x01ACTION waves\\x01 is an Action for the line door."""
    server = make_server()
    carol = RecordingClient()
    server.chat.join(server.chat.register("carol", carol), "#a")
    alice = registered(server, "alice", "echo-message")
    alice.line("JOIN #a")
    alice.lines()
    carol.take()
    alice.line("PRIVMSG #a :\x01ACTION waves\x01")
    (event,) = carol.take()
    assert type(event).__name__ == "Action" and event.text == "waves"  # type: ignore[union-attr]
    assert alice.lines() == [":alice!~alice@127.0.0.1 PRIVMSG #a :\x01ACTION waves\x01"]


def test_privmsg_to_room_not_joined_is_404() -> None:
    """Speaking in a room one is not in: 404 Cannot send to channel."""
    server = make_server()
    alice = registered(server, "alice")
    alice.line("PRIVMSG #lobby :hi")
    assert alice.lines() == [":irc.test 404 alice #lobby :Cannot send to channel"]


def test_privmsg_to_unknown_nick_is_401_and_notice_is_silent() -> None:
    """PRIVMSG to nobody is 401; NOTICE to nobody says nothing."""
    server = make_server()
    alice = registered(server, "alice")
    alice.line("PRIVMSG nobody :hi")
    assert alice.lines() == [":irc.test 401 alice nobody :No such nick/channel"]
    alice.line("NOTICE nobody :hi")
    assert alice.lines() == []


def test_private_message_both_ways_and_away_reply() -> None:
    """PRIVMSG bob reaches bob; bob away: the sender gets 301."""
    server = make_server()
    alice = registered(server, "alice")
    bob = registered(server, "bob")
    bob.line("AWAY :lunch")
    assert bob.lines() == [":irc.test 306 bob :You have been marked as being away"]
    alice.line("PRIVMSG bob :hi")
    assert alice.lines() == [":irc.test 301 alice bob :lunch"]
    assert bob.lines() == [":alice!~alice@127.0.0.1 PRIVMSG bob :hi"]


def test_away_notify_only_with_cap() -> None:
    """AWAY reaches room-mates that asked for away-notify, not the others."""
    server = make_server()
    alice = registered(server, "alice", "away-notify")
    bob = registered(server, "bob")
    carol = registered(server, "carol")
    for session in (alice, bob, carol):
        session.line("JOIN #a")
    alice.lines(), bob.lines(), carol.lines()
    carol.line("AWAY :brb")
    assert alice.lines() == [":carol!~carol@127.0.0.1 AWAY :brb"]
    assert bob.lines() == []


def test_server_time_tag_and_render_once() -> None:
    """server-time clients get @time=; one render per broadcast and variant."""
    server = make_server()
    alice = registered(server, "alice", "server-time")
    bob = registered(server, "bob")
    carol = registered(server, "carol", "server-time")
    for session in (alice, bob, carol):
        session.line("JOIN #a")
        session.lines()
    alice.lines(), bob.lines()
    before = server.renderer.renders
    bob.line("PRIVMSG #a :hi")
    assert alice.lines() == [
        "@time=2023-11-14T22:13:20.250Z :bob!~bob@127.0.0.1 PRIVMSG #a :hi"
    ]
    assert carol.lines() == [
        "@time=2023-11-14T22:13:20.250Z :bob!~bob@127.0.0.1 PRIVMSG #a :hi"
    ]
    assert server.renderer.renders == before + 1


def test_render_once_shares_bytes() -> None:
    """Every plain recipient of one broadcast is handed the same bytes object."""
    server = make_server()
    sessions = [registered(server, f"u{i}") for i in range(5)]
    for session in sessions:
        session.line("JOIN #a")
    for session in sessions:
        session.lines()
    talker = registered(server, "talker")
    talker.line("JOIN #a")
    for session in sessions:
        session.lines()
    talker.line("PRIVMSG #a :one")
    firsts = [session.out[0] for session in sessions]
    assert all(data is firsts[0] for data in firsts)


def test_nick_change_reaches_line_and_irc() -> None:
    """NICK new: IRC room-mates see :old!u@h NICK :new."""
    server = make_server()
    alice = registered(server, "alice")
    bob = registered(server, "bob")
    alice.line("JOIN #a")
    bob.line("JOIN #a")
    alice.lines(), bob.lines()
    alice.line("NICK alicia")
    assert bob.lines() == [":alice!~alice@127.0.0.1 NICK :alicia"]
    assert alice.lines() == [":alice!~alice@127.0.0.1 NICK :alicia"]


def test_quit_tells_room_mates() -> None:
    """QUIT :bye: the others see QUIT with the reason; the quitter gets ERROR."""
    server = make_server()
    alice = registered(server, "alice")
    bob = registered(server, "bob")
    alice.line("JOIN #a")
    bob.line("JOIN #a")
    alice.lines(), bob.lines()
    alice.line("QUIT :bye now")
    # alice made #a and ran it: bob runs it after her.
    assert bob.lines() == [
        ":alice!~alice@127.0.0.1 QUIT :Quit: bye now",
        ":irc.test MODE #a +o bob",
    ]
    assert alice.lines()[-1].startswith("ERROR :")
    assert "alice" not in server.chat.users


def test_who_and_whois() -> None:
    """WHO #a lists members (352, 315); WHOIS gives 311, 319, 312, 318."""
    server = make_server()
    alice = registered(server, "alice")
    carol = server.chat.register("carol", RecordingClient(), host="192.0.2.7")
    server.chat.join(carol, "#a")
    alice.line("JOIN #a")
    alice.lines()
    alice.line("WHO #a")
    assert alice.lines() == [
        ":irc.test 352 alice #a ~alice 127.0.0.1 irc.test alice H :0 Alice Example",
        ":irc.test 352 alice #a carol 192.0.2.7 irc.test carol H@ :0 carol",
        ":irc.test 315 alice #a :End of WHO list",
    ]
    alice.line("WHOIS carol")
    assert [line.split(" ")[1] for line in alice.lines()] == [
        "311",
        "319",
        "312",
        "318",
    ]
    alice.line("WHOIS nobody")
    assert [line.split(" ")[1] for line in alice.lines()] == ["401", "318"]


def test_ison_userhost_list_mode_lusers() -> None:
    """The small queries answer with their numerics."""
    server = make_server()
    alice = registered(server, "alice")
    alice.line("JOIN #a")
    alice.lines()
    alice.line("ISON alice Nobody ALICE")
    assert alice.lines() == [":irc.test 303 alice :alice alice"]
    alice.line("USERHOST alice")
    assert alice.lines() == [":irc.test 302 alice :alice=+~alice@127.0.0.1"]
    alice.line("LIST")
    assert ":irc.test 322 alice #a 1 :" in alice.lines()
    alice.line("MODE #a")
    assert alice.lines() == [
        ":irc.test 324 alice #a +n",
        ":irc.test 329 alice #a 1700000000",
    ]
    alice.line("MODE #a +o alice")  # she is operator already: nothing changes
    assert alice.commands() == []
    alice.line("MODE #lobby +m")  # not a member, nor its operator
    assert alice.commands() == ["442"]
    alice.line("LUSERS")
    assert alice.commands() == ["251", "252", "253", "254", "255", "265", "266"]


def test_lobby_was_created_with_the_server() -> None:
    """MODE #lobby's 329 is the server's start, not 0 (1970 in WeeChat)."""
    server = make_server()
    server.created = 1_600_000_000.0
    alice = registered(server, "alice")
    alice.line("JOIN #lobby")
    alice.lines()
    alice.line("MODE #lobby")
    assert alice.lines() == [
        ":irc.test 324 alice #lobby +n",
        ":irc.test 329 alice #lobby 1600000000",
    ]


def test_ping_pong() -> None:
    """PING x gets PONG with x; a PONG is noted."""
    session = registered(make_server(), "alice")
    session.line("PING :abc def")
    assert session.lines() == [":irc.test PONG irc.test :abc def"]
    session.line("PONG :irc.test")
    assert session.pongs == 1


def test_every_command_survives_no_params() -> None:
    """Each command without parameters answers with numerics, never raises."""
    server = make_server()
    session = registered(server, "alice")
    for name in COMMANDS:
        if name == "QUIT":
            continue
        session.line(name)
        session.lines()
    assert session.user is not None


def test_long_line_message_is_split_for_irc() -> None:
    """A 2000-byte line message reaches IRC as several lines under 512 bytes."""
    chat = Chat()
    server = make_server(chat)
    carol = chat.register("carol", RecordingClient())
    chat.join(carol, "#a")
    alice = registered(server, "alice")
    alice.line("JOIN #a")
    alice.lines()
    chat.say(carol, "word " * 400, room="#a")
    out = alice.lines()
    assert len(out) > 3
    assert all(len(line.encode()) + 2 <= 512 for line in out)


def test_list_leaves_out_empty_rooms() -> None:
    """An empty #lobby is not listed: an IRC channel exists while people are in it."""
    server = make_server()
    alice = registered(server, "alice")
    alice.line("LIST")
    assert alice.commands() == ["321", "323"]


def test_privmsg_too_long_to_relay_is_417() -> None:
    """A PRIVMSG whose relayed line would pass 512 bytes is refused with 417."""
    server = make_server()
    alice = registered(server, "alice")
    bob = registered(server, "bob")
    alice.line("PRIVMSG bob :" + "a" * 490)
    assert alice.lines() == [":irc.test 417 alice :Input line was too long"]
    assert bob.lines() == []
    alice.line("PRIVMSG bob :" + "a" * 400)
    assert len(bob.lines()) == 1


def test_away_user_joining_is_announced_to_away_notify() -> None:
    """An away user's JOIN is followed by AWAY for away-notify room-mates."""
    server = make_server()
    alice = registered(server, "alice", "away-notify")
    bob = registered(server, "bob")
    alice.line("JOIN #a")
    bob.line("AWAY :out")
    alice.lines(), bob.lines()
    bob.line("JOIN #a")
    assert alice.lines() == [
        ":bob!~bob@127.0.0.1 JOIN #a",
        ":bob!~bob@127.0.0.1 AWAY :out",
    ]


def test_user_with_empty_realname_is_461() -> None:
    """USER name 0 * : (no realname) is 461."""
    session = FakeIrc(make_server())
    session.line("USER name 0 * :")
    assert session.commands() == ["461"]


def test_room_cap_is_405() -> None:
    """Past --max-rooms-per-user, JOIN is 405 and CHANLIMIT says the number."""
    server = make_server(Chat(max_rooms_per_user=2), max_rooms_per_user=2)
    alice = registered(server, "alice")
    alice.line("JOIN #a,#b,#c")
    assert alice.commands()[-1] == "405"
    assert ["CHANLIMIT=#:2"] == [
        token for group in server.isupport for token in group if "CHANLIMIT" in token
    ]
