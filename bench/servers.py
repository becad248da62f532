"""Starting the servers under test, pinning them, and reading their /proc figures."""

from __future__ import annotations

import atexit
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_WAIT = 20.0  # seconds a server has to say it is listening
STOP_WAIT = 3.0  # seconds between SIGTERM and SIGKILL
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CHATD_LISTENING = re.compile(r"chatd listening on \S+: \S+ port (\d+)")
CHATD_IRC_LISTENING = re.compile(r"chatd IRC listening on \S+: \S+ port (\d+)")
# chatd-irc: the same daemon with an IRC listener, and no history (ngIRCd keeps
# none, and no database file is written). The line listener is still opened on
# an ephemeral loopback port: without --listen the daemon would take tcp:5501.
CHATD_IRC_ARGS = ["--irc", "tcp:0:interface=127.0.0.1", "--no-history"]


def chatd_irc_args(args: list[str], history: bool = False) -> list[str]:
    """The arguments chatd-irc runs with: CHATD_IRC_ARGS, then args.

    --no-history only once, when args has it too (--chatd-arg=--no-history);
    not at all with history (bench.floor's chatd-irc keeps messages, as
    chatd does by default).
    """
    keep = history or "--no-history" in args
    ours = CHATD_IRC_ARGS[:2] if keep else CHATD_IRC_ARGS
    return ours + args


# Options that would throttle the load; passed when `twistd chatd --help` lists them.
BIG = 100_000
CHATD_UNTHROTTLED = {
    "flood-rate": "0",  # 0 turns flood control off
    "max-clients": str(BIG),
    "max-per-ip": str(BIG),
}
NGIRCD_CONF = """\
# Written by chatd's benchmark (bench/servers.py) for one run; loopback only.
[Global]
Name = bench.localhost
Info = chatd benchmark
AdminInfo1 = chatd benchmark
AdminInfo2 = loopback only
AdminEMail = bench@localhost
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = bench
[Limits]
# 0: no limit on connections, in total and per address, or on channels per user.
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
# 0 disables penalty times ("flood" throttling) altogether.
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
# No resolver or ident subprocess per connection, no PAM: as cheap as chatd's accept.
DNS = no
Ident = no
PAM = no
[Operator]
# The fanout sender opers up to set user mode +F (relaxed flood protection).
Name = {oper_name}
Password = {oper_password}
"""

_running: list[subprocess.Popen[bytes]] = []


def _kill_leftovers() -> None:
    for process in _running:
        if process.poll() is None:
            process.kill()
            process.wait()


atexit.register(_kill_leftovers)


class ServerError(RuntimeError):
    """A server could not be started, or is not installed."""


