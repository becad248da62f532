"""The web door: chatd's line protocol over a WebSocket, for the page in a browser.

A WebConnection speaks exactly what telnet users read (docs/protocol.md): each
text message from the page is one line, and each line the server sends is
one text message (without its CRLF). So it speaks the line door's words
(chatd.line.door.LineDoor, which the TCP line door, chatd.protocol, composes
too) with other bytes around the lines, and everything below it is the
shared Connection's: framing, the flood gate, the send queue, output
batching and the render-once journal, timeouts, caps and closing.

How it sits on Twisted's WebSocket: twisted.web.websocket does the HTTP
upgrade and reads frames (wsproto), and hands this connection each whole
message. The connection's transport is the TCP (or TLS) connection itself,
so the send queue is registered there as on any other door and lines go out
by the same direct sends. Lines are framed here (chatd.web.frames): one
frame per line, built once per broadcast and shared by every web member in
the round's journal, so a broadcast costs a web member what it costs a TCP
member. The few frames wsproto still writes (pongs, the close handshake)
go through this connection too (WireTransport), in order with the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol as TypingProtocol
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.web.websocket import WebSocketTransport
from wsproto.utilities import LocalProtocolError

from chatd.line.door import LINE_DOOR, SpeaksLine
from chatd.line.extensions import ShowsExtensions
from chatd.line.wire import LINE_RENDERERS, line, render
from chatd.model.chat import Event
from chatd.model.errors import ChatError, ErrorCode
from chatd.net.connection import Connection, ConnectionHub, Phase
from chatd.net.output import once_per_broadcast
from chatd.net.sockets import IChatTransport, peer_name
from chatd.web.frames import (
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    MAX_FRAGMENTS,
    PING_FRAME,
    TOO_BIG,
    MessageGuard,
    frame_lines,
    text_frame,
)

_CLOSING = Phase.CLOSING
# Stands for a binary message in the input stream: 0xFF never occurs in the
# UTF-8 of a text message, so no line a page sends can be mistaken for it.
BINARY = b"\xff"
# Seconds between the server's pings: a reverse proxy closes a WebSocket
# that is silent for a minute (nginx's proxy_read_timeout), and a page idle
# in a room may hear nothing for longer.
PING_INTERVAL = 30.0


def _framed(event: Event) -> bytes:
    """An event's line as a text frame (one frame per line when several)."""
    wire_line = render(event)
    if wire_line.count(b"\r\n") == 1:
        return text_frame(wire_line[:-2])
    return frame_lines(wire_line)  # a KICK and its PART, a MODE of several


# An event's line as a text frame, once per broadcast: wire.render encodes the
# line once for every door; the frame around it is built once here, for the
# first web member, and shared by the rest.
web_render = once_per_broadcast(_framed)


def _frames_of(render_lines: Callable[[Event], bytes]) -> Callable[[Event], bytes]:
    """A renderer of render_lines' lines, a text frame each, framed once per
    broadcast for every page that shares it."""

    def framed(event: Event) -> bytes:
        return frame_lines(render_lines(event))

    return once_per_broadcast(framed)


# For a page that said /ids on, /tags on or both: wire.LINE_RENDERERS' lines
# (a room message led by its ID line; TYPING, REACT, REPLY), a text frame each,
# in the journal of the pages with the same extensions.
WEB_RENDERERS: dict[int, tuple[Callable[[Event], bytes], str]] = {
    extensions: (web_render, "") if not extensions else (_frames_of(lines), suffix)
    for extensions, (lines, suffix) in LINE_RENDERERS.items()
}


class _Wire(TypingProtocol):
    """What this door uses of Twisted's WebSocket wire protocol."""

    transport: object

    def loseConnection(self, code: int = CLOSE_NORMAL) -> None:
        """Send a close frame with code, then close the TCP connection."""


