"""The line protocol over StringTransport: every command, event and error."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    RecordingClient,
    connect,
    disconnect,
    lines,
    make_factory,
    open_connection,
)
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from chatd.factory import ChatFactory
from chatd.line.commands import COMMANDS
from chatd.line.wire import RenderStats
from chatd.model.chat import IChatClient
from chatd.model.errors import ErrorCode


@pytest.fixture
def factory(clock: Clock) -> ChatFactory:
    return make_factory(clock)


# -- connecting and choosing a nickname ------------------------------------------------


def test_connect_sends_hello_then_nick_prompt(factory: ChatFactory) -> None:
    """HELLO <server> <text> comes first, then NICK <text>."""
    proto, transport = open_connection(factory)
    hello, nick = lines(transport)
    assert hello.startswith("HELLO chatd ") and len(hello) > len("HELLO chatd ")
    assert nick.startswith("NICK ")
    assert verifyObject(IChatClient, proto)


def test_hello_carries_the_configured_name(clock: Clock) -> None:
    """--name shows up as HELLO's first argument."""
    _, transport = open_connection(make_factory(clock, name="classroom"))
    assert lines(transport)[0].startswith("HELLO classroom ")


@pytest.mark.parametrize(
    "answer", [b"alice", b"NICK alice", b"nick alice", b"/nick alice", b"  alice  "]
)
def test_nickname_forms_are_accepted(factory: ChatFactory, answer: bytes) -> None:
    """A bare name, NICK name or /nick name registers; WELCOME then JOIN #lobby."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(answer + b"\r\n")
    welcome, join = lines(transport)
    assert welcome.startswith("WELCOME alice ")
    assert join == "JOIN #lobby alice"


def test_motd_lines_follow_welcome(clock: Clock) -> None:
    """Each --motd line is sent as INFO right after WELCOME."""
    factory = make_factory(clock, motd=("Rules:", "be kind"))
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(b"alice\n")
    assert lines(transport)[1:] == ["INFO Rules:", "INFO be kind", "JOIN #lobby alice"]


def test_taken_nickname_is_refused_and_asked_again(factory: ChatFactory) -> None:
    """ERR nick-taken then a fresh NICK prompt; case and width do not matter."""
    connect(factory, "alice")
    proto, transport = open_connection(factory)
    transport.clear()
    for attempt in ("ALICE", "ａｌｉｃｅ"):
        proto.dataReceived(attempt.encode() + b"\n")
        err, prompt = lines(transport)
        assert err.startswith("ERR nick-taken ")
        assert prompt.startswith("NICK ")
    proto.dataReceived(b"bob\n")
    assert lines(transport)[0].startswith("WELCOME bob ")


@pytest.mark.parametrize("bad", ["x" * 21, "1abc", "-abc", "two words", "a.b", "ok!"])
def test_invalid_nickname_is_refused_and_asked_again(
    factory: ChatFactory, bad: str
) -> None:
    """ERR nick-invalid names the problem, then NICK asks again."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(bad.encode() + b"\n")
    err, prompt = lines(transport)
    assert err.startswith("ERR nick-invalid ") and prompt.startswith("NICK ")
    assert proto.user is None


def test_invisible_names_are_refused_naming_the_character(
    factory: ChatFactory,
) -> None:
    """A blank-looking nickname (HANGUL FILLER) gets ERR nick-invalid naming
    U+3164, then NICK; a room name with a filler gets ERR room-invalid."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived("\u3164\n".encode())
    err, prompt = lines(transport)
    assert err.startswith("ERR nick-invalid ") and "U+3164 (HANGUL FILLER)" in err
    assert prompt.startswith("NICK ")
    proto.dataReceived("alice\uffa0\nalice\n".encode())
    assert lines(transport)[0].startswith("ERR nick-invalid ")
    proto.dataReceived("/join #dev\u1160\n".encode())
    assert lines(transport) == [
        "ERR room-invalid #dev\u1160: a room name cannot hold invisible characters "
        "such as U+1160 (HANGUL JUNGSEONG FILLER)"
    ]


def test_names_reserved_for_the_server_are_refused(clock: Clock) -> None:
    """The server's --name and the verbs get ERR nick-invalid saying they are
    reserved, then NICK; /nick to one of them is refused the same way."""
    factory = make_factory(clock, name="classroom")
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(b"Classroom\n")
    err, prompt = lines(transport)
    assert err == (
        "ERR nick-invalid Classroom: that name is reserved for the server; "
        "please choose another"
    )
    assert prompt.startswith("NICK ")
    proto.dataReceived(b"MSG\nalice\n/nick INFO\n")
    err, _prompt, welcome, _join, err2 = lines(transport)
    assert err.startswith("ERR nick-invalid MSG: that name is reserved")
    assert welcome.startswith("WELCOME alice ")
    assert err2.startswith("ERR nick-invalid INFO: that name is reserved")


def test_commands_before_registration_get_not_registered(factory: ChatFactory) -> None:
    """/join before a nickname is ERR not-registered, without a second NICK prompt."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(b"/join #dev\n/who\n")
    assert [text.split(" ", 2)[:2] for text in lines(transport)] == [
        ["ERR", "not-registered"],
        ["ERR", "not-registered"],
    ]
    proto.dataReceived(b"alice\n")
    assert lines(transport)[0].startswith("WELCOME alice")


