"""The real window: Xvfb, a real `twistd -n chatd`, and chatd-tk typed into.

The X server and the client window are started by the tests themselves (see
tk_driver.py); keystrokes go through the X server with xdotool when it is
installed, and through the window's own Send button otherwise. Without Xvfb
the window tests are skipped with the reason; the helpers are tested anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

tk = pytest.importorskip(
    "tkinter", reason="tkinter is missing (apt-get install python3-tk)"
)

from daemon import WAIT, LineClient, running_daemon  # noqa: E402
from tk_driver import Driver, NoXServer, xvfb  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402
from twisted.internet.testing import MemoryReactorClock, StringTransport  # noqa: E402

from chatd.client.client import ClientProtocol  # noqa: E402
from chatd.client.conversations import (  # noqa: E402
    MAX_PRIVATE,
    Conversation,
    ConversationKind,
)
from chatd.tk_client import (  # noqa: E402
    NICK_COLOURS,
    ChatWindow,
    IChatReactor,
    conversation_label,
    nick_colour,
    parse_args,
    time_stamp,
)

LOOPBACK = "tcp:0:interface=127.0.0.1"


# -- the parts that need no display --------------------------------------------------


def test_nick_colours_are_stable_and_ignore_case() -> None:
    """A nickname always gets the same colour, whatever its case."""
    assert nick_colour("alice") == nick_colour("ALICE") == nick_colour("Alice")
    assert nick_colour("alice") in NICK_COLOURS
    assert len({nick_colour(n) for n in ("alice", "bob", "carol")}) == 3


def test_side_list_labels_mark_unread_and_private() -> None:
    """Rooms by name, private talks marked, unread messages counted."""
    room = Conversation("#games", "#games", ConversationKind.ROOM)
    assert conversation_label(room) == "#games"
    room.unread = 3
    assert conversation_label(room) == "#games  ● 3 new"
    bob = Conversation("bob", "Bob", ConversationKind.PRIVATE)
    assert conversation_label(bob) == "Bob (private)"


def test_time_stamps_are_local_hours_and_minutes() -> None:
    """Entries show HH:MM in local time."""
    assert re.fullmatch(r"\d\d:\d\d", time_stamp(0.0))


def test_command_line() -> None:
    """--host, --port and --nick; all optional."""
    args = parse_args(["--host", "chat.example", "--port", "6000", "--nick", "al"])
    assert (args.host, args.port, args.nick) == ("chat.example", 6000, "al")
    assert parse_args([]).nick is None


# -- a real window -------------------------------------------------------------------


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """An Xvfb display for this module's windows, or a skip saying why not."""
    try:
        with xvfb() as name:
            yield name
    except NoXServer as error:
        pytest.skip(f"no X server for the window tests: {error}")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real twistd -n chatd on a loopback port, shared by this module's tests."""
    with running_daemon(["--listen", LOOPBACK], tmp_path_factory.mktemp("d")) as d:
        (number,) = d.ports.values()
        yield number


class CountedWindow:
    """The real ChatWindow in this process, fed server lines by hand.

    Its three lists' insert and delete calls are counted, which shows how much
    drawing each server line costs without timing anything.
    """

    def __init__(self, display: str) -> None:
        self.root = tk.Tk(screenName=display, className="chatd")
        self.window = ChatWindow(self.root, cast(IChatReactor, MemoryReactorClock()))
        self.protocols: list[ClientProtocol] = []
        self.window.session.connector = self._dial
        self.calls: Counter[str] = Counter()
        for name, widget in (
            ("members", self.window.member_list),
            ("conversations", self.window.conversation_list),
            ("messages", self.window.messages),
        ):
            for operation in ("insert", "delete"):
                original = getattr(widget, operation)
                counted = self._counting(f"{name}.{operation}", original)
                setattr(widget, operation, counted)

    def _dial(self, host: str, port: int, protocol: ClientProtocol) -> Deferred[object]:
        self.protocols.append(protocol)
        protocol.makeConnection(StringTransport())
        return Deferred()

    def _counting(
        self, name: str, operation: Callable[..., object]
    ) -> Callable[..., object]:
        def counted(*args: object, **kwargs: object) -> object:
            self.calls[name] += 1
            return operation(*args, **kwargs)

        return counted

    def hear(self, *lines: str) -> None:
        """Feed server lines, then let Tk do what it left for idle time."""
        data = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
        self.protocols[-1].dataReceived(data)
        self.root.update_idletasks()

    def sign_in(self, nick: str = "alice") -> None:
        """Connect as nick into #lobby; forget the drawing that took."""
        self.window.session.connect("127.0.0.1", 5501, nick)
        self.hear("HELLO chatd hi", "NICK pick one", f"WELCOME {nick} hi")
        self.hear(f"JOIN #lobby {nick}", f"USERS #lobby {nick}")
        self.calls.clear()