def proc_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of process pid (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        data = stat.read()
    fields = data[data.rindex(b")") + 2 :].split()
    # Fields 14 and 15 of proc(5), counted from 3 (state) after the command name.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_rss_kib(pid: int) -> int:
    """Return the resident set size of process pid, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status", "rb") as status:
        for text in status:
            if text.startswith(b"VmRSS:"):
                return int(text.split()[1])
    raise ServerError(f"no VmRSS for process {pid}")


def self_cpu_seconds() -> float:
    """Return this process's user + system CPU seconds."""
    times = os.times()
    return times.user + times.system


def listen_overflows() -> int:
    """Return the kernel's count of connections dropped from full accept queues."""
    try:
        with open("/proc/net/netstat") as netstat:
            rows = [text.split() for text in netstat if text.startswith("TcpExt:")]
    except OSError:
        return 0
    if len(rows) < 2:
        return 0
    values = dict(zip(rows[0][1:], rows[1][1:], strict=False))
    return int(values.get("ListenOverflows", 0))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-file soft limit to the hard limit.

    Returns the (soft, hard) pair there was before.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


@dataclass
class Placement:
    """Which core the server and the load generator run on, and the server's fds."""

    server_cpu: int | None
    generator_cpu: int | None
    server_nofile: int | None  # soft RLIMIT_NOFILE the server starts with

    def describe(self) -> str:
        if self.server_cpu is None:
            return "not pinned (fewer than 2 usable cores, or --no-pin)"
        return f"server on cpu {self.server_cpu}, generator on cpu {self.generator_cpu}"


def plan_placement(pin: bool, server_nofile: int | None) -> Placement:
    """Pick one core for the server and another for this process, and pin this one."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return Placement(None, None, server_nofile)
    placement = Placement(cores[0], cores[1], server_nofile)
    os.sched_setaffinity(0, {cores[1]})
    return placement


def _child_setup(placement: Placement) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        if placement.server_cpu is not None:
            os.sched_setaffinity(0, {placement.server_cpu})
        if placement.server_nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            soft = min(placement.server_nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return setup


@dataclass
class Server:
    """A running server process under test."""

    kind: str  # "chatd", "chatd-irc", "chatd-NAME" (a variant), "ngircd", "inspircd"
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path  # its standard output and error
    command: list[str] = field(default_factory=list)
    more_logs: tuple[Path, ...] = ()  # log files it writes itself (InspIRCd's)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def log_text(self) -> str:
        """Its output, then the log files it writes itself."""
        texts = []
        for path in (self.log_path, *self.more_logs):
            try:
                texts.append(path.read_text(errors="replace"))
            except OSError:
                pass
        return "".join(texts)

    def log_tail(self, count: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-count:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_WAIT seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process in _running:
            _running.remove(self.process)


def _launch(
    kind: str,
    command: list[str],
    workdir: Path,
    placement: Placement,
    env: dict[str, str],
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = workdir / f"{kind}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup(placement),
            start_new_session=True,  # a Ctrl-C reaches us, and we stop it
        )
    _running.append(process)
    return process, log_path


def _wait_for_log(
    process: subprocess.Popen[bytes], log_path: Path, pattern: re.Pattern[str]
) -> re.Match[str]:
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        found = pattern.search(log_path.read_text(errors="replace"))
        if found:
            return found
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    process.kill()
    process.wait()
    raise ServerError(f"server did not start listening; its log ends with:\n{tail}")


# -- chatd ---------------------------------------------------------------------


def twistd_path() -> str:
    """Find the twistd script of the Python running the benchmark."""
    beside = Path(sys.executable).with_name("twistd")
    found = str(beside) if beside.exists() else shutil.which("twistd")
    if found is None:
        raise ServerError("twistd is not installed next to this Python")
    return found


def chatd_env() -> dict[str, str]:
    """The environment for twistd: this checkout first on the path."""
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
        PYTHONUNBUFFERED="1",
    )


def chatd_options() -> set[str]:
    """Return the long option names `twistd chatd --help` lists."""
    try:
        done = subprocess.run(
            [twistd_path(), "chatd", "--help"],
            env=chatd_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServerError(f"cannot run twistd chatd --help: {error}") from None
    if done.returncode != 0:
        raise ServerError(f"twistd chatd --help failed:\n{done.stdout}{done.stderr}")
    return set(re.findall(r"--([a-z][a-z0-9-]*)", done.stdout))


def chatd_unthrottled_args(options: set[str]) -> list[str]:
    """Arguments that switch off whatever would throttle the benchmark."""
    args = []
    for name, value in CHATD_UNTHROTTLED.items():
        if name in options:
            args += [f"--{name}", value]
    return args


def start_chatd(
    workdir: Path,
    placement: Placement,
    args: list[str],
    kind: str = "chatd",
    irc: bool = False,
    irc_history: bool = False,
) -> Server:
    """Start `twistd -n chatd` on an ephemeral loopback port and wait for its port.

    kind names it in the figures: chatd, chatd-irc, or a variant (chatd-NAME)
    run with other arguments. With irc, the server under test is its IRC
    listener (kind "chatd-irc"), without history unless irc_history.
    """
    command = [
        twistd_path(),
        "-n",
        "--pidfile=",
        "chatd",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        *(chatd_irc_args(args, irc_history) if irc else args),
    ]
    process, log_path = _launch(kind, command, workdir, placement, chatd_env())
    found = _wait_for_log(
        process, log_path, CHATD_IRC_LISTENING if irc else CHATD_LISTENING
    )
    return Server(kind, process, int(found.group(1)), log_path, command)


# -- ngircd ----------------------------------------------------------------------


def ngircd_path() -> str | None:
    """Return the ngircd binary, or None if it is not installed."""
    return shutil.which("ngircd") or next(
        (p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd") if Path(p).exists()),
        None,
    )


def ngircd_version() -> str:
    """Return ngircd's version line, or '' if it is not installed."""
    binary = ngircd_path()
    if binary is None:
        return ""
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return (done.stdout.splitlines() or [""])[0]


def start_ngircd(
    workdir: Path, placement: Placement, oper: tuple[str, str] = ("bench", "bench")
) -> Server:
    """Write a loopback-only ngircd.conf and run `ngircd -n -f` with it."""
    binary = ngircd_path()
    if binary is None:
        raise ServerError(
            "ngircd is not installed: on Debian, `apt-get install -y ngircd`; "
            "or run the benchmark with --server chatd"
        )
    port = free_port()
    conf = workdir / "ngircd.conf"
    conf.write_text(
        NGIRCD_CONF.format(port=port, oper_name=oper[0], oper_password=oper[1])
    )
    command = [binary, "--nodaemon", "--config", str(conf)]
    process, log_path = _launch("ngircd", command, workdir, placement, dict(os.environ))
    pattern = re.compile(rf"Now listening on \[127\.0\.0\.1\]:{port}\b")
    _wait_for_log(process, log_path, pattern)
    return Server("ngircd", process, port, log_path, command)
