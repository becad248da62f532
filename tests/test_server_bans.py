"""Server bans (K-lines): the model's rules, then each door's words (issue 25)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cluster_fakes import FakeLog, know_each_other, make_node, pump_all
from helpers import RecordingClient, connect, lines, make_factory, open_any
from test_client import RecordingView
from test_irc_protocol import irc_connect, irc_open
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.client.conversations import ChatState
from chatd.cluster import snapshot
from chatd.factory import ChatFactory
from chatd.irc.protocol import IrcConnection
from chatd.line.wire import parse_server_line
from chatd.model.chat import Chat, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.globs import glob_match
from chatd.model.server_banning import read_kline
from chatd.model.server_bans import (
    MAX_SERVER_BANS,
    ServerBan,
    ServerBanned,
    duration_seconds,
    server_ban_key,
    server_ban_problem,
)
from chatd.net.closing import Refusal
from chatd.protocol import LineConnection
from chatd.store.accounts import MemoryAccounts

# -- the model -------------------------------------------------------------------


def make_chat(clock: Clock) -> Chat:
    return Chat(now=clock.seconds, server_operators=["root"])


def enter(
    chat: Chat, nick: str, host: str = "192.0.2.9", account: str = ""
) -> tuple[User, RecordingClient]:
    client = RecordingClient()
    user = chat.register(nick, client, host=host, account=account)
    return user, client


def test_masks_read_as_their_kind() -> None:
    """A nickname is nick!*@*, user@host is *!user@host, an address or network
    (bare, *@, *!*@) is one network, account:/$a: an account."""
    assert server_ban_key("Troll") == "troll!*@*"
    assert server_ban_key("spam@*.example") == "*!spam@*.example"
    assert server_ban_key("203.0.113.7") == "address:203.0.113.7/32"
    assert server_ban_key("*@198.51.100.9/24") == "address:198.51.100.0/24"
    assert server_ban_key("*!*@2001:DB8::1/32") == "address:2001:db8::/32"
    assert server_ban_key("$a:Troll") == "account:troll"
    assert server_ban_key("*!*@198.51.100.*") == "*!*@198.51.100.*"


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        ("", "1 to 200 characters"),
        ("x" * 201, "1 to 200 characters"),
        ("bad mask", "is not a nickname"),
        ("account:", "needs an account name"),
        ("troll@10.0.0.0/8", "is not a network"),
        ("*@10.0.0.0/99", "is not a network"),
    ],
)
def test_bad_masks_are_named(mask: str, problem: str) -> None:
    """Each bad mask gets a sentence saying what is wrong."""
    found = server_ban_problem(mask)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("word", "seconds"),
    [("90s", 90), ("30", 1800), ("1h", 3600), ("7d", 604800), ("1d12h", 129600)]
    + [("permanent", 0), ("2w", 1209600)],
)
def test_durations(word: str, seconds: int) -> None:
    """1h, 7d, 1d12h; a bare number is minutes (Solanum); permanent is 0."""
    assert duration_seconds(word) == seconds


def test_bad_durations_are_refused_with_the_forms() -> None:
    """20y is past the 10-year bound; 1x is no duration."""
    for word in ("20y", "1x"):
        with pytest.raises(ChatError) as refused:
            duration_seconds(word)
        assert refused.value.code is ErrorCode.BAD_ARGS


def test_read_kline_takes_a_duration_only_before_a_mask() -> None:
    """KLINE 1h troll :spam has a duration; KLINE troll spam has none."""
    assert read_kline(["1h", "troll", "spam", "again"]) == ("1h", "troll", "spam again")
    assert read_kline(["troll", "spam"]) == ("", "troll", "spam")
    assert read_kline(["1h"]) == ("", "1h", "")
    assert read_kline(["10.0.0.1", "spam"]) == ("", "10.0.0.1", "spam")
    assert read_kline(["1x", "bob"]) == ("1x", "bob", "")  # refused as a duration


def test_only_server_operators_kline() -> None:
    """Anyone else is refused not-operator, and nothing is banned."""
    clock = Clock()
    chat = make_chat(clock)
    bob, _ = enter(chat, "bob")
    with pytest.raises(ChatError) as refused:
        chat.kline(bob, "troll", "spam")
    assert refused.value.code is ErrorCode.NOT_OPERATOR
    for attempt in (chat.server_ban_list, lambda user: chat.lift_server_ban(user, "x")):
        with pytest.raises(ChatError):
            attempt(bob)
    assert len(chat.server_bans) == 0


def test_a_kline_disconnects_matches_and_refuses_registration() -> None:
    """The matching users are closed with K-lined: reason (the operator spared);
    a new registration of a matching nickname is refused with the reason."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    troll, troll_client = enter(chat, "troll7", host="203.0.113.5")
    bob, bob_client = enter(chat, "bob")
    ban, gone = chat.kline(root, "troll*", "flooding #lobby", "1h")
    assert ban is not None and gone == ["troll7"]
    assert troll_client.closed == ["K-lined: flooding #lobby"]
    assert bob_client.closed == []
    with pytest.raises(ServerBanned) as refused:
        enter(chat, "TROLL8")
    assert refused.value.text == (
        "you are banned from this server: flooding #lobby (for 1h more)"
    )
    with pytest.raises(ServerBanned):  # a rename into the mask too
        chat.rename(bob, "trollish")
    assert bob.nick == "bob"


