"""A rate with a burst on an injected clock: the one token bucket of chatd.

The model limits password work with it (chatd.model.accounts); the
connection layer's flood gate (net/limits.py) and the desktop client's
pacing (chatd.client.client) use the same bucket.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

EPSILON = 1e-9  # the clock's floats may fall just short of a whole token


class TokenBucket:
    """Allows bursts of `capacity` events, refilled at `rate` per second."""

    __slots__ = ("capacity", "rate", "clock", "tokens", "stamp")

    def __init__(self, capacity: int, rate: float, clock: IReactorTime) -> None:
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self.tokens: float = capacity  # an int until the first refill: no float each
        self.stamp = clock.seconds()

    def _refill(self) -> None:
        now = self.clock.seconds()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        """Spend one token if there is one."""
        self._refill()
        if self.tokens >= 1.0 - EPSILON:  # the clock's floats may fall just short
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def spend(self, cost: float) -> bool:
        """Spend cost tokens (a fraction of one, say) if there are that many.

        For what is paid before it is read (a WebSocket's frames): refused,
        the reader waits for wait() seconds and asks again.
        """
        self._refill()
        if self.tokens >= cost - EPSILON:
            self.tokens = max(0.0, self.tokens - cost)
            return True
        return False

    def charge(self, count: int) -> bool:
        """Spend count tokens at once, into debt if need be; tell if any are left.

        For work already done in bulk (the telnet commands of a packet): the
        debt is paid back at the rate before anything else is handled.
        """
        self._refill()
        self.tokens -= count
        return self.tokens >= 1.0 - EPSILON

    def is_full(self) -> bool:
        """Tell whether the bucket has refilled to its capacity."""
        self._refill()
        return self.tokens >= self.capacity - EPSILON

    def wait(self) -> float:
        """Seconds until the next token is there."""
        self._refill()
        return max(0.0, (1.0 - self.tokens) / self.rate)
