"""History in the line protocol (docs/protocol.md version 2), a fake store and Clock.

/history, the backfill after a join and at registration, ERR no-history and
bad-args, and the order of an answer that comes later against live lines.
"""

from __future__ import annotations

import pytest
from helpers import NOW, RecordingClient, connect, disconnect, lines, open_connection
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from chatd.config import HISTORY_MAX, ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import RenderStats, parse_server_line, utc_time
from chatd.model.chat import Action, Chat, Message, Private
from chatd.net.answers import ANSWER_WAIT
from chatd.store.interface import Kind
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW


def make(
    clock: Clock, history: MemoryHistory | None, **settings: object
) -> ChatFactory:
    """A factory on clock and history; flood control off unless asked for."""
    settings.setdefault("flood_rate", 0.0)
    return ChatFactory(ServerConfig(**settings), clock, history)  # type: ignore[arg-type]


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return make(clock, store)


def history_of(received: list[str]) -> list[tuple[str, ...]]:
    """The (target, id, time, kind, nick, text) of each HISTORY line."""
    found = []
    for text in received:
        parsed = parse_server_line(text)
        if parsed.verb == "HISTORY":
            assert parsed.text is not None
            found.append((*parsed.words, parsed.text))
    return found


# -- the model -----------------------------------------------------------------


def test_room_messages_get_ids_and_times_and_are_kept(
    clock: Clock, store: MemoryHistory
) -> None:
    """say/act stamp the event with the store's id and the clock's time; the room
    is kept under its folded name; private messages are not kept."""
    chat = Chat(history=store)
    alice = chat.register("Alice", RecordingClient())
    chat.join(alice, "#Dev")
    alice.client.take()  # type: ignore[attr-defined]
    chat.say(alice, "hello")
    chat.act(alice, "waves")
    chat.tell(alice, "alice", "note to self")
    said, acted, private = alice.client.take()  # type: ignore[attr-defined]
    assert isinstance(said, Message) and isinstance(acted, Action)
    assert said.time == NOW and said.id == int(NOW * 1_000_000)
    assert acted.id == said.id + 1
    assert isinstance(private, Private)
    kept = store.rooms["#dev"]
    assert [(e.kind, e.nick, e.text) for e in kept] == [
        (Kind.MESSAGE, "Alice", "hello"),
        (Kind.ACTION, "Alice", "waves"),
    ]
    assert set(store.rooms) == {"#dev"}


def test_without_history_events_have_no_id() -> None:
    """No store: id 0 and time 0, as before version 2."""
    chat = Chat()
    alice = chat.register("alice", RecordingClient())
    chat.join(alice, "#lobby")
    chat.say(alice, "hi")
    assert alice.client.events[-1] == Message("#lobby", "alice", "hi")  # type: ignore[attr-defined]


# -- the wire ----------------------------------------------------------------


def test_msg_line_is_unchanged_and_rendered_once(factory: ChatFactory) -> None:
    """With history on, MSG is still version 1's line, encoded once per broadcast."""
    (alice, a_out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    a_out.clear()
    before = RenderStats.renders
    alice.dataReceived(b"hello there\r\n")
    assert RenderStats.renders - before == 1
    assert a_out.value() == b_out.value() == b"MSG #lobby alice hello there\r\n"


def test_utc_time_is_spelled_as_the_contract_says() -> None:
    """2026-11-30T23:50:01.123Z: UTC, milliseconds, Z."""
    assert utc_time(int(NOW * 1000)) == "2026-11-30T23:50:01.123Z"
    assert utc_time(0) == "1970-01-01T00:00:00.000Z"
    assert utc_time(5) == "1970-01-01T00:00:00.005Z"


def test_history_lines_parse_by_their_shape() -> None:
    """HISTORY has five words and text; ENDHISTORY two words (wire.SERVER_VERBS)."""
    parsed = parse_server_line(
        "HISTORY #dev 17 2026-11-30T23:50:01.123Z MSG bob hi all"
    )
    assert parsed.words == ("#dev", "17", "2026-11-30T23:50:01.123Z", "MSG", "bob")
    assert parsed.text == "hi all"
    assert parse_server_line("ENDHISTORY #dev 3").words == ("#dev", "3")


# -- /history ------------------------------------------------------------------


def test_history_gives_the_current_rooms_latest_oldest_first(
    factory: ChatFactory, clock: Clock
) -> None:
    """/history: HISTORY <room> <id> <time> <kind> <nick> <text> lines, then
    ENDHISTORY <room> <count>."""
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"first\r\n")
    clock.advance(1.5)
    bob.dataReceived(b"/me second\r\n")
    lines(b_out)
    bob.dataReceived(b"/history\r\n")
    received = lines(b_out)
    first_id = str(int(NOW * 1_000_000))
    second_id = str(int((NOW + 1.5) * 1_000_000))
    assert received == [
        f"HISTORY #lobby {first_id} 2026-11-30T23:50:01.123Z MSG alice first",
        f"HISTORY #lobby {second_id} 2026-11-30T23:50:02.623Z ACTION bob second",
        "ENDHISTORY #lobby 2",
    ]
    assert lines(a_out)[1:] == ["MSG #lobby alice first", "ACTION #lobby bob second"]


