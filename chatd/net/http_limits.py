"""HTTP connections with the chat's limits, for the --web and --metrics listeners.

twisted.web's HTTPChannel takes any request body (into a temporary file
past 100 kB), waits for headers as long as a byte comes every minute, and
counts nowhere. LimitedChannel is that channel with three limits:

- a body: no resource here takes one, so a request whose Content-Length
  passes MAX_BODY is answered 413 when its headers end, and one with a
  chunked body 411, before a byte of the body is read; the connection closes;
- a header deadline: a request's headers must be whole within
  HEADER_TIMEOUT seconds of the connection (or of the previous answer), or
  the connection closes (408 if the request had begun);
- a slot: each connection is counted, while it is open, by the listener's
  HttpSlots (the --web listener's are the chat's own --max-clients and
  --max-per-ip); past them the connection is answered 503 and closed.

Only the --web site and the --metrics listener import this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from zope.interface import implementer

from chatd.net.closing import Refusal

MAX_BODY = 1024  # bytes of request body taken (in memory); none is needed
HEADER_TIMEOUT = 10.0  # seconds for a request's headers to be whole
ABORT_GRACE = 5.0  # seconds a closed HTTP connection gets to flush its answer


def answer(status: str, text: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection: status, text, headers."""
    body = (text + "\r\n").encode()
    head = [f"HTTP/1.1 {status}", "Connection: close", *headers]
    head += ["Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


TOO_LARGE = answer("413 Content Too Large", "This server takes no request bodies.")
LENGTH_REQUIRED = answer("411 Length Required", "This server takes no chunked bodies.")
TIMED_OUT = answer("408 Request Timeout", "The request's headers came too slowly.")
REASONS = {  # as the log says them
    TOO_LARGE: f"HTTP 413: a request body over {MAX_BODY} bytes",
    LENGTH_REQUIRED: "HTTP 411: a chunked request body",
    TIMED_OUT: f"HTTP 408: headers not whole within {HEADER_TIMEOUT:g} s",
}


def busy(reason: str) -> bytes:
    """The 503 answer for a connection past the slots, with reason."""
    return answer(
        "503 Service Unavailable",
        f"{reason}; please try again later.",
        "Retry-After: 10",
    )


class HttpSlots(TypingProtocol):
    """What counts a listener's HTTP connections (ChatFactory for --web)."""

    def http_refusal(self, host: str) -> str | None:
        """Why one more HTTP connection from host cannot be taken, or None."""

    def http_opened(self, host: str) -> None:
        """Count an HTTP connection from host."""

    def http_closed(self, host: str) -> None:
        """Forget an HTTP connection from host."""

    def http_refused(self, host: str, reason: str) -> None:
        """Note that a request from host was refused (408, 411, 413) for reason."""


class Slots:
    """HttpSlots of their own: at most `total` connections, `per_address` each.

    note(host, reason) logs a refusal (ChatFactory.note_refusal: once a
    minute per address, the rest counted).
    """

    def __init__(
        self, total: int, per_address: int, note: Callable[[str, str], None]
    ) -> None:
        self.total = total
        self.per_address = per_address
        self.note = note
        self.open = 0
        self.per_host: Counter[str] = Counter()

    def http_refusal(self, host: str) -> str | None:
        if self.open >= self.total:
            reason = f"the listener is full ({self.total} connections)"
        elif self.per_host[host] >= self.per_address:
            reason = f"too many connections from your address ({self.per_address})"
        else:
            return None
        self.note(host, reason)
        return reason

    def http_refused(self, host: str, reason: str) -> None:
        self.note(host, reason)

    def http_opened(self, host: str) -> None:
        self.open += 1
        self.per_host[host] += 1

    def http_closed(self, host: str) -> None:
        self.open -= 1
        self.per_host[host] -= 1
        if not self.per_host[host]:
            del self.per_host[host]


def _host(addr: IAddress | None) -> str:
    host = getattr(addr, "host", None)
    return host if isinstance(host, str) else str(addr)


class LimitedChannel(http.HTTPChannel):
    """An HTTPChannel that takes no body, wants headers in time, holds a slot."""

    slots: HttpSlots | None = None  # set by LimitedSite, with host
    host = "?"
    _deadline: IDelayedCall | None = None
    _begun = False  # bytes of the awaited request have come
    _refused = False  # answered 408, 411 or 413: nothing more is read
    _abort_call: IDelayedCall | None = None

    def connectionMade(self) -> None:
        if self.slots is not None:
            self.slots.http_opened(self.host)
        super().connectionMade()
        self._await_headers()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stop_deadline()
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
        self.release_slot()
        super().connectionLost(reason)

    def release_slot(self) -> None:
        """Give the slot back (the connection closed, or a WebSocket took it)."""
        slots, self.slots = self.slots, None
        if slots is not None:
            slots.http_closed(self.host)

    # -- the header deadline ---------------------------------------------------

    def _await_headers(self) -> None:
        self._stop_deadline()
        self._begun = False
        self._deadline = self.callLater(HEADER_TIMEOUT, self._headers_late)

    def _stop_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        self._close_with(TIMED_OUT if self._begun else b"")

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._deadline is not None:
            self._begun = True
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._stop_deadline()
        super().allHeadersReceived()

    def requestDone(self, request: http.Request) -> None:
        # Before the base class: it may read a pipelined request's headers.
        self._await_headers()
        super().requestDone(request)

    # -- no bodies -------------------------------------------------------------

    def headerReceived(self, line: bytes) -> bool:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = value.strip()
            if length.isdigit() and int(length) > MAX_BODY:
                self._close_with(TOO_LARGE)
                return False
        elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
            self._close_with(LENGTH_REQUIRED)
            return False
        return bool(super().headerReceived(line))

    def _close_with(self, answer: bytes) -> None:
        """Answer (if anything), read nothing more, close; abort after a grace."""
        self._refused = True
        self._stop_deadline()
        transport = self.transport
        if transport is None:
            return
        if answer:
            transport.write(answer)
            if self.slots is not None:  # logged once a minute per address
                self.slots.http_refused(self.host, REASONS[answer])
        self.loseConnection()
        self._abort_call = self.callLater(ABORT_GRACE, self._abort)

    def _abort(self) -> None:
        """The peer did not let the connection close (it stopped reading)."""
        self._abort_call = None
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()


class LimitedSite(Site):
    """A Site whose channels are LimitedChannels counted by slots."""

    protocol = LimitedChannel  # type: ignore[assignment]

    def __init__(
        self,
        resource: object,
        slots: HttpSlots,
        clock: IReactorTime,
        timeout: float,
        refusal_grace: float = ABORT_GRACE,
    ) -> None:
        super().__init__(resource, timeout=timeout, reactor=clock)
        self.slots = slots
        self.clock = clock
        self.refusal_grace = refusal_grace

    def getResourceFor(self, request: Request) -> IResource:
        found = super().getResourceFor(request)
        if request.method == b"HEAD":
            return HeadOfGet(found)
        return found

    def host_of(self, addr: IAddress | None) -> str:
        """What the slots count a connection from addr by."""
        return _host(addr)

    def buildProtocol(self, addr: IAddress | None) -> Protocol:  # type: ignore[override]
        host = self.host_of(addr)
        reason = self.slots.http_refusal(host)
        if reason is not None:
            return Refusal(busy(reason), self.clock, self.refusal_grace)
        channel = super().buildProtocol(addr)
        if not isinstance(channel, LimitedChannel):  # cannot happen: see protocol
            raise TypeError("a LimitedSite builds LimitedChannels")
        channel.slots = self.slots
        channel.host = host
        return channel


@implementer(IResource)
class HeadOfGet:
    """A resource's answer to HEAD: its GET's headers and length, no body.

    twisted.web renders GET for HEAD and then logs, for every request, that
    it "will eat" the body: an uptime monitor asking HEAD would fill the log.
    """

    isLeaf = True

    def __init__(self, resource: IResource) -> None:
        self.resource = resource

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        return self.resource.getChildWithDefault(name, request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self.resource.putChild(path, child)

    def render(self, request: Request) -> bytes | int:
        body: bytes | int = self.resource.render(request)
        if isinstance(body, bytes) and body:
            request.setHeader(b"content-length", b"%d" % len(body))
            return b""
        return body
