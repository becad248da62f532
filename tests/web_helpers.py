"""A fake browser for the web door: wsproto's client over a StringTransport."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from chatd.factory import ChatFactory
from chatd.web.site import ChatSite, web_site

HOST = "127.0.0.1:8080"
ORIGIN = "http://127.0.0.1:8080"
LISTENER = IPv4Address("TCP", "127.0.0.1", 8080)  # the --web listener's address


def make_site(
    hub: ChatFactory, origins: tuple[str, ...] = (), proxy: bool = False
) -> ChatSite:
    """The --web site on hub."""
    return web_site(hub, origins, proxy)


def http_get(
    site: ChatSite, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET through a fake transport: (status, headers in lower case, body)."""
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = StringTransport(
        hostAddress=LISTENER, peerAddress=IPv4Address("TCP", "127.0.0.1", 50000)
    )
    channel.makeConnection(transport)
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
    head, _, body = transport.value().partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    found = {}
    for text in header_lines:
        name, _, value = text.partition(": ")
        found[name.lower()] = value
    if found.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(status_line.split(" ")[1]), found, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_text, _, body = body.partition(b"\r\n")
        size = int(size_text, 16)
        if not size:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


class FakeBrowser:
    """One WebSocket to the site, through a StringTransport; lines come as text."""

    def __init__(
        self,
        site: ChatSite,
        host: str = "127.0.0.1",
        port: int = 50001,
        origin: str | None = ORIGIN,
        headers: dict[str, str] | None = None,
        host_header: str = HOST,
    ) -> None:
        self.channel = site.buildProtocol(IPv4Address("TCP", host, port))
        self.transport = StringTransport(
            hostAddress=LISTENER, peerAddress=IPv4Address("TCP", host, port)
        )
        self.channel.makeConnection(self.transport)
        self.ws = WSConnection(ConnectionType.CLIENT)
        extra = [(b"origin", origin.encode())] if origin is not None else []
        extra += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        self.channel.dataReceived(
            self.ws.send(Request(host=host_header, target="/ws", extra_headers=extra))
        )
        self.accepted = False
        self.rejected: int | None = None
        self.closed: int | None = None  # the close frame's code, once it came
        self.pings = 0
        self.pongs = 0
        self.binary: list[bytes] = []
        self._lines: list[str] = []
        self._text = ""
        self.read()

    def read(self) -> None:
        """Take what the server wrote and turn it into events."""
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            self._event(event)

    def _event(self, event: Event) -> None:
        match event:
            case AcceptConnection():
                self.accepted = True
            case RejectConnection(status_code=code):
                self.rejected = code
            case RejectData():
                pass
            case TextMessage(data=text, message_finished=done):
                self._text += text
                if done:
                    self._lines.append(self._text)
                    self._text = ""
            case BytesMessage(data=data):
                self.binary.append(bytes(data))
            case Ping():
                self.pings += 1
            case Pong():
                self.pongs += 1
            case CloseConnection(code=code):
                self.closed = code

    def lines(self) -> list[str]:
        """The lines (text messages) received since the last call."""
        self.read()
        lines, self._lines = self._lines, []
        return lines

    def send(self, text: str) -> None:
        """Send one text message."""
        self.channel.dataReceived(self.ws.send(TextMessage(text)))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (hand-made frames)."""
        self.channel.dataReceived(data)

    def register(self, nick: str) -> None:
        """Choose nick and check the welcome; forget what came."""
        self.send(nick)
        lines = self.lines()
        assert any(line.startswith(f"WELCOME {nick} ") for line in lines), lines
        assert f"JOIN #lobby {nick}" in lines, lines

    def drop(self) -> None:
        """The TCP connection is gone, as the reactor would say."""
        self.channel.connectionLost(Failure(ConnectionDone()))


def masked_frame(
    opcode: int, payload: bytes, fin: bool = True, length: int | None = None
) -> bytes:
    """A client frame made by hand (mask key 0: the payload reads as it is)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 65536:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload
