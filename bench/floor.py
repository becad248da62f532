"""Chatter beside a floor: chatd, the least a Twisted server can do, and InspIRCd.

    python -m bench.floor [--runs 3] [--seconds 10] [--servers chatd,floor,...]

Runs the benchmark's chatter scenario (100 rooms of 10, each member one line a
second; bench/scenarios.py) against each server in turn, pinned as
`python -m bench` pins them, and prints per run and as medians: the server's
CPU (user and system apart, from /proc), its main thread's and other threads'
share, and the latency p50/p99. The servers:

- chatd: `twistd -n chatd` with the benchmark's unthrottled options (history
  kept in SQLite, as by default); chatd-nohist: the same with --no-history;
- chatd-irc: the same daemon's IRC listener, history kept, with the IRC clients
  InspIRCd gets (nine deliveries a message: IRC does not echo to the sender,
  where the line protocol's MSG does); chatd-irc-nohist: with --no-history;
- floor: bench/floor_server.py, a Twisted server that only splits lines and
  calls send() on each member's socket; floor-tw: the same through
  transport.write;
- inspircd (if installed): as `python -m bench` configures it.

The floor tells what part of chatd's chatter CPU is Python and Twisted
themselves (the reactor, a read and ten sends a message) and what part is
chatd's own work, on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from bench.cli import _dialect
from bench.inspircd import inspircd_path, start_inspircd
from bench.loadgen import ChatdDialect, Dialect
from bench.scenarios import Figures, Settings, chatter
from bench.servers import (
    CLOCK_TICKS,
    Placement,
    Server,
    _launch,
    _wait_for_log,
    chatd_options,
    chatd_unthrottled_args,
    plan_placement,
    raise_nofile,
    start_chatd,
)

KINDS = (
    "chatd",
    "chatd-nohist",
    "chatd-irc",
    "chatd-irc-nohist",
    "floor",
    "floor-tw",
    "inspircd",
)
DEFAULT_KINDS = ("chatd", "chatd-nohist", "floor", "floor-tw", "inspircd")
LISTENING = re.compile(r"listening on (\d+)")


def start_floor(workdir: Path, placement: Placement, transport_write: bool) -> Server:
    """Start bench/floor_server.py on an ephemeral port; wait for it to listen."""
    kind = "floor-tw" if transport_write else "floor"
    command = [sys.executable, "-m", "bench.floor_server"]
    command += ["--transport-write"] if transport_write else []
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root, PYTHONUNBUFFERED="1")
    process, log_path = _launch(kind, command, workdir, placement, env)
    found = _wait_for_log(process, log_path, LISTENING)
    return Server(kind, process, int(found.group(1)), log_path, command)


def thread_ticks(pid: int) -> dict[str, tuple[int, int]]:
    """Per thread of pid: (user, system) clock ticks so far."""
    ticks = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue  # the thread ended meanwhile
        fields = data[data.rindex(b")") + 2 :].split()
        ticks[task] = (int(fields[11]), int(fields[12]))
    return ticks


class SplitClock:
    """Wraps a server's cpu_seconds to note per-thread ticks at each reading."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.readings: list[dict[str, tuple[int, int]]] = []
        self.total = server.cpu_seconds

    def __call__(self) -> float:
        self.readings.append(thread_ticks(self.server.pid))
        return self.total()

    def split(self, wall: float) -> dict[str, float]:
        """user %, system %, main thread %, other threads % over the run."""
        first, last = self.readings[0], self.readings[-1]
        main = str(self.server.pid)

        def spent(task: str) -> tuple[int, int]:
            u0, s0 = first.get(task, (0, 0))
            u1, s1 = last[task]
            return u1 - u0, s1 - s0

        user = sum(spent(t)[0] for t in last)
        system = sum(spent(t)[1] for t in last)
        main_ticks = sum(spent(main)) if main in last else 0
        scale = 100 / CLOCK_TICKS / wall
        return {
            "user_pct": round(user * scale, 1),
            "sys_pct": round(system * scale, 1),
            "main_thread_pct": round(main_ticks * scale, 1),
            "other_threads_pct": round((user + system - main_ticks) * scale, 1),
        }


