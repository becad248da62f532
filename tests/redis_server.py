"""A private redis-server for the tests: a free loopback port, a temporary directory.

Never a system Redis: each RedisServer runs Debian's redis-server binary with
everything on its command line (no file from /etc), listening on 127.0.0.1 only,
keeping nothing on disk, in a directory of its own. It can be stopped and started
again on the same port, as a cluster test does to show nodes riding out an outage.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

WAIT = 10.0  # seconds: the bound on every wait for the server
READY = "Ready to accept connections"
PORT_TAKEN = "Address already in use"
PORT_TRIES = 5  # a free port picked by the kernel can be taken before Redis binds it


def redis_server_path() -> str | None:
    """Where redis-server is, or None when it is not installed."""
    return shutil.which("redis-server") or next(
        (
            p
            for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
            if os.path.exists(p)
        ),
        None,
    )


def free_port() -> int:
    """A loopback TCP port nobody listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process of the tests' own, on 127.0.0.1:port.

    start() waits until its log says it accepts connections (bounded by WAIT);
    stop() ends it; start() again brings it back on the same port, empty (it
    keeps nothing on disk).
    """

    def __init__(self, directory: Path, binary: str, port: int | None = None) -> None:
        self.directory = directory
        self.binary = binary
        self.port = port if port is not None else free_port()
        self._chosen = port is None  # may move to another port if this one is taken
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def url(self) -> str:
        """The redis:// URL of database 0 on this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The redis-server command line: every setting here, none from a file."""
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", "",
            "--loglevel", "notice",
            "--databases", "16",
        ]  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            raise RuntimeError(f"redis-server already runs on port {self.port}")
        for _ in range(PORT_TRIES):
            if self._launch():
                return
            if not (self._chosen and any(PORT_TAKEN in line for line in self.log)):
                break
            self.port = free_port()
        raise RuntimeError(
            f"redis-server did not start on port {self.port}:\n" + "\n".join(self.log)
        )

    def _launch(self) -> bool:
        """Run the process once; True when it said it is ready, False if it ended."""
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + WAIT
        while True:
            try:
                text = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._end()
                raise RuntimeError(
                    f"redis-server not ready within {WAIT} s:\n" + "\n".join(self.log)
                ) from None
            if text is None:
                self._end()
                return False
            self.log.append(text)
            if READY in text:
                return True

    def _drain(self, process: subprocess.Popen[str]) -> None:
        lines = self._lines
        assert process.stdout is not None
        for text in process.stdout:
            lines.put(text.rstrip("\n"))
        lines.put(None)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers); nothing is kept."""
        self._end()

    def _end(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WAIT)


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started RedisServer in directory, stopped afterwards.

    Skips the test when redis-server is not installed, but fails it when the
    CI variable is "true": CI installs redis-server (.ci/run) and must run these.
    """
    binary = redis_server_path()
    if binary is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must have it", pytrace=False)
        pytest.skip(reason)
    server = RedisServer(directory, binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
