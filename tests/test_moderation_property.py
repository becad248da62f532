"""Property: whatever moderation commands come, in whatever order, the rules hold.

Hypothesis draws sequences of joins, parts, quits, renames, messages, mode
changes (+o +v +b +i +k +l +m +n +t and their minus), kicks, invitations,
identifications and room registrations, by anyone to anyone. After every
step:

- a refused step (ChatError) changed nothing at all;
- a banned user's message is always refused, and so is a plain member's in
  a moderated room; a message that went out came from someone allowed;
- operators and voiced users are members of the room;
- an unregistered room other than #lobby with two or more members has an
  operator; with one, it has one unless that member stepped down (-o on
  themselves) or was de-opped by a server operator since it was last run;
- a registered room's record always lists its founder among its operators;
- a member of an invite-only room who joined after +i was invited (or runs
  the server), and one who joined a keyed room gave the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers import RecordingClient
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.model.chat import Chat, User
from chatd.model.errors import ChatError
from chatd.model.names import LOBBY, fold
from chatd.model.room_rules import Change

NICKS = ("alice", "bob", "carol", "dave")
ROOMS = ("#a", "#b", LOBBY)
KEYS = ("k1", "k2")
LETTERS = "imntkl"

nick = st.sampled_from(NICKS)
room = st.sampled_from(ROOMS)
step = st.one_of(
    st.tuples(st.just("join"), nick, room, st.sampled_from((None, *KEYS))),
    st.tuples(st.just("part"), nick, room),
    st.tuples(st.just("say"), nick, room),
    st.tuples(st.just("quit"), nick),
    st.tuples(st.just("rename"), nick),
    st.tuples(
        st.just("status"), nick, room, st.sampled_from("ov"), st.booleans(), nick
    ),
    st.tuples(st.just("ban"), nick, room, st.booleans(), nick),
    st.tuples(st.just("flag"), nick, room, st.sampled_from(LETTERS), st.booleans()),
    st.tuples(st.just("kick"), nick, room, nick),
    st.tuples(st.just("invite"), nick, nick, room),
    st.tuples(st.just("identify"), nick),
    st.tuples(st.just("register"), nick, room),
    st.tuples(st.just("topic"), nick, room),
)


@dataclass
class World:
    """The chat, its users by their original names, and what the test tracks."""

    chat: Chat
    users: dict[str, User]
    stepped_down: set[str]  # rooms whose lone member stepped down


def snapshot(chat: Chat) -> object:
    """Everything the rules may change, as plain values."""
    rooms = {}
    for key, found in chat.rooms.items():
        rules = found.rules
        rooms[key] = (
            tuple(found.members),
            tuple(sorted(u.key for u in rules.ops)),
            tuple(sorted(u.key for u in rules.voiced)),
            tuple(sorted(rules.flags)),
            rules.key,
            rules.limit,
            tuple(ban.key for ban in rules.bans),
            rules.topic,
            tuple(sorted((u.key, until) for u, until in rules.invited.items())),
        )
    users = {key: (u.nick, u.account, tuple(u.rooms)) for key, u in chat.users.items()}
    records = {
        key: (tuple(sorted(r.operators)), r.founder) for key, r in chat.records.items()
    }
    return rooms, users, records


def user_of(world: World, name: str) -> User | None:
    user = world.users.get(name)
    if user is None or world.chat.users.get(user.key) is not user:
        return None
    return user


def run(world: World, action: tuple[object, ...]) -> None:
    """Do one step (which may raise ChatError)."""
    chat = world.chat
    kind = action[0]
    actor = user_of(world, str(action[1]))
    if actor is None:
        if kind in ("join", "quit"):  # come back under the same name
            name = str(action[1])
            if fold(name) in chat.users:
                return
            world.users[name] = chat.register(name, RecordingClient())
        return
    match action:
        case ("join", _, str(name), key):
            before = chat.rooms.get(fold(name))
            invited = before is not None and actor.key in before.rules.invited
            room, added = chat.join(actor, name, key if isinstance(key, str) else None)
            rules = room.rules
            if added and before is not None and not chat.is_server_operator(actor):
                assert not rules.has("i") or invited
                assert not rules.key or key == rules.key
                assert rules.banned(actor) is None
            if added and (len(room.members) > 1 or room.rules.ops):
                world.stepped_down.discard(room.key)
        case ("part", _, str(name)):
            chat.part(actor, name, "")
        case ("say", _, str(name)):
            found = chat.rooms.get(fold(name))
            banned = found is not None and found.rules.banned(actor) is not None
            quiet = (
                found is not None
                and found.rules.has("m")
                and actor not in found.rules.ops
                and actor not in found.rules.voiced
            )
            chat.say(actor, "hello", name)
            # It went out: the speaker was allowed to speak there.
            assert chat.is_server_operator(actor) or not (banned or quiet)
        case ("quit", _):
            chat.quit(actor, "bye")
        case ("rename", _):
            new = actor.nick + "_" if len(actor.nick) < 18 else actor.nick[:5]
            chat.rename(actor, new)
        case ("status", _, str(name), str(letter), bool(on), target):
            target_user = user_of(world, str(target))
            if target_user is None:
                return
            chat.change_modes(actor, name, [Change(letter, on, target_user.nick)])
            by_operator = chat.is_server_operator(actor)
            if letter == "o" and not on and (target_user is actor or by_operator):
                found = chat.rooms.get(fold(name))
                if found is not None and not found.rules.ops:
                    world.stepped_down.add(found.key)
        case ("ban", _, str(name), bool(on), target):
            chat.change_modes(actor, name, [Change("b", on, str(target))])
        case ("flag", _, str(name), str(letter), bool(on)):
            arg = {"k": KEYS[0], "l": "3"}.get(letter, "") if on else ""
            chat.change_modes(actor, name, [Change(letter, on, arg)])
        case ("kick", _, str(name), target):
            target_user = user_of(world, str(target))
            if target_user is not None:
                chat.kick(actor, name, target_user.nick, "out")
        case ("invite", _, target, str(name)):
            target_user = user_of(world, str(target))
            if target_user is not None:
                chat.invite(actor, target_user.nick, name)
        case ("identify", _):
            chat.set_account(actor, str(action[1]))
        case ("register", _, str(name)):
            chat.register_room(actor, name)
        case ("topic", _, str(name)):
            chat.set_topic(actor, name, "a topic")


def check_rules(world: World) -> None:
    chat = world.chat
    for key, found in chat.rooms.items():
        rules = found.rules
        members = set(found.members.values())
        assert rules.ops <= members, key
        assert rules.voiced <= members, key
        if key == fold(LOBBY) or rules.record is not None:
            continue
        if len(members) >= 2:
            assert rules.ops, f"{key} has {len(members)} members and no operator"
        elif len(members) == 1 and not rules.ops:
            assert key in world.stepped_down, f"{key}'s lone member does not run it"
    for key, record in chat.records.items():
        assert record.founder in record.operators, key


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_the_rules_hold_after_any_sequence(steps: list[tuple[object, ...]]) -> None:
    """Any sequence of moderation steps keeps every rule (see the module)."""
    chat = Chat(now=lambda: 1.0, server_operators=["dave"])
    users = {name: chat.register(name, RecordingClient()) for name in NICKS}
    for name in ROOMS:  # alice makes #a and runs it, then everyone comes in
        for user in users.values():
            chat.join(user, name)
    world = World(chat, users, set())
    for action in steps:
        before = snapshot(chat)
        try:
            run(world, action)
        except ChatError:
            assert snapshot(chat) == before, f"{action} was refused but changed state"
        check_rules(world)
