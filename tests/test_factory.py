"""The factory: shared state across connections, and closing them all."""

from __future__ import annotations

from helpers import connect, disconnect, lines, make_factory, open_connection
from twisted.internet.task import Clock


def test_all_connections_share_one_chat(clock: Clock) -> None:
    """Two protocols from one factory see each other's messages."""
    factory = make_factory(clock)
    (alice, _), (bob, _b_out) = connect(factory, "alice"), connect(factory, "bob")
    assert alice.chat is bob.chat is factory.chat
    assert factory.connections == {alice, bob}
    disconnect(alice)
    assert factory.connections == {bob}


def test_close_all_says_bye_and_fires_when_everyone_is_gone(clock: Clock) -> None:
    """Each client gets BYE, sees no QUIT after it, and the Deferred waits for all."""
    factory = make_factory(clock)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    waiting, w_out = open_connection(factory)
    a_out.clear(), w_out.clear()
    done = factory.close_all("shutting down")
    fired: list[object] = []
    done.addCallback(fired.append)
    for out in (a_out, b_out, w_out):
        assert lines(out) == ["BYE shutting down"] and out.disconnecting
    disconnect(alice)
    assert b_out.value() == b""  # bob was told BYE; no QUIT follows it
    disconnect(bob)
    assert fired == []
    disconnect(waiting)
    assert fired == [None]
    assert not clock.getDelayedCalls()


def test_close_all_aborts_connections_that_do_not_close(clock: Clock) -> None:
    """A peer that never lets its connection close is aborted after the grace."""
    factory = make_factory(clock, shutdown_grace=5.0)
    alice, out = connect(factory, "alice")
    factory.close_all("bye")
    clock.advance(4.9)
    assert not out.disconnected
    clock.advance(0.2)
    assert out.disconnected  # StringTransport.abortConnection sets it


def test_close_all_with_nobody_connected_fires_at_once(clock: Clock) -> None:
    """Shutdown of an empty server does not wait."""
    fired: list[object] = []
    make_factory(clock).close_all("bye").addCallback(fired.append)
    assert fired == [None]
