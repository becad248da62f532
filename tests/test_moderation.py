"""The rules of rooms people run, in the model: who may do what to whom.

No Twisted: a Chat, recording clients, method calls, and the events.
"""

from __future__ import annotations

import pytest
from helpers import RecordingClient

from chatd.model.chat import Chat, Message, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import (
    AccountChanged,
    Invited,
    Kicked,
    ModesChanged,
    TopicChanged,
)
from chatd.model.names import LOBBY
from chatd.model.room_rules import Change, RoomRecord, ban_key, parse_changes

NOW = 1_700_000_000.0


def make_chat(**kwargs: object) -> Chat:
    return Chat(now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def enter(chat: Chat, nick: str, *rooms: str) -> tuple[User, RecordingClient]:
    client = RecordingClient()
    user = chat.register(nick, client)
    for room in rooms:
        chat.join(user, room)
    client.take()
    return user, client


def code_of(action: object) -> ErrorCode:
    """Run action (a no-argument callable); return the ChatError code it raised."""
    with pytest.raises(ChatError) as caught:
        action()  # type: ignore[operator]
    return caught.value.code


def test_first_member_of_a_new_room_is_its_operator() -> None:
    """Whoever makes a room runs it; a later joiner does not; #lobby has none."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", LOBBY, "#dev")
    bob, _ = enter(chat, "bob", LOBBY, "#dev")
    dev, lobby = chat.rooms["#dev"], chat.rooms["#lobby"]
    assert dev.rules.ops == {alice}
    assert chat.is_operator(dev, alice) and not chat.is_operator(dev, bob)
    assert not lobby.rules.ops
    assert dev.rules.created == NOW


def test_only_operators_op_kick_ban_and_set_modes() -> None:
    """A member who does not run the room gets not-operator, and nothing changes."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    a.take()
    for action in (
        lambda: chat.change_modes(bob, "#dev", [Change("o", True, "bob")]),
        lambda: chat.change_modes(bob, "#dev", [Change("m", True)]),
        lambda: chat.change_modes(bob, "#dev", [Change("b", True, "alice")]),
        lambda: chat.kick(bob, "#dev", "alice", "bye"),
    ):
        assert code_of(action) is ErrorCode.NOT_OPERATOR
    assert chat.rooms["#dev"].rules.ops == {alice}
    assert a.take() == [] and b.take() == []


def test_outsiders_are_not_in_room() -> None:
    """Someone not in the room cannot run it: not-in-room (even its old operator)."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    enter(chat, "bob", "#dev")
    carol, _ = enter(chat, "carol")
    assert code_of(lambda: chat.kick(carol, "#dev", "bob", "")) is (
        ErrorCode.NOT_IN_ROOM
    )
    assert code_of(lambda: chat.set_topic(carol, "#dev", "x")) is (
        ErrorCode.NOT_IN_ROOM
    )


def test_op_and_voice_reach_everyone_in_one_event() -> None:
    """+o and +v of two people: one ModesChanged, the same object for all."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    carol, c = enter(chat, "carol", "#dev")
    a.take(), b.take()
    chat.change_modes(
        alice, "#dev", [Change("o", True, "bob"), Change("v", True, "carol")]
    )
    (event,) = a.take()
    assert event == ModesChanged(
        "#dev", "alice", (Change("o", True, "bob"), Change("v", True, "carol"))
    )
    assert b.take()[0] is event and c.take()[0] is event
    rules = chat.rooms["#dev"].rules
    assert rules.ops == {alice, bob} and rules.voiced == {carol}


def test_status_targets_must_be_members_and_exist() -> None:
    """+o of a stranger is not-member, of nobody no-such-nick; the rest applies."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    enter(chat, "bob", LOBBY)
    _, applied, errors = chat.change_modes(
        alice,
        "#dev",
        [Change("o", True, "bob"), Change("o", True, "nobody"), Change("i", True)],
    )
    assert applied == [Change("i", True)]
    assert [error.code for error in errors] == [
        ErrorCode.NOT_MEMBER,
        ErrorCode.NO_SUCH_NICK,
    ]
    assert errors[0].nick == "bob" and errors[0].room == "#dev"


def test_changes_that_change_nothing_are_left_out() -> None:
    """+n on a new room (n is on already) and -i on a room without it: no event."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    _, applied, errors = chat.change_modes(
        alice, "#dev", [Change("n", True), Change("i", False)]
    )
    assert applied == [] and errors == [] and a.take() == []