def test_history_count_and_before(factory: ChatFactory) -> None:
    """/history #room 2 gives the latest two; before <id> pages back from there."""
    (alice, out) = connect(factory, "alice")
    alice.dataReceived(b"/join #dev\r\n")
    for n in range(5):
        alice.dataReceived(f"m{n}\r\n".encode())
    lines(out)
    alice.dataReceived(b"/history #lobby\r\n/history #DEV 2\r\n")
    received = lines(out)
    assert received[0] == "ENDHISTORY #lobby 0"
    page = history_of(received)
    assert [row[5] for row in page] == ["m3", "m4"] and received[
        -1
    ] == "ENDHISTORY #dev 2"
    alice.dataReceived(f"/history #dev 2 before {page[0][1]}\r\n".encode())
    older = lines(out)
    assert [row[5] for row in history_of(older)] == ["m1", "m2"]
    alice.dataReceived(f"/history #dev BEFORE {history_of(older)[0][1]}\r\n".encode())
    assert [row[5] for row in history_of(lines(out))] == ["m0"]


def test_count_above_the_maximum_is_lowered(factory: ChatFactory) -> None:
    """A count past the server's maximum gets the maximum."""
    alice, out = connect(factory, "alice")
    for n in range(HISTORY_MAX + 20):
        alice.dataReceived(f"line {n}\r\n".encode())
    lines(out)
    alice.dataReceived(b"/history 100000000000000000000\r\n")
    received = lines(out)
    assert len(history_of(received)) == HISTORY_MAX
    assert received[-1] == f"ENDHISTORY #lobby {HISTORY_MAX}"
    assert history_of(received)[-1][5] == f"line {HISTORY_MAX + 19}"


def test_room_that_never_had_history_answers_endhistory_0(factory: ChatFactory) -> None:
    """A public room one is not in, without history, gets ENDHISTORY 0, and so
    does a room that does not exist (Chat.may_read: nothing to read)."""
    alice, out = connect(factory, "alice")
    bob, _ = connect(factory, "bob")
    bob.dataReceived(b"/join #quiet\r\n")
    lines(out)
    alice.dataReceived(b"/history #QUIET\r\n/history #nowhere\r\n")
    assert lines(out) == [
        "ENDHISTORY #quiet 0",
        "ENDHISTORY #nowhere 0",
    ]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("/history #lobby before 12345", "bad-args"),  # no such id in the room
        ("/history before abc", "bad-args"),
        ("/history before", "bad-args"),
        ("/history 0", "bad-args"),
        ("/history 5 10", "bad-args"),
        ("/history #lobby 5 before 1 2", "bad-args"),
        ("/history #bad!room", "room-invalid"),
        ("/history #nowhere before 1", "bad-args"),  # no room, no ids
    ],
)
def test_history_refusals(factory: ChatFactory, command: str, code: str) -> None:
    """Malformed /history, or an id that is not the room's, is refused."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"something\r\n")
    lines(out)
    alice.dataReceived(command.encode() + b"\r\n")
    (reply,) = lines(out)
    assert reply.startswith(f"ERR {code} ")


def test_an_id_of_another_room_is_bad_args(factory: ChatFactory) -> None:
    """An id said in #lobby is not #dev's."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"in the lobby\r\n/join #dev\r\nin dev\r\n")
    lines(out)
    alice.dataReceived(b"/history #lobby\r\n")
    lobby_id = history_of(lines(out))[0][1]
    alice.dataReceived(f"/history #dev before {lobby_id}\r\n".encode())
    (reply,) = lines(out)
    assert reply == f"ERR bad-args {lobby_id} is not a message id of #dev"