def test_help_and_quit_work_before_registration(factory: ChatFactory) -> None:
    """/help answers with INFO lines; /quit says BYE and closes."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(b"/help\n")
    assert all(text.startswith("INFO ") for text in lines(transport))
    proto.dataReceived(b"/quit\n")
    assert lines(transport)[0].startswith("BYE ")
    assert transport.disconnecting


def test_empty_lines_are_ignored(factory: ChatFactory) -> None:
    """Empty and blank lines get no answer, before and after registration."""
    proto, transport = open_connection(factory)
    transport.clear()
    proto.dataReceived(b"\n\r\n   \r\n")
    assert transport.value() == b""
    proto.dataReceived(b"alice\n")
    transport.clear()
    proto.dataReceived(b"\n\r\n \t \n")
    assert transport.value() == b""


# -- talking ---------------------------------------------------------------------------


def test_room_message_reaches_every_member(factory: ChatFactory) -> None:
    """A plain line from alice arrives at bob as MSG, and alice gets the echo."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear()
    alice.dataReceived(b"hello there\r\n")
    assert b_out.value() == a_out.value() == b"MSG #lobby alice hello there\r\n"


def test_broadcast_is_rendered_once(factory: ChatFactory) -> None:
    """A message to 50 members is encoded once and the same bytes go to all."""
    clients = [connect(factory, f"user{i}") for i in range(50)]
    before = RenderStats.renders
    clients[0][0].dataReceived(b"one render\n")
    assert RenderStats.renders - before == 1
    assert all(
        out.value().endswith(b"MSG #lobby user0 one render\r\n") for _, out in clients
    )


def test_double_slash_sends_a_line_starting_with_slash(factory: ChatFactory) -> None:
    """//text sends the message /text."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"//shrug\n")
    assert lines(out) == ["MSG #lobby alice /shrug"]


def test_control_characters_never_reach_others(factory: ChatFactory) -> None:
    """ESC, NUL, BEL, DEL and C1 are stripped; TAB stays."""
    (alice, _), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    b_out.clear()
    alice.dataReceived("\x1b[2J\x00bold\x07\x7f\u009b31m\ttab\n".encode())
    assert lines(b_out) == ["MSG #lobby alice [2Jbold31m\ttab"]
    alice.dataReceived(b"\x1b\x00\x07\n")  # nothing left: ignored like an empty line
    assert b_out.value() == b""


def test_me_sends_an_action(factory: ChatFactory) -> None:
    """/me waves is ACTION <room> <nick> waves; without text it is bad-args."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear()
    alice.dataReceived(b"/me waves  hello\n")
    assert lines(a_out) == lines(b_out) == ["ACTION #lobby alice waves  hello"]
    alice.dataReceived(b"/me\n")
    assert lines(a_out)[0].startswith("ERR bad-args ")


