"""Hostile, slow and careless clients: flood control, queues, caps and timeouts."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

import pytest
from helpers import connect, disconnect, lines, make_factory, open_any, open_connection
from twisted.internet.error import ConnectionAborted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure

from chatd.net.limits import (
    HARD_LIMIT_FACTOR,
    SLOW_READER_GRACE,
    FloodGate,
    SendQueue,
    TokenBucket,
)
from chatd.net.sockets import tune_socket
from chatd.protocol import LineConnection

# -- the pieces on their own -----------------------------------------------------------


@dataclass
class GateRecorder:
    """A GateClient and SendQueueClient that writes down what it is told."""

    released: list[bytes] = field(default_factory=list)
    throttles: int = 0
    overflows: int = 0
    sendq_full: int = 0
    gate: FloodGate | None = None

    def release(self, data: bytes) -> None:
        """Take a line per token, as Connection.frame does; hold the rest."""
        lines = data.split(b"\n")
        while lines and self.gate is not None and self.gate.take():
            self.released.append(lines.pop(0))
        if lines and self.gate is not None:
            self.gate.hold(b"\n".join(lines))

    def input_throttled(self) -> None:
        self.throttles += 1

    def input_overflowed(self) -> None:
        self.overflows += 1

    def send_queue_full(self) -> None:
        self.sendq_full += 1


def test_token_bucket_allows_a_burst_then_the_rate(clock: Clock) -> None:
    """capacity events at once, then one per 1/rate seconds, never above capacity."""
    bucket = TokenBucket(3, 2.0, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.take() and not bucket.take()
    clock.advance(100)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_token_bucket_charge_goes_into_debt(clock: Clock) -> None:
    """Work done in bulk is charged whole; the debt is paid back at the rate."""
    bucket = TokenBucket(10, 2.0, clock)
    assert not bucket.charge(30)  # 20 in debt
    assert bucket.wait() == pytest.approx(10.5)
    clock.advance(10.5)
    assert bucket.take() and not bucket.take()


def test_flood_gate_holds_input_in_order_and_releases_it_at_the_rate(
    clock: Clock,
) -> None:
    """Held input comes back a token at a time; the client hears once per episode."""
    client = GateRecorder()
    gate = client.gate = FloodGate(TokenBucket(1, 4.0, clock), 1000, client)
    assert gate.take() and not gate.take()
    gate.hold(b"2\n3\n4")
    assert client.throttles == 1 and gate.held == bytearray(b"2\n3\n4")
    clock.advance(0.25)
    assert client.released == [b"2"]
    clock.pump([0.25, 0.25])
    assert client.released == [b"2", b"3", b"4"]
    assert gate.held is None and not clock.getDelayedCalls()
    assert not gate.take()  # drained, but not yet full again: the same episode
    gate.hold(b"5")
    clock.advance(0.25)
    assert client.released[-1] == b"5" and client.throttles == 1
    clock.advance(0.25)  # full again: the episode is over
    assert gate.take() and not gate.take()
    gate.hold(b"6")  # a new episode, a new notice
    assert client.throttles == 2 and client.overflows == 0


def test_flood_gate_bounds_the_bytes_it_holds(clock: Clock) -> None:
    """Past max_held bytes received while held, the client is told once; all stops."""
    client = GateRecorder()
    gate = FloodGate(TokenBucket(1, 1.0, clock), 25, client)
    gate.hold(b"123456789\n")
    gate.hold(b"", received=10)  # 10 bytes that were all telnet commands
    assert client.overflows == 0
    gate.hold(b"123456789\n")
    assert client.overflows == 1 and gate.held is None
    gate.hold(b"more")
    clock.advance(10)
    assert client.released == [] and not clock.getDelayedCalls()


def test_flood_gate_charge_in_debt_holds_what_follows(clock: Clock) -> None:
    """A packet of 100 telnet commands costs 100 tokens: input waits for the debt."""
    client = GateRecorder()
    gate = FloodGate(TokenBucket(10, 10.0, clock), 1000, client)
    gate.charge(100)
    assert gate.held == bytearray() and client.throttles == 1
    (drain,) = clock.getDelayedCalls()
    assert drain.getTime() == pytest.approx(9.1)


def test_send_queue_cuts_off_a_reader_behind_for_the_whole_grace(clock: Clock) -> None:
    """Over the limit: cut off only if the buffer never emptied within the grace."""
    client = GateRecorder()
    sendq = SendQueue(100, client, clock, buffer_size=60, grace=5.0)
    assert not sendq.counting  # streaming: the transport is keeping up
    sendq.pauseProducing()
    assert sendq.counting
    sendq.wrote(30)
    sendq.pauseProducing()  # Twisted repeats this on each write while full
    sendq.wrote(30)  # 120 waiting: behind, but only just now
    clock.advance(4.9)
    sendq.resumeProducing()  # it read everything: a burst, not a stuck reader
    assert not sendq.counting and sendq.waiting == 0
    clock.advance(1)
    assert client.sendq_full == 0
    sendq.pauseProducing()
    sendq.wrote(60)
    clock.advance(5)
    assert client.sendq_full == 1
    sendq.wrote(30)
    clock.advance(5)
    assert client.sendq_full == 1  # told once


def test_send_queue_cuts_off_at_once_far_past_the_limit(clock: Clock) -> None:
    """More than HARD_LIMIT_FACTOR times the limit waiting: cut off without grace."""
    client = GateRecorder()
    sendq = SendQueue(100, client, clock)
    sendq.exact()
    sendq.resumeProducing()  # what registerProducer(sendq, False) does at once
    assert sendq.drained and sendq.counting
    sendq.wrote(60)
    assert not sendq.drained and sendq.waiting == 60
    sendq.resumeProducing()  # the transport wrote it all
    assert sendq.drained and sendq.waiting == 0
    sendq.wrote(100 * HARD_LIMIT_FACTOR)
    assert client.sendq_full == 0
    sendq.wrote(1)
    assert client.sendq_full == 1 and not clock.getDelayedCalls()


# -- flood control through the protocol ------------------------------------------------


def test_burst_then_throttle_keeps_order_and_loses_nothing(clock: Clock) -> None:
    """Ten lines pass at once; the rest wait, come at the rate, in order; one ERR."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    (alice, a_out), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear(), b_out.clear()
    clock.advance(60)  # registration used some of the burst; start full
    alice.dataReceived(b"".join(b"line %d\n" % i for i in range(30)))
    got = lines(a_out)
    assert [g for g in got if g.startswith("ERR")] == [
        "ERR flood you are sending too fast; your lines wait and are handled "
        "at 2 per second"
    ]
    assert len(lines(b_out)) == 10
    clock.advance(0.5)
    assert lines(b_out) == ["MSG #lobby alice line 10"]
    clock.pump([0.5] * 19)
    assert lines(b_out) == [f"MSG #lobby alice line {i}" for i in range(11, 30)]
    assert not [g for g in lines(a_out) if g.startswith("ERR")]