def one_run(
    kind: str, workdir: Path, placement: Placement, settings: Settings
) -> Figures:
    """One chatter run against a fresh server of kind."""
    workdir.mkdir(parents=True)
    if kind.startswith("chatd"):
        args = chatd_unthrottled_args(chatd_options())
        args += ["--no-history"] if kind.endswith("-nohist") else []
        irc = kind.startswith("chatd-irc")
        server = start_chatd(workdir, placement, args, kind, irc=irc, irc_history=irc)
        dialect: Dialect = _dialect("chatd-irc") if irc else ChatdDialect()
    elif kind == "inspircd":
        server = start_inspircd(workdir, placement)
        dialect = _dialect("inspircd")
    else:
        server = start_floor(workdir, placement, kind == "floor-tw")
        dialect = ChatdDialect()
    try:
        clock = SplitClock(server)
        server.cpu_seconds = clock  # type: ignore[method-assign]
        figures = chatter(server, dialect, 0, settings)
        if "error" not in figures and len(clock.readings) >= 2:
            figures.update(clock.split(float(figures["wall_s"])))  # type: ignore[arg-type]
        return figures
    finally:
        server.process.terminate()
        try:
            server.process.wait(30)
        except Exception:
            server.process.kill()


def median_of(runs: list[Figures], name: str) -> float | None:
    """The median of a figure over the runs that have it."""
    values = [float(r[name]) for r in runs if r.get(name) is not None]  # type: ignore[arg-type]
    return statistics.median(values) if values else None


def plot(path: Path, results: dict[str, list[Figures]], seconds: float) -> str:
    """Stacked bars of the medians' user and system CPU per server; a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot"
    kinds = [k for k, runs in results.items() if median_of(runs, "user_pct")]
    user = [median_of(results[k], "user_pct") or 0.0 for k in kinds]
    system = [median_of(results[k], "sys_pct") or 0.0 for k in kinds]
    figure, axes = plt.subplots(figsize=(7, 3.6))
    axes.bar(kinds, system, label="system (kernel: the read and the sends)")
    axes.bar(kinds, user, bottom=system, label="user (the server's own code)")
    axes.set_ylabel("% of one core")
    axes.set_ylim(0, 1.4 * max(u + k for u, k in zip(user, system, strict=True)))
    axes.set_title(f"chatter: each member a line a second, {seconds:g} s: server CPU")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return f"plot: {path}"


SHOWN = ("server_cpu_pct", "user_pct", "sys_pct", "main_thread_pct", "p50_ms", "p99_ms")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_KINDS),
        help=f"a comma-separated list of {', '.join(KINDS)}",
    )
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument(
        "--no-pin", action="store_true", help="leave both processes on any core"
    )
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument(
        "--plot", type=Path, help="save the medians' user/system CPU here (PNG)"
    )
    args = parser.parse_args(argv)
    kinds = [k for k in args.servers.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        print(f"unknown servers {unknown}; known: {', '.join(KINDS)}")
        return 2
    if "inspircd" in kinds and inspircd_path() is None:
        print("inspircd is not installed: left out")
        kinds.remove("inspircd")
    raise_nofile()
    placement = plan_placement(not args.no_pin, None)
    settings = Settings(
        chatter_seconds=args.seconds,
        chatter_rooms=args.rooms,
        chatter_members=args.members,
    )
    results: dict[str, list[Figures]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="chatd-floor-") as tmp:
        for number in range(args.runs):
            for kind in kinds:
                figures = one_run(
                    kind, Path(tmp) / f"{kind}-{number}", placement, settings
                )
                results[kind].append(figures)
                shown = " ".join(f"{name}={figures.get(name)}" for name in SHOWN)
                print(f"run {number + 1} {kind:<13} {shown} lost={figures.get('lost')}")
                sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.plot:
        print(plot(args.plot, results, args.seconds))
    print(
        f"\nchatter {settings.chatter_rooms}x{settings.chatter_members}, "
        f"{args.seconds:g} s, medians of {args.runs}:"
    )
    print(f"  {'server':<13} " + " ".join(f"{name:>16}" for name in SHOWN))
    for kind, runs in results.items():
        cells = []
        for name in SHOWN:
            value = median_of(runs, name)
            cells.append(f"{value:16.2f}" if value is not None else "-".rjust(16))
        print(f"  {kind:<13} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
