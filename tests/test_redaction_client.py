"""Deleted messages in chatd-tk's client state (docs/protocol.md, Deleting
messages): a DELETED line greys the message it names, where it is shown."""

from __future__ import annotations

import pytest
from test_client import Client, FakeConnector, RecordingView, sign_in
from test_client_history import live
from twisted.internet.task import Clock

from chatd.client.client import ClientSession


@pytest.fixture
def client(clock: Clock) -> Client:
    view, dialer = RecordingView(), FakeConnector()
    return Client(ClientSession(view, clock, dialer), view, clock, dialer)


def test_a_deleted_message_is_greyed_and_says_who(client: Client) -> None:
    """DELETED #lobby 5 carol spam: message 5 reads "message deleted by carol:
    spam", marked deleted, the view drawn again; other messages stay; an id
    not shown changes nothing."""
    sign_in(client)
    client.hear(*live("#lobby", 5), *live("#lobby", 6))
    redrawn = client.view.calls["selected"]
    client.hear("DELETED #lobby 5 carol spam")
    lobby = client.conversation("#lobby")
    by_id = {entry.id: entry for entry in lobby.scrollback if entry.id}
    assert by_id[5].deleted and by_id[5].text == "message deleted by carol: spam"
    assert not by_id[6].deleted and by_id[6].text == "m6"
    assert client.view.calls["selected"] == redrawn + 1
    client.hear("DELETED #lobby 99 carol ", "DELETED #nowhere 6 carol ")
    assert not by_id[6].deleted
    assert client.view.calls["selected"] == redrawn + 1
