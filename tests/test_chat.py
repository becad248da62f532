"""The chat model with plain recording clients: no transports involved."""

from __future__ import annotations

import pytest
from helpers import RecordingClient
from zope.interface.verify import verifyObject

from chatd.model.chat import (
    Action,
    Chat,
    IChatClient,
    Joined,
    Message,
    Parted,
    Private,
    Quit,
    Renamed,
    User,
)
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import ModesChanged
from chatd.model.names import LOBBY
from chatd.model.room_rules import Change


def enter(chat: Chat, nick: str) -> tuple[User, RecordingClient]:
    """Register nick, put them in #lobby and forget the events so far."""
    client = RecordingClient()
    user = chat.register(nick, client)
    chat.join(user, LOBBY)
    return user, client


def clear(*clients: RecordingClient) -> None:
    for client in clients:
        client.take()


def test_recording_client_provides_the_interface() -> None:
    """The test double honours IChatClient, like the real protocol."""
    assert verifyObject(IChatClient, RecordingClient())


def test_join_is_seen_by_joiner_and_members() -> None:
    """JOIN goes to every member, the joiner included."""
    chat = Chat()
    alice, a = enter(chat, "alice")
    a.take()
    bob, b = enter(chat, "bob")
    assert a.take() == b.take() == [Joined("#lobby", "bob")]


def test_message_reaches_every_member_as_one_object() -> None:
    """Everyone in the room gets the very same event object, sender included."""
    chat = Chat()
    (alice, a), (bob, b), (carol, c) = (
        enter(chat, n) for n in ("alice", "bob", "carol")
    )
    chat.part(carol, LOBBY, "")
    clear(a, b, c)
    chat.say(alice, "hi")
    (got_a,), (got_b,) = a.take(), b.take()
    assert got_a == Message("#lobby", "alice", "hi")
    assert got_a is got_b
    assert c.take() == []  # carol left #lobby


def test_message_goes_to_current_room_only() -> None:
    """A line goes to the sender's current room, not to their other rooms."""
    chat = Chat()
    (alice, a), (_bob, b) = enter(chat, "alice"), enter(chat, "bob")
    chat.join(alice, "#dev")
    clear(a, b)
    chat.say(alice, "in dev")
    assert a.take() == [Message("#dev", "alice", "in dev")]
    assert b.take() == []


def test_nick_taken_ignores_case_and_compatibility_forms() -> None:
    """ALICE and fullwidth ａｌｉｃｅ are the same nickname as alice."""
    chat = Chat()
    enter(chat, "alice")
    for other in ("ALICE", "ａｌｉｃｅ", "Alice"):
        with pytest.raises(ChatError) as refused:
            chat.register(other, RecordingClient())
        assert refused.value.code is ErrorCode.NICK_TAKEN


def test_invalid_nick_changes_nothing() -> None:
    """A refused registration leaves no trace."""
    chat = Chat()
    with pytest.raises(ChatError) as refused:
        chat.register("9lives", RecordingClient())
    assert refused.value.code is ErrorCode.NICK_INVALID
    assert chat.users == {}


@pytest.mark.parametrize(
    "nick",
    [
        *("chatd", "CHATD", "server", "NickServ", "chanserv", "GLOBAL"),
        *("MSG", "INFO", "ERR", "NICK", "ＮＩＣＫ", "HISTORY", "ENDHISTORY"),
    ],
)
def test_names_reserved_for_the_server_are_refused(nick: str) -> None:
    """The server's name and the service names in any case or width, and every
    verb in capitals, are nick-invalid, at registration and in a rename."""
    chat = Chat()
    with pytest.raises(ChatError) as refused:
        chat.register(nick, RecordingClient())
    assert refused.value.code is ErrorCode.NICK_INVALID
    assert "reserved for the server" in refused.value.text
    assert chat.users == {}
    alice, _ = enter(chat, "alice")
    with pytest.raises(ChatError) as refused:
        chat.rename(alice, nick)
    assert refused.value.code is ErrorCode.NICK_INVALID and alice.nick == "alice"