def test_a_banned_user_cannot_join_nor_speak() -> None:
    """Bans by nickname, mask and account; a member banned stays but is quiet."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    carol, _ = enter(chat, "carol")
    chat.change_modes(alice, "#dev", [Change("b", True, "carol")])
    assert code_of(lambda: chat.join(carol, "#dev")) is ErrorCode.BANNED
    chat.change_modes(alice, "#dev", [Change("b", True, "b*!*@*")])
    b.take()
    assert code_of(lambda: chat.say(bob, "hi", "#dev")) is ErrorCode.BANNED
    assert bob.is_member(chat.rooms["#dev"])
    dave, _ = enter(chat, "dave")
    dave.account = "Dave"
    chat.change_modes(alice, "#dev", [Change("b", True, "account:dave")])
    assert code_of(lambda: chat.join(dave, "#dev")) is ErrorCode.BANNED


def test_even_an_operator_who_is_banned_is_quiet() -> None:
    """A ban applies to operators too: they must unban first."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    chat.change_modes(alice, "#dev", [Change("b", True, "alice")])
    assert code_of(lambda: chat.say(alice, "hi", "#dev")) is ErrorCode.BANNED
    chat.change_modes(alice, "#dev", [Change("b", False, "ALICE!*@*")])
    chat.say(alice, "hi", "#dev")


def test_equivalent_masks_are_one_ban() -> None:
    """bob, BOB!*@* and bob!* are the same ban; unban takes any spelling."""
    assert ban_key("bob") == ban_key("BOB!*@*") == ban_key("bob!*") == "bob!*@*"
    assert ban_key("*@host") == "*!*@host"
    assert ban_key("$a:Alice") == ban_key("account:alice") == "account:alice"
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    _, applied, _ = chat.change_modes(
        alice, "#dev", [Change("b", True, "bob"), Change("b", True, "BOB!*@*")]
    )
    assert applied == [Change("b", True, "bob")]
    _, applied, _ = chat.change_modes(alice, "#dev", [Change("b", False, "bob!*")])
    assert applied == [Change("b", False, "bob")]
    assert not chat.rooms["#dev"].rules.bans


def test_invite_only_key_and_limit() -> None:
    """+i needs an invitation (used once), +k the key, +l room below the limit."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob")
    carol, _ = enter(chat, "carol")
    chat.change_modes(alice, "#dev", [Change("i", True)])
    assert code_of(lambda: chat.join(bob, "#dev")) is ErrorCode.INVITE_ONLY
    chat.invite(alice, "bob", "#dev")
    assert b.take() == [Invited("#dev", "bob", "alice")]
    chat.join(bob, "#dev")
    chat.part(bob, "#dev", "")
    assert code_of(lambda: chat.join(bob, "#dev")) is ErrorCode.INVITE_ONLY
    chat.change_modes(alice, "#dev", [Change("i", False), Change("k", True, "s3")])
    assert code_of(lambda: chat.join(bob, "#dev")) is ErrorCode.WRONG_KEY
    assert code_of(lambda: chat.join(bob, "#dev", "nope")) is ErrorCode.WRONG_KEY
    chat.join(bob, "#dev", "s3")
    chat.change_modes(alice, "#dev", [Change("k", False), Change("l", True, "2")])
    assert code_of(lambda: chat.join(carol, "#dev")) is ErrorCode.ROOM_FULL


def test_invite_rules() -> None:
    """Members invite to an open room; only operators to an invite-only one;
    someone already in gets already-in-room; only the invitee is told."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    carol, c = enter(chat, "carol")
    a.take()
    chat.invite(bob, "carol", "#dev")
    assert c.take() == [Invited("#dev", "carol", "bob")] and a.take() == []
    chat.change_modes(alice, "#dev", [Change("i", True)])
    assert code_of(lambda: chat.invite(bob, "carol", "#dev")) is (
        ErrorCode.NOT_OPERATOR
    )
    assert code_of(lambda: chat.invite(alice, "bob", "#dev")) is (
        ErrorCode.ALREADY_IN_ROOM
    )
    assert code_of(lambda: chat.invite(carol, "bob", "#dev")) is ErrorCode.NOT_IN_ROOM