def test_private_message_and_its_errors(factory: ChatFactory) -> None:
    """/msg gives PRIV to recipient and sender only; unknown nick and arity refused."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    carol, c_out = connect(factory, "carol")
    a_out.clear(), b_out.clear()
    alice.dataReceived(b"/msg Bob see you at 5\n")
    assert lines(a_out) == lines(b_out) == ["PRIV alice bob see you at 5"]
    assert c_out.value() == b""
    alice.dataReceived(b"/msg dave hi\n/msg bob\n/msg\n")
    codes = [text.split(" ", 2)[1] for text in lines(a_out)]
    assert codes == ["no-such-nick", "bad-args", "bad-args"]


def test_bidi_controls_and_line_separators_never_reach_anyone(
    factory: ChatFactory,
) -> None:
    """RIGHT-TO-LEFT OVERRIDE, isolates and U+2028 are taken out of a message
    before anyone sees it, like control characters; ZWJ stays."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear()
    alice.dataReceived(
        "exe.\u202etxt\u2066 ok\u2069\u2028BYE x \U0001f469\u200d\U0001f4bb\n".encode()
    )
    expected = "MSG #lobby alice exe.txt okBYE x \U0001f469\u200d\U0001f4bb"
    assert lines(a_out) == lines(b_out) == [expected]


# -- rooms -----------------------------------------------------------------------------


def test_join_creates_room_and_makes_it_current(factory: ChatFactory) -> None:
    """/join sends JOIN to joiner and members; plain lines then go there."""
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\n")
    a_out.clear()
    bob.dataReceived(b"/join #dev\n")
    assert lines(a_out) == lines(b_out) == ["JOIN #dev bob"]
    bob.dataReceived(b"in dev\n")
    assert lines(a_out) == ["MSG #dev bob in dev"]


def test_join_refusals_and_rejoin(factory: ChatFactory) -> None:
    """Bad room names are room-invalid; joining again answers INFO, no JOIN."""
    alice, out = connect(factory, "alice")
    out.clear()
    alice.dataReceived(b"/join dev\n/join #a.b\n/join\n/join #a #b\n")
    codes = [text.split(" ", 2)[1] for text in lines(out)]
    assert codes == ["room-invalid", "room-invalid", "bad-args", "bad-args"]
    alice.dataReceived(b"/join #lobby\n")
    (info,) = lines(out)
    assert info.startswith("INFO ")


def test_part_forms(factory: ChatFactory) -> None:
    """/part, /part #room, /part reason and /part #room reason; PART to members."""
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    for room in ("#a", "#b", "#c"):
        alice.dataReceived(f"/join {room}\n".encode())
        bob.dataReceived(f"/join {room}\n".encode())
    a_out.clear(), b_out.clear()
    alice.dataReceived(b"/part\n")  # current room: #c
    alice.dataReceived(b"/part #a\n")
    alice.dataReceived(b"/join #c\n/part see you later\n")
    alice.dataReceived(b"/part #b off to lunch\n")
    assert [text for text in lines(b_out) if text.startswith("PART")] == [
        "PART #c alice ",
        "PART #a alice ",
        "PART #c alice see you later",
        "PART #b alice off to lunch",
    ]
    a_out.clear()
    alice.dataReceived(b"back in the lobby\n")
    assert lines(b_out) == ["MSG #lobby alice back in the lobby"]


def test_part_refusals(factory: ChatFactory) -> None:
    """not-in-room, no-such-room and room-invalid, each as ERR with its code."""
    (alice, out), (bob, _) = connect(factory, "alice"), connect(factory, "bob")
    bob.dataReceived(b"/join #dev\n")
    out.clear()
    alice.dataReceived(b"/part #dev\n/part #ghost\n/part #a.b\n")
    codes = [text.split(" ", 2)[1] for text in lines(out)]
    assert codes == ["not-in-room", "no-such-room", "room-invalid"]


def test_talking_after_parting_lobby_is_not_in_room(factory: ChatFactory) -> None:
    """With #lobby left, a plain line gets ERR not-in-room."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/part #lobby\n")
    out.clear()
    alice.dataReceived(b"hello?\n")
    assert lines(out)[0].startswith("ERR not-in-room ")


def test_who_lists_members(factory: ChatFactory) -> None:
    """/who gives USERS for the current room, /who #room for another one."""
    (alice, out), _ = connect(factory, "alice"), connect(factory, "Bob")
    alice.dataReceived(b"/join #dev\n")
    out.clear()
    alice.dataReceived(b"/who\n/who #LOBBY\n/who #ghost\n/who bad\n")
    # alice made #dev, so she runs it (OPS); #lobby has no operators of its own.
    assert lines(out)[:3] == [
        "USERS #dev alice",
        "OPS #dev alice",
        "USERS #lobby alice Bob",
    ]


