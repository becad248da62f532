"""twistd services: listeners that log their real address, and a clean shutdown."""

from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from zope.interface import implementer

from chatd.factory import ChatFactory

SHUTDOWN_REASON = "The server is shutting down. See you soon."


@implementer(IStreamServerEndpoint)
class LoggedEndpoint:
    """An endpoint that logs the address it actually bound (tcp:0 gets a port)."""

    log = Logger()

    def __init__(self, description: str, endpoint: IStreamServerEndpoint) -> None:
        self.description = description
        self.endpoint = endpoint

    def listen(
        self, protocolFactory: IProtocolFactory
    ) -> defer.Deferred[IListeningPort]:
        listening = self.endpoint.listen(protocolFactory)

        def bound(port: IListeningPort) -> IListeningPort:
            host = port.getHost()
            self.log.info(
                "chatd listening on {description}: {host} port {port}",
                description=self.description,
                host=getattr(host, "host", host),
                port=getattr(host, "port", "?"),
            )
            return port

        return listening.addCallback(bound)


def listener(
    description: str, endpoint: IStreamServerEndpoint, factory: ChatFactory
) -> StreamServerEndpointService:
    """Return a service listening on endpoint, failing twistd if it cannot bind."""
    service = StreamServerEndpointService(
        LoggedEndpoint(description, endpoint), factory
    )
    service._raiseSynchronously = True  # a busy port stops twistd with the reason
    return service


class FarewellService(Service):
    """On stop (SIGTERM), tell every client BYE and wait until all are closed."""

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return self.factory.close_all(SHUTDOWN_REASON)