def test_a_client_just_below_the_rate_is_told_once(clock: Clock) -> None:
    """After its burst, a line every 0.51 s: one ERR flood and one log line, not 41.

    Each line comes a little before its token (the client is one line behind
    since its burst), so each waits; it is one episode until the bucket is full.
    """
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    (alice, a_out), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(60)
    a_out.clear(), b_out.clear()
    with capturedLogs() as events:
        alice.dataReceived(b"".join(b"burst %d\n" % i for i in range(11)))
        for i in range(40):
            clock.advance(0.51)
            alice.dataReceived(b"line %d\n" % i)
        clock.advance(0.51)
    floods = [g for g in lines(a_out) if g.startswith("ERR flood")]
    warnings = [e for e in events if "is flooding" in e.get("log_format", "")]
    assert (len(floods), len(warnings)) == (1, 1)
    assert lines(b_out)[-1] == "MSG #lobby alice line 39"  # nothing lost or late
    clock.advance(5)  # the bucket refills: the episode is over
    alice.dataReceived(b"".join(b"again %d\n" % i for i in range(11)))
    assert [g for g in lines(a_out) if g.startswith("ERR flood")] == floods


def test_nickname_attempts_do_not_spend_the_flood_budget(clock: Clock) -> None:
    """A script trying 12 taken nicknames at once is answered at once, no ERR flood."""
    factory = make_factory(clock, flood_burst=3, flood_rate=1.0)
    connect(factory, "taken")
    proto, out = open_connection(factory, port=40002)
    proto.dataReceived(b"taken\n" * 12 + b"/ids on\nalice\nhello\n")
    got = lines(out)
    assert proto.user is not None and "MSG #lobby alice hello" in got
    assert not [g for g in got if g.startswith("ERR flood")]