class WireTransport:
    """The transport Twisted's WebSocket writes its own frames to.

    Pongs and closing frames go through the connection, in order with its
    lines: the connection hands bytes straight to the socket when nothing
    waits, and a frame written around it could land inside one of its own.
    """

    def __init__(self, connection: WebConnection) -> None:
        self.connection = connection

    def write(self, data: bytes) -> None:
        self.connection.write_frames(data)

    def loseConnection(self) -> None:
        transport = self.connection.transport
        if self.connection.phase is not _CLOSING:  # (close() let it go already)
            # The page closed: its send queue, a producer, would hold TCP open.
            transport.unregisterProducer()
        transport.loseConnection()

    def abortConnection(self) -> None:
        self.connection.transport.abortConnection()

    def getPeer(self) -> IAddress:
        return self.connection.transport.getPeer()

    def getHost(self) -> IAddress:
        return self.connection.transport.getHost()


class WebConnection(SpeaksLine, ShowsExtensions, Connection):
    """One page's WebSocket: the line protocol, one line per text message."""

    door = "web"
    identify_hint = "/identify <password>"  # the line protocol's words
    log = Logger()
    __slots__ = (
        "request",
        "address",
        "via",
        "ws",
        "guard",
        "_ping_call",
        "_code",
        "_read",
        "_unread",
        "_resume_call",
        "_frames_paused",
        "extensions",
        "_shared_render",
    )
    renderers = WEB_RENDERERS  # ShowsExtensions': shared by extensions
    render = staticmethod(web_render)  # one frame per broadcast

    def __init__(self, hub: ConnectionHub) -> None:
        super().__init__(hub)
        self.request: Request | None = None  # the upgrade request, until adopted
        self.address: IAddress | None = None  # the client (X-Forwarded-For believed)
        self.via = ""  # the proxy's address, when the client's came from it
        self.ws: _Wire | None = None
        self.guard = MessageGuard(self.config.recvq)
        self._ping_call: IDelayedCall | None = None
        self._code = CLOSE_NORMAL  # the close frame's code
        self._read: Callable[[bytes], None] | None = None  # Twisted's WebSocket
        # Received bytes whose frames the flood gate cannot pay for yet: the
        # socket is not read meanwhile (pauseProducing) until _resume_call.
        self._unread: bytearray | None = None
        self._resume_call: IDelayedCall | None = None
        self._frames_paused = False  # in an episode of paused reading (logged once)
        self.extensions = 0  # wire.IDS | wire.TAGS: what /ids on, /tags on asked
        self._shared_render: Callable[[Event], bytes] = web_render  # see _extend

    # -- the door's words: the line protocol's (chatd.line.door) ---------------

    def plain_lines(self, event: Event) -> bytes:
        """An event's line as every page without extensions gets it: framed."""
        return web_render(event)

    def framed_lines(self, data: bytes) -> bytes:
        """Lines as a page gets them: a text frame each."""
        return frame_lines(data)

    # -- Twisted's WebSocketProtocol -------------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        """The upgrade is under way; nothing may be written yet."""
        self.ws = cast(_Wire, transport)

    def negotiationFinished(self) -> None:
        """The WebSocket is open: take the TCP connection over, then greet."""
        request, self.request = self.request, None
        if request is None or self.ws is None:  # cannot happen: the site sets both
            raise RuntimeError("a WebConnection needs its upgrade request")
        channel = request.channel
        tcp = cast(IChatTransport, channel.transport)
        # The HTTP channel stays the TCP connection's protocol and passes the
        # bytes to the WebSocket; it is also the connection's producer, which
        # this connection's send queue replaces (Connection.connectionMade).
        tcp.unregisterProducer()
        self.ws.transport = WireTransport(self)
        # Read each frame's header as it arrives, before Twisted reads the
        # frame: a message's bytes are counted, and frames are paid for.
        self._read = channel.dataReceived
        channel.dataReceived = self._guarded  # type: ignore[method-assign]
        self.makeConnection(tcp)

    def textMessageReceived(self, message: str) -> None:
        """One line from the page (a LF inside it ends a line there, as on TCP)."""
        self.dataReceived(message.encode("utf-8") + b"\n")

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        """Binary is no part of the protocol: answered in turn, as a line would be."""
        self.dataReceived(BINARY + b"\n")

    def pongReceived(self, payload: bytes) -> None:
        """The page answered a ping (browsers do by themselves); nothing to do."""

    # -- connection life -------------------------------------------------------

    def greet(self) -> None:
        """HELLO and NICK, behind the upgrade's 101 answer."""
        # The 101 still waits in the transport's buffer: no direct send may
        # pass it. The transport says when its buffer has emptied (the send
        # queue's resumeProducing), and direct sends start again then.
        self.sendq.drained = False
        LINE_DOOR.greet(self)

    def connectionMade(self) -> None:
        super().connectionMade()
        self._ping_call = self.hub.clock.callLater(PING_INTERVAL, self._ping)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None
        self._stop_reading_later()
        if self.transport is None:  # closed during the upgrade: never connected
            return
        super().connectionLost(reason)

    @property
    def peer(self) -> str:
        """The client's address for the log, and the proxy's if it came through one."""
        if self.address is None:
            return peer_name(self.transport)
        host, port = (
            getattr(self.address, "host", "?"),
            getattr(self.address, "port", 0),
        )
        client = f"{host}:{port}"
        return f"{client} via {self.via}" if self.via else client

    def _ping(self) -> None:
        self._ping_call = None
        if self.phase is _CLOSING:
            return
        self._write(PING_FRAME)
        self.flush()
        self._ping_call = self.hub.clock.callLater(PING_INTERVAL, self._ping)

    def _guarded(self, data: bytes) -> None:
        """Pass received bytes on to Twisted's WebSocket, as far as allowed.

        A message too big, or in too many pieces, closes the connection.
        Frames that make no line (pings, pongs, fragments) are paid for from
        the flood gate's bucket before they are read; past the budget the
        rest waits unread, and so does the socket, until the bucket refills.
        """
        if self.phase is _CLOSING or self._read is None:
            return
        unread = self._unread
        if unread is not None:  # (TLS may hand over more after the pause)
            unread += data
            if len(unread) > self.config.recvq:
                self._stop_reading_later()
                self.output.begin()
                try:
                    self.input_overflowed()
                finally:
                    self.output.end(self)
            return
        gate = self.gate
        readable = self.guard.feed(data, gate.bucket.spend if gate else None)
        if readable < 0:
            limit = self.guard.limit
            if readable == TOO_BIG:
                self.log.warn(
                    "{peer} sent a WebSocket message over {limit} bytes; closed",
                    peer=self.peer,
                    limit=limit,
                )
                self._refuse(f"Message too big: more than {limit} bytes.")
            else:
                self.log.warn(
                    "{peer} sent a WebSocket message in more than {count} "
                    "frames; closed",
                    peer=self.peer,
                    count=MAX_FRAGMENTS,
                )
                self._refuse(f"Message in too many pieces: more than {MAX_FRAGMENTS}.")
            return
        if readable < len(data):
            self._read_later(data[readable:])
            data = data[:readable]
        if data:
            self._read(data)

    def _read_later(self, rest: bytes) -> None:
        """Keep rest unread, stop reading the socket, and go on once paid for."""
        if self.gate is None:  # cannot happen: nothing is refused without one
            return
        self._unread = bytearray(rest)
        cast(IPushProducer, self.transport).pauseProducing()
        self.hub.stats.limit_hit(self.door, "flood")
        if not self._frames_paused:
            self._frames_paused = True
            self.log.warn(
                "{peer} sends WebSocket frames too fast; reading paused",
                peer=self.peer,
            )
        self._resume_call = self.hub.clock.callLater(
            self.gate.bucket.wait(), self._resume_reading
        )

    def _resume_reading(self) -> None:
        self._resume_call = None
        unread, self._unread = self._unread, None
        if unread is not None:
            self._guarded(bytes(unread))
        if self._unread is None and self.phase is not _CLOSING:
            self._frames_paused = False  # all that waited was read
            cast(IPushProducer, self.transport).resumeProducing()

    def _stop_reading_later(self) -> None:
        """Forget what waits unread: the connection is going."""
        self._unread = None
        if self._resume_call is not None and self._resume_call.active():
            self._resume_call.cancel()
        self._resume_call = None

    def _refuse(self, reason: str) -> None:
        """Close with BYE reason and close code 1009 (too big to process)."""
        self.output.begin()
        try:
            self.close(reason, code=CLOSE_TOO_BIG)
        finally:
            self.output.end(self)

    def close(self, reason: str, leave: bool = True, code: int = CLOSE_NORMAL) -> None:
        """BYE, then a close frame with code, then the TCP close."""
        if self.phase is not _CLOSING:
            self._code = code
        super().close(reason, leave)

    def hang_up(self) -> None:
        """The close handshake: Twisted's WebSocket writes the frame, then closes."""
        try:
            if self.ws is not None:
                self.ws.loseConnection(self._code)
                return
        except LocalProtocolError:
            pass  # the page closed first: its close was answered already
        self.transport.loseConnection()

    # -- writing ---------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write wire lines, one text frame each."""
        if self.phase is not _CLOSING:
            self._write(frame_lines(data))

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """As Connection.send_later, the answer's lines framed when they come."""
        answer.addCallback(frame_lines)
        super().send_later(answer, frame_lines(fallback))

    def write_frames(self, data: bytes) -> None:
        """Write frames made by Twisted's WebSocket (pongs, the close handshake)."""
        if self.phase is _CLOSING:
            self.transport.write(data)  # the close frame, after the last line
        else:
            self._write(data)
            self.flush()

    # -- reading ---------------------------------------------------------------

    def handle_line(self, raw: bytes) -> None:
        """A line, or the place of a binary message (refused, as bad encoding)."""
        if raw == BINARY:
            if self.phase is not _CLOSING:
                self.reply_error(
                    ChatError(
                        ErrorCode.BAD_ENCODING,
                        "binary messages are not part of the protocol; send text",
                    )
                )
            return
        super().handle_line(raw)


