"""The client side over StringTransport and task.Clock: every server line, NICK
negotiation, typing, reconnecting and leaving; no display needed."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pytest
from helpers import make_factory, open_connection
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.python.failure import Failure

from chatd.client.client import (
    CONNECT_TIMEOUT,
    QUIT_GRACE,
    SEND_BURST,
    SEND_RATE,
    STABLE_AFTER,
    ClientProtocol,
    ClientSession,
    InputHistory,
    SessionPhase,
    describe_failure,
    retry_delay,
    tcp_connector,
)
from chatd.client.conversation import SCROLLBACK
from chatd.client.conversations import (
    MAX_PRIVATE,
    OTHERS_KEY,
    SERVER_KEY,
    Conversation,
    ConversationKind,
    EntryKind,
    ScrollbackEntry,
)
from chatd.factory import ChatFactory
from chatd.model.names import fold

PRIVATE = ConversationKind.PRIVATE
REFILL = math.ceil(SEND_BURST / SEND_RATE)  # seconds: a spent burst is back


@dataclass
class RecordingView:
    """A ClientView that keeps what it was told."""

    statuses: list[str] = field(default_factory=list)
    entries: list[tuple[str, ScrollbackEntry]] = field(default_factory=list)
    inserted: list[tuple[str, int, list[ScrollbackEntry]]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    registered_as: list[str] = field(default_factory=list)
    finished_count: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # screen updates by kind

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def entry_added(self, conversation: Conversation, entry: ScrollbackEntry) -> None:
        self.entries.append((conversation.name, entry))

    def entries_inserted(
        self, conversation: Conversation, at: int, entries: list[ScrollbackEntry]
    ) -> None:
        self.inserted.append((conversation.name, at, list(entries)))

    def opened(self, conversation: Conversation) -> None:
        self.calls["opened"] += 1

    def closed(self, conversation: Conversation) -> None:
        self.calls["closed"] += 1

    def changed(self, conversation: Conversation) -> None:
        self.calls["changed"] += 1

    def selected(self, conversation: Conversation) -> None:
        self.calls["selected"] += 1

    def member_added(self, conversation: Conversation, nick: str) -> None:
        self.calls["member_added"] += 1

    def member_removed(self, conversation: Conversation, nick: str) -> None:
        self.calls["member_removed"] += 1

    def members_reset(self, conversation: Conversation) -> None:
        self.calls["members_reset"] += 1

    def ask_nick(self, reason: str) -> None:
        self.asked.append(reason)

    def connect_failed(self, reason: str) -> None:
        self.failed.append(reason)

    def registered(self, nick: str) -> None:
        self.registered_as.append(nick)

    def finished(self) -> None:
        self.finished_count += 1

    def texts(self, kind: EntryKind | None = None) -> list[str]:
        """Return the text of every entry so far (of one kind), and forget them."""
        found = [e.text for _, e in self.entries if kind is None or e.kind is kind]
        self.entries.clear()
        return found


class FakeConnector:
    """A Connector that dials nothing: the test decides how each attempt ends."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int, ClientProtocol, Deferred[object]]] = []

    def __call__(
        self, host: str, port: int, protocol: ClientProtocol
    ) -> Deferred[object]:
        dialing: Deferred[object] = Deferred()
        self.attempts.append((host, port, protocol, dialing))
        return dialing

    def accept(self) -> tuple[ClientProtocol, StringTransport]:
        """Connect the latest attempt to a StringTransport."""
        _, _, protocol, dialing = self.attempts[-1]
        transport = StringTransport()
        protocol.makeConnection(transport)
        dialing.callback(protocol)
        return protocol, transport

    def refuse(self) -> None:
        """Fail the latest attempt as a closed port would."""
        self.attempts[-1][3].errback(Failure(ConnectionRefusedError()))


@dataclass
class Client:
    """A session under test with its view, clock, dialer and live connection."""

    session: ClientSession
    view: RecordingView
    clock: Clock
    dialer: FakeConnector
    protocol: ClientProtocol | None = None
    transport: StringTransport | None = None

    def accept(self) -> None:
        self.protocol, self.transport = self.dialer.accept()

    def hear(self, *lines: str) -> None:
        """Feed server lines, each ended by CRLF as chatd sends them."""
        assert self.protocol is not None
        self.protocol.dataReceived("".join(f"{line}\r\n" for line in lines).encode())

    def sent(self) -> list[str]:
        """Return the lines the client wrote (CRLF checked) and forget them."""
        assert self.transport is not None
        data = self.transport.value().decode("utf-8")
        self.transport.clear()
        assert data == "" or data.endswith("\r\n"), data
        return data.split("\r\n")[:-1] if data else []

    def drop(self, reason: type[Exception] = ConnectionLost) -> None:
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(reason()))

    def conversation(self, key: str) -> Conversation:
        return self.session.state.conversations[key]


@pytest.fixture
def client(clock: Clock) -> Client:
    view, dialer = RecordingView(), FakeConnector()
    return Client(ClientSession(view, clock, dialer), view, clock, dialer)


def sign_in(client: Client, nick: str = "alice", others: str = "bob") -> None:
    """Connect, register as nick, land in #lobby with others; clear the record."""
    client.session.connect("127.0.0.1", 5501, nick)
    client.accept()
    client.hear("HELLO chatd Welcome to chatd.", "NICK Choose a nickname")
    assert client.sent() == ["/ids on", "/tags on", f"NICK {nick}"]
    client.hear(f"WELCOME {nick} Welcome, {nick}!", f"JOIN #lobby {nick}")
    assert client.sent() == ["/who #lobby"]
    client.hear(f"USERS #lobby {nick} {others}".rstrip())
    client.view.entries.clear()
    client.clock.advance(REFILL)  # the pace of the user's lines starts afresh