def test_moderated_room_lets_only_operators_and_voiced_speak() -> None:
    """+m: a plain member gets moderated; voice them and they speak."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    chat.change_modes(alice, "#dev", [Change("m", True)])
    assert code_of(lambda: chat.say(bob, "hi", "#dev")) is ErrorCode.MODERATED
    chat.say(alice, "quiet please", "#dev")
    chat.change_modes(alice, "#dev", [Change("v", True, "bob")])
    a.take()
    chat.say(bob, "thanks", "#dev")
    assert a.take() == [Message("#dev", "bob", "thanks")]


def test_no_external_is_on_and_can_be_turned_off() -> None:
    """-n lets someone outside the room speak to it; +n (the default) does not."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob")
    assert code_of(lambda: chat.say(bob, "hi", "#dev")) is ErrorCode.NOT_IN_ROOM
    chat.change_modes(alice, "#dev", [Change("n", False)])
    a.take()
    chat.say(bob, "hi from outside", "#dev")
    assert a.take() == [Message("#dev", "bob", "hi from outside")]


def test_topic_by_members_unless_kept_to_operators() -> None:
    """Anyone in the room sets the topic; +t keeps it to operators."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    a.take()
    chat.set_topic(bob, "#dev", "  release on friday  ")
    assert (
        a.take() == b.take() == [TopicChanged("#dev", "bob", "release on friday", NOW)]
    )
    chat.change_modes(alice, "#dev", [Change("t", True)])
    assert code_of(lambda: chat.set_topic(bob, "#dev", "x")) is ErrorCode.NOT_OPERATOR
    chat.set_topic(alice, "#dev", "")
    assert chat.rooms["#dev"].rules.topic == ""


def test_kick_puts_the_member_out_with_a_reason() -> None:
    """KICK reaches everyone, the kicked too; then they are out of the room."""
    chat = make_chat()
    alice, a = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    a.take()
    chat.join(bob, "#dev")
    chat.kick(alice, "#dev", "bob", "")
    assert a.take() == b.take() == [Kicked("#dev", "bob", "alice", "alice")]
    assert not bob.is_member(chat.rooms["#dev"])
    assert bob.current == "#lobby"


def test_the_room_keeps_an_operator_when_its_last_one_leaves() -> None:
    """Parting, quitting or being kicked: the longest member runs it next."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    bob, b = enter(chat, "bob", "#dev")
    carol, _ = enter(chat, "carol", "#dev")
    chat.part(alice, "#dev", "")
    assert b.take()[-1] == ModesChanged("#dev", "chatd", (Change("o", True, "bob"),))
    chat.kick(bob, "#dev", "bob", "stepping out")
    assert chat.rooms["#dev"].rules.ops == {carol}


