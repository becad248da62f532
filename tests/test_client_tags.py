"""Typing, reactions and replies on every door (docs/protocol.md, Typing,
reactions and replies; docs/irc.md, Client tags): IRC's client tags and
TAGMSG, the line door's /tags on, the model's deny list, size and rate.

Line and IRC connections on StringTransport, a MemoryHistory on a Clock.
"""

from __future__ import annotations

import pytest
from cluster_fakes import pump_all
from helpers import RecordingClient, connect, lines
from test_client import Client, FakeConnector, RecordingView, sign_in
from test_cluster_node import irc_client, two_nodes
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock

from chatd.client.client import ClientSession
from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.line.wire import RenderStats, parse_server_line
from chatd.model.chat import Chat, Tagged
from chatd.model.client_tags import (
    DENIED,
    MAX_CLIENT_TAG_BYTES,
    TAG_BURST,
    TAG_RATE,
    client_tags,
)
from chatd.model.errors import ChatError, ErrorCode
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
TAGS = ("message-tags", "echo-message")


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return ChatFactory(ServerConfig(flood_rate=0.0), clock, store)


def msgid_of(raw: str) -> str:
    return parse_message(raw).tags["msgid"]


def test_a_tagmsg_reaction_reaches_opt_in_line_clients_only(
    factory: ChatFactory,
) -> None:
    """An IRC client's `@+draft/react=👍;+draft/reply=<id> TAGMSG #lobby` is
    `REACT #lobby alice <id> 👍` for a line client that said /tags on, and
    nothing at all for one that did not; the IRC sender gets its echo."""
    alice, a_out = irc_connect(factory, "alice", *TAGS)
    alice.dataReceived(b"JOIN #lobby\r\n")
    tk, tk_out = connect(factory, "tk")
    tk.dataReceived(b"/tags on\r\n")
    assert lines(tk_out)[0].startswith("INFO Typing, reactions and replies are on")
    plain, p_out = connect(factory, "plain")
    plain.dataReceived(b"hello\r\n")
    msgid = msgid_of(lines(a_out)[-1])
    lines(tk_out), lines(p_out)
    alice.dataReceived(
        f"@+draft/react=👍;+draft/reply={msgid} TAGMSG #lobby\r\n".encode()
    )
    assert lines(tk_out) == [f"REACT #lobby alice {msgid} 👍"]
    assert p_out.value() == b""
    (echo,) = lines(a_out)
    assert parse_message(echo).command == "TAGMSG"
    assert parse_message(echo).tags["+draft/react"] == "👍"


def test_an_escaped_line_break_in_a_tag_never_makes_a_line(
    factory: ChatFactory,
) -> None:
    """`+draft/react=a\\nMSG #lobby eve forged` (an escaped line break) is no
    reaction for the line door: nothing is shown, no line is forged; IRC
    clients get the value escaped again."""
    alice, a_out = irc_connect(factory, "alice", *TAGS)
    alice.dataReceived(b"JOIN #lobby\r\n")
    irc, i_out = irc_connect(factory, "irc", "message-tags")
    irc.dataReceived(b"JOIN #lobby\r\n")
    tk, tk_out = connect(factory, "tk")
    tk.dataReceived(b"/tags on\r\n")
    lines(tk_out), lines(i_out)
    alice.dataReceived(
        b"@+draft/react=ok\\nMSG\\s#lobby\\seve\\sforged;+draft/reply=1 "
        b"TAGMSG #lobby\r\n"
    )
    assert tk_out.value() == b""
    (relayed,) = i_out.value().split(b"\r\n")[:-1]
    assert b"+draft/react=ok\\nMSG\\s#lobby\\seve\\sforged" in relayed


def test_line_typing_and_react_reach_irc_as_client_tags(factory: ChatFactory) -> None:
    """/typing and /react from a line client are TAGMSGs with +typing and
    +draft/react;+draft/reply for IRC clients with message-tags; an IRC client
    without the cap is sent nothing."""
    tagged, t_out = irc_connect(factory, "irc1", "message-tags")
    bare, b_out = irc_connect(factory, "irc2")
    for proto in (tagged, bare):
        proto.dataReceived(b"JOIN #lobby\r\n")
    bob, b_line = connect(factory, "bob")
    lines(t_out), lines(b_out)
    bob.dataReceived(b"/typing #lobby active\r\n/react #lobby 42 \xf0\x9f\x8e\x89\r\n")
    typing, react = (parse_message(raw) for raw in lines(t_out))
    assert (typing.command, typing.params) == ("TAGMSG", ("#lobby",))
    assert typing.tags["+typing"] == "active"
    assert typing.tags["msgid"] != react.tags["msgid"]
    assert react.tags["+draft/react"] == "🎉" and react.tags["+draft/reply"] == "42"
    assert b_out.value() == b""
    assert lines(b_line) == []  # bob did not say /tags on: not even his own


