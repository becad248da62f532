"""Deleting a message from history kept in Redis (chatd.store.redis_history).

The stream is written again without the entry, so that neither the stream's
nodes (XDEL only flags an entry) nor a snapshot saved after (RDB) hold the
text; the id stays a tombstone that pages on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import RedisServer
from test_redis_history import ask, open_history, result, turn_until
from twisted.internet.task import Clock

from chatd.store.interface import Kind
from chatd.store.redis_history import (
    FRESH_RETRY,
    FRESH_WINDOW,
    RedisHistory,
    room_key,
)

pytestmark = pytest.mark.dated
SECRET = "hunter2-is-my-password"


@pytest.fixture
def history(redis_server: RedisServer, clock: Clock) -> Iterator[RedisHistory]:
    opened = open_history(redis_server, clock)
    yield opened
    result(opened.close())


def saved_snapshot(redis_server: RedisServer) -> bytes:
    """An RDB file saved now, uncompressed, as a backup would take it."""
    ask(redis_server.port, "CONFIG", "SET", "rdbcompression", "no")
    assert ask(redis_server.port, "SAVE") == b"+OK\r\n"
    return (redis_server.directory / "dump.rdb").read_bytes()


def test_delete_forgets_the_text_in_the_stream_and_in_a_snapshot(
    history: RedisHistory, redis_server: RedisServer, clock: Clock
) -> None:
    """Before: the text is in a saved snapshot; after delete: in neither the
    stream (its DUMP) nor a snapshot saved after; reads skip it, the author
    lookup says None, its id still pages, and the stream's last id stays."""
    ids = []
    for text in ("before", SECRET, "after"):
        clock.advance(0.01)
        ids.append(history.record("#dev", Kind.MESSAGE, "alice", text, "~s1")[0])
    assert result(history.author("#dev", ids[1])) == "~s1"
    assert SECRET.encode() in saved_snapshot(redis_server)
    assert result(history.delete("#dev", ids[1])) is True
    assert result(history.delete("#dev", ids[1])) is False
    assert result(history.author("#dev", ids[1])) is None
    assert [e.text for e in result(history.read("#dev", 10))] == ["before", "after"]
    assert [e.text for e in result(history.read("#dev", 10, before=ids[1]))] == [
        "before"
    ]
    assert SECRET.encode() not in ask(redis_server.port, "DUMP", room_key("#dev"))
    assert SECRET.encode() not in saved_snapshot(redis_server)
    # The last one deleted: the stream keeps its last id (a later id is above).
    assert result(history.delete("#dev", ids[2])) is True
    info = ask(redis_server.port, "XINFO", "STREAM", room_key("#dev"))
    assert f"{ids[2] // 1000}-{ids[2] % 1000}".encode() in info
    assert [e.text for e in result(history.read("#dev", 10))] == ["before"]


def test_delete_private_forgets_one_message_of_a_conversation(
    history: RedisHistory, clock: Clock
) -> None:
    """A private message's author is its sender's party; delete_private
    forgets it as delete does a room's."""
    clock.advance(0.01)
    msg_id, _ = history.record_private("alice", "bob", Kind.MESSAGE, "Alice", SECRET)
    clock.advance(0.01)
    history.record_private("bob", "alice", Kind.MESSAGE, "Bob", "reply")
    assert result(history.private_author("bob", "alice", msg_id)) == "alice"
    assert result(history.delete_private("bob", "alice", msg_id)) is True
    texts = [e.text for e in result(history.read_private("alice", "bob", 10))]
    assert texts == ["reply"]


def looks_again(clock: Clock) -> bool:
    """Whether an author lookup that missed has its next look due (FRESH_RETRY)."""
    due = clock.seconds() + FRESH_RETRY
    return any(abs(call.getTime() - due) < 1e-6 for call in clock.getDelayedCalls())


def test_a_message_another_node_has_not_written_yet_is_waited_for(
    history: RedisHistory, redis_server: RedisServer, clock: Clock
) -> None:
    """On a cluster the node that keeps a message writes it as the others
    deliver it: asked on another node right away, its author is looked for
    again until the write lands (a deletion right after the message finds
    it, and so does a read before it); an id that never comes is given up on
    once FRESH_WINDOW old."""
    keeper_clock = Clock()
    keeper_clock.advance(clock.seconds())
    keeper = open_history(redis_server, keeper_clock)
    try:
        now = keeper_clock.seconds()
        msg_id = keeper.stamps.next(now)
        keeper.record_at("#dev", Kind.MESSAGE, "alice", "spam", msg_id, now, "~s1")
        asked = history.author("#dev", msg_id)  # before the keeper's write
        turn_until(lambda: looks_again(clock), "a second look")
        assert not asked.called
        keeper_clock.advance(0)  # the keeper's turn ends: its write goes out
        assert result(keeper.read("#dev", 1))[0].id == msg_id  # and has landed
        clock.advance(FRESH_RETRY)
        assert result(asked) == "~s1"

        later = keeper.stamps.next(now + 0.001)
        keeper.record_at("#dev", Kind.MESSAGE, "alice", "more", later, now, "~s1")
        paged = history.read("#dev", 10, before=later)  # before the keeper's write
        turn_until(lambda: looks_again(clock), "a second look")
        keeper_clock.advance(0)
        assert result(keeper.read("#dev", 1))[0].id == later
        clock.advance(FRESH_RETRY)
        assert [entry.id for entry in result(paged)] == [msg_id]

        never = history.author("#dev", msg_id + 1)
        turn_until(lambda: looks_again(clock), "a second look")
        clock.advance(FRESH_WINDOW)
        assert result(never) is None
        old = history.author("#dev", int((clock.seconds() - 60) * 1_000_000))
        assert result(old) is None  # not fresh: no second look
        ahead = history.author("#dev", int((clock.seconds() + 3600) * 1_000_000))
        assert result(ahead) is None  # a made-up later id is not waited for either
    finally:
        result(keeper.close())