def test_who_errors(factory: ChatFactory) -> None:
    """Unknown and invalid rooms are refused with their codes."""
    alice, out = connect(factory, "alice")
    out.clear()
    alice.dataReceived(b"/who #ghost\n/who bad\n/who #a #b\n")
    codes = [text.split(" ", 2)[1] for text in lines(out)]
    assert codes == ["no-such-room", "room-invalid", "bad-args"]


def test_who_in_a_large_room_spans_several_lines(factory: ChatFactory) -> None:
    """USERS lines stay short; together they name every member once."""
    nicks = [f"member_{i:03d}_abcdefgh" for i in range(120)]
    protos = [connect(factory, nick) for nick in nicks]
    proto, out = protos[0]
    out.clear()
    proto.dataReceived(b"/who\n")
    users = lines(out)
    assert len(users) > 1
    assert all(text.startswith("USERS #lobby ") and len(text) < 512 for text in users)
    assert sorted(n for text in users for n in text.split(" ")[2:]) == sorted(nicks)


def test_rooms_lists_rooms_and_sizes(factory: ChatFactory) -> None:
    """/rooms gives ROOMS room:count for every room."""
    (alice, out), (bob, _) = connect(factory, "alice"), connect(factory, "bob")
    bob.dataReceived(b"/join #dev\n")
    out.clear()
    alice.dataReceived(b"/rooms\n")
    assert lines(out) == ["ROOMS #dev:1 #lobby:2"]


def fill_rooms(factory: ChatFactory, names: list[str]) -> None:
    """Create a room for each name, held by model-only users (49 rooms each)."""
    chat = factory.chat
    for i in range(0, len(names), 49):
        user = chat.register(f"holder{i}", RecordingClient())
        for name in names[i : i + 49]:
            chat.join(user, name)


def test_rooms_is_answered_in_pages_of_100(factory: ChatFactory) -> None:
    """With 250 rooms, /rooms gives the first 100 by name then INFO saying how
    many more and how to ask; the last page says it is the last."""
    fill_rooms(factory, [f"#room{i:03d}" for i in range(249)])  # and #lobby
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/rooms\n")
    *answer, info = lines(out)
    listed = [word for text in answer for word in text.split(" ")[1:]]
    assert all(text.startswith("ROOMS ") and len(text) < 512 for text in answer)
    assert listed == ["#lobby:1", *(f"#room{i:03d}:1" for i in range(99))]
    assert info == (
        "INFO Rooms 1-100 of 250 (page 1 of 3); 150 more: /rooms 2 for the next page."
    )
    alice.dataReceived(b"/rooms 3\n")
    *answer, info = lines(out)
    listed = [word for text in answer for word in text.split(" ")[1:]]
    assert listed == [f"#room{i:03d}:1" for i in range(199, 249)]
    assert info == "INFO Rooms 201-250 of 250 (page 3 of 3); that is the last page."


def test_rooms_with_100_rooms_answers_as_protocol_v1(factory: ChatFactory) -> None:
    """Up to 100 rooms, /rooms is ROOMS lines and nothing else, as before."""
    fill_rooms(factory, [f"#room{i:03d}" for i in range(99)])  # and #lobby
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/rooms\n")
    answer = lines(out)
    assert all(text.startswith("ROOMS ") for text in answer)
    assert sum(len(text.split(" ")) - 1 for text in answer) == 100