def test_lines_held_when_the_client_half_closes_are_all_handled(clock: Clock) -> None:
    """printf 'alice\n' + 30 lines | nc: the held lines still come, then it closes."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    (alice, a_out), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(60)
    a_out.clear(), b_out.clear()
    alice.dataReceived(b"".join(b"line %d\n" % i for i in range(30)) + b"no end")
    alice.readConnectionLost()  # the client's end of input
    assert len(lines(b_out)) == 10
    assert not a_out.disconnecting  # held lines are still to come
    clock.pump([0.5] * 20)
    assert lines(b_out) == [f"MSG #lobby alice line {i}" for i in range(10, 30)]
    assert a_out.disconnecting  # then it closes, as a client that closes
    disconnect(alice)
    assert lines(b_out) == ["QUIT alice connection closed"]  # "no end" was no line


def test_a_half_close_with_nothing_held_closes_at_once(clock: Clock) -> None:
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    (alice, a_out), _ = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"hi\n")
    alice.readConnectionLost()
    assert a_out.disconnecting


def test_a_flooder_does_not_delay_anyone_else(clock: Clock) -> None:
    """While alice's lines wait, bob's message goes out at once."""
    factory = make_factory(clock, flood_burst=5, flood_rate=1.0)
    (alice, _), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(60)
    alice.dataReceived(b"spam\n" * 50)
    b_out.clear()
    bob.dataReceived(b"hello\n")
    assert lines(b_out) == ["MSG #lobby bob hello"]


def test_recvq_overflow_says_bye_and_others_see_quit(clock: Clock) -> None:
    """Past --recvq bytes waiting, the flooder gets BYE and is closed."""
    factory = make_factory(clock, flood_burst=5, flood_rate=1.0, recvq=1000)
    (alice, a_out), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    b_out.clear()
    with capturedLogs() as events:
        alice.dataReceived(b"x" * 99 + b"\n" * 1)
        alice.dataReceived((b"y" * 99 + b"\n") * 20)
    assert lines(a_out)[-1].startswith("BYE Input queue full")
    assert a_out.disconnecting
    disconnect(alice)
    assert lines(b_out)[-1].startswith("QUIT alice Input queue full")
    assert sum(e["log_level"] == LogLevel.warn for e in events) == 2
    assert not clock.getDelayedCalls()


def test_flood_rate_zero_turns_flood_control_off(clock: Clock) -> None:
    """With --flood-rate 0 a thousand lines are handled at once."""
    factory = make_factory(clock, flood_rate=0.0)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"go\n" * 1000)
    assert len(lines(out)) == 1000


# -- timeouts --------------------------------------------------------------------------


def test_register_timeout_says_bye(clock: Clock) -> None:
    """No nickname within --register-timeout: BYE and closed; lines do not extend it."""
    factory = make_factory(clock, register_timeout=60.0)
    proto, out = open_connection(factory)
    out.clear()
    clock.advance(30)
    proto.dataReceived(b"/help\n")
    out.clear()
    clock.advance(30)
    assert lines(out) == ["BYE No nickname chosen within 60 seconds."]
    assert out.disconnecting


def test_registered_clients_have_no_deadline_by_default(clock: Clock) -> None:
    """Once registered, and with --idle-timeout 0, nobody is timed out."""
    factory = make_factory(clock)
    alice, out = connect(factory, "alice")
    clock.advance(7 * 24 * 3600)
    assert out.value() == b"" and not out.disconnecting
    assert not clock.getDelayedCalls()


def test_idle_timeout_counts_from_the_last_line(clock: Clock) -> None:
    """--idle-timeout 300: a line resets it; 300 s of silence is BYE, QUIT to others."""
    factory = make_factory(clock, idle_timeout=300.0)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(299)
    alice.dataReceived(b"still here\n")
    bob.dataReceived(b"\n")  # an empty line counts as a sign of life too
    clock.advance(299)
    assert not a_out.disconnecting
    bob.dataReceived(b"me too\n")
    clock.advance(1)
    assert lines(a_out)[-1] == "BYE Idle for 300 seconds."
    disconnect(alice)
    assert lines(b_out)[-1] == "QUIT alice Idle for 300 seconds."
    assert not b_out.disconnecting


# -- slow readers ----------------------------------------------------------------------


class BufferingTransport(StringTransport):
    """Holds written bytes until drain(), pausing a streaming producer past
    bufferSize as Twisted's socket transports do."""

    bufferSize = 4096

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        super().write(data)
        # Like FileDescriptor._maybePauseProducer: on every write while full.
        if self.producer is not None and len(self.value()) > self.bufferSize:
            self.paused = True
            self.producer.pauseProducing()

    def drain(self) -> None:
        """The peer read everything."""
        self.clear()
        if self.paused and self.producer is not None:
            self.paused = False
            self.producer.resumeProducing()

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


