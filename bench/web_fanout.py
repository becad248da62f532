"""Fanout over the WebSocket beside plain TCP: deliveries per second of server CPU.

    python bench/web_fanout.py [--size 1000] [--seconds 5] [--runs 1]

Each run starts a fresh `twistd -n chatd --listen ... --web ...` (history,
flood control and caps off), pinned to the first core and this generator to
the second, registers --size members in #lobby, all over TCP or all over
the WebSocket (the sender always over TCP), and has the sender say messages
as fast as the server takes them for --seconds, never more than a window
of 256 messages ahead of the slowest of a few timed members. A delivery is
one line that one member other than the sender receives; the server's CPU
is utime + stime from /proc over the sending and the drain. It prints each
run and the WebSocket/TCP ratio of deliveries per server CPU-second, for
docs/performance.md ("The web door").
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"chatd (web )?listening on \S+: \S+ port (\d+)")
WINDOW = 256
TEXT = "x" * 60
SETUP_LIMIT = 120.0


def start_server(scratch: Path) -> tuple[subprocess.Popen[str], int, int]:
    """Start chatd with a line and a web listener; return it and the two ports."""
    twistd = str(Path(sys.executable).with_name("twistd"))
    args = [twistd, "-n", "--pidfile=", "chatd", "--no-history"]
    loopback = "tcp:0:interface=127.0.0.1"
    args += ["--listen", loopback, "--web", loopback]
    args += ["--flood-rate", "0", "--max-clients", "100000", "--max-per-ip", "100000"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = scratch / "chatd.log"  # a file: a pipe nobody reads would stop the server
    with log.open("w") as out:
        server = subprocess.Popen(
            args,
            cwd=scratch,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    ports: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while len(ports) < 2:
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("chatd did not start:\n" + log.read_text())
        for found in LISTENING.finditer(log.read_text()):
            ports["web" if found.group(1) else "line"] = int(found.group(2))
        time.sleep(0.05)  # polling a log file while the server starts
    if len(os.sched_getaffinity(0)) >= 2:
        first, second, *_ = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(server.pid, {first})
        os.sched_setaffinity(0, {second})
    return server, ports["line"], ports["web"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Member:
    """One client socket and what it has received."""

    def __init__(self, nick: str, port: int, web: bool) -> None:
        self.nick = nick
        self.web = web
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""  # until counting starts
        self.counting = False
        self.lines = 0
        self.skip = 0  # web: payload bytes of a frame still to come
        self.head = b""  # web: a frame header split between reads
        if web:
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall(
                (
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            # RFC 6455 4.1: nothing more until the server's 101 has come.
            self.sock.settimeout(SETUP_LIMIT)
            while b"\r\n\r\n" not in self.buffer:
                data = self.sock.recv(4096)
                if not data:
                    raise SystemExit(f"{nick}: the WebSocket was refused")
                self.buffer += data
            self.send_line(nick)
        else:
            self.sock.sendall(nick.encode() + b"\r\n")
        self.sock.setblocking(False)

    def send_line(self, text: str) -> None:
        """Send one line (a masked text frame on the WebSocket)."""
        data = text.encode()
        if self.web:  # mask key 0: the payload reads as it is
            data = bytes((0x81, 0x80 | len(data))) + b"\0\0\0\0" + data
        else:
            data += b"\r\n"
        self.sock.sendall(data)

    def received(self, data: bytes) -> None:
        if not self.counting:
            self.buffer += data
            return
        if not self.web:
            self.lines += data.count(b"\n")
            return
        # One text frame per line: count the frames.
        if self.head:
            data, self.head = self.head + data, b""
        at, size = 0, len(data)
        while at < size:
            if self.skip:
                step = min(self.skip, size - at)
                self.skip -= step
                at += step
                continue
            if size - at < 2:
                self.head = data[at:]
                return
            length = data[at + 1] & 0x7F
            need = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            if size - at < need:
                self.head = data[at:]
                return
            if length == 126:
                length = int.from_bytes(data[at + 2 : at + 4], "big")
            elif length == 127:
                length = int.from_bytes(data[at + 2 : at + 10], "big")
            if data[at] & 0x0F == 1:
                self.lines += 1
            at += need
            self.skip = length


def run(size: int, seconds: float, web: bool) -> dict[str, float]:
    """One fanout run; returns its figures."""
    with tempfile.TemporaryDirectory() as scratch:
        server, line_port, web_port = start_server(Path(scratch))
        try:
            return _run(server, line_port, web_port, size, seconds, web)
        finally:
            server.kill()
            server.wait()


def _run(
    server: subprocess.Popen[str],
    line_port: int,
    web_port: int,
    size: int,
    seconds: float,
    web: bool,
) -> dict[str, float]:
    poll = select.epoll()
    members: dict[int, Member] = {}

    def pump(timeout: float) -> None:
        for fd, _ in poll.poll(timeout):
            member = members[fd]
            try:
                data = member.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                tail = member.buffer[-300:]
                raise SystemExit(f"{member.nick} was disconnected: {tail!r}")
            member.received(data)

    def wait(done: object, what: str) -> None:
        deadline = time.monotonic() + SETUP_LIMIT
        while not done():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"setup: {what} did not finish")
            pump(0.05)

    sender = Member("s0", line_port, False)
    members[sender.sock.fileno()] = sender
    poll.register(sender.sock, select.EPOLLIN)
    receivers = []
    for n in range(1, size):
        member = Member(f"m{n}", web_port if web else line_port, web)
        members[member.sock.fileno()] = member
        poll.register(member.sock, select.EPOLLIN)
        receivers.append(member)
        if n % 50 == 0:  # a few registrations in flight at a time
            joined = f"JOIN #lobby {member.nick}".encode()
            wait(lambda m=member, j=joined: j in m.buffer, "registration")
    wait(lambda: all(b"JOIN #lobby" in m.buffer for m in receivers), "registration")
    sender.send_line("~sync~")
    wait(lambda: all(b"~sync~" in m.buffer for m in receivers), "the sync message")
    for member in receivers:
        member.counting = True
    sender.counting = True
    timed = receivers[:: max(1, len(receivers) // 8)] + [receivers[-1]]

    sent = 0
    cpu0 = cpu_seconds(server.pid)
    started = time.perf_counter()
    stop_at = started + seconds
    while time.perf_counter() < stop_at:
        room = WINDOW - (sent - min(m.lines for m in timed))
        if room > 0:
            batch = "".join(f"{sent + i} {TEXT}\r\n" for i in range(room)).encode()
            sender.sock.setblocking(True)
            sender.sock.sendall(batch)
            sender.sock.setblocking(False)
            sent += room
        pump(0.001)
    deadline = time.monotonic() + 60
    while any(m.lines < sent for m in receivers):
        if time.monotonic() > deadline:
            raise SystemExit("the last deliveries did not come within 60 s")
        pump(0.05)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server.pid) - cpu0
    deliveries = sent * len(receivers)
    for member in members.values():
        member.sock.close()
    return {
        "messages": sent,
        "deliveries": deliveries,
        "seconds": elapsed,
        "server_cpu": cpu,
        "per_second": deliveries / elapsed,
        "per_cpu_second": deliveries / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    results: dict[str, list[float]] = {"tcp": [], "web": []}
    for number in range(options.runs):
        for door in ("tcp", "web"):
            figures = run(options.size, options.seconds, door == "web")
            results[door].append(figures["per_cpu_second"])
            print(
                f"run {number + 1} {door:3}: N={options.size} "
                f"{figures['messages']:.0f} messages, "
                f"{figures['deliveries']:,.0f} deliveries "
                f"in {figures['seconds']:.1f} s ({figures['per_second']:,.0f}/s), "
                f"server CPU {figures['server_cpu']:.2f} s: "
                f"{figures['per_cpu_second']:,.0f} deliveries per CPU-second",
                flush=True,
            )
    tcp = sorted(results["tcp"])[len(results["tcp"]) // 2]
    web = sorted(results["web"])[len(results["web"]) // 2]
    print(
        f"median deliveries per server CPU-second: TCP {tcp:,.0f}, "
        f"WebSocket {web:,.0f}; WebSocket/TCP = {web / tcp:.2f}"
    )


if __name__ == "__main__":
    main()
