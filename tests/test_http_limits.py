"""The HTTP side of --web and --metrics: no bodies, a header deadline, counted slots."""

from __future__ import annotations

import pytest
from helpers import make_factory, open_any
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from web_helpers import LISTENER, FakeBrowser, http_get, make_site

from chatd.factory import ChatFactory
from chatd.net.http_limits import HEADER_TIMEOUT, LimitedChannel, LimitedSite
from chatd.ops.metrics import ReactorLag, metrics_registry
from chatd.ops.metrics_http import METRICS_PER_ADDRESS, metrics_site


def open_http(
    site: LimitedSite, port: int, host: str = "127.0.0.1"
) -> tuple[Protocol, StringTransport]:
    """Connect one HTTP client to site through a StringTransport."""
    peer = IPv4Address("TCP", host, port)
    protocol = site.buildProtocol(peer)
    assert protocol is not None
    transport = StringTransport(hostAddress=LISTENER, peerAddress=peer)
    protocol.makeConnection(transport)
    return protocol, transport


def close(protocol: Protocol) -> None:
    """The reactor's word that the connection is gone."""
    protocol.connectionLost(Failure(ConnectionDone()))


def status(transport: StringTransport) -> int:
    """The status code of the answer written to transport (0: nothing yet)."""
    data = transport.value()
    return int(data.split(b" ", 2)[1]) if data else 0


def sites(clock: Clock) -> list[tuple[str, LimitedSite, ChatFactory]]:
    """The --web site and the --metrics one, each on a hub of its own."""
    web = make_factory(clock)
    metrics = make_factory(clock)
    return [
        ("web", make_site(web), web),
        ("metrics", metrics_site(metrics, CollectorRegistry()), metrics),
    ]