def connect_buffered(
    factory: object, nick: str
) -> tuple[LineConnection, BufferingTransport]:
    proto = factory.door(LineConnection).buildProtocol(None)  # type: ignore[attr-defined]
    transport = BufferingTransport()
    proto.makeConnection(transport)
    proto.dataReceived(nick.encode() + b"\n")
    transport.drain()
    return proto, transport


def test_reader_that_stops_reading_is_cut_off_and_others_carry_on(clock: Clock) -> None:
    """Past --sendq bytes waiting for the grace, the stuck client is aborted."""
    factory = make_factory(clock, flood_rate=0.0, sendq=16384)
    stuck, s_out = connect_buffered(factory, "stuck")
    reader, r_out = connect_buffered(factory, "reader")
    talker, _ = connect(factory, "talker")
    s_out.drain()
    r_out.drain()
    with capturedLogs() as events:
        for i in range(100):
            talker.dataReceived(b"%03d " % i + b"z" * 300 + b"\n")
            r_out.drain()  # this one keeps up
        assert not s_out.aborted  # behind by 30 kB: not yet
        clock.advance(SLOW_READER_GRACE)
    assert s_out.aborted and not r_out.aborted
    assert 16384 < len(s_out.value()) <= HARD_LIMIT_FACTOR * 16384
    disconnect(stuck)
    talker.dataReceived(b"after\n")
    got = r_out.value().decode().split("\r\n")
    assert "QUIT stuck send queue full (not reading)" in got
    assert got[-2] == "MSG #lobby talker after"
    assert [e for e in events if e["log_level"] == LogLevel.warn]


def test_a_burst_from_many_senders_cuts_off_no_reader_that_reads(clock: Clock) -> None:
    """20 senders at their burst hand each member 400 kB at once (--sendq 64 kB):
    readers that drain it keep their connection; one that does not is cut off."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0, sendq=65536)
    readers = [connect_buffered(factory, f"reader{i}") for i in range(5)]
    stuck, s_out = connect_buffered(factory, "stuck")
    senders = [connect(factory, f"sender{i}")[0] for i in range(20)]
    for _, out in readers:
        out.drain()
    s_out.drain()
    clock.advance(60)  # full buckets
    line_ = b"x" * 2000 + b"\n"
    for sender in senders:
        sender.dataReceived(line_ * 10)
    for _, out in readers:
        assert out.value().count(b"\r\n") == 200
        out.drain()
    clock.advance(SLOW_READER_GRACE)
    assert s_out.aborted
    assert not any(out.aborted for _, out in readers)


def test_reader_that_catches_up_is_not_cut_off(clock: Clock) -> None:
    """A client that falls behind but drains its buffer keeps its connection."""
    factory = make_factory(clock, flood_rate=0.0, sendq=16384)
    slow, s_out = connect_buffered(factory, "slow")
    talker, _ = connect(factory, "talker")
    for i in range(200):
        talker.dataReceived(b"z" * 300 + b"\n")
        if i % 20 == 19:
            s_out.drain()
    assert not s_out.aborted


def reset_send(data: bytes) -> int:
    """A plain-TCP socket's send(), after the peer sent a reset."""
    raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


