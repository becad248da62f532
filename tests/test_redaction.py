"""Deleting kept messages (docs/protocol.md, Deleting messages): the model's
rule, the line door's /delete and DELETED, and the stores forgetting the text.

Own is decided by the author kept with the message: an account, else the
registration's session, so a later holder of a nickname deletes nothing of
the earlier holder's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TypeVar

import pytest
from cluster_fakes import FakeLog, know_each_other, make_node, pump_all
from helpers import CHEAP, NOW, RecordingClient, connect, disconnect, lines
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import parse_server_line
from chatd.model.chat import Chat, Deleted, author_of
from chatd.model.redaction import DELETION_COST
from chatd.protocol import LineConnection
from chatd.store.interface import Entry, Kind, Span, UnknownId
from chatd.store.memory import MemoryHistory
from chatd.store.sqlite import HistoryDatabase

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW

PASSWORD = "s3cret-pw"
T = TypeVar("T")


def result(answer: Deferred[T]) -> T:
    """What a Deferred that has fired holds."""
    box: list[T] = []
    answer.addCallback(box.append)
    assert box, "not answered"
    return box[0]


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP, operators=("root",))
    return ChatFactory(config, clock, store)


def ask(proto: LineConnection, out: StringTransport, command: str) -> list[str]:
    proto.dataReceived(command.encode() + b"\r\n")
    return lines(out)


def identified(
    factory: ChatFactory, nick: str
) -> tuple[LineConnection, StringTransport]:
    """Connect nick and register it as an account (identified at once)."""
    proto, out = connect(factory, nick)
    ask(proto, out, f"/register {PASSWORD} {PASSWORD}")
    assert proto.user is not None and proto.user.account == nick
    return proto, out


def ids_of(store: MemoryHistory, room: str) -> list[int]:
    return [entry.id for entry in store.rooms[room] if entry.text]


def texts(received: list[str]) -> list[str]:
    """The texts of the HISTORY lines of an answer."""
    return [
        parsed.text or ""
        for parsed in map(parse_server_line, received)
        if parsed.verb == "HISTORY"
    ]


# -- the model -------------------------------------------------------------------


def test_the_author_is_the_account_else_the_registrations_session() -> None:
    """author_of: a folded account; else "~" and a session no other
    registration has, whatever nickname it held."""
    chat = Chat()
    alice = chat.register("alice", RecordingClient())
    first = author_of(alice)
    assert first.startswith("~") and len(first) > 8
    chat.quit(alice, "")
    again = chat.register("alice", RecordingClient())
    assert author_of(again) != first
    again.account = "Alice"
    assert author_of(again) == "alice"


def test_the_store_keeps_the_author_with_each_message(
    store: MemoryHistory,
) -> None:
    """say keeps author_of(speaker) beside the message."""
    chat = Chat(history=store)
    alice = chat.register("alice", RecordingClient())
    chat.join(alice, "#dev")
    chat.say(alice, "hi")
    (entry,) = store.rooms["#dev"]
    assert store.authors[entry.id] == author_of(alice)


# -- the line door: who may ------------------------------------------------------


def test_a_user_deletes_their_own_message_and_history_forgets_it(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """/delete #room <id>: INFO Deleted; /history leaves it out; bob, with
    /ids on, gets DELETED <room> <id> <by> <reason>; carol, without, nothing."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    carol, c_out = connect(factory, "carol")
    ask(bob, b_out, "/ids on")
    alice.dataReceived(b"oops my address\r\nsecond\r\n")
    first, _ = ids_of(store, "#lobby")
    lines(b_out), lines(c_out), lines(a_out)
    answer = ask(alice, a_out, f"/delete #lobby {first} typo")
    assert answer == [f"INFO Deleted message {first} of #lobby."]
    assert lines(b_out) == [f"DELETED #lobby {first} alice typo"]
    assert lines(c_out) == []
    assert texts(ask(bob, b_out, "/history #lobby")) == ["second"]
    assert [e.text for e in store.rooms["#lobby"]] == ["", "second"]


