"""When a silent node is declared lost: --node-timeout after its last heartbeat.

RedisLog's heartbeats on a task.Clock, against a fake Redis that keeps keys'
times to live on the same clock (SET ... PX, PTTL, EXISTS) and notes when a
lost entry is appended (docs/cluster.md, Node life).
"""

from __future__ import annotations

import json
from typing import cast

import pytest
from helpers import CHEAP
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.task import Clock
from txredisapi import RedisProtocol

from chatd.cluster.redis import NODE_PREFIX, RedisLog
from chatd.cluster.replica import ClusterChat
from chatd.cluster.service import cluster_node
from chatd.config import ServerConfig
from chatd.factory import ChatFactory

TIMEOUT = 15.0  # --node-timeout's default
STEP = 0.005  # the clock moves 5 ms at a time
MARGIN = 0.05  # seconds a declaration may come after the key expired


class FakeRedis:
    """Keys with a time to live on clock, and the log's lost entries' times."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.expiry: dict[str, float] = {}  # key -> when it expires
        self.lost: dict[str, float] = {}  # node -> when its lost was appended

    def heartbeat(self, node: str) -> None:
        """node refreshes its key now, as a live node does."""
        self.expiry[NODE_PREFIX + node] = self.clock.seconds() + TIMEOUT

    def _live(self, key: str) -> bool:
        # Redis: a key is gone once its time has passed (checked on access).
        return key in self.expiry and self.clock.seconds() <= self.expiry[key]

    def execute_command(self, *words: object) -> defer.Deferred[object]:
        command, *args = words
        if command == "SET":
            self.expiry[str(args[0])] = self.clock.seconds() + int(str(args[3])) / 1000
            return defer.succeed("OK")
        if command == "EXISTS":
            return defer.succeed(int(self._live(str(args[0]))))
        if command == "PTTL":
            key = str(args[0])
            if not self._live(key):
                return defer.succeed(-2)
            return defer.succeed(int((self.expiry[key] - self.clock.seconds()) * 1000))
        if command == "XADD":
            entry = json.loads(str(args[-1]))
            if entry["k"] == "lost":
                self.lost.setdefault(entry["node"], self.clock.seconds())
            return defer.succeed("1-1")
        raise AssertionError(f"unexpected {command}")


def watching(clock: Clock, redis: FakeRedis) -> RedisLog:
    """A node, up, whose replica knows node n2, its heartbeats on clock."""
    factory = ChatFactory(ServerConfig(accounts=CHEAP), clock, chat_type=ClusterChat)
    node = cluster_node(factory, "n1")
    node.nodes["n2"] = None
    link = RedisLog(
        node, cast(IReactorTCP, None), clock, "redis://127.0.0.1:6379", TIMEOUT
    )
    link.writer = cast(RedisProtocol, redis)
    return link


@pytest.mark.parametrize("phase", [0.0, 0.01, 2.5, 4.99])
@pytest.mark.parametrize("died", [0.0, 4.999, 31.3])
def test_a_silent_node_is_declared_lost_node_timeout_after_its_last_beat(
    phase: float, died: float
) -> None:
    """Whatever the phase of the watcher's heartbeats against the dead node's,
    lost is appended --node-timeout after its last heartbeat (within 50 ms),
    not up to a third later: so within --node-timeout of its death."""
    clock = Clock()
    redis = FakeRedis(clock)
    link = watching(clock, redis)
    redis.heartbeat("n2")
    last = 0.0
    clock.advance(phase)
    link._went_up()  # joined: the heartbeats start
    while clock.seconds() < died + 2 * TIMEOUT and "n2" not in redis.lost:
        if last + TIMEOUT / 3 - STEP <= clock.seconds() <= died:
            redis.heartbeat("n2")  # n2's own heartbeats, every third, until it dies
            last = clock.seconds()
        clock.advance(STEP)
    assert "n2" in redis.lost
    declared = redis.lost["n2"]
    assert last + TIMEOUT <= declared <= last + TIMEOUT + MARGIN
    assert declared <= died + TIMEOUT + MARGIN


def test_a_live_node_is_never_declared_lost() -> None:
    """n2 refreshes its key every third of --node-timeout for a minute: no lost."""
    clock = Clock()
    redis = FakeRedis(clock)
    link = watching(clock, redis)
    redis.heartbeat("n2")
    link._went_up()
    for _ in range(int(60 / (TIMEOUT / 3))):
        redis.heartbeat("n2")
        clock.pump([0.01] * int(TIMEOUT / 3 / 0.01))
    assert redis.lost == {}