def join(client: Client, room: str, *others: str) -> None:
    """Type /join room and get the server's answers; clear the record."""
    client.session.submit(f"/join {room}")
    assert client.sent() == [f"/join {room}"]
    client.hear(f"JOIN {room} {client.session.nick}")
    assert client.sent() == [f"/who {room}"]
    client.hear(f"USERS {room} {' '.join(sorted([client.session.nick, *others]))}")
    client.view.entries.clear()
    client.clock.advance(REFILL)


# -- the protocol and NICK negotiation ------------------------------------------------


def test_hello_names_the_server_and_nick_is_answered(client: Client) -> None:
    """HELLO <server> <text> names the server tab; NICK <text> gets NICK <nick>."""
    client.session.connect("127.0.0.1", 5501, "alice")
    assert client.dialer.attempts[0][:2] == ("127.0.0.1", 5501)
    client.accept()
    client.hear("HELLO classroom Welcome to the classroom.")
    assert client.conversation(SERVER_KEY).name == "classroom"
    assert client.view.texts() == ["Welcome to the classroom."]
    assert client.sent() == []  # the server asks first
    client.hear("NICK Choose a nickname")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice"]
    assert client.session.phase is SessionPhase.AWAITING_NICK


def test_welcome_registers_and_own_lobby_join_asks_who(client: Client) -> None:
    """WELCOME <nick> <text> registers; JOIN #lobby <me> opens #lobby and sends /who."""
    client.session.connect("127.0.0.1", 5501, "alice")
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one")
    client.sent()
    client.view.entries.clear()
    client.hear("WELCOME Alice Welcome, Alice!")
    assert client.view.registered_as == ["Alice"]
    assert client.session.nick == "Alice"  # the server's spelling wins
    assert client.session.phase is SessionPhase.REGISTERED
    client.hear("JOIN #lobby Alice")
    assert client.sent() == ["/who #lobby"]
    assert client.session.state.current == "#lobby"
    client.hear("USERS #lobby Alice bob")
    assert client.conversation("#lobby").member_names() == ["Alice", "bob"]
    # The answer to our own /who fills the list; it is not shown as a notice.
    assert client.view.texts(EntryKind.INFO) == ["Welcome, Alice!"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [("nick-taken", "bob is taken"), ("nick-invalid", "9lives: cannot start with")],
)
def test_refused_nickname_asks_again_with_the_servers_reason(
    client: Client, code: str, reason: str
) -> None:
    """ERR nick-taken/nick-invalid then NICK asks the user, with the server's text."""
    client.session.connect("127.0.0.1", 5501, "bob")
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one")
    assert client.sent() == ["/ids on", "/tags on", "NICK bob"]
    client.hear(f"ERR {code} {reason}", "NICK pick one")
    assert client.view.asked == [reason]
    assert client.sent() == []  # the client does not guess another name
    # The form answers on the same connection: no second dial.
    client.session.connect("127.0.0.1", 5501, "bobby")
    assert client.sent() == ["NICK bobby"]
    assert len(client.dialer.attempts) == 1
    client.hear("WELCOME bobby hi")
    assert client.view.registered_as == ["bobby"]


def test_nick_prompt_without_refusal_asks_instead_of_looping(client: Client) -> None:
    """A second NICK with no ERR before it goes to the user, not back to the server."""
    client.session.connect("127.0.0.1", 5501, "alice")
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one", "NICK pick one")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice"]
    assert len(client.view.asked) == 1


def test_lines_end_with_lf_or_crlf_and_may_arrive_in_pieces(client: Client) -> None:
    """docs/protocol.md: LF ends a line, a CR before it is dropped; TCP splits."""
    sign_in(client)
    assert client.protocol is not None
    client.protocol.dataReceived(b"MSG #lobby bob plain LF\nMSG #lobby bob spl")
    client.protocol.dataReceived("it ünïcode\r\n".encode())
    assert client.view.texts() == ["plain LF", "split ünïcode"]


def test_unreadable_line_is_noted_and_the_connection_goes_on(client: Client) -> None:
    """A line outside the protocol becomes a notice; later lines still work."""
    sign_in(client)
    client.hear("FROB something", "MSG #lobby bob still here")
    notes = client.view.texts()
    assert "does not understand: FROB something" in notes[0]
    assert notes[1] == "still here"
    assert client.transport is not None and not client.transport.disconnecting


def test_a_fault_while_handling_a_line_is_reported_not_fatal(client: Client) -> None:
    """If applying a line raises, the status line says so and the next line works."""
    sign_in(client)

    def broken(conversation: Conversation, entry: ScrollbackEntry) -> None:
        raise RuntimeError("boom")

    client.view.entry_added = broken  # type: ignore[method-assign]
    client.hear("MSG #lobby bob hi")
    assert "could not handle" in client.view.statuses[-1]
    assert client.transport is not None and not client.transport.disconnecting


# -- every chat line ------------------------------------------------------------------


