"""Issue 22's "every request has a cost" findings as figures, against a real daemon.

Scenarios (each bounded in time, loopback only, one fresh `twistd -n chatd`):

- `bulk`: USERS line clients fill ROOMS rooms (ROOMS / USERS each), then 16 IRC
  connections from the one address send `LIST` and `NAMES` in turn at the flood
  rate (2 a second), reading everything, for --seconds; a line client in #lobby
  times its own echo every 0.5 s meanwhile (the probe: p50, p90, worst).
- `below`: a line client sends 11 lines at once, then one line every 0.51 s for
  20 s: how many `ERR flood` it is told, and how many times the log says so.
- `sopel`: Sopel's handshake (CAP LS 302, NICK, USER, 11 CAP REQ, CAP END) in
  one go: the time to 001 and the flood notices.
- `eof`: `printf 'di\\n/history\\n/quit\\n' | nc -N`: HISTORY/ENDHISTORY lines and
  BYE received before the server closes.

    python bench/bulk_probe.py [--root CHECKOUT] [bulk|below|sopel|eof ...]

Standard library only; `--root` is the checkout whose chatd runs (default: this one).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"chatd (IRC |web )?listening on (\S+): \S+ port (\d+)")
SOPEL_CAPS = (
    "account-notify away-notify cap-notify chghost echo-message extended-join "
    "message-tags multi-prefix server-time userhost-in-names account-tag"
).split()


class Daemon:
    """A twistd -n chatd on loopback ports; its log kept in a file."""

    def __init__(self, root: Path, args: list[str], workdir: Path) -> None:
        twistd = Path(sys.executable).with_name("twistd")
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
        self.logfile = workdir / "chatd.log"
        self.process = subprocess.Popen(
            [str(twistd), "-n", "--pidfile=", "chatd", *args],
            cwd=workdir,
            env=env,
            stdout=self.logfile.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.ports: dict[str, int] = {}
        deadline = time.monotonic() + 20
        while len(self.ports) < 2 and time.monotonic() < deadline:
            for found in LISTENING.finditer(self.logfile.read_bytes()):
                self.ports["irc" if found.group(1) else "line"] = int(found.group(3))
            time.sleep(0.05)
        if len(self.ports) < 2:
            self.stop()
            raise RuntimeError("the daemon did not start: " + str(self.log()))

    def log(self) -> bytes:
        return self.logfile.read_bytes()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def daemon(root: Path, *extra: str) -> Iterator[Daemon]:
    workdir = Path(tempfile.mkdtemp(prefix="bulk-probe-"))
    args = [
        "--listen", "tcp:0:interface=127.0.0.1",
        "--irc", "tcp:0:interface=127.0.0.1",
        "--max-per-ip", "2000", "--max-clients", "4000", *extra,
    ]  # fmt: skip
    running = Daemon(root, args, workdir)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class Lines:
    """A blocking socket read as lines, with a deadline on every wait."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def expect(self, needle: bytes, within: float = 30.0) -> bytes:
        deadline = time.monotonic() + within
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if needle in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(needle)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(needle)
            self.buffer += chunk


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def bulk(root: Path, users: int, rooms: int, seconds: float) -> str:
    """The probe's echo while 16 IRC clients loop LIST and NAMES at the flood rate."""
    per_user = rooms // users
    with daemon(root, "--no-history", "--max-rooms", str(rooms + 10)) as d:
        fillers = []
        for n in range(users):
            filler = Lines(d.ports["line"])
            names = "".join(f"/join #r{n}x{k}\n" for k in range(per_user))
            filler.send(f"u{n}\n" + names)
            fillers.append(filler)
        probe = Lines(d.ports["line"])
        probe.send("probe\n")
        probe.expect(b"JOIN #lobby probe")
        deadline = time.monotonic() + 60  # the fillers' joins come at the flood rate
        while True:  # a counter of its own, whose /rooms may be charged
            counter = Lines(d.ports["line"])
            counter.send("counter\n/rooms\n")
            line = counter.expect(b"INFO Rooms ")
            counter.sock.close()
            total = int(line.split(b" of ")[1].split()[0])
            if total >= rooms or time.monotonic() > deadline:
                break
            time.sleep(1)
        stop = threading.Event()
        lists = [0]

        def attacker(number: int) -> None:
            conn = Lines(d.ports["irc"])
            conn.send(f"NICK a{number}\r\nUSER a 0 * :a\r\n")
            conn.expect(b" 001 ")

            def reader() -> None:
                while not stop.is_set():
                    try:
                        chunk = conn.sock.recv(1 << 20)
                    except OSError:
                        return
                    if not chunk:
                        return
                    lists[0] += chunk.count(b" 323 ")

            conn.sock.settimeout(None)
            threading.Thread(target=reader, daemon=True).start()
            turn = 0
            while not stop.is_set():
                conn.send("LIST\r\n" if turn % 2 == 0 else "NAMES\r\n")
                turn += 1
                stop.wait(0.5)
            conn.sock.close()

        threads = [threading.Thread(target=attacker, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        echoes: list[float] = []
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            sent = time.monotonic()
            probe.send(f"p {n}\n")
            probe.expect(f"MSG #lobby probe p {n}".encode(), within=60)
            echoes.append(time.monotonic() - sent)
            n += 1
            time.sleep(max(0.0, 0.5 - (time.monotonic() - sent)))
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for filler in fillers:
            filler.sock.close()
        ms = [1000 * e for e in echoes]
        return (
            f"bulk: {total} rooms, {users} users, 16 IRC clients looping LIST/NAMES "
            f"for {seconds:g}s: probe p50 {percentile(ms, 50):.1f} ms, "
            f"p90 {percentile(ms, 90):.1f} ms, worst {max(ms):.0f} ms "
            f"({len(ms)} echoes); LIST answers completed: {lists[0]}"
        )


def below(root: Path) -> str:
    """11 lines at once, then a line every 0.51 s for 20 s: the ERR flood count."""
    with daemon(root, "--no-history") as d:
        conn = Lines(d.ports["line"])
        conn.send("slow\n")
        conn.expect(b"JOIN #lobby slow")
        time.sleep(5.5)  # a full bucket
        conn.send("".join(f"burst {n}\n" for n in range(11)))
        for n in range(40):
            time.sleep(0.51)
            conn.send(f"line {n}\n")
        conn.send("/quit\n")
        received = conn.buffer
        conn.sock.settimeout(30)
        while chunk := conn.sock.recv(65536):  # until the server closes
            received += chunk
        told = received.count(b"ERR flood")
        logged = d.log().count(b"is flooding")
    return f"below: ERR flood told {told} times, logged {logged} times"


def count_until_closed(port: int, script: bytes, shut: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(script)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def sopel(root: Path) -> str:
    """Sopel's handshake in one go: time to 001, and flood notices."""
    with daemon(root, "--no-history") as d:
        conn = Lines(d.ports["irc"])
        started = time.monotonic()
        conn.send("CAP LS 302\r\nNICK sopel\r\nUSER sopel 0 * :Sopel\r\n")
        conn.send("".join(f"CAP REQ :{cap}\r\n" for cap in SOPEL_CAPS) + "CAP END\r\n")
        before = conn.buffer
        conn.expect(b" 001 sopel ")
        took = time.monotonic() - started
        conn.send("JOIN #bots\r\n")
        conn.expect(b"JOIN")
        time.sleep(0.2)
        conn.sock.settimeout(0.5)
        try:
            rest = conn.sock.recv(65536)
        except TimeoutError:
            rest = b""
        notices = (before + conn.buffer + rest).count(b"too fast")
    return f"sopel: 001 after {1000 * took:.0f} ms, {notices} flood notices"


def eof(root: Path) -> str:
    """printf 'di\\n/history\\n/quit\\n' | nc -N: what comes back before the close."""
    with daemon(root) as d:
        talker = Lines(d.ports["line"])
        talker.send("alice\nsaid before\n")
        talker.expect(b"MSG #lobby alice said before")
        got = count_until_closed(d.ports["line"], b"di\n/history\n/quit\n", True)
    return (
        f"eof: {got.count(b'HISTORY #lobby ') - got.count(b'ENDHISTORY')} HISTORY, "
        f"{got.count(b'ENDHISTORY')} ENDHISTORY, {got.count(b'BYE ')} BYE"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    every = ["bulk", "below", "sopel", "eof"]
    parser.add_argument("scenarios", nargs="*", default=every)
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--users", type=int, default=320)
    parser.add_argument("--rooms", type=int, default=9600)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    for scenario in args.scenarios:
        if scenario == "bulk":
            print(bulk(args.root, args.users, args.rooms, args.seconds), flush=True)
        elif scenario == "below":
            print(below(args.root), flush=True)
        elif scenario == "sopel":
            print(sopel(args.root), flush=True)
        elif scenario == "eof":
            print(eof(args.root), flush=True)
        else:
            parser.error(f"no scenario {scenario}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
