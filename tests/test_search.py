"""Searching kept messages (docs/protocol.md, Searching history): the model's
rule, the line door's /search, IRC's SEARCH (soju.im/search), and the stores:
SQLite's FTS5 index (kept in step with deletions, built for an old file),
the memory store's and Redis's bounded scans.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from helpers import CHEAP, Mailbox, connect, lines
from redis_server import RedisServer
from test_irc_protocol import irc_connect
from test_permissions import DOORS as PERMISSION_DOORS
from test_permissions import NOWHERE, ROOM, Asker, IrcAsker, owned_room, put_in_state
from test_permissions import ROWS as PERMISSION_ROWS
from test_permissions import make_factory as permission_factory
from test_redis_history import open_history
from test_redis_history import result as redis_result
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.line.wire import parse_server_line
from chatd.model.search import MAX_QUERY, SEARCH_BURST, phrases
from chatd.protocol import LineConnection
from chatd.store import sqlite as sqlite_store
from chatd.store import sqlite_search
from chatd.store.interface import (
    Found,
    Kind,
    Search,
    SearchTooSlow,
    conversation,
    search_tokens,
)
from chatd.store.memory import MemoryHistory
from chatd.store.sqlite import MEMORY, SCHEMA, HistoryDatabase
from chatd.store.sqlite_search import SEARCH_TABLES
from chatd.store.writer import SQLiteHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW

PASSWORD = "correct-horse-battery"


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, store)


def ask(proto: LineConnection, out: StringTransport, command: str) -> list[str]:
    """Send command; return the lines that answer it (what came before is dropped)."""
    lines(out)
    proto.dataReceived(command.encode() + b"\r\n")
    return lines(out)


def registered(
    factory: ChatFactory, nick: str
) -> tuple[LineConnection, StringTransport]:
    """Connect nick and register it as an account (identified at once)."""
    proto, out = connect(factory, nick)
    ask(proto, out, f"/register {PASSWORD} {PASSWORD}")
    assert proto.user is not None and proto.user.account == nick
    return proto, out


def found(received: list[str]) -> list[tuple[str, ...]]:
    """(target, nick, text) of each FOUND line, then ("END", count)."""
    answer: list[tuple[str, ...]] = []
    for text in received:
        parsed = parse_server_line(text)
        assert parsed.verb in ("FOUND", "ENDSEARCH"), text
        if parsed.verb == "FOUND":
            target, _, _, _, nick = parsed.words
            answer.append((target, nick, parsed.text or ""))
        else:
            answer.append(("END", *parsed.words))
    return answer


def said(proto: LineConnection, out: StringTransport, room: str, *texts: str) -> None:
    """proto joins room (made if new) and says each of texts there."""
    ask(proto, out, f"/join {room}")
    for text in texts:
        ask(proto, out, text)


# -- the line door, over the memory store ------------------------------------------


def test_search_finds_in_a_room_one_is_in_not_in_a_secret_room(
    factory: ChatFactory,
) -> None:
    """FOUND lines come from the asker's rooms; a secret room of others is not
    searched with no target, and `in #secret` answers ENDSEARCH 0 as for a
    room that has nothing."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    said(alice, a_out, "#dev", "the deploy link is https://deploy.example/x")
    said(bob, b_out, "#dev")
    ask(bob, b_out, "/join #secret")
    ask(bob, b_out, "/mode #secret +s")
    ask(bob, b_out, "deploy the secret thing")
    lines(a_out)
    assert found(ask(alice, a_out, "/search deploy")) == [
        ("#dev", "alice", "the deploy link is https://deploy.example/x"),
        ("END", "1"),
    ]
    assert found(ask(alice, a_out, "/search deploy in #secret")) == [("END", "0")]
    assert found(ask(bob, b_out, "/search deploy")) == [
        ("#secret", "bob", "deploy the secret thing"),
        ("#dev", "alice", "the deploy link is https://deploy.example/x"),
        ("END", "2"),
    ]


