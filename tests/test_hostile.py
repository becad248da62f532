"""Hostile clients inside every documented limit (issue 11): each attack, bounded.

A connection that must go is gone within the grace, whatever the peer does;
every line, over-long line and telnet command costs the sender's budget; the
input held for a flooder is the bytes it sent, no more.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections.abc import Callable, Mapping, Sequence

from helpers import connect, disconnect, lines, make_factory, open_any, open_connection
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, capturedLogs

from chatd.net.closing import Refusal
from chatd.net.connection import Connection

GRACE = 5.0  # ServerConfig.shutdown_grace


def warnings(events: Sequence[Mapping[str, object]]) -> list[Mapping[str, object]]:
    return [e for e in events if e["log_level"] == LogLevel.warn]


# -- 1 and 2: closing does not wait for the peer -------------------------------------


def test_a_close_the_peer_never_completes_is_aborted_after_the_grace(
    clock: Clock,
) -> None:
    """No nickname in time, and the peer (a TLS handshake that never ends) does not
    let go: BYE, then the connection is aborted after the grace, freeing its slot."""
    factory = make_factory(clock, register_timeout=10.0, max_per_ip=1)
    proto, out = open_connection(factory)
    out.clear()
    clock.advance(10)
    assert lines(out) == ["BYE No nickname chosen within 10 seconds."]
    assert out.disconnecting and not out.disconnected
    with capturedLogs() as events:
        clock.advance(GRACE)
    assert out.disconnected  # abortConnection
    assert len(warnings(events)) == 1
    disconnect(proto)
    assert not factory.connections and not clock.getDelayedCalls()


def test_a_refused_connection_is_aborted_after_the_grace(clock: Clock) -> None:
    """Past --max-per-ip: ERR server-full and BYE; a peer that holds on is aborted."""
    factory = make_factory(clock, max_per_ip=1)
    open_connection(factory)
    refused, out = open_any(factory)
    assert isinstance(refused, Refusal)
    assert out.disconnecting and not out.disconnected
    clock.advance(GRACE)
    assert out.disconnected


def test_bye_takes_the_user_out_of_the_chat_at_once(clock: Clock) -> None:
    """After BYE, before the peer closes: the others see QUIT, /who and the
    nickname no longer know the user, and a /msg to it is refused."""
    factory = make_factory(clock, idle_timeout=60.0)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(30)
    bob.dataReceived(b"awake\n")
    clock.advance(30)  # alice idle for 60 s; her peer never closes
    assert lines(a_out)[-1] == "BYE Idle for 60 seconds."
    assert lines(b_out) == ["MSG #lobby bob awake", "QUIT alice Idle for 60 seconds."]
    bob.dataReceived(b"/who\n/msg alice are you there?\n")
    assert lines(b_out) == [
        "USERS #lobby bob",
        "ERR no-such-nick nobody is called alice",
    ]
    newcomer, n_out = connect(factory, "alice")  # the name is free again
    assert newcomer.user is not None
    disconnect(alice)  # the peer goes at last: nobody hears of it twice
    assert "QUIT" not in b_out.value().decode()


# -- 5, 6, 8: every line costs a token, and what waits is the bytes --------------------


def count_handled(proto: Connection) -> list[bytes]:
    """Record the lines proto handles (wraps handle_line on the instance)."""
    handled: list[bytes] = []
    handle = proto.handle_line

    def spy(raw: bytes) -> None:
        handled.append(raw)
        handle(raw)

    proto.handle_line = spy  # type: ignore[method-assign]
    return handled


def test_empty_lines_cost_tokens_and_wait_unframed(clock: Clock) -> None:
    """60,000 LFs before registration: the burst is framed, the rest waits as one
    buffer; handled at the rate; past --recvq bytes, BYE."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0, recvq=65536)
    proto, out = open_connection(factory)
    handled = count_handled(proto)
    proto.dataReceived(b"\n" * 60_000)
    assert len(handled) == 10
    assert proto.gate is not None and proto.gate.held is not None
    assert len(proto.gate.held) == 60_000 - 10
    assert lines(out)[-1].startswith("ERR flood ")
    clock.advance(1)
    assert len(handled) == 12
    proto.dataReceived(b"\n" * 10_000)
    assert lines(out)[-1].startswith("BYE Input queue full")
    assert proto.gate.held is None and out.disconnecting