def test_msg_and_action_land_in_their_room_own_ones_marked(client: Client) -> None:
    """MSG/ACTION <room> <nick> <text>: an entry in the room; own lines are own."""
    sign_in(client)
    client.hear(
        "MSG #lobby bob hi alice", "ACTION #lobby bob waves", "MSG #lobby alice hi bob"
    )
    (_, hi), (_, waves), (_, mine) = client.view.entries
    assert (hi.kind, hi.nick, hi.text, hi.own) == (
        EntryKind.MESSAGE,
        "bob",
        "hi alice",
        False,
    )
    assert (waves.kind, waves.text) == (EntryKind.ACTION, "waves")
    assert mine.own and mine.nick == "alice"
    assert hi.when == client.clock.seconds()


def test_messages_in_a_room_not_on_screen_count_as_unread(client: Client) -> None:
    """A MSG for another room adds to its unread count; selecting it clears it."""
    sign_in(client)
    join(client, "#games", "bob")
    client.hear("MSG #lobby bob one", "MSG #lobby bob two", "JOIN #lobby carol")
    assert client.conversation("#lobby").unread == 2  # notices are not unread
    client.session.select("#lobby")
    assert client.conversation("#lobby").unread == 0


def test_priv_opens_a_conversation_keyed_by_the_other_party(client: Client) -> None:
    """PRIV <from> <to> <text>: an incoming one waits unread; an own echo is shown."""
    sign_in(client)
    client.hear("PRIV Bob alice psst")
    bob = client.conversation("bob")
    assert (bob.kind, bob.name, bob.unread) == (ConversationKind.PRIVATE, "Bob", 1)
    assert client.session.state.current == "#lobby"
    client.hear("PRIV alice carol hey carol")
    assert client.session.state.current == "carol"
    assert client.conversation("carol").scrollback[-1].own


def test_private_tabs_from_others_stop_at_the_cap(client: Client) -> None:
    """PRIV from a new sender past MAX_PRIVATE tabs goes to one "other people" tab.

    A flood of private messages from new nicknames used to open a tab each
    (issue 11, finding 12). The tabs already open stay as they are.
    """
    sign_in(client)
    client.hear(*(f"PRIV sender{n} alice hi {n}" for n in range(MAX_PRIVATE + 10)))
    state = client.session.state
    privates = [c for c in state.conversations.values() if c.kind is PRIVATE]
    assert len(privates) == MAX_PRIVATE
    others = client.conversation(OTHERS_KEY)
    assert others.kind is ConversationKind.OTHERS
    assert f"{MAX_PRIVATE} private conversations are open" in others.scrollback[0].text
    assert [(e.nick, e.text) for e in others.scrollback if e.nick] == [
        (f"sender{n}", f"hi {n}") for n in range(MAX_PRIVATE, MAX_PRIVATE + 10)
    ]
    assert others.unread == 10
    # Those with a tab keep getting their messages there.
    client.hear("PRIV sender0 alice again")
    assert client.conversation("sender0").scrollback[-1].text == "again"
    # The user's own /msg opens a tab past the cap; the echo shows it.
    client.hear(f"PRIV alice sender{MAX_PRIVATE} hello you")
    assert state.current == f"sender{MAX_PRIVATE}"
    # A tab closed makes room for the next new sender.
    client.session.close("sender1")
    client.session.close("sender2")
    client.hear("PRIV newcomer alice hi")
    assert client.conversation("newcomer").kind is PRIVATE


def test_the_other_people_tab_takes_no_plain_lines(client: Client) -> None:
    """A plain line in the "other people" tab is refused; /part closes the tab."""
    sign_in(client)
    client.hear(*(f"PRIV sender{n} alice hi" for n in range(MAX_PRIVATE + 1)))
    client.session.select(OTHERS_KEY)
    client.session.submit("hello?")
    assert client.sent() == []
    assert "/msg <nick> <text>" in client.view.texts(EntryKind.ERROR)[0]
    client.session.submit("/part")
    assert client.sent() == []
    assert OTHERS_KEY not in client.session.state.conversations


def test_scrollback_is_bounded_per_conversation(client: Client) -> None:
    """A conversation keeps its latest SCROLLBACK entries, whatever arrives."""
    sign_in(client)
    client.hear(*(f"MSG #lobby bob line {n}" for n in range(SCROLLBACK + 500)))
    scrollback = client.conversation("#lobby").scrollback
    assert len(scrollback) == SCROLLBACK
    assert scrollback[-1].text == f"line {SCROLLBACK + 499}"


def test_typing_in_a_private_conversation_sends_msg(client: Client) -> None:
    """A plain line (or //line) in bob's tab is /msg bob; /me is refused there."""
    sign_in(client)
    client.hear("PRIV bob alice psst")
    client.session.select("bob")
    client.session.submit("hello there\n//slashes")
    assert client.sent() == ["/msg bob hello there", "/msg bob /slashes"]
    client.session.submit("/me waves")
    assert client.sent() == []
    assert "/me works in rooms" in client.view.texts(EntryKind.ERROR)[0]


def test_join_and_part_of_others_update_members_quietly(client: Client) -> None:
    """JOIN/PART <room> <nick> [reason] change the member list, with notices."""
    sign_in(client)
    client.hear(
        "JOIN #lobby carol", "PART #lobby bob gone fishing", "PART #lobby carol "
    )
    assert client.conversation("#lobby").member_names() == ["alice"]
    assert client.view.texts(EntryKind.NOTICE) == [
        "carol joined #lobby",
        "bob left #lobby (gone fishing)",
        "carol left #lobby",
    ]


