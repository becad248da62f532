"""The web site behind --web: the page, its files, the WebSocket and a health check.

    /            the page (static/index.html), revalidated on every load
    /static/...  its script, style and icon; cached for a year under a
                 versioned address (?v=<hash of the file>), so a new
                 release is fetched at once and an unchanged one never again
    /ws          the WebSocket (Twisted's own), one line per text message;
                 a page from another origin is refused (403) unless
                 --web-origin allows it
    /healthz     200 and a small JSON object while the server runs, 503 while
                 it shuts down (chatd.ops.health)

Every answer carries a Content-Security-Policy that allows the page's own
script and style only, and no framing, sniffing or referrer.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.web import http
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from twisted.web.websocket import WebSocketProtocol, WebSocketResource

from chatd.factory import ChatFactory, address_host
from chatd.net.http_limits import LimitedChannel, LimitedSite
from chatd.ops.health import HealthResource
from chatd.web.door import WebConnection, WebRefusal
from chatd.web.origins import Origins

# Only the page's own files; no inline script or style, no other site.
# connect-src 'self' covers ws: and wss: to the page's own host (CSP 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
FOREVER = "public, max-age=31536000, immutable"  # versioned addresses only
REVALIDATE = "no-cache"  # kept, but asked again (an ETag makes that a 304)
# An HTTP connection silent this long is closed; a WebSocket is the chat's
# (its own register and idle timeouts). Headers have HEADER_TIMEOUT
# (chatd.net.http_limits), and no request may have a body.
HTTP_TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the page, read at start: its bytes, type and version."""

    name: str
    body: bytes
    content_type: str
    version: str  # the start of the body's SHA-256: the file's ETag and ?v=

    @property
    def url(self) -> str:
        """The versioned address the page uses for it (relative to the page)."""
        return f"static/{self.name}?v={self.version}"  # relative: works under a prefix