def test_the_configured_server_name_is_reserved() -> None:
    """A server called lan keeps Lan for itself; chatd is then an ordinary name."""
    chat = Chat(server_name="lan")
    with pytest.raises(ChatError) as refused:
        chat.register("Lan", RecordingClient())
    assert refused.value.code is ErrorCode.NICK_INVALID
    assert chat.register("chatd", RecordingClient()).nick == "chatd"


def test_nickname_is_freed_when_its_owner_quits() -> None:
    """After QUIT the same nickname can be registered again at once."""
    chat = Chat()
    alice, _ = enter(chat, "alice")
    chat.quit(alice, "bye")
    assert chat.register("Alice", RecordingClient()).nick == "Alice"


def test_quit_reaches_each_neighbour_once() -> None:
    """Sharing two rooms with the leaver gives exactly one QUIT; strangers none."""
    chat = Chat()
    (alice, a), (bob, b) = enter(chat, "alice"), enter(chat, "bob")
    carol, c = enter(chat, "carol")
    chat.part(carol, None, "")
    chat.join(alice, "#dev")
    chat.join(bob, "#dev")
    clear(a, b, c)
    chat.quit(alice, "gone fishing")
    # alice ran #dev (she made it): bob, there longest now, runs it after her.
    assert b.take() == [
        Quit("alice", "gone fishing"),
        ModesChanged("#dev", "chatd", (Change("o", True, "bob"),)),
    ]
    assert a.take() == [] and c.take() == []
    assert "#dev" in chat.rooms  # bob is still there
    chat.quit(bob, "")
    assert "#dev" not in chat.rooms  # empty rooms go, #lobby stays
    assert LOBBY in chat.rooms


def test_part_defaults_to_current_and_falls_back_to_lobby() -> None:
    """/part leaves the current room; plain lines then go to #lobby."""
    chat = Chat()
    (alice, a), (bob, b) = enter(chat, "alice"), enter(chat, "bob")
    chat.join(alice, "#dev")
    chat.join(bob, "#dev")
    clear(a, b)
    chat.part(alice, None, "lunch")
    assert a.take() == [Parted("#dev", "alice", "lunch")]
    assert b.take() == [
        Parted("#dev", "alice", "lunch"),
        ModesChanged("#dev", "chatd", (Change("o", True, "bob"),)),
    ]
    chat.say(alice, "back in the lobby")
    assert b.take() == [Message("#lobby", "alice", "back in the lobby")]


def test_part_refusals() -> None:
    """Parting a room one is not in, a missing room, or a bad name is refused."""
    chat = Chat()
    alice, _ = enter(chat, "alice")
    bob, _ = enter(chat, "bob")
    chat.join(bob, "#dev")
    cases = [
        ("#dev", ErrorCode.NOT_IN_ROOM),
        ("#nowhere", ErrorCode.NO_SUCH_ROOM),
        ("nohash", ErrorCode.ROOM_INVALID),
    ]
    for name, code in cases:
        with pytest.raises(ChatError) as refused:
            chat.part(alice, name, "")
        assert refused.value.code is code


def test_a_room_is_found_by_its_name_in_any_case_and_bad_names_are_refused() -> None:
    """Chat.room: the name a room was made with, another case of it, or a
    compatibility form find it; a bad name is refused as bad, not as missing."""
    chat = Chat()
    alice, _ = enter(chat, "alice")
    chat.join(alice, "#Dev")
    room = chat.rooms["#dev"]
    assert chat.room("#Dev") is room
    assert chat.room("#dev") is room
    assert chat.room("#ＤＥＶ") is room
    for name, code in [
        ("#nowhere", ErrorCode.NO_SUCH_ROOM),
        ("dev", ErrorCode.ROOM_INVALID),
        ("#de\u200bv", ErrorCode.ROOM_INVALID),
        ("#", ErrorCode.ROOM_INVALID),
    ]:
        with pytest.raises(ChatError) as refused:
            chat.room(name)
        assert refused.value.code is code, name