def test_an_address_ban_matches_its_network_and_mapped_ipv4() -> None:
    """198.51.100.0/24 holds for .77 and for ::ffff:198.51.100.77, not for .101.1."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    chat.kline(root, "*@198.51.100.0/24", "open proxy")
    assert chat.server_ban_for_address("198.51.100.77") is not None
    assert chat.server_ban_for_address("::ffff:198.51.100.77") is not None
    assert chat.server_ban_for_address("198.51.101.1") is None
    assert chat.server_ban_for_address("not an address") is None
    chat.kline(root, "2001:db8::/32", "v6")
    assert chat.server_ban_for_address("2001:db8:1::5") is not None


def test_a_kline_that_would_ban_its_operator_is_refused() -> None:
    """*!*@* matches root: refused, and nobody is disconnected; an operator's
    account cannot be banned either."""
    clock = Clock()
    chat = make_chat(clock)
    root, root_client = enter(chat, "root", account="root")
    for mask in ("*!*@*", "192.0.2.0/24", "account:root"):
        with pytest.raises(ChatError) as refused:
            chat.kline(root, mask, "oops")
        assert refused.value.code is ErrorCode.BAD_ARGS
    assert root_client.closed == [] and len(chat.server_bans) == 0


def test_expiry_on_the_models_clock() -> None:
    """A 1h ban refuses for an hour, then lets in; it leaves the list."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    chat.kline(root, "troll", "spam", "1h")
    clock.advance(3599)
    with pytest.raises(ServerBanned):
        enter(chat, "troll")
    assert [ban.mask for ban in chat.server_ban_list(root)] == ["troll"]
    clock.advance(1)
    enter(chat, "troll")
    assert chat.server_ban_list(root) == []


def test_listing_and_lifting_by_any_spelling() -> None:
    """/klines lists oldest first; UNKLINE TROLL!*@* lifts troll."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    chat.kline(root, "troll", "one")
    clock.advance(1)
    chat.kline(root, "account:spammer", "two")
    assert [ban.mask for ban in chat.server_ban_list(root)] == [
        "troll",
        "account:spammer",
    ]
    assert chat.lift_server_ban(root, "TROLL!*@*").mask == "troll"
    with pytest.raises(ChatError) as refused:
        chat.lift_server_ban(root, "troll")
    assert "no server ban has the mask troll" in refused.value.text


def test_the_list_is_bounded() -> None:
    """Past MAX_SERVER_BANS: ban-list-full; an ended ban makes room."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    for n in range(MAX_SERVER_BANS - 1):
        chat.kline(root, f"t{n}", "x")
    chat.kline(root, "short", "x", "1m")
    with pytest.raises(ChatError) as refused:
        chat.kline(root, "onemore", "x")
    assert refused.value.code is ErrorCode.BAN_LIST_FULL
    clock.advance(60)
    chat.kline(root, "onemore", "x")


HOSTILE = "*a" * 99 + "*z"  # 199 characters: backtracking would never end


