"""What --metrics costs: fanout per server CPU-second, variants interleaved run by run.

    python -m bench.overhead --rounds 7 --size 500
    python -m bench.overhead --baseline /tmp/chatd-main   # also a checkout without

Each round runs `python -m bench fanout --server chatd --runs 1` once per
variant, in turn, so that a change in the machine's load falls on all of
them alike; the summary gives each variant's median and range of
deliveries per server CPU-second, and its median ratio to `off`:

    off       this checkout, no --metrics
    on        --metrics=tcp:0:interface=127.0.0.1 (nobody scrapes it)
    scraped   --metrics on a fixed port, scraped every --scrape-every seconds
              by this process during the run (Prometheus' default is 15 s)
    baseline  with --baseline DIR: that checkout's chatd (say, main before
              the counters), no --metrics; what the counters themselves cost

The machine may be busy with other work: read the ranges, not just medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_PORT = 19111


def _scraper(port: int, every: float, stop: threading.Event, counts: list[int]) -> None:
    """Fetch /metrics every `every` seconds until stop is set."""
    while not stop.wait(every):
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/metrics", timeout=5
            ) as answer:
                answer.read()
            counts[0] += 1
        except OSError:
            pass  # the server is not up yet, or already gone


def run_variant(
    root: Path, size: int, seconds: float, chatd_args: list[str], scrape: float
) -> float | None:
    """Run one fanout of size members; return deliveries per server CPU-second."""
    with tempfile.TemporaryDirectory(prefix="chatd-overhead-") as tmp:
        out = Path(tmp) / "run.json"
        command = [
            sys.executable,
            "-m",
            "bench",
            "fanout",
            "--server",
            "chatd",
            "--runs",
            "1",
            "--fanout-sizes",
            str(size),
            "--fanout-seconds",
            str(seconds),
            "--json",
            str(out),
            "--markdown",
            str(Path(tmp) / "run.md"),
            *[f"--chatd-arg={arg}" for arg in chatd_args],
        ]
        stop = threading.Event()
        counts = [0]
        scraper = None
        if scrape:
            scraper = threading.Thread(
                target=_scraper, args=(SCRAPE_PORT, scrape, stop, counts), daemon=True
            )
            scraper.start()
        try:
            subprocess.run(
                command,
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=600,
                check=False,
            )
        finally:
            stop.set()
            if scraper is not None:
                scraper.join(timeout=10)
        if not out.exists():
            return None
        runs = json.loads(out.read_text())["runs"]
        if not runs:
            return None
        value = runs[0]["figures"].get("deliveries_per_cpu_s")
        return float(value) if isinstance(value, int | float) else None


def main(argv: list[str]) -> int:
    """Run the rounds and print the summary; return the exit status."""
    p = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--size", type=int, default=500, help="fanout room size N")
    p.add_argument("--seconds", type=float, default=5.0, help="sending time per run")
    p.add_argument("--scrape-every", type=float, default=1.0)
    p.add_argument("--baseline", type=Path, default=None, help="another checkout")
    p.add_argument("--json", type=Path, default=None, help="write every figure here")
    p.add_argument(
        "--variants",
        default="off,on,scraped,baseline",
        help="which to run, comma separated (off is always run)",
    )
    args = p.parse_args(argv)
    variants: dict[str, tuple[Path, list[str], float]] = {
        "off": (ROOT, [], 0.0),
        "on": (ROOT, ["--metrics=tcp:0:interface=127.0.0.1"], 0.0),
        "scraped": (
            ROOT,
            [f"--metrics=tcp:{SCRAPE_PORT}:interface=127.0.0.1"],
            args.scrape_every,
        ),
    }
    if args.baseline is not None:
        variants["baseline"] = (args.baseline.resolve(), [], 0.0)
    wanted = {"off", *args.variants.split(",")}
    variants = {name: how for name, how in variants.items() if name in wanted}
    figures: dict[str, list[float]] = {name: [] for name in variants}
    rounds: list[dict[str, float]] = []  # each round's figures, for paired ratios
    started = time.monotonic()
    for number in range(1, args.rounds + 1):
        this_round: dict[str, float] = {}
        rounds.append(this_round)
        # Rotate the order each round: no variant always runs first.
        names = list(variants)
        shift = (number - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            root, chatd_args, scrape = variants[name]
            value = run_variant(root, args.size, args.seconds, chatd_args, scrape)
            shown = f"{value:,.0f}" if value is not None else "FAILED"
            print(f"round {number} {name:<9} {shown} deliveries/CPU-s", flush=True)
            if value is not None:
                figures[name].append(value)
                this_round[name] = value
    print(f"\n{args.rounds} rounds, N={args.size}, {time.monotonic() - started:.0f} s")
    off = statistics.median(figures["off"]) if figures["off"] else None
    for name, values in figures.items():
        if not values:
            print(f"{name:<9} no figures")
            continue
        middle = statistics.median(values)
        ratio = f"{middle / off:.3f} of off" if off else ""
        print(
            f"{name:<9} median {middle:,.0f}  range {min(values):,.0f}"
            f"-{max(values):,.0f}  ({len(values)} runs)  {ratio}"
        )
    print("\npaired: each round's figure over that round's off (load shifts cancel)")
    for name in variants:
        ratios = [r[name] / r["off"] for r in rounds if name in r and "off" in r]
        if name != "off" and ratios:
            print(
                f"{name:<9} median {statistics.median(ratios):.3f}  range "
                f"{min(ratios):.3f}-{max(ratios):.3f}  ({len(ratios)} rounds)"
            )
    if args.json is not None:
        document = {"size": args.size, "figures": figures, "rounds": rounds}
        args.json.write_text(json.dumps(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
