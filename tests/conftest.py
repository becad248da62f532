"""Fixtures for chatd's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import RedisServer, running_redis
from twisted.internet.task import Clock


@pytest.fixture
def clock() -> Clock:
    """A fake clock for anything that waits."""
    return Clock()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free loopback port (redis_server.py).

    Skipped where redis-server is missing, failed instead under CI=true.
    """
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
