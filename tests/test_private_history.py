"""Private history (docs/protocol.md, Private history): the store, the model, the
line door.

A private message between two identified users is kept under the pair of
their accounts; only those two accounts read it back, whatever nicknames
anyone holds. The store alone (SQLite in a file and :memory:, MemoryHistory,
the writer thread through a Mailbox), the model with recording clients, and
/history <nick-or-account> on StringTransport with a fake store and Clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from helpers import CHEAP, NOW, Mailbox, RecordingClient, connect, lines
from redis_server import RedisServer
from test_redis_history import failure as redis_failure
from test_redis_history import open_history
from test_redis_history import result as redis_result
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import parse_server_line, utc_time
from chatd.model.chat import Chat, Private
from chatd.protocol import LineConnection
from chatd.store.interface import Entry, Kind, Span, UnknownId, conversation
from chatd.store.memory import MemoryHistory
from chatd.store.redis_history import FRESH_WINDOW
from chatd.store.sqlite import MEMORY, SCHEMA_VERSION, HistoryDatabase
from chatd.store.writer import BATCH_DELAY, SQLiteHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
PASSWORD = "s3cret-pw"
T = TypeVar("T")


# -- the database ------------------------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[HistoryDatabase]:
    path = str(tmp_path / "chatd.sqlite3") if request.param == "file" else MEMORY
    opened = HistoryDatabase.open(path)
    yield opened
    opened.close()


def private_row(
    msg_id: int, sender: str, recipient: str, text: str, time: int = 1000
) -> tuple[int, str, str, int, str, str, str]:
    """A private row from account sender (folded, also its name) to recipient."""
    low, high = conversation(sender, recipient)
    return (msg_id, low, high, time, "MSG", sender, text)


def texts(entries: list[Entry]) -> list[str]:
    return [entry.text for entry in entries]


def test_a_conversation_is_one_pair_whoever_writes(database: HistoryDatabase) -> None:
    """Messages both ways between two accounts are one conversation, read the
    same from either side, and apart from every other pair and every room."""
    database.append(
        [
            private_row(1, "alice", "bob", "hi bob"),
            private_row(2, "bob", "alice", "hi alice"),
            private_row(3, "alice", "carol", "hi carol"),
            (4, "#lobby", 1000, "MSG", "alice", "in the room"),
        ]
    )
    both = database.read_private("alice", "bob", 20)
    assert both == database.read_private("bob", "alice", 20)
    assert [(e.id, e.nick, e.text) for e in both] == [
        (1, "alice", "hi bob"),
        (2, "bob", "hi alice"),
    ]
    assert texts(database.read_private("carol", "alice", 20)) == ["hi carol"]
    assert database.read_private("bob", "carol", 20) == []
    assert texts(database.read("#lobby", 20)) == ["in the room"]
    assert database.last_id() == 4


def test_private_reads_take_counts_ids_and_spans(database: HistoryDatabase) -> None:
    """read_private as read (count, before, UnknownId for another pair's id);
    select_private as select."""
    database.append([private_row(n, "alice", "bob", f"m{n}") for n in range(1, 11)])
    database.append([private_row(11, "alice", "carol", "other")])
    assert texts(database.read_private("bob", "alice", 3)) == ["m8", "m9", "m10"]
    assert texts(database.read_private("bob", "alice", 2, before=5)) == ["m3", "m4"]
    with pytest.raises(UnknownId):
        database.read_private("alice", "bob", 2, before=11)
    span = Span(3, after=2, newest=False)
    assert texts(database.select_private("alice", "bob", span)) == ["m3", "m4", "m5"]
    assert texts(database.select_private("bob", "alice", Span(2, before=4))) == [
        "m2",
        "m3",
    ]


def test_private_latest_by_the_other_account(database: HistoryDatabase) -> None:
    """Each conversation of an account, keyed by the other side, with its latest
    message; a note to oneself is the account's own."""
    database.append(
        [
            private_row(1, "alice", "bob", "one"),
            private_row(2, "bob", "alice", "two"),
            private_row(3, "carol", "alice", "three"),
            private_row(4, "alice", "alice", "note"),
            private_row(5, "bob", "carol", "not alice's"),
        ]
    )
    latest = database.private_latest("alice")
    assert {key: entry.text for key, entry in latest.items()} == {
        "bob": "two",
        "carol": "three",
        "alice": "note",
    }


def test_forget_private_and_prune(database: HistoryDatabase) -> None:
    """forget_private drops every conversation of an account; prune deletes old
    private messages with old room ones, within its limit."""
    database.append(
        [
            private_row(1, "alice", "bob", "old", time=10),
            private_row(2, "alice", "bob", "new", time=5000),
            private_row(3, "bob", "carol", "bob and carol", time=5000),
            (4, "#lobby", 10, "MSG", "alice", "old room"),
        ]
    )
    assert database.prune(1000, 1) == 1  # the room's first
    assert database.prune(1000, 10) == 1  # then the private one
    assert texts(database.read_private("alice", "bob", 9)) == ["new"]
    assert database.forget_private("bob") == 2
    assert database.private_latest("bob") == {} == database.private_latest("carol")


# The schema of version 2 (accounts, before private history), as chatd made it.
VERSION_2 = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (2)",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT NOT NULL,
        time INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('MSG', 'ACTION')),
        nick TEXT NOT NULL, text TEXT NOT NULL)""",
    "CREATE INDEX messages_by_room ON messages (room, id)",
    "CREATE INDEX messages_by_time ON messages (time)",
    "CREATE TABLE rooms (room TEXT PRIMARY KEY) WITHOUT ROWID",
    """CREATE TABLE accounts (account TEXT PRIMARY KEY, name TEXT NOT NULL,
        hash TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE registered_rooms (room TEXT PRIMARY KEY, founder TEXT NOT NULL,
        record TEXT NOT NULL) WITHOUT ROWID""",
    "INSERT INTO messages VALUES (7, '#dev', 1000, 'MSG', 'alice', 'kept')",
    "INSERT INTO rooms VALUES ('#dev')",
    "INSERT INTO accounts VALUES ('alice', 'Alice', '$argon2id$x', 5)",
    "INSERT INTO registered_rooms VALUES ('#dev', 'alice', '{\"name\": \"#dev\"}')",
)


def test_a_version_2_file_is_migrated_to_the_current_and_keeps_everything(
    tmp_path: Path,
) -> None:
    """A version 2 file gains the private messages table (3), the server bans'
    (4), authors (5), the staging table (6), read markers (7) and the search
    index (8); its
    messages, accounts and registered rooms stay; ids go on above its own."""
    path = tmp_path / "v2.sqlite3"
    connection = sqlite3.connect(path)
    for statement in VERSION_2:
        connection.execute(statement)
    connection.commit()
    connection.close()
    database = HistoryDatabase.open(str(path))
    execute = database.connection.execute
    assert execute("SELECT version FROM schema_version").fetchall() == [(8,)]
    assert SCHEMA_VERSION == 8
    assert execute("SELECT count(*) FROM server_bans").fetchall() == [(0,)]
    assert texts(database.read("#dev", 10)) == ["kept"]
    assert execute("SELECT name, created FROM accounts").fetchall() == [("Alice", 5)]
    assert execute("SELECT founder FROM registered_rooms").fetchall() == [("alice",)]
    assert database.last_id() == 7
    database.append([private_row(8, "alice", "bob", "now kept")])
    database.close()
    again = HistoryDatabase.open(str(path))
    assert texts(again.read_private("bob", "alice", 5)) == ["now kept"]
    assert again.last_id() == 8
    again.close()


def result(answer: Deferred[T]) -> T | Failure:
    """What a Deferred already fired with."""
    got: list[T | Failure] = []
    answer.addBoth(got.append)
    (value,) = got
    return value


def test_memory_history_keeps_conversations_like_the_database(clock: Clock) -> None:
    """The fake store answers the private calls as the database does."""
    store = MemoryHistory(clock)
    first, when = store.record_private("alice", "bob", Kind.MESSAGE, "Alice", "hi")
    second, _ = store.record_private("bob", "alice", Kind.ACTION, "Bob", "waves")
    store.record_private("alice", "carol", Kind.MESSAGE, "Alice", "other")
    assert when == NOW and second == first + 1
    both = result(store.read_private("bob", "alice", 20))
    assert isinstance(both, list)
    assert [(e.kind, e.nick, e.text) for e in both] == [
        (Kind.MESSAGE, "Alice", "hi"),
        (Kind.ACTION, "Bob", "waves"),
    ]
    newest = result(store.select_private("alice", "bob", Span(1)))
    assert isinstance(newest, list) and texts(newest) == ["waves"]
    latest = result(store.private_latest("alice"))
    assert isinstance(latest, dict) and set(latest) == {"bob", "carol"}
    unknown = result(store.read_private("alice", "bob", 5, before=12345))
    assert isinstance(unknown, Failure) and unknown.check(UnknownId)
    store.forget_private("alice")
    assert store.conversations == {}


def test_the_writer_thread_keeps_private_messages_in_turn(
    tmp_path: Path, clock: Clock
) -> None:
    """record_private stamps at once from the rooms' sequence and writes in the
    same batches; a read sees what was recorded before it; forget_private is
    in turn too."""
    mailbox = Mailbox()
    history = SQLiteHistory(str(tmp_path / "chatd.sqlite3"), clock, mailbox)
    history.open()

    def answer(asked: Deferred[T]) -> T:
        got: list[T | Failure] = []
        asked.addBoth(got.append)
        mailbox.run_until(lambda: bool(got))
        assert not isinstance(got[0], Failure), got[0]
        return got[0]

    room_id, _ = history.record("#lobby", Kind.MESSAGE, "alice", "room")
    one, when = history.record_private("alice", "bob", Kind.MESSAGE, "Alice", "one")
    two, _ = history.record_private("bob", "alice", Kind.ACTION, "Bob", "two")
    assert when == NOW and one == room_id + 1 and two == one + 1
    entries = answer(history.read_private("bob", "alice", 20))
    assert [(e.id, e.nick, e.text) for e in entries] == [
        (one, "Alice", "one"),
        (two, "Bob", "two"),
    ]
    latest = answer(history.private_latest("bob"))
    assert {key: e.text for key, e in latest.items()} == {"alice": "two"}
    clock.advance(BATCH_DELAY)
    history.record_private("alice", "carol", Kind.MESSAGE, "Alice", "three")
    history.forget_private("alice")
    assert answer(history.read_private("alice", "bob", 20)) == []
    assert answer(history.read_private("carol", "alice", 20)) == []
    stopped = history.close()
    mailbox.run_until(lambda: stopped.called)


# -- the model -----------------------------------------------------------------


def test_messages_are_kept_under_accounts_never_nicknames(clock: Clock) -> None:
    """tell keeps a message when a side is identified, under the pair of parties:
    an account (folded) for an identified side, "~" and the folded nickname for
    one that is not; read back as the sender's account, or its nickname then.
    The event carries its id and time. Neither side identified: nothing kept."""
    store = MemoryHistory(clock)
    chat = Chat(history=store)
    alice = chat.register("alice", RecordingClient())
    bob = chat.register("bob", RecordingClient())
    dave = chat.register("Dave", RecordingClient())
    erin = chat.register("erin", RecordingClient())
    chat.set_account(alice, "Alice")
    chat.set_account(bob, "Bob")
    for user in (alice, bob, dave, erin):
        user.client.take()  # type: ignore[attr-defined]
    chat.tell(alice, "bob", "kept")
    chat.tell(bob, "alice", "waves", action=True)
    chat.tell(alice, "dave", "kept for alice")
    chat.tell(dave, "alice", "this too")
    chat.tell(dave, "erin", "nobody identified: not kept")
    (kept, acted, _, one_sided) = alice.client.take()  # type: ignore[attr-defined]
    assert isinstance(kept, Private) and kept.id and kept.time == NOW
    assert isinstance(acted, Private) and acted.id == kept.id + 1
    assert isinstance(one_sided, Private) and one_sided.id == acted.id + 2
    (unkept,) = erin.client.take()  # type: ignore[attr-defined]
    # Not kept: a live id (below zero, for replies and reactions), none of history's.
    assert isinstance(unkept, Private) and unkept.id < 0 and unkept.time
    assert set(store.conversations) == {("alice", "bob"), ("alice", "~dave")}
    assert [(e.kind, e.nick, e.text) for e in store.conversations["alice", "bob"]] == [
        (Kind.MESSAGE, "Alice", "kept"),
        (Kind.ACTION, "Bob", "waves"),
    ]
    assert [(e.nick, e.text) for e in store.conversations["alice", "~dave"]] == [
        ("Alice", "kept for alice"),
        ("Dave", "this too"),
    ]
    chat.rename(alice, "alicia")  # a new nickname, the same account
    chat.tell(alice, "bob", "still alice's")
    assert store.conversations["alice", "bob"][-1].nick == "Alice"


def test_without_history_private_messages_have_a_live_id() -> None:
    """No store: a private message between accounts is delivered as ever, with
    a live id (below zero) that names it for replies and reactions."""
    chat = Chat(now=lambda: NOW)
    alice = chat.register("alice", RecordingClient())
    chat.set_account(alice, "alice")
    chat.tell(alice, "alice", "note")
    live = alice.client.take()[-1]  # type: ignore[attr-defined]
    assert live == Private("alice", "alice", "note", id=live.id, time=NOW)
    assert live.id < 0


# -- the line door ---------------------------------------------------------------


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def registered(
    factory: ChatFactory, nick: str
) -> tuple[LineConnection, StringTransport]:
    """Connect nick and register it as an account (identified at once)."""
    proto, out = connect(factory, nick)
    proto.dataReceived(f"/register {PASSWORD} {PASSWORD}\r\n".encode())
    assert proto.user is not None and proto.user.account == nick, lines(out)
    lines(out)
    return proto, out


def ask(proto: LineConnection, out: StringTransport, command: str) -> list[str]:
    proto.dataReceived(command.encode() + b"\r\n")
    return lines(out)


def said(received: list[str]) -> list[tuple[str, ...]]:
    """(target, kind, nick, text) of each HISTORY line, then the ENDHISTORY words."""
    found: list[tuple[str, ...]] = []
    for text in received:
        parsed = parse_server_line(text)
        assert parsed.verb in ("HISTORY", "ENDHISTORY"), text
        if parsed.verb == "HISTORY":
            target, _, _, kind, nick = parsed.words
            found.append((target, kind, nick, parsed.text or ""))
        else:
            found.append(tuple(parsed.words))
    return found


def test_history_of_a_conversation_from_either_side(
    clock: Clock, factory: ChatFactory
) -> None:
    """/history <nick> gives the conversation with that user's account as
    HISTORY lines whose target is the name asked for and whose nick is the
    sending account; the other side reads the same messages."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    alice.dataReceived(b"/msg bob hello bob\r\n")
    clock.advance(1)
    bob.dataReceived(b"/msg alice hello alice\r\n/me waves\r\n")
    lines(a_out), lines(b_out)
    answer = ask(alice, a_out, "/history Bob")
    assert said(answer) == [
        ("Bob", "PRIV", "alice", "hello bob"),
        ("Bob", "PRIV", "bob", "hello alice"),
        ("Bob", "2"),
    ]
    first = parse_server_line(answer[0]).words
    assert first[2] == utc_time(int(NOW * 1000))
    assert said(ask(bob, b_out, "/history alice 1")) == [
        ("alice", "PRIV", "bob", "hello alice"),
        ("alice", "1"),
    ]
    assert said(ask(bob, b_out, f"/history alice before {first[1]}")) == [
        ("alice", "0")
    ]
    (refused,) = ask(bob, b_out, "/history alice before 12345")
    assert refused == (
        "ERR bad-args 12345 is not a message id of your conversation with alice"
    )


def test_an_action_is_kept_as_an_action(factory: ChatFactory) -> None:
    """/me is a room action; a CTCP ACTION to a person (IRC) is kept as ACTION."""
    alice, a_out = registered(factory, "alice")
    bob, _ = registered(factory, "bob")
    assert bob.user is not None and alice.user is not None
    factory.chat.tell(bob.user, "alice", "waves", action=True)
    lines(a_out)
    assert said(ask(alice, a_out, "/history bob")) == [
        ("bob", "PRIV", "bob", "* bob waves"),
        ("bob", "1"),
    ]


def test_the_asker_must_be_identified(factory: ChatFactory) -> None:
    """Someone who is not identified has no private history: ERR not-identified,
    even holding the nickname of an account that has some; what they write
    to alice is kept for alice by the nickname, apart from bob's account's."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    bob.dataReceived(b"/msg alice secret\r\n/quit\r\n")
    mallory, m_out = connect(factory, "bob")  # bob's nickname, not bob's account
    lines(m_out)
    (refused,) = ask(mallory, m_out, "/history alice")
    assert refused.startswith("ERR not-identified private history is kept only")
    (refused,) = ask(mallory, m_out, "/history bob")
    assert refused.startswith("ERR not-identified ")
    mallory.dataReceived(b"/msg alice it is me, bob\r\n")
    lines(a_out)
    assert said(ask(alice, a_out, "/history bob")) == [
        ("bob", "PRIV", "bob", "secret"),
        ("bob", "1"),
    ]


def test_a_nickname_that_changed_hands_reveals_nothing(
    clock: Clock, factory: ChatFactory
) -> None:
    """mallory, identified to her own account, holding bob's nickname, reads her
    own conversation with alice (none), never bob's; alice asking for bob
    still reads hers with bob's account."""
    alice, a_out = registered(factory, "alice")
    bob, _ = registered(factory, "bob")
    bob.dataReceived(b"/msg alice for alice only\r\n/quit\r\n")
    mallory, m_out = registered(factory, "mallory")
    mallory.dataReceived(b"/nick bob\r\n")
    lines(m_out)
    assert mallory.user is not None and mallory.user.nick == "bob"
    assert mallory.user.account == "mallory"
    assert said(ask(mallory, m_out, "/history alice")) == [("alice", "0")]
    lines(a_out)
    assert said(ask(alice, a_out, "/history bob")) == [
        ("bob", "PRIV", "bob", "for alice only"),
        ("bob", "1"),
    ]


def test_a_third_account_reads_only_its_own(factory: ChatFactory) -> None:
    """carol asking for bob or alice gets her own conversations with them."""
    alice, _ = registered(factory, "alice")
    registered(factory, "bob")
    carol, c_out = registered(factory, "carol")
    alice.dataReceived(b"/msg bob between alice and bob\r\n")
    lines(c_out)
    assert said(ask(carol, c_out, "/history bob")) == [("bob", "0")]
    assert said(ask(carol, c_out, "/history alice")) == [("alice", "0")]


def test_a_side_that_is_not_identified_is_kept_by_its_nickname(
    clock: Clock, factory: ChatFactory
) -> None:
    """With dave not identified, alice's conversation with him is hers alone,
    by his nickname: /history dave reads it, with his nickname on his lines;
    once the name dave is an account, /history dave means the account."""
    alice, a_out = registered(factory, "alice")
    dave, d_out = connect(factory, "dave")
    alice.dataReceived(b"/msg dave kept for alice\r\n")
    dave.dataReceived(b"/msg alice and this\r\n")
    lines(a_out), lines(d_out)
    assert said(ask(alice, a_out, "/history Dave")) == [
        ("Dave", "PRIV", "alice", "kept for alice"),
        ("Dave", "PRIV", "dave", "and this"),
        ("Dave", "2"),
    ]
    assert said(ask(alice, a_out, "/history nobody")) == [("nobody", "0")]
    (refused,) = ask(dave, d_out, "/history alice")
    assert refused.startswith("ERR not-identified ")
    clock.advance(1)
    dave.dataReceived(f"/register {PASSWORD} {PASSWORD}\r\n".encode())
    assert lines(a_out) == ["ACCOUNT dave dave"]
    assert said(ask(alice, a_out, "/history dave")) == [("dave", "0")]
    lines(d_out)
    assert said(ask(dave, d_out, "/history alice")) == [("alice", "0")]


def test_a_user_identified_under_another_nickname_is_found(
    factory: ChatFactory,
) -> None:
    """/history <nick> of a user identified to an account of another name reads
    the conversation with that account; so does the account's own name."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    bob.dataReceived(b"/nick robert\r\n/msg alice from robert\r\n")
    lines(a_out)
    assert said(ask(alice, a_out, "/history robert")) == [
        ("robert", "PRIV", "bob", "from robert"),
        ("robert", "1"),
    ]
    assert said(ask(alice, a_out, "/history BOB"))[-1] == ("BOB", "1")


def test_a_dropped_account_takes_its_conversations(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """/unregister deletes the account's conversations: whoever registers the
    name next reads nothing of them, nor does the other side."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    alice.dataReceived(b"/msg bob before the drop\r\n")
    bob.dataReceived(f"/unregister {PASSWORD}\r\n/quit\r\n".encode())
    assert store.conversations == {}
    clock.advance(1)
    newcomer, n_out = registered(factory, "bob")
    assert said(ask(newcomer, n_out, "/history alice")) == [("alice", "0")]
    lines(a_out)
    assert said(ask(alice, a_out, "/history bob")) == [("bob", "0")]


def test_a_deletion_that_failed_still_hides_the_old_conversation(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """Should the deletion not happen (the store was down), a new account of
    the name reads only what was said after it was created."""
    store.forget_private = lambda account: None  # type: ignore[method-assign]
    alice, a_out = registered(factory, "alice")
    bob, _ = registered(factory, "bob")
    alice.dataReceived(b"/msg bob before the drop\r\n")
    bob.dataReceived(f"/unregister {PASSWORD}\r\n/quit\r\n".encode())
    clock.advance(1)
    newcomer, n_out = registered(factory, "bob")
    assert said(ask(newcomer, n_out, "/history alice")) == [("alice", "0")]
    newcomer.dataReceived(b"/msg alice after\r\n")
    lines(a_out)
    assert said(ask(alice, a_out, "/history bob")) == [
        ("bob", "PRIV", "bob", "after"),
        ("bob", "1"),
    ]


def test_private_history_refusals(clock: Clock) -> None:
    """No store: ERR no-history; a store that is down: ERR no-history with why;
    a name that cannot be a nickname: ERR nick-invalid; `before` alone is
    still the room form's clause."""
    bare = ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock)
    alice, a_out = registered(bare, "alice")
    (refused,) = ask(alice, a_out, "/history bob")
    assert refused == "ERR no-history this server keeps no history"
    store = MemoryHistory(clock)
    factory = ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock, store)
    alice, a_out = registered(factory, "alice")
    (refused,) = ask(alice, a_out, "/history bob!x")
    assert refused.startswith("ERR nick-invalid bob!x: ")
    (refused,) = ask(alice, a_out, "/history before")
    assert refused.startswith("ERR bad-args usage: /history ")
    store.reason = "the disk is full"
    (refused,) = ask(alice, a_out, "/history bob")
    assert refused == "ERR no-history history is unavailable: the disk is full"