@pytest.fixture
def counted(display: str) -> Iterator[CountedWindow]:
    """A real window in this process, on the module's X display."""
    window = CountedWindow(display)
    yield window
    window.root.destroy()


def test_joins_add_one_member_row_each(counted: CountedWindow) -> None:
    """2,000 JOINs are 2,000 member rows inserted, each once; the list is sorted.

    Before, each JOIN redrew the whole member list: 2,000 JOINs inserted
    about two million rows (issue 11, finding 12).
    """
    counted.sign_in()
    nicks = [f"user{n}" for n in range(2000)]
    counted.hear(*(f"JOIN #lobby {nick}" for nick in nicks))
    assert counted.calls["members.insert"] == 2000
    assert counted.calls["members.delete"] == 0
    assert counted.calls["conversations.insert"] == 0
    assert counted.calls["messages.insert"] == 2 * 2000  # time stamp, notice
    assert counted.calls["messages.delete"] <= 1  # the oldest lines, once
    window = counted.window
    shown = list(window.member_list.get(0, "end"))
    assert shown == sorted(["alice (you)", *nicks], key=lambda row: row.split()[0])
    assert window.members_title.cget("text") == "Members (2001)"
    assert window.title.cget("text") == "#lobby, 2001 people"

    counted.calls.clear()
    counted.hear("PART #lobby user5 bye", "QUIT user6 gone", "RENAME user7 zed")
    assert counted.calls["members.delete"] == 3
    assert counted.calls["members.insert"] == 1
    assert window.member_list.get("end") == "zed"
    assert window.members_title.cget("text") == "Members (1999)"


def test_a_topic_already_set_is_the_rooms_topic_not_news(
    counted: CountedWindow,
) -> None:
    """The TOPIC right after our JOIN (before the /who answer) is the topic as it
    stands: "Topic: ... (set by ivy2)", not "ivy2 set the topic"; a TOPIC
    later is news (issue 24)."""
    counted.sign_in()
    counted.hear("JOIN #dev alice", "TOPIC #dev ivy2 release on friday")
    counted.hear("USERS #dev alice ivy2", "OPS #dev ivy2")
    dev = counted.window.session.state.conversations["#dev"]
    said = [entry.text for entry in dev.scrollback]
    assert "Topic: release on friday (set by ivy2)" in said
    assert not any("set the topic" in text for text in said)
    counted.window.session.select("#dev")
    assert counted.window.topic_bar.cget("text") == "release on friday"
    counted.hear("TOPIC #dev ivy2 release on monday")
    assert dev.scrollback[-1].text == "ivy2 set the topic: release on monday"


def test_header_and_status_agree_after_a_kick(counted: CountedWindow) -> None:
    """Kicked while connected, the heading says so ("put out"), not "not
    connected" beside a status bar that says Connected (issue 24)."""
    counted.sign_in()
    counted.hear("JOIN #dev alice", "USERS #dev alice ivy2", "OPS #dev ivy2")
    counted.window.session.select("#dev")
    counted.hear("KICK #dev alice ivy2 too loud")
    counted.hear("PART #dev alice kicked by ivy2: too loud")
    heading = counted.window.title.cget("text")
    assert heading == "#dev (put out: /join #dev to go back)"
    assert "not connected" not in heading


