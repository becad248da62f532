"""--metrics with fakes: what is counted where, what a scrape says, /healthz."""

from __future__ import annotations

import json

from helpers import connect, disconnect, lines, make_factory, open_any, open_connection
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from chatd.factory import ChatFactory
from chatd.net.stats import Histogram
from chatd.ops.metrics import ChatCollector, ReactorLag, metrics_registry
from chatd.ops.metrics_http import HealthResource, MetricsResource

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(factory: ChatFactory, lag: ReactorLag | None = None) -> Samples:
    """Every sample of a scrape, parsed by prometheus-client's own parser."""
    text = generate_latest(metrics_registry(factory, None, lag)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_a_message_to_n_members_counts_n_events_and_their_bytes(
    clock: Clock,
) -> None:
    """One MSG to a room of 5: 5 events and their bytes, one line received."""
    factory = make_factory(clock)
    members = [connect(factory, f"user{i}") for i in range(5)]
    before = scrape(factory)
    (alice, _), *_ = members
    alice.dataReceived(b"hello all\r\n")
    after = scrape(factory)

    def moved(name: str) -> float:
        return value(after, name, door="line") - value(before, name, door="line")

    line = b"MSG #lobby user0 hello all\r\n"
    assert moved("chatd_events_delivered_total") == 5
    assert moved("chatd_sent_bytes_total") == 5 * len(line)
    assert moved("chatd_lines_received_total") == 1
    for _proto, transport in members:
        assert transport.value().endswith(line)


def test_registrations_users_rooms_and_connections_are_read_from_the_hub(
    clock: Clock,
) -> None:
    """Three registered, one still choosing a nickname, one room more, one gone."""
    factory = make_factory(clock)
    alice, _ = connect(factory, "alice")
    connect(factory, "bob")
    carol, _ = connect(factory, "carol")
    open_connection(factory, port=41999, host="10.0.0.9")  # no nickname yet
    alice.dataReceived(b"/join #dev\r\n")
    disconnect(carol)
    samples = scrape(factory)
    assert value(samples, "chatd_registrations_total", door="line") == 3
    assert value(samples, "chatd_connections_accepted_total", door="line") == 4
    assert value(samples, "chatd_connections", door="line") == 3
    assert value(samples, "chatd_users") == 2
    assert value(samples, "chatd_rooms") == 2
    assert value(samples, "chatd_stopping") == 0


def test_out_of_turn_events_and_list_output_are_counted_once_each(
    clock: Clock,
) -> None:
    """Events that leave the shared run (a reply first) are still counted once."""
    factory = make_factory(clock)
    alice, _ = connect(factory, "alice")
    _, bob_out = connect(factory, "bob")
    before = scrape(factory)
    # /who answers alice first (her own list), then her line reaches both.
    alice.dataReceived(b"/who\r\nhi\r\n")
    after = scrape(factory)
    events = value(after, "chatd_events_delivered_total", door="line") - value(
        before, "chatd_events_delivered_total", door="line"
    )
    assert events == 2
    assert lines(bob_out) == ["MSG #lobby alice hi"]


def test_limit_hits_are_counted_by_kind(clock: Clock) -> None:
    """Flood, too-long, per-ip, register and idle timeouts each move their series."""
    factory = make_factory(
        clock, flood_burst=2, flood_rate=1.0, max_per_ip=1, idle_timeout=30.0
    )
    alice, _ = connect(factory, "alice")
    alice.dataReceived(b"a\r\nb\r\nc\r\n")  # the third waits: one flood episode
    alice.dataReceived(b"x" * 5000 + b"\r\n")  # held too (the gate keeps order)
    clock.advance(2)  # c, then the over-long line are handled
    open_any(factory, port=42000, host="10.9.9.9")
    refused, transport = open_any(factory, port=42001, host="10.9.9.9")
    assert b"server-full" in transport.value()
    clock.advance(60)  # 10.9.9.9's first connection never chose a nickname
    clock.advance(30)  # alice has been silent for --idle-timeout
    samples = scrape(factory)

    def hits(kind: str) -> float:
        return value(samples, "chatd_limit_hits_total", door="line", limit=kind)

    assert hits("flood") == 1
    assert hits("too-long") == 1
    assert hits("per-ip") == 1
    assert hits("server-full") == 0
    assert hits("register-timeout") == 1
    assert hits("idle-timeout") == 1
    assert hits("sendq") == hits("recvq") == 0


def test_server_full_and_recvq_are_counted(clock: Clock) -> None:
    """Past --max-clients: server-full; past --recvq: recvq."""
    factory = make_factory(
        clock, max_clients=1, flood_burst=1, flood_rate=1.0, recvq=100
    )
    alice, _ = connect(factory, "alice")
    open_any(factory, port=43000, host="10.1.1.1")
    alice.dataReceived(b"a\r\n" + b"b" * 99 + b"\r\n")
    samples = scrape(factory)
    assert (
        value(samples, "chatd_limit_hits_total", door="line", limit="server-full") == 1
    )
    assert value(samples, "chatd_limit_hits_total", door="line", limit="recvq") == 1


def test_send_queue_bytes_are_read_from_the_connections(clock: Clock) -> None:
    """Bytes a transport holds for a slow reader show in chatd_send_queue_bytes."""
    factory = make_factory(clock)
    alice, _ = connect(factory, "alice")
    alice.sendq.counting = True  # as a TCP transport that holds output would
    alice.sendq.wrote(1234)
    samples = scrape(factory)
    assert value(samples, "chatd_send_queue_bytes", door="line") == 1234


def test_reactor_lag_is_how_late_the_timer_fired(clock: Clock) -> None:
    """A timer due in 0.5 s that runs after 2 s was 1.5 s late."""
    lag = ReactorLag(clock, interval=0.5)
    lag.startService()
    clock.advance(2.0)
    clock.advance(0.5)  # on time
    lag.stopService()
    assert not clock.getDelayedCalls()
    samples = scrape(make_factory(clock), lag)
    assert value(samples, "chatd_reactor_lag_seconds_count") == 2
    assert value(samples, "chatd_reactor_lag_seconds_sum") == 1.5
    assert value(samples, "chatd_reactor_lag_seconds_bucket", le="1.0") == 1
    assert value(samples, "chatd_reactor_lag_seconds_bucket", le="2.5") == 2


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    """An observation equal to a bound falls in that bound's bucket."""
    histogram = Histogram((0.1, 1.0))
    for seconds in (0.1, 0.5, 3.0):
        histogram.observe(seconds)
    buckets, count, total = histogram.snapshot()
    assert buckets == [(0.1, 1), (1.0, 2), (float("inf"), 3)]
    assert (count, total) == (3, 3.6)


def test_no_label_holds_a_nickname_an_address_or_a_room(clock: Clock) -> None:
    """Labels are door, limit, le and the collectors' fixed ones: low cardinality."""
    factory = make_factory(clock)
    alice, _ = connect(factory, "alice")
    alice.dataReceived(b"/join #secret-room\r\n")
    text = generate_latest(ChatCollector(factory)).decode()
    assert "alice" not in text and "secret" not in text and "127.0." not in text
    names = {
        name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name in sample.labels
    }
    assert names <= {"door", "limit", "le", "version"}


def test_metrics_resource_speaks_prometheus_text_and_openmetrics(
    clock: Clock,
) -> None:
    """GET /metrics: the text format, or OpenMetrics when Accept asks for it."""
    resource = MetricsResource(metrics_registry(make_factory(clock)))
    plain = DummyRequest([b""])
    body = resource.render_GET(plain)  # type: ignore[arg-type]
    content_type = plain.responseHeaders.getRawHeaders(b"content-type")
    assert content_type == [b"text/plain; version=0.0.4; charset=utf-8"]
    assert b"chatd_users 0.0" in body
    open_metrics = DummyRequest([b""])
    open_metrics.requestHeaders.setRawHeaders(
        b"accept", [b"application/openmetrics-text; version=1.0.0"]
    )
    body = resource.render_GET(open_metrics)  # type: ignore[arg-type]
    assert body.endswith(b"# EOF\n")


def test_healthz_is_200_until_shutdown_begins_then_503(clock: Clock) -> None:
    """/healthz: 200 and the counts; 503 once close_all (SIGTERM) has begun."""
    factory = make_factory(clock)
    connect(factory, "alice")
    resource = HealthResource(factory)
    request = DummyRequest([b""])
    body = json.loads(resource.render_GET(request))  # type: ignore[arg-type]
    assert request.responseCode is None or request.responseCode == 200
    assert body == {
        "status": "ok",
        "connections": 1,
        "http": 0,
        "users": 1,
        "rooms": 1,
        "history": "off",
    }
    factory.close_all("bye")
    request = DummyRequest([b""])
    body = json.loads(resource.render_GET(request))  # type: ignore[arg-type]
    assert request.responseCode == 503
    assert body["status"] == "stopping"
