"""What the daemon counts as it runs: plain numbers, read by the metrics at scrape time.

Counting must not cost the broadcast path, so nothing here is touched once per
recipient of an event. A connection adds to its door's DoorStats once per
received line, once per write (the run of broadcast lines a flush sends is
counted as one addition, see Connection.flush) and once per limit hit; the
history thread adds once per batch. Everything that can be read off the state
itself (connections open, users, rooms, bytes waiting in send queues) is not
counted at all: chatd.ops.metrics reads it when Prometheus asks.

No Prometheus and no Twisted here: the doors, the factory and the store write
plain ints, and only chatd.ops.metrics (imported by the plugin when --metrics is
given) knows how they are exposed.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

# Upper bounds, in seconds, of the latency histograms' buckets (+Inf is implied).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

# Every kind of limit counted (see Stats), so each series exists from the start.
LIMIT_KINDS = (
    "flood",
    "recvq",
    "sendq",
    "too-long",
    "server-full",
    "per-ip",
    "banned",
    "register-timeout",
    "idle-timeout",
    "ping-timeout",
    "close-timeout",
)


class DoorStats:
    """Counts for the connections of one door (listener kind): line, irc, web."""

    __slots__ = ("accepted", "lines", "events", "bytes", "registrations")

    def __init__(self) -> None:
        self.accepted = 0  # connections taken (not refused)
        self.lines = 0  # lines received and handled (not the refused over-long)
        self.events = 0  # chat events written to the door's clients
        self.bytes = 0  # bytes handed to the sockets
        self.registrations = 0  # nicknames chosen (a user entered the chat)


class Stats:
    """Everything one hub counts: per door, and the limits hit.

    Limit kinds (the `limit` label): flood (input throttled, once per
    episode), recvq (cut off for too much held input), sendq (cut off for
    not reading), too-long (a line refused), server-full, per-ip and banned
    (a connection refused; banned: by a server ban of its address),
    register-timeout, idle-timeout, ping-timeout (IRC)
    and close-timeout (a closing peer aborted after the grace).
    """

    def __init__(self) -> None:
        self.doors: dict[str, DoorStats] = {}
        self.limits: Counter[tuple[str, str]] = Counter()  # (door, kind) -> hits

    def door(self, name: str) -> DoorStats:
        """Return the counts of door name, made on first use."""
        counts = self.doors.get(name)
        if counts is None:
            counts = self.doors[name] = DoorStats()
        return counts

    def limit_hit(self, door: str, kind: str) -> None:
        """Count one hit of limit kind by a connection of door."""
        self.limits[door, kind] += 1


class Histogram:
    """A latency histogram that any thread may add to (the history writer does).

    Cumulative counts come out in snapshot(), Prometheus' way; observe() takes
    a lock, which costs nothing next to what is being timed (a transaction, a
    timer firing).
    """

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last one: over every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Add one observation."""
        slot = bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[slot] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[tuple[float, int]], int, float]:
        """Return ([(bound, count at or under it)...], count, sum); bound inf last."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, running, total
