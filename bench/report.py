"""Turning runs into lines, medians, side-by-side tables, JSON and a plot."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.scenarios import Figures


@dataclass(frozen=True)
class Column:
    """One figure in the tables: its key, a heading and how to show a value."""

    key: str
    heading: str
    unit: str = ""
    digits: int = 0
    ratio: bool = True  # is chatd/ngircd (or chatd-irc/inspircd...) meaningful?

    def show(self, value: float | int | str | None) -> str:
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        if self.unit == "M":
            return f"{value / 1e6:.{max(self.digits, 2)}f} M"
        if self.digits:
            text = f"{value:,.{self.digits}f}"
        else:
            text = f"{round(value):,}"
        return f"{text}{self.unit}"


COLUMNS: dict[str, list[Column]] = {
    "fanout": [
        Column("deliveries_per_s", "deliveries/s", "M"),
        Column("deliveries_per_cpu_s", "per server CPU-s", "M"),
        Column("msgs_per_s", "msgs/s"),
        Column("server_cpu_pct", "server CPU", " %"),
        Column("gen_cpu_pct", "gen CPU", " %"),
        Column("p50_ms", "p50", " ms", 2),
        Column("p99_ms", "p99", " ms", 2),
        Column("lost", "lost", ratio=False),
    ],
    "chatter": [
        Column("deliveries_per_s", "deliveries/s"),
        Column("p50_ms", "p50", " ms", 3),
        Column("p99_ms", "p99", " ms", 3),
        Column("max_ms", "max", " ms", 2),
        Column("server_cpu_pct", "server CPU", " %", 1),
        Column("gen_cpu_pct", "gen CPU", " %", 1),
        Column("lost", "lost", ratio=False),
    ],
    "idle": [
        Column("rss_per_conn_kib", "RSS/conn", " KiB", 2),
        Column("regs_per_s", "regs/s"),
        Column("held", "held", ratio=False),
        Column("server_cpu_pct", "server CPU", " %"),
        Column("gen_cpu_pct", "gen CPU", " %"),
        Column("listen_overflows", "accept-queue drops", ratio=False),
    ],
}
SIZE_NAMES = {"fanout": "N", "chatter": "rooms x members", "idle": "K"}
PEERS = ("ngircd", "inspircd")  # every chatd is compared with each of them
IRC_LISTENER = "chatd-irc"  # chatd's IRC door, not a variant of its arguments


@dataclass
class Run:
    """One run of one scenario against one server."""

    scenario: str
    server: str
    size: int
    label: str  # how the size is shown: 1000, or 100x10 for chatter
    run: int
    figures: Figures


@dataclass
class Ratio:
    """One server's medians over another's, of one scenario and size."""

    scenario: str
    size: int
    label: str
    pair: str  # "chatd/ngircd", "chatd-irc/inspircd", "chatd/chatd-nohist"...
    figures: dict[str, float | None]


@dataclass
class Median:
    """The median of the runs of one scenario, server and size."""

    scenario: str
    server: str
    size: int
    label: str
    runs: int
    failed: int
    figures: dict[str, float | None] = field(default_factory=dict)
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)


def run_line(run: Run, runs: int) -> str:
    """One line of figures for one run."""
    head = (
        f"{run.scenario:<7} {run.server:<12} {SIZE_NAMES[run.scenario]}={run.label:<6}"
        f" run {run.run}/{runs}:"
    )
    figures = run.figures
    if "error" in figures and not any(c.key in figures for c in COLUMNS[run.scenario]):
        return f"{head} FAILED: {figures['error']}"
    parts = [
        f"{column.heading} {column.show(figures.get(column.key))}"
        for column in COLUMNS[run.scenario]
    ]
    text = f"{head} " + ", ".join(parts)
    if "error" in figures:
        text += f"  [PROBLEM: {figures['error']}]"
    return text


def medians(runs: Sequence[Run]) -> list[Median]:
    """Median of every numeric figure per scenario, server and size, in run order."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.server, run.size), []).append(run)
    result = []
    for (scenario, server, size), group in groups.items():
        median = Median(
            scenario,
            server,
            size,
            group[0].label,
            len(group),
            sum(1 for r in group if "error" in r.figures),
        )
        keys = {k for r in group for k, v in r.figures.items() if _number(v)}
        for key in sorted(keys):
            values = [
                float(v)
                for r in group
                if isinstance(v := r.figures.get(key), int | float)
            ]
            if values:
                median.figures[key] = statistics.median(values)
                median.spread[key] = (min(values), max(values))
        result.append(median)
    return result


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def median_lines(rows: Iterable[Median]) -> list[str]:
    """One line per scenario, server and size with the medians."""
    lines = []
    for row in rows:
        parts = [
            f"{column.heading} {column.show(row.figures.get(column.key))}"
            for column in COLUMNS[row.scenario]
        ]
        failed = (
            f" ({row.failed} of {row.runs} runs had problems)" if row.failed else ""
        )
        lines.append(
            f"{row.scenario:<7} {row.server:<12} {SIZE_NAMES[row.scenario]}="
            f"{row.label:<6} median of {row.runs}: " + ", ".join(parts) + failed
        )
    return lines


