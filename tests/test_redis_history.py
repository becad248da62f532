"""RedisHistory against a real redis-server of the test's own (tests/redis_server.py).

txredisapi works on the global reactor, so these tests turn it by hand
(reactor.iterate) until what they wait for has happened, each wait bounded;
the store's own clock (ids, times, retention) is a task.Clock.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from helpers import NOW, connect, lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import WAIT, RedisServer
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.store.interface import (
    DEFAULT_BOUND,
    Bound,
    Entry,
    HistoryUnavailable,
    IHistory,
    Kind,
    Span,
    UnknownId,
    id_at,
    millis,
)
from chatd.store.memory import MemoryHistory
from chatd.store.redis_history import (
    DAY,
    FRESH_RETRY,
    FRESH_WINDOW,
    PRUNE_EVERY,
    RedisHistory,
    message_id,
    parse_url,
    private_room,
    room_key,
    stream_id,
)

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
T = TypeVar("T")


def turn_until(done: Callable[[], bool], what: str = "it") -> None:
    """Turn the global reactor until done() is true; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT} s for {what}")
        # As reactor.run would: no longer than until the next delayed call.
        pending = reactor.timeout()  # type: ignore[attr-defined]
        wait = 0.01 if pending is None else min(pending, 0.01)
        reactor.iterate(wait)


def result(deferred: defer.Deferred[T]) -> T:
    """The result of deferred, turning the reactor until it fires."""
    box: list[T | Failure] = []
    deferred.addBoth(box.append)
    turn_until(lambda: bool(box), "an answer")
    answer = box[0]
    if isinstance(answer, Failure):
        answer.raiseException()
    return answer


def failure(deferred: defer.Deferred[T]) -> Failure:
    """The failure deferred fires with (AssertionError if it succeeds)."""
    box: list[object] = []
    deferred.addBoth(box.append)
    turn_until(lambda: bool(box), "an answer")
    assert isinstance(box[0], Failure), f"succeeded with {box[0]!r}"
    return box[0]


def ask(port: int, *words: str) -> bytes:
    """One command straight to Redis over a plain socket; its raw reply."""
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(word.encode())}\r\n{word}\r\n".encode() for word in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def start_history(
    server: RedisServer,
    clock: Clock,
    days: float = 30,
    shared: bool = False,
    bound: Bound = DEFAULT_BOUND,
) -> RedisHistory:
    """A RedisHistory on server that retries quickly (txredisapi: 1 s, then more)."""
    history = RedisHistory.start(
        reactor, server.url, clock, keep_days=days, shared=shared, bound=bound
    )
    history.factory.initialDelay = 0.05
    history.factory.maxDelay = 0.2
    return history


def open_history(
    server: RedisServer,
    clock: Clock,
    days: float = 30,
    shared: bool = False,
    bound: Bound = DEFAULT_BOUND,
) -> RedisHistory:
    return result(start_history(server, clock, days, shared, bound).ready())


@pytest.fixture
def history(redis_server: RedisServer, clock: Clock) -> Iterator[RedisHistory]:
    opened = open_history(redis_server, clock)
    yield opened
    result(opened.close())


