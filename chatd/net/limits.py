"""Per-connection limits that need no transport: the flood gate and the send queue.

Both are given a clock and the object they report to (its methods are named by
GateClient and SendQueueClient), so they are tested with task.Clock and small
recording objects. One reference to the connection, rather than a bound method
per callback, keeps thousands of idle connections small.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import (
    IDelayedCall,
    IPullProducer,
    IPushProducer,
    IReactorTime,
)
from zope.interface import implementer

from chatd.model.rates import TokenBucket

# Lines of registration (IRC's CAP, NICK, USER, PASS, AUTHENTICATE; the line
# door's nickname) a connection may send before registering without spending
# its flood budget: Sopel sends 15, and a client with SASL and many
# capabilities a few more. Past them registration lines cost as others do.
REGISTRATION_LINES = 30


class GateClient(Protocol):
    """What a FloodGate hands held input back to, and tells about throttling."""

    def release(self, data: bytes) -> None:
        """Frame and handle data that was held; may hand the rest back to hold."""

    def input_throttled(self) -> None:
        """A throttling episode started: input now waits."""

    def input_overflowed(self) -> None:
        """More than the gate's bound was held; the gate has stopped."""


class SendQueueClient(Protocol):
    """What a SendQueue tells when the client stops reading."""

    def send_queue_full(self) -> None:
        """Too much has waited too long to be sent (said once)."""


class _Detached:
    """The client of a gate or send queue whose connection is gone: hears nothing.

    Detaching breaks the cycle connection -> limit -> connection, so a closed
    connection (and the output its transport still holds) is freed by
    reference counting at once, not at the next run of the cycle collector.
    """

    def release(self, data: bytes) -> None:
        pass

    def input_throttled(self) -> None:
        pass

    def input_overflowed(self) -> None:
        pass

    def send_queue_full(self) -> None:
        pass


DETACHED = _Detached()