def _servers(rows: Sequence[Median]) -> list[str]:
    """The servers in the figures: chatd, its variants (chatd-NAME), chatd-irc,
    then the peers (ngircd, inspircd) in the order they ran."""
    found = list(dict.fromkeys(row.server for row in rows))
    first = [name for name in ("chatd",) if name in found]
    variants = [name for name in found if _is_variant(name)]
    irc = [name for name in (IRC_LISTENER,) if name in found]
    rest = [name for name in found if name not in (*first, *variants, *irc)]
    return first + variants + irc + rest


def _is_variant(name: str) -> bool:
    """chatd-NAME from --chatd-variant (chatd-irc is the IRC listener)."""
    return name.startswith("chatd-") and name != IRC_LISTENER


def _pairs(servers: list[str]) -> list[tuple[str, str]]:
    """Which servers to divide by which: every chatd (line, variants, IRC door)
    by each peer, then chatd by each of its variants (chatd/chatd-nohist:
    history on against off, from the same runs)."""
    chatds = [name for name in servers if name.startswith("chatd")]
    pairs = [(mine, peer) for peer in PEERS if peer in servers for mine in chatds]
    return pairs + [("chatd", name) for name in servers if _is_variant(name)]


def ratios(rows: Sequence[Median]) -> list[Ratio]:
    """The ratios of medians from the same runs, per scenario and size, for
    every pair of _pairs() with both servers in the figures."""
    pairs = _pairs(_servers(rows))
    found = []
    for scenario in dict.fromkeys(row.scenario for row in rows):
        for size in dict.fromkeys(r.size for r in rows if r.scenario == scenario):
            by_server = {
                r.server: r for r in rows if r.scenario == scenario and r.size == size
            }
            for mine, other in pairs:
                if not {mine, other} <= by_server.keys():
                    continue
                ours, theirs = by_server[mine].figures, by_server[other].figures
                figures = {
                    c.key: _quotient(ours.get(c.key), theirs.get(c.key))
                    for c in COLUMNS[scenario]
                    if c.ratio
                }
                label = by_server[mine].label
                found.append(Ratio(scenario, size, label, f"{mine}/{other}", figures))
    return found