def test_ids_map_to_stream_ids_both_ways() -> None:
    """A message id is its stream id's milliseconds and sequence, exactly."""
    for msg_id in (1, 999, 1000, 1_796_082_601_123_456, id_at(1_796_082_601_123)):
        assert message_id(stream_id(msg_id)) == msg_id
    assert stream_id(1_796_082_601_123_456) == "1796082601123-456"
    assert parse_url("redis://127.0.0.1:6380/2") == ("127.0.0.1", 6380, 2)
    assert parse_url("redis://redis") == ("redis", 6379, 0)
    for bad in ("http://x:1/0", "redis://h:1/x", "redis:///0"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_messages_are_kept_and_read_oldest_first(
    history: RedisHistory, clock: Clock, redis_server: RedisServer
) -> None:
    """What is recorded is read back with its ids, times, kinds, nicks and texts."""
    verifyObject(IHistory, history)
    said = []
    for n in range(5):
        kind = Kind.ACTION if n == 2 else Kind.MESSAGE
        said.append((*history.record("#lobby", kind, "alice", f"say {n}"), kind, n))
        clock.advance(0.0004)  # two in one millisecond, sometimes
    history.record("#dev", Kind.MESSAGE, "bob", "42")
    entries = result(history.read("#lobby", 10))
    assert entries == [
        Entry(msg_id, millis(now), kind, "alice", f"say {n}")
        for msg_id, now, kind, n in said
    ]
    assert result(history.read("#lobby", 2)) == entries[-2:]
    assert result(history.read("#lobby", 2, before=entries[3].id)) == entries[1:3]
    assert result(history.read("#dev", 5))[0].text == "42"  # digits stay text
    assert result(history.read("#empty", 5)) == []
    assert history.has_history("#lobby") and not history.has_history("#empty")
    first = stream_id(entries[0].id)
    assert (
        first in ask(redis_server.port, "XRANGE", room_key("#lobby"), "-", "+").decode()
    )


def test_a_before_that_is_not_the_rooms_is_unknown(
    history: RedisHistory, clock: Clock
) -> None:
    """read with a before id that no message of the room has fails with UnknownId."""
    lobby, _ = history.record("#lobby", Kind.MESSAGE, "alice", "hi")
    dev, _ = history.record("#dev", Kind.MESSAGE, "alice", "hi")
    clock.advance(FRESH_WINDOW + 1)  # not fresh: no second look (test_redaction_redis)
    for room, before in (("#lobby", dev), ("#lobby", lobby + 1), ("#none", lobby)):
        assert failure(history.read(room, 5, before)).check(UnknownId)
    assert result(history.read("#lobby", 5, before=lobby)) == []


def test_select_latest_and_the_memory_store_agree(
    history: RedisHistory, clock: Clock
) -> None:
    """select and latest answer as the memory store does, spans at any id."""
    memory = MemoryHistory(clock)
    for n in range(30):
        room = "#a" if n % 3 else "#b"
        history.record(room, Kind.MESSAGE, "alice", f"m{n}")
        memory.record(room, Kind.MESSAGE, "alice", f"m{n}")
        clock.advance(0.0007)
    ids = [entry.id for entry in result(memory.read("#a", 100))]
    bounds = [None, 0, -5, ids[0] - 1, ids[0], ids[3], ids[3] + 1, ids[-1], ids[-1] + 9]
    for after in bounds:
        for before in bounds:
            for newest in (True, False):
                for limit in (0, 1, 4, 50):
                    span = Span(limit, after, before, newest)
                    assert result(history.select("#a", span)) == result(
                        memory.select("#a", span)
                    ), span
    rooms = ["#a", "#b", "#c"]
    assert result(history.latest(rooms)) == result(memory.latest(rooms))


OPS = st.lists(
    st.one_of(
        # Never empty: the doors refuse an empty message, and an empty text
        # is a deleted message's tombstone (docs/protocol.md, Deleting messages).
        st.tuples(
            st.just("say"),
            st.sampled_from(["#a", "#b"]),
            st.text(min_size=1, max_size=5),
        ),
        st.tuples(st.just("wait"), st.floats(min_value=0, max_value=0.01)),
        st.tuples(
            st.just("read"),
            st.sampled_from(["#a", "#b"]),
            st.integers(min_value=0, max_value=12),
            st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
        ),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
def test_reads_answer_as_the_memory_store_does(
    redis_server: RedisServer, ops: list[tuple[object, ...]]
) -> None:
    """Any mix of messages, waits and reads: Redis answers as memory does."""
    clock = Clock()
    clock.advance(NOW)
    assert ask(redis_server.port, "FLUSHDB") == b"+OK\r\n"
    history = open_history(redis_server, clock)
    memory = MemoryHistory(clock)
    said: list[int] = []
    try:
        for op in ops:
            if op[0] == "say":
                room, text = str(op[1]), str(op[2])
                kept = history.record(room, Kind.MESSAGE, "n", text)
                assert memory.record(room, Kind.MESSAGE, "n", text) == kept
                said.append(kept[0])
            elif op[0] == "wait":
                clock.advance(float(op[1]))  # type: ignore[arg-type]
            else:
                room, count, index = str(op[1]), int(op[2]), op[3]  # type: ignore[call-overload]
                before = None
                if isinstance(index, int):
                    before = said[index] if index < len(said) else index + 1
                want = result_or(memory.read(room, count, before))
                # A fresh id not in the room is looked for until FRESH_WINDOW
                # old (another node may not have written it yet): waited out.
                asked = waited_out(clock, history.read(room, count, before))
                if isinstance(want, Failure):
                    assert failure(asked).check(UnknownId)
                else:
                    assert result(asked) == want
    finally:
        result(history.close())


def waited_out(clock: Clock, asked: defer.Deferred[T]) -> defer.Deferred[T]:
    """Turn the reactor, and clock FRESH_RETRY at a time while a look at a
    fresh id is due again, until asked has fired; return it."""
    for _ in range(int(FRESH_WINDOW / FRESH_RETRY) + 2):
        due = clock.seconds() + FRESH_RETRY

        def answered_or_due(due: float = due) -> bool:
            calls = clock.getDelayedCalls()
            return asked.called or any(abs(c.getTime() - due) < 1e-6 for c in calls)

        turn_until(answered_or_due, "an answer or a second look")
        if asked.called:
            return asked
        clock.advance(FRESH_RETRY)
    raise AssertionError("still looking after FRESH_WINDOW")


def result_or(deferred: defer.Deferred[T]) -> T | Failure:
    """The result (or failure) of a deferred that has fired already."""
    box: list[T | Failure] = []
    deferred.addBoth(box.append)
    deferred.addErrback(lambda _: None)
    return box[0]


def test_a_caller_chosen_id_is_kept_with_its_time(history: RedisHistory) -> None:
    """record_at keeps a message under the id and time given; record goes on above."""
    given_id = id_at(millis(NOW)) + 5_000_000  # five seconds ahead of the clock
    history.record_at("#lobby", Kind.MESSAGE, "alice", "from the log", given_id, NOW)
    later, _ = history.record("#lobby", Kind.MESSAGE, "bob", "after")
    assert later == given_id + 1
    entries = result(history.read("#lobby", 5))
    assert entries == [
        Entry(given_id, millis(NOW), Kind.MESSAGE, "alice", "from the log"),
        Entry(later, millis(NOW), Kind.MESSAGE, "bob", "after"),
    ]


def test_an_id_below_the_rooms_last_is_dropped_and_logged(
    history: RedisHistory,
) -> None:
    """Redis refuses an entry below its stream's last: it is lost, and said once."""
    first, _ = history.record("#lobby", Kind.MESSAGE, "alice", "one")
    with capturedLogs() as events:
        history.record_at("#lobby", Kind.MESSAGE, "eve", "late", first - 10, NOW)
        history.record_at("#lobby", Kind.MESSAGE, "eve", "later", first - 5, NOW)
        assert [entry.text for entry in result(history.read("#lobby", 5))] == ["one"]
    assert history.dropped == 2
    warned = [e for e in events if "refused" in e.get("log_format", "")]
    assert len(warned) == 1
    assert history.reason is None


def test_a_turns_messages_go_out_as_one_command(
    history: RedisHistory, redis_server: RedisServer
) -> None:
    """Messages kept in one reactor turn are one script, sent before any read."""
    before = _evals(redis_server)
    base = id_at(millis(NOW))
    for n in range(5):
        history.record_at("#lobby", Kind.MESSAGE, "alice", f"m{n}", base + n, NOW)
    history.record_at("#dev", Kind.ACTION, "bob", "waves", base + 5, NOW)
    assert [e.text for e in result(history.read("#lobby", 10))] == [
        f"m{n}" for n in range(5)
    ]
    assert [e.text for e in result(history.read("#dev", 10))] == ["waves"]
    assert _evals(redis_server) == before + 1


def test_a_refused_message_does_not_cost_the_others_of_its_turn(
    history: RedisHistory,
) -> None:
    """One id below its room's last, between two good ones: only it is lost."""
    first, _ = history.record("#lobby", Kind.MESSAGE, "alice", "one")
    with capturedLogs() as events:
        history.record_at("#lobby", Kind.MESSAGE, "eve", "late", first - 10, NOW)
        history.record_at("#dev", Kind.MESSAGE, "bob", "fine", first + 1, NOW)
        history.record_at("#lobby", Kind.MESSAGE, "carol", "two", first + 2, NOW)
        assert [e.text for e in result(history.read("#lobby", 5))] == ["one", "two"]
        assert [e.text for e in result(history.read("#dev", 5))] == ["fine"]
    assert history.dropped == 1
    assert len([e for e in events if "refused" in e.get("log_format", "")]) == 1


def _evals(server: RedisServer) -> int:
    """How many EVALs the server has run (INFO commandstats)."""
    stats = ask(server.port, "INFO", "commandstats").decode()
    found = re.search(r"cmdstat_eval:calls=(\d+)", stats)
    return int(found.group(1)) if found else 0


def test_a_new_store_gives_ids_above_those_kept(
    redis_server: RedisServer, clock: Clock
) -> None:
    """Started on a Redis that keeps messages, ids carry on above the last one."""
    first = open_history(redis_server, clock)
    ahead = id_at(millis(NOW)) + 10**9  # a thousand seconds ahead of the clock
    first.record_at("#lobby", Kind.MESSAGE, "a", "x", ahead, NOW)
    result(first.close())
    second = open_history(redis_server, clock)
    try:
        assert second.has_history("#lobby") and not second.has_history("#dev")
        assert second.record("#dev", Kind.MESSAGE, "b", "y")[0] == ahead + 1
    finally:
        result(second.close())


def test_shared_history_may_be_in_any_room(
    redis_server: RedisServer, clock: Clock
) -> None:
    """In a cluster another node may have written any room: has_history says so."""
    shared = open_history(redis_server, clock, shared=True)
    try:
        assert shared.has_history("#anything")
    finally:
        result(shared.close())


def test_messages_past_their_days_are_trimmed(
    redis_server: RedisServer, clock: Clock
) -> None:
    """Once an hour, every room loses what is older than the days, quiet rooms too."""
    history = open_history(redis_server, clock, days=2)
    try:
        old, _ = history.record("#quiet", Kind.MESSAGE, "a", "old")
        clock.advance(DAY)
        kept, _ = history.record("#quiet", Kind.MESSAGE, "a", "kept")
        clock.advance(DAY + 1)
        with capturedLogs() as events:
            clock.advance(PRUNE_EVERY)  # the hourly trim
            assert [e.text for e in result(history.read("#quiet", 5))] == ["kept"]
        assert any("deleted" in e.get("log_format", "") for e in events)
        assert result(history.prune()) == 0
    finally:
        result(history.close())


def _length(server: RedisServer, key: str) -> int:
    reply = ask(server.port, "XLEN", key)
    assert reply.startswith(b":"), reply
    return int(reply[1:])


def test_a_flooded_room_is_trimmed_to_the_bound(
    redis_server: RedisServer, clock: Clock
) -> None:
    """1,000 messages into a room bounded at 100 (and 300 into a conversation):
    each write trims to about the bound (a stream node's worth more at most);
    the newest stay."""
    history = open_history(redis_server, clock, bound=Bound(room=100, total=0))
    try:
        # Turns of 73: the stream's nodes are not filled evenly.
        for turn in range(0, 1000, 73):
            for n in range(turn, min(turn + 73, 1000)):
                history.record("#flood", Kind.MESSAGE, "m", str(n))
            for n in range(turn * 3 // 10, min(turn + 73, 1000) * 3 // 10):
                history.record_private("alice", "bob", Kind.MESSAGE, "alice", str(n))
            result(history.read("#flood", 1))  # the turn's script has run
        assert 100 <= _length(redis_server, room_key("#flood")) <= 200
        private = room_key(private_room("alice", "bob"))
        assert 100 <= _length(redis_server, private) <= 200
        kept = result(history.read("#flood", 100))
        assert [e.text for e in kept] == [str(n) for n in range(900, 1000)]
        assert result(history.read_private("bob", "alice", 1))[0].text == "299"
    finally:
        result(history.close())


def test_the_hourly_trim_brings_every_room_to_the_bound_exactly(
    redis_server: RedisServer, clock: Clock
) -> None:
    """A room written past the bound (by a node without it, say) is trimmed to
    exactly the bound at start and every hour, and the log says how many went."""
    unbounded = open_history(redis_server, clock, bound=Bound(0, 0))
    for n in range(250):
        unbounded.record("#old", Kind.MESSAGE, "m", str(n))
    result(unbounded.close())
    with capturedLogs() as events:  # the first trim is at connection
        history = open_history(redis_server, clock, bound=Bound(room=100, total=0))
        result(history.read("#old", 1))
    try:
        assert _length(redis_server, room_key("#old")) == 100
        assert result(history.prune()) == 0
        assert [e.text for e in result(history.read("#old", 1))] == ["249"]
        assert any("past {most} a room" in e["log_format"] for e in events)
    finally:
        result(history.close())


def test_redis_away_then_back(history: RedisHistory, redis_server: RedisServer) -> None:
    """Redis stops: reason says so, reads fail, messages are lost; back, all works."""
    history.record("#lobby", Kind.MESSAGE, "alice", "before")
    assert result(history.read("#lobby", 5))[0].text == "before"
    with capturedLogs() as events:
        redis_server.stop()
        turn_until(lambda: history.reason is not None, "the store to notice")
        assert "cannot be reached" in str(history.reason)
        assert failure(history.read("#lobby", 5)).check(HistoryUnavailable)
        assert failure(history.select("#lobby", Span(5))).check(HistoryUnavailable)
        assert failure(history.latest(["#lobby"])).check(HistoryUnavailable)
        history.record("#lobby", Kind.MESSAGE, "alice", "lost")
        assert history.dropped == 1
        redis_server.start()
        turn_until(lambda: history.reason is None, "the store to come back")
    texts = [e.get("log_format", "") for e in events]
    assert any("history is off" in t for t in texts)
    assert any("kept again" in t for t in texts)
    msg_id, _ = history.record("#lobby", Kind.MESSAGE, "alice", "after")
    entries = result(history.read("#lobby", 5))
    assert [e.text for e in entries] == ["after"]  # the test's Redis kept nothing
    assert entries[0].id == msg_id


def test_a_store_started_before_redis_works_once_it_is_up(
    redis_server: RedisServer, clock: Clock
) -> None:
    """Started while Redis is down, the store says it is connecting, then works."""
    redis_server.stop()
    history = start_history(redis_server, clock)
    try:
        assert history.reason is not None and "connecting" in history.reason
        assert failure(history.read("#lobby", 5)).check(HistoryUnavailable)
        history.record("#lobby", Kind.MESSAGE, "alice", "too early")
        assert history.dropped == 1
        redis_server.start()
        assert result(history.ready()) is history and history.reason is None
        history.record("#lobby", Kind.MESSAGE, "alice", "in time")
        assert [e.text for e in result(history.read("#lobby", 5))] == ["in time"]
    finally:
        result(history.close())
    assert failure(history.read("#lobby", 5)).check(HistoryUnavailable)
    assert history.record("#lobby", Kind.MESSAGE, "alice", "closed")[0] > 0


def test_history_said_on_one_node_is_read_on_another(
    redis_server: RedisServer, clock: Clock
) -> None:
    """Two chats on one Redis: /history on the second lists what the first kept."""
    stores = [open_history(redis_server, clock, shared=True) for _ in range(2)]
    try:
        one, two = (
            ChatFactory(ServerConfig(flood_rate=0.0), clock, store) for store in stores
        )
        (alice, _), (bob, b_out) = connect(one, "alice"), connect(two, "bob")
        alice.dataReceived(b"hello from one\r\n")
        clock.advance(1.5)
        alice.dataReceived(b"/me waves\r\n")
        lines(b_out)
        # Node one's writes have reached Redis once a read of its own is answered:
        # order holds per connection, not across nodes.
        result(stores[0].read("#lobby", 1))
        bob.dataReceived(b"/history #lobby\r\n")
        turn_until(lambda: b"ENDHISTORY" in b_out.value(), "ENDHISTORY")
        first_id, second_id = int(NOW * 1_000_000), int((NOW + 1.5) * 1_000_000)
        assert lines(b_out) == [
            f"HISTORY #lobby {first_id} 2026-11-30T23:50:01.123Z MSG alice "
            "hello from one",
            f"HISTORY #lobby {second_id} 2026-11-30T23:50:02.623Z ACTION alice waves",
            "ENDHISTORY #lobby 2",
        ]
    finally:
        for store in stores:
            result(store.close())
