"""The Redis link (chatd.store.resp, hiredis) against txredisapi's own reader."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from txredisapi import BaseRedisProtocol as RedisProtocol
from txredisapi import ResponseError

from chatd.store.resp import LogLink

# An XREAD reply of two entries (one not UTF-8), then the replies of XADD,
# EXISTS, SET, a nil bulk, a nil array, an empty array and an error.
STREAM = (
    b"*1\r\n*2\r\n$9\r\nchatd:log\r\n*2\r\n"
    b'*2\r\n$15\r\n1700000000000-0\r\n*2\r\n$1\r\ne\r\n$22\r\n{"k":"say","t":"h\xc3\xa9!"}\r\n'
    b"*2\r\n$15\r\n1700000000000-1\r\n*2\r\n$1\r\ne\r\n$2\r\n\xff\xfe\r\n"
    b"$15\r\n1700000000001-0\r\n"
    b":1\r\n"
    b"+OK\r\n"
    b"$-1\r\n"
    b"*-1\r\n"
    b"*0\r\n"
    b"-ERR unknown command 'NOPE'\r\n"
    b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
)


def replies_of(protocol: RedisProtocol, chunks: list[bytes]) -> list[Any]:
    got: list[Any] = []
    protocol.replyReceived = got.append
    protocol.callLater = Clock().callLater  # txredisapi goes on at later turns
    clock = protocol.callLater.__self__
    protocol.transport = None
    for chunk in chunks:
        protocol.dataReceived(chunk)
        while clock.getDelayedCalls():
            clock.advance(0)
    return [
        (type(reply).__name__, str(reply)) if isinstance(reply, Exception) else reply
        for reply in got
    ]


def as_text(reply: Any) -> Any:
    """txredisapi's reply with a value that is not UTF-8 read as LogLink reads it.

    LogLink has hiredis decode as it parses: such bytes (chatd never writes
    any) come as text with U+FFFD, where txredisapi leaves them bytes.
    """
    if isinstance(reply, list):
        return [as_text(item) for item in reply]
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return reply


def fresh(kind: type[RedisProtocol]) -> RedisProtocol:
    protocol = kind(convertNumbers=False)
    protocol.pauseProducing = lambda: None
    protocol.resumeProducing = lambda: None
    return protocol


def test_the_replies_are_txredisapis() -> None:
    """Whole, the stream gives what txredisapi's parser gives, reply by reply."""
    expected = replies_of(fresh(RedisProtocol), [STREAM])
    assert len(expected) == 9
    assert expected[0][0][1][1][1] == ["e", b"\xff\xfe"]  # not text: bytes
    got = replies_of(fresh(LogLink), [STREAM])
    assert got[0][0][1][1][1] == ["e", "\ufffd\ufffd"]
    assert got == as_text(expected)


def test_a_reply_cut_anywhere_waits_for_the_rest() -> None:
    """Split at every byte, the replies come out the same, each once."""
    expected = as_text(replies_of(fresh(RedisProtocol), [STREAM]))
    for cut in range(1, len(STREAM)):
        got = replies_of(fresh(LogLink), [STREAM[:cut], STREAM[cut:]])
        assert got == expected, cut


def test_byte_by_byte() -> None:
    expected = as_text(replies_of(fresh(RedisProtocol), [STREAM]))
    chunks = [STREAM[i : i + 1] for i in range(len(STREAM))]
    assert replies_of(fresh(LogLink), chunks) == expected


def test_errors_are_response_errors() -> None:
    got: list[Any] = []
    link = fresh(LogLink)
    link.replyReceived = got.append
    link.dataReceived(b"-ERR no such key\r\n")
    assert isinstance(got[0], ResponseError)
    assert str(got[0]) == "ERR no such key"


def test_commands_are_built_as_txredisapi_builds_them() -> None:
    """The same bytes for every kind of argument the cluster and history send."""
    command = (
        "XADD",
        "chatd:log",
        "MAXLEN",
        "~",
        200_000,
        "*",
        "e",
        '{"t":"hé ☃"}',
        b"\xff",
        1.5,
        True,
        -3,
        bytearray(b"ab"),
    )
    theirs = fresh(RedisProtocol)._build_command(*command)
    assert fresh(LogLink)._build_command(*command) == theirs
    assert fresh(LogLink)._build_command("PING") == b"*1\r\n$4\r\nPING\r\n"