def test_the_memory_held_for_a_flooder_is_the_bytes_it_sent(clock: Clock) -> None:
    """65,400 bytes of 2-byte lines held take about 65 kB, not 19 times that."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0, recvq=65536)
    proto, _ = open_connection(factory)
    proto.dataReceived(b"a\n" * 32_700)
    assert proto.gate is not None and proto.gate.held is not None
    assert sys.getsizeof(proto.gate.held) < 65536 + 4096


def test_over_long_lines_cost_tokens_and_are_logged_once_per_episode(
    clock: Clock,
) -> None:
    """A stream of over-long lines: ERR too-long for the burst only, one warning,
    then the rest waits and overflows --recvq: BYE, not 44,000 replies."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0, max_line=100)
    alice, out = connect(factory, "alice")
    clock.advance(60)
    with capturedLogs() as events:
        for _ in range(300):
            alice.dataReceived(b"z" * 300 + b"\n")
    got = lines(out)
    assert sum(g.startswith("ERR too-long") for g in got) == 10
    assert got[-1].startswith("BYE Input queue full")
    assert [e["log_format"] for e in warnings(events)] == [
        "{peer} sent a line over {limit} bytes; refused (more in a row are not logged)",
        "{peer} is flooding; throttling its input",
        "{peer} overflowed its input queue ({limit} bytes)",
    ]


def test_an_over_long_line_without_end_costs_one_token(clock: Clock) -> None:
    """A line that never ends is refused once and skipped, however long."""
    factory = make_factory(clock, flood_burst=3, flood_rate=1.0)
    alice, out = connect(factory, "alice")
    clock.advance(60)
    for _ in range(100):
        alice.dataReceived(b"y" * 65536)
    alice.dataReceived(b"\nhello\n")
    assert lines(out) == [
        "ERR too-long lines are limited to 2048 bytes; that one was dropped",
        "MSG #lobby alice hello",
    ]


# -- 7: telnet commands -------------------------------------------------------------


def test_telnet_option_requests_are_answered_once_per_packet_and_cost_tokens(
    clock: Clock,
) -> None:
    """IAC WILL x in bulk: one refusal per option and packet, the commands are
    charged, the flooder's input then waits, and a stream of them overflows
    --recvq."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    alice, out = connect(factory, "alice")
    clock.advance(60)
    alice.dataReceived(b"\xff\xfb\x01" * 5000 + b"\xff\xfb\x03" * 5000)
    replies, notice = out.value().split(b"ERR flood ")
    assert replies == b"\xff\xfe\x01\xff\xfe\x03"  # IAC DONT 1, IAC DONT 3
    out.clear()
    alice.dataReceived(b"still talking\n")
    assert out.value() == b""  # waits: 10,000 commands used far more than the burst
    for _ in range(30):
        alice.dataReceived(b"\xff\xfb\x01" * 1000)
    sent = out.value()
    assert sent.count(b"\xff\xfe\x01") <= 30  # once per packet at most
    assert b"BYE Input queue full" in sent and out.disconnecting


def test_a_burst_of_ctrl_c_is_answered_once(clock: Clock) -> None:
    """5,000 IAC IP in one packet: one INFO line, not 5,000 (that overflowed the
    sender's own send queue), and the sender is throttled."""
    factory = make_factory(clock)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"\xff\xf4" * 5000)
    info, flood = lines(out)
    assert info == "INFO Ctrl-C does not leave the chat; type /quit to leave."
    assert flood.startswith("ERR flood ")
    assert not out.disconnecting


def test_a_flooders_held_input_never_delays_others(clock: Clock) -> None:
    """While a megabyte of empty lines waits for alice, bob is handled at once."""
    factory = make_factory(clock, recvq=2_000_000)
    (alice, _), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"\n" * 1_000_000)
    b_out.clear()
    bob.dataReceived(b"hello\n")
    assert lines(b_out) == ["MSG #lobby bob hello"]


# -- found by trying it as a user would ----------------------------------------------


def test_every_ctrl_c_in_telnet_is_answered(clock: Clock) -> None:
    """telnet sends IAC IP IAC DO TIMING-MARK at each Ctrl-C and shows nothing until
    it hears back: the second Ctrl-C is answered as the first was."""
    factory = make_factory(clock)
    alice, out = connect(factory, "alice")
    for _ in range(2):
        alice.dataReceived(b"\xff\xf4\xff\xfd\x06")
        assert out.value().startswith(b"\xff\xfc\x06")  # IAC WONT TIMING-MARK
        out.clear()
        clock.advance(60)