def test_the_answer_waits_in_order(clock: Clock) -> None:
    """A read still on its way holds the lines after it: a private message said
    meanwhile comes after ENDHISTORY, not before."""
    store = MemoryHistory(clock, manual=True)
    factory = ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock, store)
    alice, a_out = registered(factory, "alice")
    bob, _ = registered(factory, "bob")
    store.answer()  # the backfills of #lobby, if any
    lines(a_out)
    alice.dataReceived(b"/history bob\r\n")
    bob.dataReceived(b"/msg alice meanwhile\r\n")
    assert lines(a_out) == []
    store.answer()
    assert lines(a_out) == ["ENDHISTORY bob 0", "PRIV bob alice meanwhile"]


# -- the Redis store ---------------------------------------------------------------


def test_redis_keeps_private_conversations_like_the_database(
    redis_server: RedisServer, clock: Clock
) -> None:
    """RedisHistory answers the private calls as the database does: one stream
    per pair, read from either side, apart from rooms; the latest of each
    conversation by the other party; forget_private drops them, in turn."""
    history = open_history(redis_server, clock)
    first, when = history.record_private("alice", "bob", Kind.MESSAGE, "Alice", "hi")
    history.record_private("bob", "alice", Kind.ACTION, "Bob", "waves")
    history.record_private("alice", "~dave", Kind.MESSAGE, "Alice", "to dave")
    history.record("#lobby", Kind.MESSAGE, "alice", "in the room")
    both = redis_result(history.read_private("bob", "alice", 10))
    assert [(e.id, e.kind, e.nick, e.text) for e in both] == [
        (first, Kind.MESSAGE, "Alice", "hi"),
        (first + 1, Kind.ACTION, "Bob", "waves"),
    ]
    assert both[0].time == int(when * 1000)
    newest = redis_result(history.select_private("alice", "bob", Span(1)))
    assert texts(newest) == ["waves"]
    latest = redis_result(history.private_latest("alice"))
    assert {key: e.text for key, e in latest.items()} == {
        "bob": "waves",
        "~dave": "to dave",
    }
    clock.advance(FRESH_WINDOW + 1)  # not fresh: no look again (test_redaction_redis)
    unknown = redis_failure(history.read_private("alice", "bob", 5, before=first + 9))
    assert unknown.check(UnknownId)
    assert texts(redis_result(history.read("#lobby", 5))) == ["in the room"]
    history.forget_private("alice")
    assert redis_result(history.read_private("alice", "bob", 10)) == []
    assert redis_result(history.private_latest("bob")) == {}
    assert redis_result(history.private_latest("alice")) == {}
    assert texts(redis_result(history.read("#lobby", 5))) == ["in the room"]
    redis_result(history.close())