@pytest.mark.parametrize("which", ["web", "metrics"])
def test_a_huge_body_is_refused_413_before_a_byte_of_it_is_read(
    clock: Clock, which: str
) -> None:
    """POST /healthz with Content-Length 300 MB: 413 as the header arrives, the
    connection closes, and no body is kept (the request never got a file)."""
    _, site, _ = dict((name, (name, s, f)) for name, s, f in sites(clock))[which]
    channel, transport = open_http(site, 50000)
    channel.dataReceived(
        b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    assert status(transport) == 413
    assert transport.disconnecting
    assert isinstance(channel, LimitedChannel)
    (request,) = channel.requests
    assert request.content is None  # no temporary file, no buffer
    channel.dataReceived(b"x" * 65536)  # the body, had it been sent
    assert request.content is None and transport.value().count(b"HTTP/1.1") == 1


def test_a_chunked_body_is_refused_411(clock: Clock) -> None:
    """A body of unknown length cannot be bounded in advance: 411, closed."""
    channel, transport = open_http(make_site(make_factory(clock)), 50000)
    channel.dataReceived(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert status(transport) == 411 and transport.disconnecting


def test_a_small_body_is_still_answered(clock: Clock) -> None:
    """A client that sends a few bytes with its GET gets its answer."""
    channel, transport = open_http(make_site(make_factory(clock)), 50000)
    channel.dataReceived(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\n\r\nhi"
    )
    assert status(transport) == 200


@pytest.mark.parametrize("which", ["web", "metrics"])
def test_headers_must_be_whole_within_the_deadline(clock: Clock, which: str) -> None:
    """A request trickled a byte a second is cut at HEADER_TIMEOUT with 408; a
    connection that sends nothing is closed without a word; a whole request is
    not, and the next one gets its own deadline."""
    _, site, _ = dict((name, (name, s, f)) for name, s, f in sites(clock))[which]
    slow, slow_out = open_http(site, 50001)
    silent, silent_out = open_http(site, 50002)
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
        slow.dataReceived(bytes((byte,)))
        clock.advance(HEADER_TIMEOUT / 40)  # the idle timeout never fires
        if slow_out.disconnecting:
            break
    clock.advance(HEADER_TIMEOUT)
    assert status(slow_out) == 408 and slow_out.disconnecting
    assert silent_out.value() == b"" and silent_out.disconnecting

    kept, kept_out = open_http(site, 50003)
    kept.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(kept_out) == 200
    clock.advance(HEADER_TIMEOUT - 1)
    assert not kept_out.disconnecting
    kept_out.clear()
    kept.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(kept_out) == 200
    clock.advance(HEADER_TIMEOUT)  # idle between requests: closed, no answer
    assert kept_out.disconnecting


def test_http_connections_take_the_chats_slots(clock: Clock) -> None:
    """Half-sent requests count in --max-per-ip: past it the address's next HTTP
    connection is answered 503, its chat connections are refused too, /healthz
    counts them, and each that closes gives its slot back."""
    factory = make_factory(clock, max_per_ip=3)
    site = make_site(factory)
    held = [open_http(site, 50010 + n) for n in range(3)]
    for channel, _ in held:
        channel.dataReceived(b"GET / HTTP/1.1\r\n")  # and never the rest
    _, refused = open_http(site, 50020)
    assert status(refused) == 503 and refused.disconnecting
    assert b"too many connections from your address (3 at most)" in refused.value()
    line, line_out = open_any(factory, 50021)
    assert line_out.value().startswith(b"ERR server-full ")
    assert factory.http_open == 3
    close(held[0][0])
    assert factory.http_open == 2
    status_code, _, body = http_get(site, "/healthz")
    assert status_code == 200 and b'"http": 3' in body
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(
            generate_latest(metrics_registry(factory, None, ReactorLag(clock))).decode()
        )
        for sample in family.samples
    }
    assert samples["chatd_http_connections"] == 3  # /healthz's is still open
    # Another address is not affected; the whole server is capped by --max-clients.
    _, other = open_http(site, 50030, host="192.0.2.9")
    assert status(other) == 0 and not other.disconnecting


def test_a_websocket_takes_its_http_connections_slot(clock: Clock) -> None:
    """An upgraded connection is counted once, as a chat connection."""
    factory = make_factory(clock, max_per_ip=2)
    site = make_site(factory)
    FakeBrowser(site, port=50040).register("alice")
    FakeBrowser(site, port=50041).register("bob")
    assert (len(factory.connections), factory.http_open) == (2, 0)
    _, third = open_http(site, 50042)
    assert status(third) == 503


def test_behind_a_trusted_proxy_http_counts_in_max_clients_only(clock: Clock) -> None:
    """All of a proxy's connections come from one address: not capped per address."""
    factory = make_factory(clock, max_per_ip=1, max_clients=3)
    site = make_site(factory, proxy=True)
    held = [open_http(site, 50050 + n) for n in range(3)]
    assert [status(out) for _, out in held] == [0, 0, 0]
    _, refused = open_http(site, 50060)
    assert status(refused) == 503
    assert b"the server is full (3 connections)" in refused.value()


def test_the_metrics_listener_caps_its_own_connections(clock: Clock) -> None:
    """--metrics counts apart from the chat: a few per address, whatever is open."""
    site = metrics_site(make_factory(clock), CollectorRegistry())
    held = [open_http(site, 50070 + n) for n in range(METRICS_PER_ADDRESS)]
    _, refused = open_http(site, 50080)
    assert status(refused) == 503
    close(held[0][0])
    _, again = open_http(site, 50081)
    assert status(again) == 0 and not again.disconnecting


@pytest.mark.parametrize("which", ["web", "metrics"])
def test_a_refused_request_is_logged_once_a_minute_per_address(
    clock: Clock, which: str
) -> None:
    """413s from one address: one warning naming the address and why; the next
    ones within the minute are counted into the next note, not each logged."""
    _, site, _ = dict((name, (name, s, f)) for name, s, f in sites(clock))[which]
    with capturedLogs() as events:
        for port in (50000, 50001, 50002):
            channel, _ = open_http(site, port, host="192.0.2.7")
            channel.dataReceived(
                b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                b"Content-Length: 300000000\r\n\r\n"
            )
            close(channel)
    noted = [event for event in events if event.get("host") == "192.0.2.7"]
    assert len(noted) == 1
    assert "HTTP 413" in noted[0]["reason"]


@pytest.mark.parametrize("which", ["web", "metrics"])
def test_head_is_answered_with_gets_headers_and_no_body_quietly(
    clock: Clock, which: str
) -> None:
    """HEAD /healthz: 200 with GET's Content-Length and no body, and nothing in
    the log (twisted.web would say, for each one, that it ate a body)."""
    _, site, _ = dict((name, (name, s, f)) for name, s, f in sites(clock))[which]
    channel, transport = open_http(site, 50000)
    with capturedLogs() as events:
        channel.dataReceived(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert status(transport) == 200
    assert b"content-length: " in head.lower() and body == b""
    assert not [event for event in events if "eat" in str(event.get("log_format"))]
