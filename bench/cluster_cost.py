"""Fanout through a cluster: members on one node, or spread over two, in one run.

    python bench/cluster_cost.py [--members 200] [--seconds 5] [--rate 200] [--rounds 3]

Each round runs three set-ups one after the other, on the same machine:

- one: one chatd process, no Redis (today's single process);
- one+redis: one node with --redis (what crossing Redis costs by itself);
- two+redis: two nodes with --redis, the members spread half and half, the
  senders too.

In each, --members line clients sit in #lobby; --senders of them send stamped
lines at --rate lines a second in all, for --seconds (bounded), and every member
counts what it receives and, for each stamped line, the time from send to
receipt. Reported per set-up: deliveries a second, deliveries per CPU-second of
the chatd processes (all nodes together; Redis's CPU shown apart), and the
latency's p50 and p99. With --rate 0 the senders send as fast as the servers
take it (each sender keeps at most --window lines unanswered), to find the most
each set-up delivers.

Everything is on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"chatd listening on \S+: \S+ port (\d+)")
JOINED = re.compile(rb"cluster: node \S+ joined")
STAMP = re.compile(rb"MSG #lobby \S+ ~(\d+)~(\d+)~")
WAIT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Process:
    """A child process whose output is read until a pattern shows."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.out = b""

    def wait_for(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = pattern.search(self.out)
            if found:
                self.out = self.out[found.end() :]
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(self.out.decode(errors="replace"))
            chunk = self.proc.stdout.read(65536)
            if chunk:
                self.out += chunk
            else:
                time.sleep(0.02)
        raise RuntimeError(f"no {pattern.pattern!r}: {self.out[-2000:]!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(workdir: Path) -> tuple[Process, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    redis = Process(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", ""],
        workdir,
    )  # fmt: skip
    redis.wait_for(re.compile(rb"Ready to accept connections"))
    return redis, f"redis://127.0.0.1:{port}/0"