def test_each_join_part_quit_and_rename_is_one_member_change(client: Client) -> None:
    """N JOIN lines tell the screen N one-row changes; nothing is drawn whole.

    The screen used to be told "redraw everything" per JOIN, which made a
    room filling up quadratic (issue 11, finding 12).
    """
    sign_in(client)
    client.view.calls.clear()
    client.hear(*(f"JOIN #lobby user{n}" for n in range(1000)))
    assert client.view.calls == {"member_added": 1000}
    assert len(client.conversation("#lobby").members) == 1002
    client.view.calls.clear()
    client.hear("PART #lobby user1 bye", "QUIT user2 gone", "RENAME user3 trey")
    assert client.view.calls == {"member_removed": 3, "member_added": 1}
    assert "trey" in client.conversation("#lobby").member_names()


def test_messages_elsewhere_change_one_row_of_the_list(client: Client) -> None:
    """A new conversation is opened as one row; its unread count changes that row."""
    sign_in(client)
    client.view.calls.clear()
    client.hear(*(f"PRIV sender{n} alice hi" for n in range(20)))
    assert client.view.calls == {"opened": 20, "changed": 20}
    client.view.calls.clear()
    client.session.select("sender3")
    assert client.view.calls == {"selected": 1}  # drawn whole: on purpose


def test_typed_join_opens_the_room_and_part_closes_it(client: Client) -> None:
    """/join #games opens and shows its tab once JOIN arrives; /part leaves it."""
    sign_in(client)
    join(client, "#games", "bob")
    assert client.session.state.current == "#games"
    assert client.conversation("#games").member_names() == ["alice", "bob"]
    client.session.submit("/part see you")
    assert client.sent() == ["/part #games see you"]
    client.hear("PART #games alice see you")
    assert "#games" not in client.session.state.conversations
    assert client.session.state.current == "#lobby"
    assert client.view.texts(EntryKind.NOTICE) == ["You left #games (see you)"]


def test_join_of_an_open_room_shows_it_at_once(client: Client) -> None:
    """/join of a room already open selects its tab; the server's INFO is shown."""
    sign_in(client)
    join(client, "#games")
    client.session.select("#lobby")
    client.session.submit("/join #GAMES")
    assert client.sent() == ["/join #GAMES"]
    assert client.session.state.current == "#games"


def test_part_in_a_private_tab_closes_it_without_a_word(client: Client) -> None:
    """/part in a private conversation closes the tab and sends nothing."""
    sign_in(client)
    client.hear("PRIV bob alice psst")
    client.session.select("bob")
    client.session.submit("/part")
    assert client.sent() == []
    assert "bob" not in client.session.state.conversations
    assert client.session.state.current == "#lobby"


def test_quit_of_others_leaves_every_room_with_a_notice(client: Client) -> None:
    """QUIT <nick> <text> removes them everywhere, noting it where they were."""
    sign_in(client)
    join(client, "#games", "bob")
    client.hear("PRIV bob alice bye")
    client.view.entries.clear()
    client.hear("QUIT bob connection lost")
    assert client.conversation("#lobby").member_names() == ["alice"]
    assert client.conversation("#games").member_names() == ["alice"]
    places = [name for name, entry in client.view.entries]
    assert sorted(places) == ["#games", "#lobby", "bob"]
    assert client.view.texts() == ["bob quit (connection lost)"] * 3


def test_rename_updates_members_and_private_conversations(client: Client) -> None:
    """RENAME <old> <new>: member lists, the private tab's name, and our own nick."""
    sign_in(client)
    client.hear("PRIV bob alice psst")
    client.session.select("bob")
    client.hear("RENAME bob robert")
    assert client.conversation("#lobby").member_names() == ["alice", "robert"]
    assert "bob" not in client.session.state.conversations
    assert client.conversation("robert").name == "robert"
    assert client.session.state.current == "robert"
    client.session.submit("still there?")
    assert client.sent() == ["/msg robert still there?"]
    client.hear("RENAME alice Alicia")
    assert client.session.nick == "Alicia"
    assert client.conversation("#lobby").member_names() == ["Alicia", "robert"]


def test_users_over_several_lines_merge_and_a_new_answer_replaces(
    client: Client,
) -> None:
    """USERS lines in a row for one room are one answer; the next answer replaces."""
    sign_in(client)
    client.session.submit("/who")
    assert client.sent() == ["/who #lobby"]
    client.hear("USERS #lobby alice bob", "USERS #lobby carol dave")
    assert client.conversation("#lobby").member_names() == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]
    assert client.view.texts(EntryKind.INFO) == [
        "In #lobby: alice, bob",
        "… carol, dave",
    ]
    client.hear("QUIT bob gone", "QUIT carol gone")
    client.session.submit("/who")
    client.hear("USERS #lobby alice dave")
    assert client.conversation("#lobby").member_names() == ["alice", "dave"]
    # Asked again once answered: a second answer, though no line came between.
    client.session.submit("/who")
    client.hear("USERS #lobby alice dave")
    assert client.view.texts(EntryKind.INFO)[-2:] == ["In #lobby: alice, dave"] * 2
    assert client.conversation("#lobby").member_names() == ["alice", "dave"]


def test_who_for_another_room_shows_without_touching_members(client: Client) -> None:
    """/who #other lists its members as a notice; our rooms' lists are unchanged."""
    sign_in(client)
    client.session.submit("/who #games")
    assert client.sent() == ["/who #games"]
    client.hear("USERS #games carol")
    assert client.view.texts(EntryKind.INFO) == ["In #games: carol"]
    assert client.conversation("#lobby").member_names() == ["alice", "bob"]


