"""Run the real `twistd -n chatd` and talk to it over real loopback sockets."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0  # seconds: the bound on every wait in these tests
# The line listeners' ports are keyed by endpoint, the IRC ones by "irc " + endpoint,
# the web ones by "web " + endpoint.
LISTENING = re.compile(r"chatd (IRC |web )?listening on (\S+): \S+ port (\d+)")


def twistd_path() -> str:
    """Find the twistd script of the Python running the tests."""
    beside = Path(sys.executable).with_name("twistd")
    found = str(beside) if beside.exists() else shutil.which("twistd")
    if found is None:
        raise RuntimeError("twistd is not installed next to this Python")
    return found


class Daemon:
    """A running twistd -n chatd process and its log lines."""

    def __init__(
        self, args: list[str], cwd: Path, twistd_args: tuple[str, ...] = ()
    ) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [twistd_path(), "-n", "--pidfile=", *twistd_args, "chatd", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        self.ports: dict[str, int] = {}

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self._lines.put(text.rstrip("\n"))
        self._lines.put(None)

    def wait_for_log(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Read log lines until one matches pattern; fail after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                text = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no {pattern.pattern!r} in log:\n" + "\n".join(self.log)
                ) from None
            if text is None:
                raise AssertionError("twistd exited:\n" + "\n".join(self.log))
            self.log.append(text)
            found = pattern.search(text)
            if found:
                return found

    def wait_listening(self, count: int) -> None:
        """Wait until count listeners have logged their bound port."""
        while len(self.ports) < count:
            found = self.wait_for_log(LISTENING)
            door = (found.group(1) or "").strip().lower()
            key = (f"{door} " if door else "") + found.group(2)
            self.ports[key] = int(found.group(3))

    def terminate(self) -> int:
        """Send SIGTERM, wait for the exit, collect the whole log; return the code.

        twistd shuts down cleanly on SIGTERM and then exits by that same signal
        (twisted.application.app._exitWithSignal), so a clean stop is -SIGTERM.
        """
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def wait_exit(self) -> int:
        """Wait for the exit a signal asked for, collect the whole log; return
        the code (terminate() without the signal: sent already)."""
        code = self.process.wait(timeout=WAIT)
        while (text := self._lines.get(timeout=WAIT)) is not None:
            self.log.append(text)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)


@contextmanager
def running_daemon(
    args: list[str],
    cwd: Path,
    listeners: int = 1,
    twistd_args: tuple[str, ...] = (),
) -> Iterator[Daemon]:
    """Start twistd -n chatd with args, wait for its ports, kill it afterwards.

    twistd_args go to twistd itself, before `chatd` (--logger, say).
    """
    daemon = Daemon(args, cwd, twistd_args)
    try:
        daemon.wait_listening(listeners)
        yield daemon
    finally:
        daemon.kill()


class LineClient:
    """A blocking line client on a real socket, every read bounded by WAIT."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(WAIT)
        self.sock = sock
        self.buffer = b""

    @classmethod
    def tcp(cls, port: int) -> LineClient:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=WAIT))

    @classmethod
    def tls(cls, port: int) -> LineClient:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        return cls(context.wrap_socket(raw, server_hostname="localhost"))

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def read_line(self) -> str:
        """Return the next line without its CRLF; '' at end of stream."""
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                rest, self.buffer = self.buffer, b""
                return rest.decode()
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw.decode()

    def expect(self, prefix: str) -> str:
        """Skip lines until one starts with prefix; return it."""
        seen = []
        while True:
            text = self.read_line()
            if text.startswith(prefix):
                return text
            seen.append(text)
            if text == "" and not self.buffer:
                raise AssertionError(f"closed before {prefix!r}; saw {seen}")

    def register(self, nick: str) -> None:
        self.expect("NICK ")
        self.send(nick)
        self.expect(f"WELCOME {nick} ")
        self.expect(f"JOIN #lobby {nick}")

    def at_eof(self) -> bool:
        return self.read_line() == "" and not self.buffer

    def close(self) -> None:
        self.sock.close()