def test_rooms_pages_that_do_not_exist_are_bad_args(factory: ChatFactory) -> None:
    """/rooms 0, a page past the end, a word or two pages get ERR bad-args."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/rooms 0\n/rooms 2\n/rooms two\n/rooms 1 2\n")
    alice.dataReceived(b"/rooms " + b"9" * 2000 + b"\n")
    replies = lines(out)
    assert [text.split(" ", 2)[1] for text in replies] == ["bad-args"] * 5
    assert replies[1] == "ERR bad-args there is no page 2: the 1 rooms fill page 1"
    assert replies[2] == "ERR bad-args usage: /rooms [<page>]"
    alice.dataReceived(b"/rooms 1\n")
    assert lines(out) == ["ROOMS #lobby:1"]


def test_rooms_answer_stays_small_however_many_rooms(factory: ChatFactory) -> None:
    """1500 rooms with the longest names: /rooms sends 100 of them, under
    16 KB, far from any send queue; the old answer held them all."""
    fill_rooms(factory, [f"#{i:04d}{'x' * 28}" for i in range(1499)])
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/rooms\n")
    assert len(out.value()) < 16_384
    *answer, info = lines(out)
    assert sum(len(text.split(" ")) - 1 for text in answer) == 100
    assert info.startswith("INFO Rooms 1-100 of 1500 ")


def test_joins_past_the_room_caps_get_too_many_rooms(clock: Clock) -> None:
    """--max-rooms-per-user and --max-rooms reach the chat: ERR too-many-rooms
    with a sentence saying what to do, and the connection goes on."""
    factory = make_factory(clock, max_rooms_per_user=2, max_rooms=2)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #a\n/join #b\n")
    assert lines(a_out)[-1] == (
        "ERR too-many-rooms you are in 2 rooms, the most one may be in; "
        "/part one of them to join another"
    )
    bob.dataReceived(b"/join #c\n")
    assert lines(b_out) == [
        "ERR too-many-rooms the server has 2 rooms, as many as it holds; "
        "join one of them (see /rooms) or try again later"
    ]
    bob.dataReceived(b"/join #a\nstill here\n")
    assert lines(b_out) == ["JOIN #a bob", "MSG #a bob still here"]


def test_help_describes_every_command(factory: ChatFactory) -> None:
    """/help sends INFO lines naming each command of docs/protocol.md."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/help\n")
    text = lines(out)
    assert all(line.startswith("INFO ") for line in text)
    for name in ("nick", "me", "msg", "join", "part", "who", "rooms", "help", "quit"):
        assert name in COMMANDS
        assert any(f"/{name}" in line for line in text), name
    assert any("/rooms [<page>]" in line for line in text)


def test_unknown_command(factory: ChatFactory) -> None:
    """/dance is ERR unknown-command; commands ignore case."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/dance\n/WHO\n")
    err, users = lines(out)
    assert err.startswith("ERR unknown-command ")
    assert users == "USERS #lobby alice"


# -- names and leaving -----------------------------------------------------------------


def test_rename_is_seen_by_room_sharers(factory: ChatFactory) -> None:
    """/nick sends RENAME to the renamer and everyone sharing a room."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear()
    with capturedLogs() as events:
        alice.dataReceived(b"/nick alicia\n")
    assert lines(a_out) == lines(b_out) == ["RENAME alice alicia"]
    assert any(e.get("new") == "alicia" for e in events)
    alice.dataReceived(b"/nick BOB\n/nick 1x\n/nick alicia\n")
    err1, err2, info = lines(a_out)
    assert err1.startswith("ERR nick-taken ") and err2.startswith("ERR nick-invalid ")
    assert info.startswith("INFO ")  # no NICK prompt once registered


def test_quit_says_bye_and_others_see_quit_once(factory: ChatFactory) -> None:
    """/quit reason: BYE to the leaver, QUIT reason once to each room sharer."""
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\n")
    bob.dataReceived(b"/join #dev\n")
    a_out.clear(), b_out.clear()
    alice.dataReceived(b"/quit off to bed\n")
    assert lines(a_out)[0].startswith("BYE ")
    assert a_out.disconnecting
    # alice made #dev and ran it: bob, there longest now, runs it after her.
    assert lines(b_out) == ["QUIT alice off to bed", "OP #dev bob chatd"]
    disconnect(alice)
    assert b_out.value() == b""
    carol, c_out = connect(factory, "Alice")  # the nickname is free again
    assert carol.user is not None and carol.user.nick == "Alice"


def test_dropped_connection_sends_quit_with_a_reason(factory: ChatFactory) -> None:
    """A vanished client is announced with QUIT and a short reason, and logged."""
    (alice, _), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    b_out.clear()
    with capturedLogs() as events:
        alice.connectionLost(Failure(ConnectionLost()))
    assert lines(b_out) == ["QUIT alice connection lost"]
    assert any(
        e.get("nick") == "alice" and e["log_level"] == LogLevel.info for e in events
    )
    assert "alice" not in factory.chat.users


