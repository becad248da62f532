"""The shared factory: one Chat for every listener, and the open connections."""

from __future__ import annotations

import sys
from collections import Counter

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from chatd.chat import Chat
from chatd.config import ServerConfig
from chatd.output import OutputBatch
from chatd.protocol import ChatProtocol, RefusedProtocol


def address_host(addr: IAddress | None) -> str:
    """Return the host part of a peer address: what --max-per-ip counts."""
    host = getattr(addr, "host", None)
    return host if isinstance(host, str) else str(addr)


class ChatFactory(ServerFactory):
    """Builds a ChatProtocol per connection; all of them share one Chat."""

    log = Logger()
    noisy = False  # the listeners log their address themselves (chatd.service)

    def __init__(self, config: ServerConfig, clock: IReactorTime) -> None:
        self.config = config
        self.clock = clock
        self.chat = Chat(
            server_name=config.name,
            max_rooms=config.max_rooms,
            max_rooms_per_user=config.max_rooms_per_user,
        )
        self.output = OutputBatch(clock, config.flush_delay)
        self.connections: set[ChatProtocol] = set()
        self.per_host: Counter[str] = Counter()
        self._drained: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        """Build a ChatProtocol, or a refusal past --max-clients or --max-per-ip."""
        host = address_host(addr)
        if len(self.connections) >= self.config.max_clients:
            return self._refuse(
                host, f"the server is full ({self.config.max_clients} connections)"
            )
        if self.per_host[host] >= self.config.max_per_ip:
            return self._refuse(
                host,
                f"too many connections from your address "
                f"({self.config.max_per_ip} at most)",
            )
        connection = ChatProtocol(self)
        connection.host = sys.intern(host)  # one string per address, not per peer
        return connection

    def _refuse(self, host: str, reason: str) -> RefusedProtocol:
        self.log.warn(
            "refused a connection from {host}: {reason}", host=host, reason=reason
        )
        return RefusedProtocol(reason)

    def connection_made(self, connection: ChatProtocol) -> None:
        """Count connection among the open ones."""
        self.connections.add(connection)
        self.per_host[connection.host] += 1

    def connection_lost(self, connection: ChatProtocol) -> None:
        """Forget connection; fire the waiters of close_all once none is left."""
        if connection not in self.connections:
            return
        self.connections.remove(connection)
        self.per_host[connection.host] -= 1
        if not self.per_host[connection.host]:
            del self.per_host[connection.host]
        if not self.connections:
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                waiter.callback(None)

    def close_all(self, reason: str) -> defer.Deferred[None]:
        """Send BYE reason to every connection and close it.

        The Deferred fires when all are gone. A connection that has not closed
        within the configured grace (its peer stopped reading, say) is aborted.
        """
        if not self.connections:
            return defer.succeed(None)
        self.log.info(
            "closing {count} connections: {reason}",
            count=len(self.connections),
            reason=reason,
        )
        drained: defer.Deferred[None] = defer.Deferred()
        self._drained.append(drained)
        for connection in list(self.connections):
            connection.close(reason)
        laggards = self.clock.callLater(self.config.shutdown_grace, self._abort_all)
        drained.addBoth(lambda result: laggards.cancel() if laggards.active() else None)
        return drained

    def _abort_all(self) -> None:
        for connection in list(self.connections):
            connection.transport.abortConnection()
