"""The cluster's one table of state-changing operations, and the log's typed entries."""

from __future__ import annotations

import inspect
import json

from chatd.cluster.entries import (
    Changes,
    Close,
    Effects,
    Entry,
    Hello,
    Left,
    Lost,
    Tag,
    Talk,
    Tell,
    Turn,
    entry_from_json,
    entry_text,
)
from chatd.cluster.ops import NOT_REPLICATED, OPERATIONS, Op
from chatd.cluster.replica import ClusterChat, ReplicatedChat
from chatd.model.chat import Chat
from chatd.model.room_rules import Change


def unclassified(chat_type: type[Chat]) -> set[str]:
    """The public methods of chat_type neither replicated nor declared not to be."""
    public = {
        name
        for name, _ in inspect.getmembers(chat_type, inspect.isfunction)
        if not name.startswith("_")
    }
    replicated = {operation.name for operation in OPERATIONS}
    return public - replicated - set(NOT_REPLICATED)


def test_every_public_chat_method_is_replicated_or_declared_read_only() -> None:
    """A public model method is in the table (an op), or in NOT_REPLICATED with why
    (reads only, talk, node-local): a new one that changes state cannot be forgotten."""
    assert unclassified(Chat) == set()
    replicated = {operation.name for operation in OPERATIONS}
    assert replicated.isdisjoint(NOT_REPLICATED)
    assert all(callable(getattr(Chat, name)) for name in NOT_REPLICATED)


def test_a_new_state_changing_method_fails_the_check() -> None:
    """A method added to the model without a row in the table is reported."""

    class Grown(Chat):
        def set_colour(self, user: object, colour: str) -> None:
            """Change state nobody replicates."""

    assert unclassified(Grown) == {"set_colour"}


def test_cluster_chat_methods_are_made_from_the_table() -> None:
    """Each operation's ClusterChat method goes through replicate(): the one made
    from its row, or an override that keeps the replica's own bookkeeping and
    calls it."""
    for operation in OPERATIONS:
        made = ReplicatedChat.__dict__[operation.name]
        assert made.__name__ == operation.name
        own = ClusterChat.__dict__.get(operation.name)
        assert own is None or "super()" in inspect.getsource(own), operation.name
    wires = [operation.wire for operation in OPERATIONS]
    assert len(set(wires)) == len(wires)


def test_an_op_is_spelled_as_before_and_read_back() -> None:
    """[name, uid, arguments in the method's order]: the log's wire did not change;
    change_modes' Change objects go as [letter, on, arg]."""
    modes = next(op for op in OPERATIONS if op.wire == "modes")
    changes = (c for c in [Change("o", True, "bob"), Change("m", False)])
    arguments = modes.bind(("alice", "#dev", changes), {})
    op = modes.op(arguments, "a/1")
    assert op.to_json() == [
        "modes",
        "a/1",
        "#dev",
        [["o", True, "bob"], ["m", False, ""]],
    ]
    read = Op.from_json(json.loads(json.dumps(op.to_json())))
    assert modes.arguments(read, "ALICE") == {
        "user": "ALICE",
        "name": "#dev",
        "changes": [Change("o", True, "bob"), Change("m", False)],
    }
    register = next(op for op in OPERATIONS if op.wire == "register")
    bound = register.bind(("alice", "CLIENT"), {"host": "127.0.0.1"})
    assert register.op(bound, "a/1").to_json() == [
        "register", "a/1", "alice", "", "", "127.0.0.1", "",
    ]  # fmt: skip
    join = next(op for op in OPERATIONS if op.wire == "join")
    assert join.op(join.bind(("U", "#dev"), {}), "a/1").to_json() == [
        "join", "a/1", "#dev", None,
    ]  # fmt: skip