def test_a_user_cannot_delete_someone_elses_message(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """bob, no operator, deleting alice's message: ERR not-operator; kept."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    alice.dataReceived(b"mine\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    lines(b_out)
    answer = ask(bob, b_out, f"/delete #lobby {msg_id}")
    assert len(answer) == 1 and answer[0].startswith("ERR not-operator "), answer
    assert texts(ask(bob, b_out, "/history #lobby")) == ["mine"]


def test_a_later_holder_of_a_nickname_cannot_delete_the_earlier_holders(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """alice (not identified) speaks and leaves; whoever takes "alice" next
    is refused; alice herself could, while still connected."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"from the first alice\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    disconnect(alice)
    impostor, i_out = connect(factory, "alice")
    answer = ask(impostor, i_out, f"/delete #lobby {msg_id}")
    assert len(answer) == 1 and answer[0].startswith("ERR not-operator "), answer
    assert ids_of(store, "#lobby") == [msg_id]


def test_a_rename_keeps_ones_messages_ones_own(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """The session goes with the person, not the nickname."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    ask(alice, a_out, "/nick alicia")
    assert ask(alice, a_out, f"/delete #lobby {msg_id}") == [
        f"INFO Deleted message {msg_id} of #lobby."
    ]


def test_an_identified_author_deletes_after_reconnecting(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """Kept by account: a new connection identified to it is the author."""
    alice, a_out = identified(factory, "alice")
    alice.dataReceived(b"kept by account\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    disconnect(alice)
    again, g_out = connect(factory, "alice")
    ask(again, g_out, f"/identify {PASSWORD}")
    assert again.user is not None and again.user.account == "alice"
    assert ask(again, g_out, f"/delete #lobby {msg_id}") == [
        f"INFO Deleted message {msg_id} of #lobby."
    ]


def test_room_and_server_operators_delete_any_message(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """The room's operator deletes in their room; a server operator
    (--operators) anywhere, a room nobody is in too."""
    bob, b_out = connect(factory, "bob")
    ask(bob, b_out, "/join #bob")  # first in: bob runs #bob
    alice, a_out = connect(factory, "alice")
    ask(alice, a_out, "/join #bob")
    alice.dataReceived(b"spam one\r\nspam two\r\n")
    one, two = ids_of(store, "#bob")
    lines(b_out)
    assert ask(bob, b_out, f"/delete #bob {one} spam") == [
        f"INFO Deleted message {one} of #bob."
    ]
    ask(alice, a_out, "/part #bob")
    ask(bob, b_out, "/part #bob")  # #bob is gone now
    root, r_out = identified(factory, "root")
    assert ask(root, r_out, f"/delete #bob {two}") == [
        f"INFO Deleted message {two} of #bob."
    ]
    assert ids_of(store, "#bob") == []


def test_bad_and_unknown_ids_are_refused(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """Not a number, or not a live message of the room (deleted already):
    ERR bad-args; a room one may not see: ERR no-such-room."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"once\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    lines(a_out)
    assert ask(alice, a_out, "/delete #lobby x1")[0].startswith("ERR bad-args ")
    assert ask(alice, a_out, f"/delete #lobby {msg_id + 1}")[0].startswith(
        "ERR bad-args "
    )
    ask(alice, a_out, f"/delete #lobby {msg_id}")
    assert ask(alice, a_out, f"/delete #lobby {msg_id}")[0].startswith("ERR bad-args ")
    assert ask(alice, a_out, f"/delete #nowhere {msg_id}")[0].startswith(
        "ERR no-such-room "
    )
    assert ask(alice, a_out, "/delete #lobby")[0].startswith("ERR bad-args ")


def test_a_deleted_id_still_pages(factory: ChatFactory, store: MemoryHistory) -> None:
    """/history before <a deleted id> answers what came before it: the
    tombstone keeps its place."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"one\r\ntwo\r\n")
    _, two = ids_of(store, "#lobby")
    ask(alice, a_out, f"/delete #lobby {two}")
    assert texts(ask(alice, a_out, f"/history #lobby before {two}")) == ["one"]


def test_without_history_there_is_nothing_to_delete(clock: Clock) -> None:
    """--no-history: ERR no-history."""
    factory = ChatFactory(ServerConfig(flood_rate=0.0), clock, None)
    alice, a_out = connect(factory, "alice")
    assert ask(alice, a_out, "/delete #lobby 5")[0].startswith("ERR no-history ")


# -- private messages --------------------------------------------------------------


def test_the_sender_deletes_a_kept_private_message_and_only_the_sender(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """/delete <nick> <id> in one's conversation: the sender may, the
    recipient may not; both see DELETED (with /ids on) and the history
    forgets it."""
    alice, a_out = identified(factory, "alice")
    bob, b_out = identified(factory, "bob")
    ask(bob, b_out, "/ids on")
    ask(alice, a_out, "/ids on")
    ask(alice, a_out, "/msg bob my secret")
    ((_, kept),) = store.conversations.items()
    msg_id = kept[0].id
    lines(b_out)
    refused = ask(bob, b_out, f"/delete alice {msg_id}")
    assert refused[0].startswith("ERR not-operator "), refused
    assert ask(alice, a_out, f"/delete bob {msg_id}") == [
        f"INFO Deleted message {msg_id} of bob.",
        f"DELETED bob {msg_id} alice ",
    ]
    assert lines(b_out) == [f"DELETED bob {msg_id} alice "]
    assert texts(ask(bob, b_out, "/history alice")) == []


def test_a_deletion_is_one_event_for_everyone() -> None:
    """Chat.delete_message hands the room's members one Deleted."""
    store = MemoryHistory(Clock())
    chat = Chat(history=store)
    one, other = RecordingClient(), RecordingClient()
    alice = chat.register("alice", one)
    bob = chat.register("bob", other)
    chat.join(alice, "#dev")
    chat.join(bob, "#dev")
    chat.say(alice, "x")
    one.events.clear()
    other.events.clear()
    msg_id = store.rooms["#dev"][0].id
    chat.delete_message(alice, "#dev", msg_id, "why")
    assert one.events == other.events == [Deleted("#dev", msg_id, "alice", "why")]
    assert one.events[0] is other.events[0]


# -- SQLite: the text is gone from the file ------------------------------------------


def test_sqlite_forgets_the_text_in_the_file_and_in_a_backup(tmp_path: Path) -> None:
    """After delete, neither the database file (nor its WAL) nor a backup
    taken after holds the text's bytes; the tombstone keeps id and speaker."""
    path = tmp_path / "history.sqlite3"
    database = HistoryDatabase.open(str(path))
    secret = "my-password-is-hunter2-" * 4
    rows = [
        (n, "#dev", int(NOW * 1000), Kind.MESSAGE.value, "alice", f"m{n}", "~s")
        for n in range(1, 50)
    ]
    database.append([*rows, (50, "#dev", 0, "MSG", "alice", secret, "~s")])
    database.append([(51, "#dev", 0, "MSG", "bob", "after", "~t")])
    assert database.author("#dev", 50) == "~s"
    files = [path, Path(f"{path}-wal")]
    assert any(secret.encode() in f.read_bytes() for f in files if f.exists())
    assert database.delete("#dev", 50) is True
    assert database.delete("#dev", 50) is False  # a tombstone: nothing to delete
    assert database.author("#dev", 50) is None
    for file in files:
        if file.exists():
            assert secret.encode() not in file.read_bytes(), file
            assert b"hunter2" not in file.read_bytes(), file
    assert [e.text for e in database.read("#dev", 2)] == ["m49", "after"]
    assert [e.text for e in database.read("#dev", 1, before=50)] == ["m49"]
    backup = tmp_path / "backup.sqlite3"
    target = sqlite3.connect(backup)
    database.connection.backup(target)
    target.close()
    assert b"hunter2" not in backup.read_bytes()
    row = database.connection.execute(
        "SELECT nick, text, author FROM messages WHERE id = 50"
    ).fetchone()
    assert row == ("alice", "", "~s")
    database.close()


# -- a cluster: the deletion is an op every node applies ------------------------------


def test_a_deletion_is_replicated_to_every_node() -> None:
    """On two nodes sharing one store: bob (node b) may not delete alice's
    message; alice (node a, whose node kept it with her session) may, and /ids
    clients on both nodes get DELETED once the op is read."""
    clock = Clock()
    clock.advance(NOW)
    log = FakeLog(clock)
    shared = MemoryHistory(clock)
    a = make_node(log, "a", clock, shared)
    b = make_node(log, "b", clock, shared)
    know_each_other(a, b)
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    for proto in (alice, bob):
        proto.dataReceived(b"/ids on\r\n")
    pump_all(a, b)
    alice.dataReceived(b"leaked\r\n")
    pump_all(a, b)
    (msg_id,) = ids_of(shared, "#lobby")
    lines(a_out), lines(b_out)
    bob.dataReceived(f"/delete #lobby {msg_id}\r\n".encode())
    pump_all(a, b)
    assert lines(b_out)[0].startswith("ERR not-operator ")
    alice.dataReceived(f"/delete #lobby {msg_id} mine\r\n".encode())
    pump_all(a, b)
    assert lines(a_out) == [
        f"INFO Deleted message {msg_id} of #lobby.",
        f"DELETED #lobby {msg_id} alice mine",
    ]
    assert lines(b_out) == [f"DELETED #lobby {msg_id} alice mine"]
    assert ids_of(shared, "#lobby") == []


# -- the stores agree: memory against SQLite, with deletions among the writes --------

STORE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("say"), st.sampled_from(["#a", "#b"]), st.text(min_size=1)),
        st.tuples(st.just("delete"), st.sampled_from(["#a", "#b"]), st.integers(0, 12)),
    ),
    max_size=25,
)