class FloodGate:
    """Paces a client's input: one token per line, the excess held in order.

    As IRC servers do, lines past the burst are not dropped: they wait and are
    handled as the bucket refills. What waits is the raw input itself, unframed
    (a bytearray), so the memory held is the bytes counted: at most
    `max_held`, past which the client is told input_overflowed. The client is
    told input_throttled when an episode starts (input starts to wait), and
    gets the held bytes back through release() when a token is there.

    An episode lasts until the bucket is full again, not merely until the held
    input has drained: a client that keeps sending just below the rate after
    its burst is a line behind on every line, and is told once, not on each.
    """

    __slots__ = (
        "bucket",
        "max_held",
        "client",
        "held",
        "held_bytes",
        "throttled",
        "releasing",
        "registration_lines",
        "_drain_call",
        "stopped",
    )

    def __init__(self, bucket: TokenBucket, max_held: int, client: GateClient) -> None:
        self.bucket = bucket  # its clock also times the draining
        self.max_held = max_held
        self.client: GateClient = client
        self.held: bytearray | None = None  # input waiting for tokens, if any
        self.held_bytes = 0  # bytes received since holding started
        self.throttled = False  # in an episode (notice given)
        self.releasing = False  # handing held input back (the bucket may be full)
        self.registration_lines = REGISTRATION_LINES  # free ones left
        self._drain_call: IDelayedCall | None = None
        self.stopped = False

    def take(self) -> bool:
        """Spend a token on the next line, if the budget allows."""
        if (
            self.throttled
            and self.held is None
            and not self.releasing
            and self.bucket.is_full()
        ):
            self.throttled = False  # full again: the episode is over
        return self.bucket.take()

    def take_registration(self) -> bool:
        """Let a registration line pass free, if any of its allowance is left."""
        if self.registration_lines > 0:
            self.registration_lines -= 1
            return True
        return False

    def charge(self, count: int) -> None:
        """Spend count tokens on work done in bulk; hold what follows if in debt."""
        if not self.bucket.charge(count) and self.held is None:
            self.hold(b"")

    def hold(self, data: bytes, received: int | None = None) -> None:
        """Keep data until the budget allows it; received is its size on the wire.

        (Telnet commands are taken out of what arrives, but count while
        held, so that a stream of them is bounded too.)
        """
        if self.stopped:
            return
        held = self.held
        if held is None:
            held = self.held = bytearray()
            self._schedule()
            if not self.throttled:
                self.throttled = True
                self.client.input_throttled()
        held += data
        self.held_bytes += len(data) if received is None else received
        if self.held_bytes > self.max_held:
            client = self.client
            self.stop()
            client.input_overflowed()

    def _schedule(self) -> None:
        if self._drain_call is None and not self.stopped:
            bucket = self.bucket
            self._drain_call = bucket.clock.callLater(bucket.wait(), self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        held, self.held = self.held, None
        self.held_bytes = 0
        if held:
            self.releasing = True
            try:
                self.client.release(bytes(held))  # hands back what it cannot take
            finally:
                self.releasing = False
        # The episode goes on until the bucket is full again (see take).

    def stop(self) -> None:
        """Forget held input and scheduled work: the connection is going."""
        self.stopped = True
        self.client = DETACHED
        self.held = None
        self.held_bytes = 0
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None


# A reader may be behind by more than its send queue for this long, as long
# as its buffer empties within it: a burst from many senders at once hands
# every member megabytes in one reactor turn, which a live reader drains in
# milliseconds. (Broadcast bytes are shared between the members' buffers.)
SLOW_READER_GRACE = 5.0
# ... but never by more than this many times its send queue.
HARD_LIMIT_FACTOR = 8


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

    A reader is cut off (told send_queue_full, once) when more than `limit`
    bytes have waited for `grace` seconds without the buffer once running
    empty in between, or at once when more than HARD_LIMIT_FACTOR times
    `limit` wait. So a reader that keeps reading survives a burst that
    others sent all at once; one that stops is cut off, and what it holds
    stays bounded.
    """

    __slots__ = (
        "limit",
        "buffer_size",
        "client",
        "clock",
        "grace",
        "exactly",
        "counting",
        "drained",
        "paused",
        "waiting",
        "overflowed",
        "_deadline",
    )

    def __init__(
        self,
        limit: int,
        client: SendQueueClient,
        clock: IReactorTime,
        buffer_size: int = 65536,
        grace: float = SLOW_READER_GRACE,
    ) -> None:
        self.limit = limit
        self.buffer_size = buffer_size  # the transport's, where it says
        self.client: SendQueueClient = client
        self.clock = clock
        self.grace = grace
        self.exactly = False  # registered as a pull producer
        self.counting = False  # writes add to `waiting`
        self.drained = False  # known: nothing waits in the transport
        self.paused = False
        self.waiting = 0  # bytes in the transport's buffer, at most
        self.overflowed = False
        self._deadline: IDelayedCall | None = None  # over the limit: until then

    def exact(self) -> None:
        """Count every write: the transport resumes this producer when empty."""
        self.exactly = self.counting = True

    def wrote(self, size: int) -> None:
        """Account for size bytes just handed to the transport (when counting)."""
        if self.client is DETACHED:
            return  # the connection is closing: nothing more is watched
        self.waiting += size
        self.drained = False
        if self.waiting > self.limit and not self.overflowed:
            if self.waiting > HARD_LIMIT_FACTOR * self.limit:
                self._overflow()
            elif self._deadline is None:
                self._deadline = self.clock.callLater(self.grace, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self.waiting > self.limit and not self.overflowed:
            self._overflow()

    def _overflow(self) -> None:
        self.overflowed = True
        client = self.client
        self.close()
        client.send_queue_full()

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
        self.stop()

    def stopProducing(self) -> None:
        """The connection is gone."""
        self.paused = self.drained = False
        self.close()

    def stop(self) -> None:
        """Forget the deadline of a reader that is behind."""
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def close(self) -> None:
        """The connection is closing: watch nothing more, tell nobody anything."""
        self.stop()
        self.counting = False
        self.client = DETACHED