def test_a_hostile_mask_is_matched_in_linear_time() -> None:
    """A full list of *a*a*...*z masks against a long identity of a's: no
    backtracking, so the whole list is checked in well under a second."""
    clock = Clock()
    chat = make_chat(clock)
    root, _ = enter(chat, "root", account="root")
    for n in range(MAX_SERVER_BANS):
        chat.server_bans.add(ServerBan(HOSTILE + "?" * (n % 7), "x", "root", 0.0))
    assert len(chat.server_bans) == 7  # equal spellings are one ban
    for n in range(MAX_SERVER_BANS - 7):  # and distinct ones, to the cap
        chat.server_bans.add(ServerBan(f"*a*a*{n}*a" * 10 + "*z", "x", "root", 0.0))
    start = time.perf_counter()
    chat.check_server_bans("a" * 20, "a" * 300, "a" * 300)
    assert time.perf_counter() - start < 1.0


class CountingText(str):
    """A text that counts the searches a match makes in it."""

    calls = 0

    def find(self, *args: Any) -> int:
        CountingText.calls += 1
        return super().find(*args)

    def startswith(self, *args: Any) -> bool:
        CountingText.calls += 1
        return super().startswith(*args)


@pytest.mark.parametrize("length", [50, 500, 5000])
def test_the_hostile_mask_searches_once_per_run(length: int) -> None:
    """Whatever the text's length, matching *a*a*...*z makes one search per run
    of the mask (plus its two ends): nothing is ever tried again."""
    CountingText.calls = 0
    assert not glob_match(server_ban_key(HOSTILE), CountingText("a" * length))
    assert CountingText.calls <= HOSTILE.count("*") + 2


# -- the doors ---------------------------------------------------------------------


def operator(factory: ChatFactory) -> tuple[LineConnection, StringTransport]:
    """A line client identified as root, a server operator."""
    root, out = connect(factory, "root")
    root.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    lines(out)
    return root, out


def test_line_kline_listing_and_removal(clock: Clock) -> None:
    """/kline 1h troll spamming: INFO, the troll gets BYE K-lined: spamming;
    /klines: KLINE then ENDKLINES; /unkline: INFO; a non-operator: not-operator."""
    factory = make_factory(clock, operators=("root",))
    root, r = operator(factory)
    troll, t = connect(factory, "troll")
    bob, b = connect(factory, "bob")
    bob.dataReceived(b"/kline troll\r\n/klines\r\n")
    assert [text.split(" ", 2)[:2] for text in lines(b)] == [
        ["ERR", "not-operator"]
    ] * 2
    root.dataReceived(b"/kline 1h troll spamming the lobby\r\n")
    assert lines(t)[-1] == "BYE K-lined: spamming the lobby"
    assert lines(r)[-1] == (
        "INFO troll is banned from the server for 1h: spamming the lobby. "
        "Disconnected: troll."
    )
    root.dataReceived(b"/klines\r\n")
    listed = lines(r)
    assert listed[0].startswith("KLINE troll root 1970-01-01T00:00:00.000Z ")
    assert listed[0].endswith(" 1970-01-01T01:00:00.000Z spamming the lobby")
    assert listed[1] == "ENDKLINES 1"
    root.dataReceived(b"/kline 1h bad@10.0.0.0/8 x\r\n/kline 99y troll x\r\n")
    refusals = lines(r)
    assert refusals[0].startswith("ERR bad-args bad@10.0.0.0/8 is not a network")
    assert refusals[1].startswith("ERR bad-args 99y is longer than 10 years")
    root.dataReceived(b"/unkline TROLL\r\n/klines\r\n")
    assert lines(r) == ["INFO The server ban of troll is lifted.", "ENDKLINES 0"]


def test_line_registration_refused_with_err_banned_then_closed(clock: Clock) -> None:
    """A banned nickname: ERR banned <reason>, BYE K-lined: <reason>, closed."""
    factory = make_factory(clock, operators=("root",))
    root, _ = operator(factory)
    root.dataReceived(b"/kline troll spamming\r\n")
    proto, out = open_any(factory, 40999, "192.0.2.77")
    out.clear()
    proto.dataReceived(b"troll\r\n")
    assert lines(out) == [
        "ERR banned you are banned from this server: spamming",
        "BYE K-lined: spamming",
    ]
    assert out.disconnecting and "troll" not in factory.chat.users