def read_before(
    database: HistoryDatabase, memory: MemoryHistory, room: str, msg_id: int
) -> tuple[list[Entry] | str, list[Entry] | str]:
    """What each store answers to a read of 3 before msg_id ("unknown": UnknownId)."""
    try:
        mine: list[Entry] | str = database.read(room, 3, msg_id)
    except UnknownId:
        mine = "unknown"
    box: list[list[Entry] | str] = []
    memory.read(room, 3, msg_id).addCallbacks(
        box.append,
        lambda failure: box.append("unknown" if failure.check(UnknownId) else "?"),
    )
    return mine, box[0]


@settings(max_examples=60, deadline=None)
@given(ops=STORE_OPS)
def test_sqlite_reads_as_the_memory_store_does_with_deletions(
    ops: list[tuple[str, str, object]],
) -> None:
    """Whatever was said and deleted, read, select, latest and author answer
    alike (tombstones left out, a deleted id still a `before`)."""
    memory = MemoryHistory(Clock())
    database = HistoryDatabase.open(":memory:")
    said: list[tuple[str, int]] = []
    for op, room, arg in ops:
        if op == "say":
            msg_id = len(said) + 1
            said.append((room, msg_id))
            memory.record_at(room, Kind.MESSAGE, "n", str(arg), msg_id, 1.0, "~x")
            database.append([(msg_id, room, 1000, "MSG", "n", str(arg), "~x")])
        elif said:
            where, msg_id = said[int(str(arg)) % len(said)]
            deleted = database.delete(room, msg_id)
            assert (deleted and where == room) or not deleted
            memory.delete(room, msg_id)
    for room in ("#a", "#b"):
        assert database.read(room, 5) == result(memory.read(room, 5))
        for _, msg_id in said:
            assert database.author(room, msg_id) == result(memory.author(room, msg_id))
            mine, theirs = read_before(database, memory, room, msg_id)
            assert mine == theirs
        for span in (Span(3), Span(3, after=2, newest=False), Span(4, before=7)):
            assert database.select(room, span) == result(memory.select(room, span))
    assert database.latest(["#a", "#b"]) == result(memory.latest(["#a", "#b"]))
    database.close()


