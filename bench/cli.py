"""The benchmark's command line: which scenarios, servers, sizes and outputs."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from types import FrameType

from bench.hotspots import summarise
from bench.inspircd import (
    inspircd_path,
    inspircd_settings,
    inspircd_version,
    start_inspircd,
)
from bench.loadgen import ChatdDialect, Dialect, IrcDialect
from bench.report import (
    Median,
    Run,
    median_lines,
    medians,
    plot,
    run_line,
    side_by_side,
    write_json,
)
from bench.scenarios import SCENARIOS, WELCOME_WINDOW, Figures, Settings
from bench.servers import (
    ROOT,
    Placement,
    Server,
    ServerError,
    chatd_irc_args,
    chatd_options,
    chatd_unthrottled_args,
    ngircd_path,
    ngircd_version,
    plan_placement,
    raise_nofile,
    start_chatd,
    start_ngircd,
)

RESULTS = ROOT / "bench" / "results"
QUICK_FANOUT, QUICK_IDLE = [10, 30], [50]  # --quick: sizes for a smoke test
QUICK_CHATTER = (5, 4, 2.0)  # rooms, members, seconds
# What --server names, in the order the servers take turns.
SERVER_CHOICES = {
    "chatd": ["chatd"],
    "chatd-irc": ["chatd-irc"],
    "ngircd": ["ngircd"],
    "inspircd": ["inspircd"],
    "both": ["chatd", "ngircd"],
    "all": ["chatd", "chatd-irc", "ngircd", "inspircd"],
}
# The IRC servers chatd is compared with, and how to tell one is installed.
PEERS = {"ngircd": ngircd_path, "inspircd": inspircd_path}
GENERATOR_BUSY = 90.0  # % of its core: above this the generator may be the limit


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("sizes must be 2 or more, comma separated")
    return sizes


def _variant(text: str) -> tuple[str, list[str]]:
    name, sep, args = text.partition("=")
    if not sep or not name or not name.replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(
            f"a variant is NAME=ARGS, NAME in letters, digits and '-': {text!r}"
        )
    return f"chatd-{name}", shlex.split(args)


def parser() -> argparse.ArgumentParser:
    """The argument parser (also documents every option in --help)."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load benchmark for chatd, side by side with ngircd and "
        "inspircd. Starts each server itself on an ephemeral 127.0.0.1 port, pins it "
        "to one core and this load generator to another, and prints one line per "
        "run, the medians and chatd/ngircd and chatd/inspircd ratios. chatd is "
        "measured through its line protocol (chatd) or its IRC listener (chatd-irc, "
        "the same IRC clients as against ngircd and inspircd). See "
        "docs/performance.md.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        choices=[*SCENARIOS, []],
        help="scenarios to run: fanout, chatter, idle (default: all three)",
        metavar="scenario",
    )
    p.add_argument(
        "--server",
        choices=[*SERVER_CHOICES],
        default="both",
        help="chatd (line protocol), chatd-irc (its IRC listener, --no-history), "
        "ngircd, inspircd; both: chatd and ngircd; all: the four, those of ngircd "
        "and inspircd that are installed (default both)",
    )
    p.add_argument("--runs", type=int, default=None, help="runs of each (default 3)")
    p.add_argument(
        "--fanout-sizes",
        type=_sizes,
        default=None,
        help="room sizes N for fanout (default 100,500,1000)",
    )
    p.add_argument(
        "--idle-sizes",
        type=_sizes,
        default=None,
        help="connection counts K for idle (default 1000,5000,10000)",
    )
    p.add_argument("--chatter-rooms", type=int, default=None, help="default 100")
    p.add_argument("--chatter-members", type=int, default=None, help="default 10")
    p.add_argument(
        "--chatter-seconds", type=float, default=None, help="default 10 seconds"
    )
    p.add_argument(
        "--fanout-seconds", type=float, default=5.0, help="sending time per run"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="fanout: messages in flight, not yet received by every timed "
        "receiver (default: 100000/N, at least 256)",
    )
    p.add_argument("--text-bytes", type=int, default=48, help="length of a message")
    p.add_argument(
        "--reg-window",
        type=int,
        default=8,
        help="registrations (JOINs) in flight at once (default 8; ngircd's accept "
        "backlog is 10)",
    )
    p.add_argument(
        "--welcome-window",
        type=int,
        default=WELCOME_WINDOW,
        help="inspircd: clients waiting at once for the welcome it sends on a "
        f"once-a-second tick, before their JOIN (default {WELCOME_WINDOW})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one run: a smoke test of the tool, not a measurement",
    )
    p.add_argument(
        "--chatd-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for twistd chatd, repeatable; use the = form: "
        "--chatd-arg=--sendq=2000000",
    )
    p.add_argument(
        "--chatd-variant",
        action="append",
        default=[],
        type=_variant,
        metavar="NAME=ARGS",
        help="run chatd once more per run, as server chatd-NAME, with these extra "
        "arguments (after --chatd-arg's), e.g. --chatd-variant "
        "'nohist=--no-history': history on and off in one run, side by side, "
        "ratios from the same runs; repeatable",
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin server and generator"
    )
    p.add_argument(
        "--server-nofile",
        type=int,
        default=None,
        help="soft open-file limit the servers start with (default: this "
        "shell's); e.g. 1024 to see chatd raise its own",
    )
    p.add_argument("--json", type=Path, default=None, help="where to write JSON")
    p.add_argument(
        "--markdown", type=Path, default=None, help="where to write the tables"
    )
    p.add_argument(
        "--plot", type=Path, default=None, help="save the fanout plot here (PNG)"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the runs, one more fanout on each chatd (line, IRC) at the "
        "largest N under py-spy; prints where the server's time goes",
    )
    return p


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops servers


