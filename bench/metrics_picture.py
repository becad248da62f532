"""docs/metrics.png: the dashboard's main panels, drawn from a real benchmark run.

    python -m bench.metrics_picture --out docs/metrics.png

Runs the load benchmark (fanout, chatter, idle: bench/cli.py) and then a few
hostile clients (floods, over-long lines, a full input queue: bench/hostile.py)
against chatd with --metrics on a fixed loopback port, scrapes /metrics every
second as Prometheus would (each benchmark run starts a fresh chatd, so the
series restart), keeps the scrapes as JSON beside the picture, and draws the
first panels of the Grafana dashboard (bench/dashboard.py) from them with the
same queries. --replay FILE draws again from kept scrapes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.dashboard import PANELS, Samples, Scrape, evaluate

ROOT = Path(__file__).resolve().parent.parent
PORT = 19121
METRICS_ARG = f"--chatd-arg=--metrics=tcp:{PORT}:interface=127.0.0.1"
SHOWN = 8  # the dashboard's first panels: what an operator looks at first
GAP = 2.5  # seconds without a scrape that break a line (chatd restarted)


def scrape_once(port: int) -> Samples | None:
    """One scrape of /metrics, or None when nothing answers."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics", timeout=2
        ) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Scraper(threading.Thread):
    """Scrapes every `every` seconds until stopped; keeps (seconds, samples)."""

    def __init__(self, port: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.every = every
        self.started = time.monotonic()
        self.scrapes: list[Scrape] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            samples = scrape_once(self.port)
            if samples is not None:
                self.scrapes.append((time.monotonic() - self.started, samples))


def run_load(scraper: Scraper, quick: bool) -> list[tuple[float, str]]:
    """Run the benchmark phases; return when each started, and its name."""
    fanout = "100,300" if quick else "200,1000"
    idle = "200" if quick else "2000"
    phases = [
        (
            "fanout, chatter, idle",
            [
                sys.executable,
                "-m",
                "bench",
                "fanout",
                "chatter",
                "idle",
                "--server",
                "chatd",
                "--runs",
                "1",
                "--fanout-sizes",
                fanout,
                "--idle-sizes",
                idle,
                "--fanout-seconds",
                "3" if quick else "8",
                *(["--quick"] if quick else []),
                METRICS_ARG,
                # The run's own tables are not kept: the scrapes are the result.
                "--json",
                str(Path(tempfile.gettempdir()) / "chatd-metrics-picture-bench.json"),
            ],
        ),
        (
            "hostile clients",
            [
                sys.executable,
                "bench/hostile.py",
                *(["--quick"] if quick else []),
                "--runs",
                "1",
                "--calm",
                "1000",
                "burst",
                "toolong",
                "empty",
                "recvq",
                "backlog",
                METRICS_ARG,
            ],
        ),
    ]
    starts = []
    for name, command in phases:
        starts.append((time.monotonic() - scraper.started, name))
        print(f"{name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, cwd=ROOT, timeout=3600, check=False)
    return starts


def _with_gaps(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """xs and ys with a break (NaN) wherever scrapes are missing (a restart)."""
    xs: list[float] = []
    ys: list[float] = []
    for x, y in points:
        if xs and x - xs[-1] > GAP:
            xs.append(xs[-1])
            ys.append(float("nan"))
        xs.append(x)
        ys.append(y)
    return xs, ys


def draw(scrapes: list[Scrape], phases: list[tuple[float, str]], out: Path) -> None:
    """Draw the dashboard's first panels from scrapes into out (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    columns = 2
    rows = -(-SHOWN // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(12, 2.6 * rows), sharex=True)
    units = {"bytes": "B", "Bps": "B/s", "s": "s", "ops": "/s"}
    for panel, axis in zip(PANELS[:SHOWN], axes.flat, strict=True):
        for query in panel.queries:
            for legend, points in sorted(evaluate(query, scrapes).items()):
                if not any(y for _x, y in points) and len(panel.queries) == 1:
                    continue  # a kind of limit never hit: no line, no legend
                xs, ys = _with_gaps(points)
                axis.plot(xs, ys, "-", linewidth=1.2, label=legend)
        axis.set_title(panel.title, fontsize=10, loc="left")
        axis.yaxis.set_major_formatter(EngFormatter(unit=units.get(panel.unit, "")))
        axis.set_ylim(bottom=0, top=max(axis.get_ylim()[1], 1.0))
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc="upper right")
        for start, _name in phases[1:]:
            axis.axvline(start, color="grey", linewidth=0.8, linestyle="--")
    for axis in axes[-1]:
        axis.set_xlabel("seconds")
    names = "; ".join(f"from {start:.0f} s: {name}" for start, name in phases)
    figure.suptitle(
        f"chatd --metrics, scraped every second during bench runs ({names})",
        fontsize=10,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)


def _samples(rows: list[list[object]]) -> Samples:
    """Samples back from their JSON form [name, [[label, value]...], value]."""
    samples: Samples = {}
    for name, labels, value in rows:
        assert isinstance(name, str) and isinstance(labels, list)
        assert isinstance(value, int | float)
        samples[name, tuple((str(k), str(v)) for k, v in labels)] = float(value)
    return samples


def main(argv: list[str]) -> int:
    """Run the load (or replay kept scrapes) and draw the picture."""
    p = argparse.ArgumentParser(prog="python -m bench.metrics_picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "metrics.png")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    p.add_argument("--replay", type=Path, default=None, help="kept scrapes (JSON)")
    args = p.parse_args(argv)
    scrapes: list[Scrape]
    kept = ROOT / "bench" / "results" / "metrics-picture.json"
    if args.replay is not None:
        document = json.loads(args.replay.read_text())
        scrapes = [(when, _samples(rows)) for when, rows in document["scrapes"]]
        phases = [(start, name) for start, name in document["phases"]]
    else:
        scraper = Scraper(PORT)
        scraper.start()
        try:
            phases = run_load(scraper, args.quick)
        finally:
            scraper.done.set()
            scraper.join(timeout=10)
        scrapes = scraper.scrapes
        rows = [
            [when, [[name, labels, value] for (name, labels), value in samples.items()]]
            for when, samples in scrapes
        ]
        kept.write_text(json.dumps({"phases": phases, "scrapes": rows}))
        print(f"{len(scrapes)} scrapes kept in {kept}")
    draw(scrapes, phases, args.out)
    print(f"picture: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
