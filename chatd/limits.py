"""Per-connection limits that need no transport: the flood gate and the send queue.

Both are given a clock and callbacks, so they are tested with task.Clock and
plain functions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from zope.interface import implementer

EPSILON = 1e-9


class TokenBucket:
    """Allows bursts of `capacity` events, refilled at `rate` per second."""

    def __init__(self, capacity: int, rate: float, clock: IReactorTime) -> None:
        self.capacity = float(capacity)
        self.rate = rate
        self.clock = clock
        self.tokens = self.capacity
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

    def wait(self) -> float:
        """Seconds until the next token is there."""
        self._refill()
        return max(0.0, (1.0 - self.tokens) / self.rate)


class FloodGate:
    """Passes a client's lines on at a rate, queueing the excess in order.

    As IRC servers do, lines past the burst are not dropped: they wait in an
    input queue and are handled as the bucket refills. `on_throttle` is called
    when a throttling episode starts (the queue goes from empty to non-empty),
    `on_overflow` when the queued bytes pass `max_queued`.
    """

    def __init__(
        self,
        bucket: TokenBucket,
        max_queued: int,
        clock: IReactorTime,
        handle: Callable[[bytes], None],
        on_throttle: Callable[[], None],
        on_overflow: Callable[[], None],
    ) -> None:
        self.bucket = bucket
        self.max_queued = max_queued
        self.clock = clock
        self.handle = handle
        self.on_throttle = on_throttle
        self.on_overflow = on_overflow
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self._drain_call: IDelayedCall | None = None
        self.stopped = False

    def submit(self, line: bytes) -> None:
        """Handle line now if the budget allows and nothing waits, else queue it."""
        if self.stopped:
            return
        if not self.queue and self.bucket.take():
            self.handle(line)
            return
        self.queue.append(line)
        self.queued_bytes += len(line) + 1  # + the LF it came with
        if self.queued_bytes > self.max_queued:
            self.stop()
            self.on_overflow()
            return
        if len(self.queue) == 1:
            self.on_throttle()
            self._schedule()

    def _schedule(self) -> None:
        if self._drain_call is None and not self.stopped:
            self._drain_call = self.clock.callLater(self.bucket.wait(), self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        while self.queue and not self.stopped and self.bucket.take():
            line = self.queue.popleft()
            self.queued_bytes -= len(line) + 1
            self.handle(line)
        if self.queue:
            self._schedule()

    def stop(self) -> None:
        """Forget queued lines and scheduled work: the connection is going."""
        self.stopped = True
        self.queue.clear()
        self.queued_bytes = 0
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None


@implementer(IPushProducer)
class SendQueue:
    """Watches the bytes waiting to be written to one client.

    Registered on the transport as a streaming producer, it is paused by
    Twisted when the transport's buffer passes its bufferSize and resumed when
    the buffer is empty again. While paused, everything written is still
    waiting, so bufferSize plus the bytes written since the pause bounds what
    the transport holds; past `limit`, `on_overflow` is called (once).
    """

    def __init__(
        self, limit: int, on_overflow: Callable[[], None], buffer_size: int = 65536
    ) -> None:
        self.limit = limit
        self.buffer_size = buffer_size  # the transport's, where it says
        self.on_overflow = on_overflow
        self.paused = False
        self.backlog = 0  # bytes written since the transport said it was full
        self.overflowed = False

    def wrote(self, size: int) -> None:
        """Account for size bytes just handed to the transport."""
        if self.paused:
            self.backlog += size
            self._check()

    def _check(self) -> None:
        if not self.overflowed and self.buffer_size + self.backlog > self.limit:
            self.overflowed = True
            self.on_overflow()

    def pauseProducing(self) -> None:
        """The transport's buffer is over its bufferSize.

        Twisted calls this again on every write while the buffer stays full;
        only the first call starts the count.
        """
        if not self.paused:
            self.paused = True
            self.backlog = 0
            self._check()

    def resumeProducing(self) -> None:
        """The transport has written everything out."""
        self.paused = False
        self.backlog = 0

    def stopProducing(self) -> None:
        """The connection is gone."""
        self.paused = False
