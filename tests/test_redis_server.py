"""The tests' own redis-server (tests/redis_server.py): start, stop, start again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis_server as module
from redis_server import WAIT, RedisServer, running_redis


def ask(port: int, *words: str) -> bytes:
    """Send one command in RESP and return the raw reply (one recv is enough here)."""
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(word.encode())}\r\n{word}\r\n".encode() for word in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_server_answers_on_loopback_in_its_own_directory(
    redis_server: RedisServer,
) -> None:
    """The server answers on 127.0.0.1, keeps nothing, and lives in a temp dir."""
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert ask(redis_server.port, "PING") == b"+PONG\r\n"
    assert ask(redis_server.port, "CONFIG", "GET", "bind").endswith(b"127.0.0.1\r\n")
    assert ask(redis_server.port, "CONFIG", "GET", "save").endswith(b"$0\r\n\r\n")
    directory = ask(redis_server.port, "CONFIG", "GET", "dir")
    assert str(redis_server.directory).encode() in directory
    assert not str(redis_server.directory).startswith("/var/lib/redis")


def test_stop_then_start_again_on_the_same_port(redis_server: RedisServer) -> None:
    """After stop() nothing listens on the port; start() brings it back there, empty."""
    port = redis_server.port
    assert ask(port, "SET", "k", "v") == b"+OK\r\n"
    redis_server.stop()
    assert not redis_server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    redis_server.start()
    assert redis_server.port == port and redis_server.running
    assert ask(port, "GET", "k") == b"$-1\r\n"


def test_a_taken_port_moves_a_chosen_server_elsewhere(tmp_path: Path) -> None:
    """When the picked port is taken before Redis binds it, start() picks another."""
    binary = module.redis_server_path()
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = RedisServer(tmp_path, binary)
        server.port = squatter.getsockname()[1]
        server.start()
        try:
            assert server.port != squatter.getsockname()[1]
            assert ask(server.port, "PING") == b"+PONG\r\n"
        finally:
            server.stop()


def test_missing_redis_skips_locally_and_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without redis-server a test is skipped, unless CI=true: then it fails."""
    monkeypatch.setattr(module, "redis_server_path", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        with running_redis(tmp_path):
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it"):
        with running_redis(tmp_path):
            pass
