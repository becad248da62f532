"""--metrics: what chatd tells Prometheus, read from the running daemon at scrape time.

Nothing is updated for Prometheus while the chat runs. The counters are the
plain ints of chatd.net.stats, which the shared connection layer adds to once per
line, write or limit hit (never once per recipient of a broadcast); the
gauges are read off the state itself when Prometheus asks: connections and
the bytes in their send queues from the hub, users and rooms from the Chat,
history from its writer. ChatCollector turns them into metric families on
each scrape, in the reactor's thread (the state is the reactor's).

Names follow Prometheus' conventions: the chatd_ prefix, base units
(seconds, bytes), _total on counters, and labels of few values only: door
(line, irc, web: the listener kind) and limit (see chatd.net.stats.LIMIT_KINDS).
Never a nickname, an address or a room name.

Also here: ReactorLag, a timer that measures how late it fires, and
metrics_registry, which adds prometheus-client's own process collector
(CPU seconds, memory, open files and their limit) and Python's GC and
platform collectors.

Only the plugin imports this module (and only with --metrics); the web
resource serving it is chatd.ops.metrics_http.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime

import chatd
from chatd.factory import ChatFactory
from chatd.net.stats import LIMIT_KINDS, Histogram, Stats
from chatd.store.writer import SQLiteHistory

LAG_INTERVAL = 0.5  # seconds between the reactor-lag timer's firings


class ReactorLag(Service):
    """A timer that fires every LAG_INTERVAL seconds and notes how late it was.

    Lateness is the time the reactor spent on something else when it should
    have run the timer: a long broadcast, a blocking call, a busy machine.
    """

    def __init__(self, clock: IReactorTime, interval: float = LAG_INTERVAL) -> None:
        self.clock = clock
        self.interval = interval
        self.lag = Histogram()
        self._due = 0.0
        self._call: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        self._schedule()

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._fired)

    def _fired(self) -> None:
        self.lag.observe(max(0.0, self.clock.seconds() - self._due))
        self._schedule()


def histogram(name: str, documentation: str, source: Histogram) -> Metric:
    """A histogram family from one of chatd.net.stats' histograms."""
    buckets, _count, total = source.snapshot()
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[(_bound(bound), count) for bound, count in buckets],
        sum_value=total,
    )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ChatCollector:
    """chatd's own metrics, read from the hub (and history, reactor lag) per scrape."""

    def __init__(
        self,
        hub: ChatFactory,
        history: SQLiteHistory | None = None,
        lag: ReactorLag | None = None,
    ) -> None:
        self.hub = hub
        self.history = history
        self.lag = lag

    def collect(self) -> Iterator[Metric]:
        """Every metric family, as it is now."""
        hub = self.hub
        stats = hub.stats
        doors = sorted(stats.doors)
        # One pass over the open connections (a few ms for 10,000, per scrape).
        open_by: Counter[str] = Counter()
        waiting: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for connection in list(hub.connections):
            door = connection.door
            open_by[door] += 1
            sendq = connection.sendq
            if sendq.counting:
                waiting[door] += sendq.waiting
            gate = connection.gate
            if gate is not None and gate.held is not None:
                held[door] += gate.held_bytes
        for door in open_by:  # a door nobody announced (a test's, say)
            if door not in stats.doors:
                doors.append(door)

        info = GaugeMetricFamily(
            "chatd_build_info", "chatd's version; always 1", labels=["version"]
        )
        info.add_metric([chatd.__version__], 1)
        yield info
        yield _by_door(
            GaugeMetricFamily(
                "chatd_connections",
                "Connections open, by listener kind (registered or not)",
                labels=["door"],
            ),
            doors,
            lambda door: open_by[door],
        )
        yield GaugeMetricFamily(
            "chatd_http_connections",
            "HTTP connections of --web open and not WebSockets (each takes a slot)",
            hub.http_open,
        )
        yield GaugeMetricFamily(
            "chatd_users", "Users registered (with a nickname)", len(hub.chat.users)
        )
        yield GaugeMetricFamily(
            "chatd_rooms", "Rooms that exist, #lobby included", len(hub.chat.rooms)
        )
        yield GaugeMetricFamily(
            "chatd_stopping",
            "1 once the daemon has begun to shut down (/healthz answers 503)",
            1 if hub.stopping else 0,
        )
        yield _by_door(
            GaugeMetricFamily(
                "chatd_send_queue_bytes",
                "Bytes written to clients and not yet taken by their sockets "
                "(a broadcast line counts once for each connection waiting for it)",
                labels=["door"],
            ),
            doors,
            lambda door: waiting[door],
        )
        yield _by_door(
            GaugeMetricFamily(
                "chatd_input_queue_bytes",
                "Bytes received from throttled clients, waiting for their turn",
                labels=["door"],
            ),
            doors,
            lambda door: held[door],
        )
        counted = [
            ("connections_accepted", "Connections accepted (not refused)", "accepted"),
            ("lines_received", "Lines received and handled", "lines"),
            ("events_delivered", "Chat events written to clients", "events"),
            ("sent_bytes", "Bytes written to clients", "bytes"),
            ("registrations", "Nicknames chosen: users who entered the chat", ""),
        ]
        for name, documentation, field in counted:
            family = CounterMetricFamily(
                f"chatd_{name}", documentation, labels=["door"]
            )
            for door in doors:
                family.add_metric([door], _count(stats, door, field or name))
            yield family
        limits = CounterMetricFamily(
            "chatd_limit_hits",
            "Limits hit, by kind: flood (input throttled), recvq and sendq "
            "(cut off), too-long (line refused), server-full and per-ip "
            "(connection refused), register-, idle-, ping- and close-timeout",
            labels=["door", "limit"],
        )
        for door in doors:
            for kind in LIMIT_KINDS:
                limits.add_metric([door, kind], stats.limits[door, kind])
        yield limits

        history = self.history
        if history is not None:
            yield GaugeMetricFamily(
                "chatd_history_up",
                "1 while history is kept, 0 while the database fails",
                1 if history.reason is None else 0,
            )
            yield CounterMetricFamily(
                "chatd_history_messages_written",
                "Messages written to the history database",
                history.written,
            )
            yield histogram(
                "chatd_history_batch_seconds",
                "Time each batch of history took to write (one transaction)",
                history.batch_seconds,
            )
        if self.lag is not None:
            yield histogram(
                "chatd_reactor_lag_seconds",
                "How late a timer fired: time the event loop was busy elsewhere",
                self.lag.lag,
            )


def _count(stats: Stats, door: str, field: str) -> int:
    """One of a door's counts (0 for a door that has none yet)."""
    counts = stats.doors.get(door)
    return 0 if counts is None else int(getattr(counts, field))


def _by_door(
    family: GaugeMetricFamily | CounterMetricFamily,
    doors: Iterable[str],
    read: Callable[[str], float],
) -> Metric:
    """family with one sample per door, read(door) its value."""
    for door in doors:
        family.add_metric([door], read(door))
    return family


def metrics_registry(
    hub: ChatFactory,
    history: SQLiteHistory | None = None,
    lag: ReactorLag | None = None,
) -> CollectorRegistry:
    """A registry of chatd's metrics and the process's (CPU, memory, open files)."""
    registry = CollectorRegistry()
    registry.register(ChatCollector(hub, history, lag))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
