"""History in the client, over StringTransport and task.Clock: the backfill under
its marker, older pages when the user scrolls to the top, and a reconnect that
shows what was missed with nothing twice and nothing left out."""

from __future__ import annotations

import pytest
from helpers import connect
from test_client import REFILL, Client, FakeConnector, Loopback, RecordingView, sign_in
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatd.client.client import ClientSession
from chatd.client.conversations import Conversation, EntryKind
from chatd.client.scrollback import (
    EARLIER,
    GAP_PAGE,
    MISSED,
    PAGE,
    insert_sorted,
    parse_utc,
)
from chatd.client.scrollback import ScrollbackEntry as ScrollEntry
from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import utc_time
from chatd.store.memory import MemoryHistory

T0 = 1_796_082_601_000  # ms: 2026-11-30T23:50:01.000Z


@pytest.fixture
def client(clock: Clock) -> Client:
    view, dialer = RecordingView(), FakeConnector()
    return Client(ClientSession(view, clock, dialer), view, clock, dialer)


def history(room: str, msg_id: int, text: str = "", nick: str = "bob") -> str:
    """A HISTORY line for message msg_id, said at T0 + msg_id ms."""
    said = text or f"m{msg_id}"
    return f"HISTORY {room} {msg_id} {utc_time(T0 + msg_id)} MSG {nick} {said}"


def live(room: str, msg_id: int, nick: str = "bob") -> tuple[str, str]:
    """An ID line and the MSG it leads, for message msg_id."""
    return f"ID {room} {msg_id} {utc_time(T0 + msg_id)}", f"MSG {room} {nick} m{msg_id}"


def shown(conversation: Conversation) -> list[str]:
    """The scrollback as short words: ids of messages, MARK:text, or the notice."""
    words = []
    for entry in conversation.scrollback:
        if entry.kind is EntryKind.MARKER:
            words.append(f"MARK:{entry.text}")
        elif entry.id is not None:
            words.append(str(entry.id))
        elif entry.nick is None:
            words.append(entry.text)
        else:
            words.append(f"?{entry.text}")
    return words


def join_with_backfill(client: Client, room: str, ids: list[int]) -> None:
    """Type /join room; the server answers JOIN, then HISTORY for ids."""
    client.session.submit(f"/join {room}")
    client.sent()
    lines = [f"JOIN {room} alice", *(history(room, n) for n in ids)]
    if ids:
        lines.append(f"ENDHISTORY {room} {len(ids)}")
    client.hear(*lines)
    assert client.sent() == [f"/who {room}"]
    client.hear(f"USERS {room} alice bob")
    client.clock.advance(REFILL)


def test_backfill_goes_above_the_join_under_a_quiet_marker(client: Client) -> None:
    """The HISTORY lines after our own JOIN stand above "You joined", under the
    "Earlier messages" marker, with the server's ids and times; they are not
    counted as unread."""
    sign_in(client)
    join_with_backfill(client, "#games", [10, 11, 12])
    games = client.conversation("#games")
    assert shown(games) == [f"MARK:{EARLIER}", "10", "11", "12", "You joined #games"]
    assert games.scrollback[1].when == (T0 + 10) / 1000
    assert games.scrollback[1].nick == "bob" and games.unread == 0
    (name, at, entries), *_ = client.view.inserted
    assert (name, at, len(entries)) == ("#games", 0, 4)


def test_live_ids_are_kept_and_a_message_is_never_shown_twice(client: Client) -> None:
    """An ID line gives the MSG after it its id and time; the same id again (as
    history, or live) adds nothing."""
    sign_in(client)
    client.hear(*live("#lobby", 5), *live("#lobby", 5))
    client.hear("ID #lobby 6 2026-11-30T23:50:01.006Z", "ACTION #lobby bob waves")
    lobby = client.conversation("#lobby")
    ids = [entry.id for entry in lobby.scrollback if entry.nick]
    assert ids == [5, 6]
    assert lobby.scrollback[-1].when == (T0 + 6) / 1000
    client.hear("MSG #lobby bob no id")  # without an ID line: no id, still shown
    assert lobby.scrollback[-1].id is None and lobby.scrollback[-1].text == "no id"


def test_the_answer_to_ids_on_is_not_shown(client: Client) -> None:
    """INFO Message ids are on..., or a server's ERR unknown-command for /ids,
    answer the client itself: neither reaches the screen."""
    client.session.connect("127.0.0.1", 5501, "alice")
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice"]
    client.hear("INFO Message ids are on: ID <room> <id> <time> comes first.")
    client.hear("WELCOME alice hi", "INFO the motd")
    assert client.view.texts(EntryKind.INFO) == ["hi", "hi", "the motd"]
    client.drop()
    client.clock.advance(1)
    client.accept()
    client.view.entries.clear()
    client.hear("HELLO old hi", "NICK pick one")
    client.sent()
    client.hear("ERR unknown-command /ids is not a command; try /help")
    assert client.view.texts(EntryKind.ERROR) == []