def test_a_deletion_costs_five_lines_of_the_flood_budget(
    clock: Clock, store: MemoryHistory
) -> None:
    """/delete charges DELETION_COST (5 tokens) besides its own line, before the
    work: the store is asked however it answers."""
    factory = ChatFactory(ServerConfig(), clock, store)  # the default flood gate
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    (msg_id,) = ids_of(store, "#lobby")
    gate = alice.gate
    assert gate is not None
    before = gate.bucket.tokens
    alice.dataReceived(f"/delete #lobby {msg_id}\r\n".encode())
    assert before - gate.bucket.tokens == pytest.approx(1 + DELETION_COST // 50)


def test_each_deletion_is_logged_without_its_text(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """The operators' deletion log: who, whose, which id, where, why; no text."""
    bob, b_out = connect(factory, "bob")
    ask(bob, b_out, "/join #bob")
    alice, a_out = connect(factory, "alice")
    ask(alice, a_out, "/join #bob")
    alice.dataReceived(b"secret words\r\n")
    (msg_id,) = ids_of(store, "#bob")
    with capturedLogs() as events:
        ask(bob, b_out, f"/delete #bob {msg_id} spam")
    (event,) = [e for e in events if e.get("log_namespace") == "chatd.deletions"]
    assert (event["nick"], event["whose"], event["id"], event["target"]) == (
        "bob",
        "a",
        msg_id,
        "#bob",
    )
    assert event["reason"] == "spam"
    assert "secret" not in repr(event)