def test_an_address_ban_refuses_at_connect_on_line_and_irc(clock: Clock) -> None:
    """From a banned address nothing is read: line ERR banned + BYE; IRC 465
    and ERROR; the refusal is counted as banned."""
    factory = make_factory(clock, operators=("root",))
    root, _ = operator(factory)
    root.dataReceived(b"/kline 203.0.113.0/24 open proxy\r\n")
    proto, out = open_any(factory, 40998, "203.0.113.9")
    assert isinstance(proto, Refusal)
    assert out.value() == (
        b"ERR banned you are banned from this server: open proxy\r\n"
        b"BYE K-lined: open proxy\r\n"
    )
    address = IPv4Address("TCP", "203.0.113.10", 40997)
    irc = factory.door(IrcConnection).buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    irc.makeConnection(transport)
    assert transport.value().decode().split("\r\n")[:2] == [
        ":chatd 465 * :You are banned from this server: open proxy",
        "ERROR :Closing link: (K-lined: open proxy)",
    ]
    assert factory.stats.limits["line", "banned"] == 1
    assert factory.stats.limits["irc", "banned"] == 1


def test_irc_kline_stats_and_unkline(clock: Clock) -> None:
    """KLINE by a non-operator: 481; by an operator: the match gets 465-less
    ERROR (K-lined: reason); STATS K lists 216s then 219; UNKLINE lifts."""
    factory = make_factory(clock, operators=("root",))
    root, r = irc_connect(factory, "root")
    root.dataReceived(b"PRIVMSG NickServ :REGISTER s3cret-pw\r\n")
    troll, t = irc_connect(factory, "troll")
    troll.dataReceived(b"KLINE root :no\r\nSTATS K\r\n")
    assert [text.split(" ")[1] for text in t.value().decode().splitlines()] == [
        "481",
        "481",
    ]
    r.clear()
    root.dataReceived(b"KLINE 7d troll :spam bot\r\n")
    assert t.value().decode().endswith("(K-lined: spam bot)\r\n")
    assert "NOTICE root :Added K-line troll for 7d: spam bot" in r.value().decode()
    r.clear()
    root.dataReceived(b"STATS K\r\nSTATS k\r\nUNKLINE troll\r\nSTATS K\r\n")
    said = r.value().decode().splitlines()
    assert said[0] == ":chatd 216 root k troll 604800 root :spam bot"
    assert said[1] == ":chatd 219 root K :End of /STATS report"
    assert said[2] == ":chatd 216 root k troll 604800 root :spam bot"
    assert said[3] == ":chatd 219 root k :End of /STATS report"
    assert said[4] == ":chatd NOTICE root :Removed K-line troll"
    assert said[5] == ":chatd 219 root K :End of /STATS report"


def test_irc_registration_refused_with_465(clock: Clock) -> None:
    """NICK troll, USER: 465 with the reason, then ERROR :Closing link: host
    (K-lined: reason), and the connection closes."""
    factory = make_factory(clock, operators=("root",))
    root, _ = operator(factory)
    root.dataReceived(b"/kline *!~troll@* spam\r\n")
    for first, second in (("NICK nice", "USER troll"), ("USER troll", "NICK nice")):
        proto, out = irc_open(factory)
        proto.dataReceived(f"{first} 0 * :T\r\n{second} 0 * :T\r\n".encode())
        said = out.value().decode().splitlines()
        assert said == [
            ":chatd 465 nice :You are banned from this server: spam",
            f"ERROR :Closing link: {proto.host} (K-lined: spam)",
        ]
        assert out.disconnecting


def test_an_account_ban_closes_on_identify(clock: Clock) -> None:
    """account:troll: identifying to it closes the connection with the reason;
    the account stays unidentified."""
    factory = make_factory(clock, operators=("root",))
    troll, t = connect(factory, "troll")
    troll.dataReceived(b"/register s3cret-pw s3cret-pw\r\n/quit\r\n")
    root, _ = operator(factory)
    other, o = connect(factory, "other")
    root.dataReceived(b"/kline account:troll sock puppets\r\n")
    other.dataReceived(b"/identify troll s3cret-pw\r\n")
    assert lines(o)[-1] == "BYE K-lined: sock puppets"
    assert "other" not in factory.chat.users


def test_bans_are_kept_by_the_store_and_read_back(clock: Clock) -> None:
    """The store holds what the model holds (a new factory on it enforces it)."""
    store = MemoryAccounts()
    factory = ChatFactory(
        make_factory(clock, operators=("root",)).config, clock, None, store
    )
    root, _ = operator(factory)
    root.dataReceived(b"/kline troll spam\r\n")
    assert list(store.server_bans) == ["troll!*@*"]
    again = ChatFactory(factory.config, clock, None, store)
    with pytest.raises(ServerBanned):
        again.chat.check_server_bans("troll")


