"""WHOWAS: who gave up a nickname lately (chatd.model.whowas, the IRC door)."""

from __future__ import annotations

from helpers import RecordingClient
from irc_helpers import make_server, registered

from chatd.model.chat import Chat
from chatd.model.whowas import PastNicks

NOW = 1_700_000_000.25  # make_server's clock


def test_past_nicks_newest_first_by_count_and_case() -> None:
    """lookup ignores case, answers newest first, count of them or all."""
    chat = Chat()
    past = PastNicks()
    for username in ("one", "two", "three"):
        user = chat.register("Bob", client=RecordingClient())
        user.username = username
        past.left("Bob", user.username, user.host, user.realname, 10.0)
        chat.quit(user, "bye")
    assert [d.username for d in past.lookup("BOB")] == ["three", "two", "one"]
    assert [d.username for d in past.lookup("bob", 2)] == ["three", "two"]
    assert [d.username for d in past.lookup("bob", -1)] == ["three", "two", "one"]
    assert past.lookup("carol") == []


def test_past_nicks_are_bounded() -> None:
    """A flood of departures keeps only the latest size of them."""
    chat = Chat()
    past = PastNicks(size=3)
    user = chat.register("x", client=RecordingClient())
    for number in range(10):
        past.left(f"n{number}", user.username, "", "", float(number))
    assert len(past) == 3
    assert past.lookup("n6") == []
    assert [d.nick for d in past.lookup("n9")] == ["n9"]


def test_chat_remembers_quits_and_renames() -> None:
    """Quitting and renaming give the old nickname up; the model records both."""
    chat = Chat(now=lambda: 42.0)
    alice = chat.register("alice", client=RecordingClient(), realname="Alice A")
    chat.rename(alice, "alicia")
    chat.quit(alice, "bye")
    assert [(d.nick, d.realname, d.time) for d in chat.past_nicks.lookup("alice")] == [
        ("alice", "Alice A", 42.0)
    ]
    assert [d.nick for d in chat.past_nicks.lookup("ALICIA")] == ["alicia"]


def test_irc_whowas_numerics() -> None:
    """314 and 312 per past holder, newest first, then 369; 406 when none."""
    server = make_server()
    alice = registered(server, "alice")
    for ident in ("first", "second"):
        bob = registered(server, "bob")
        assert bob.user is not None
        bob.user.username = ident
        bob.line("QUIT :bye")
    alice.line("WHOWAS bob")
    lines = alice.lines()
    assert [line.split(" ")[1] for line in lines] == ["314", "312", "314", "312", "369"]
    assert lines[0] == ":irc.test 314 alice bob second 127.0.0.1 * :Bob Example"
    assert lines[1].startswith(":irc.test 312 alice bob irc.test :")
    assert lines[-1] == ":irc.test 369 alice bob :End of WHOWAS"
    alice.line("WHOWAS bob 1")
    assert [line.split(" ")[1] for line in alice.lines()] == ["314", "312", "369"]
    alice.line("WHOWAS Bob 0")
    assert len(alice.lines()) == 5
    alice.line("WHOWAS carol")
    assert alice.lines() == [
        ":irc.test 406 alice carol :There was no such nickname",
        ":irc.test 369 alice carol :End of WHOWAS",
    ]