def test_history_on_a_server_without_history_is_no_history(clock: Clock) -> None:
    """--no-history: ERR no-history, and no backfill anywhere."""
    factory = make(clock, None)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"hi\r\n/history\r\n")
    assert lines(a_out)[-1] == "ERR no-history this server keeps no history"
    lines(b_out)
    bob.dataReceived(b"/part #lobby\r\n/join #lobby\r\n")
    assert lines(b_out) == ["PART #lobby bob ", "JOIN #lobby bob"]


def test_history_while_the_store_is_down_says_why(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """A store fault: ERR no-history with the reason; the chat goes on."""
    (alice, out), (_bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"before\r\n")
    store.reason = "the disk is full"
    lines(out)
    alice.dataReceived(b"/history\r\nstill chatting\r\n")
    assert lines(out) == [
        "ERR no-history history is unavailable: the disk is full",
        "MSG #lobby alice still chatting",
    ]
    assert lines(b_out)[-1] == "MSG #lobby alice still chatting"
    carol, c_out = connect(factory, "carol")  # no backfill while it is down
    carol.dataReceived(b"/join #x\r\n")
    assert lines(c_out) == ["JOIN #x carol"]


def test_history_text_is_as_delivered(factory: ChatFactory) -> None:
    """Control characters are gone from the kept text, as from the MSG line."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"red \x1b[31malert\r\n")
    assert lines(out) == ["MSG #lobby alice red [31malert"]
    alice.dataReceived(b"/history\r\n")
    assert history_of(lines(out))[0][5] == "red [31malert"


def test_an_answer_is_cut_to_half_the_send_queue(clock: Clock) -> None:
    """A long answer keeps its newest lines within half of --sendq."""
    store = MemoryHistory(clock)
    factory = make(clock, store, sendq=8192, max_line=2048)
    alice, out = connect(factory, "alice")
    for n in range(20):
        alice.dataReceived(f"{n:02d} ".encode() + b"x" * 1000 + b"\r\n")
    lines(out)
    alice.dataReceived(b"/history 20\r\n")
    data = out.value()
    received = lines(out)
    kept = history_of(received)
    assert len(data) <= 4096 and 1 <= len(kept) < 20
    assert (
        kept[-1][5].startswith("19 ")
        and received[-1] == f"ENDHISTORY #lobby {len(kept)}"
    )


# -- the backfill after a join ---------------------------------------------------


def test_joiner_gets_the_latest_right_after_its_join(clock: Clock) -> None:
    """/join of a room with history: JOIN, then HISTORY lines (--backfill of
    them), then ENDHISTORY, to the joiner only."""
    factory = make(clock, MemoryHistory(clock), backfill=3)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    alice.dataReceived(b"/join #dev\r\n")
    for n in range(5):
        alice.dataReceived(f"m{n}\r\n".encode())
    lines(a_out)
    bob.dataReceived(b"/join #dev\r\n")
    received = lines(b_out)
    assert received[0] == "JOIN #dev bob"
    assert [row[5] for row in history_of(received)] == ["m2", "m3", "m4"]
    assert received[-1] == "ENDHISTORY #dev 3" and len(received) == 5
    assert lines(a_out) == ["JOIN #dev bob"]


def test_registration_backfills_the_lobby(clock: Clock) -> None:
    """At registration: WELCOME, the motd, JOIN #lobby, then #lobby's history."""
    factory = make(clock, MemoryHistory(clock), motd=("be nice",))
    alice, _ = connect(factory, "alice")
    alice.dataReceived(b"hello lobby\r\n")
    bob, out = open_connection(factory, 41999, "10.0.0.9")
    out.clear()
    bob.dataReceived(b"bob\r\n")
    received = lines(out)
    assert received[0].startswith("WELCOME bob ")
    assert received[1:3] == ["INFO be nice", "JOIN #lobby bob"]
    assert [row[4:] for row in history_of(received)] == [("alice", "hello lobby")]
    assert received[-1] == "ENDHISTORY #lobby 1"


def test_no_backfill_for_a_room_without_history_or_with_backfill_0(
    clock: Clock,
) -> None:
    """Nothing after JOIN for a new room, nor anywhere with --backfill 0."""
    factory = make(clock, MemoryHistory(clock))
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"/join #new\r\n")
    assert lines(out) == ["JOIN #new alice"]
    quiet = make(clock, MemoryHistory(clock), backfill=0)
    bob, _ = connect(quiet, "bob")
    bob.dataReceived(b"said\r\n")
    carol, c_out = connect(quiet, "carol")
    carol.dataReceived(b"/part #lobby\r\n/join #lobby\r\n")
    assert lines(c_out) == ["PART #lobby carol ", "JOIN #lobby carol"]