def test_the_input_has_the_focus_after_a_click_in_the_list(
    counted: CountedWindow,
) -> None:
    """A click on a conversation in the side list leaves the keyboard focus in
    the input, so what is typed next goes there (issue 24)."""
    counted.sign_in()
    counted.hear("JOIN #dev alice", "USERS #dev alice")
    window, root = counted.window, counted.root
    root.update()
    root.focus_force()
    listing = window.conversation_list
    row = list(listing.get(0, "end")).index("#lobby")
    box = listing.bbox(row)
    assert box is not None
    x, y, _, height = box
    listing.event_generate("<Button-1>", x=x + 2, y=y + height // 2)
    listing.event_generate("<ButtonRelease-1>", x=x + 2, y=y + height // 2)
    root.update()
    assert window.session.state.current == "#lobby"
    assert root.focus_get() is window.input


def test_private_messages_change_one_conversation_row_each(
    counted: CountedWindow,
) -> None:
    """Each PRIV from a new sender costs a few row changes, not a redrawn list."""
    counted.sign_in()
    counted.hear(*(f"PRIV sender{n} alice hi" for n in range(500)))
    rows = counted.calls["conversations.insert"] + counted.calls["conversations.delete"]
    assert rows <= 3 * 500
    assert counted.calls["members.insert"] == 0
    labels = counted.window.conversation_list.get(0, "end")
    assert labels[:2] == ("chatd (server)", "#lobby")
    assert len(labels) == 2 + MAX_PRIVATE + 1  # the rest share one tab
    assert labels[-1] == f"other people (private)  ● {500 - MAX_PRIVATE} new"


def type_into(window: Driver, display: str, title: str, text: str) -> None:
    """Type text and press Enter in the window: real X key events if possible.

    With xdotool, the window is found by its title and given the X focus, as a
    click on it would; the keys then reach whichever widget the window itself
    focused, so this also checks that the input has the focus once connected.
    """
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        window.command(f"type {text}")
        return
    env = dict(os.environ, DISPLAY=display)

    def run(*args: str) -> str:
        done = subprocess.run(
            [xdotool, *args], env=env, timeout=WAIT, check=True, capture_output=True
        )
        return done.stdout.decode()

    (window_id,) = run("search", "--name", title).split()
    run("windowfocus", "--sync", window_id)
    run("type", "--delay", "2", text)
    run("key", "Return")


def scrolled(window: Driver) -> tuple[float, float]:
    """Return the message view's visible fractions, as Text.yview() gives them."""
    window.command("dump")
    top, bottom = cast(list[float], window.expect("dump")["yview"])
    return top, bottom


def test_window_chats_with_a_socket_client(
    display: str, port: int, tmp_path: Path
) -> None:
    """Typed + Enter reaches a socket in #lobby; its reply shows; close says /quit."""
    bob = LineClient.tcp(port)
    bob.register("bob")
    log = tmp_path / "alice.log"
    with Driver(display, port, "alice", log, geometry="720x420") as window:
        registered = window.expect("registered")
        assert registered["nick"] == "alice"
        assert bob.expect("JOIN #lobby ") == "JOIN #lobby alice"
        type_into(window, display, str(registered["title"]), "hello from the window")
        assert bob.expect("MSG ") == "MSG #lobby alice hello from the window"

        bob.send("hello from a socket")
        window.expect("entry", lambda event: event["text"] == "hello from a socket")
        window.command("dump")
        shown = window.expect("dump")
        view = str(shown["view"])
        assert re.search(r"^\d\d:\d\d  alice: hello from the window$", view, re.M)
        assert re.search(r"^\d\d:\d\d  bob: hello from a socket$", view, re.M)
        assert shown["members"] == ["alice (you)", "bob"]
        assert shown["conversations"] == ["chatd (server)", "#lobby"]

        # The view follows new lines, unless the user has scrolled up.
        words = " ".join(["word"] * 250)  # wraps over more lines than fit
        bob.send(f"first {words}")
        window.expect("entry", lambda event: event["text"] == f"first {words}")
        assert scrolled(window) == (pytest.approx(0.5, abs=0.5), 1.0)  # at the end
        window.command("scroll_top")
        bob.send(f"second {words}")
        window.expect("entry", lambda event: event["text"] == f"second {words}")
        top, bottom = scrolled(window)
        assert top == 0.0 and bottom < 1.0  # left where the user put it

        window.command("close")
        assert bob.expect("QUIT ") == "QUIT alice quit"
        window.expect("exited")
        assert window.wait_exit() == 0
        assert "Traceback" not in window.errors()
    bob.close()


def test_taken_nickname_is_asked_again_with_the_reason(
    display: str, port: int, tmp_path: Path
) -> None:
    """NICK refused: the form shows the server's reason; another name gets in."""
    carol = LineClient.tcp(port)
    carol.register("carol")
    with Driver(display, port, "Carol", tmp_path / "carol.log") as window:
        asked = window.expect("ask_nick")
        assert "taken" in str(asked["reason"])
        assert str(asked["reason"]) in str(asked["form"])
        window.command("nick carol2")
        assert window.expect("registered")["nick"] == "carol2"
        assert carol.expect("JOIN #lobby ") == "JOIN #lobby carol2"
        window.command("close")
        window.expect("exited")
        assert "Traceback" not in window.errors()
    carol.close()


def test_unreachable_server_is_shown_in_the_form(display: str, tmp_path: Path) -> None:
    """Nothing listening: the form says so, and the window stays open."""
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with Driver(display, closed, "alice", tmp_path / "alice.log") as window:
        failed = window.expect("connect_failed")
        assert "connection refused" in str(failed["reason"])
        window.command("close")
        window.expect("exited")
        assert "Traceback" not in window.errors()


def test_window_takes_thousands_of_joins(display: str, tmp_path: Path) -> None:
    """3,000 JOINs in a row reach the real window well within the wait bound.

    The server here is a plain socket playing chatd's part, as no real room
    of 3,000 is needed to send the lines. Before, the window redrew its
    lists per JOIN and took about a minute over these (issue 11, finding 12).
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)
        port = listener.getsockname()[1]
        with Driver(display, port, "alice", tmp_path / "alice.log") as window:
            connection, _ = listener.accept()
            server = LineClient(connection)
            server.send("HELLO fake hi")
            server.send("NICK pick one")
            assert server.expect("NICK ") == "NICK alice"
            lines = ["WELCOME alice hi", "JOIN #lobby alice"]
            lines += [f"JOIN #lobby user{n}" for n in range(3000)]
            lines.append("MSG #lobby user2999 the last line")
            connection.sendall("".join(f"{line}\r\n" for line in lines).encode())
            window.expect("entry", lambda event: event["text"] == "the last line")
            window.command("dump")
            shown = window.expect("dump")
            assert len(cast(list[str], shown["members"])) == 3001
            assert str(shown["view"]).endswith("user2999: the last line\n")
            window.command("close")
            assert server.expect("/quit") == "/quit"
            connection.close()
            window.expect("exited")
            assert "Traceback" not in window.errors()


def test_history_is_drawn_under_a_marker_and_older_pages_on_top(
    counted: CountedWindow,
) -> None:
    """The backfill shows above "You joined", under a quiet marker line; turning
    the wheel up at the top asks for the page before, which is drawn above the
    lines shown without drawing the conversation again."""
    window = counted.window
    window.session.connect("127.0.0.1", 5501, "alice")
    stamp = "2026-11-30T23:50:01.000Z"
    counted.hear("HELLO chatd hi", "NICK pick one", "WELCOME alice hi")
    counted.hear(
        "JOIN #lobby alice",
        *(f"HISTORY #lobby {n} {stamp} MSG bob m{n}" for n in (10, 11, 12)),
        "ENDHISTORY #lobby 3",
        "USERS #lobby alice bob",
    )
    view = window.messages.get("1.0", "end-1c").splitlines()
    assert view[0] == "── Earlier messages ──"
    assert [line.split("  ", 1)[1] for line in view[1:]] == [
        "bob: m10",
        "bob: m11",
        "bob: m12",
        "— You joined #lobby",
    ]
    transport = counted.protocols[-1].transport
    assert isinstance(transport, StringTransport)
    transport.clear()
    counted.calls.clear()
    window.messages.event_generate("<Button-4>")
    counted.root.update()
    assert transport.value() == b"/history #lobby 50 before 10\r\n"
    counted.hear(
        *(f"HISTORY #lobby {n} {stamp} MSG carol m{n}" for n in (8, 9)),
        "ENDHISTORY #lobby 2",
    )
    view = window.messages.get("1.0", "end-1c").splitlines()
    assert view[0] == "── Earlier messages ──"
    assert [line.split("  ", 1)[1] for line in view[1:4]] == [
        "carol: m8",
        "carol: m9",
        "bob: m10",
    ]
    assert counted.calls["messages.delete"] == 0  # drawn in place, not again
    window.messages.event_generate("<Button-4>")
    counted.root.update()
    assert window.status_text.get() == "This is the start of #lobby's history."


# -- deleting messages (docs/protocol.md, Deleting messages): a right-click
# offers "Delete message" on one's own messages (and any in a room one runs),
# and a DELETED line greys the message in place.

STAMP = "2026-11-30T23:50:01.000Z"


def _line_point(counted: CountedWindow, text: str) -> tuple[int, int]:
    """A point on the line of the messages view that ends with text."""
    view = counted.window.messages
    lines = view.get("1.0", "end-1c").splitlines()
    (number,) = [at + 1 for at, line in enumerate(lines) if line.endswith(text)]
    view.see(f"{number}.0")
    box = view.bbox(f"{number}.0")
    assert box is not None
    return box[0] + 1, box[1] + 1


def test_one_deletes_ones_own_message_from_the_window(counted: CountedWindow) -> None:
    """alice's own message may be deleted from the window (/delete #lobby 7 is
    sent), bob's not (alice runs no room); DELETED greys hers in place."""
    counted.sign_in("alice")
    counted.hear(
        f"ID #lobby 7 {STAMP}",
        "MSG #lobby alice my own words",
        f"ID #lobby 8 {STAMP}",
        "MSG #lobby bob his words",
    )
    window = counted.window
    mine = window.entry_at(*_line_point(counted, "alice: my own words"))
    his = window.entry_at(*_line_point(counted, "bob: his words"))
    assert mine is not None and mine.id == 7 and mine.own
    assert his is not None and his.id == 8
    assert window.deletion_target(mine) == "#lobby"
    assert window.deletion_target(his) is None
    transport = counted.protocols[-1].transport
    assert isinstance(transport, StringTransport)
    transport.clear()
    window.delete_entry(his)
    window.delete_entry(mine)
    assert transport.value() == b"/delete #lobby 7\r\n"
    counted.hear("INFO Deleted message 7 of #lobby.", "DELETED #lobby 7 alice ")
    lines = window.messages.get("1.0", "end-1c").splitlines()
    assert any(line.endswith("alice: message deleted by you") for line in lines)
    assert any(line.endswith("bob: his words") for line in lines)
    gone = window.entry_at(*_line_point(counted, "alice: message deleted by you"))
    assert gone is not None and gone.deleted
    assert window.deletion_target(gone) is None
    start = _line_point(counted, "message deleted by you")
    index = window.messages.index(f"@{start[0]},{start[1]} lineend -2c")
    assert "notice" in window.messages.tag_names(index)


def test_an_operator_may_delete_anyones_message(counted: CountedWindow) -> None:
    """In a room alice runs (OPS lists her), bob's message is hers to delete."""
    counted.sign_in("alice")
    counted.hear("OPS #lobby alice", f"ID #lobby 9 {STAMP}", "MSG #lobby bob spam")
    window = counted.window
    his = window.entry_at(*_line_point(counted, "bob: spam"))
    assert window.deletion_target(his) == "#lobby"


# -- several devices (docs/protocol.md, Devices (version 3)) ------------------------


def test_a_password_logs_in_at_the_prompt_and_a_refusal_shows_in_the_form(
    counted: CountedWindow,
) -> None:
    """With a password the window answers the prompt `/identify <nick> <password>`
    (after /ids on), never NICK; a wrong one shows the server's words in the
    form; the right one attaches (WELCOME, then the user's JOINs)."""
    window = counted.window
    window.start("127.0.0.1", 5501, None)
    window.nick_text.set("alice")
    window.password_text.set("wrong-one")
    window._form_submitted()
    counted.hear("HELLO chatd hi", "NICK pick one")
    transport = counted.protocols[-1].transport
    assert isinstance(transport, StringTransport)
    sent = transport.value().decode().split("\r\n")
    assert sent[:3] == ["/ids on", "/tags on", "/identify alice wrong-one"]
    transport.clear()
    counted.hear(
        "ERR auth-failed wrong password, or no account of that name", "NICK pick one"
    )
    shown = str(window.form_message.cget("text"))
    assert shown.startswith("Logging in as alice failed: wrong password")
    assert window.form.winfo_manager() == "grid"  # the form is back
    window.password_text.set("s3cret-pw")
    window._form_submitted()
    assert transport.value() == b"/identify alice s3cret-pw\r\n"
    counted.hear(
        "WELCOME alice Welcome back to chatd, alice: this connection is one of 2",
        "JOIN #lobby alice",
        "JOIN #dev alice",
    )
    assert window.chat.winfo_manager() == "grid"
    assert set(window.session.state.conversations) >= {"#lobby", "#dev"}
    assert b"NICK " not in transport.value()


def test_away_greys_the_member_and_is_said_where_one_expects_it(
    counted: CountedWindow,
) -> None:
    """AWAY bob: bob's row reads "bob (away: at lunch)" in grey, no line in the
    room; the AWAY after our message to him is said in our conversation with
    him; our own AWAY is said on screen; ID lines show nothing."""
    from chatd.tk_client import AWAY_COLOUR

    counted.sign_in()
    counted.hear("JOIN #lobby bob")
    lobby = counted.window.session.state.conversations["#lobby"]
    before = len(lobby.scrollback)
    counted.hear("AWAY bob at lunch")
    rows = list(counted.window.member_list.get(0, "end"))
    assert "bob (away: at lunch)" in rows
    row = rows.index("bob (away: at lunch)")
    assert counted.window.member_list.itemcget(row, "foreground") == AWAY_COLOUR
    assert len(lobby.scrollback) == before
    counted.hear("PRIV alice bob are you there?", "AWAY bob at lunch")
    bob = counted.window.session.state.conversations["bob"]
    assert bob.scrollback[-1].text == "bob is away: at lunch"
    counted.hear("AWAY bob ")
    counted.window.session.select("#lobby")
    assert "bob" in list(counted.window.member_list.get(0, "end"))
    assert bob.scrollback[-1].text == "bob is back."
    counted.hear("AWAY alice on the train")
    shown = counted.window.session.state.shown()
    assert shown.scrollback[-1].text == "You are marked away: on the train"
    counted.hear("ID #lobby 7 2026-12-07T23:00:00.000Z", "MSG #lobby bob hi")
    assert lobby.scrollback[-1].text == "hi" and lobby.scrollback[-1].id == 7
    conversations = counted.window.session.state.conversations.values()
    kinds = {entry.kind.name for c in conversations for entry in c.scrollback}
    assert "ERROR" not in kinds


def test_command_line_takes_a_password_file(tmp_path: Path) -> None:
    """--password-file PATH: its first line is the password; none on the line."""
    from chatd.tk_client import read_password

    secret = tmp_path / "password"
    secret.write_text("s3cret-pw\nignored\n", encoding="utf-8")
    args = parse_args(["--nick", "alice", "--password-file", str(secret)])
    assert read_password(args.password_file) == "s3cret-pw"
    assert read_password(None) == ""
    with pytest.raises(SystemExit):
        parse_args(["--password", "s3cret-pw"])


def test_window_logs_in_with_a_password_file_beside_a_line_connection(
    display: str, port: int, tmp_path: Path
) -> None:
    """alice is on a line connection, identified; chatd-tk --password-file logs
    in as alice too: one user (bob sees no JOIN), what bob says reaches the
    window, bob's /away shows beside his name."""
    alice = LineClient.tcp(port)
    alice.register("alice")
    alice.send("/register s3cret-pw s3cret-pw")
    alice.expect("INFO ")
    bob = LineClient.tcp(port)
    bob.register("bob")
    secret = tmp_path / "password"
    secret.write_text("s3cret-pw\n", encoding="utf-8")
    log = tmp_path / "alice-tk.log"
    with Driver(display, port, "alice", log, password_file=secret) as window:
        assert window.expect("registered")["nick"] == "alice"
        bob.send("/who #lobby")
        assert sorted(bob.expect("USERS #lobby").split()[2:]) == ["alice", "bob"]
        bob.send("/away at lunch")
        bob.send("hello both of you")
        window.expect("entry", lambda event: event["text"] == "hello both of you")
        assert alice.expect("MSG #lobby bob") == "MSG #lobby bob hello both of you"
        # The window asks /who after the JOIN of its attach: its answer may come
        # after bob's line, so the list is read again until it has come (bounded).
        wanted = ["alice (you)", "bob (away: at lunch)"]
        for _ in range(50):
            window.command("dump")
            members = window.expect("dump")["members"]
            if members == wanted:
                break
        assert members == wanted
        window.command("close")
        window.expect("exited")
        assert "Traceback" not in window.errors()
    # The window's /quit closed its connection only: alice is still here.
    bob.send("/who #lobby")
    assert sorted(bob.expect("USERS #lobby").split()[2:]) == ["alice", "bob"]
    alice.close()
    bob.close()


def test_who_is_away_already_shows_from_the_join(counted: CountedWindow) -> None:
    """The AWAY right after our JOIN (before the /who answer) greys that member's
    row as soon as the list is drawn (docs/protocol.md, Away on join); the AWAY
    lines after USERS change nothing more."""
    from chatd.tk_client import AWAY_COLOUR

    counted.sign_in()
    counted.hear("JOIN #dev alice", "AWAY carol at the dentist")
    counted.hear("USERS #dev alice bob carol", "AWAY carol at the dentist")
    counted.window.session.select("#dev")
    counted.root.update_idletasks()
    rows = list(counted.window.member_list.get(0, "end"))
    assert "carol (away: at the dentist)" in rows and "bob" in rows
    row = rows.index("carol (away: at the dentist)")
    assert counted.window.member_list.itemcget(row, "foreground") == AWAY_COLOUR
    dev = counted.window.session.state.conversations["#dev"]
    assert not [entry for entry in dev.scrollback if "away" in entry.text]
