"""The line door's commands for rooms people run and for accounts.

StringTransport connections through the real factory (a fake clock, cheap
Argon2 hashed inline): what each command answers, what the others see.
"""

from __future__ import annotations

from helpers import connect, lines, make_factory
from twisted.internet.task import Clock

from chatd.factory import ChatFactory
from chatd.line.wire import parse_server_line


def test_topic_set_shown_after_join_and_cleared() -> None:
    """/topic text: TOPIC to the room; a joiner gets TOPIC after its JOIN;
    /topic alone shows it; /topic - clears it."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n/topic release on friday\r\n")
    assert lines(a)[-1] == "TOPIC #dev alice release on friday"
    bob.dataReceived(b"/join #dev\r\n")
    assert lines(b) == ["JOIN #dev bob", "TOPIC #dev alice release on friday"]
    bob.dataReceived(b"/topic\r\n")
    assert lines(b) == ["TOPIC #dev alice release on friday"]
    lines(a)
    alice.dataReceived(b"/topic #dev -\r\n")
    assert lines(a) == lines(b) == ["TOPIC #dev alice "]
    bob.dataReceived(b"/topic\r\n")
    assert lines(b) == ["INFO #dev has no topic."]


def test_op_voice_and_who_marks() -> None:
    """/op and /voice: OP and VOICE lines to everyone; /who adds OPS and VOICES."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    carol, c = connect(factory, "carol")
    for proto in (alice, bob, carol):
        proto.dataReceived(b"/join #dev\r\n")
    lines(a), lines(b), lines(c)
    alice.dataReceived(b"/op bob\r\n/voice #dev carol\r\n")
    assert lines(c) == ["OP #dev bob alice", "VOICE #dev carol alice"]
    carol.dataReceived(b"/who\r\n")
    assert lines(c) == [
        "USERS #dev alice bob carol",
        "OPS #dev alice bob",
        "VOICES #dev carol",
    ]
    bob.dataReceived(b"/deop alice\r\n")
    assert lines(c) == ["DEOP #dev alice bob"]


def test_refusals_have_their_codes() -> None:
    """not-operator, no-such-nick; #lobby is run by server operators only."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n")
    bob.dataReceived(b"/join #dev\r\n")
    lines(a), lines(b)
    bob.dataReceived(b"/kick alice\r\n/op bob\r\n/mode +m\r\n")
    assert [text.split(" ", 2)[:2] for text in lines(b)] == [
        ["ERR", "not-operator"]
    ] * 3
    alice.dataReceived(b"/op nobody\r\n/voice #lobby bob\r\n")
    first, second = lines(a)
    assert first.startswith("ERR no-such-nick ")
    assert second == "ERR not-operator you are not an operator of #lobby"


def test_kick_is_explained_then_parted() -> None:
    """/kick: KICK with the reason, then PART for clients that know no KICK."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n")
    bob.dataReceived(b"/join #dev\r\n")
    lines(a), lines(b)
    alice.dataReceived(b"/kick bob stop spamming please\r\n")
    expected = [
        "KICK #dev bob alice stop spamming please",
        "PART #dev bob kicked by alice: stop spamming please",
    ]
    assert lines(a) == lines(b) == expected
    kick = parse_server_line(expected[0])
    assert kick.words == ("#dev", "bob", "alice")
    assert kick.text == "stop spamming please"


def test_ban_keeps_out_and_quiet_and_lists() -> None:
    """/ban nick: BAN line; the banned cannot join (banned) nor speak; /bans lists;
    /unban lifts it."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n/ban bob\r\n/ban account:mallory\r\n")
    assert lines(a)[-2:] == ["BAN #dev bob alice", "BAN #dev account:mallory alice"]
    bob.dataReceived(b"/join #dev\r\n")
    assert lines(b) == [
        "ERR banned you are banned from #dev (bob)",
    ]
    alice.dataReceived(b"/bans\r\n/unban BOB!*@*\r\n")
    assert lines(a) == ["BANS #dev bob account:mallory", "UNBAN #dev bob alice"]
    bob.dataReceived(b"/join #dev\r\n")
    assert lines(b)[0] == "JOIN #dev bob"


def test_invite_only_and_keys() -> None:
    """/mode +i: invite-only; /invite lets one in once; /mode +k key: wrong-key
    without it, /join #room key with it; /mode shows the modes."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n/mode +i\r\n")
    assert lines(a)[-1] == "MODE #dev alice +i "
    bob.dataReceived(b"/join #dev\r\n")
    assert lines(b)[0].startswith("ERR invite-only #dev is invite-only")
    alice.dataReceived(b"/invite bob\r\n")
    assert lines(a) == ["INFO You invited bob to #dev."]
    assert lines(b) == ["INVITE #dev alice"]
    alice.dataReceived(b"/mode -i+k s3cret\r\n/mode\r\n")
    assert lines(a) == [
        "MODE #dev alice -i ",
        "MODE #dev alice +k s3cret",
        "MODES #dev +kn s3cret",
    ]
    bob.dataReceived(b"/join #dev\r\n/join #dev wrong\r\n/join #dev s3cret\r\n")
    out = lines(b)
    assert out[0].startswith("ERR wrong-key ") and out[1].startswith("ERR wrong-key ")
    assert out[2] == "JOIN #dev bob"