def test_a_send_that_finds_the_peer_gone_reports_the_connection_lost(
    clock: Clock,
) -> None:
    """A failed direct send() aborts the connection: the others hear it was lost."""
    factory = make_factory(clock, flood_rate=0.0)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    bob._send = reset_send
    bob.sendq.exact()
    bob.sendq.resumeProducing()  # nothing buffered: bob's lines go straight out
    alice.dataReceived(b"hi\n")
    assert b_out.disconnected and b_out.value() == b""
    bob.connectionLost(Failure(ConnectionAborted()))  # what the abort leads to
    assert lines(a_out)[-1] == "QUIT bob connection lost"


def full_send(data: bytes) -> int:
    """A plain-TCP socket's send() when the kernel's buffer is full."""
    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def test_what_the_socket_does_not_take_waits_in_the_transport(clock: Clock) -> None:
    """A send() that would block leaves the line to the transport, counted."""
    factory = make_factory(clock, flood_rate=0.0)
    (talker, _), (bob, b_out) = connect(factory, "talker"), connect(factory, "bob")
    bob._send = full_send
    bob.sendq.exact()
    bob.sendq.resumeProducing()
    talker.dataReceived(b"hi\n")
    assert lines(b_out)[-1] == "MSG #lobby talker hi"
    assert bob.sendq.waiting == len(b"MSG #lobby talker hi\r\n")
    assert not bob.sendq.drained
    assert not b_out.disconnected


# -- connection caps -------------------------------------------------------------------


def test_max_clients_refuses_with_server_full(clock: Clock) -> None:
    """Past --max-clients: ERR server-full, BYE, closed; a freed slot is usable."""
    factory = make_factory(clock, max_clients=2)
    first, _ = connect(factory, "one")
    connect(factory, "two")
    with capturedLogs() as events:
        _, out = open_any(factory, 50001, "10.1.2.3")
    text = lines(out)
    assert text[0].startswith("ERR server-full ") and text[1].startswith("BYE ")
    assert out.disconnecting
    assert [e["host"] for e in events if e["log_level"] == LogLevel.warn] == [
        "10.1.2.3"
    ]
    disconnect(first)
    proto, _ = open_any(factory, 50002, "10.1.2.3")
    assert isinstance(proto, LineConnection)


def test_max_per_ip_counts_each_address(clock: Clock) -> None:
    """Past --max-per-ip from one address: server-full; other addresses still in."""
    factory = make_factory(clock, max_per_ip=2)
    a, _ = open_connection(factory, 1, "10.0.0.1")
    open_connection(factory, 2, "10.0.0.1")
    _, out = open_any(factory, 3, "10.0.0.1")
    assert lines(out)[0].startswith("ERR server-full ")
    open_connection(factory, 4, "10.0.0.2")
    disconnect(a)
    assert isinstance(open_any(factory, 5, "10.0.0.1")[0], LineConnection)
    assert factory.per_host == {"10.0.0.1": 2, "10.0.0.2": 1}


# -- sockets ---------------------------------------------------------------------------


class SocketTransport:
    """Just enough of a TCP transport for tune_socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(enabled))

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(enabled))

    def getHandle(self) -> socket.socket:
        return self.sock


def test_keepalive_and_nodelay_are_turned_on() -> None:
    """Dead peers are probed after a minute of silence; small lines go out at once."""
    with socket.socket() as sock:
        tune_socket(SocketTransport(sock))  # type: ignore[arg-type]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60


def test_bucket_spends_fractions_and_refuses_what_it_lacks() -> None:
    """spend(cost) takes a fraction of a token, never into debt; wait() says when."""
    from chatd.model.rates import TokenBucket

    clock = Clock()
    bucket = TokenBucket(1, 2.0, clock)
    assert all(bucket.spend(1 / 16) for _ in range(16))
    assert not bucket.spend(1 / 16) and not bucket.spend(1.0)
    assert bucket.wait() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.spend(1.0)