def test_rejoining_a_room_one_is_in_gives_no_backfill(factory: ChatFactory) -> None:
    """Only a new JOIN brings history; /join of a room one is in is an INFO."""
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hi\r\n")
    lines(out)
    alice.dataReceived(b"/join #lobby\r\n")
    (reply,) = lines(out)
    assert reply.startswith("INFO ")


# -- answers that come later, in order --------------------------------------------


def test_live_lines_wait_behind_the_backfill(clock: Clock) -> None:
    """A line said in the room between the joiner's JOIN and the store's answer
    reaches the joiner after ENDHISTORY, never before; other members at once."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    store.answer()  # the lobby backfills of the connections above
    alice.dataReceived(b"/join #dev\r\nearlier\r\n")
    lines(a_out)
    bob.dataReceived(b"/join #dev\r\n")
    assert lines(b_out) == ["JOIN #dev bob"]
    alice.dataReceived(b"live\r\n")  # while bob's backfill is on its way
    bob.dataReceived(b"/who\r\n")  # and bob's own later command
    assert lines(a_out) == ["JOIN #dev bob", "MSG #dev alice live"]
    assert lines(b_out) == []
    store.answer()
    received = lines(b_out)
    assert [row[5] for row in history_of(received)] == ["earlier"]
    assert received[1:] == [
        "ENDHISTORY #dev 1",
        "MSG #dev alice live",
        "USERS #dev alice bob",
        "OPS #dev alice",
    ]


def test_two_answers_keep_their_order(clock: Clock) -> None:
    """Two waits in a row: the second answer, come first, waits for the first."""
    factory = make(clock, None)
    alice, out = connect(factory, "alice")
    first: Deferred[bytes] = Deferred()
    second: Deferred[bytes] = Deferred()
    alice.send_later(first, b"")
    alice.send_info("between")
    alice.send_later(second, b"")
    alice.send_info("after")
    second.callback(b"INFO second\r\n")
    assert lines(out) == []
    first.callback(b"INFO first\r\n")
    assert lines(out) == ["INFO first", "INFO between", "INFO second", "INFO after"]
    alice.send_info("then")
    assert lines(out) == ["INFO then"]


def test_an_answer_that_does_not_come_is_replaced_in_time(clock: Clock) -> None:
    """After ANSWER_WAIT seconds the fallback goes, and what waited after it;
    the late answer is dropped."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    store.answer()
    lines(out)
    with capturedLogs() as events:
        alice.dataReceived(b"/history\r\nstill here\r\n")
        assert lines(out) == []
        clock.advance(ANSWER_WAIT)
    assert lines(out) == [
        "ERR no-history history is unavailable: it did not answer in time",
        "MSG #lobby alice still here",
    ]
    assert any("did not come" in event["log_format"] for event in events)
    store.answer()
    assert lines(out) == []


def test_quit_while_waiting_says_bye_after_the_answer(clock: Clock) -> None:
    """/quit after /history: the HISTORY lines, what was held, then BYE and close."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    store.answer()
    lines(out)
    alice.dataReceived(b"/history\r\nheld\r\n/quit\r\n")
    assert lines(out) == [] and not out.disconnecting
    store.answer()
    got = lines(out)
    assert got[0].startswith("HISTORY #lobby") and "hello" in got[0]
    assert got[-2:] == ["MSG #lobby alice held", "BYE Goodbye, alice."]
    assert out.disconnecting
    disconnect(alice)
    assert not clock.getDelayedCalls() or all(
        call.getTime() > clock.seconds() for call in clock.getDelayedCalls()
    )


def test_quit_waits_for_an_answer_at_most_answer_wait(clock: Clock) -> None:
    """An answer that never comes: its fallback, then BYE, within ANSWER_WAIT."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    store.answer()
    lines(out)
    alice.dataReceived(b"/history\r\n/quit\r\n")
    clock.advance(ANSWER_WAIT)
    assert lines(out) == [
        "ERR no-history history is unavailable: it did not answer in time",
        "BYE Goodbye, alice.",
    ]
    assert out.disconnecting