def test_scrolling_to_the_top_loads_the_page_before(client: Client) -> None:
    """load_older asks for PAGE messages before the oldest shown, once at a time;
    the page goes under the marker at the top; a short page is the last."""
    sign_in(client)
    join_with_backfill(client, "#games", [10, 11, 12])
    client.session.load_older("#games")
    client.session.load_older("#games")  # already on its way: not asked twice
    assert client.sent() == [f"/history #games {PAGE} before 10"]
    client.view.inserted.clear()
    client.hear(history("#games", 7), history("#games", 9), "ENDHISTORY #games 2")
    games = client.conversation("#games")
    assert shown(games)[:6] == [f"MARK:{EARLIER}", "7", "9", "10", "11", "12"]
    assert [(at, len(e)) for _, at, e in client.view.inserted] == [(1, 2)]
    assert games.history_done
    client.session.load_older("#games")
    assert client.sent() == []
    assert client.view.statuses[-1] == "This is the start of #games's history."


def test_a_room_without_messages_loads_the_latest_page(client: Client) -> None:
    """Nothing shown yet: the page asked for is simply the latest."""
    sign_in(client)
    client.session.load_older("#lobby")
    assert client.sent() == [f"/history #lobby {PAGE}"]
    client.hear("ENDHISTORY #lobby 0")
    assert client.conversation("#lobby").history_done


def test_no_history_on_the_server_ends_the_wait(client: Client) -> None:
    """ERR no-history answers a page request: it is shown, and no longer awaited."""
    sign_in(client)
    client.session.load_older("#lobby")
    client.sent()
    client.hear("ERR no-history this server keeps no history")
    lobby = client.conversation("#lobby")
    assert not lobby.loading
    assert client.view.texts(EntryKind.ERROR) == ["this server keeps no history"]


def test_a_refused_room_history_ends_the_paging(client: Client) -> None:
    """ERR banned naming the room answers its page request (the server lets us
    read it no more): no longer awaited, and not asked for again; an ERR
    about another room is not its answer."""
    sign_in(client)
    client.hear(*live("#lobby", 5))
    client.session.load_older("#lobby")
    client.sent()
    client.hear("ERR not-in-room you are not in #lobbyists")
    lobby = client.conversation("#lobby")
    assert lobby.loading
    client.hear(
        "ERR banned you are banned from #Lobby (bob) and cannot read its history"
    )
    assert lobby.history_done and not lobby.loading


def test_an_expired_oldest_message_ends_the_paging(client: Client) -> None:
    """ERR bad-args for the id asked before (deleted by retention since): there
    is nothing older left; the wait ends and no page is asked for again."""
    sign_in(client)
    client.hear(*live("#lobby", 5))
    client.session.load_older("#lobby")
    assert client.sent() == [f"/history #lobby {PAGE} before 5"]
    client.hear("ERR bad-args 5 is not a message id of #lobby")
    lobby = client.conversation("#lobby")
    assert lobby.history_done and not lobby.loading


def test_a_typed_history_is_merged_and_said(client: Client) -> None:
    """/history typed by the user: what is new goes in its place, with a word."""
    sign_in(client)
    client.hear(*live("#lobby", 5))
    client.session.submit("/history")
    assert client.sent() == ["/history"]
    client.hear(history("#lobby", 4), history("#lobby", 5), "ENDHISTORY #lobby 2")
    lobby = client.conversation("#lobby")
    assert [e.id for e in lobby.scrollback if e.id] == [4, 5]
    assert lobby.scrollback[-1].text == "1 message of the history put in its place."


def reconnected(client: Client, *after_welcome: str) -> None:
    """Drop, let the retry dial and connect, and sign in again."""
    client.drop()
    (retry,) = client.clock.getDelayedCalls()
    client.clock.advance(retry.getTime() - client.clock.seconds())
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice"]
    client.hear("WELCOME alice back", "JOIN #lobby alice", *after_welcome)