def test_search_in_a_public_room_one_is_not_in(factory: ChatFactory) -> None:
    """in #room reads as /history does: a public room of others is searched,
    an invite-only one is refused with the same ERR as /history."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    said(bob, b_out, "#open", "rust talk tonight")
    said(bob, b_out, "#closed", "rust plans")
    ask(bob, b_out, "/mode #closed +i")
    assert found(ask(alice, a_out, "/search RUST in #open")) == [
        ("#open", "bob", "rust talk tonight"),
        ("END", "1"),
    ]
    history = ask(alice, a_out, "/history #closed")
    assert ask(alice, a_out, "/search rust in #closed") == history
    assert history[0].startswith("ERR not-in-room ")


def test_search_private_conversations_are_their_sides_only(
    factory: ChatFactory,
) -> None:
    """A private message is found by its two sides' accounts, named by the
    other side; a third account never finds it, not even with in <nick>."""
    alice, a_out = registered(factory, "alice")
    bob, b_out = registered(factory, "bob")
    carol, c_out = registered(factory, "carol")
    ask(alice, a_out, "/msg bob the invoice number is 4711")
    assert found(ask(bob, b_out, "/search invoice")) == [
        ("alice", "alice", "the invoice number is 4711"),
        ("END", "1"),
    ]
    assert found(ask(alice, a_out, "/search invoice in bob")) == [
        ("bob", "alice", "the invoice number is 4711"),
        ("END", "1"),
    ]
    assert found(ask(carol, c_out, "/search invoice")) == [("END", "0")]
    assert found(ask(carol, c_out, "/search invoice in alice")) == [("END", "0")]
    assert found(ask(carol, c_out, "/search invoice in bob")) == [("END", "0")]


def test_search_in_a_nick_needs_an_account(factory: ChatFactory) -> None:
    """in <nick> asks for one's private conversation: not identified, ERR."""
    alice, a_out = connect(factory, "alice")
    answer = ask(alice, a_out, "/search anything in bob")
    assert answer[0].startswith("ERR not-identified "), answer


def test_search_newest_first_and_pages_with_before(factory: ChatFactory) -> None:
    """FOUND lines are newest first, at most 20; before <id> goes on below the
    last id shown; in and before come in either order at the end."""
    alice, a_out = connect(factory, "alice")
    said(alice, a_out, "#dev", *(f"note {n}" for n in range(30)), "other words")
    first = ask(alice, a_out, "/search note")
    assert [text for _, _, text in found(first)[:-1]] == [
        f"note {n}" for n in range(29, 9, -1)
    ]
    assert found(first)[-1] == ("END", "20")
    last_id = parse_server_line(first[-2]).words[1]
    rest = found(ask(alice, a_out, f"/search note before {last_id} in #dev"))
    assert [text for _, _, text in rest[:-1]] == [f"note {n}" for n in range(9, -1, -1)]
    again = found(ask(alice, a_out, f"/search note in #dev before {last_id}"))
    assert again == rest


def test_search_words_are_phrases_all_of_which_must_match(
    factory: ChatFactory,
) -> None:
    """Every word must be there, in any case and accent; a link's words are
    a phrase; `in` and `before` inside the words are words."""
    alice, a_out = connect(factory, "alice")
    said(
        alice,
        a_out,
        "#dev",
        "Meet at the Café in town",
        "the cafe is closed",
        "see https://example.com/a/b for it",
        "example and com apart",
    )
    assert found(ask(alice, a_out, "/search in CAFE town")) == [
        ("#dev", "alice", "Meet at the Café in town"),
        ("END", "1"),
    ]
    assert found(ask(alice, a_out, "/search café")) == [
        ("#dev", "alice", "the cafe is closed"),
        ("#dev", "alice", "Meet at the Café in town"),
        ("END", "2"),
    ]
    assert found(ask(alice, a_out, "/search example.com/a")) == [
        ("#dev", "alice", "see https://example.com/a/b for it"),
        ("END", "1"),
    ]


def test_bad_searches_are_refused_clearly(factory: ChatFactory) -> None:
    """FTS5's own syntax is only words; nothing but punctuation, too long or
    too many words: ERR bad-args; a bad id: ERR bad-args; the connection
    goes on."""
    alice, a_out = connect(factory, "alice")
    said(alice, a_out, "#dev", 'say "NEAR( this AND that')
    assert found(ask(alice, a_out, '/search "NEAR( that')) == [
        ("#dev", "alice", 'say "NEAR( this AND that'),
        ("END", "1"),
    ]
    for command in (
        '/search " * ( ^',
        "/search " + "x" * (MAX_QUERY + 1),
        "/search " + " ".join(f"w{n}" for n in range(9)),
        "/search word before 12x",
        "/search",
    ):
        answer = ask(alice, a_out, command)
        assert len(answer) == 1 and answer[0].startswith("ERR bad-args "), answer
    assert found(ask(alice, a_out, "/search that")) == [
        ("#dev", "alice", 'say "NEAR( this AND that'),
        ("END", "1"),
    ]


