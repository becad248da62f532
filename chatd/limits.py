"""Per-connection limits that need no transport: the flood gate and the send queue.

Both are given a clock and the object they report to (its methods are named by
GateClient and SendQueueClient), so they are tested with task.Clock and small
recording objects. One reference to the connection, rather than a bound method
per callback, keeps thousands of idle connections small.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from twisted.internet.interfaces import (
    IDelayedCall,
    IPullProducer,
    IPushProducer,
    IReactorTime,
)
from zope.interface import implementer

EPSILON = 1e-9


class GateClient(Protocol):
    """What a FloodGate passes lines to, and tells about throttling."""

    def handle_line(self, line: bytes) -> None:
        """Handle one line that the gate let through."""

    def input_throttled(self) -> None:
        """A throttling episode started: lines now wait in the queue."""

    def input_overflowed(self) -> None:
        """The queued lines passed the gate's bound; the gate has stopped."""


class SendQueueClient(Protocol):
    """What a SendQueue tells when the client stops reading."""

    def send_queue_full(self) -> None:
        """More than the limit is waiting to be sent (said once)."""


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

    def wait(self) -> float:
        """Seconds until the next token is there."""
        self._refill()
        return max(0.0, (1.0 - self.tokens) / self.rate)


class FloodGate:
    """Passes a client's lines on at a rate, queueing the excess in order.

    As IRC servers do, lines past the burst are not dropped: they wait in an
    input queue and are handled as the bucket refills. The client is told
    input_throttled when a throttling episode starts (the queue goes from empty
    to non-empty), and input_overflowed when the queued bytes pass
    `max_queued`.
    """

    __slots__ = (
        "bucket",
        "max_queued",
        "client",
        "queue",
        "queued_bytes",
        "_drain_call",
        "stopped",
    )

    def __init__(
        self,
        bucket: TokenBucket,
        max_queued: int,
        client: GateClient,
    ) -> None:
        self.bucket = bucket  # its clock also times the draining
        self.max_queued = max_queued
        self.client = client
        self.queue: deque[bytes] | None = None  # made when throttling starts
        self.queued_bytes = 0
        self._drain_call: IDelayedCall | None = None
        self.stopped = False

    def submit(self, line: bytes) -> None:
        """Handle line now if the budget allows and nothing waits, else queue it."""
        if self.stopped:
            return
        queue = self.queue
        if not queue and self.bucket.take():
            self.client.handle_line(line)
            return
        if queue is None:
            queue = self.queue = deque()
        queue.append(line)
        self.queued_bytes += len(line) + 1  # + the LF it came with
        if self.queued_bytes > self.max_queued:
            self.stop()
            self.client.input_overflowed()
            return
        if len(queue) == 1:
            self.client.input_throttled()
            self._schedule()

    def _schedule(self) -> None:
        if self._drain_call is None and not self.stopped:
            bucket = self.bucket
            self._drain_call = bucket.clock.callLater(bucket.wait(), self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        while self.queue and not self.stopped and self.bucket.take():
            line = self.queue.popleft()
            self.queued_bytes -= len(line) + 1
            self.client.handle_line(line)
        if self.queue:
            self._schedule()
        else:
            self.queue = None  # the episode is over: a quiet client keeps no deque

    def stop(self) -> None:
        """Forget queued lines and scheduled work: the connection is going."""
        self.stopped = True
        self.queue = None
        self.queued_bytes = 0
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None


@implementer(IPushProducer, IPullProducer)
class SendQueue:
    """Counts the bytes waiting in one client's transport, and says when too many.

    It is registered on the transport as a producer, which is how a Twisted
    transport reports on its buffer:

    - As a pull producer (plain TCP, see exact()), it is resumed every time the
      transport's buffer runs empty. So `waiting`, the bytes written since, is
      exact, and `drained` tells that nothing is buffered: the protocol may
      then hand bytes straight to the socket.
    - As a streaming producer (TLS, whose transport turns pull producers into a
      busy loop), it is paused once the buffer passes the transport's
      bufferSize and resumed when it is empty. While paused, bufferSize plus
      what was written since bounds what is waiting.

    Past `limit` bytes waiting, the client is told send_queue_full, once.
    """

    __slots__ = (
        "limit",
        "buffer_size",
        "client",
        "exactly",
        "counting",
        "drained",
        "paused",
        "waiting",
        "overflowed",
    )

    def __init__(
        self, limit: int, client: SendQueueClient, buffer_size: int = 65536
    ) -> None:
        self.limit = limit
        self.buffer_size = buffer_size  # the transport's, where it says
        self.client = client
        self.exactly = False  # registered as a pull producer
        self.counting = False  # writes add to `waiting`
        self.drained = False  # known: nothing waits in the transport
        self.paused = False
        self.waiting = 0  # bytes in the transport's buffer, at most
        self.overflowed = False

    def exact(self) -> None:
        """Count every write: the transport resumes this producer when empty."""
        self.exactly = self.counting = True

    def wrote(self, size: int) -> None:
        """Account for size bytes just handed to the transport (when counting)."""
        self.waiting += size
        self.drained = False
        if self.waiting > self.limit and not self.overflowed:
            self.overflowed = True
            self.client.send_queue_full()

    def pauseProducing(self) -> None:
        """Streaming: the transport's buffer is over its bufferSize.

        Twisted calls this again on every write while the buffer stays full;
        only the first call starts the count.
        """
        if not self.paused:
            self.paused = self.counting = True
            self.waiting = 0
            self.wrote(self.buffer_size)

    def resumeProducing(self) -> None:
        """The transport has written everything out."""
        self.paused = False
        self.waiting = 0
        self.counting = self.drained = self.exactly

    def stopProducing(self) -> None:
        """The connection is gone."""
        self.paused = self.drained = False