def _git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _start(
    kind: str, workdir: Path, placement: Placement, chatd_args: list[str]
) -> Server:
    if is_chatd(kind):
        return start_chatd(
            workdir, placement, chatd_args, kind, irc=kind == "chatd-irc"
        )
    if kind == "inspircd":
        return start_inspircd(workdir, placement)
    return start_ngircd(workdir, placement)


def is_chatd(kind: str) -> bool:
    """chatd, its IRC listener (chatd-irc) or one of its variants (chatd-NAME)."""
    return kind == "chatd" or kind.startswith("chatd-")


def _dialect(kind: str) -> Dialect:
    if kind == "chatd-irc" or not is_chatd(kind):  # IRC clients
        return IrcDialect(oper=kind == "ngircd", joins_after_welcome=kind == "inspircd")
    return ChatdDialect()  # chatd and its variants: the line protocol


def settings_for(kind: str, settings: Settings) -> Settings:
    """The settings of kind's runs (InspIRCd's fanout window has a cap)."""
    return inspircd_settings(settings) if kind == "inspircd" else settings


def missing_peers(servers: list[str]) -> list[str]:
    """The servers of the list that are IRC servers not installed here."""
    return [kind for kind in servers if kind in PEERS and PEERS[kind]() is None]


def run_one(
    kind: str,
    scenario: str,
    size: int,
    settings: Settings,
    workdir: Path,
    placement: Placement,
    chatd_args: list[str],
) -> Figures:
    """Start a fresh server, run one scenario against it, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        server = _start(kind, workdir, placement, chatd_args)
    except ServerError as error:
        return {"error": str(error)}
    try:
        figures = SCENARIOS[scenario](server, _dialect(kind), size, settings)
    except (OSError, ValueError, RuntimeError) as error:
        figures = {"error": f"{type(error).__name__}: {error}"}
    finally:
        server.stop()
    if "error" in figures:
        figures["server_log_tail"] = server.log_tail(8)
    return figures


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit status."""
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    scenarios = list(dict.fromkeys(args.scenarios or list(SCENARIOS)))
    rooms, members, seconds = 100, 10, 10.0
    fanout_sizes, idle_sizes, runs = [100, 500, 1000], [1000, 5000, 10000], 3
    if args.quick:
        fanout_sizes, idle_sizes, runs = QUICK_FANOUT, QUICK_IDLE, 1
        rooms, members, seconds = QUICK_CHATTER
        args.fanout_seconds = min(args.fanout_seconds, 1.0)
    settings = Settings(
        window=args.window,
        fanout_seconds=args.fanout_seconds,
        text_bytes=args.text_bytes,
        chatter_rooms=args.chatter_rooms or rooms,
        chatter_members=args.chatter_members or members,
        chatter_seconds=args.chatter_seconds or seconds,
        reg_window=args.reg_window,
        welcome_window=args.welcome_window,
    )
    sizes = {
        "fanout": args.fanout_sizes or fanout_sizes,
        "idle": args.idle_sizes or idle_sizes,
        "chatter": [settings.chatter_rooms * settings.chatter_members],
    }
    runs = args.runs or runs
    servers = list(SERVER_CHOICES[args.server])
    variants: dict[str, list[str]] = dict(args.chatd_variant)
    if "chatd-irc" in variants:
        print("--chatd-variant irc=...: chatd-irc is the IRC listener's name")
        return 2
    if variants:  # right after chatd (line-protocol variants of it)
        at = servers.index("chatd") + 1 if "chatd" in servers else 0
        servers[at:at] = list(variants)
    chatd_kinds = [kind for kind in servers if is_chatd(kind)]
    missing = missing_peers(servers)
    for kind in missing:
        print(
            f"{kind} is not installed, so this run leaves it out (on Debian: "
            f"`apt-get install -y {kind}`; the benchmark writes its config and "
            "starts it itself)."
        )
    if missing:
        servers = [kind for kind in servers if kind not in missing]
        if not servers:
            return 2
        print(f"Going on with {' and '.join(servers)}.\n")

    nofile = raise_nofile()
    placement = plan_placement(not args.no_pin, args.server_nofile)
    chatd_args: list[str] = []
    server_args: dict[str, list[str]] = {}
    if chatd_kinds:
        try:
            chatd_args = chatd_unthrottled_args(chatd_options()) + args.chatd_arg
        except ServerError as error:
            print(error)
            return 2
        server_args = {"chatd": chatd_args, "chatd-irc": chatd_args}
        server_args |= {kind: chatd_args + more for kind, more in variants.items()}
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    json_path = args.json or RESULTS / f"bench-{stamp}.json"
    markdown_path = args.markdown or json_path.with_suffix(".md")
    meta: dict[str, object] = {
        "when_utc": stamp,
        "command": "python -m bench " + " ".join(argv),
        "chatd_commit": _git_describe() if chatd_kinds else None,
        "chatd_args": chatd_args,
        "chatd_args_text": " ".join(chatd_args),
        "chatd_irc_args_text": " ".join(chatd_irc_args(chatd_args))
        if "chatd-irc" in servers
        else None,
        "chatd_variants": {kind: " ".join(more) for kind, more in variants.items()},
        "ngircd": ngircd_version() if "ngircd" in servers else None,
        "inspircd": inspircd_version() if "inspircd" in servers else None,
        "python": platform.python_version(),
        "twisted": _version("twisted"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}",
        "placement": placement.describe(),
        "generator_nofile": f"soft {nofile[0]} raised to hard {nofile[1]}",
        "server_nofile": args.server_nofile or nofile[0],
        "settings": {k: str(v) for k, v in settings.__dict__.items()},
        "sizes": sizes,
        "runs": runs,
    }
    print(f"chatd benchmark: {', '.join(scenarios)} against {' and '.join(servers)}")
    print(f"  {meta['placement']}; generator open files: {meta['generator_nofile']}")
    if "chatd" in servers:
        print(f"  chatd {meta['chatd_commit']}: twistd chatd {' '.join(chatd_args)}")
    for kind, more in variants.items():
        print(f"  {kind}: the same with {' '.join(more)}")
    if "chatd-irc" in servers:
        print(
            f"  chatd-irc {meta['chatd_commit']}: twistd chatd "
            f"{meta['chatd_irc_args_text']} (IRC clients on the --irc port)"
        )
    if "ngircd" in servers:
        print(f"  {meta['ngircd']}")
    if "inspircd" in servers:
        print(
            f"  {meta['inspircd']} (its clients JOIN after the welcome it sends "
            f"once a second, {settings.welcome_window} waiting at once)"
        )
    print()

    results: list[Run] = []
    started = time.monotonic()
    interrupted = ""
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="chatd-bench-") as tmp:
        try:
            for scenario, size, number, kind in _plan(scenarios, sizes, runs, servers):
                label = (
                    f"{settings.chatter_rooms}x{settings.chatter_members}"
                    if scenario == "chatter"
                    else str(size)
                )
                workdir = Path(tmp) / f"{scenario}-{size}-{number}-{kind}"
                figures = run_one(
                    kind,
                    scenario,
                    size,
                    settings_for(kind, settings),
                    workdir,
                    placement,
                    server_args.get(kind, []),
                )
                run = Run(scenario, kind, size, label, number, figures)
                results.append(run)
                print(run_line(run, runs), flush=True)
                _warn(figures)
                # Saved after every run: a long run that is stopped keeps its data.
                write_json(json_path, meta, results, medians(results))
            if args.profile and chatd_kinds and "fanout" in scenarios:
                profile_text = "\n\n".join(
                    _profile(
                        kind,
                        max(sizes["fanout"]),
                        settings,
                        Path(tmp),
                        placement,
                        server_args[kind],
                    )
                    for kind in chatd_kinds
                )
        except (KeyboardInterrupt, SystemExit) as stop:
            interrupted = f"stopped ({type(stop).__name__}) after {len(results)} runs"
            print(f"\n{interrupted}; the figures below are from those runs")
            meta["interrupted"] = interrupted

    rows = medians(results)
    if chatd_kinds and _git_describe() != meta["chatd_commit"]:
        meta["chatd_commit_after"] = _git_describe()
        print(
            f"warning: the checkout changed during the runs "
            f"({meta['chatd_commit']} -> {meta['chatd_commit_after']})"
        )
    print(f"\nall runs took {time.monotonic() - started:.0f} s\n")
    print("\n".join(median_lines(rows)))
    print()
    print(side_by_side(rows, markdown=False))
    meta["profile"] = profile_text or None
    write_json(json_path, meta, results, rows)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(_markdown(meta, rows, profile_text))
    print(f"JSON: {json_path}\nmarkdown tables: {markdown_path}")
    if args.plot:
        caption = f"{placement.describe()}"
        print(plot(args.plot, rows, caption))
    if profile_text:
        print("\nwhere chatd's time goes (py-spy):\n" + profile_text)
    if interrupted:
        return 130
    return 1 if any(row.failed for row in rows) else 0