def test_every_entry_round_trips_and_keeps_the_wire_of_docs_cluster_md() -> None:
    """to_json spells each entry as docs/cluster.md's table has it (so nodes of the
    version before read it), and from_json reads it back equal."""
    op = Op("quit", "a/1", ("bye",))
    cases: list[tuple[Entry, dict[str, object]]] = [
        (
            Talk(False, "a/1", "#dev", "hi"),
            {"k": "say", "u": "a/1", "r": "#dev", "t": "hi"},
        ),
        (
            Talk(True, "a/1", "#dev", "waves", echo="3"),
            {"k": "act", "u": "a/1", "r": "#dev", "t": "waves", "w": "3"},
        ),
        (
            Talk(False, "a/1", "#dev", "psst", notice=True),
            {"k": "say", "u": "a/1", "r": "#dev", "t": "psst", "x": 1},
        ),
        (
            Tell("a/1", "b/2", "hi", notice=True, action=True),
            {"k": "tell", "u": "a/1", "to": "b/2", "t": "hi", "x": 1, "a": 1},
        ),
        # Typing, reactions and replies (docs/protocol.md): client tags as "g".
        (
            Talk(False, "a/1", "#dev", "yes", tags=(("+draft/reply", "42"),)),
            {
                "k": "say",
                "u": "a/1",
                "r": "#dev",
                "t": "yes",
                "g": [["+draft/reply", "42"]],
            },
        ),
        (
            Tell("a/1", "b/2", "yes", tags=(("+draft/reply", "-7"),)),
            {
                "k": "tell",
                "u": "a/1",
                "to": "b/2",
                "t": "yes",
                "g": [["+draft/reply", "-7"]],
            },
        ),
        (
            Tag("a/1", "#dev", False, (("+typing", "active"),)),
            {"k": "tag", "u": "a/1", "to": "#dev", "g": [["+typing", "active"]]},
        ),
        (
            Tag("a/1", "b/2", True, (("+draft/react", "👍"), ("+draft/reply", "4"))),
            {
                "k": "tag",
                "u": "a/1",
                "to": "b/2",
                "p": 1,
                "g": [["+draft/react", "👍"], ["+draft/reply", "4"]],
            },
        ),
        (Turn("a", "a/1"), {"k": "turn", "n": "a", "u": "a/1"}),
        (
            Effects("a", "5-0", (op,)),
            {"k": "fx", "n": "a", "turn": "5-0", "ops": [["quit", "a/1", "bye"]]},
        ),
        (Changes("a", (op,)), {"k": "op", "n": "a", "ops": [["quit", "a/1", "bye"]]}),
        (Hello("a"), {"k": "hello", "node": "a"}),
        (Left("a"), {"k": "left", "node": "a"}),
        (Lost("a"), {"k": "lost", "node": "a"}),
        (
            Close("b", "b/2", "Killed"),
            {"k": "close", "node": "b", "u": "b/2", "r": "Killed"},
        ),
    ]
    for entry, wire in cases:
        assert entry.to_json() == wire
        read = entry_from_json(json.loads(json.dumps(wire)))
        assert type(read) is type(entry) and read == entry


def test_entry_text_is_to_json_encoded_as_before() -> None:
    """The log's text of an entry is its to_json, compact, non-ASCII kept: Talk's,
    spelled without a dict on the hot path, too, whatever its strings hold."""
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    strings = ["hi", "", 'say "hi"', "back\\slash", "tab\tnl\n\x00\x1f", "café ☕ 𝄞"]
    strings += ["\u2028\u2029", "\ud800 lone", "</script>", "{}[],:"]
    talks = [
        Talk(action, "a/1", "#dev", text, notice, echo)
        for text in strings
        for action in (False, True)
        for notice in (False, True)
        for echo in (None, "3", text)
    ]
    talks += [
        Talk(False, "a/1", "#dev", text, tags=(("+r", text),)) for text in strings
    ]
    others: list[Entry] = [
        Tell("a/1", "b/2", "héllo", notice=True),
        Turn("a", "a/1"),
        Effects("a", "5-0", (Op("quit", "a/1", ("bye ☕",)),)),
        Hello("a"),
    ]
    for entry in [*talks, *others]:
        text = entry_text(entry)
        assert text == encode(entry.to_json()), entry
        if "\ud800" not in text:
            assert json.loads(text) == entry.to_json()


def test_an_entry_of_an_unknown_kind_reads_as_none() -> None:
    """A newer node's kind of entry: this version skips it (docs/cluster.md)."""
    assert entry_from_json({"k": "colour", "n": "a"}) is None