def test_rooms_over_several_lines_add_up(client: Client) -> None:
    """ROOMS <room>:<count> ... lines in a row are one answer."""
    sign_in(client)
    client.session.submit("/rooms")
    assert client.sent() == ["/rooms"]
    client.hear("ROOMS #a:1 #b:2", "ROOMS #lobby:3")
    assert client.session.state.room_sizes == {"#a": 1, "#b": 2, "#lobby": 3}
    assert client.view.texts(EntryKind.INFO) == [
        "Rooms: #a (1), #b (2)",
        "… #lobby (3)",
    ]
    client.hear("MSG #lobby bob hi", "ROOMS #lobby:2")
    assert client.session.state.room_sizes == {"#lobby": 2}


def test_rooms_items_that_make_no_sense_are_left_out(client: Client) -> None:
    """ROOMS: a count of 5,000 digits or a malformed item is skipped, not the line.

    int() of 5,000 digits raises ValueError, which lost the whole line
    (issue 11, finding 12).
    """
    sign_in(client)
    client.session.submit("/rooms")
    absurd = "9" * 5000
    client.hear(f"ROOMS #a:1 #b:{absurd} #c:x c:2 #d: :3 #e:-1 #f:٣  #g:007")
    assert client.session.state.room_sizes == {"#a": 1, "#g": 7}
    assert client.view.texts(EntryKind.INFO) == [
        "Rooms: #a (1), #g (7) (7 unreadable left out)"
    ]
    assert client.view.statuses[-1].startswith("Connected")  # no failure reported


def test_users_items_that_are_not_nicknames_are_left_out(client: Client) -> None:
    """USERS: a word that is no nickname is skipped; two spaces cost nothing."""
    sign_in(client)
    client.session.submit("/who")
    long_nick = "x" * 5000
    client.hear(f"USERS #lobby alice  bob b@d {long_nick} 9lives carol")
    assert client.conversation("#lobby").member_names() == ["alice", "bob", "carol"]
    assert client.view.texts() == [
        "In #lobby: alice, bob, carol (3 unreadable left out)"
    ]


def test_info_and_err_are_notices_in_the_conversation_on_screen(
    client: Client,
) -> None:
    """INFO <text> and ERR <code> <text> show in the conversation being looked at."""
    sign_in(client)
    client.session.submit("/frobnicate")
    assert client.sent() == ["/frobnicate"]  # commands go through, as in telnet
    client.hear("ERR unknown-command /frobnicate is not a command", "INFO a notice")
    assert [(name, e.kind, e.text) for name, e in client.view.entries] == [
        ("#lobby", EntryKind.ERROR, "/frobnicate is not a command"),
        ("#lobby", EntryKind.INFO, "a notice"),
    ]


def test_talking_in_a_room_not_current_on_the_server_moves_it(client: Client) -> None:
    """The server sends a plain line to its current room: /join that room first."""
    sign_in(client)
    join(client, "#games")  # the server's current room is now #games
    client.session.select("#lobby")
    client.session.submit("hello lobby")
    assert client.sent() == ["/join #lobby", "hello lobby"]
    client.hear("INFO You are already in #lobby; it is your current room.")
    assert client.view.texts(EntryKind.INFO) == []  # our own move, not shown
    client.session.submit("again")
    assert client.sent() == ["again"]
    client.session.select("#games")
    client.session.submit("/me grins")
    assert client.sent() == ["/join #games", "/me grins"]


def test_plain_lines_in_the_server_tab_are_refused_locally(client: Client) -> None:
    """The server tab takes /commands only: a plain line is not sent anywhere."""
    sign_in(client)
    client.session.select(SERVER_KEY)
    client.session.submit("hello?")
    assert client.sent() == []
    assert "Pick a room" in client.view.texts(EntryKind.ERROR)[0]
    client.session.submit("/help")
    assert client.sent() == ["/help"]


def test_empty_and_multi_line_input(client: Client) -> None:
    """Blank lines are not sent; pasted lines go one by one; // keeps its slash."""
    sign_in(client)
    client.session.submit("   ")
    client.session.submit("one\n\ntwo\r\n//three")
    assert client.sent() == ["one", "two", "//three"]


# -- the connection's life ------------------------------------------------------------


def test_first_connection_failure_is_shown_not_retried(client: Client) -> None:
    """An unreachable server before any chat goes back to the form with the reason."""
    client.session.connect("127.0.0.1", 5501, "alice")
    client.dialer.refuse()
    assert client.view.failed == [
        "Cannot reach 127.0.0.1:5501: nothing is listening there (connection refused)"
    ]
    assert client.session.phase is SessionPhase.OFFLINE
    assert client.clock.getDelayedCalls() == []


def test_server_full_before_registering_is_shown(client: Client) -> None:
    """ERR server-full then BYE then close: the form shows the BYE text."""
    client.session.connect("127.0.0.1", 5501, "alice")
    client.accept()
    client.hear("ERR server-full too many connections", "BYE Try again later.")
    client.drop(ConnectionDone)
    assert client.view.failed == ["The server closed the connection: Try again later."]


def test_nothing_is_read_after_bye(client: Client) -> None:
    """BYE <text> is the last line: anything after it is ignored."""
    sign_in(client)
    client.hear("BYE The server is shutting down.", "MSG #lobby bob ghost")
    assert client.view.texts() == []
    client.drop(ConnectionDone)
    assert client.view.statuses[-1] == (
        "The server closed the connection: The server is shutting down. "
        "Reconnecting in 1 s…"
    )