def _plan(
    scenarios: list[str], sizes: dict[str, list[int]], runs: int, servers: list[str]
) -> list[tuple[str, int, int, str]]:
    """Every run in order: by scenario and size, then run number, then server.

    The servers take turns run by run, so a change in the machine's load between
    runs falls on both.
    """
    return [
        (scenario, size, number, kind)
        for scenario in scenarios
        for size in sizes[scenario]
        for number in range(1, runs + 1)
        for kind in servers
    ]


def _warn(figures: Figures) -> None:
    gen = figures.get("gen_cpu_pct")
    if isinstance(gen, int | float) and gen > GENERATOR_BUSY:
        print(
            f"  note: the load generator used {gen:.0f} % of its core; the server "
            "may not have been the bottleneck in this run"
        )
    tail = figures.get("server_log_tail")
    if isinstance(tail, str) and tail:
        print("  server log ends with:\n    " + tail.replace("\n", "\n    "))
    notes = figures.get("server_notes")
    if isinstance(notes, str):
        print(f"  server log says: {notes}")


def _profile(
    kind: str,
    size: int,
    settings: Settings,
    tmp: Path,
    placement: Placement,
    chatd_args: list[str],
) -> str:
    raw = tmp / f"profile-{kind}.txt"
    settings = Settings(**{**settings.__dict__, "profile": raw})
    print(f"\nprofiling {kind} with py-spy: fanout N={size} (not a measured run)")
    figures = run_one(
        kind, "fanout", size, settings, tmp / f"profile-{kind}", placement, chatd_args
    )
    print(run_line(Run("fanout", kind, size, str(size), 1, figures), 1))
    if not raw.exists():
        return ""
    return f"{kind}, fanout N={size}:\n" + summarise(raw, str(ROOT))


def _markdown(meta: dict[str, object], rows: list[Median], profile: str) -> str:
    irc = meta.get("chatd_irc_args_text")
    irc_text = f"; chatd-irc: `twistd chatd {irc}`" if irc else ""
    variants = meta.get("chatd_variants") or {}
    also = "".join(
        f", {kind}: the same with `{more}`"
        for kind, more in (variants.items() if isinstance(variants, dict) else [])
    )
    peers = "".join(
        f", {meta[kind]}" for kind in PEERS if isinstance(meta.get(kind), str)
    )
    lines = [
        f"Run {meta['when_utc']} UTC: `{meta['command']}`",
        "",
        f"chatd {meta['chatd_commit']} (`twistd chatd {meta['chatd_args_text']}`"
        f"{also}{irc_text}){peers}; Python {meta['python']}, Twisted "
        f"{meta['twisted']}; {meta['machine']}; {meta['placement']}.",
        "",
        side_by_side(rows, markdown=True),
    ]
    if profile:
        lines += ["", "```", profile, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
