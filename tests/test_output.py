"""Output batching: one write per recipient per batch or reactor turn, order kept."""

from __future__ import annotations

import pytest
from helpers import connect, lines, make_factory
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.net import output


def count_writes(transport: StringTransport) -> list[bytes]:
    """Record each transport.write call's data."""
    writes: list[bytes] = []
    original = transport.write

    def write(data: bytes) -> None:
        writes.append(data)
        original(data)

    transport.write = write  # type: ignore[method-assign]
    return writes


def test_a_packet_of_lines_reaches_each_member_in_one_write(clock: Clock) -> None:
    """Twenty lines in one packet: bob's transport is written to once."""
    factory = make_factory(clock, flood_rate=0.0)
    (alice, _), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    writes = count_writes(b_out)
    alice.dataReceived(b"".join(b"line %d\n" % i for i in range(20)))
    assert len(writes) == 1
    assert lines(b_out) == [f"MSG #lobby alice line {i}" for i in range(20)]


@pytest.fixture
def no_small_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat every broadcast as large, so that small test rooms wait for the timer."""
    monkeypatch.setattr(output, "SMALL_FLUSH", 0)


def test_small_broadcasts_go_out_at_once(clock: Clock) -> None:
    """With flush_delay 0, a room of three still hears a line at once."""
    factory = make_factory(clock, flush_delay=0.0)
    (alice, _), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(0)
    b_out.clear()
    alice.dataReceived(b"hi\n")
    assert lines(b_out) == ["MSG #lobby alice hi"]


@pytest.mark.usefixtures("no_small_flush")
def test_deferred_flush_joins_what_one_reactor_turn_produced(clock: Clock) -> None:
    """With flush_delay 0, two senders in one turn still cost bob one write."""
    factory = make_factory(clock, flush_delay=0.0)
    (alice, a_out), (carol, _) = connect(factory, "alice"), connect(factory, "carol")
    bob, b_out = connect(factory, "bob")
    clock.advance(0)
    b_out.clear()
    a_out.clear()
    writes = count_writes(b_out)
    alice.dataReceived(b"hi\n")
    carol.dataReceived(b"hello\n")
    assert b_out.value() == b""  # not before the reactor turn ends
    assert lines(a_out) == ["MSG #lobby alice hi"]  # the sender's echo: at once
    clock.advance(0)
    assert len(writes) == 1
    assert lines(b_out) == ["MSG #lobby alice hi", "MSG #lobby carol hello"]
    assert lines(a_out) == ["MSG #lobby carol hello"]


@pytest.mark.usefixtures("no_small_flush")
def test_a_slow_flush_spaces_out_the_next_one(clock: Clock) -> None:
    """After a flush that took 20 ms, the next waits 40 ms: storms batch up."""
    factory = make_factory(clock, flush_delay=0.0)
    (alice, _), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    original = factory.output.flush_all

    def slow_flush_all() -> None:
        original()
        clock.advance(0.02)  # as if writing to every socket took 20 ms

    factory.output.flush_all = slow_flush_all  # type: ignore[method-assign]
    alice.dataReceived(b"one\n")
    clock.advance(0)  # the flush runs, "taking" 20 ms
    b_out.clear()
    alice.dataReceived(b"two\n")
    clock.advance(0.02 * output.FLUSH_SPACING - 0.001)
    assert b_out.value() == b""
    clock.advance(0.001)
    assert lines(b_out) == ["MSG #lobby alice two"]


def test_deferred_flush_keeps_order_with_timer_driven_writes(clock: Clock) -> None:
    """A throttled line handled by a timer queues behind output not yet flushed."""
    factory = make_factory(clock, flush_delay=0.0, flood_burst=1, flood_rate=10.0)
    alice, a_out = connect(factory, "alice")
    clock.advance(10)
    a_out.clear()
    alice.dataReceived(b"one\ntwo\n")
    clock.pump([0, 0.1, 0])
    assert lines(a_out) == [
        "MSG #lobby alice one",
        "ERR flood you are sending too fast; your lines wait and are handled "
        "at 10 per second",
        "MSG #lobby alice two",
    ]


def test_bye_goes_out_at_once_with_what_came_before(clock: Clock) -> None:
    """/quit in deferred mode: everything up to BYE is written before closing."""
    factory = make_factory(clock, flush_delay=0.0)
    alice, a_out = connect(factory, "alice")
    clock.advance(0)
    a_out.clear()
    alice.dataReceived(b"last words\n/quit\n")
    assert lines(a_out) == ["MSG #lobby alice last words", "BYE Goodbye, alice."]
    assert a_out.disconnecting


@pytest.mark.usefixtures("no_small_flush")
def test_members_waiting_for_the_same_lines_share_one_bytes_object(
    clock: Clock,
) -> None:
    """A flush joins a run of broadcast lines once for everyone waiting for it."""
    factory = make_factory(clock, flush_delay=0.0, flood_rate=0.0)
    alice, _ = connect(factory, "alice")
    members = [connect(factory, nick) for nick in ("bob", "carol", "dave")]
    clock.advance(0)
    writes = [count_writes(transport) for _, transport in members]
    alice.dataReceived(b"one\ntwo\n")
    alice.dataReceived(b"three\n")
    clock.advance(0)
    assert [len(w) for w in writes] == [1, 1, 1]
    first = writes[0][0]
    assert all(w[0] is first for w in writes)
    assert first == b"".join(
        f"MSG #lobby alice {text}\r\n".encode() for text in ("one", "two", "three")
    )


@pytest.mark.usefixtures("no_small_flush")
def test_a_line_out_of_turn_keeps_each_members_order(clock: Clock) -> None:
    """Lines of two rooms interleave: each member still gets its own, in order."""
    factory = make_factory(clock, flush_delay=0.0, flood_rate=0.0)
    (alice, _), (dave, _) = connect(factory, "alice"), connect(factory, "dave")
    (bob, b_out), (_, c_out) = connect(factory, "bob"), connect(factory, "carol")
    bob.dataReceived(b"/join #x\n")
    dave.dataReceived(b"/join #x\n")
    clock.advance(0)
    b_out.clear()
    c_out.clear()
    alice.dataReceived(b"first\n")  # to #lobby: bob and carol
    dave.dataReceived(b"aside\n")  # to #x: bob (and dave)
    alice.dataReceived(b"second\n")  # to #lobby: carol's run is broken here
    bob.dataReceived(b"/join #lobby\n")  # a reply to bob, after his run
    clock.advance(0)
    assert lines(b_out) == [
        "MSG #lobby alice first",
        "MSG #x dave aside",
        "MSG #lobby alice second",
        "INFO You are already in #lobby; it is your current room.",
    ]
    assert lines(c_out) == ["MSG #lobby alice first", "MSG #lobby alice second"]


@pytest.mark.usefixtures("no_small_flush")
def test_a_quit_during_a_flush_reaches_everyone_in_order(clock: Clock) -> None:
    """Carol drops while bob's lines are written: nobody loses or reorders a line."""
    factory = make_factory(clock, flush_delay=0.0, flood_rate=0.0)
    alice, a_out = connect(factory, "alice")
    (_, b_out), (carol, _) = connect(factory, "bob"), connect(factory, "carol")
    _, d_out = connect(factory, "dave")
    clock.advance(0)
    for transport in (a_out, b_out, d_out):
        transport.clear()
    original = b_out.write

    def write_then_lose_carol(data: bytes) -> None:
        original(data)
        if carol.phase is not carol.phase.CLOSING:
            carol.connectionLost(Failure(ConnectionDone()))

    b_out.write = write_then_lose_carol  # type: ignore[method-assign]
    alice.dataReceived(b"hi\n")
    clock.advance(0)  # flushes bob, which drops carol, then dave
    clock.advance(0)  # the QUIT, for those flushed before it
    quit_line = "QUIT carol connection closed"
    assert lines(a_out) == ["MSG #lobby alice hi", quit_line]
    assert lines(b_out) == ["MSG #lobby alice hi", quit_line]
    assert lines(d_out) == ["MSG #lobby alice hi", quit_line]


@pytest.mark.usefixtures("no_small_flush")
def test_end_now_writes_a_round_without_the_timer(clock: Clock) -> None:
    """end_now (a cluster node's read of the log): one write each, at once."""
    factory = make_factory(clock, flush_delay=0.0)
    (alice, _), (_, b_out) = connect(factory, "alice"), connect(factory, "bob")
    clock.advance(0)
    b_out.clear()
    writes = count_writes(b_out)
    batch = factory.output
    batch.begin()
    assert alice.user is not None
    factory.chat.say(alice.user, "one")
    factory.chat.say(alice.user, "two")
    batch.end_now()
    assert len(writes) == 1
    assert lines(b_out) == ["MSG #lobby alice one", "MSG #lobby alice two"]


def test_once_per_broadcast_spells_an_event_once_for_all_its_recipients() -> None:
    spelled: list[object] = []

    def spell(event: object) -> bytes:
        spelled.append(event)
        return repr(event).encode()

    render = output.once_per_broadcast(spell)
    first, second = object(), object()
    assert render(first) is render(first)
    render(second)
    render(second)
    assert spelled == [first, second]