def test_a_timed_flush_to_a_lost_connection_sends_and_schedules_nothing(
    clock: Clock,
) -> None:
    """A member lost while a large room's output waits for the timed flush: nothing
    is written to it, and no send-queue deadline is left to abort it later."""
    factory = make_factory(clock, flush_delay=0.0, flood_rate=0.0, sendq=4096)
    members = [connect(factory, f"m{i}") for i in range(20)]
    clock.advance(1)
    talker, _ = members[0]
    lost, lost_out = members[1]
    lost.sendq.exact()
    lost.sendq.resumeProducing()
    lost.sendq.drained = False  # its buffer holds something: flushes are counted
    talker.dataReceived(b"x" * 2000 + b"\n" * 1 + (b"y" * 2000 + b"\n") * 3)
    disconnect(lost)
    lost_out.clear()
    clock.advance(0)  # the timed flush
    assert lost_out.value() == b""
    clock.advance(GRACE)
    assert not lost_out.disconnected and not clock.getDelayedCalls()


def test_a_closed_connection_is_freed_without_the_cycle_collector(clock: Clock) -> None:
    """After connectionLost nothing refers to the connection (which holds the
    output its transport still buffers) but log events: no cycle through its
    flood gate or send queue waits for the cycle collector."""
    factory = make_factory(clock)
    gc.disable()
    try:
        proto, transport = connect(factory, "alice")
        proto.dataReceived(b"\n" * 100)  # its flood gate holds input
        alive = weakref.ref(proto)
        disconnect(proto)
        del proto, transport
        # Until twistd starts logging, Twisted buffers every event, and an
        # event refers to its source (the connection) through its Logger.
        found = alive()
        holders = [
            holder
            for holder in gc.get_referrers(found)
            if not isinstance(holder, Logger | types.FrameType)
            and not (isinstance(holder, dict) and "log_source" in holder)
        ]
        del found
        assert holders == []
    finally:
        gc.enable()


def test_refusals_from_one_address_are_logged_once_a_minute(clock: Clock) -> None:
    """An address reconnecting in a loop past --max-per-ip: one warning, then a
    count of the refusals since in the next one, a minute later."""
    factory = make_factory(clock, max_per_ip=1)
    open_connection(factory, 1, "10.0.0.9")
    with capturedLogs() as events:
        for port in range(2, 502):
            open_any(factory, port, "10.0.0.9")
        open_connection(factory, 600, "10.0.0.8")
        open_any(factory, 601, "10.0.0.8")  # another address is noted on its own
        clock.advance(60)
        open_any(factory, 700, "10.0.0.9")
    noted = [f"{e['host']}{e['more']}" for e in warnings(events)]
    assert noted == [
        "10.0.0.9",
        "10.0.0.8",
        "10.0.0.9 (499 more refused since the last note)",
    ]


def test_the_store_closes_only_after_password_work_in_flight_is_kept() -> None:
    """SIGTERM while a /register's hash is computed: twistd stops every service in
    one turn, so the history service waits for the hashing service's work (and
    what its caller chained, the account's write) before it closes the store."""
    import threading

    from twisted.internet.defer import Deferred

    from chatd.ops.service import HashingService, HistoryService

    calls: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    class Reactor:
        def callFromThread(self, f: Callable[..., object], *args: object) -> None:
            calls.append((f, args))

    class History:
        closed = False

        def close(self) -> Deferred[None]:
            self.closed = True
            return Deferred()

    release = threading.Event()
    hashing = HashingService(Reactor())  # type: ignore[arg-type]
    kept: list[str] = []

    def compute() -> str:
        release.wait(10)
        return "hash"

    hashing.run(compute).addCallback(kept.append)  # the account's write
    history = History()
    service = HistoryService(history, hashing.idle)  # type: ignore[arg-type]
    service.stopService()
    assert not history.closed  # the hash is still being computed
    release.set()
    hashing.pool.stop()  # the worker hands its result to the reactor thread
    for f, args in calls:
        f(*args)
    assert kept == ["hash"] and history.closed