def test_drops_are_retried_with_a_growing_capped_delay(client: Client) -> None:
    """After a drop, attempts come 1, 2, 4, 8, 16, 30, 30 s apart; status says so."""
    sign_in(client)
    client.drop()
    assert client.view.statuses[-1] == (
        "Disconnected from 127.0.0.1:5501: the connection was lost. "
        "Reconnecting in 1 s…"
    )
    assert client.view.texts(EntryKind.ERROR) == [
        "Disconnected from 127.0.0.1:5501: the connection was lost"
    ]
    waits = []
    for _ in range(7):
        (call,) = client.clock.getDelayedCalls()
        waits.append(call.getTime() - client.clock.seconds())
        attempts = len(client.dialer.attempts)
        client.clock.advance(waits[-1] - 0.5)
        assert len(client.dialer.attempts) == attempts
        client.clock.advance(0.5)
        assert len(client.dialer.attempts) == attempts + 1
        client.dialer.refuse()
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert [retry_delay(n) for n in range(1, 8)] == waits
    assert client.view.failed == []  # the form stays away once we have chatted


def test_reconnect_registers_the_same_nick_and_rejoins_rooms(client: Client) -> None:
    """After a drop: same NICK, /join of each room, fresh members, scrollback kept."""
    sign_in(client)
    join(client, "#games", "bob")
    client.hear("MSG #games bob before the drop")
    client.drop()
    assert not client.conversation("#games").joined
    assert client.conversation("#games").members == {}
    client.clock.advance(1)
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice"]
    client.hear("WELCOME alice back", "JOIN #lobby alice")
    assert client.sent() == ["/join #games", "/who #lobby"]
    assert "Connected again as alice." in client.view.texts(EntryKind.INFO)
    client.hear("USERS #lobby alice", "JOIN #games alice")
    assert client.sent() == ["/who #games"]
    client.hear("USERS #games alice bob")
    games = client.conversation("#games")
    assert games.joined and games.member_names() == ["alice", "bob"]
    assert [e.text for e in games.scrollback if e.nick] == ["before the drop"]
    assert client.session.state.current == "#games"  # the view stayed put
    client.session.submit("back!")
    assert client.sent() == ["back!"]  # the server's current room is #games again
    # Once the connection has stayed up a while, a drop starts again from 1 s.
    client.clock.advance(STABLE_AFTER)
    client.drop()
    (call,) = client.clock.getDelayedCalls()
    assert call.getTime() - client.clock.seconds() == 1


def reconnect(client: Client) -> None:
    """Drop the connection and let the first retry dial (not yet accepted)."""
    client.drop()
    (retry,) = client.clock.getDelayedCalls()
    client.clock.advance(retry.getTime() - client.clock.seconds())


class Loopback:
    """The client's latest dial connected to a real chatd LineConnection.

    Both ends write to StringTransports; carry() hands the bytes across until
    neither has more, and passes on a close made by the server.
    """

    def __init__(self, client: Client, factory: ChatFactory) -> None:
        self.client = client
        self.server, self.server_out = open_connection(factory)  # HELLO, NICK
        client.accept()
        self.closed = False

    def carry(self) -> None:
        client = self.client
        assert client.protocol is not None and client.transport is not None
        while not self.closed:
            up, down = client.transport.value(), self.server_out.value()
            if not up and not down:
                return
            client.transport.clear()
            self.server_out.clear()
            self.server.dataReceived(up)
            client.protocol.dataReceived(down)
            if self.server_out.disconnecting:  # the server closed: so do we
                client.protocol.dataReceived(self.server_out.value())
                self.closed = True
                self.server.connectionLost(Failure(ConnectionDone()))
                client.drop(ConnectionDone)


def test_rejoins_after_a_reconnect_keep_to_the_servers_flood_limits(
    client: Client,
) -> None:
    """1,700 rooms are joined again through a real chatd with its flood defaults.

    Before, the client sent its 1,700 /joins at once; past --recvq (64 KiB)
    waiting, chatd said BYE Input queue full, and the client reconnected and
    did it again, forever (issue 11, finding 12). Now it sends SEND_BURST
    lines, then SEND_RATE a second, and the server never has to hold one back.
    """
    sign_in(client)
    names = [f"#{'r' * 28}{n:04d}" for n in range(1700)]  # the longest room names
    for name in names:
        client.session.state.room(name)
    reconnect(client)
    client.view.entries.clear()
    # Flood defaults; a room cap that lets one user hold all 1,700 (the default
    # is 50, which a client that was in more would meet as ERR too-many-rooms).
    server = Loopback(client, make_factory(client.clock, max_rooms_per_user=2000))
    server.carry()
    assert server.server.gate is not None  # flood control is on
    started = client.clock.seconds()
    rooms = [client.conversation(fold(name)) for name in names]
    while not all(room.members for room in rooms) and not server.closed:
        client.clock.advance(0.25)
        server.carry()
        assert not server.server.gate.held  # nothing ever waits at the server
    assert not server.closed
    assert client.view.texts(EntryKind.ERROR) == []  # neither ERR flood nor BYE
    assert all(room.joined and room.member_names() == ["alice"] for room in rooms)
    lines = 2 + 2 * len(names)  # NICK, /who #lobby, then /join and /who per room
    took = client.clock.seconds() - started
    assert took <= (lines - SEND_BURST) / SEND_RATE + 1