def test_searches_are_rate_limited_per_user(clock: Clock, factory: ChatFactory) -> None:
    """A burst of searches, then ERR throttled until the rate gives another;
    another user is not slowed."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    for _ in range(SEARCH_BURST):
        assert found(ask(alice, a_out, "/search word")) == [("END", "0")]
    refused = ask(alice, a_out, "/search word")
    assert refused[0].startswith("ERR throttled "), refused
    assert found(ask(bob, b_out, "/search word")) == [("END", "0")]
    clock.advance(2.0)
    assert found(ask(alice, a_out, "/search word")) == [("END", "0")]


def test_search_without_history(clock: Clock) -> None:
    """A server that keeps no history answers ERR no-history."""
    factory = ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock)
    alice, a_out = connect(factory, "alice")
    answer = ask(alice, a_out, "/search word")
    assert answer[0].startswith("ERR no-history "), answer


# -- IRC: SEARCH (soju.im/search) ----------------------------------------------------


def test_irc_search_answers_a_batch_oldest_first(factory: ChatFactory) -> None:
    """SEARCH text=...;in=#room: a soju.im/search batch of PRIVMSGs with time
    and msgid, oldest first, only what the asker may read."""
    carol, c_out = connect(factory, "carol")
    said(carol, c_out, "#dev", "first match", "no", "second match")
    ask(carol, c_out, "/join #hidden")
    ask(carol, c_out, "/mode #hidden +s")
    ask(carol, c_out, "hidden match")
    caps = ("batch", "server-time", "message-tags", "soju.im/search")
    alice, out = irc_connect(factory, "alice", *caps)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    alice.dataReceived(b"SEARCH text=match\r\n")
    sent = [parse_message(text) for text in lines(out)]
    assert [m.command for m in sent] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    assert sent[0].params[1] == "soju.im/search"
    reference = sent[0].params[0][1:]
    assert [tuple(m.params) for m in sent[1:3]] == [
        ("#dev", "first match"),
        ("#dev", "second match"),
    ]
    assert all(m.tags["batch"] == reference and m.tags["msgid"] for m in sent[1:3])
    alice.dataReceived(b"SEARCH text=match;in=#hidden;limit=5\r\n")
    sent = [parse_message(text) for text in lines(out)]
    assert [m.command for m in sent] == ["BATCH", "BATCH"]
    alice.dataReceived(b"SEARCH text=second\\smatch;in=#dev;from=carol\r\n")
    sent = [parse_message(text) for text in lines(out)]
    assert [tuple(m.params) for m in sent if m.command == "PRIVMSG"] == [
        ("#dev", "second match")
    ]


def test_irc_search_refusals_are_standard_replies(factory: ChatFactory) -> None:
    """No text, a bad limit or timestamp: FAIL SEARCH INVALID_PARAMS; without
    the cap negotiated, too; the cap is offered where history is kept."""
    plain, p_out = irc_connect(factory, "plain", "batch")
    plain.dataReceived(b"SEARCH text=word\r\n")
    assert tuple(parse_message(lines(p_out)[0]).params[:2]) == (
        "SEARCH",
        "INVALID_PARAMS",
    )
    alice, out = irc_connect(factory, "alice", "batch", "soju.im/search")
    for command in (
        "SEARCH in=#dev",
        'SEARCH text="\\:NEAR(;limit=0',
        "SEARCH text=a;before=yesterday",
    ):
        alice.dataReceived(command.encode() + b"\r\n")
        reply = parse_message(lines(out)[0])
        assert reply.command == "FAIL", command
        assert reply.params[:2] == ("SEARCH", "INVALID_PARAMS"), command
    alice.dataReceived(b'SEARCH text="\\:NEAR(x\r\n')
    assert [parse_message(t).command for t in lines(out)] == ["BATCH", "BATCH"]
    alice.dataReceived(b"CAP LS 302\r\n")
    assert "soju.im/search" in " ".join(lines(out))


# -- the stores ------------------------------------------------------------------------


def rows(*texts: str, room: str = "#dev", start: int = 1) -> list[sqlite_store.RoomRow]:
    return [
        (start + n, room, 1000 * (start + n), "MSG", "alice", text)
        for n, text in enumerate(texts)
    ]


def texts(hits: list[Found]) -> list[str]:
    return [hit.entry.text for hit in hits]


def index_agrees(database: HistoryDatabase) -> bool:
    """Whether the index holds exactly the words of the messages kept (and
    indexed): every (word, id) of the text column, read with fts5vocab."""
    execute = database.connection.execute
    execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab "
        "USING fts5vocab(main, messages_words, 'instance')"
    )
    held = set(execute("SELECT term, doc FROM temp.vocab WHERE col = 'text'"))
    kept = {
        (token, msg_id)
        for msg_id, text in execute(
            "SELECT id, text FROM messages WHERE id NOT IN "
            "(SELECT id FROM messages_unindexed)"
        )
        for token in search_tokens(text)
    }
    return held == kept


def test_sqlite_search_never_reads_fts_syntax() -> None:
    """Whatever a user types becomes quoted phrases: FTS5's operators, quotes
    and column filters are searched as words, never an error."""
    database = HistoryDatabase.open(MEMORY)
    database.append(rows('a "quoted" NEAR(x y) AND text:col', "plain words"))
    for typed in ('"', "NEAR(", "AND", "OR NOT", "text:col", "x*", "^a", "(", "{a b}"):
        try:
            wanted = phrases(typed)
        except Exception:
            continue  # nothing but punctuation: refused before the store
        database.search(Search(wanted, rooms=("#dev",)))
    assert texts(
        database.search(Search(phrases('NEAR( "quoted'), rooms=("#dev",)))
    ) == ['a "quoted" NEAR(x y) AND text:col']
    hit = database.search(Search(('in"jected',), rooms=("#dev",)))
    assert hit == []


def test_sqlite_search_answers_only_the_targets_given() -> None:
    """Rooms and conversations not named are not searched; party names every
    conversation of one party."""
    database = HistoryDatabase.open(MEMORY)
    ab, cd = conversation("alice", "bob"), conversation("carol", "dave")
    database.append(
        [
            *rows("secret plan", room="#secret", start=1),
            *rows("public plan", room="#dev", start=2),
            (3, *ab, 3000, "MSG", "alice", "private plan"),
            (4, *cd, 4000, "MSG", "carol", "others' plan"),
        ]
    )
    plan = ("plan",)
    assert texts(database.search(Search(plan, rooms=("#dev",)))) == ["public plan"]
    assert texts(database.search(Search(plan, party="bob"))) == ["private plan"]
    both = database.search(Search(plan, rooms=("#dev",), conversations=(ab,)))
    assert texts(both) == ["private plan", "public plan"]
    assert both[0].pair == ab and both[1].room == "#dev"
    assert database.search(Search(plan)) == []


def test_sqlite_index_follows_retention_the_bound_and_changes() -> None:
    """Retention (prune), the bound and a changed text take a message out of
    the index (the triggers): a search no longer finds it, and the index
    itself holds none of it."""
    database = HistoryDatabase.open(MEMORY, bound=sqlite_store.Bound(room=3, total=0))
    database.append(rows("old needle", "needle two", "needle three"))
    assert len(database.search(Search(("needle",), rooms=("#dev",)))) == 3
    database.prune(older_than=2000, limit=100)  # the first is older
    assert texts(database.search(Search(("needle",), rooms=("#dev",)))) == [
        "needle three",
        "needle two",
    ]
    database.append(rows("needle four", "needle five", start=4))  # over the bound
    assert texts(database.search(Search(("needle",), rooms=("#dev",)))) == [
        "needle five",
        "needle four",
        "needle three",
    ]
    database.connection.execute("UPDATE messages SET text = '' WHERE id = 5")
    assert texts(database.search(Search(("needle",), rooms=("#dev",)))) == [
        "needle four",
        "needle three",
    ]
    indexed = database.connection.execute(
        "SELECT rowid FROM messages_words WHERE messages_words MATCH 'old OR two'"
    ).fetchall()
    assert indexed == []
    assert index_agrees(database)


def test_sqlite_forgetting_an_account_leaves_the_index(tmp_path: Path) -> None:
    """A dropped account's conversations leave the private index too."""
    database = HistoryDatabase.open(MEMORY)
    pair = conversation("alice", "bob")
    database.append([(1, *pair, 1000, "MSG", "alice", "private words")])
    assert len(database.search(Search(("words",), party="alice"))) == 1
    database.forget_private("alice")
    assert database.search(Search(("words",), party="bob")) == []


