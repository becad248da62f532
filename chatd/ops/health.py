"""/healthz, on the --metrics listener and the --web one alike.

200 and a small JSON object with the counts while the daemon accepts
connections; 503 (status "stopping") from the moment it begins to shut down
(ChatFactory.close_all, on SIGTERM) until it exits, so that a load balancer
or an orchestrator stops sending clients at once; 503 too (status
"cluster-down") while a cluster node has no link to the others.
"""

from __future__ import annotations

import json

from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request

from chatd.factory import ChatFactory


def health(hub: ChatFactory) -> tuple[int, dict[str, object]]:
    """The /healthz answer: (HTTP status, JSON body); 503 once the daemon stops."""
    chat = hub.chat
    history = chat.history
    if history is None:
        kept = "off"
    elif history.reason is None:
        kept = "ok"
    else:
        kept = "unavailable"
    # A cluster node cut off from the others (docs/cluster.md) takes no new
    # clients either: a load balancer sends them to the nodes that can serve.
    cut_off = getattr(chat, "up", True) is False
    status = "stopping" if hub.stopping else "cluster-down" if cut_off else "ok"
    body: dict[str, object] = {
        "status": status,
        "connections": len(hub.connections),
        # --web's HTTP connections not (yet) WebSockets, the asking one included
        "http": hub.http_open,
        "users": len(chat.users),
        "rooms": len(chat.rooms),
        "history": kept,
    }
    return (http.OK if status == "ok" else http.SERVICE_UNAVAILABLE), body


class HealthResource(Resource):
    """/healthz: 200 while the daemon accepts connections, 503 while it shuts down."""

    isLeaf = True

    def __init__(self, hub: ChatFactory) -> None:
        super().__init__()
        self.hub = hub

    def render_GET(self, request: Request) -> bytes:
        status, body = health(self.hub)
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(body).encode() + b"\n"
