"""Which pages may use the WebSocket: origins as browsers spell them.

A browser sends the page's origin (scheme://host[:port]) with every
WebSocket it opens. chatd lets its own page connect (served from a name of
this machine at the listener's port), and pages from the origins given with
--web-origin; any other page is refused, so that a site a user happens to
visit cannot chat in the user's name, not even one whose name was made to
resolve to this server (DNS rebinding).
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


# The names this machine answers to on its own, whatever its network: a page
# served from one of them at the listener's port is chatd's own page.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _port_of(spelled: str) -> int:
    """The port of a normalised origin (its scheme's default when not written)."""
    scheme, _, rest = spelled.partition("://")
    host_port = rest.rsplit("]", 1)[-1]  # after an IPv6 address's brackets
    if ":" in host_port:
        return int(host_port.rsplit(":", 1)[1])
    return DEFAULT_PORTS[scheme]


def _host_of(spelled: str) -> str:
    """The host of a normalised origin, without an IPv6 address's brackets."""
    rest = spelled.partition("://")[2]
    if rest.startswith("["):
        return rest[1 : rest.index("]")]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


class Origins:
    """Which pages may open the WebSocket: chatd's own, and those allowed.

    chatd's own page is one served from a name of this machine (localhost,
    127.0.0.1, ::1, its host name, the address the connection came in on)
    at the listener's own port, over http or https. The request's Host is
    never compared: under DNS rebinding a page of evil.example:PORT reaches
    this server with Host evil.example:PORT, and matching it would let that
    page in. A page served under any other name (a reverse proxy's public
    one) is allowed by naming its origin with --web-origin.
    """

    def __init__(self, allowed: Iterable[str] = (), hostname: str = "") -> None:
        allowed = tuple(allowed)
        self.any = "*" in allowed
        self.allowed = frozenset(allowed)
        names = set(LOOPBACK_NAMES)
        if hostname:
            names.add(hostname.lower())
        self.own_names = frozenset(names)

    def allows(self, origin: str, local_host: str, local_port: int) -> bool:
        """Tell whether a page from origin may connect to the listener at
        local_host:local_port (the address the connection came in on)."""
        if self.any:
            return True
        spelled = normalize_origin(origin)
        if spelled is None:
            return False  # "null" (a file, a sandbox) or nonsense
        if spelled in self.allowed:
            return True
        if spelled.split("://", 1)[0] not in ("http", "https"):
            return False
        host = _host_of(spelled)
        if host not in self.own_names and host != local_host.lower():
            return False
        return _port_of(spelled) == local_port