def start_chatd(workdir: Path, redis: str | None, name: str) -> tuple[Process, int]:
    twistd = str(Path(sys.executable).with_name("twistd"))
    args = [twistd, "-n", "--pidfile=", "chatd", "--listen",
            "tcp:0:interface=127.0.0.1", "--flood-rate", "0", "--max-per-ip",
            "100000", "--max-clients", "100000", "--sendq", "16777216",
            "--backfill", "0"]  # fmt: skip
    if redis is not None:
        args += ["--redis", redis, "--node-name", name]
    else:
        args += ["--database", str(workdir / f"{name}.sqlite3")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    chatd = Process(args, workdir, env)
    port = int(chatd.wait_for(LISTENING).group(1))
    if redis is not None:
        chatd.wait_for(JOINED)
    return chatd, port


@dataclass
class Client:
    sock: socket.socket
    nick: str
    buffer: bytes = b""
    received: int = 0
    latencies: list[int] = field(default_factory=list)
    sent: int = 0
    echoed: int = 0


def connect(port: int, nick: str) -> Client:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(nick.encode() + b"\n")
    client = Client(sock, nick)
    deadline = time.monotonic() + WAIT
    while f"JOIN #lobby {nick}\r".encode() not in client.buffer:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{nick} not registered: {client.buffer[-500:]!r}")
        client.buffer += sock.recv(65536)
    client.buffer = b""
    sock.setblocking(False)
    return client


def drain(clients: list[Client], seconds: float) -> None:
    """Read whatever comes for a while (JOINs of the others), and drop it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for client in clients:
            try:
                while client.sock.recv(1 << 18):
                    pass
            except BlockingIOError:
                pass
        time.sleep(0.05)


@dataclass
class Result:
    setup: str
    deliveries: int
    seconds: float
    chatd_cpu: float
    redis_cpu: float
    latencies: list[int]

    def line(self) -> str:
        lat = sorted(self.latencies)

        def pct(p: float) -> str:
            if not lat:
                return "-"
            return f"{lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6:.2f}"

        per_cpu = self.deliveries / self.chatd_cpu if self.chatd_cpu else 0.0
        return (
            f"{self.setup:<10} {self.deliveries / self.seconds:>10.0f}/s "
            f"{per_cpu:>10.0f}/cpu-s  chatd cpu {self.chatd_cpu:5.2f}s "
            f"redis cpu {self.redis_cpu:5.2f}s  "
            f"p50 {pct(0.5):>7} ms  p99 {pct(0.99):>7} ms"
        )


def run_load(
    setup: str,
    ports: list[int],
    pids: list[int],
    redis_pid: int | None,
    args: argparse.Namespace,
) -> Result:
    clients = [connect(ports[i % len(ports)], f"m{i}") for i in range(args.members)]
    drain(clients, 1.0)
    senders = clients[: args.senders]
    sel = selectors.DefaultSelector()
    for client in clients:
        sel.register(client.sock, selectors.EVENT_READ, client)
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    rcpu0 = cpu_seconds(redis_pid) if redis_pid else 0.0
    start = time.monotonic()
    stop_sending = start + args.seconds
    deadline = stop_sending + WAIT
    seq = 0
    interval = 1.0 / args.rate if args.rate else 0.0
    next_send = start
    expected = 0
    total = 0
    while True:
        now = time.monotonic()
        if now < stop_sending:
            if args.rate:
                while next_send <= now:
                    sender = senders[seq % len(senders)]
                    sender.sock.send(f"~{seq}~{time.perf_counter_ns()}~\n".encode())
                    sender.sent += 1
                    seq += 1
                    next_send += interval
            else:
                for sender in senders:
                    if sender.sent - sender.echoed < args.window:
                        sender.sock.send(f"~{seq}~{time.perf_counter_ns()}~\n".encode())
                        sender.sent += 1
                        seq += 1
            expected = seq * args.members
        elif total >= expected or now > deadline:
            break
        timeout = max(0.0, next_send - time.monotonic()) if args.rate else 0.001
        for key, _ in sel.select(timeout=min(timeout, 0.05)):
            client = key.data
            try:
                data = client.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                continue
            received_ns = time.perf_counter_ns()
            data = client.buffer + data
            cut = data.rfind(b"\n") + 1
            client.buffer = data[cut:]
            chunk = data[:cut]
            count = chunk.count(b"MSG #lobby ")
            client.received += count
            total += count
            if client in senders:
                client.echoed += chunk.count(f"MSG #lobby {client.nick} ".encode())
            if client.nick.endswith("7"):  # a sample of members look inside
                for found in STAMP.finditer(chunk):
                    client.latencies.append(received_ns - int(found.group(2)))
    seconds = time.monotonic() - start
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    rcpu = (cpu_seconds(redis_pid) - rcpu0) if redis_pid else 0.0
    latencies = [lat for client in clients for lat in client.latencies]
    for client in clients:
        client.sock.close()
    return Result(setup, total, seconds, cpu, rcpu, latencies)


def one_round(args: argparse.Namespace, workdir: Path) -> list[Result]:
    results = []
    chatd, port = start_chatd(workdir, None, "solo")
    try:
        results.append(run_load("one", [port], [chatd.proc.pid], None, args))
    finally:
        chatd.stop()
    for count in (1, 2):
        redis, url = start_redis(workdir)
        nodes = []
        try:
            for number in range(count):
                nodes.append(start_chatd(workdir, url, f"n{number}"))
            setup = "one+redis" if count == 1 else "two+redis"
            results.append(
                run_load(
                    setup,
                    [port for _, port in nodes],
                    [node.proc.pid for node, _ in nodes],
                    redis.proc.pid,
                    args,
                )
            )
        finally:
            for node, _ in nodes:
                node.stop()
            redis.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{args.members} members in #lobby, {args.senders} senders, "
        f"{'as fast as taken' if not args.rate else f'{args.rate:g} lines/s'}, "
        f"{args.seconds:g} s a set-up, {args.rounds} rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            print(f"round {number + 1}")
            for result in one_round(args, Path(tmp)):
                print("  " + result.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