# -- a cluster -----------------------------------------------------------------------


def test_a_kline_on_one_node_holds_on_every_node_and_in_the_snapshot() -> None:
    """root on node a K-lines troll of node b: troll is closed on b, b refuses a
    new troll, and a node that joins later gets the ban in its snapshot."""
    clock = Clock()
    log = FakeLog(clock)
    a = make_node(log, "a", clock, operators=("root",))
    b = make_node(log, "b", clock, operators=("root",))
    know_each_other(a, b)
    root, r = a.connect("root")
    troll, t = b.connect("troll")
    pump_all(a, b)
    root.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    pump_all(a, b)
    lines(r), lines(t)
    root.dataReceived(b"/kline troll spamming\r\n")
    pump_all(a, b)
    assert lines(t)[-1] == "BYE K-lined: spamming"
    said = lines(r)
    assert "QUIT troll K-lined: spamming" in said
    assert any(text.endswith("Disconnected: troll.") for text in said)
    assert list(b.chat.server_bans.kept) == ["troll!*@*"]
    assert "troll" not in a.chat.users and "troll" not in b.chat.users
    again, out = b.connect("troll")
    pump_all(a, b)
    assert lines(out)[-2:] == [
        "ERR banned you are banned from this server: spamming",
        "BYE K-lined: spamming",
    ]
    c = make_node(log, "c", clock)
    snapshot.load(c.chat, json.loads(json.dumps(snapshot.dump(a.chat, ["a"]))), c.node)
    assert c.chat.server_ban_for_address("1.2.3.4") is None
    with pytest.raises(ServerBanned):
        c.chat.check_server_bans("troll")


def test_sasl_to_a_banned_account_is_refused_at_registration(clock: Clock) -> None:
    """SASL proves account:troll (903), then CAP END: 465 and ERROR, closed;
    the nickname never registers."""
    factory = make_factory(clock, operators=("root",))
    troll, t = connect(factory, "troll")
    troll.dataReceived(b"/register s3cret-pw s3cret-pw\r\n/quit\r\n")
    root, _ = operator(factory)
    root.dataReceived(b"/kline account:troll sock puppets\r\n")
    proto, out = irc_open(factory)
    proto.dataReceived(b"CAP LS 302\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n")
    right = base64.b64encode(b"\0troll\0s3cret-pw")
    proto.dataReceived(b"AUTHENTICATE " + right + b"\r\n")
    proto.dataReceived(b"NICK puppet\r\nUSER p 0 * :P\r\nCAP END\r\n")
    said = out.value().decode().splitlines()
    assert said[-2:] == [
        ":chatd 465 puppet :You are banned from this server: sock puppets",
        f"ERROR :Closing link: {proto.host} (K-lined: sock puppets)",
    ]
    assert out.disconnecting and "puppet" not in factory.chat.users


def test_the_desktop_client_shows_the_klines_answer() -> None:
    """KLINE and ENDKLINES lines are notes in the conversation on screen."""
    state = ChatState(RecordingView(), Clock(), lambda text: None)
    for raw in (
        "KLINE troll root 2026-12-07T22:40:16.178Z permanent spam bot",
        "ENDKLINES 1",
    ):
        state.apply(parse_server_line(raw))
    shown = [entry.text for entry in state.shown().scrollback]
    assert shown[-2:] == [
        "Server ban troll by root for good: spam bot",
        "1 server bans.",
    ]


def test_a_rename_into_a_banned_mask_closes_the_connection(clock: Clock) -> None:
    """/nick troll2 under troll*: ERR banned, BYE, the others see QUIT; on IRC
    NICK troll3: 465 and ERROR."""
    factory = make_factory(clock, operators=("root",))
    root, r = operator(factory)
    root.dataReceived(b"/kline troll* evading\r\n")
    bob, b = connect(factory, "bob")
    lines(r)
    bob.dataReceived(b"/nick troll2\r\n")
    assert lines(b) == [
        "ERR banned you are banned from this server: evading",
        "BYE K-lined: evading",
    ]
    assert lines(r) == ["QUIT bob K-lined: evading"]
    carol, c = irc_connect(factory, "carol")
    carol.dataReceived(b"NICK troll3\r\n")
    assert c.value().decode().splitlines() == [
        ":chatd 465 carol :You are banned from this server: evading",
        f"ERROR :Closing link: {carol.host} (K-lined: evading)",
    ]
