"""twistd services: listeners that log their real address, and a clean shutdown."""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorFromThreads,
    IStreamServerEndpoint,
)
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from chatd.doors import Door
from chatd.factory import ChatFactory
from chatd.model.password_queue import THREADS
from chatd.store.sqlite import StoreError
from chatd.store.writer import SQLiteHistory

SHUTDOWN_REASON = "The server is shutting down. See you soon."
T = TypeVar("T")
# Threads that hash passwords: Argon2 takes its memory (64 MiB by default) per
# hash at once, so two at a time bound it; more wait their turn in
# chatd.model.password_queue, which hands the threads no more than that at once.
HASHING_THREADS = THREADS


@implementer(IStreamServerEndpoint)
class LoggedEndpoint:
    """An endpoint that logs the address it actually bound (tcp:0 gets a port).

    name: the listener's one spelling in the JSON log's door field (a
    door's name, or "metrics"); title: how the human text names it ("" for
    the line door: "chatd listening on", "IRC": "chatd IRC listening on").
    """

    log = Logger()

    def __init__(
        self,
        description: str,
        endpoint: IStreamServerEndpoint,
        name: str = "line",
        title: str = "",
        serves_page: bool = False,
    ) -> None:
        self.description = description
        self.endpoint = endpoint
        self.name = name
        self.serves_page = serves_page
        # The title is part of the text, not a field: fields carry one
        # spelling (door="irc"), the text stays as people read it.
        named = f"chatd {title} " if title else "chatd "
        self._listening = named + "listening on {description}: {host} port {port}"
        self._page = named + "page at {url}"

    def listen(
        self, protocolFactory: IProtocolFactory
    ) -> defer.Deferred[IListeningPort]:
        listening = self.endpoint.listen(protocolFactory)

        def bound(port: IListeningPort) -> IListeningPort:
            host = port.getHost()
            self.log.info(
                self._listening,
                door=self.name,
                description=self.description,
                host=getattr(host, "host", host),
                port=getattr(host, "port", "?"),
            )
            if self.serves_page:
                self.log.info(
                    self._page, door=self.name, url=page_url(self.description, host)
                )
            return port

        return listening.addCallback(bound)


def page_url(description: str, host: object) -> str:
    """The address to open for a --web listener (its bound host and port)."""
    scheme = "https" if description.split(":", 1)[0].lower() == "ssl" else "http"
    name = getattr(host, "host", "localhost")
    if name in ("0.0.0.0", "::", ""):
        name = "localhost"  # every interface: this machine's own name works
    if ":" in name:
        name = f"[{name}]"
    return f"{scheme}://{name}:{getattr(host, 'port', '?')}/"


