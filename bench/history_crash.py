"""Crash check for history: acknowledged messages, `kill -9`, restart, count.

Run from the repository root with the project installed:

    python bench/history_crash.py [--messages 5000] [--rate 2000] [--rounds 3]

Each round starts `twistd -n chatd` (default history: chatd.sqlite3 in a
fresh temporary directory). One client sends numbered messages to #lobby at
--rate a second (0: as fast as the daemon takes them); a message is
acknowledged when the sender has read its own echo (the MSG line). When the
sender has read --messages echoes, and more messages are still on their way,
the daemon gets SIGKILL.
It is then started again in the same directory (it must open the database
cleanly and answer /history), stopped with SIGTERM, and the database is read:
how many acknowledged messages survived, and for those lost, how long before
the kill they were acknowledged. Traffic goes to 127.0.0.1 only; every loop
and wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"chatd listening on \S+: \S+ port (\d+)")
WAIT = 30.0
EXTRA = 2000  # messages still being sent when the kill comes


def start_daemon(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start twistd -n chatd in directory on a loopback port; return it and the port."""
    twistd = Path(sys.executable).with_name("twistd")
    process = subprocess.Popen(
        [
            str(twistd),
            "-n",
            "--pidfile=",
            "chatd",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--flood-rate",
            "0",
        ],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT
    log = []
    while time.monotonic() < deadline:
        text = process.stdout.readline()
        if not text:
            break
        log.append(text.decode(errors="replace"))
        found = LISTENING.search(text)
        if found:
            # Keep reading the log so that the daemon never blocks on it.
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            return process, int(found.group(1))
    process.kill()
    raise SystemExit("the daemon did not start:\n" + "".join(log))


def _drain(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


class Client:
    """A line client on a real socket; every read bounded by WAIT."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buffer = b""
        self.send(nick)
        self.expect(f"JOIN #lobby {nick}")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the daemon closed the connection")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw.decode()

    def expect(self, prefix: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            text = self.line()
            if text.startswith(prefix):
                return text
        raise TimeoutError(f"no {prefix!r} within {WAIT}s")

    def close(self) -> None:
        self.sock.close()


@dataclass
class Round:
    acknowledged: int
    survived: int
    lost_window_ms: float  # how long before the kill the first lost one was acked
    restart_ok: bool


def one_round(messages: int, rate: float, directory: Path) -> Round:
    """Send, kill -9 after `messages` echoes, restart, count what survived."""
    process, port = start_daemon(directory)
    sender = Client(port, "sender")
    total = messages + EXTRA
    began = time.monotonic()

    def send_all() -> None:
        try:
            for number in range(total):
                if rate:  # paced: the number-th message leaves at number / rate
                    ahead = began + number / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                sender.send(f"crash-{number:07d}")
        except OSError:
            pass  # the daemon was killed while we were still sending

    writer = threading.Thread(target=send_all, daemon=True)
    writer.start()
    acked: list[float] = []  # when each echo was read, in order
    deadline = time.monotonic() + WAIT + (messages / rate if rate else 0)
    while len(acked) < messages and time.monotonic() < deadline:
        text = sender.line()
        if text.startswith("MSG #lobby sender crash-"):
            acked.append(time.monotonic())
    os.kill(process.pid, signal.SIGKILL)
    killed = time.monotonic()
    process.wait(timeout=WAIT)
    sender.close()
    writer.join(timeout=WAIT)

    restarted, port = start_daemon(directory)  # must open the database cleanly
    reader = Client(port, "reader")
    reader.send("/zzsync")  # the backfill after its JOIN comes before the answer
    reader.expect("ERR unknown-command")
    reader.send("/history 1")
    restart_ok = reader.expect("ENDHISTORY #lobby ").startswith("ENDHISTORY #lobby ")
    reader.close()
    restarted.send_signal(signal.SIGTERM)
    restarted.wait(timeout=WAIT)

    with sqlite3.connect(directory / "chatd.sqlite3") as database:
        kept = {
            text
            for (text,) in database.execute(
                "SELECT text FROM messages WHERE nick = 'sender'"
            )
        }
    database.close()
    lost = [n for n in range(len(acked)) if f"crash-{n:07d}" not in kept]
    window = (killed - acked[lost[0]]) * 1000 if lost else 0.0
    return Round(len(acked), len(acked) - len(lost), window, restart_ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pace = f"{args.rate:g} a second" if args.rate else "as fast as taken"
    print(
        f"history crash check: {args.rounds} rounds; messages sent {pace}, "
        f"SIGKILL after {args.messages} acknowledged, more on their way"
    )
    failed = False
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="chatd-crash-") as directory:
            result = one_round(args.messages, args.rate, Path(directory))
        lost = result.acknowledged - result.survived
        print(
            f"  round {number}: {result.acknowledged} acknowledged, "
            f"{result.survived} survived, {lost} lost"
            + (
                f" (acknowledged at most {result.lost_window_ms:.1f} ms "
                "before the kill)"
                if lost
                else ""
            )
            + ("" if result.restart_ok else "; RESTART FAILED")
        )
        failed |= not result.restart_ok or result.lost_window_ms > 1000
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