def test_moderated_room() -> None:
    """/mode +m: a plain member's line is moderated; /voice lets them speak."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n/mode +m\r\n")
    bob.dataReceived(b"/join #dev\r\n")
    lines(a), lines(b)
    bob.dataReceived(b"hello?\r\n")
    assert lines(b)[0].startswith("ERR moderated #dev is moderated")
    assert lines(a) == []
    alice.dataReceived(b"/voice bob\r\n")
    bob.dataReceived(b"thanks\r\n")
    assert lines(a) == ["VOICE #dev bob alice", "MSG #dev bob thanks"]


def test_register_identify_and_reservation(clock: Clock) -> None:
    """/register with the password twice; another connection taking the name is
    told to identify, and renamed 60 s later unless it does."""
    factory = make_factory(clock)
    alice, a = connect(factory, "alice")
    alice.dataReceived(b"/register one-password other-password\r\n")
    assert lines(a)[0].startswith("ERR bad-password the two passwords differ")
    alice.dataReceived(b"/register only-once\r\n")
    assert lines(a)[0].startswith("ERR bad-args type your password twice")
    alice.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    # The ACCOUNT event and the answer: in either order (a check done at once,
    # as here, tells the chat before it answers; one from the thread after).
    account, reply = sorted(lines(a))
    assert reply.startswith("INFO alice is registered to you")
    assert account == "ACCOUNT alice alice"
    alice.dataReceived(b"/quit\r\n")
    again, g = connect(factory, "alice")
    # connect() cleared the welcome; the reservation notice was in it
    again.dataReceived(b"/identify wrong-one\r\n/identify s3cret-pw\r\n")
    wrong, *rest = lines(g)
    assert wrong == "ERR auth-failed wrong password, or no account of that name"
    assert sorted(rest) == ["ACCOUNT alice alice", "INFO You are identified as alice."]
    again.dataReceived(b"/quit\r\n")
    mallory, m = connect(factory, "alice")
    clock.advance(60)
    renamed, notice = lines(m)
    assert renamed.startswith("RENAME alice Guest")
    assert notice.startswith("INFO You did not identify for alice within 60 seconds")


def test_reservation_notice_comes_after_the_welcome(clock: Clock) -> None:
    """WELCOME first, then the MOTD, then the notice, then JOIN #lobby."""
    factory: ChatFactory = make_factory(clock)
    alice, a = connect(factory, "alice")
    alice.dataReceived(b"/register s3cret-pw s3cret-pw\r\n/quit\r\n")
    from helpers import open_connection

    other, out = open_connection(factory, 40999, "127.0.9.9")
    out.clear()
    other.dataReceived(b"alice\r\n")
    verbs = [text.split(" ", 1)[0] for text in lines(out)]
    assert verbs[:3] == ["WELCOME", "INFO", "JOIN"]


def test_register_and_unregister_a_room(clock: Clock) -> None:
    """/register #room needs an identified operator; /unregister #room its
    founder."""
    factory = make_factory(clock)
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n/register #dev\r\n")
    assert lines(a)[-1].startswith("ERR not-identified identify first")
    alice.dataReceived(b"/register s3cret-pw s3cret-pw\r\n/register #dev\r\n")
    assert lines(a)[-1].startswith("INFO #dev is registered to your account, alice")
    assert "#dev" in factory.chat.records
    bob.dataReceived(b"/join #dev\r\n/unregister #dev\r\n")
    assert lines(b)[-1] == "ERR not-operator only the founder of #dev may unregister it"
    alice.dataReceived(b"/unregister #dev\r\n")
    assert lines(a)[-1] == "INFO #dev is not registered any more."


def test_kill_is_for_server_operators(clock: Clock) -> None:
    """/kill by anyone else: not-operator; by a server operator: BYE to the
    victim, QUIT to the others."""
    factory = make_factory(clock, operators=("root",))
    (root, r), (bob, b) = connect(factory, "root"), connect(factory, "bob")
    bob.dataReceived(b"/kill root\r\n")
    assert lines(b)[0].startswith("ERR not-operator you are not a server operator")
    root.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    lines(r), lines(b)
    root.dataReceived(b"/kill bob flooding\r\n")
    assert lines(b)[0] == "BYE Killed by root: flooding"
    assert lines(r) == [
        "QUIT bob Killed by root: flooding",
        "INFO bob was disconnected.",
    ]


def test_secret_rooms_are_listed_to_their_members_only() -> None:
    """/mode +s: /rooms and /who leave the room out for people not in it."""
    factory = make_factory()
    (alice, a), (bob, b) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #hidden\r\n/mode +s\r\n/rooms\r\n")
    assert lines(a)[-1] == "ROOMS #hidden:1 #lobby:2"
    bob.dataReceived(b"/rooms\r\n/who #hidden\r\n")
    listed, refused = lines(b)
    assert listed == "ROOMS #lobby:2"
    assert refused.startswith("ERR no-such-room ")
