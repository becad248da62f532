"""Figures for the limits (issue 5): a stuck reader's cost, and a throttled paste.

Run from the repository root with the project installed:

    python bench/limits_figures.py

It starts `twistd -n chatd` on an ephemeral loopback port for each scenario and
prints one line per figure. Traffic goes to 127.0.0.1 only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"chatd listening on \S+: \S+ port (\d+)")
WAIT = 30.0


def start_daemon(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start twistd -n chatd on a free loopback port; return it and the port."""
    twistd = Path(sys.executable).with_name("twistd")
    process = subprocess.Popen(
        [
            str(twistd),
            "-n",
            "--pidfile=",
            "chatd",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        text = process.stdout.readline()
        if not text:
            break
        found = LISTENING.search(text)
        if found:
            return process, int(found.group(1))
    process.kill()
    raise SystemExit("the daemon did not start")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Return a memory figure of the process from /proc, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    assert found
    return int(found.group(1))


class Client:
    """A blocking line client with bounded reads."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("closed")
            self.buffer += data
        text, self.buffer = self.buffer.split(b"\r\n", 1)
        return text

    def until(self, prefix: bytes) -> bytes:
        while not (text := self.line()).startswith(prefix):
            pass
        return text

    def register(self, nick: str) -> None:
        self.until(b"NICK ")
        self.send(nick.encode() + b"\r\n")
        self.until(b"JOIN #lobby " + nick.encode())


def stuck_reader(megabytes: int) -> None:
    """One client stops reading while ~megabytes of room traffic flow past it."""
    process, port = start_daemon("--flood-rate", "0")
    try:
        stuck = Client(port, rcvbuf=4096)
        stuck.register("stuck")
        reader, talker = Client(port), Client(port)
        reader.register("reader")
        talker.register("talker")
        payload = b"p" * 1000
        start_rss = rss_kib(process.pid)
        cut_at = None
        sent = 0
        started = time.monotonic()
        for _ in range(megabytes * 1000 // 50):
            if time.monotonic() - started > 120:
                break
            talker.send(b"".join(b"%d %s\r\n" % (sent + i, payload) for i in range(50)))
            sent += 50
            last = b"MSG #lobby talker %d " % (sent - 1)
            talker.until(last)
            while not (text := reader.line()).startswith(last):
                if text.startswith(b"QUIT stuck") and cut_at is None:
                    cut_at = (sent, text.decode())
        peak = rss_kib(process.pid, "VmHWM")
        end_rss = rss_kib(process.pid)
        print(
            f"stuck reader: {sent} messages of {len(payload)} bytes "
            f"({sent * len(payload) / 1e6:.1f} MB) through #lobby in "
            f"{time.monotonic() - started:.1f} s"
        )
        print(
            f"stuck reader: cut off after {cut_at[0] if cut_at else '-'} messages: "
            f"{cut_at[1] if cut_at else 'never'}"
        )
        print(
            f"stuck reader: daemon RSS {start_rss} KiB before, peak {peak} KiB, "
            f"{end_rss} KiB after: peak growth {peak - start_rss} KiB "
            f"(--sendq 1048576 = 1024 KiB)"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)


def paste(lines: int, burst: int, rate: float) -> None:
    """One client pastes many lines at once under flood control."""
    process, port = start_daemon("--flood-burst", str(burst), "--flood-rate", str(rate))
    try:
        paster, watcher = Client(port), Client(port)
        paster.register("paster")
        watcher.register("watcher")
        time.sleep(burst / rate)  # let registration's lines refill the bucket
        started = time.monotonic()
        paster.send(b"".join(b"line %d of the paste\r\n" % i for i in range(lines)))
        first = paster.until(b"ERR flood")
        flood_at = time.monotonic() - started
        got: list[int] = []
        while len(got) < lines:
            text = watcher.until(b"MSG #lobby paster ")
            got.append(int(text.split(b" ")[4]))
        took = time.monotonic() - started
        assert got == list(range(lines)), "order lost"
        print(
            f"paste: {lines} lines at --flood-burst {burst} --flood-rate {rate:g}: "
            f"all delivered in order in {took:.2f} s "
            f"(ideal {(lines - burst) / rate:.2f} s); "
            f"'{first.decode()}' after {flood_at * 1000:.0f} ms"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--paste-lines", type=int, default=300)
    args = parser.parse_args()
    stuck_reader(args.megabytes)
    paste(args.paste_lines, burst=10, rate=20.0)


if __name__ == "__main__":
    main()
