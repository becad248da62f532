"""The Grafana dashboard's panels, once: PromQL for deploy/, figures for a picture.

    python -m bench.dashboard > deploy/grafana-dashboard.json

Each Panel says what it shows in terms simple enough to be both written as
PromQL (for Grafana) and worked out here from scraped samples (for
docs/metrics.png, bench/metrics_picture.py): a gauge summed by a label, a
counter's per-second rate summed by a label, or a histogram's quantile.
tests/test_deploy.py checks that deploy/grafana-dashboard.json is what this
writes, and that every metric it names is served by a real chatd.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

# (metric name, sorted labels) -> value, for one scrape
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Scrape = tuple[float, Samples]  # (seconds, samples)
Series = dict[str, list[tuple[float, float]]]  # legend -> [(seconds, value)]

SELECTOR = '{job="chatd", instance=~"$instance"}'


@dataclass(frozen=True)
class Query:
    """One line (or one per label value) of a panel.

    kind: gauge (the value), rate (a counter's per-second rate) or quantile
    (of a histogram, q); by: the label summed by ("" for none); legend: the
    line's name ({{label}} for the label's value).
    """

    kind: str
    metric: str
    legend: str
    by: str = ""
    q: float = 0.0

    def promql(self) -> str:
        """The query as PromQL."""
        if self.kind == "gauge":
            inner = f"{self.metric}{SELECTOR}"
        elif self.kind == "rate":
            inner = f"rate({self.metric}{SELECTOR}[$__rate_interval])"
        else:
            rate = f"rate({self.metric}_bucket{SELECTOR}[$__rate_interval])"
            return f"histogram_quantile({self.q}, sum by (le) ({rate}))"
        by = f" by ({self.by})" if self.by else ""
        return f"sum{by} ({inner})"


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: a title, a Grafana unit, its queries."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""


PANELS = (
    Panel(
        "Connections open",
        "short",
        (Query("gauge", "chatd_connections", "{{door}}", by="door"),),
        "Open connections by listener kind, registered or not.",
    ),
    Panel(
        "Events delivered /s",
        "ops",
        (Query("rate", "chatd_events_delivered_total", "{{door}}", by="door"),),
        "Chat events written to clients: a message to N members is N events.",
    ),
    Panel(
        "Lines received /s",
        "ops",
        (Query("rate", "chatd_lines_received_total", "{{door}}", by="door"),),
    ),
    Panel(
        "Limits hit /s",
        "ops",
        (Query("rate", "chatd_limit_hits_total", "{{limit}}", by="limit"),),
        "Flood throttling, cut-offs (recvq, sendq), refused lines and "
        "connections, timeouts.",
    ),
    Panel(
        "Reactor lag",
        "s",
        (
            Query("quantile", "chatd_reactor_lag_seconds", "p50", q=0.5),
            Query("quantile", "chatd_reactor_lag_seconds", "p99", q=0.99),
        ),
        "How late a timer fires: the time the event loop was busy elsewhere.",
    ),
    Panel(
        "CPU (cores)",
        "short",
        (Query("rate", "process_cpu_seconds_total", "chatd"),),
    ),
    Panel(
        "Memory (resident)",
        "bytes",
        (Query("gauge", "process_resident_memory_bytes", "chatd"),),
    ),
    Panel(
        "Send queues (bytes waiting)",
        "bytes",
        (Query("gauge", "chatd_send_queue_bytes", "{{door}}", by="door"),),
        "Bytes written to clients that their sockets have not taken yet.",
    ),
    Panel(
        "Users and rooms",
        "short",
        (
            Query("gauge", "chatd_users", "users"),
            Query("gauge", "chatd_rooms", "rooms"),
        ),
    ),
    Panel(
        "Bytes sent /s",
        "Bps",
        (Query("rate", "chatd_sent_bytes_total", "{{door}}", by="door"),),
    ),
    Panel(
        "Registrations /s",
        "ops",
        (Query("rate", "chatd_registrations_total", "{{door}}", by="door"),),
    ),
    Panel(
        "Open files",
        "short",
        (
            Query("gauge", "process_open_fds", "open"),
            Query("gauge", "process_max_fds", "limit"),
        ),
    ),
    Panel(
        "History written /s",
        "ops",
        (Query("rate", "chatd_history_messages_written_total", "messages"),),
    ),
    Panel(
        "History batch time",
        "s",
        (
            Query("quantile", "chatd_history_batch_seconds", "p50", q=0.5),
            Query("quantile", "chatd_history_batch_seconds", "p99", q=0.99),
        ),
        "Time one batch of history takes to write (one SQLite transaction).",
    ),
)


def dashboard() -> dict[str, object]:
    """The Grafana dashboard (JSON model) of PANELS, two panels a row."""
    source = {"type": "prometheus", "uid": "${datasource}"}
    panels: list[dict[str, object]] = []
    for number, panel in enumerate(PANELS):
        panels.append(
            {
                "id": number + 1,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": source,
                "gridPos": {
                    "h": 8,
                    "w": 12,
                    "x": 12 * (number % 2),
                    "y": 8 * (number // 2),
                },
                "fieldConfig": {
                    "defaults": {"unit": panel.unit, "min": 0},
                    "overrides": [],
                },
                "options": {
                    "legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
                "targets": [
                    {
                        "refId": chr(ord("A") + index),
                        "datasource": source,
                        "expr": query.promql(),
                        "legendFormat": query.legend,
                    }
                    for index, query in enumerate(panel.queries)
                ],
            }
        )
    instances = "label_values(chatd_build_info, instance)"
    return {
        "title": "chatd",
        "uid": "chatd",
        "description": "chatd's --metrics (docs/running.md)",
        "tags": ["chatd"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "instance",
                    "label": "Instance",
                    "type": "query",
                    "datasource": source,
                    "query": {"query": instances, "refId": "instances"},
                    "definition": instances,
                    "includeAll": True,
                    "multi": True,
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }


def dashboard_json() -> str:
    """The dashboard as the file in deploy/ holds it."""
    return json.dumps(dashboard(), indent=2) + "\n"


# -- the same panels worked out from scrapes (for the picture) ---------------------


def _group(labels: tuple[tuple[str, str], ...], query: Query) -> str:
    if not query.by:
        return query.legend
    return dict(labels).get(query.by, "")


def _same_process(before: Samples, after: Samples) -> bool:
    key = ("process_start_time_seconds", ())
    return key in before and before.get(key) == after.get(key)


def evaluate(query: Query, scrapes: Sequence[Scrape], window: int = 5) -> Series:
    """query's lines over scrapes; rates over `window` scrapes of one process."""
    lines: Series = defaultdict(list)
    for index, (when, samples) in enumerate(scrapes):
        if query.kind == "gauge":
            sums: dict[str, float] = defaultdict(float)
            for (name, labels), value in samples.items():
                if name == query.metric:
                    sums[_group(labels, query)] += value
            for legend, value in sums.items():
                lines[legend].append((when, value))
            continue
        start = max(0, index - window)
        while start < index and not _same_process(scrapes[start][1], samples):
            start += 1
        if start == index:
            continue  # a new process: no rate yet
        then, earlier = scrapes[start]
        elapsed = when - then
        if query.kind == "rate":
            sums = defaultdict(float)
            for (name, labels), value in samples.items():
                if name == query.metric:
                    before = earlier.get((name, labels), 0.0)
                    sums[_group(labels, query)] += (value - before) / elapsed
            for legend, value in sums.items():
                lines[legend].append((when, value))
        else:
            found = _quantile(query, earlier, samples)
            if found is not None:
                lines[query.legend].append((when, found))
    return dict(lines)


def _quantile(query: Query, earlier: Samples, samples: Samples) -> float | None:
    """histogram_quantile over the buckets' increase (Prometheus' interpolation)."""
    name = f"{query.metric}_bucket"
    buckets: list[tuple[float, float]] = []
    for (metric, labels), value in samples.items():
        if metric == name:
            bound = float(dict(labels)["le"])
            buckets.append((bound, value - earlier.get((metric, labels), 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = query.q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


if __name__ == "__main__":
    sys.stdout.write(dashboard_json())
