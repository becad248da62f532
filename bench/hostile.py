"""Hostile clients against chatd (issue 11): each attack of the review as figures.

Run from the repository root:

    python bench/hostile.py [--root PATH] [--runs 3] [--quick] [scenario ...]

Each scenario starts `twistd -n chatd` from the checkout at --root (default:
this one) on an ephemeral 127.0.0.1 port, with the documented limits (only
--max-per-ip and --max-clients are raised where one address needs many
connections), runs one attack from the findings of issue 11, prints one line of
figures per run and, at the end, the median of the runs with their range.

    burst          3  one burst of 10 lines of ~2 kB from each of 90 senders; 50 readers
    empty          5  4 loops of connect, send 60,000 LF, close
    empty-open     5  the same without the cap per address
    toolong        6  one client sending 3000-byte lines nonstop for 5 s
    telnet         7  8 clients sending IAC WILL x nonstop; then a burst of IAC IP
    recvq          8  128 unregistered connections each queueing 65,400 bytes of
                      "a" LF, then of "a" CR LF
    backlog        9  1000 clients connecting at once; time to HELLO
    backlog-eager  9  the same, each client sending an empty line at once

The "probe" is a registered user timing the echo of its own lines, two a second
(the default --flood-rate, so the flood gate never holds them). Daemon CPU comes
from /proc/<pid>/stat, RSS from /proc/<pid>/status; "script CPU" is this
process's own, over the same interval (below ~90 % of its core, the daemon and
not this script set the pace). Every connection goes to 127.0.0.1, every loop is
bounded in count and time, and the daemon is stopped after each run. See
docs/hostile.md.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import heapq
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

HOST = "127.0.0.1"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"chatd listening on \S+: \S+ port (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")
START_WAIT = 30.0  # seconds the daemon has to say it listens
STOP_WAIT = 5.0  # seconds between SIGTERM and SIGKILL
WAIT = 30.0  # bound on every other wait (registration, echoes, quiet)
PROBE_INTERVAL = 0.5  # seconds: 2 lines a second, the default --flood-rate
QUIET_SECONDS = 2.5  # probe samples before each attack
READ_SIZE = 1 << 18
MANY = ["--max-per-ip", "100000", "--max-clients", "2000"]
MAX_CONNECTIONS = 20_000  # per attack that reconnects: well inside the ephemeral ports

T = TypeVar("T")

_children: list[subprocess.Popen[bytes]] = []
# What the last daemon's meters saw of other processes on its core (see Meter).
LAST_OTHERS: list[float] = []


def _kill_children() -> None:
    for process in _children:
        if process.poll() is None:
            process.kill()
            process.wait()


atexit.register(_kill_children)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops chatd


# -- the daemon ------------------------------------------------------------------


@dataclass
class Setup:
    """What every scenario run needs: the checkout, sizes, and where to run."""

    root: Path
    workdir: Path
    quick: bool
    daemon_cpu: int | None  # the core chatd is pinned to, if any
    extra_args: list[str] = field(default_factory=list)


class Daemon:
    """One `twistd -n chatd` of the checkout under test, logging to a file."""

    def __init__(self, setup: Setup, name: str, args: list[str]) -> None:
        self.log_path = setup.workdir / f"{name}.log"
        twistd = Path(sys.executable).with_name("twistd")
        command = [
            str(twistd),
            "-n",
            "--pidfile=",
            "chatd",
            "--listen",
            f"tcp:0:interface={HOST}",
            *args,
            *setup.extra_args,
        ]
        path = os.environ.get("PYTHONPATH")
        env = dict(
            os.environ,
            PYTHONPATH=f"{setup.root}{os.pathsep}{path}" if path else str(setup.root),
            PYTHONUNBUFFERED="1",
        )
        cpu = self.core = setup.daemon_cpu
        self.others: list[float] = []  # other processes' % of that core, per Meter

        def pin() -> None:  # in the child, between fork and exec
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=setup.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pin,
                start_new_session=True,  # Ctrl-C reaches this script, which stops it
            )
        _children.append(self.process)
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            "chatd did not start; its log ends with:\n" + "\n".join(tail)
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the daemon so far (/proc/<pid>/stat)."""
        with open(f"/proc/{self.pid}/stat", "rb") as stat:
            data = stat.read()
        fields = data[data.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def memory_kib(self, name: str = "VmRSS") -> int:
        """A memory figure of the daemon from /proc/<pid>/status, in KiB."""
        with open(f"/proc/{self.pid}/status", "rb") as status:
            for text in status:
                if text.startswith(name.encode() + b":"):
                    return int(text.split()[1])
        raise RuntimeError(f"no {name} for process {self.pid}")

    def log_lines(self) -> int:
        """How many lines the daemon has logged so far."""
        with open(self.log_path, "rb") as log:
            return sum(
                chunk.count(b"\n") for chunk in iter(lambda: log.read(1 << 20), b"")
            )

    def log_count(self, text: str) -> int:
        """How many logged lines contain text."""
        needle = text.encode()
        with open(self.log_path, "rb") as log:
            return sum(1 for entry in log if needle in entry)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_WAIT seconds."""
        LAST_OTHERS[:] = self.others
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process in _children:
            _children.remove(self.process)


def self_cpu_seconds() -> float:
    """This script's own user + system CPU seconds."""
    times = os.times()
    return times.user + times.system


def tcp_counters() -> Counter[str]:
    """The kernel's TcpExt counters (/proc/net/netstat), e.g. ListenOverflows."""
    try:
        with open("/proc/net/netstat") as netstat:
            rows = [text.split() for text in netstat if text.startswith("TcpExt:")]
    except OSError:
        return Counter()
    if len(rows) < 2:
        return Counter()
    return Counter(
        {
            name: int(value)
            for name, value in zip(rows[0][1:], rows[1][1:], strict=False)
        }
    )


def busy_seconds(core: int | None) -> float:
    """CPU seconds spent in processes on core (None: on every core), /proc/stat.

    user + nice + system + steal; interrupt and softirq time is left out, as
    much of it is the loopback traffic of this very script and the daemon.
    """
    name = "cpu " if core is None else f"cpu{core} "
    with open("/proc/stat") as stat:
        for text in stat:
            if text.startswith(name):
                user, nice, system, _, _, _, _, steal = text.split()[1:9]
                return (int(user) + int(nice) + int(system) + int(steal)) / TICKS
    return 0.0


def wait_for_calm(limit: float, longest: float) -> str:
    """Wait until other processes use under limit % of a core (at most longest s).

    The machine may be shared; a run started while someone's test suite
    fills both cores measures them more than chatd. Returns what was seen.
    """
    deadline = time.monotonic() + longest
    while True:
        before, own = busy_seconds(None), self_cpu_seconds()
        time.sleep(1.0)
        load = 100 * (busy_seconds(None) - before - (self_cpu_seconds() - own))
        if load < limit:
            return f"machine calm ({load:.0f} % of a core in use by others)"
        if time.monotonic() >= deadline:
            return f"machine busy: {load:.0f} % of a core used by others at the start"


class Meter:
    """Daemon CPU, this script's CPU and the rest of the daemon's core, over time."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.wall = time.perf_counter()
        self.cpu = daemon.cpu_seconds()
        self.own = self_cpu_seconds()
        self.busy = busy_seconds(daemon.core)

    def read(self) -> tuple[float, float, float]:
        """Return (seconds, daemon CPU %, script CPU %) since the meter started.

        Also notes in daemon.others how much CPU other processes used meanwhile
        (% of one core; on the daemon's core when pinned, else on all): the
        noise of a shared machine.
        """
        wall = time.perf_counter() - self.wall
        cpu = self.daemon.cpu_seconds() if self.daemon.alive() else self.cpu
        own = 100 * (self_cpu_seconds() - self.own) / wall
        daemon_pct = 100 * (cpu - self.cpu) / wall
        busy = 100 * (busy_seconds(self.daemon.core) - self.busy) / wall
        ours = daemon_pct + (own if self.daemon.core is None else 0.0)
        self.daemon.others.append(max(0.0, busy - ours))
        return wall, daemon_pct, own


# -- clients: non-blocking sockets in one selector loop ---------------------------


class Loop:
    """One selector loop (epoll) for every client socket, with simple timers."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.buffer = bytearray(READ_SIZE)  # shared: counting needs no copy
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.serial = 0
        self.last_read = time.perf_counter()
        self.conns: list[Conn] = []

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        self.serial += 1
        heapq.heappush(self.timers, (time.perf_counter() + delay, self.serial, action))

    def run(self, seconds: float, done: Callable[[], bool] = lambda: False) -> bool:
        """Serve sockets and timers for up to seconds; True if done() came true."""
        deadline = time.perf_counter() + seconds
        while True:
            now = time.perf_counter()
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()
            if done():
                return True
            if now >= deadline:
                return False
            wake = min(deadline, self.timers[0][0]) if self.timers else deadline
            if not self.selector.get_map():
                time.sleep(min(max(0.0, wake - now), 0.05))
                continue
            for key, mask in self.selector.select(min(max(0.0, wake - now), 0.05)):
                conn: Conn = key.data
                if mask & selectors.EVENT_READ and not conn.closed:
                    conn.readable()
                if mask & selectors.EVENT_WRITE and not conn.closed:
                    conn.writable()

    def close_all(self) -> None:
        for conn in self.conns:
            conn.close("script done")
        self.conns = []
        self.selector.close()


LineHandler = Callable[["Conn", bytes], None]


class Conn:
    """One client socket: sends what it is given (or a stream forever), reads all.

    With on_line set, received lines are split and handed over; without, they
    are only counted (lines_in counts LF bytes), which costs no Python per line.
    """

    def __init__(
        self,
        loop: Loop,
        port: int,
        on_line: LineHandler | None = None,
        name: str = "",
    ) -> None:
        self.loop = loop
        self.name = name
        self.on_line = on_line
        self.on_sent: Callable[[Conn], None] | None = None
        self.on_close: Callable[[Conn], None] | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.started = time.perf_counter()
        self.connected_at: float | None = None
        self.closed = False
        self.close_reason = ""
        self.out = bytearray()
        self.stream: memoryview | None = None
        self.offset = 0
        self.bytes_in = self.lines_in = self.bytes_out = 0
        self.pending = b""
        self.mask = 0
        loop.conns.append(self)
        code = self.sock.connect_ex((HOST, port))
        if code == 0:
            self.connected_at = time.perf_counter()
        elif code != errno.EINPROGRESS:
            self.close(f"connect: {os.strerror(code)}")
            return
        self._update()

    def _update(self) -> None:
        want = selectors.EVENT_READ
        if self.connected_at is None or self.out or self.stream is not None:
            want |= selectors.EVENT_WRITE
        if want != self.mask:
            if self.mask:
                self.loop.selector.modify(self.sock, want, self)
            else:
                self.loop.selector.register(self.sock, want, self)
            self.mask = want

    def send(self, data: bytes) -> None:
        """Queue data and send as much as the socket takes now."""
        if self.closed:
            return
        self.out += data
        if self.connected_at is not None:
            self._push()  # may close it: on_sent, or the server has gone
        if not self.closed:
            self._update()

    def send_forever(self, unit: bytes, copies: int) -> None:
        """Send unit * copies over and over, as fast as the socket takes it."""
        self.stream = memoryview(unit * copies)
        self._update()

    def _push(self) -> None:
        try:
            while self.out:
                sent = self.sock.send(self.out)
                self.bytes_out += sent
                del self.out[:sent]
            if self.stream is not None:
                sent = self.sock.send(self.stream[self.offset :])
                self.bytes_out += sent
                self.offset = (self.offset + sent) % len(self.stream)
        except BlockingIOError:
            return
        except OSError as error:
            self.close(f"send: {error.strerror or error}")
            return
        if not self.out and self.stream is None and self.on_sent is not None:
            self.on_sent(self)

    def writable(self) -> None:
        if self.connected_at is None:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.close(f"connect: {os.strerror(code)}")
                return
            self.connected_at = time.perf_counter()
        self._push()
        if not self.closed:
            self._update()

    def readable(self) -> None:
        loop = self.loop
        try:
            size = self.sock.recv_into(loop.buffer)
        except BlockingIOError:
            return
        except OSError as error:
            self.close(f"recv: {error.strerror or error}")
            return
        if size == 0:
            self.close("closed by the server")
            return
        loop.last_read = time.perf_counter()
        self.bytes_in += size
        if self.on_line is None:
            self.lines_in += loop.buffer.count(b"\n", 0, size)
            return
        lines = (self.pending + loop.buffer[:size]).split(b"\r\n")
        self.pending = bytes(lines.pop())
        self.lines_in += len(lines)
        for text in lines:
            if self.on_line is None or self.closed:
                break
            self.on_line(self, bytes(text))

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if self.mask:
            self.loop.selector.unregister(self.sock)
        self.sock.close()
        if self.on_close is not None:
            self.on_close(self)


class Member:
    """A client that registers as nick (and so joins #lobby), then reads on."""

    def __init__(self, loop: Loop, port: int, nick: str) -> None:
        self.nick = nick.encode()
        self.conn = Conn(loop, port, self._greeting, nick)
        self.registered = False
        self.after: LineHandler | None = None  # lines after registration; None: count

    def _greeting(self, conn: Conn, text: bytes) -> None:
        if text.startswith(b"NICK "):
            conn.send(self.nick + b"\r\n")
        elif text == b"JOIN #lobby " + self.nick:
            self.registered = True
            conn.on_line = self.after

    def done(self) -> bool:
        """Registered, or gone trying."""
        return self.registered or self.conn.closed


class Probe(Member):
    """A registered user timing the echo of its own lines, at 2 lines a second."""

    def __init__(self, loop: Loop, port: int, nick: str = "probe") -> None:
        super().__init__(loop, port, nick)
        self.after = self._line
        self.loop = loop
        self.phase = "quiet"
        self.sending = False
        self.seq = 0
        self.sent: dict[int, tuple[float, str]] = {}
        self.samples: dict[str, list[float]] = {}
        self.quits: list[str] = []
        self.echo = b"MSG #lobby " + self.nick + b" p "

    def start(self, phase: str) -> None:
        """Send a timed line every PROBE_INTERVAL, counted under phase."""
        self.phase = phase
        if not self.sending:
            self.sending = True
            self._tick()

    def stop(self) -> None:
        self.sending = False

    def _tick(self) -> None:
        if not self.sending or self.conn.closed:
            return
        self.seq += 1
        self.sent[self.seq] = (time.perf_counter(), self.phase)
        self.conn.send(b"p %d\r\n" % self.seq)
        self.loop.call_later(PROBE_INTERVAL, self._tick)

    def _line(self, conn: Conn, text: bytes) -> None:
        if text.startswith(self.echo):
            started, phase = self.sent.pop(int(text[len(self.echo) :]))
            self.samples.setdefault(phase, []).append(
                (time.perf_counter() - started) * 1000
            )
        elif text.startswith(b"QUIT "):
            self.quits.append(text.decode(errors="replace"))

    def drain(self, seconds: float = WAIT) -> None:
        """Stop sending and wait (bounded) for the echoes still on their way."""
        self.stop()
        self.loop.run(seconds, lambda: not self.sent or self.conn.closed)

    def figures(self, phase: str) -> list[Figure]:
        """Median, p90 and max echo time of phase, and echoes never seen."""
        got = self.samples.get(phase, [])
        lost = sum(1 for _, p in self.sent.values() if p == phase)
        return [
            Figure(f"probe {phase} median", median(got), "ms", 1),
            Figure(f"probe {phase} p90", percentile(got, 90), "ms", 1),
            Figure(f"probe {phase} max", max(got) if got else None, "ms", 1),
            Figure(f"probe {phase} echoes", len(got), f"of {len(got) + lost}"),
        ]


def open_gradually(
    loop: Loop,
    count: int,
    make: Callable[[int], T],
    ready: Callable[[T], bool],
    what: str,
    window: int = 16,
) -> list[T]:
    """Open count clients, at most window not yet ready at once; wait for all.

    The daemon listens with a backlog of 50: opening a hundred clients at once
    would measure the backlog (see the backlog scenario), not the attack.
    """
    made: list[T] = []
    pending: list[T] = []

    def done() -> bool:
        pending[:] = [item for item in pending if not ready(item)]
        while len(made) < count and len(pending) < window:
            made.append(make(len(made)))
            pending.append(made[-1])
        return len(made) == count and not pending

    if not loop.run(WAIT, done):
        raise RuntimeError(f"{what}: {len(pending)} of {count} not ready in {WAIT:g} s")
    return made


def register_all(loop: Loop, members: list[Member], what: str) -> None:
    """Wait (bounded) until every member has joined #lobby."""
    if not loop.run(WAIT, lambda: all(m.registered or m.conn.closed for m in members)):
        missing = sum(1 for m in members if not m.registered)
        raise RuntimeError(f"{what}: {missing} of {len(members)} did not register")
    closed = [m.conn.close_reason for m in members if not m.registered]
    if closed:
        raise RuntimeError(f"{what}: {len(closed)} could not register: {closed[0]}")


# -- figures ---------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure of one run."""

    name: str
    value: float | None
    unit: str = ""
    digits: int = 0

    def text(self, value: float | None = None) -> str:
        value = self.value if value is None else value
        if value is None:
            return "-"
        return f"{value:,.{self.digits}f}"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


@dataclass
class Result:
    """The figures of one run, and notes worth reading beside them."""

    figures: list[Figure]
    notes: list[str] = field(default_factory=list)


def run_line(number: int, result: Result) -> str:
    parts = [
        f"{f.name} {f.text()}{' ' + f.unit if f.unit else ''}" for f in result.figures
    ]
    line = f"  run {number}: " + "; ".join(parts)
    for note in result.notes:
        line += f"\n    {note}"
    return line


def summary_lines(results: list[Result]) -> list[str]:
    """Per figure: the median of the runs and (min-max)."""
    lines = []
    for index, first in enumerate(results[0].figures):
        values: list[float] = []
        for result in results:
            if index < len(result.figures):
                value = result.figures[index].value
                if value is not None:
                    values.append(float(value))
        unit = f" {first.unit}" if first.unit else ""
        if not values:
            lines.append(f"  {first.name}: -{unit}")
            continue
        mid = statistics.median(values)
        if len(values) > 1:
            spread = f" ({first.text(min(values))} to {first.text(max(values))})"
        else:
            spread = ""
        lines.append(f"  {first.name}: {first.text(mid)}{unit}{spread}")
    return lines


# -- the scenarios ---------------------------------------------------------------


def burst(setup: Setup) -> Result:
    """3: one burst of 10 lines of ~2 kB from each sender cuts off the readers."""
    senders, readers, lines_each = (20, 10, 10) if setup.quick else (90, 50, 10)
    text = b"x" * 2000
    daemon = Daemon(setup, "burst", MANY)
    loop = Loop()
    try:
        got = Counter[str]()
        quits = Counter[str]()

        def reader_line(conn: Conn, line: bytes) -> None:
            if line.startswith(b"MSG #lobby s"):
                got[conn.name] += 1
            elif line.startswith(b"QUIT "):
                quits[line.decode(errors="replace").split(" ", 2)[2]] += 1

        def reader(number: int) -> Member:
            member = Member(loop, daemon.port, f"r{number}")
            member.after = reader_line
            return member

        members = open_gradually(loop, readers, reader, Member.done, "burst")
        sending = open_gradually(
            loop,
            senders,
            lambda number: Member(loop, daemon.port, f"s{number}"),
            Member.done,
            "burst",
        )
        register_all(loop, members + sending, "burst")
        loop.run(0.5 if setup.quick else 1.5)  # flood buckets full again after NICK
        expected = senders * lines_each
        meter = Meter(daemon)
        burst_bytes = b"".join(b"%d %s\r\n" % (i, text) for i in range(lines_each))
        for sender in sending:
            sender.conn.send(burst_bytes)

        def settled() -> bool:
            if time.perf_counter() - loop.last_read > 3.0:
                return True
            if not all(m.conn.closed or got[m.conn.name] >= expected for m in members):
                return False
            return all(s.conn.closed or s.conn.lines_in >= expected for s in sending)

        loop.run(60.0 if not setup.quick else 10.0, settled)
        wall, cpu, own = meter.read()
        counts = [got[m.conn.name] for m in members]
        survivors = sum(1 for m in members if not m.conn.closed)
        figures = [
            Figure("readers connected after", survivors, f"of {readers}"),
            Figure("readers with every line", sum(c >= expected for c in counts), ""),
            Figure("MSG lines per reader median", median([float(c) for c in counts])),
            Figure("min", min(counts)),
            Figure("max", max(counts), f"of {expected}"),
            Figure(
                "senders connected after",
                sum(1 for s in sending if not s.conn.closed),
                f"of {senders}",
            ),
            Figure("daemon CPU", cpu, "%"),
            Figure("script CPU", own, "%"),
            Figure("took", wall, "s", 1),
        ]
        reasons = Counter(m.conn.close_reason for m in members if m.conn.closed)
        notes = [
            f"burst: {senders} x {lines_each} lines of {len(text) + 4} bytes "
            f"({senders * len(burst_bytes) / 1e6:.1f} MB; "
            f"{senders * len(burst_bytes) * (senders + readers) / 1e6:.0f} MB "
            f"of MSG lines owed to {senders + readers} members)",
            f"readers' sockets: {dict(reasons) or 'all open'}",
            f"QUIT reasons the readers saw: {dict(quits.most_common(3)) or 'none'}",
            f"daemon log: {daemon.log_count('stopped reading')} 'stopped reading', "
            f"{daemon.log_count('is flooding')} 'is flooding'",
        ]
        return Result(figures, notes)
    finally:
        loop.close_all()
        daemon.stop()


def _probe_run(
    setup: Setup,
    name: str,
    args: list[str],
    attack_seconds: float,
    start_attack: Callable[[Loop, Daemon], Callable[[], list[Figure]]],
) -> tuple[Result, Daemon, Loop, Probe]:
    """Quiet probe samples, then the attack with the probe running, then the echoes.

    start_attack starts the attack's clients and returns a function that stops
    them and returns the attack's own figures. The caller stops the daemon.
    """
    daemon = Daemon(setup, name, args)
    loop = Loop()
    try:
        return _probe_attack(setup, daemon, loop, attack_seconds, start_attack)
    except BaseException:
        loop.close_all()
        daemon.stop()
        raise


def _probe_attack(
    setup: Setup,
    daemon: Daemon,
    loop: Loop,
    attack_seconds: float,
    start_attack: Callable[[Loop, Daemon], Callable[[], list[Figure]]],
) -> tuple[Result, Daemon, Loop, Probe]:
    probe = Probe(loop, daemon.port)
    register_all(loop, [probe], "probe")
    probe.start("quiet")
    loop.run(QUIET_SECONDS if not setup.quick else 0.3)
    probe.start("attack")
    log_before = daemon.log_lines()
    meter = Meter(daemon)
    finish = start_attack(loop, daemon)
    loop.run(attack_seconds)
    wall, cpu, own = meter.read()
    attack_figures = finish()
    probe.drain(2.0 if setup.quick else WAIT)
    figures = [
        *probe.figures("quiet")[:1],
        *probe.figures("attack"),
        Figure("daemon CPU", cpu, "%"),
        *attack_figures,
        Figure("daemon log lines", daemon.log_lines() - log_before, ""),
        Figure("script CPU", own, "%"),
    ]
    notes = [] if daemon.alive() else ["the daemon died"]
    return Result(figures, notes), daemon, loop, probe


def empty_lines(setup: Setup) -> Result:
    """5: connect, send 60,000 LF, close, in 4 loops: CPU before the flood gate."""
    return _empty_lines(setup, [])


def empty_lines_open(setup: Setup) -> Result:
    """5 again, with no cap per address: as if the loops came from many addresses."""
    return _empty_lines(setup, MANY)


def _empty_lines(setup: Setup, args: list[str]) -> Result:
    loops, count, seconds = 4, 60_000, (0.5 if setup.quick else 10.0)
    payload = b"\n" * count
    made: list[Conn] = []
    running = [True]

    def start(loop: Loop, daemon: Daemon) -> Callable[[], list[Figure]]:
        def connect() -> None:
            if not running[0] or len(made) >= MAX_CONNECTIONS:
                return
            conn = Conn(loop, daemon.port)
            conn.on_sent = sent
            # Whatever ends it (sent in full, or the daemon closing it first),
            # the loop goes on with a new connection, on the next turn.
            conn.on_close = lambda _: loop.call_later(0, connect)
            made.append(conn)
            conn.send(payload)

        def sent(conn: Conn) -> None:
            conn.close("sent")  # as a naive script does: no reading, no waiting

        for _ in range(loops):
            connect()

        def finish() -> list[Figure]:
            running[0] = False
            done = sum(1 for c in made if c.close_reason == "sent")
            for conn in made:
                conn.close("attack over")
            sent_bytes = sum(c.bytes_out for c in made)
            failed = sum(1 for c in made if c.close_reason.startswith("connect"))
            return [
                Figure("connections sent in full", done, ""),
                Figure("attack rate", sent_bytes / seconds / 1e6, "MB/s", 2),
                Figure("connects failed", failed, f"of {len(made)}"),
            ]

        return finish

    result, daemon, loop, _ = _probe_run(setup, "empty", args, seconds, start)
    try:
        result.notes.append(
            f"daemon log: {daemon.log_count(' connected')} connected, "
            f"{daemon.log_count('refused a connection')} refused, "
            f"{daemon.log_count('is flooding')} 'is flooding'"
        )
        return result
    finally:
        loop.close_all()
        daemon.stop()


def too_long(setup: Setup) -> Result:
    """6: one client sending 3000-byte lines nonstop: ERR and a log line each."""
    seconds = 0.5 if setup.quick else 5.0
    attacker: list[Conn] = []

    def start(loop: Loop, daemon: Daemon) -> Callable[[], list[Figure]]:
        conn = Conn(loop, daemon.port, name="long")
        conn.send_forever(b"x" * 2999 + b"\n", 22)
        attacker.append(conn)

        def finish() -> list[Figure]:
            open_ = not conn.closed
            conn.close("attack over")
            return [
                # Everything after HELLO and NICK is an ERR too-long line.
                Figure("attacker's ERR lines", max(0, conn.lines_in - 2), ""),
                Figure("lines sent", conn.bytes_out // 3000, ""),
                Figure("attacker still connected", int(open_), "(1 = yes)"),
            ]

        return finish

    result, daemon, loop, _ = _probe_run(setup, "toolong", [], seconds, start)
    try:
        result.notes.append(
            f"daemon log: {daemon.log_count('refused')} 'refused' warnings in all; "
            f"attacker socket: {attacker[0].close_reason}"
        )
        return result
    finally:
        loop.close_all()
        daemon.stop()


def telnet(setup: Setup) -> Result:
    """7: IAC WILL x in bulk from 8 clients; then one burst of IAC IP."""
    clients, seconds = (8, 0.5) if setup.quick else (8, 10.0)
    will = b"".join(bytes([255, 251, option]) for option in range(256))
    attackers: list[Conn] = []
    ip_burst = 32_768  # IAC IP pairs: 64 KiB, one read of the daemon

    def start(loop: Loop, daemon: Daemon) -> Callable[[], list[Figure]]:
        for number in range(clients):
            conn = Conn(loop, daemon.port, name=f"will{number}")
            conn.send_forever(will, 85)
            attackers.append(conn)

        def finish() -> list[Figure]:
            cut = sum(1 for c in attackers if c.closed)
            for conn in attackers:
                conn.close("attack over")
            return [
                Figure("reply bytes to attackers", sum(c.bytes_in for c in attackers)),
                Figure(
                    "IAC WILL sent",
                    sum(c.bytes_out for c in attackers) / 3 / 1e6,
                    "M",
                    2,
                ),
                Figure("attackers cut off", cut, f"of {clients}"),
            ]

        return finish

    result, daemon, loop, probe = _probe_run(setup, "telnet", [], seconds, start)
    try:
        # Then one registered client sends a burst of Ctrl-C (IAC IP), reading on.
        ip = Member(loop, daemon.port, "ctrlc")
        register_all(loop, [ip], "telnet")
        loop.run(0.3 if setup.quick else 1.0)
        before = ip.conn.lines_in
        ip.conn.send(b"\xff\xf4" * ip_burst)
        silence = 0.5 if setup.quick else 2.0  # no more answers: it is over
        loop.run(
            WAIT if not setup.quick else 5.0,
            lambda: ip.conn.closed or time.perf_counter() - loop.last_read > silence,
        )
        if ip.conn.closed:  # the others hear why
            loop.run(3.0, lambda: any(q.startswith("QUIT ctrlc ") for q in probe.quits))
        quit_ = [q for q in probe.quits if q.startswith("QUIT ctrlc ")]
        result.figures += [
            Figure("IAC IP burst: INFO lines back", ip.conn.lines_in - before, ""),
            Figure("IAC IP sender cut off", int(ip.conn.closed), "(1 = yes)"),
        ]
        result.notes.append(
            f"IAC IP burst of {ip_burst} ({2 * ip_burst} bytes): the others saw "
            f"{quit_[0] if quit_ else 'no QUIT'}; its socket: "
            f"{ip.conn.close_reason or 'open'}"
        )
        return result
    finally:
        loop.close_all()
        daemon.stop()


def recv_queue(setup: Setup) -> Result:
    """8: what 65,400 queued bytes of short lines cost the daemon, per connection.

    Twice: "a" LF as in the finding, and "a" CR LF as nc -C and telnet send
    it. CPython keeps one shared object per 1-byte bytes value, so the LF lines
    (b"a" once framed) cost the queue a pointer each, while CR LF lines (b"a\\r")
    are an object of their own each.
    """
    figures: list[Figure] = []
    notes: list[str] = []
    for label, unit in (("LF", b"a\n"), ("CRLF", b"a\r\n")):
        more, note = _queue_memory(setup, label, unit)
        figures += more
        notes.append(note)
    return Result(figures, notes)


def _queue_memory(setup: Setup, label: str, unit: bytes) -> tuple[list[Figure], str]:
    count = 8 if setup.quick else 128
    size = 65_400 // len(unit) * len(unit)
    daemon = Daemon(setup, f"recvq-{label}", MANY)
    loop = Loop()
    try:
        loop.run(0.3 if setup.quick else 1.0)
        idle = daemon.memory_kib()
        greeted: set[str] = set()

        def greeting(conn: Conn, text: bytes) -> None:
            if text.startswith(b"NICK "):
                greeted.add(conn.name)
                conn.on_line = None  # only count from now on

        conns = open_gradually(
            loop,
            count,
            lambda number: Conn(loop, daemon.port, greeting, f"q{number}"),
            lambda conn: conn.name in greeted or conn.closed,
            "recvq",
        )
        loop.run(0.2 if setup.quick else 0.5)
        connected = daemon.memory_kib()
        meter = Meter(daemon)
        for conn in conns:
            conn.send(unit * (size // len(unit)))
        loop.run(WAIT, lambda: all(not c.out or c.closed for c in conns))
        # The daemon has read everything once its memory and CPU stand still.
        last, steady, deadline = -1, 0, time.monotonic() + 2 * WAIT
        samples, every = (2, 0.1) if setup.quick else (4, 0.25)
        while steady < samples and time.monotonic() < deadline:
            cpu = daemon.cpu_seconds()
            loop.run(every)
            rss = daemon.memory_kib()
            quiet = daemon.cpu_seconds() - cpu < 0.02
            steady = steady + 1 if rss == last and quiet else 0
            last = rss
        wall, cpu_pct, own = meter.read()
        after = daemon.memory_kib()
        open_ = sum(1 for c in conns if not c.closed)
        per = (after - connected) / count
        figures = [
            Figure(f"{label}: RSS idle", idle / 1024, "MiB", 1),
            Figure(f"with {count} connected", connected / 1024, "MiB", 1),
            Figure("after queueing", after / 1024, "MiB", 1),
            Figure("per queued connection", per, "KiB"),
            Figure("x bytes queued", per * 1024 / size, "", 1),
            Figure("still open", open_, f"of {count}"),
            Figure("daemon CPU to read it", cpu_pct * wall / 100, "s", 1),
            Figure("script CPU", own, "%"),
        ]
        note = (
            f"{label}: {count} x {size} bytes of {unit!r}; peak RSS "
            f"{daemon.memory_kib('VmHWM') / 1024:.1f} MiB; daemon log: "
            f"{daemon.log_count('input queue')} input-queue warnings, "
            f"{daemon.log_count('registered as')} registered"
        )
        return figures, note
    finally:
        loop.close_all()
        daemon.stop()


def backlog(setup: Setup) -> Result:
    """9: many clients connecting at once, waiting for HELLO as telnet users do."""
    return _backlog(setup, b"")


def backlog_eager(setup: Setup) -> Result:
    """9 again, each client sending an empty line at once, as a script might.

    With SYN cookies on (Linux's default), a connection the full accept queue
    dropped is only rebuilt from the client's next segment: a client that
    sends nothing waits forever, one that sends retransmits with back-off.
    """
    return _backlog(setup, b"\r\n")


def _backlog(setup: Setup, first: bytes) -> Result:
    count, give_up = (60, 3.0) if setup.quick else (1000, 40.0)
    daemon = Daemon(setup, "backlog", MANY)
    loop = Loop()
    try:
        loop.run(0.2 if setup.quick else 0.5)
        hello: dict[str, float] = {}

        def greeting(conn: Conn, text: bytes) -> None:
            if text.startswith(b"HELLO "):
                hello[conn.name] = time.perf_counter() - conn.started
                conn.on_line = None

        kernel = tcp_counters()
        meter = Meter(daemon)
        conns = [Conn(loop, daemon.port, greeting, f"c{i}") for i in range(count)]
        if first:
            for conn in conns:
                conn.send(first)
        loop.run(give_up, lambda: len(hello) + sum(c.closed for c in conns) >= count)
        wall, cpu, own = meter.read()
        kernel = tcp_counters() - kernel
        times = [t * 1000 for t in hello.values()]
        errors = Counter(c.close_reason for c in conns if c.closed)
        waiting = sum(
            1 for c in conns if c.connected_at and not c.closed and c.name not in hello
        )
        return Result(
            [
                Figure("got HELLO", len(hello), f"of {count}"),
                Figure("time to HELLO median", median(times), "ms"),
                Figure("p90", percentile(times, 90), "ms"),
                Figure("max", max(times) if times else None, "ms"),
                Figure("connected, no HELLO", waiting, f"after {give_up:g} s"),
                Figure("kernel ListenOverflows", kernel["ListenOverflows"], ""),
                Figure("SyncookiesSent", kernel["SyncookiesSent"], ""),
                Figure("script CPU", own, "%"),
            ],
            [
                f"failed sockets: {dict(errors) or 'none'}; kernel counters are "
                f"machine-wide; daemon log: {daemon.log_count(' connected')} "
                f"connected, {daemon.log_count('refused a connection')} refused"
            ],
        )
    finally:
        loop.close_all()
        daemon.stop()


@dataclass
class Scenario:
    """One finding of issue 11 and the function that reproduces it."""

    finding: int
    title: str
    run: Callable[[Setup], Result]


SCENARIOS = {
    "burst": Scenario(
        3,
        "one burst of 10 lines of ~2 kB from each of 90 registered senders; "
        "50 readers in #lobby reading all the time (--max-per-ip raised)",
        burst,
    ),
    "empty": Scenario(
        5,
        "4 loops of connect, send 60,000 LF, close, for 10 s; probe 2 lines/s",
        empty_lines,
    ),
    "empty-open": Scenario(
        5,
        "the same with --max-per-ip 100000 --max-clients 2000, as if the loops came "
        "from many addresses (--max-per-ip 16 otherwise refuses the pile-up)",
        empty_lines_open,
    ),
    "toolong": Scenario(
        6, "one client sending 3000-byte lines nonstop for 5 s; probe", too_long
    ),
    "telnet": Scenario(
        7,
        "8 clients sending IAC WILL x nonstop for 10 s; probe; then one "
        "registered client sends 32,768 IAC IP at once, reading all the time",
        telnet,
    ),
    "recvq": Scenario(
        8,
        "128 unregistered connections each send 65,400 bytes of 'a' LF, then "
        "the same with 'a' CR LF (--max-per-ip raised)",
        recv_queue,
    ),
    "backlog": Scenario(
        9,
        "1000 clients connect at once (--max-per-ip 100000 --max-clients 2000); "
        "time from connect() to HELLO, giving up after 40 s",
        backlog,
    ),
    "backlog-eager": Scenario(
        9,
        "the same, each client sending an empty line as soon as it is connected "
        "(any data revives a connection dropped under SYN cookies)",
        backlog_eager,
    ),
}


def _commit(root: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python bench/hostile.py",
        description="Hostile clients against chatd (issue 11): one scenario per "
        "finding, each printing a few figures per run and their median. Runs "
        "twistd -n chatd of --root on an ephemeral 127.0.0.1 port. "
        "See docs/hostile.md.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        metavar="scenario",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="the checkout whose chatd to run (default: this repository)",
    )
    p.add_argument("--runs", type=int, default=None, help="runs of each (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, short attacks, one run: a smoke test, not figures",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin chatd to the first core and this script to the second (default: "
        "not pinned, so that chatd can move off a core other work is using)",
    )
    p.add_argument(
        "--chatd-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for twistd chatd, repeatable, = form: "
        "--chatd-arg=--sendq=2000000",
    )
    p.add_argument(
        "--calm",
        type=float,
        default=50.0,
        metavar="PCT",
        help="before each run, wait (up to --calm-wait seconds) until other "
        "processes use less than PCT %% of a core (default 50; 1000 never waits)",
    )
    p.add_argument("--calm-wait", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--json", type=Path, default=None, help="write every figure here")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser().error(
            f"unknown scenario {unknown[0]!r}; choose from {list(SCENARIOS)}"
        )
    names = list(dict.fromkeys(args.scenarios or SCENARIOS))
    runs = args.runs or (1 if args.quick else 3)
    root = args.root.resolve()
    if not (root / "twisted" / "plugins" / "chatd_plugin.py").exists():
        parser().error(f"--root {root}: no twisted/plugins/chatd_plugin.py there")
    signal.signal(signal.SIGTERM, _on_sigterm)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cores = sorted(os.sched_getaffinity(0))
    daemon_cpu = None
    if args.pin and len(cores) >= 2:
        daemon_cpu = cores[0]
        os.sched_setaffinity(0, {cores[1]})
    place = (
        f"chatd on cpu {daemon_cpu}, this script on cpu {cores[1]}"
        if daemon_cpu is not None
        else f"not pinned ({len(cores)} cores)"
    )
    print(f"chatd {_commit(root)} from {root}; {place}; open files {hard}")
    report: dict[str, object] = {
        "root": str(root),
        "commit": _commit(root),
        "placement": place,
        "quick": args.quick,
        "chatd_args": args.chatd_arg,
        "scenarios": {},
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="chatd-hostile-") as tmp:
        for name in names:
            scenario = SCENARIOS[name]
            print(f"\n[{scenario.finding}] {name}: {scenario.title}", flush=True)
            results: list[Result] = []
            for number in range(1, runs + 1):
                workdir = Path(tmp) / f"{name}-{number}"
                workdir.mkdir()
                setup = Setup(root, workdir, args.quick, daemon_cpu, args.chatd_arg)
                calm = "" if args.quick else wait_for_calm(args.calm, args.calm_wait)
                started = time.monotonic()
                try:
                    result = scenario.run(setup)
                except (OSError, RuntimeError) as error:
                    print(f"  run {number}: failed: {type(error).__name__}: {error}")
                    failed = True
                    continue
                if LAST_OTHERS:
                    where = "chatd's core" if daemon_cpu is not None else "all cores"
                    result.notes.append(
                        f"other processes on {where} during the attack (% of a "
                        "core): "
                        + ", ".join(f"{pct:.0f} %" for pct in LAST_OTHERS)
                        + f"; load average {os.getloadavg()[0]:.1f}"
                        + (f"; before it, {calm}" if calm else "")
                    )
                    LAST_OTHERS.clear()
                result.notes.append(f"run took {time.monotonic() - started:.1f} s")
                results.append(result)
                print(run_line(number, result), flush=True)
            if len(results) > 1:
                print(f"  median of {len(results)} (min to max):")
                print("\n".join(summary_lines(results)), flush=True)
            report["scenarios"][name] = [  # type: ignore[index]
                {
                    "figures": [f.__dict__ for f in r.figures],
                    "notes": r.notes,
                }
                for r in results
            ]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nJSON: {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