def test_the_users_lines_go_before_the_rejoins(client: Client) -> None:
    """While rooms are joined again, a typed line waits for one token at most.

    The rejoins made the server's current room another one: the line goes
    after a /join of the room it is typed in.
    """
    sign_in(client)
    for n in range(30):
        client.session.state.room(f"#room{n}")
    reconnect(client)
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice back")
    rejoins = client.sent()
    assert rejoins == ["/ids on", "/tags on", "NICK alice"] + [
        f"/join #room{n}" for n in range(5)
    ]
    client.hear("JOIN #lobby alice", "JOIN #room0 alice")
    client.session.select("#lobby")
    client.session.submit("hello again")
    assert client.sent() == []  # the burst is spent
    client.clock.advance(1 / SEND_RATE)
    assert client.sent() == ["/who #lobby"]  # asked for before the user typed
    client.clock.advance(4 / SEND_RATE)
    assert client.sent() == [
        "/who #room0",
        "/join #lobby",
        "hello again",
        "/join #room5",
    ]


def test_a_line_for_a_room_not_joined_again_asks_to_join_it(client: Client) -> None:
    """A rejoin refused by the server: a line typed there is sent after a /join."""
    sign_in(client)
    join(client, "#games")
    reconnect(client)
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice back")
    assert client.sent() == ["/ids on", "/tags on", "NICK alice", "/join #games"]
    client.hear("JOIN #lobby alice", "ERR room-invalid #games: not today")
    client.session.submit("anyone?")
    assert client.sent() == ["/who #lobby", "/join #games", "anyone?"]


def test_err_flood_halves_the_pace(client: Client) -> None:
    """ERR flood means the server's limits are below ours: send half as fast."""
    sign_in(client)
    for n in range(30):
        client.session.state.room(f"#room{n}")
    reconnect(client)
    client.accept()
    client.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice back")
    client.sent()
    client.hear("ERR flood you are sending too fast")
    client.clock.advance(1.5 / SEND_RATE)
    assert client.sent() == []
    client.clock.advance(0.5 / SEND_RATE)
    assert client.sent() == ["/join #room5"]
    client.clock.advance(2 / SEND_RATE)
    assert client.sent() == ["/join #room6"]


def test_connections_cut_off_young_keep_backing_off(client: Client) -> None:
    """The delay starts over only once a connection stayed up STABLE_AFTER seconds.

    A WELCOME used to reset it, so a server that took the client in and cut it
    off at once met a reconnect every second (issue 11, finding 12).
    """
    sign_in(client)
    waits = []
    for _ in range(4):
        client.drop(ConnectionDone)
        (retry,) = client.clock.getDelayedCalls()
        waits.append(retry.getTime() - client.clock.seconds())
        client.clock.advance(waits[-1])
        client.accept()
        client.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice back")
        client.clock.advance(STABLE_AFTER - 1)
    assert waits == [1, 2, 4, 8]
    client.clock.advance(1)
    client.drop()
    (retry,) = client.clock.getDelayedCalls()
    assert retry.getTime() - client.clock.seconds() == 1


def test_back_off_starts_over_only_once_every_rejoin_went_out(client: Client) -> None:
    """With rejoins still waiting at STABLE_AFTER, the delay keeps growing."""
    sign_in(client)
    for n in range(200):  # about 110 s of /joins at SEND_RATE
        client.session.state.room(f"#room{n}")
    delays = []
    for stayed_up in (STABLE_AFTER + 1, 2 * STABLE_AFTER + 1):
        reconnect(client)
        client.accept()
        client.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice back")
        for _ in range(int(stayed_up)):  # Clock.advance jumps: walk, for the pacer
            client.clock.advance(1)
        client.drop()
        (retry,) = client.clock.getDelayedCalls()
        delays.append(retry.getTime() - client.clock.seconds())
    assert delays == [2, 1]  # by the check at 120 s every /join had gone out


def test_typing_while_disconnected_is_refused_in_the_window(client: Client) -> None:
    """While reconnecting, a typed line is not queued: the user is told."""
    sign_in(client)
    client.drop()
    client.session.submit("anyone?")
    assert client.view.texts(EntryKind.ERROR) == [
        "Disconnected from 127.0.0.1:5501: the connection was lost",
        "Not connected: that was not sent.",
    ]


def test_typed_quit_sends_quit_and_does_not_reconnect(client: Client) -> None:
    """/quit reason goes to the server; after BYE and the close, no retry."""
    sign_in(client)
    client.session.submit("/quit good night")
    assert client.sent() == ["/quit good night"]
    assert client.session.phase is SessionPhase.QUITTING
    client.hear("BYE Goodbye, alice.")
    client.drop(ConnectionDone)
    assert client.view.finished_count == 1
    assert client.session.phase is SessionPhase.OFFLINE
    assert client.clock.getDelayedCalls() == []


def test_quit_gives_up_waiting_after_a_grace_period(client: Client) -> None:
    """If the server never closes after /quit, the client does, QUIT_GRACE later."""
    sign_in(client)
    left = client.session.quit()
    assert client.sent() == ["/quit"]
    fired: list[object] = []
    left.addCallback(fired.append)
    client.clock.advance(QUIT_GRACE)
    assert fired == [None]
    assert client.transport is not None and client.transport.disconnecting
    client.drop(ConnectionDone)  # the late close changes nothing
    assert client.clock.getDelayedCalls() == []
    assert client.view.finished_count == 1