def load_assets() -> dict[str, Asset]:
    """Read the page's files shipped in chatd/web/static."""
    assets = {}
    for entry in resources.files("chatd.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        version = hashlib.sha256(body).hexdigest()[:16]
        assets[entry.name] = Asset(entry.name, body, CONTENT_TYPES[suffix], version)
    return assets


def page_body(assets: dict[str, Asset]) -> bytes:
    """index.html with {{name}} replaced by each file's versioned address."""
    text = assets["index.html"].body.decode("utf-8")
    for name, asset in assets.items():
        text = text.replace("{{" + name + "}}", asset.url)
    return text.encode("utf-8")


def _send(request: Request, body: bytes, content_type: str, cache: str) -> bytes:
    """Answer with body, unless the browser's copy is current (304)."""
    request.setHeader("Cache-Control", cache)
    request.setHeader("Content-Type", content_type)
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    if request.setETag(etag.encode()):
        return b""  # 304 Not Modified: setETag set the code
    return body


class PageResource(Resource):
    """The page itself, at /."""

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return b"Not found.\n"
        return _send(request, self.body, CONTENT_TYPES[".html"], REVALIDATE)


class AssetResource(Resource):
    """One file under /static/: for a year at its current version, else revalidated."""

    isLeaf = True

    def __init__(self, asset: Asset) -> None:
        super().__init__()
        self.asset = asset

    def render_GET(self, request: Request) -> bytes:
        args: dict[bytes, list[bytes]] = request.args or {}
        current = args.get(b"v") == [self.asset.version.encode()]
        cache = FOREVER if current else REVALIDATE
        return _send(request, self.asset.body, self.asset.content_type, cache)


def forwarded_client(request: Request, trust_proxy: bool) -> tuple[IAddress, str]:
    """The client's address, and the proxy's ("" when it came directly).

    X-Forwarded-For is believed only with --web-trust-proxy, and only its
    last address: the one the proxy in front of chatd added (earlier ones
    are whatever the client said).
    """
    peer = request.getClientAddress()
    if not trust_proxy:
        return peer, ""
    header = request.getHeader("x-forwarded-for")
    if not header:
        return peer, ""
    last = header.split(",")[-1].strip()
    if last.startswith("[") and "]" in last:  # [v6]:port
        last = last[1 : last.index("]")]
    elif last.count(":") == 1:  # v4:port
        last = last.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(last)
    except ValueError:
        return peer, ""
    via = f"{address_host(peer)}:{getattr(peer, 'port', '?')}"
    if ip.version == 6:
        return IPv6Address("TCP", str(ip), 0), via
    return IPv4Address("TCP", str(ip), 0), via


class SocketDoor:
    """Builds the web door's connections through the shared hub (its caps too)."""

    def __init__(self, hub: ChatFactory, trust_proxy: bool) -> None:
        self.hub = hub
        self.trust_proxy = trust_proxy

    def buildProtocol(self, request: Request) -> WebSocketProtocol:
        channel = getattr(request, "channel", None)
        if isinstance(channel, LimitedChannel):
            # The WebSocket takes the HTTP connection's place in the counts.
            channel.release_slot()
        address, via = forwarded_client(request, self.trust_proxy)
        host = address_host(address)
        config = self.hub.config
        banned = self.hub.banned(host, WebConnection.door)
        if banned is not None:  # the page shows ERR banned and BYE
            answer = WebConnection.ban_refusal(banned, config.name)
            return WebRefusal("", self.hub.clock, config.shutdown_grace, answer)
        reason = self.hub.refusal_reason(host, WebConnection.door)
        if reason is not None:
            return WebRefusal(reason, self.hub.clock, config.shutdown_grace)
        # A cluster node builds its own subclass (ChatFactory.door_classes).
        door = self.hub.door_classes.get(WebConnection, WebConnection)
        connection = cast(WebConnection, door(self.hub))
        connection.host = host
        connection.address = address
        connection.via = via
        connection.request = request
        return connection


class ChatSocket(WebSocketResource):
    """/ws: Twisted's WebSocket, for pages of an allowed origin only."""

    log = Logger()

    def __init__(self, door: SocketDoor, origins: Origins) -> None:
        super().__init__(door)
        self.origins = origins

    def render_GET(self, request: Request) -> bytes | int:
        origin = request.getHeader("origin")
        local = request.getHost()
        if origin is not None and not self.origins.allows(
            origin, address_host(local), getattr(local, "port", 0)
        ):
            self.log.warn(
                "refused a WebSocket from {peer}: a page from {origin} "
                "(allow it with --web-origin)",
                peer=address_host(request.getClientAddress()),
                origin=origin,
            )
            request.setResponseCode(403)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return b"This page's origin may not use this chat server.\n"
        return super().render_GET(request)


class StaticResource(Resource):
    """/static/<name>: the page's files."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        super().__init__()
        for name, asset in assets.items():
            if name != "index.html":
                self.putChild(name.encode(), AssetResource(asset))

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()


class RootResource(Resource):
    """/ and its children; anything else is 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()


class WebSlots:
    """The --web listener's HTTP connections, counted in the chat's own caps.

    Behind a trusted proxy every connection comes from the proxy, which
    speaks for many people: they count in --max-clients only.
    """

    def __init__(self, hub: ChatFactory, trust_proxy: bool) -> None:
        self.hub = hub
        self.per_address = not trust_proxy

    def http_refusal(self, host: str) -> str | None:
        return self.hub.refusal_reason(
            host if self.per_address else None, WebConnection.door
        )

    def http_opened(self, host: str) -> None:
        self.hub.http_opened(host if self.per_address else None)

    def http_closed(self, host: str) -> None:
        self.hub.http_closed(host if self.per_address else None)

    def http_refused(self, host: str, reason: str) -> None:
        self.hub.note_refusal(host, reason)


class ChatSite(LimitedSite):
    """The site: security headers on every answer, no access log, the chat's caps."""

    noisy = False

    def getResourceFor(self, request: Request) -> IResource:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        return super().getResourceFor(request)

    # The WebSocket's resource: set_origins gives it a reloaded --web-origin.
    chat_socket: ChatSocket

    def log(self, request: http.Request) -> None:
        """No access log: the chat logs its connections, never what is read."""

    def set_origins(self, origins: Iterable[str]) -> None:
        """Allow the pages of origins (a reloaded --web-origin) from the next
        WebSocket on; open ones stay."""
        self.chat_socket.origins = Origins(origins, socket.gethostname())


def web_site(
    hub: ChatFactory, origins: Iterable[str] = (), trust_proxy: bool = False
) -> ChatSite:
    """Build the site for --web listeners, on the shared hub."""
    assets = load_assets()
    root = RootResource()
    root.putChild(b"", PageResource(page_body(assets)))
    root.putChild(b"static", StaticResource(assets))
    allowed = Origins(origins, socket.gethostname())
    chat_socket = ChatSocket(SocketDoor(hub, trust_proxy), allowed)
    root.putChild(b"ws", chat_socket)
    root.putChild(b"healthz", HealthResource(hub))
    slots = WebSlots(hub, trust_proxy)
    site = ChatSite(root, slots, hub.clock, HTTP_TIMEOUT, hub.config.shutdown_grace)
    site.chat_socket = chat_socket
    site.displayTracebacks = False
    return site