def test_a_reply_is_marked_for_opt_in_clients_and_plain_for_the_rest(
    factory: ChatFactory,
) -> None:
    """/reply #lobby <id> text: clients with /tags on get `REPLY #lobby <id>`
    right before the MSG (after /ids on too, before its ID line); others the
    MSG alone; an IRC client with message-tags gets +draft/reply on the
    PRIVMSG."""
    irc, i_out = irc_connect(factory, "irc", "message-tags")
    irc.dataReceived(b"JOIN #lobby\r\n")
    tk, tk_out = connect(factory, "tk")
    tk.dataReceived(b"/tags on\r\n/ids on\r\n")
    plain, p_out = connect(factory, "plain")
    plain.dataReceived(b"first\r\n")
    first_id = msgid_of(lines(i_out)[-1])
    lines(tk_out), lines(p_out)
    plain.dataReceived(f"/reply #lobby {first_id} agreed\r\n".encode())
    received = lines(tk_out)
    assert received[0] == f"REPLY #lobby {first_id}"
    assert [text.split(" ")[0] for text in received] == ["REPLY", "ID", "MSG"]
    assert received[2] == "MSG #lobby plain agreed"
    assert lines(p_out) == ["MSG #lobby plain agreed"]
    (privmsg,) = lines(i_out)
    assert parse_message(privmsg).tags["+draft/reply"] == first_id
    for text in received:
        parse_server_line(text)  # every line the contract's shape


def test_private_typing_and_replies(factory: ChatFactory) -> None:
    """Typing to a nickname reaches that person only; a private message has an
    id (a live one when not kept) that a reply can name."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    carol, c_out = connect(factory, "carol")
    for proto in (alice, bob, carol):
        proto.dataReceived(b"/tags on\r\n")
    lines(a_out), lines(b_out), lines(c_out)
    alice.dataReceived(b"/typing bob active\r\n")
    assert lines(b_out) == ["TYPING bob alice active"]
    assert lines(c_out) == []
    irc, i_out = irc_connect(factory, "dave", "message-tags")
    alice.dataReceived(b"/msg dave psst\r\n")
    live = msgid_of(lines(i_out)[0])
    assert int(live) < 0  # not kept: neither side is identified
    irc.dataReceived(f"@+draft/reply={live} PRIVMSG alice :what?\r\n".encode())
    assert lines(a_out)[-2:] == [f"REPLY alice {live}", "PRIV dave alice what?"]


def test_typing_is_rate_limited_per_user(clock: Clock, factory: ChatFactory) -> None:
    """TAG_BURST typing notices go out at once, the next is ERR flood and
    reaches nobody; after 1/TAG_RATE seconds one more goes."""
    alice, a_out = connect(factory, "alice")
    bob, b_out = connect(factory, "bob")
    bob.dataReceived(b"/tags on\r\n")
    lines(b_out), lines(a_out)
    alice.dataReceived(b"/typing #lobby active\r\n" * (TAG_BURST + 1))
    assert len(lines(b_out)) == TAG_BURST
    refused = lines(a_out)
    assert len(refused) == 1 and refused[0].startswith("ERR flood ")
    clock.advance(1 / TAG_RATE)
    alice.dataReceived(b"/typing #lobby paused\r\n")
    assert lines(b_out) == ["TYPING #lobby alice paused"]
    assert lines(a_out) == []


def test_irc_tagmsg_over_the_rate_gets_fail(factory: ChatFactory) -> None:
    """On IRC, a TAGMSG past the rate is FAIL TAGMSG RATE_LIMITED, relayed to no one."""
    alice, a_out = irc_connect(factory, "alice", "message-tags")
    bob, b_out = irc_connect(factory, "bob", "message-tags")
    alice.dataReceived(b"@+typing=active TAGMSG bob\r\n" * (TAG_BURST + 1))
    assert len(lines(b_out)) == TAG_BURST
    (fail,) = lines(a_out)
    assert parse_message(fail).params[:3] == ("TAGMSG", "RATE_LIMITED", "bob")


def test_denied_and_server_tags_are_not_relayed(factory: ChatFactory) -> None:
    """Only '+' tags pass; DENIED ones (+draft/channel-context) never do;
    ISUPPORT's CLIENTTAGDENY names them."""
    alice, a_out = irc_connect(factory, "alice", *TAGS)
    bob, b_out = irc_connect(factory, "bob", "message-tags")
    alice.dataReceived(
        b"@label=x;fizz=buzz;+draft/channel-context=#secret;+ok=1 PRIVMSG bob :hi\r\n"
    )
    relay = parse_message(lines(b_out)[0])
    assert relay.tags.keys() == {"msgid", "+ok"}
    assert client_tags({"+draft/channel-context": "#x", "a": "b"}) == ()
    odd = {"+a\rb": "1", "+ok": "x\x00y", "+": "1", "+x/": "1", "+a b": "1"}
    assert client_tags({**odd, "+example.com/k-1": "v"}) == (("+example.com/k-1", "v"),)
    alice.dataReceived(b"@+draft/channel-context=#secret TAGMSG bob\r\n")
    assert b_out.value() == b""  # nothing left to relay: nothing is sent
    fresh, f_out = irc_connect(factory, "carol")
    fresh.dataReceived(b"VERSION\r\n")
    isupport = " ".join(lines(f_out))
    assert "CLIENTTAGDENY=" + ",".join(n[1:] for n in sorted(DENIED)) in isupport
    assert "CLIENTTAGDENY=*" not in isupport