def test_talking_after_leaving_lobby_is_refused() -> None:
    """With no current room left, a plain line gets not-in-room."""
    chat = Chat()
    alice, _ = enter(chat, "alice")
    chat.part(alice, LOBBY, "")
    with pytest.raises(ChatError) as refused:
        chat.say(alice, "anyone?")
    assert refused.value.code is ErrorCode.NOT_IN_ROOM


def test_rooms_compare_ignoring_case_and_keep_first_spelling() -> None:
    """#Dev and #dev are one room, shown as its creator spelled it."""
    chat = Chat()
    (alice, a), (bob, b) = enter(chat, "alice"), enter(chat, "bob")
    chat.join(alice, "#Dev")
    clear(a, b)
    chat.join(bob, "#DEV")
    assert a.take() == [Joined("#Dev", "bob")]
    assert chat.room_sizes() == [("#Dev", 2), ("#lobby", 2)]


def test_join_twice_changes_current_room_only() -> None:
    """Joining a room one is in sends nothing and makes it current."""
    chat = Chat()
    alice, a = enter(chat, "alice")
    chat.join(alice, "#dev")
    chat.join(alice, "#ops")
    a.take()
    room, added = chat.join(alice, "#dev")
    assert not added and a.take() == []
    chat.say(alice, "x")
    assert a.take() == [Message("#dev", "alice", "x")]


def test_rename_reaches_neighbours_and_self_and_keeps_join_order() -> None:
    """RENAME goes to the renamer and to everyone who shares a room, once each."""
    chat = Chat()
    (alice, a), (bob, b), (carol, c) = (
        enter(chat, n) for n in ("alice", "bob", "carol")
    )
    chat.part(carol, None, "")
    chat.join(alice, "#dev")
    chat.join(bob, "#dev")
    clear(a, b, c)
    chat.rename(alice, "Alicia")
    assert a.take() == b.take() == [Renamed("alice", "Alicia")]
    assert c.take() == []
    assert list(chat.rooms["#dev"].members) == ["alicia", "bob"]
    assert chat.user("ALICIA") is alice
    with pytest.raises(ChatError):
        chat.user("alice")


def test_rename_to_own_nick_in_other_case_is_allowed() -> None:
    """alice may become Alice; bob may not become ALICE."""
    chat = Chat()
    (alice, a), (bob, _) = enter(chat, "alice"), enter(chat, "bob")
    a.take()
    chat.rename(alice, "Alice")
    assert a.take() == [Renamed("alice", "Alice")]
    with pytest.raises(ChatError) as refused:
        chat.rename(bob, "ALICE")
    assert refused.value.code is ErrorCode.NICK_TAKEN and bob.nick == "bob"


def test_private_message_goes_to_recipient_and_echoes_to_sender() -> None:
    """PRIV reaches the recipient and the sender, nobody else; to oneself once."""
    chat = Chat()
    (alice, a), (bob, b), (carol, c) = (
        enter(chat, n) for n in ("alice", "bob", "carol")
    )
    clear(a, b, c)
    chat.tell(alice, "BOB", "psst")
    (got,) = b.take()
    assert isinstance(got, Private)
    assert (
        a.take() == [got] == [Private("alice", "bob", "psst", id=got.id, time=got.time)]
    )
    assert got.id < 0  # a live id: no history keeps it
    assert c.take() == []
    chat.tell(alice, "alice", "note to self")
    (note,) = a.take()
    assert isinstance(note, Private)
    assert note == Private("alice", "alice", "note to self", id=note.id, time=note.time)
    with pytest.raises(ChatError) as refused:
        chat.tell(alice, "nobody", "hello?")
    assert refused.value.code is ErrorCode.NO_SUCH_NICK