def test_migration_indexes_an_older_database(tmp_path: Path) -> None:
    """A version 7 file (no index) is migrated: its messages are found."""
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    for statement in SCHEMA:
        if statement not in SEARCH_TABLES:
            old.execute(statement)
    old.execute("INSERT INTO schema_version VALUES (7)")
    old.executemany(
        "INSERT INTO messages (id, room, time, kind, nick, text) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows("kept before search existed", "another"),
    )
    old.execute(
        "INSERT INTO private_messages (id, low, high, time, kind, sender, text) "
        "VALUES (3, 'alice', 'bob', 3, 'MSG', 'alice', 'kept privately')"
    )
    old.commit()
    old.close()
    database = HistoryDatabase.open(path)
    assert texts(database.search(Search(("kept",), rooms=("#dev",), party="bob"))) == [
        "kept privately",
        "kept before search existed",
    ]
    version = database.connection.execute("SELECT version FROM schema_version")
    assert version.fetchone() == (sqlite_store.SCHEMA_VERSION,)
    database.close()


def test_a_slow_search_is_refused_and_the_database_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past SEARCH_TIME with nothing found a search fails with SearchTooSlow
    (sqlite's progress handler interrupts it); the next search works."""
    database = HistoryDatabase.open(MEMORY)
    database.append(rows(*(f"common {n}" for n in range(3000))))
    database.append(rows("common rare", room="#other", start=5000))
    monkeypatch.setattr(sqlite_search, "SEARCH_TIME", 0.0)
    monkeypatch.setattr(sqlite_search, "SEARCH_STEPS", 1)
    with pytest.raises(SearchTooSlow):
        database.search(Search(("common",), rooms=("#nowhere",)))
    monkeypatch.setattr(sqlite_search, "SEARCH_TIME", 30.0)
    assert texts(database.search(Search(("rare",), rooms=("#other",)))) == [
        "common rare"
    ]


def test_the_writer_answers_searches_in_turn(tmp_path: Path) -> None:
    """SQLiteHistory.search runs on the writer thread, behind what was
    recorded before it, and answers through the reactor."""
    clock, mailbox = Clock(), Mailbox()
    history = SQLiteHistory(str(tmp_path / "h.db"), clock, mailbox)
    history.open()
    try:
        history.record("#dev", Kind.MESSAGE, "alice", "written then searched")
        answer = history.search(Search(("searched",), rooms=("#dev",)))
        got: list[list[Found]] = []
        answer.addCallback(got.append)
        mailbox.run_until(lambda: bool(got))
        assert texts(got[0]) == ["written then searched"]
    finally:
        closed = history.close()
        mailbox.run_until(lambda: closed.called)


def test_memory_scan_matches_as_fts_does(clock: Clock) -> None:
    """The memory store's scan: the same words match (case, accents, links),
    only the targets given, newest first, within the limit."""
    store = MemoryHistory(clock)
    for text in ("Crème brûlée", "creme", "https://a.example/x", "other"):
        store.record("#dev", Kind.MESSAGE, "alice", text)
    store.record("#else", Kind.MESSAGE, "bob", "creme elsewhere")
    got: list[list[Found]] = []
    store.search(Search(("creme",), rooms=("#dev",))).addCallback(got.append)
    store.search(Search(("a example x",), rooms=("#dev",), limit=1)).addCallback(
        got.append
    )
    assert [texts(hits) for hits in got] == [
        ["creme", "Crème brûlée"],
        ["https://a.example/x"],
    ]
    assert search_tokens("Crème-brûlée_2") == ["creme", "brulee", "2"]


def test_messages_wait_in_a_queue_and_are_indexed_in_bulk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new message is queued, not indexed, until INDEX_EVERY wait (then the
    write indexes them all) or a search comes; one deleted or changed while
    queued is never wrongly taken out of the index (index_agrees)."""
    monkeypatch.setattr(sqlite_search, "INDEX_EVERY", 5)
    database = HistoryDatabase.open(MEMORY, bound=sqlite_store.Bound(room=0, total=0))
    execute = database.connection.execute

    def queued() -> int:
        return int(execute("SELECT count(*) FROM messages_unindexed").fetchone()[0])

    database.append(rows("alpha one", "alpha two", "alpha three"))
    assert queued() == 3
    execute("DELETE FROM messages WHERE id = 1")  # deleted while queued
    execute("UPDATE messages SET text = 'beta now' WHERE id = 2")  # changed
    assert queued() == 2
    assert texts(database.search(Search(("alpha",), rooms=("#dev",)))) == [
        "alpha three"
    ]
    assert texts(database.search(Search(("beta",), rooms=("#dev",)))) == ["beta now"]
    assert queued() == 0
    database.append(rows(*(f"gamma {n}" for n in range(5)), start=10))
    assert queued() == 0  # five waited: the write indexed them
    execute("DELETE FROM messages WHERE id = 3")  # deleted once indexed
    assert index_agrees(database)
    assert texts(database.search(Search(("alpha",), rooms=("#dev",)))) == []
    assert len(database.search(Search(("gamma",), rooms=("#dev",)))) == 5


def test_a_quiet_room_is_searched_through_the_index_of_places(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past FIRST_LOOK matches elsewhere, the search asks the index for the
    room's own matches: older ones in a quiet room are found, newest first,
    with the newer ones the first look found."""
    monkeypatch.setattr(sqlite_search, "FIRST_LOOK", 3)
    database = HistoryDatabase.open(MEMORY)
    database.append(rows("word quiet old", "word quiet older", room="#quiet"))
    database.append(rows(*(f"word busy {n}" for n in range(10)), start=10))
    database.append(rows("word quiet new", room="#quiet", start=30))
    database.append(rows(*(f"word busy {n}" for n in range(10)), start=40))
    for limit, expected in (
        (5, ["word quiet new", "word quiet older", "word quiet old"]),
        (2, ["word quiet new", "word quiet older"]),
    ):
        hits = database.search(Search(("word",), rooms=("#quiet",), limit=limit))
        assert texts(hits) == expected
    assert len(database.search(Search(("word",), rooms=("#dev", "#quiet")))) == 20


def test_purging_the_index_leaves_no_word_of_a_deleted_message(
    tmp_path: Path,
) -> None:
    """A deleted message's words stay in the index's older segments (FTS5's
    tombstones) until purge_words merges them: then the file holds none."""
    path = tmp_path / "purge.sqlite3"
    database = HistoryDatabase.open(str(path), bound=sqlite_store.Bound(0, 0))
    database.connection.execute("PRAGMA secure_delete = ON")
    many = [f"word{n % 300} filler {n}" for n in range(3000)]
    many[1500] = "write to zebracornmail at example"
    for at in range(0, len(many), 10):
        database.append(rows(*many[at : at + 10], start=1 + at))
    assert len(database.search(Search(("zebracornmail",), rooms=("#dev",)))) == 1
    database.connection.execute("DELETE FROM messages WHERE id = 1501")
    assert database.search(Search(("zebracornmail",), rooms=("#dev",))) == []

    def in_file() -> bool:
        database.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return b"zebracorn" in path.read_bytes()

    assert in_file()  # a tombstone, not yet a merge
    database.purge_words()
    assert not in_file()
    assert len(database.search(Search(("filler",), rooms=("#dev",), limit=50))) == 50
    database.close()


# -- end to end, and Redis ------------------------------------------------------------


def test_the_daemon_searches_for_line_and_irc_clients(tmp_path: Path) -> None:
    """The real twistd with its SQLite file: a line client's /search and an IRC
    client's SEARCH (soju.im/search, over labeled-response) find what carol
    said in #dev, and nothing of the secret room bob talks in alone."""
    from daemon import LineClient, running_daemon
    from test_irc_daemon import LOOPBACK, IrcClient

    args = ["--listen", LOOPBACK, "--irc", LOOPBACK]
    args += ["--database", str(tmp_path / "chat.sqlite3")]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        bob = LineClient.tcp(daemon.ports[LOOPBACK])
        bob.register("bob")
        bob.send("/join #vault")
        bob.expect("JOIN #vault bob")
        bob.send("/mode #vault +s")
        bob.send("the vault combination is 4711")
        carol.send("/join #dev")
        carol.expect("JOIN #dev carol")
        carol.send("the combination of tools we use")
        carol.send("/search combination")
        assert carol.expect("FOUND ").endswith(" carol the combination of tools we use")
        assert carol.expect("ENDSEARCH ") == "ENDSEARCH 1"
        irc = IrcClient.connect(daemon.ports["irc " + LOOPBACK])
        irc.send("CAP LS 302")
        irc.send("NICK ivy")
        irc.send("USER ivy 0 * :ivy")
        caps = "batch server-time message-tags labeled-response soju.im/search"
        irc.send(f"CAP REQ :{caps}")
        irc.send("CAP END")
        irc.expect_irc("376")
        irc.send("JOIN #dev")
        irc.expect_irc("JOIN")
        irc.send("@label=s1 SEARCH text=combination")
        first = parse_message(irc.expect("@label=s1 "))
        assert first.command == "BATCH"
        said, depth = [first], 1
        while depth:
            said.append(parse_message(irc.read_line()))
            if said[-1].command == "BATCH":
                depth += 1 if said[-1].params[0].startswith("+") else -1
        privmsgs = [m for m in said if m.command == "PRIVMSG"]
        assert [tuple(m.params) for m in privmsgs] == [
            ("#dev", "the combination of tools we use")
        ]
        kinds = [
            m.params[1] for m in said if m.command == "BATCH" and len(m.params) > 1
        ]
        assert "soju.im/search" in kinds
        for client in (carol, bob, irc):
            client.close()


def test_redis_history_searches_the_latest_of_each_place(
    redis_server: RedisServer, clock: Clock
) -> None:
    """On Redis a search reads the latest messages of each room and
    conversation it is given (chatd.store.scan) and keeps the matching ones:
    only the places asked, newest first, older ones by paging with before."""
    history = open_history(redis_server, clock)
    try:
        for n in range(5):
            clock.advance(1)
            history.record("#dev", Kind.MESSAGE, "alice", f"needle {n}")
        history.record("#other", Kind.MESSAGE, "bob", "needle elsewhere")
        history.record_private("alice", "bob", Kind.MESSAGE, "alice", "needle private")
        history.record_private("carol", "dave", Kind.MESSAGE, "carol", "needle theirs")
        found = redis_result(
            history.search(Search(("needle",), rooms=("#dev",), limit=3))
        )
        assert texts(found) == ["needle 4", "needle 3", "needle 2"]
        older = Search(("needle",), rooms=("#dev",), before=found[-1].entry.id)
        assert texts(redis_result(history.search(older))) == ["needle 1", "needle 0"]
        mine = redis_result(history.search(Search(("needle",), party="bob")))
        assert texts(mine) == ["needle private"]
        assert mine[0].pair == conversation("alice", "bob")
    finally:
        redis_result(history.close())


# -- the permission table, through every door ----------------------------------------


class SearchingIrcAsker(IrcAsker):
    """An IRC asker that negotiated soju.im/search as well."""

    def __init__(self, factory: ChatFactory, nick: str) -> None:
        self.nick = nick
        caps = (*IrcAsker.CAPS, "soju.im/search")
        self.proto, self.out = irc_connect(factory, nick, *caps)


def searched(door: str, asker: Asker, room: str) -> tuple[bool, list[str]]:
    """Whether a search of room for the owner's "hello" finds it, and the reply."""
    asker.take()
    if door == "irc":
        asker.send(f"SEARCH text=hello;in={room}")
        reply = asker.take()
        return any(f" PRIVMSG {room} :hello" in text for text in reply), reply
    asker.send(f"/search hello in {room}")
    reply = asker.take()
    return any(text.startswith(f"FOUND {room} ") for text in reply), reply


@pytest.mark.parametrize("door", list(PERMISSION_DOORS))
@pytest.mark.parametrize(
    ("state", "mode", "expected"),
    PERMISSION_ROWS,
    ids=[f"{state}-{mode}" for state, mode, _ in PERMISSION_ROWS],
)
def test_search_finds_exactly_what_the_table_lets_one_read(
    clock: Clock, door: str, state: str, mode: str, expected: dict[str, bool]
) -> None:
    """docs/security.md's table, "read history" column, through every door:
    in <#room> finds the room's message exactly when /history (CHATHISTORY)
    reads it; a refused secret room answers as a room that does not exist;
    with no target a member finds it and nobody else does."""
    factory = permission_factory(clock)
    owner = owned_room(factory, mode)
    kind = SearchingIrcAsker if door == "irc" else PERMISSION_DOORS[door]
    asker = kind(factory, "asker")
    put_in_state(owner, asker, state, mode)
    found, reply = searched(door, asker, ROOM)
    assert found == expected["read history"], reply
    if mode == "+s" and not found:
        _, nowhere = searched(door, asker, NOWHERE)
        same = [re.sub(r"BATCH ([+-])\S+", r"BATCH \1", text) for text in reply]
        assert same == [
            re.sub(r"BATCH ([+-])\S+", r"BATCH \1", text.replace(NOWHERE, ROOM))
            for text in nowhere
        ]
    asker.take()
    if door == "irc":
        asker.send("SEARCH text=hello")
        everywhere = any(" PRIVMSG " in text for text in asker.take())
    else:
        asker.send("/search hello")
        everywhere = any(text.startswith("FOUND ") for text in asker.take())
    assert everywhere == (state == "member")


def test_the_desktop_client_shows_what_search_found(clock: Clock) -> None:
    """chatd-tk: /search goes to the server as typed; FOUND lines show as
    notices in the conversation on screen (where, when, who, what), then how
    many were found."""
    from test_client import Client, FakeConnector, RecordingView, sign_in

    from chatd.client.client import ClientSession
    from chatd.client.conversation import EntryKind

    view, dialer = RecordingView(), FakeConnector()
    client = Client(ClientSession(view, clock, dialer), view, clock, dialer)
    sign_in(client)
    client.session.submit("/search deploy")
    assert client.sent() == ["/search deploy"]
    client.hear(
        "FOUND #dev 1796082655917342 2026-11-30T23:50:55.917Z MSG carol deploy now",
        "FOUND bob 1796082601123000 2026-11-30T23:50:01.123Z ACTION bob deploys",
        "ENDSEARCH 2",
    )
    assert client.view.texts(EntryKind.INFO) == [
        "#dev 2026-11-30 23:50 UTC <carol> deploy now",
        "bob 2026-11-30 23:50 UTC * bob deploys",
        "2 found, newest first.",
    ]


def test_the_search_benchmark_runs_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench/search.py at a tiny size: it builds, searches, measures the index's
    cost, and the database it built keeps its triggers (chatd's again)."""
    from bench.search import main

    built = tmp_path / "bench.sqlite3"
    argv = ["--messages", "3000", "--repeat", "2", "--runs", "1"]
    argv += ["--members", "3", "--chatter", "50", "--database", str(built)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "built 3,000 messages" in printed
    assert "the commonest word, 20 rooms" in printed
    assert "writer's insert" in printed and "whole process" in printed
    with sqlite3.connect(built) as database:
        triggers = database.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ).fetchone()
    assert triggers == (6,)


def test_a_search_on_one_node_finds_what_was_said_on_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A cluster (Redis): what alice said on node a, bob finds on node b with
    /search, and not the secret room's message he is not in."""
    from test_cluster_daemon import client, nodes

    with nodes(redis_server, tmp_path, 2) as (a, b):
        alice = client(a, "alice")
        alice.send("/join #hush")
        alice.expect("JOIN #hush alice")
        alice.send("/mode #hush +s")
        alice.send("the hidden kettle")
        alice.send("/join #lobby")
        alice.send("#lobby: the kettle is on")
        alice.expect("MSG #lobby alice #lobby: the kettle is on")
        bob = client(b, "bob")
        bob.send("/search kettle")
        assert bob.expect("FOUND ").endswith(" MSG alice #lobby: the kettle is on")
        assert bob.expect("ENDSEARCH ") == "ENDSEARCH 1"
        alice.send("/search kettle")
        assert alice.expect("FOUND #hush ").endswith(" the hidden kettle")
        alice.close()
        bob.close()
