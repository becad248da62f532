"""Which pages may use the WebSocket: origins as browsers spell them.

A browser sends the page's origin (scheme://host[:port]) with every
WebSocket it opens. chatd lets the page it served itself connect, and pages
from the origins given with --web-origin; any other page is refused, so
that a site a user happens to visit cannot chat in the user's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(text: str) -> str | None:
    """Spell an origin as a browser compares it: scheme://host[:port], or None.

    Lower case, no default port, no path. "*" stands for any origin.
    """
    text = text.strip()
    if text == "*":
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _host_and_port(netloc: str, default: int) -> tuple[str, int] | None:
    """Split a Host header (or an origin's netloc); None if it cannot be read."""
    try:
        parts = urlsplit("//" + netloc.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), default if port is None else port


class Origins:
    """Which pages may open the WebSocket: the page's own, and those allowed."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.any = "*" in allowed
        self.allowed = frozenset(allowed)

    def allows(self, origin: str, host: str | None) -> bool:
        """Tell whether a page from origin may connect to the site at host.

        The page's own origin is the Host it was asked for (the scheme is
        not compared: behind a TLS proxy the page is https and this side
        is not); a browser always sends Origin, so a client that sends none
        is no browser and no page can have sent it elsewhere.
        """
        if self.any:
            return True
        spelled = normalize_origin(origin)
        if spelled is None:
            return False  # "null" (a file, a sandbox) or nonsense
        if spelled in self.allowed:
            return True
        if host is None:
            return False
        scheme = spelled.split(":", 1)[0]
        ours = _host_and_port(host, DEFAULT_PORTS[scheme])
        theirs = _host_and_port(spelled.split("//", 1)[1], DEFAULT_PORTS[scheme])
        return ours is not None and ours == theirs