def _quotient(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def side_by_side(rows: Sequence[Median], markdown: bool) -> str:
    """Tables per scenario: each server, then ratios, for every size.

    The ratios: chatd, each variant and chatd-irc against ngircd and against
    inspircd, and chatd against each variant (see ratios()).
    """
    out: list[str] = []
    servers = _servers(rows)
    every_ratio = ratios(rows)
    scenarios = list(dict.fromkeys(row.scenario for row in rows))
    for scenario in scenarios:
        columns = COLUMNS[scenario]
        header = [SIZE_NAMES[scenario], "server", *(c.heading for c in columns)]
        table: list[list[str]] = []
        sizes = list(dict.fromkeys(r.size for r in rows if r.scenario == scenario))
        for size in sizes:
            by_server = {
                r.server: r for r in rows if r.scenario == scenario and r.size == size
            }
            for server in servers:
                row = by_server.get(server)
                if row is not None:
                    cells = [
                        column.show(row.figures.get(column.key)) for column in columns
                    ]
                    name = server + (f" ({row.failed} failed)" if row.failed else "")
                    table.append([row.label, name, *cells])
            for ratio in every_ratio:
                if ratio.scenario != scenario or ratio.size != size:
                    continue
                cells = [
                    _ratio_text(ratio.figures.get(c.key)) if c.ratio else ""
                    for c in columns
                ]
                table.append([ratio.label, ratio.pair, *cells])
        out.append(f"{scenario} (medians)" if not markdown else f"**{scenario}**")
        out.append("")
        out.extend(_render_table(header, table, markdown))
        out.append("")
    return "\n".join(out)


def _ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _render_table(
    header: list[str], table: list[list[str]], markdown: bool
) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append(
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"
        )
        lines += ["| " + " | ".join(row) + " |" for row in table]
        return lines
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    lines = []
    for row in [header, *table]:
        lines.append(
            "  ".join(
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    return lines


def write_json(
    path: Path, meta: dict[str, object], runs: Sequence[Run], rows: Sequence[Median]
) -> None:
    """Write every run, the medians and their ratios as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "meta": meta,
        "runs": [run.__dict__ for run in runs],
        "medians": [
            {
                "scenario": row.scenario,
                "server": row.server,
                "size": row.size,
                "label": row.label,
                "runs": row.runs,
                "failed": row.failed,
                "figures": row.figures,
                "min_max": row.spread,
            }
            for row in rows
        ],
        "ratios": [ratio.__dict__ for ratio in ratios(rows)],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def plot(path: Path, rows: Sequence[Median], caption: str) -> str:
    """Plot fanout deliveries/s and deliveries per server CPU-second against N.

    Returns a sentence about what was done, for the console.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install matplotlib)"
    fanout = [row for row in rows if row.scenario == "fanout"]
    if not fanout:
        return "no plot: the fanout scenario was not run"
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [
        ("deliveries_per_s", "deliveries per second (wall)"),
        ("deliveries_per_cpu_s", "deliveries per second of server CPU"),
    ]
    styles = {
        "chatd": ("tab:blue", "o"),
        IRC_LISTENER: ("tab:green", "^"),
        "ngircd": ("tab:orange", "s"),
        "inspircd": ("tab:red", "D"),
    }
    extra = iter([("tab:purple", "v"), ("tab:brown", "X"), ("tab:pink", "P")])
    for name in _servers(fanout):
        if name not in styles:
            styles[name] = next(extra, ("tab:gray", "x"))
    for axis, (key, title) in zip(axes, panels, strict=True):
        for server, (colour, marker) in styles.items():
            mine = sorted(
                (r for r in fanout if r.server == server), key=lambda r: r.size
            )
            points = [(r.size, r.figures.get(key), r.spread.get(key)) for r in mine]
            points = [p for p in points if p[1] is not None]
            if not points:
                continue
            sizes = [p[0] for p in points]
            values = [float(p[1] or 0) / 1e6 for p in points]
            low = [
                v - (p[2][0] / 1e6 if p[2] else v)
                for v, p in zip(values, points, strict=True)
            ]
            high = [
                (p[2][1] / 1e6 if p[2] else v) - v
                for v, p in zip(values, points, strict=True)
            ]
            axis.errorbar(
                sizes,
                values,
                yerr=[low, high],
                color=colour,
                marker=marker,
                capsize=4,
                label=server,
            )
        axis.set_title(title)
        axis.set_xlabel("members in the room (N)")
        axis.set_ylabel("million lines per second")
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle(
        f"fanout: one sender, N members, medians (bars: min-max). {caption}"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"