def test_action_goes_to_current_room() -> None:
    """/me in a room reaches its members as ACTION."""
    chat = Chat()
    (alice, a), (_bob, b) = enter(chat, "alice"), enter(chat, "bob")
    clear(a, b)
    chat.act(alice, "waves")
    assert a.take() == b.take() == [Action("#lobby", "alice", "waves")]


def test_everyone_sees_room_events_in_the_same_order() -> None:
    """Two members interleaving messages are seen in one order by all."""
    chat = Chat()
    users = [enter(chat, f"user{i}") for i in range(5)]
    clear(*(client for _, client in users))
    for round_ in range(20):
        for user, _ in users:
            chat.say(user, f"{round_}")
    streams = [client.take() for _, client in users]
    assert len(streams[0]) == 100
    assert all(stream == streams[0] for stream in streams)


def test_rooms_per_user_are_capped_lobby_included() -> None:
    """Past max_rooms_per_user (#lobby counts) a join is too-many-rooms and
    changes nothing; rejoining a room one is in is not a new room; a part
    makes room for another."""
    chat = Chat(max_rooms_per_user=3)
    alice, a = enter(chat, "alice")
    chat.join(alice, "#a")
    chat.join(alice, "#b")
    a.take()
    with pytest.raises(ChatError) as refused:
        chat.join(alice, "#c")
    assert refused.value.code is ErrorCode.TOO_MANY_ROOMS
    assert "you are in 3 rooms" in refused.value.text and "/part" in refused.value.text
    assert "#c" not in chat.rooms and chat.current_room(alice).name == "#b"
    assert a.take() == []
    assert chat.join(alice, "#A") == (chat.rooms["#a"], False)  # already in: fine
    chat.part(alice, "#b", "")
    chat.join(alice, "#c")
    assert set(alice.rooms) == {"#lobby", "#a", "#c"}


def test_rooms_on_the_server_are_capped_lobby_included() -> None:
    """Past max_rooms a new room is too-many-rooms; existing rooms can still
    be joined, and a room that empties frees its place."""
    chat = Chat(max_rooms=3)
    (alice, _), (bob, _) = enter(chat, "alice"), enter(chat, "bob")
    chat.join(alice, "#a")
    chat.join(alice, "#b")
    with pytest.raises(ChatError) as refused:
        chat.join(bob, "#c")
    assert refused.value.code is ErrorCode.TOO_MANY_ROOMS
    assert "the server has 3 rooms" in refused.value.text
    assert "#c" not in chat.rooms and bob.current == "#lobby"
    chat.join(bob, "#b")  # not a new room
    chat.part(alice, "#a", "")  # #a empties and goes
    chat.join(bob, "#c")
    assert [name for name, _ in chat.room_sizes()] == ["#b", "#c", "#lobby"]


def test_default_caps_are_50_rooms_a_user_and_10000_rooms() -> None:
    """Chat() holds a user to 50 rooms with #lobby, and the server to 10000."""
    chat = Chat()
    alice, _ = enter(chat, "alice")
    for i in range(49):
        chat.join(alice, f"#r{i}")
    with pytest.raises(ChatError) as refused:
        chat.join(alice, "#one_too_many")
    assert refused.value.code is ErrorCode.TOO_MANY_ROOMS
    assert chat.max_rooms == 10_000


def test_room_sizes_stay_sorted_as_rooms_come_and_go() -> None:
    """The kept order matches a fresh sort, and a page is a slice of it."""
    chat = Chat()
    users = [enter(chat, f"user{i}")[0] for i in range(4)]
    for i in range(120):
        chat.join(users[i % 4], f"#{'Zz' if i % 3 else 'aa'}{(i * 37) % 101}")
    for i in range(0, 120, 5):
        chat.part(users[i % 4], f"#{'Zz' if i % 3 else 'aa'}{(i * 37) % 101}", "")
    expected = sorted(
        ((room.name, len(room.members)) for room in chat.rooms.values()),
        key=lambda pair: pair[0].casefold(),
    )
    assert chat.room_sizes() == expected
    assert chat.room_sizes(10, 7) == expected[10:17]