class WebRefusal:
    """A WebSocket the server cannot take: ERR server-full (or banned), BYE, a
    close frame."""

    log = Logger()

    def __init__(
        self, reason: str, clock: IReactorTime, grace: float, answer: bytes = b""
    ) -> None:
        """answer: the line door's refusal lines (a server ban's), if not full."""
        self.lines = [data + b"\r\n" for data in answer.split(b"\r\n") if data] or [
            line("ERR", ErrorCode.SERVER_FULL.value, text=reason),
            line("BYE", text="Please try again later."),
        ]
        self.clock = clock
        self.grace = grace
        self.ws: WebSocketTransport | None = None
        self._abort_call: IDelayedCall | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.ws = transport

    def negotiationFinished(self) -> None:
        if self.ws is None:
            return
        for data in self.lines:
            self.ws.sendTextMessage(data[:-2].decode("utf-8"))
        wire = cast(_Wire, self.ws)
        wire.loseConnection(CLOSE_TRY_LATER)
        self._abort_call = self.clock.callLater(self.grace, self._abort)

    def _abort(self) -> None:
        self._abort_call = None
        transport = getattr(self.ws, "transport", None)
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()

    def textMessageReceived(self, message: str) -> None:
        """Nothing a refused client says is read."""

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        """Nothing a refused client says is read."""

    def pongReceived(self, payload: bytes) -> None:
        """Nothing to do."""

    def connectionLost(self, reason: Failure) -> None:
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
