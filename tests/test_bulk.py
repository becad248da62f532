"""Answers in bulk: charged by their size, made in slices (chatd.net.bulk)."""

from __future__ import annotations

from collections.abc import Sequence

from helpers import connect, lines, make_factory
from irc_helpers import make_server, registered
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock

from chatd.factory import ChatFactory
from chatd.net.bulk import (
    ANSWER_LINES_PER_TOKEN,
    SLICE_LINES,
    newest_within,
    pack_words,
)

ROOMS = 1000


def run_one_turn(clock: Clock) -> None:
    """Run the first call due, as one reactor turn would (Clock.advance(0) would
    also run the calls that one schedules for now)."""
    call = min(clock.calls, key=lambda call: call.getTime())
    assert call.getTime() <= clock.seconds()
    clock.calls.remove(call)
    call.func(*call.args, **call.kw)


def many_rooms(clock: Clock, **settings: object) -> ChatFactory:
    """A server with ROOMS rooms, each with one member (dora, on the line door)."""
    settings.setdefault("max_rooms_per_user", ROOMS + 1)
    factory = make_factory(clock, **settings)
    dora, _ = connect(factory, "dora")
    assert dora.user is not None
    for number in range(ROOMS):
        factory.chat.join(dora.user, f"#room{number:04d}")
    return factory


def test_list_of_every_room_is_made_a_slice_per_reactor_turn(clock: Clock) -> None:
    """LIST of 1,000 rooms: SLICE_LINES lines a turn, others answered between;
    then all of it, in order, 321 to 323."""
    factory = many_rooms(clock, flood_rate=0.0)
    alice, a_out = irc_connect(factory, "alice")
    bob, b_out = irc_connect(factory, "bob")
    alice.dataReceived(b"LIST\r\nPING after\r\n")
    assert lines(a_out) == []  # made across turns; the PING waits behind it
    turns = 0
    while not a_out.value():
        bob.dataReceived(b"PING %d\r\n" % turns)  # answered at once meanwhile
        assert lines(b_out) == [f":chatd PONG chatd :{turns}"]
        run_one_turn(clock)
        turns += 1
    assert turns == (ROOMS + 2) // SLICE_LINES  # the first slice came at once
    got = lines(a_out)
    assert got[0].startswith(":chatd 321 alice Channel")
    listed = [g.split(" ")[3] for g in got if " 322 " in g]
    assert listed == sorted(listed) and len(listed) == ROOMS + 1  # and #lobby
    assert got[-2:] == [":chatd 323 alice :End of /LIST", ":chatd PONG chatd :after"]


def test_a_client_looping_list_waits_for_its_charge(clock: Clock) -> None:
    """LIST again and again: each costs a line per ANSWER_LINES_PER_TOKEN rooms;
    the client is told once, its next LIST waits, nobody else does."""
    factory = many_rooms(clock, flood_burst=10, flood_rate=2.0)
    alice, a_out = irc_connect(factory, "alice")
    bob, b_out = irc_connect(factory, "bob")
    clock.advance(60)  # a full bucket
    alice.dataReceived(b"LIST\r\n" * 5)
    clock.pump([0] * 20)
    got = lines(a_out)
    assert len([g for g in got if " 323 " in g]) == 1
    assert [g for g in got if "too fast" in g]  # the charge: held input, one notice
    assert alice.gate is not None and alice.gate.held is not None
    bob.dataReceived(b"PING b\r\n")
    assert lines(b_out) == [":chatd PONG chatd :b"]
    charge = (ROOMS + 1) // ANSWER_LINES_PER_TOKEN  # 20 lines: 10 s at 2 a second
    clock.pump([0.5] * (charge - 10))
    assert not [g for g in lines(a_out) if " 323 " in g]  # still paying
    clock.pump([0.5] * 4 + [0] * 20)
    assert len([g for g in lines(a_out) if " 323 " in g]) == 1  # the next one


def test_names_without_a_room_answers_only_its_end(clock: Clock) -> None:
    """NAMES alone is the whole server: only 366 `*`, as Ergo and InspIRCd do."""
    factory = many_rooms(clock)
    alice, a_out = irc_connect(factory, "alice")
    alice.dataReceived(b"NAMES\r\n")
    assert lines(a_out) == [":chatd 366 alice * :End of /NAMES list"]
    alice.dataReceived(b"NAMES #room0001\r\n")
    assert lines(a_out) == [
        ":chatd 353 alice = #room0001 :@dora",
        ":chatd 366 alice #room0001 :End of /NAMES list",
    ]


def test_line_door_rooms_and_history_are_charged(clock: Clock) -> None:
    """/rooms pages (100 rooms: 2 lines of budget more) and /history 100 (2 more)."""
    factory = many_rooms(clock, flood_burst=10, flood_rate=2.0)
    alice, a_out = connect(factory, "alice")
    clock.advance(60)
    lines(a_out)
    alice.dataReceived(b"/rooms\n/rooms 2\n/history 100\n")  # 9 of the 10
    got = lines(a_out)
    assert not [g for g in got if g.startswith("ERR flood")]
    alice.dataReceived(b"/rooms 3\n/history 100\n")  # 3 more: in debt
    got = lines(a_out)
    assert [g for g in got if g.startswith("ERR flood")]
    assert alice.gate is not None and alice.gate.held is not None


def test_chathistory_and_who_are_charged_by_their_size() -> None:
    """CHATHISTORY by the limit asked for; WHO by the lines answered."""
    server = make_server()
    alice = registered(server, "alice", "draft/chathistory", "batch")
    alice.line("CHATHISTORY LATEST #lobby * 100")
    assert alice.charged == 100
    alice.lines()
    for number in range(60):
        registered(server, f"user{number}").line("JOIN #x")
    alice.line("WHO #x")
    assert len(alice.lines()) == 61 and alice.charged == 100 + 60


def test_pack_words_fills_each_line_to_its_budget() -> None:
    # Both doors' lists (USERS/ROOMS/BANS, NAMES/WHOIS) are packed by it.
    assert pack_words(["ab", "cd", "ef"], 3, 9) == [["ab", "cd"], ["ef"]]
    assert pack_words(["too-long-alone"], 3, 9) == [["too-long-alone"]]
    assert pack_words([], 3, 9) == []


def test_newest_within_leaves_out_the_oldest_and_keeps_the_newest() -> None:
    # Both doors' history answers are trimmed by it.
    def spell(items: Sequence[bytes]) -> bytes:
        return b"".join(items)

    items = [b"%02d" % i for i in range(8)]
    assert newest_within(items, 100, spell) == spell(items)
    assert newest_within(items, 10, spell) == b"0304050607"
    assert newest_within(items, 1, spell) == b"07"
    assert newest_within([], 1, spell) == b""
