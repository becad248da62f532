"""The doors' hub: one Chat for every listener, and the open connections."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from chatd.config import ReloadReport, ServerConfig, no_reload
from chatd.model.accounts import Accounts, Hasher, Runner, run_inline
from chatd.model.chat import Chat
from chatd.model.server_bans import ServerBanned
from chatd.net.closing import Refusal
from chatd.net.connection import Connection
from chatd.net.output import OutputBatch
from chatd.net.stats import Stats
from chatd.store.accounts import MemoryAccounts
from chatd.store.interface import AccountStore, IHistory


def address_host(addr: IAddress | None) -> str:
    """Return the host part of a peer address: what --max-per-ip counts."""
    host = getattr(addr, "host", None)
    return host if isinstance(host, str) else str(addr)


REFUSAL_NOTE_SECONDS = 60.0  # an address's refusals are logged once per this
MAX_REFUSAL_NOTES = 10_000  # addresses remembered before the quiet ones go


class ChatFactory:
    """The doors' hub: one Chat, the open connections of every door, the caps.

    It knows no door: door(cls) gives the factory a door's listeners listen
    with (chatd.doors, Door.serve), every one sharing all of this.
    """

    log = Logger()

    def __init__(
        self,
        config: ServerConfig,
        clock: IReactorTime,
        history: IHistory | None = None,
        account_store: AccountStore | None = None,
        hashing: Runner[object] = run_inline,
        chat_type: type[Chat] = Chat,
    ) -> None:
        """hashing runs Argon2 off the reactor (the daemon gives a thread
        pool); the default runs it at once, for tests with cheap settings.
        chat_type: a cluster node's replica (chatd.cluster.replica)."""
        self.config = config
        self.clock = clock
        self.chat = chat_type(
            server_name=config.name,
            max_rooms=config.max_rooms,
            max_rooms_per_user=config.max_rooms_per_user,
            history=history,
            now=clock.seconds,
            server_operators=config.operators,
            motd=config.motd,
        )
        self.accounts = Accounts(
            self.chat,
            account_store if account_store is not None else MemoryAccounts(),
            Hasher(config.accounts, hashing),
            clock,
            config.accounts,
        )
        self.output = OutputBatch(clock, config.flush_delay)
        self.connections: set[Connection] = set()
        # HTTP connections of the --web listener not (yet) a WebSocket: each
        # holds a descriptor, so each takes a slot of --max-clients and of
        # its address's --max-per-ip as a chat connection does.
        self.http_open = 0
        self.per_host: Counter[str] = Counter()
        # Refusals logged per address: when last, and how many since (unlogged).
        self._refusals: dict[str, list[float]] = {}
        self._drained: list[defer.Deferred[None]] = []
        self.stats = Stats()  # counted for --metrics (chatd.net.stats)
        self.stopping = False  # close_all has begun: /healthz answers 503
        # The class built for each door's connections: a cluster node puts its
        # own subclasses here (chatd.cluster.doors); one process, none.
        self.door_classes: dict[type[Connection], type[Connection]] = {}
        # Re-reads the config file and applies it (chatd.ops.reload, set by
        # the plugin): what a server operator's REHASH or /rehash runs.
        self.reloader: Callable[[str], ReloadReport] = lambda who: no_reload()

    def reconfigure(self, config: ServerConfig) -> None:
        """Take the settings of a reloaded config file (chatd.ops.reload).

        --max-clients and --max-per-ip count from the next connection on; the
        chat takes its own (chat.reconfigure). A connection keeps the limits
        it was made with (its flood gate, queues and timeouts); connections
        made from now on get the new ones.
        """
        self.config = config
        self.chat.reconfigure(
            motd=config.motd,
            max_rooms=config.max_rooms,
            max_rooms_per_user=config.max_rooms_per_user,
            server_operators=config.operators,
        )

    def rehash(self, who: str) -> ReloadReport:
        """Re-read the config file at who's request (a server operator's nick)."""
        return self.reloader(f"rehash by {who}")

    def door(self, door: type[Connection]) -> DoorFactory:
        """Return a factory for a door's connections, sharing this hub."""
        return DoorFactory(self, door)

    def build(self, door: type[Connection], addr: IAddress | None) -> Protocol:
        """Build a connection of door, or a refusal past --max-clients/--max-per-ip."""
        host = address_host(addr)
        banned = self.banned(host, door.door)
        if banned is not None:  # before a word is read (docs/protocol.md)
            answer = door.ban_refusal(banned, self.config.name)
            return Refusal(answer, self.clock, self.config.shutdown_grace)
        reason = self.refusal_reason(host, door.door)
        if reason is not None:
            return Refusal(door.refusal(reason), self.clock, self.config.shutdown_grace)
        connection = self.door_classes.get(door, door)(self)
        connection.host = sys.intern(host)  # one string per address, not per peer
        return connection

    def refusal_reason(self, host: str | None, door: str) -> str | None:
        """Why a new connection of door from host cannot be taken now, or None.

        Every open descriptor counts: chat connections and the --web
        listener's HTTP connections alike. host None: --max-clients only (a
        trusted proxy's HTTP connections speak for many people).
        A refusal is noted in the log and counted (chatd.net.stats).
        """
        if len(self.connections) + self.http_open >= self.config.max_clients:
            reason = f"the server is full ({self.config.max_clients} connections)"
            self.stats.limit_hit(door, "server-full")
        elif host is None:
            return None
        elif self.per_host[host] >= self.config.max_per_ip:
            reason = (
                f"too many connections from your address "
                f"({self.config.max_per_ip} at most)"
            )
            self.stats.limit_hit(door, "per-ip")
        else:
            return None
        self.note_refusal(host or "a trusted proxy", reason)
        return reason

    def banned(self, host: str, door: str) -> ServerBanned | None:
        """The refusal of a connection from host a server ban holds for, if any
        (noted in the log, once a while per address, and counted)."""
        banned = self.chat.server_ban_for_address(host)
        if banned is not None:
            self.stats.limit_hit(door, "banned")
            self.note_refusal(host, banned.goodbye)
        return banned

    def note_refusal(self, host: str, reason: str) -> None:
        """Log a refusal once per address and REFUSAL_NOTE_SECONDS, counting the rest.

        An address that reconnects in a loop would otherwise write a line to
        the log for every attempt.
        """
        now = self.clock.seconds()
        noted = self._refusals.get(host)
        if noted is not None and now - noted[0] < REFUSAL_NOTE_SECONDS:
            noted[1] += 1
            return
        if len(self._refusals) > MAX_REFUSAL_NOTES:  # forget the quiet addresses
            self._refusals = {
                key: value
                for key, value in self._refusals.items()
                if now - value[0] < REFUSAL_NOTE_SECONDS
            }
        more = noted[1] if noted is not None else 0
        self._refusals[host] = [now, 0]
        self.log.warn(
            "refused a connection from {host}: {reason}{more}",
            host=host,
            reason=reason,
            more=f" ({more} more refused since the last note)" if more else "",
        )

    def http_opened(self, host: str | None) -> None:
        """Count an HTTP connection of --web (host None: not per address)."""
        self.http_open += 1
        if host is not None:
            self.per_host[host] += 1

    def http_closed(self, host: str | None) -> None:
        """Forget an HTTP connection: it closed, or became a WebSocket."""
        self.http_open -= 1
        if host is not None:
            self._forget_host(host)

    def connection_made(self, connection: Connection) -> None:
        """Count connection among the open ones."""
        self.connections.add(connection)
        self.per_host[connection.host] += 1

    def connection_lost(self, connection: Connection) -> None:
        """Forget connection; fire the waiters of close_all once none is left."""
        if connection not in self.connections:
            return
        self.connections.remove(connection)
        self._forget_host(connection.host)
        if not self.connections:
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                waiter.callback(None)

    def _forget_host(self, host: str) -> None:
        self.per_host[host] -= 1
        if not self.per_host[host]:
            del self.per_host[host]

    def close_all(self, reason: str) -> defer.Deferred[None]:
        """Send BYE reason to every connection and close it.

        The Deferred fires when all are gone. A connection that has not closed
        within the configured grace (its peer stopped reading, say) aborts
        itself (Connection.close).
        """
        self.stopping = True
        if not self.connections:
            return defer.succeed(None)
        self.log.info(
            "closing {count} connections: {reason}",
            count=len(self.connections),
            reason=reason,
        )
        drained: defer.Deferred[None] = defer.Deferred()
        self._drained.append(drained)
        connections = list(self.connections)
        for connection in connections:  # everyone hears BYE before anyone leaves
            connection.close(reason, leave=False)
        for connection in connections:
            connection.leave(reason)
        return drained


class DoorFactory(ServerFactory):
    """Builds one door's connections through the shared hub."""

    noisy = False

    def __init__(self, hub: ChatFactory, door: type[Connection]) -> None:
        self.hub = hub
        self.door = door

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return self.hub.build(self.door, addr)
