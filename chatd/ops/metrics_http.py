"""The --metrics listener: /metrics for Prometheus and /healthz, on twisted.web.

    /metrics   Prometheus' text format (or OpenMetrics when asked for in
               Accept; gzip when accepted), made by prometheus-client from
               chatd.ops.metrics' registry
    /healthz   200 while the daemon accepts connections, 503 once it shuts down
               (chatd.ops.health, also on the --web listener)

prometheus-client ships a twisted resource of its own (prometheus_client.
twisted.MetricsResource), but it runs the exposition in the reactor's thread
pool, and chatd's collectors read the chat's state, which belongs to the
reactor's thread. So MetricsResource here calls the client's own encoder in
the reactor's thread: a scrape reads each connection once, and nothing else
runs meanwhile.

The listener is started after the rest of the daemon and stopped after it
(MetricsService), so that /healthz can say 503 while clients are told BYE
and history is written, and Prometheus sees the last figures.

Only the plugin imports this module. Nothing below the doors imports
twisted.web (STYLE.md, section 10).
"""

from __future__ import annotations

import gzip

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry
from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request

from chatd.factory import ChatFactory
from chatd.net.http_limits import LimitedSite, Slots
from chatd.ops.health import HealthResource
from chatd.ops.metrics import ReactorLag, metrics_registry
from chatd.ops.service import ListenerService
from chatd.store.writer import SQLiteHistory

HTTP_TIMEOUT = 60.0  # seconds an idle HTTP connection to the listener is kept
# Connections to the listener at once, and from one address: a scraper uses
# one. They are apart from --max-clients (a full chat still answers its
# scrape) and within the 64 descriptors the daemon keeps beside it.
METRICS_CONNECTIONS = 16
METRICS_PER_ADDRESS = 4


class MetricsResource(Resource):
    """/metrics: the registry in the format the scraper asked for."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        accept = _header(request, b"accept")
        encoder, content_type = choose_encoder(accept)
        output = encoder(self.registry)
        if gzip_accepted(_header(request, b"accept-encoding")):
            output = gzip.compress(output)
            request.setHeader(b"Content-Encoding", b"gzip")
        request.setHeader(b"Content-Type", content_type.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        return output


def _header(request: Request, name: bytes) -> str:
    value = request.getHeader(name)
    return value.decode("latin-1") if value is not None else ""


class MetricsSite(LimitedSite):
    """The listener's site: quiet (no access log line per scrape), limited
    as the --web one is (no bodies, a header deadline, counted connections)."""

    noisy = False

    def log(self, request: http.Request) -> None:
        """No access log: a scrape every 15 s would fill the log."""


def metrics_site(hub: ChatFactory, registry: CollectorRegistry) -> MetricsSite:
    """The site with /metrics and /healthz."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    root.putChild(b"healthz", HealthResource(hub))
    slots = Slots(
        METRICS_CONNECTIONS,
        METRICS_PER_ADDRESS,
        lambda host, reason: hub.note_refusal(host, f"--metrics: {reason}"),
    )
    site = MetricsSite(root, slots, hub.clock, HTTP_TIMEOUT)
    site.displayTracebacks = False
    return site


class MetricsService(MultiService):
    """The daemon's services with the metrics listener around them.

    Children start in order: the daemon (its listeners open), the reactor-lag
    timer, then the metrics listener. At stop the daemon stops first, and the
    listener only once that is done: meanwhile /healthz answers 503 and
    /metrics shows the shutdown's figures.
    """

    def __init__(self, daemon: IService, lag: Service, listener: Service) -> None:
        super().__init__()
        self.daemon = daemon
        self.lag = lag
        self.listener = listener
        for child in (daemon, lag, listener):
            child.setServiceParent(self)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        stopped = defer.maybeDeferred(self.daemon.stopService)

        def then_the_rest(result: object) -> defer.Deferred[object]:
            self.lag.stopService()
            listener = defer.maybeDeferred(self.listener.stopService)
            return listener.addCallback(lambda _: result)

        stopped.addBoth(then_the_rest)
        return stopped.addCallback(lambda _: None)


def metrics_service(
    daemon: IService,
    hub: ChatFactory,
    history: SQLiteHistory | None,
    description: str,
    endpoint: IStreamServerEndpoint,
    doors: list[str],
) -> MetricsService:
    """Wrap daemon with a --metrics listener at endpoint (description: its string).

    doors: the names of the doors listened for (chatd.doors), so that their
    series exist (at 0) from the start.
    """
    for door in doors:
        hub.stats.door(door)
    lag = ReactorLag(hub.clock)
    registry = metrics_registry(hub, history, lag)
    listener = ListenerService(
        description,
        endpoint,
        metrics_site(hub, registry),
        name="metrics",
        title="metrics",
        option="metrics",
    )
    return MetricsService(daemon, lag, listener)