def test_quit_while_waiting_to_reconnect_cancels_the_retry(client: Client) -> None:
    """Closing the window during the reconnect delay stops at once."""
    sign_in(client)
    client.drop()
    left = client.session.quit()
    assert left.called
    assert client.clock.getDelayedCalls() == []
    assert client.view.finished_count == 1


def test_choosing_another_server_abandons_the_first(client: Client) -> None:
    """connect() to a new address drops the old dial; its late failure is ignored."""
    client.session.connect("127.0.0.1", 5501, "alice")
    first = client.dialer.attempts[0][3]
    client.session.connect("127.0.0.1", 5502, "alice")
    assert first.called  # cancelled
    assert client.dialer.attempts[1][:2] == ("127.0.0.1", 5502)
    assert client.view.failed == []


# -- helpers --------------------------------------------------------------------------


def test_tcp_connector_dials_the_address_with_a_timeout() -> None:
    """tcp_connector uses a tcp: endpoint string on the given reactor."""
    reactor = MemoryReactor()
    view = RecordingView()
    session = ClientSession(view, Clock(), tcp_connector(reactor))
    session.connect("127.0.0.1", 5501, "alice")
    host, port, _, timeout, _ = reactor.tcpClients[0]
    assert (host, port, timeout) == ("127.0.0.1", 5501, CONNECT_TIMEOUT)
    session.connect("::1", 5502, "alice")  # colons and "=" are escaped
    session.connect("odd=host", 5503, "alice")
    assert [client[:2] for client in reactor.tcpClients[1:]] == [
        ("::1", 5502),
        ("odd=host", 5503),
    ]
    assert view.failed == []


def test_failures_are_described_in_words() -> None:
    """describe_failure says what happened without a traceback."""
    assert describe_failure(Failure(ConnectionDone())) == (
        "the server closed the connection"
    )
    assert "refused" in describe_failure(Failure(ConnectionRefusedError()))
    assert describe_failure(Failure(ValueError("odd"))) == "odd"


def test_input_history_walks_back_and_forth_keeping_the_draft() -> None:
    """Up goes to older lines, Down to newer ones and finally the unsent draft."""
    history = InputHistory()
    assert history.previous("draft") is None
    for line in ("one", "two", "two", "three"):
        history.add(line)
    assert list(history.items) == ["one", "two", "three"]
    assert history.previous("half typed") == "three"
    assert history.previous("three") == "two"
    assert history.previous("two") == "one"
    assert history.previous("one") is None
    assert history.next() == "two"
    assert history.next() == "three"
    assert history.next() == "half typed"
    assert history.next() is None


# -- rooms people run (docs/protocol.md) -----------------------------------------------


def test_topic_marks_and_modes_are_shown(client: Client) -> None:
    """TOPIC fills the room's topic; OPS and VOICES mark members after USERS;
    OP and MODE are said in words in the room."""
    sign_in(client)
    join(client, "#dev", "bob", "carol")
    dev = client.conversation("#dev")
    client.hear("TOPIC #dev bob ship on friday", "OPS #dev bob", "VOICES #dev carol")
    assert dev.topic == "ship on friday"
    assert (dev.mark("bob"), dev.mark("carol"), dev.mark("alice")) == ("@", "+", "")
    client.hear("OP #dev alice bob", "MODE #dev bob +m ", "MODE #dev bob +k s3")
    assert dev.mark("alice") == "@"
    assert client.view.texts() == [
        "bob set the topic: ship on friday",
        "bob made you an operator",
        "bob made the room moderated",
        "bob set a key: s3",
    ]
    client.hear("USERS #dev alice bob carol")  # a new answer: marks start over
    assert dev.ops == set() and dev.voiced == set()


def test_a_kick_is_explained_and_its_part_not_repeated(client: Client) -> None:
    """KICK of someone else: one notice saying who and why, not a second for the
    PART; of me: the room's tab stays, unjoined, with the reason, and is not
    joined again by itself after a reconnect."""
    sign_in(client)
    join(client, "#dev", "bob", "carol")
    client.hear(
        "KICK #dev carol bob spamming",
        "PART #dev carol kicked by bob: spamming",
    )
    dev = client.conversation("#dev")
    assert client.view.texts() == ["bob put carol out: spamming"]
    assert "carol" not in dev.members
    client.hear("KICK #dev alice bob and you too", "PART #dev alice kicked by bob: x")
    assert "#dev" in client.session.state.conversations
    assert not dev.joined and dev.kicked
    assert client.view.texts(EntryKind.ERROR)[0].startswith("bob put you out of #dev")
    client.drop()
    client.clock.advance(1)
    client.accept()
    client.hear("HELLO chatd hi", "NICK Choose")
    client.sent()
    client.hear("WELCOME alice hi", "JOIN #lobby alice")
    client.clock.advance(10)
    assert "/join #dev" not in client.sent()


def test_ban_invite_and_account_lines_are_shown(client: Client) -> None:
    """BAN in the room; INVITE and ACCOUNT (mine) where the user looks."""
    sign_in(client)
    join(client, "#dev", "bob")
    client.hear("BAN #dev mallory bob", "UNBAN #dev mallory bob")
    assert client.view.texts() == [
        "bob banned mallory",
        "bob lifted the ban on mallory",
    ]
    client.hear("INVITE #secret carol", "ACCOUNT alice alice", "ACCOUNT bob bob")
    assert client.view.texts() == [
        "carol invites you to #secret: /join #secret",
        "You are identified as alice.",
    ]