def test_a_server_goodbye_does_not_wait_for_answers(clock: Clock) -> None:
    """A goodbye the server decides (here the shutdown) never waits: held lines, BYE."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    store.answer()
    lines(out)
    alice.dataReceived(b"/history\r\nheld\r\n")
    factory.close_all("Server shutting down.")
    assert lines(out) == ["MSG #lobby alice held", "BYE Server shutting down."]
    store.answer()
    assert lines(out) == []


def test_answers_come_before_the_close_at_the_end_of_input(clock: Clock) -> None:
    """printf 'alice\n/history\n' | nc -N: the backfill and HISTORY, then the close."""
    store = MemoryHistory(clock, manual=True)
    factory = make(clock, store)
    alice, out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    store.answer()
    lines(out)
    alice.dataReceived(b"/history\r\n")
    alice.readConnectionLost()  # the client's end of input
    assert not out.disconnecting
    store.answer()
    assert lines(out)[0].startswith("HISTORY #lobby")
    assert out.disconnecting


def test_a_failed_answer_sends_the_fallback(clock: Clock) -> None:
    """A bug in an answer is logged; the client gets the fallback and carries on."""
    factory = make(clock, None)
    alice, out = connect(factory, "alice")
    answer: Deferred[bytes] = Deferred()
    alice.send_later(answer, b"INFO fallback\r\n")
    alice.send_info("after")
    with capturedLogs() as events:
        answer.errback(RuntimeError("boom"))
    assert lines(out) == ["INFO fallback", "INFO after"]
    assert any(event.get("log_failure") is not None for event in events)


# -- /ids: the opt-in ID line before live room messages ------------------------------


def test_ids_on_leads_room_messages_with_their_id_and_time(
    clock: Clock, factory: ChatFactory
) -> None:
    """After /ids on (allowed before the nickname) each MSG and ACTION in a room
    comes right after `ID <room> <id> <time>`, the id and time that HISTORY
    gives for it; private messages have none; clients that did not ask never
    see ID."""
    tk, tk_out = open_connection(factory, port=41001, host="127.0.9.1")
    tk.dataReceived(b"/ids on\r\nalice\r\n")
    assert any(text.startswith("INFO Message ids are on") for text in lines(tk_out))
    bob, b_out = connect(factory, "bob")
    lines(tk_out)
    clock.advance(0.5)
    bob.dataReceived(b"hello\r\n/me waves\r\n/msg alice psst\r\n")
    received = lines(tk_out)
    assert [text.split(" ")[0] for text in received] == [
        "ID",
        "MSG",
        "ID",
        "ACTION",
        "PRIV",
    ]
    assert lines(b_out)[:2] == ["MSG #lobby bob hello", "ACTION #lobby bob waves"]
    tk.dataReceived(b"/history\r\n")
    kept = history_of(lines(tk_out))
    for (_, room, msg_id, time), history in zip(
        [received[0].split(" "), received[2].split(" ")], kept, strict=True
    ):
        assert (room, msg_id, time) == history[:3]


def test_ids_lines_are_rendered_once_per_broadcast(factory: ChatFactory) -> None:
    """One room message to many /ids clients is spelled once for all of them,
    and the clients without /ids share the plain line."""
    clients = [connect(factory, f"user{n}") for n in range(6)]
    for proto, out in clients[:3]:
        proto.dataReceived(b"/ids on\r\n")
        out.clear()
    before = RenderStats.renders
    clients[5][0].dataReceived(b"once\r\n")
    assert RenderStats.renders - before == 2  # the MSG line, and its ID
    with_ids = {out.value() for _, out in clients[:3]}
    assert len(with_ids) == 1 and with_ids.pop().startswith(b"ID #lobby ")


def test_ids_off_and_bad_arguments(factory: ChatFactory) -> None:
    """/ids off goes back to plain lines; anything but on or off is bad-args."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"/ids on\r\n/ids off\r\n/ids maybe\r\nhi\r\n")
    received = lines(a_out)
    assert received[1] == "INFO Message ids are off."
    assert received[2].startswith("ERR bad-args usage: /ids [on|off]")
    assert received[3] == "MSG #lobby alice hi"
