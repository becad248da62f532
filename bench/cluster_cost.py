"""Fanout through a cluster: members on one node, or spread over two, in one run.

    python bench/cluster_cost.py [--members 200] [--seconds 5] [--rate 200] [--rounds 3]
                                 [--tree /other/checkout] [--pin all|nodes|none]
                                 [--setups one,one+redis,two+redis] [--window 20]
                                 [--poll-ms 2] [--sample N]

Each round runs three set-ups one after the other, on the same machine:

- one: one chatd process, no Redis (today's single process);
- one+redis: one node with --redis (what crossing Redis costs by itself);
- two+redis: two nodes with --redis, the members spread half and half, the
  senders too.

In each, --members line clients sit in #lobby; --senders of them send stamped
lines at --rate lines a second in all, for --seconds (bounded), and every member
counts what it receives and, for each stamped line, the time from send to
receipt. Reported per set-up: deliveries a second, deliveries per CPU-second of
the chatd processes (all nodes together; Redis's and the generator's CPU shown
apart), and the latency's p50 and p99. With --rate 0 the senders send as fast
as the servers take it, to find the most each set-up delivers: each sender
keeps --window lines unanswered, topping its window up in one write, and the
generator reads its sockets every --poll-ms (2), so that each recv takes what
came meanwhile.

The load generator counts deliveries with bytes.count (of line ends) and
parses only the senders' lines (their echoes keep --window) and --sample
members' (the latency sample: 20 at a rate, 4 as fast as taken). Latencies are
split into same-node and cross-node (the speaker on another node than the
member). After the rounds, the same-round ratios (against one) and the
machine's load average are printed.

Pinning (--pin), when two cores are usable:

- all (the default, as `python -m bench` pins in bench/servers.py): the single
  node on the first core; two nodes one on each core; Redis and this generator
  on the second core in every set-up. "Two nodes" gains a core the single node
  does not have, but shares it with Redis and the generator;
- nodes: the nodes pinned as above, Redis and the generator left to the
  kernel, which puts them where a core is idle (the single node still has the
  first core to itself);
- none: nothing pinned.

--tree runs the chatd of another checkout (its code on PYTHONPATH), for a
before/after with the same benchmark.

Everything is on 127.0.0.1; every wait is bounded. docs/performance.md has figures.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"chatd listening on \S+: \S+ port (\d+)")
JOINED = re.compile(rb"cluster: node \S+ joined")
STAMP = re.compile(rb"MSG #lobby m(\d+) ~\d+~(\d+)~")
# The cores in use: the first for a node, the second for Redis and the generator.
CORES = sorted(os.sched_getaffinity(0))
WAIT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int, system_only: bool = False) -> float:
    """User and system CPU of a process so far, or system alone (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    used = int(fields[12]) + (0 if system_only else int(fields[11]))
    return used / os.sysconf("SC_CLK_TCK")


class Process:
    """A child process whose output goes to a file, read until a pattern shows.

    A file, not a pipe: nobody reads a pipe once the process is up, and a
    full pipe would stop the process at its next log line (one a connection).
    """

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
    ):
        self.log = tempfile.TemporaryFile(dir=cwd)
        self.proc = subprocess.Popen(
            args if cpu is None else ["taskset", "-c", str(cpu), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.read = 0  # how much of the log wait_for has looked at

    def wait_for(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.log.seek(self.read)
            out = self.log.read()
            found = pattern.search(out)
            if found:
                self.read += found.end()
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(out.decode(errors="replace"))
            time.sleep(0.02)
        raise RuntimeError(f"no {pattern.pattern!r}: {out[-2000:]!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_redis(workdir: Path, cpu: int | None) -> tuple[Process, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    redis = Process(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", ""],
        workdir,
        cpu=cpu,
    )  # fmt: skip
    redis.wait_for(re.compile(rb"Ready to accept connections"))
    return redis, f"redis://127.0.0.1:{port}/0"


def start_chatd(
    workdir: Path, redis: str | None, name: str, tree: Path, cpu: int | None
) -> tuple[Process, int]:
    twistd = str(Path(sys.executable).with_name("twistd"))
    args = [twistd, "-n", "--pidfile=", "chatd", "--listen",
            "tcp:0:interface=127.0.0.1", "--flood-rate", "0", "--max-per-ip",
            "100000", "--max-clients", "100000", "--sendq", "16777216",
            "--backfill", "0"]  # fmt: skip
    if redis is not None:
        args += ["--redis", redis, "--node-name", name]
    else:
        args += ["--database", str(workdir / f"{name}.sqlite3")]
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED="1")
    chatd = Process(args, workdir, env, cpu)
    port = int(chatd.wait_for(LISTENING).group(1))
    if redis is not None:
        chatd.wait_for(JOINED)
    return chatd, port


@dataclass
class Client:
    sock: socket.socket
    nick: str
    buffer: bytes = b""
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


def percentile(values: list[int], p: float) -> float | None:
    """The p-th quantile of values (nanoseconds) in milliseconds, or None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1e6


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass
class Result:
    setup: str
    deliveries: int
    seconds: float
    node_cpu: list[float]  # each node's
    redis_cpu: float
    generator_cpu: float
    latencies: list[int]  # the speaker on the member's node
    crossing: list[int]  # the speaker on another node

    @property
    def chatd_cpu(self) -> float:
        return sum(self.node_cpu)

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds

    @property
    def per_cpu(self) -> float:
        return self.deliveries / self.chatd_cpu if self.chatd_cpu else 0.0

    def line(self) -> str:
        split = ""
        if len(self.node_cpu) > 1:  # each node's share
            split = "(" + "+".join(f"{cpu:.2f}" for cpu in self.node_cpu) + ") "
        text = (
            f"{self.setup:<10} {self.rate:>10.0f}/s "
            f"{self.per_cpu:>10.0f}/cpu-s  chatd cpu {self.chatd_cpu:5.2f}s {split}"
            f"redis cpu {self.redis_cpu:5.2f}s  "
            f"generator cpu {self.generator_cpu:5.2f}s  "
            f"p50 {ms(percentile(self.latencies, 0.5)):>6} ms  "
            f"p99 {ms(percentile(self.latencies, 0.99)):>6} ms"
        )
        if self.crossing:
            text += (
                f"  cross-node p50 {ms(percentile(self.crossing, 0.5)):>6} ms"
                f"  p99 {ms(percentile(self.crossing, 0.99)):>6} ms"
            )
        return text


def run_load(
    setup: str,
    ports: list[int],
    pids: list[int],
    redis_pid: int | None,
    args: argparse.Namespace,
) -> Result:
    nodes = len(ports)
    clients = [connect(ports[i % nodes], f"m{i}") for i in range(args.members)]
    drain(clients, 1.0)
    senders = clients[: args.senders]
    sel = selectors.DefaultSelector()
    for number, client in enumerate(clients):
        sel.register(client.sock, selectors.EVENT_READ, (number, client))
    cpu0 = [cpu_seconds(pid) for pid in pids]
    rcpu0 = cpu_seconds(redis_pid) if redis_pid else 0.0
    gcpu0 = cpu_seconds(os.getpid())
    start = time.monotonic()
    stop_sending = start + args.seconds
    deadline = stop_sending + WAIT
    seq = 0
    interval = 1.0 / args.rate if args.rate else 0.0
    next_send = start
    expected = 0
    total = 0
    last_poll = start
    same: list[int] = []
    crossing: list[int] = []
    echoes = [f"MSG #lobby {sender.nick} ".encode() for sender in senders]
    # About --sample members read their lines for latencies (every tenth of
    # 200); the senders read theirs for their echoes; the rest only count.
    sampled = set(range(7, args.members, max(1, args.members // args.sample)))
    whole_lines = sampled | set(range(len(senders)))
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
                    room = args.window - (sender.sent - sender.echoed)
                    if room > 0:  # fill the window, in one write
                        stamp = time.perf_counter_ns()
                        sender.sock.sendall(
                            "".join(
                                f"~{number}~{stamp}~\n"
                                for number in range(seq, seq + room)
                            ).encode()
                        )
                        sender.sent += room
                        seq += room
            expected = seq * args.members
        elif total >= expected or now > deadline:
            break
        if args.rate:
            timeout = max(0.0, next_send - time.monotonic())
        else:
            # As fast as taken: read at most every --poll-ms, so that each
            # recv takes what came meanwhile (fewer, larger reads: the
            # generator shares a core with the second node).
            pause = last_poll + args.poll_ms / 1000 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            last_poll = time.monotonic()
            timeout = 0.001
        for key, _ in sel.select(timeout=min(timeout, 0.05)):
            number, client = key.data
            try:
                data = client.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                continue
            received_ns = time.perf_counter_ns()
            total += data.count(b"\n")  # a line each delivery, nothing else
            if number not in whole_lines:
                continue
            if client.buffer:
                data = client.buffer + data
            cut = data.rfind(b"\n") + 1
            client.buffer = data[cut:]
            chunk = data[:cut]
            if number < len(senders):
                client.echoed += chunk.count(echoes[number])
            if number in sampled:  # a sample of members look inside
                for found in STAMP.finditer(chunk):
                    lat = received_ns - int(found.group(2))
                    if int(found.group(1)) % nodes == number % nodes:
                        same.append(lat)
                    else:
                        crossing.append(lat)
    seconds = time.monotonic() - start
    node_cpu = [
        cpu_seconds(pid) - before for pid, before in zip(pids, cpu0, strict=True)
    ]
    rcpu = (cpu_seconds(redis_pid) - rcpu0) if redis_pid else 0.0
    gcpu = cpu_seconds(os.getpid()) - gcpu0
    for client in clients:
        client.sock.close()
    return Result(setup, total, seconds, node_cpu, rcpu, gcpu, same, crossing)


def one_round(
    args: argparse.Namespace, workdir: Path, cores: list[int | None]
) -> list[Result]:
    """Run each set-up once; cores: the first node's, the second's, Redis's."""
    results = []
    if "one" in args.setups:
        chatd, port = start_chatd(workdir, None, "solo", args.tree, cores[0])
        try:
            results.append(run_load("one", [port], [chatd.proc.pid], None, args))
        finally:
            chatd.stop()
    for count in (1, 2):
        setup = "one+redis" if count == 1 else "two+redis"
        if setup not in args.setups:
            continue
        redis, url = start_redis(workdir, cores[2])
        nodes = []
        try:
            for number in range(count):
                nodes.append(
                    start_chatd(workdir, url, f"n{number}", args.tree, cores[number])
                )
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


def summary(rounds: list[list[Result]]) -> list[str]:
    """Same-round ratios: two+redis (and one+redis) against one."""
    lines = []
    for number, results in enumerate(rounds, 1):
        by = {result.setup: result for result in results}
        one = by.get("one")
        if one is None or not one.rate:
            continue
        parts = []
        for setup in ("one+redis", "two+redis"):
            other = by.get(setup)
            if other is None:
                continue
            parts.append(
                f"{setup}/one: deliveries/s x{other.rate / one.rate:.2f}, "
                f"per chatd cpu-s x{other.per_cpu / one.per_cpu:.2f}"
                if one.per_cpu
                else f"{setup}/one: deliveries/s x{other.rate / one.rate:.2f}"
            )
        lines.append(f"round {number}: " + "; ".join(parts))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument(
        "--sample",
        type=int,
        help="members whose lines are parsed for latencies "
        "(default 20 at a --rate, 4 as fast as taken)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument(
        "--setups", default="one,one+redis,two+redis", type=lambda s: s.split(",")
    )
    parser.add_argument(
        "--pin",
        choices=("all", "nodes", "none"),
        default="all",
        help="all: nodes one a core, Redis and the generator on the second; "
        "nodes: only the nodes, Redis and the generator where the kernel puts "
        "them; none: nothing pinned",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_const", const="none")
    args = parser.parse_args()
    args.tree = args.tree.resolve()
    if args.sample is None:
        args.sample = 20 if args.rate else 4
    usable = len(CORES) >= 2 and shutil.which("taskset") is not None
    pin = args.pin if usable else "none"
    cores: list[int | None] = [None, None, None]
    if pin != "none":
        cores = [CORES[0], CORES[1], CORES[1] if pin == "all" else None]
    if pin == "all":
        os.sched_setaffinity(0, {CORES[1]})
    where = {
        "all": f"node(s) on cpu {CORES[0]} (and {CORES[-1]}), Redis and generator "
        f"on cpu {CORES[-1]}",
        "nodes": f"node(s) on cpu {CORES[0]} (and {CORES[-1]}), Redis and "
        "generator not pinned",
        "none": "not pinned",
    }[pin]
    print(
        f"{args.members} members in #lobby, {args.senders} senders, "
        f"{'as fast as taken' if not args.rate else f'{args.rate:g} lines/s'}"
        f"{f', window {args.window}' if not args.rate else ''}, "
        f"{args.seconds:g} s a set-up, {args.rounds} rounds; chatd of {args.tree}; "
        f"{where}; load average {os.getloadavg()[0]:.1f}"
    )
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            print(f"round {number + 1} (load average {os.getloadavg()[0]:.1f})")
            results = one_round(args, Path(tmp), cores)
            for result in results:
                print("  " + result.line(), flush=True)
            rounds.append(results)
    for line in summary(rounds):
        print(line)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