def test_message_text_is_never_logged(factory: ChatFactory) -> None:
    """What people write does not reach the log, at any level."""
    alice, _ = connect(factory, "alice")
    with capturedLogs() as events:
        alice.dataReceived(b"my secret plan\n/msg alice psst secret\n/me hides\n")
        alice.dataReceived(b"/part #lobby my secret reason\n")
        alice.dataReceived(b"/quit another secret reason\n")
    assert not any("secret" in repr(e) or "psst" in repr(e) for e in events)
    assert not any("hides" in repr(e) for e in events)
    assert any(e.get("reason") == "/quit" for e in events)


# -- framing and encoding --------------------------------------------------------------


def test_lf_and_crlf_and_fragments(factory: ChatFactory) -> None:
    """LF or CRLF ends a line; a line may arrive a byte at a time; all replies CRLF."""
    alice, out = connect(factory, "alice")
    for byte in b"one\r\n":
        alice.dataReceived(bytes([byte]))
    alice.dataReceived(b"two\nthree\r\nfo")
    alice.dataReceived(b"ur\n")
    assert lines(out) == [
        f"MSG #lobby alice {w}" for w in ("one", "two", "three", "four")
    ]


def test_utf8_split_across_packets_is_fine(factory: ChatFactory) -> None:
    """A multi-byte character cut between two packets is put back together."""
    alice, out = connect(factory, "alice")
    data = "café ☕\n".encode()
    alice.dataReceived(data[:4])
    alice.dataReceived(data[4:])
    assert lines(out) == ["MSG #lobby alice café ☕"]


def test_invalid_utf8_is_refused(factory: ChatFactory) -> None:
    """ERR bad-encoding, and the next line works."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"caf\xe9\nok\n")
    err, msg = lines(out)
    assert err.startswith("ERR bad-encoding ")
    assert msg == "MSG #lobby alice ok"


def test_invalid_utf8_nickname_is_refused(factory: ChatFactory) -> None:
    """Before registration too, bad bytes are ERR bad-encoding."""
    proto, out = open_connection(factory)
    out.clear()
    proto.dataReceived(b"\xc3\x28\n")
    assert lines(out)[0].startswith("ERR bad-encoding ")


def test_telnet_ctrl_c_is_answered_and_does_not_eat_lines(factory: ChatFactory) -> None:
    """IAC IP IAC DO TIMING-MARK: refused with WONT, a hint, and no line is lost."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"abc\r\n\xff\xf4\xff\xfd")
    alice.dataReceived(b"\x06def\r\n")
    data = out.value()
    assert data.count(b"\xff\xfc\x06") == 1  # WONT TIMING-MARK: telnet resumes
    text = data.replace(b"\xff\xfc\x06", b"").decode().split("\r\n")
    assert [t for t in text if t.startswith("MSG")] == [
        "MSG #lobby alice abc",
        "MSG #lobby alice def",
    ]
    assert "INFO Ctrl-C does not leave the chat; type /quit to leave." in text