def test_tag_size_limits(factory: ChatFactory) -> None:
    """A tag section past 4094 bytes (4096 with '@' and space) is 417 and goes
    nowhere; one right at the limit is relayed whole, though the line is longer
    than --max-line."""
    alice, a_out = irc_connect(factory, "alice", *TAGS)
    bob, b_out = irc_connect(factory, "bob", "message-tags")
    at_limit = "@foo=bar;+baz=" + "a" * 4081 + " TAGMSG bob"
    assert at_limit.index("TAGMSG") == 4096
    alice.dataReceived(at_limit.encode() + b"\r\n")
    assert parse_message(lines(b_out)[0]).tags["+baz"] == "a" * 4081
    lines(a_out)
    over = "@foo=bar;+baz=" + "a" * 4082 + " TAGMSG bob"
    alice.dataReceived(over.encode() + b"\r\n")
    assert parse_message(lines(a_out)[0]).command == "417"
    assert b_out.value() == b""
    long_plain = "PRIVMSG bob :" + "b" * 2100  # no tags: --max-line holds
    alice.dataReceived(long_plain.encode() + b"\r\n")
    assert parse_message(lines(a_out)[0]).command == "417"


def test_the_model_refuses_oversized_tags_and_empty_ones() -> None:
    """Chat.send_tags and say check the tags' size, whatever the door."""
    chat = Chat()
    user = chat.register("alice", RecordingClient())
    chat.join(user, "#lobby")
    huge = (("+x", "y" * MAX_CLIENT_TAG_BYTES),)
    with pytest.raises(ChatError) as refused:
        chat.say(user, "hi", tags=huge)
    assert refused.value.code is ErrorCode.TOO_LONG
    with pytest.raises(ChatError):
        chat.send_tags(user, "#lobby", ())


def test_tags_alone_are_spelled_once_per_broadcast(factory: ChatFactory) -> None:
    """Many /tags clients share one spelling of a TYPING line."""
    clients = [connect(factory, f"user{n}") for n in range(5)]
    for proto, out in clients[:4]:
        proto.dataReceived(b"/tags on\r\n")
        out.clear()
    before = RenderStats.renders
    clients[4][0].dataReceived(b"/typing #lobby active\r\n")
    assert RenderStats.renders - before == 1
    seen = {out.value() for _, out in clients[:4]}
    assert seen == {b"TYPING #lobby user4 active\r\n"}


