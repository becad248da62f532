"""Issue 22's lockout against a real daemon, scaled to under a minute.

Starts `twistd -n chatd` from this checkout (cheap --argon2-* settings, the
default throttles and flood rate) on loopback. alice registers from
127.0.3.1; six connections from 127.0.1.1-6 guess her password every 0.5 s;
5 s in, the owner connects from 127.0.2.1 and identifies, and whenever told
`try again in N seconds` tries again exactly N seconds later, until 50 s.
Prints each of the owner's tries and when it got in (or that it did not).

    python bench/account_lockout_daemon.py
"""

from __future__ import annotations

import re
import select
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from daemon import Daemon  # noqa: E402

LOOPBACK = "tcp:0:interface=127.0.0.1"
CHEAP = ["--argon2-time", "1", "--argon2-memory", "64", "--argon2-lanes", "1"]
PASSWORD = "correct-horse-battery"
OWNER_START = 5.0
END = 50.0
TOLD = re.compile(r"try again in (\d+) seconds?")


class Line:
    """A non-blocking line client from a given loopback address."""

    def __init__(self, port: int, source: str, nick: str) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=(source, 0)
        )
        self.buffer = b""
        self.expect("NICK ")
        self.send(nick)
        self.expect("WELCOME ")
        self.sock.setblocking(False)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def expect(self, prefix: str) -> str:
        """Read (blocking) until a line starting with prefix."""
        while True:
            while b"\r\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\r\n", 1)
                if raw.decode().startswith(prefix):
                    return raw.decode()
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.buffer += data

    def lines(self) -> list[str]:
        """The whole lines that have come (non-blocking)."""
        try:
            while data := self.sock.recv(65536):
                self.buffer += data
        except BlockingIOError:
            pass
        *whole, self.buffer = self.buffer.split(b"\r\n")
        return [raw.decode() for raw in whole]


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        daemon = Daemon(["--listen", LOOPBACK, *CHEAP], Path(directory))
        try:
            daemon.wait_listening(1)
            port = daemon.ports[LOOPBACK]
            alice = Line(port, "127.0.3.1", "alice")
            alice.sock.setblocking(True)
            alice.send(f"/register {PASSWORD} {PASSWORD}")
            alice.expect("INFO alice is registered")
            alice.sock.close()
            guessers = [Line(port, f"127.0.1.{n + 1}", f"guesser{n}") for n in range(6)]
            owner: Line | None = None
            start = time.monotonic()
            next_guess = start
            next_owner = start + OWNER_START
            tries: list[str] = []
            got_in: float | None = None
            while (now := time.monotonic()) - start < END and got_in is None:
                if now >= next_guess:
                    for guesser in guessers:
                        guesser.send("/identify alice wrong-guess")
                        guesser.lines()
                    next_guess += 0.5
                if now >= next_owner:
                    if owner is None:
                        owner = Line(port, "127.0.2.1", "owner")
                    owner.send(f"/identify alice {PASSWORD}")
                    asked = now - start
                    next_owner = float("inf")
                if owner is not None:
                    for text in owner.lines():
                        if text.startswith("INFO You are identified"):
                            got_in = time.monotonic() - start
                            tries.append(f"{asked:.1f} s: in")
                        elif text.startswith("ERR "):
                            told = TOLD.search(text)
                            wait = float(told.group(1)) if told else 2.0
                            tries.append(f"{asked:.1f} s: {text}")
                            next_owner = time.monotonic() + wait
                select.select([], [], [], 0.02)
            for line in tries:
                print("  ", line)
            if got_in is None:
                print(
                    f"owner refused all {len(tries)} tries in {END - OWNER_START:g} s"
                )
            else:
                print(f"owner in {got_in - OWNER_START:.1f} s after its first try")
        finally:
            daemon.terminate()


if __name__ == "__main__":
    main()