def test_stray_ff_bytes_are_still_bad_utf8(factory: ChatFactory) -> None:
    """0xFF that is not a telnet command (or IAC IAC) is refused as bad-encoding."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"ff \xff x\n\xff\xff\n")
    assert [t.split(" ", 2)[:2] for t in lines(out)] == [["ERR", "bad-encoding"]] * 2


@pytest.mark.parametrize(
    "typed", [b"\x0c/msg bob secret", b"  /msg bob secret", b"\x07\t /msg bob secret"]
)
def test_a_command_after_blanks_or_controls_is_still_a_command(
    factory: ChatFactory, typed: bytes
) -> None:
    """Ctrl-L or a leading blank before /msg never leaks it to the room."""
    (alice, a_out), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    connect(factory, "carol")[1].clear()
    a_out.clear(), b_out.clear()
    alice.dataReceived(typed + b"\n")
    assert lines(b_out) == ["PRIV alice bob secret"]


def test_line_at_the_limit_passes_and_one_more_byte_is_refused(clock: Clock) -> None:
    """Exactly --max-line bytes (a CR not counted) is fine; one more is too-long."""
    factory = make_factory(clock, max_line=100)
    alice, out = connect(factory, "alice")
    ok = b"x" * 100
    alice.dataReceived(ok + b"\r\n" + ok + b"\n" + ok + b"y\r\n" + ok + b"y\n")
    got = lines(out)
    assert got[:2] == ["MSG #lobby alice " + "x" * 100] * 2
    assert [g.split(" ", 2)[:2] for g in got[2:]] == [["ERR", "too-long"]] * 2


def test_overlong_line_is_refused_whole_and_following_lines_survive(
    factory: ChatFactory,
) -> None:
    """Lines before and after an over-long one in the same packet all get through."""
    (alice, out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    out.clear(), b_out.clear()
    alice.dataReceived(b"before\n" + b"z" * 5000 + b"\nafter\nand more\n")
    assert lines(out) == [
        "MSG #lobby alice before",
        "ERR too-long lines are limited to 2048 bytes; that one was dropped",
        "MSG #lobby alice after",
        "MSG #lobby alice and more",
    ]
    assert len(lines(b_out)) == 3  # bob never sees the long line


def test_overlong_line_across_packets_is_discarded_without_buffering(
    factory: ChatFactory,
) -> None:
    """A 1 MB line without LF, in 64 KiB packets: one ERR, buffer stays small."""
    alice, out = connect(factory, "alice")
    chunk = b"y" * 65536
    for _ in range(16):
        alice.dataReceived(chunk)
        assert alice.framer.discarding and not alice.framer.partial
    alice.dataReceived(b"tail\nnext line\n")
    assert lines(out) == [
        "ERR too-long lines are limited to 2048 bytes; that one was dropped",
        "MSG #lobby alice next line",
    ]


def test_overlong_line_before_registration_keeps_nick_negotiation(
    factory: ChatFactory,
) -> None:
    """A huge first line is refused; the nickname on the next line still works."""
    proto, out = open_connection(factory)
    out.clear()
    proto.dataReceived(b"q" * 3000 + b"\r\nalice\r\n")
    err, welcome, _ = lines(out)
    assert err.startswith("ERR too-long ") and welcome.startswith("WELCOME alice")


def test_unexpected_failure_is_logged_and_the_connection_carries_on(
    factory: ChatFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a handler becomes an INFO line and a logged failure, not a drop."""
    (alice, out), (_bob, _b_out) = connect(factory, "alice"), connect(factory, "bob")

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(factory.chat, "act", broken)
    out.clear()
    with capturedLogs() as events:
        alice.dataReceived(b"/me breaks things\nstill here\n")
    info, msg = lines(out)
    assert info.startswith("INFO ") and msg == "MSG #lobby alice still here"
    assert any(e["log_level"] == LogLevel.critical for e in events)
    assert not out.disconnecting


def test_every_protocol_error_code_is_known() -> None:
    """ErrorCode holds exactly the codes of docs/protocol.md (version 2) and chatd's
    documented extensions: too-many-rooms, and those of rooms people run and
    accounts (docs/protocol.md lists each)."""
    assert {code.value for code in ErrorCode} == {
        "nick-taken",
        "nick-invalid",
        "not-registered",
        "unknown-command",
        "bad-args",
        "no-such-nick",
        "no-such-room",
        "not-in-room",
        "room-invalid",
        "too-long",
        "bad-encoding",
        "flood",
        "server-full",
        "no-history",
        "too-many-rooms",
        # chatd's extension: rooms people run, and accounts.
        "not-operator",
        "banned",
        "invite-only",
        "wrong-key",
        "room-full",
        "moderated",
        "not-member",
        "already-in-room",
        "ban-list-full",
        "not-identified",
        "auth-failed",
        "throttled",
        "bad-password",
        "already-registered",
        "unregistered",
        # ... and a cluster node cut off from the others (docs/cluster.md).
        "cluster-down",
        # ... and several devices (docs/protocol.md, Devices (version 3)).
        "too-many-devices",
    }
    documented = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    assert all(f"`{code.value}`" in documented for code in ErrorCode)


def test_refused_long_line_is_logged_once_with_the_address(
    factory: ChatFactory,
) -> None:
    """An over-long line is a limit hit: one warning naming the peer, no text."""
    alice, _ = connect(factory, "alice")
    with capturedLogs() as events:
        alice.dataReceived(b"s" * 3000 + b"\n")
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert len(warnings) == 1 and warnings[0]["peer"].startswith("127.0.")
    assert "sss" not in repr(warnings)
