"""RedisLog against a real redis-server: what a node appends in one turn.

A node's entries of one reactor turn go out as one command (one XADD, or
the APPEND script for several), in their order; the changes among them that
the others wait for are kept if the link fails, and sent once it is back.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest
from helpers import CHEAP
from redis_server import WAIT, RedisServer
from test_redis_history import result, turn_until
from twisted.internet import reactor

from chatd.cluster.entries import Changes, Effects, Talk, Turn
from chatd.cluster.redis import LOG_KEY, RedisLog
from chatd.cluster.replica import ClusterChat
from chatd.cluster.service import cluster_node
from chatd.config import ServerConfig
from chatd.factory import ChatFactory


def ask(port: int, *words: str) -> bytes:
    """One command straight to Redis; its raw reply (small replies only)."""
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(word.encode())}\r\n{word}\r\n".encode() for word in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        return sock.recv(1 << 20)


def calls(server: RedisServer, command: str) -> int:
    """How many times the server has run command (INFO commandstats)."""
    stats = ask(server.port, "INFO", "commandstats").decode()
    found = re.search(rf"cmdstat_{command}:calls=(\d+)", stats)
    return int(found.group(1)) if found else 0


def log_kinds(server: RedisServer) -> list[str]:
    """The "k" of every entry in the log, oldest first."""
    raw = ask(server.port, "XRANGE", LOG_KEY, "-", "+")
    return [json.loads(text)["k"] for text in re.findall(rb'\{"k".*?\}(?=\r\n)', raw)]


SAY = Talk(False, "t1/1", "#lobby", "hi")


@pytest.fixture
def link(redis_server: RedisServer) -> Iterator[RedisLog]:
    factory = ChatFactory(ServerConfig(accounts=CHEAP), reactor, chat_type=ClusterChat)
    node = cluster_node(factory, "t1")
    joined = RedisLog(node, reactor, reactor, redis_server.url, 5.0)
    result(joined.start())
    yield joined
    result(joined.stop())


def test_a_turns_entries_are_one_command_in_their_order(
    link: RedisLog, redis_server: RedisServer
) -> None:
    before = (calls(redis_server, "eval"), calls(redis_server, "xadd"))
    for entry in (Turn("t1", "t1/1"), SAY, Talk(True, "t1/1", "#lobby", "waves")):
        link.publish(entry)
    assert link.appended  # not sent yet: at the end of the turn
    turn_until(lambda: log_kinds(redis_server)[-3:] == ["turn", "say", "act"], "3")
    # One EVAL (its three XADDs run inside it, counted too), no XADD of its own.
    assert calls(redis_server, "eval") == before[0] + 1
    assert calls(redis_server, "xadd") == before[1] + 3


def test_a_lone_entry_is_one_xadd(link: RedisLog, redis_server: RedisServer) -> None:
    before = (calls(redis_server, "eval"), calls(redis_server, "xadd"))
    link.publish(SAY)
    turn_until(lambda: calls(redis_server, "xadd") == before[1] + 1, "the XADD")
    assert calls(redis_server, "eval") == before[0]


def test_changes_of_a_turn_lost_with_the_link_are_kept_for_later(
    link: RedisLog, redis_server: RedisServer
) -> None:
    """The link drops before the turn ends: the changes wait, the talk is gone."""
    link.publish(SAY)
    link.publish(Changes("t1", ()))
    link.publish(Effects("t1", "1-0", ()))
    assert link.writer is not None
    link.writer.transport.abortConnection()
    turn_until(lambda: not link.up, "the link to drop")
    turn_until(lambda: not link.appended, "the turn to end")
    assert [json.loads(data)["k"] for data in link.backlog] == ["op", "fx"]
    turn_until(lambda: link.up, "the link to come back")
    turn_until(lambda: log_kinds(redis_server)[-2:] == ["op", "fx"], "the backlog")
    assert "say" not in log_kinds(redis_server)