def test_an_operator_may_step_down() -> None:
    """-o on oneself: with others there, the longest other member runs the room;
    alone, it is unrun until someone joins, who then runs it."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    chat.change_modes(alice, "#dev", [Change("o", False, "alice")])
    assert chat.rooms["#dev"].rules.ops == {bob}
    carol, _ = enter(chat, "carol", "#solo")
    chat.change_modes(carol, "#solo", [Change("o", False, "carol")])
    assert chat.rooms["#solo"].rules.ops == set()
    chat.join(alice, "#solo")
    assert chat.rooms["#solo"].rules.ops == {alice}


def test_server_operators_run_every_room_and_disconnect_people() -> None:
    """An account of --operators: ops in #lobby, joins past bans, kills; others
    cannot kick them nor kill."""
    chat = make_chat(server_operators=["Root"])
    root, _ = enter(chat, "root", LOBBY)
    alice, a = enter(chat, "alice", LOBBY, "#dev")
    root.account = "root"
    chat.change_modes(root, LOBBY, [Change("m", True)])
    chat.change_modes(alice, "#dev", [Change("b", True, "root"), Change("i", True)])
    chat.join(root, "#dev")
    assert code_of(lambda: chat.kick(alice, "#dev", "root", "")) is (
        ErrorCode.NOT_OPERATOR
    )
    assert code_of(lambda: chat.kill(alice, "root", "")) is ErrorCode.NOT_OPERATOR
    chat.kill(root, "alice", "spam")
    assert a.closed == ["Killed by root: spam"]


def test_a_server_operator_deopping_the_last_operator_hands_the_room_on() -> None:
    """A server operator's MODE #dev -o alice, alice its only operator: the
    member there longest after her runs it; alone, alice is left without."""
    chat = make_chat(server_operators=["root"])
    root, _ = enter(chat, "root", LOBBY)
    root.account = "root"
    alice, _ = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    chat.change_modes(root, "#dev", [Change("o", False, "alice")])
    assert chat.rooms["#dev"].rules.ops == {bob}
    enter(chat, "carol", "#solo")
    chat.change_modes(root, "#solo", [Change("o", False, "carol")])
    assert chat.rooms["#solo"].rules.ops == set()


def test_registered_room_keeps_state_and_operators_by_account() -> None:
    """/register #room: the record outlives the members; the founder's account
    gets op back on joining; a stranger joining an empty registered room does
    not; nobody but the founder de-ops the founder."""
    chat = make_chat()
    saved: list[tuple[RoomRecord | None, str]] = []
    chat.record_changed = lambda record, key: saved.append((record, key))
    alice, _ = enter(chat, "alice", "#dev")
    alice.account = "alice"
    chat.set_topic(alice, "#dev", "kept")
    record = chat.register_room(alice, "#dev")
    assert record.founder == "alice" and record.operators == {"alice"}
    assert saved[-1] == (record, "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    assert code_of(
        lambda: chat.change_modes(bob, "#dev", [Change("o", False, "alice")])
    ) in (ErrorCode.NOT_OPERATOR,)
    chat.part(alice, "#dev", "")
    chat.part(bob, "#dev", "")
    assert "#dev" not in chat.rooms and "#dev" in chat.records
    carol, _ = enter(chat, "carol", "#dev")
    assert chat.rooms["#dev"].rules.ops == set()
    assert chat.rooms["#dev"].rules.topic == "kept"
    chat.join(alice, "#dev")
    assert chat.rooms["#dev"].rules.ops == {alice}


def test_identifying_in_a_registered_room_gives_status() -> None:
    """An operator account that identifies while in the room becomes operator."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    alice.account = "alice"
    chat.register_room(alice, "#dev")
    chat.part(alice, "#dev", "")
    bob, b = enter(chat, "bob", "#dev")
    alice.account = ""
    chat.join(alice, "#dev")
    assert chat.rooms["#dev"].rules.ops == set()
    b.take()
    chat.set_account(alice, "alice")
    assert b.take() == [
        AccountChanged("alice", "alice"),
        ModesChanged("#dev", "chatd", (Change("o", True, "alice"),)),
    ]


def test_registering_a_room_needs_an_identified_operator() -> None:
    """Not identified: not-identified; identified but not operator: not-operator."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    bob, _ = enter(chat, "bob", "#dev")
    assert code_of(lambda: chat.register_room(alice, "#dev")) is (
        ErrorCode.NOT_IDENTIFIED
    )
    bob.account = "bob"
    assert code_of(lambda: chat.register_room(bob, "#dev")) is ErrorCode.NOT_OPERATOR
    assert code_of(lambda: chat.register_room(bob, LOBBY)) is ErrorCode.BAD_ARGS


def test_parse_changes_reads_irc_mode_words() -> None:
    """+ov-b alice bob *!*@x: changes in order; b alone asks for the list."""
    changes, lists, errors = parse_changes(["+ov-b", "alice", "bob", "*!*@x"])
    assert changes == [
        Change("o", True, "alice"),
        Change("v", True, "bob"),
        Change("b", False, "*!*@x"),
    ]
    assert lists == [] and errors == []
    changes, lists, errors = parse_changes(["+bz"])
    assert changes == [] and lists == ["b"] and [e.mode for e in errors] == ["z"]
    changes, _, errors = parse_changes(["+kl"])
    assert changes == [] and [e.mode for e in errors] == ["k", "l"]


def test_key_and_limit_values_are_checked() -> None:
    """A key with a space or over 23 characters, a limit of 0: bad-args."""
    chat = make_chat()
    alice, _ = enter(chat, "alice", "#dev")
    for change in (
        Change("k", True, "two words"),
        Change("k", True, "x" * 24),
        Change("l", True, "0"),
        Change("l", True, "abc"),
    ):
        _, applied, errors = chat.change_modes(alice, "#dev", [change])
        assert applied == [] and errors[0].code is ErrorCode.BAD_ARGS
