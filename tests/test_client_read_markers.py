"""The desktop client's read markers (docs/protocol.md, Read markers and
catch-up), over StringTransport and task.Clock: READ sets the unread count and
where the new messages begin; a conversation on screen with the window focused
sends /read for its newest message, once, a second later; not while unfocused
or not identified."""

from __future__ import annotations

from test_client import Client, client, join, sign_in  # noqa: F401

from chatd.client.read_markers import READ_AFTER

ID = "ID #lobby {0} 2026-11-30T23:50:01.123Z"


def identify(client: Client) -> None:  # noqa: F811
    client.hear("ACCOUNT alice alice")
    client.view.entries.clear()


def test_read_sets_the_unread_count_from_the_marker(client: Client) -> None:  # noqa: F811
    """Three messages of bob in #lobby while #games is shown: 3 unread; READ #lobby
    at the second (from another device) leaves 1, the new messages from the third."""
    sign_in(client)
    identify(client)
    join(client, "#games", "bob")
    for number in (1, 2, 3):
        client.hear(ID.format(number), f"MSG #lobby bob message {number}")
    lobby = client.conversation("#lobby")
    assert lobby.unread == 3
    client.hear("READ #lobby 2")
    assert (lobby.unread, lobby.new_from, lobby.read_id) == (1, 3, 2)
    client.hear("READ #lobby 1")  # backwards: changes nothing
    assert (lobby.unread, lobby.read_id) == (1, 2)
    client.hear("READ #lobby 3")
    assert (lobby.unread, lobby.new_from) == (0, None)
    client.clock.advance(READ_AFTER)
    assert client.sent() == []  # #games is on screen: nothing of #lobby is read here


def test_a_conversation_seen_moves_the_marker_once(client: Client) -> None:  # noqa: F811
    """Selecting #lobby with the window focused sends /read #lobby <newest> a
    second later, once; a READ for it then sends nothing more."""
    sign_in(client)
    identify(client)
    join(client, "#games", "bob")
    client.hear(ID.format(7), "MSG #lobby bob hello", ID.format(8), "MSG #lobby bob hi")
    client.session.select("#lobby")
    client.clock.advance(READ_AFTER)
    assert client.sent() == ["/read #lobby 8"]
    client.hear("READ #lobby 8")
    client.clock.advance(READ_AFTER)
    assert client.sent() == []
    client.hear(ID.format(9), "MSG #lobby bob more")  # seen at once: read too
    client.clock.advance(READ_AFTER)
    assert client.sent() == ["/read #lobby 9"]


def test_nothing_is_read_while_unfocused_or_not_identified(client: Client) -> None:  # noqa: F811
    """Without the focus, or without an account, no /read goes out."""
    sign_in(client)
    client.hear(ID.format(5), "MSG #lobby bob hello")
    client.clock.advance(READ_AFTER)
    assert client.sent() == []  # not identified: the server keeps no markers
    identify(client)
    client.session.state.markers.focus(False)
    client.hear(ID.format(6), "MSG #lobby bob again")
    client.clock.advance(READ_AFTER)
    assert client.sent() == []
    client.session.state.markers.focus(True)
    client.clock.advance(READ_AFTER)
    assert client.sent() == ["/read #lobby 6"]


def test_private_history_kind_priv_is_a_message_or_an_action(client: Client) -> None:  # noqa: F811
    """HISTORY bob ... PRIV bob * bob waves is bob's action (not "* bob * bob
    waves"); a plain one a message."""
    sign_in(client)
    identify(client)
    client.hear(
        "HISTORY bob 1 2026-11-30T23:50:01.123Z PRIV bob hello",
        "HISTORY bob 2 2026-11-30T23:50:01.123Z PRIV bob * bob waves",
        "ENDHISTORY bob 2",
    )
    texts = [entry.text for _, entry in client.view.entries]
    assert texts[0].endswith("] <bob> hello") and texts[1].endswith("] * bob waves")


def test_a_marker_heard_before_the_room_opens_is_kept(client: Client) -> None:  # noqa: F811
    """The catch-up's READ #games comes before the client joins #games again: the
    room starts from it, and its backfill after the marker counts as unread."""
    sign_in(client)
    identify(client)
    client.hear("READ #games 2")
    join(client, "#games", "bob")
    games = client.conversation("#games")
    assert games.read_id == 2
    client.session.select("#lobby")
    client.hear(
        "ID #games 3 2026-11-30T23:50:01.123Z",
        "MSG #games bob after the marker",
    )
    assert games.unread == 1