class ListenerService(StreamServerEndpointService):
    """Listens on one --listen (--irc, --web) endpoint; if it cannot, twistd stops."""

    def __init__(
        self,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        name: str = "line",
        title: str = "",
        option: str = "listen",
        serves_page: bool = False,
    ) -> None:
        super().__init__(
            LoggedEndpoint(description, endpoint, name, title, serves_page), factory
        )
        self.description = description
        self.option = f"--{option}"
        # Twisted's own switch (strports.service sets it too): a listen that
        # fails at once raises from privilegedStartService instead of logging.
        self._raiseSynchronously = True

    @classmethod
    def of_door(
        cls,
        door: Door,
        option: str,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
    ) -> ListenerService:
        """A listener of door, opened by --option (the declaration names it)."""
        return cls(
            description,
            endpoint,
            factory,
            door.name,
            door.title,
            option,
            door.serves_page,
        )

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except Exception as error:
            # One sentence instead of a traceback: twistd prints it and exits 1.
            raise SystemExit(
                f"chatd: cannot listen on {self.description} ({self.option}): {error}"
            ) from None


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft open-file limit to its hard limit.

    Each connection is one file descriptor; the usual soft limit of 1024 would
    cap chatd below --max-clients. Returns (before, after).
    """
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    after = before if hard == resource.RLIM_INFINITY else max(before, hard)
    if after != before:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (after, hard))
        except (ValueError, OSError):
            after = before
    return before, after


class FileLimitService(Service):
    """At start, raises the open-file limit as far as allowed, and says so."""

    log = Logger()

    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        before, after = raise_open_file_limit()
        if after > before:
            self.log.info(
                "open-file limit raised from {before} to {after} (the hard limit)",
                before=before,
                after=after,
            )
        else:
            self.log.info("open-file limit is {limit}", limit=after)
        if after < self.max_clients + 64:
            self.log.warn(
                "--max-clients {clients} is more than the open-file limit allows "
                "({limit}); raise the hard limit (ulimit -Hn) to hold them all",
                clients=self.max_clients,
                limit=after,
            )


def _then_fire(result: T, waiter: defer.Deferred[None]) -> T:
    """Pass result on, and fire waiter: the work it waited for is done."""
    waiter.callback(None)
    return result


class HashingService(Service):
    """A small pool of threads of its own for password hashing (chatd.model.accounts).

    Kept apart from the reactor's pool and from the history's thread, so
    that a burst of logins never delays a DNS lookup or a history write.
    """

    def __init__(self, reactor: IReactorFromThreads) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(0, HASHING_THREADS, name="chatd-passwords")
        self._running: set[defer.Deferred[Any]] = set()  # work not yet done

    def run(self, work: Callable[[], T]) -> defer.Deferred[T]:
        """Run work on the pool; the Deferred fires on the reactor's thread."""
        if not self.pool.started:
            self.pool.start()  # also before startService: a test factory may ask
        done = deferToThreadPool(self.reactor, self.pool, work)
        self._running.add(done)

        def finished(result: T) -> T:
            self._running.discard(done)
            return result

        return done.addBoth(finished)

    def idle(self) -> defer.Deferred[None]:
        """Fire once no work is running, and what its callers chained is done.

        Work that waited in the password queue starts as other work ends:
        it is waited for too.
        """
        # A callback added now runs after those the callers added before it.
        each: list[defer.Deferred[None]] = []
        for running in list(self._running):
            one: defer.Deferred[None] = defer.Deferred()
            running.addBoth(_then_fire, one)
            each.append(one)
        if not each:
            return defer.succeed(None)
        return defer.gatherResults(each).addCallback(lambda _: self.idle())

    def startService(self) -> None:
        super().startService()
        if not self.pool.started:
            self.pool.start()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        self.pool.stop()
        return None


class FarewellService(Service):
    """On stop (SIGTERM), tell every client BYE and wait until all are closed."""

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return self.factory.close_all(SHUTDOWN_REASON)


class HistoryService(Service):
    """Opens the history at start (or stops twistd with why); writes it all at stop.

    Added before the listeners and FarewellService, it stops after them: by
    then nobody can say anything more, and everything said is written before
    the process exits.
    """

    log = Logger()

    def __init__(
        self,
        history: SQLiteHistory,
        before_close: Callable[[], defer.Deferred[None]] | None = None,
    ) -> None:
        self.history = history
        # Work whose results the store must still keep (a password hash whose
        # account is written when it is done): twistd stops every service in
        # the same turn, so the close waits for it.
        self.before_close = before_close

    def startService(self) -> None:
        try:
            self.history.open()
        except StoreError as error:
            # One sentence instead of a traceback: twistd prints it and exits 1.
            raise SystemExit(str(error)) from None
        super().startService()
        # days a number in the fields (0: for ever), the words in the text.
        days = self.history.keep_days
        self.log.info(
            "history kept in {path}, for {days:g} days"
            if days
            else "history kept in {path}, for ever",
            path=self.history.path,
            days=days,
        )

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        if self.before_close is None:
            return self.history.close()
        waiting = self.before_close()
        waiting.addCallback(lambda _: self.history.close())
        return waiting
