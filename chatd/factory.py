"""The shared factory: one Chat for every listener, and the open connections."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from chatd.chat import Chat
from chatd.config import ServerConfig
from chatd.protocol import ChatProtocol


class ChatFactory(ServerFactory):
    """Builds a ChatProtocol per connection; all of them share one Chat."""

    log = Logger()

    def __init__(self, config: ServerConfig, clock: IReactorTime) -> None:
        self.config = config
        self.clock = clock
        self.chat = Chat()
        self.connections: set[ChatProtocol] = set()
        self._drained: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        return ChatProtocol(self)

    def connection_made(self, connection: ChatProtocol) -> None:
        """Count connection among the open ones."""
        self.connections.add(connection)

    def connection_lost(self, connection: ChatProtocol) -> None:
        """Forget connection; fire the waiters of close_all once none is left."""
        self.connections.discard(connection)
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
