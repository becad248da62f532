"""Shared test helpers: fake clients, connected protocols, line splitting."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.config import AccountSettings, ServerConfig
from chatd.factory import ChatFactory
from chatd.model.chat import Event, IChatClient
from chatd.protocol import LineConnection

# A moment with a date (2026-11-30T23:50:01.123Z): where the clock of a module
# marked dated starts, so that history's timestamps read as real ones.
NOW = 1_796_082_601.123

WAIT = 10.0  # seconds: the bound on every wait for another thread


@implementer(IChatClient)
@dataclass(eq=False)
class RecordingClient:
    """An IChatClient that keeps what it was given."""

    identify_hint = "/identify <password>"
    events: list[Event] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def deliver(self, event: Event) -> None:
        self.events.append(event)

    def close(self, reason: str) -> None:
        self.closed.append(reason)

    def take(self) -> list[Event]:
        """Return the events so far and forget them."""
        events, self.events = self.events, []
        return events


# Argon2 as cheap as it goes: tests check what is done with hashes, not their
# cost (the daemon uses AccountSettings' defaults).
CHEAP = AccountSettings(time_cost=1, memory_cost=8, parallelism=1)


def make_factory(clock: Clock | None = None, **settings: object) -> ChatFactory:
    """Return a ChatFactory on a fake clock with the given ServerConfig settings.

    Argon2 is CHEAP unless settings give accounts=...
    """
    settings.setdefault("accounts", CHEAP)
    return ChatFactory(ServerConfig(**settings), clock or Clock())  # type: ignore[arg-type]


def open_any(
    factory: ChatFactory, port: int = 40001, host: str = "127.0.0.1"
) -> tuple[Protocol, StringTransport]:
    """Build and connect whatever protocol the factory gives for this address."""
    address = IPv4Address("TCP", host, port)
    proto = factory.door(LineConnection).buildProtocol(address)  # as --listen's
    transport = StringTransport(peerAddress=address)
    proto.makeConnection(transport)
    return proto, transport


def open_connection(
    factory: ChatFactory, port: int = 40001, host: str = "127.0.0.1"
) -> tuple[LineConnection, StringTransport]:
    """Build and connect one protocol; HELLO and NICK are left in the transport."""
    proto, transport = open_any(factory, port, host)
    assert isinstance(proto, LineConnection), transport.value()
    return proto, transport


_ports = iter(range(40001, 60000))


def connect(factory: ChatFactory, nick: str) -> tuple[LineConnection, StringTransport]:
    """Build, connect and register one client; return (protocol, transport).

    Each client comes from its own address, so --max-per-ip does not apply.
    """
    port = next(_ports)
    host = f"127.0.{port // 250 % 250}.{port % 250 + 1}"
    proto, transport = open_connection(factory, port, host)
    proto.dataReceived(nick.encode() + b"\r\n")
    assert proto.user is not None, transport.value()
    transport.clear()
    return proto, transport


def disconnect(proto: LineConnection) -> None:
    """Tell proto its connection closed, as the reactor would."""
    proto.connectionLost(Failure(ConnectionDone()))


def lines(transport: StringTransport) -> list[str]:
    """Return the lines written so far (CRLF checked and removed) and clear them."""
    data = transport.value()
    transport.clear()
    assert data == b"" or data.endswith(b"\r\n"), data
    text = data.decode("utf-8")
    return text.split("\r\n")[:-1] if text else []


@implementer(IReactorFromThreads)
class Mailbox:
    """callFromThread for tests: calls from a thread wait here until run()."""

    def __init__(self) -> None:
        self.calls: queue.Queue[
            tuple[Callable[..., Any], tuple[object, ...], dict[str, object]]
        ] = queue.Queue()

    def callFromThread(
        self, callable: Callable[..., Any], *args: object, **kwargs: object
    ) -> None:
        self.calls.put((callable, args, kwargs))

    def run_one(self) -> None:
        """Wait (at most WAIT seconds) for one call from the thread and make it."""
        try:
            callable, args, kwargs = self.calls.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no call from the thread within {WAIT}s") from None
        callable(*args, **kwargs)

    def run_until(self, done: Callable[[], bool]) -> None:
        """Make calls from the thread until done() says so."""
        while not done():
            self.run_one()