def test_reconnect_fills_the_gap_page_by_page(client: Client) -> None:
    """After a drop the backfill (the 20 latest) does not reach back to the last
    message seen: the pages before it are asked for until one does; what was
    already shown is not shown again, and the order is the ids' order."""
    sign_in(client)
    for n in range(1, 6):
        client.hear(*live("#lobby", n))
    reconnected(
        client,
        *(history("#lobby", n) for n in range(150, 170)),
        "ENDHISTORY #lobby 20",
    )
    assert client.sent() == ["/who #lobby", f"/history #lobby {GAP_PAGE} before 150"]
    client.hear(
        *(history("#lobby", n) for n in range(50, 150)), "ENDHISTORY #lobby 100"
    )
    assert client.sent() == [f"/history #lobby {GAP_PAGE} before 50"]
    client.hear(*(history("#lobby", n) for n in range(3, 50)), "ENDHISTORY #lobby 47")
    client.clock.advance(REFILL)
    assert client.sent() == []  # it reached back to 5: caught up
    lobby = client.conversation("#lobby")
    ids = [entry.id for entry in lobby.scrollback if entry.id is not None]
    assert ids == list(range(1, 6)) + list(range(6, 170))
    words = shown(lobby)
    assert words.index(f"MARK:{MISSED}") == words.index("6") - 1
    assert words[-1] == "You joined #lobby"  # what was missed comes before it
    assert lobby.last_seen is None and lobby.unread == 0


def test_reconnect_with_overlapping_backfill_asks_nothing(client: Client) -> None:
    """A backfill that reaches back past the last message seen is enough."""
    sign_in(client)
    for n in range(1, 11):
        client.hear(*live("#lobby", n))
    reconnected(
        client, *(history("#lobby", n) for n in range(5, 15)), "ENDHISTORY #lobby 10"
    )
    assert client.sent() == ["/who #lobby"]
    lobby = client.conversation("#lobby")
    assert [e.id for e in lobby.scrollback if e.id] == list(range(1, 15))


def test_reconnect_without_backfill_asks_for_the_latest(client: Client) -> None:
    """A server that sends no backfill (--backfill 0): the client asks itself."""
    sign_in(client)
    client.hear(*live("#lobby", 1))
    reconnected(client, "USERS #lobby alice")
    client.clock.advance(REFILL)
    assert f"/history #lobby {GAP_PAGE}" in client.sent()
    client.hear(history("#lobby", 1), history("#lobby", 2), "ENDHISTORY #lobby 2")
    lobby = client.conversation("#lobby")
    assert [e.id for e in lobby.scrollback if e.id] == [1, 2]


def test_insert_sorted_puts_entries_before_the_first_larger_id() -> None:
    """Notices without ids stay where they are; new ids go before larger ones."""

    def entry(msg_id: int | None, text: str = "") -> ScrollEntry:
        kind = EntryKind.MESSAGE if msg_id is not None else EntryKind.NOTICE
        return ScrollEntry(0.0, kind, text or str(msg_id), "bob", False, msg_id)

    scrollback = [entry(1), entry(None, "joined"), entry(5), entry(9)]
    blocks = insert_sorted(scrollback, [entry(3), entry(4), entry(7), entry(12)], 4)
    assert [e.text for e in scrollback] == [
        "1",
        "joined",
        "3",
        "4",
        "5",
        "7",
        "9",
        "12",
    ]
    assert [(at, len(e)) for at, e in blocks] == [(2, 2), (5, 1), (7, 1)]
    assert parse_utc("2026-11-30T23:50:01.123Z") == 1_796_082_601.123
    assert parse_utc("yesterday") is None


# -- a real chatd at the other end ---------------------------------------------------


def test_a_reconnect_through_a_real_chatd_misses_nothing_and_repeats_nothing(
    client: Client,
) -> None:
    """alice (the client) and bob (a line user) on chatd with history: bob says
    30 messages, alice's connection drops, bob says 75 more; once alice is back
    she has all 105 once each, in order, with the ones said while she was away
    under their marker."""
    store = MemoryHistory(client.clock)
    factory = ChatFactory(ServerConfig(), client.clock, store)
    bob, _ = connect(factory, "bob")
    client.session.connect("127.0.0.1", 5501, "alice")
    server = Loopback(client, factory)
    server.carry()
    for n in range(30):
        client.clock.advance(0.5)
        bob.dataReceived(f"before {n}\r\n".encode())
        server.carry()
    server.server.connectionLost(Failure(ConnectionLost()))
    client.drop()
    for n in range(75):
        client.clock.advance(0.5)
        bob.dataReceived(f"during {n}\r\n".encode())
    assert len(client.dialer.attempts) == 2  # the retry dialled meanwhile
    server = Loopback(client, factory)
    for _ in range(40):  # paced: a few lines a second
        server.carry()
        client.clock.advance(1)
    lobby = client.conversation("#lobby")
    said = [entry.text for entry in lobby.scrollback if entry.nick == "bob"]
    assert said == [f"before {n}" for n in range(30)] + [
        f"during {n}" for n in range(75)
    ]
    assert lobby.last_seen is None and not lobby.loading
    words = [e.text for e in lobby.scrollback if e.kind is EntryKind.MARKER]
    assert MISSED in words