def test_bad_line_commands_are_refused(factory: ChatFactory) -> None:
    """A state that is none of active/paused/done, an id with spaces cut off,
    a reaction too long: ERR bad-args; a room one is not in: ERR not-in-room."""
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(
        b"/typing #lobby busy\r\n/react #lobby 1 " + b"x" * 100 + b"\r\n"
        b"/typing #elsewhere active\r\n/tags maybe\r\n"
    )
    codes = [text.split(" ")[1] for text in lines(a_out)]
    assert codes == ["bad-args", "bad-args", "no-such-room", "bad-args"]


def test_tagged_events_carry_a_live_id() -> None:
    """Tags alone are one Tagged event with a live id below zero, never kept."""
    now = [1000.0]
    chat = Chat(now=lambda: now[0])
    sink = RecordingClient()
    alice = chat.register("alice", sink)
    chat.join(alice, "#lobby")
    chat.send_tags(alice, "#lobby", (("+typing", "active"),))
    (event,) = [e for e in sink.events if isinstance(e, Tagged)]
    assert event.id < 0 and event.target == "#lobby" and not event.private


# -- the desktop client (chatd.client.tags): typing and reactions as text ----------


def test_the_desktop_client_shows_typing_reactions_and_replies(clock: Clock) -> None:
    """chatd-tk asks /tags on (its answer not shown); TYPING shows "bob is
    typing…" for 6 s or until bob speaks; REACT is a quiet line naming the
    message; REPLY puts "↪ in reply to" before the message."""
    view, dialer = RecordingView(), FakeConnector()
    client = Client(ClientSession(view, clock, dialer), view, clock, dialer)
    sign_in(client)
    client.hear("INFO Typing, reactions and replies are on: ...")
    state = client.session.state
    lobby = client.conversation("#lobby")
    client.hear("TYPING #lobby bob active")
    assert state.tags.typing_text(lobby) == "bob is typing…"
    client.hear("ID #lobby 41 2026-11-30T23:50:01.123Z", "MSG #lobby bob hi all")
    assert state.tags.typing_text(lobby) == ""
    client.hear("TYPING #lobby bob active", "TYPING #lobby carol active")
    assert state.tags.typing_text(lobby) == "bob and carol are typing…"
    clock.advance(6)
    assert state.tags.typing_text(lobby) == ""
    client.hear("REACT #lobby carol 41 👍", "REPLY #lobby 41", "MSG #lobby carol yes")
    assert view.texts()[-3:] == [
        "carol reacted 👍 to bob: hi all",
        "↪ in reply to bob: hi all",
        "yes",
    ]
    assert not any("Typing, reactions" in text for text in view.texts())


# -- a cluster (cluster_fakes: nodes in one process, no Redis) ---------------------


def test_typing_reactions_and_replies_cross_cluster_nodes() -> None:
    """Tags alone (a tag entry) and a reply's tags (in its say) reach the users
    of the other node, with the same live id on both; the rate is the sender's
    node's, checked before anything is published."""
    clock, log, a, b = two_nodes()
    alice, a_out = a.connect("alice")
    bob, b_out = b.connect("bob")
    irc, i_out = irc_client(b, "carol", "message-tags")
    pump_all(a, b)
    irc.dataReceived(b"JOIN #lobby\r\n")
    bob.dataReceived(b"/tags on\r\n")
    pump_all(a, b)
    lines(a_out), lines(b_out), lines(i_out)
    alice.dataReceived(b"/typing #lobby active\r\n/reply #lobby 42 agreed\r\n")
    pump_all(a, b)
    assert lines(b_out) == [
        "TYPING #lobby alice active",
        "REPLY #lobby 42",
        "MSG #lobby alice agreed",
    ]
    typing, reply = (parse_message(text) for text in lines(i_out))
    assert typing.command == "TAGMSG" and typing.tags["+typing"] == "active"
    assert int(typing.tags["msgid"]) < 0
    assert reply.command == "PRIVMSG" and reply.tags["+draft/reply"] == "42"
    assert lines(a_out) == ["MSG #lobby alice agreed"]  # alice: no /tags
    clock.advance(TAG_BURST / TAG_RATE)  # the burst back
    user = a.chat.user("alice")
    for _ in range(TAG_BURST):
        a.chat.send_tags(user, "bob", (("+typing", "paused"),))
    with pytest.raises(ChatError) as refused:
        a.chat.send_tags(user, "bob", (("+typing", "paused"),))
    assert refused.value.code is ErrorCode.FLOOD
    pump_all(a, b)
    assert lines(b_out) == ["TYPING bob alice paused"] * TAG_BURST
