"""The IRC door on the shared Connection, with StringTransport and Clock."""

from __future__ import annotations

import gc
import types
import weakref
from itertools import count

from helpers import connect, disconnect, lines, make_factory, open_connection
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from chatd.factory import ChatFactory
from chatd.irc.protocol import IrcConnection, irc_server
from chatd.model.chat import IChatClient
from chatd.net.limits import REGISTRATION_LINES
from chatd.store.accounts import AccountRecord

_ports = count(41001)


def irc_open(factory: ChatFactory) -> tuple[IrcConnection, StringTransport]:
    """Connect one IRC client from its own address; nothing is said yet."""
    port = next(_ports)
    address = IPv4Address("TCP", f"127.1.{port // 250 % 250}.{port % 250 + 1}", port)
    proto = factory.door(IrcConnection).buildProtocol(address)
    assert isinstance(proto, IrcConnection)
    transport = StringTransport(peerAddress=address)
    proto.makeConnection(transport)
    return proto, transport


def irc_connect(
    factory: ChatFactory, nick: str, *caps: str
) -> tuple[IrcConnection, StringTransport]:
    """Connect and register one IRC client (with caps); its output cleared."""
    proto, transport = irc_open(factory)
    text = ""
    if caps:
        text += "CAP LS 302\r\nCAP REQ :" + " ".join(caps) + "\r\n"
    text += f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"
    if caps:
        text += "CAP END\r\n"
    proto.dataReceived(text.encode())
    assert proto.user is not None, transport.value()
    transport.clear()
    return proto, transport


def test_irc_connection_is_a_chat_client(clock: Clock) -> None:
    """IrcConnection provides IChatClient and says nothing until the client speaks."""
    proto, out = irc_open(make_factory(clock))
    assert verifyObject(IChatClient, proto)
    assert out.value() == b""


def test_irc_and_line_users_meet_in_lobby(clock: Clock) -> None:
    """A line MSG reaches IRC as PRIVMSG; an IRC PRIVMSG reaches the line as MSG."""
    factory = make_factory(clock)
    carol, c_out = connect(factory, "carol")
    alice, a_out = irc_connect(factory, "alice")
    alice.dataReceived(b"JOIN #lobby\r\n")
    assert lines(c_out) == ["JOIN #lobby alice"]
    a_out.clear()
    carol.dataReceived(b"hi alice\r\n/me waves\r\n")
    assert lines(a_out) == [
        f":carol!carol@{carol.host} PRIVMSG #lobby :hi alice",
        f":carol!carol@{carol.host} PRIVMSG #lobby :\x01ACTION waves\x01",
    ]
    c_out.clear()
    alice.dataReceived(b"PRIVMSG #lobby :hello carol\r\nPRIVMSG carol :psst\r\n")
    assert lines(c_out) == ["MSG #lobby alice hello carol", "PRIV alice carol psst"]
    assert lines(a_out) == []  # no echo-message
    alice.dataReceived(b"NICK alicia\r\nPART #lobby :later\r\n")
    assert lines(c_out) == ["RENAME alice alicia", "PART #lobby alicia later"]


def test_irc_quit_is_seen_by_line_users(clock: Clock) -> None:
    """QUIT :night: the line user sees QUIT alice Quit: night; the client its
    own QUIT back (as Ergo), then ERROR."""
    factory = make_factory(clock)
    carol, c_out = connect(factory, "carol")
    alice, a_out = irc_connect(factory, "alice")
    alice.dataReceived(b"JOIN #lobby\r\n")
    c_out.clear(), a_out.clear()
    alice.dataReceived(b"QUIT :night\r\n")
    assert lines(c_out) == ["QUIT alice Quit: night"]
    assert lines(a_out) == [
        f":alice!~alice@{alice.host} QUIT :Quit: night",
        f"ERROR :Closing link: {alice.host} (Quit: night)",
    ]
    assert a_out.disconnecting


def test_line_user_leaving_is_irc_quit(clock: Clock) -> None:
    """A line user's disconnect reaches IRC room-mates as QUIT with the reason."""
    factory = make_factory(clock)
    carol, c_out = connect(factory, "carol")
    alice, a_out = irc_connect(factory, "alice")
    alice.dataReceived(b"JOIN #lobby\r\n")
    a_out.clear()
    disconnect(carol)
    assert lines(a_out) == [f":carol!carol@{carol.host} QUIT :connection closed"]


def test_broadcast_rendered_once_per_door(clock: Clock) -> None:
    """One room message to 5 IRC and 5 line members is rendered once for IRC."""
    factory = make_factory(clock)
    ircs = [irc_connect(factory, f"irc{i}") for i in range(5)]
    for proto, _ in ircs:
        proto.dataReceived(b"JOIN #lobby\r\n")
    line_users = [connect(factory, f"line{i}") for i in range(5)]
    for _, out in [*ircs, *line_users]:
        out.clear()
    renderer = irc_server(factory).renderer
    before = renderer.renders
    line_users[0][0].dataReceived(b"hello all\r\n")
    assert renderer.renders == before + 1
    for _, out in ircs:
        host = line_users[0][0].host
        assert lines(out) == [f":line0!line0@{host} PRIVMSG #lobby :hello all"]


def test_members_of_each_tag_variant_share_a_journal_run(clock: Clock) -> None:
    """Plain and server-time members each hold a run of their variant's journal."""
    factory = make_factory(clock)
    members = [
        irc_connect(factory, f"m{i}", *(["server-time"] if i % 2 else []))
        for i in range(6)
    ]
    for proto, _ in members:
        proto.dataReceived(b"JOIN #r\r\n")
    speaker, s_out = irc_connect(factory, "speaker")
    speaker.dataReceived(b"JOIN #r\r\n")
    for _, out in [*members, (speaker, s_out)]:
        out.clear()
    factory.output.begin()  # one round, as a packet of two PRIVMSGs makes
    speaker.handle_line(b"PRIVMSG #r :one")
    speaker.handle_line(b"PRIVMSG #r :two")
    journals = factory.output.journals
    for i, (proto, _) in enumerate(members):
        key = "irc+tags" if i % 2 else "irc"
        assert proto.journal_key == key
        assert proto._journal is journals[key] and proto._out is None
        assert (proto._start, proto._end) == (0, 2)
    factory.output.end(speaker)
    for i, (_, out) in enumerate(members):
        got = lines(out)
        assert [text.startswith("@time=") for text in got] == [bool(i % 2)] * 2
        assert [text.split(":speaker!", 1)[-1] for text in got] == [
            f"~speaker@{speaker.host} PRIVMSG #r :one",
            f"~speaker@{speaker.host} PRIVMSG #r :two",
        ]
    assert lines(s_out) == []  # no echo-message


def test_who_is_sent_what_whatever_the_order_of_members(clock: Clock) -> None:
    """The speaker gets no echo, unless echo-message; AWAY only with away-notify."""
    factory = make_factory(clock)
    first, f_out = irc_connect(factory, "first")
    quiet, q_out = irc_connect(factory, "quiet")  # speaks, without echo-message
    echo, e_out = irc_connect(factory, "echo", "echo-message", "away-notify")
    last, l_out = irc_connect(factory, "last")
    for proto in (first, quiet, echo, last):
        proto.dataReceived(b"JOIN #r\r\n")
    outs = (f_out, q_out, e_out, l_out)
    for out in outs:
        out.clear()
    quiet.dataReceived(b"PRIVMSG #r :hi\r\n")
    echo.dataReceived(b"PRIVMSG #r :ho\r\n")
    hi = f":quiet!~quiet@{quiet.host} PRIVMSG #r :hi"
    ho = f":echo!~echo@{echo.host} PRIVMSG #r :ho"
    assert [lines(out) for out in outs] == [[hi, ho], [ho], [hi, ho], [hi, ho]]
    first.dataReceived(b"AWAY :lunch\r\nPART #r\r\n")
    for out in outs:
        out.clear()
    first.dataReceived(b"JOIN #r\r\n")
    join = f":first!~first@{first.host} JOIN #r"
    away = f":first!~first@{first.host} AWAY :lunch"
    mine = lines(f_out)
    assert mine[0] == join and away not in mine  # no AWAY about oneself
    assert [lines(out) for out in outs[1:]] == [[join], [join, away], [join]]


def test_server_time_asked_for_later_tags_the_next_broadcast(clock: Clock) -> None:
    """CAP REQ server-time after registration: the next PRIVMSG has @time=."""
    factory = make_factory(clock)
    carol, _ = irc_connect(factory, "carol")  # first in the room, so that
    alice, a_out = irc_connect(factory, "alice")  # alice is not the first
    bob, _ = irc_connect(factory, "bob")  # member a broadcast reaches
    for proto in (carol, alice, bob):
        proto.dataReceived(b"JOIN #r\r\n")
    a_out.clear()
    bob.dataReceived(b"PRIVMSG #r :plain\r\n")
    alice.dataReceived(b"CAP REQ :server-time\r\n")
    bob.dataReceived(b"PRIVMSG #r :tagged\r\n")
    alice.dataReceived(b"CAP REQ :-server-time\r\n")
    bob.dataReceived(b"PRIVMSG #r :plain again\r\n")
    got = lines(a_out)
    assert got[0].startswith(":bob!") and got[0].endswith(" :plain")
    assert got[1] == ":chatd CAP alice ACK :server-time"
    assert got[2].startswith("@time=") and got[2].endswith(" :tagged")
    assert got[3] == ":chatd CAP alice ACK :-server-time"
    assert got[4].startswith(":bob!") and got[4].endswith(" :plain again")


def test_nick_taken_across_doors(clock: Clock) -> None:
    """A nickname a line user holds gets 433 on IRC; an IRC nick is taken for line."""
    factory = make_factory(clock)
    connect(factory, "carol")
    proto, out = irc_open(factory)
    proto.dataReceived(b"NICK Carol\r\n")
    assert lines(out) == [":chatd 433 * Carol :Nickname is already in use"]
    irc_connect(factory, "dave")
    line_proto, line_out = connect(factory, "erin")
    line_proto.dataReceived(b"/nick DAVE\r\n")
    assert lines(line_out)[0].startswith("ERR nick-taken")


def test_too_long_line_is_417_and_connection_stays(clock: Clock) -> None:
    """A line over --max-line gets 417; the next line is handled."""
    factory = make_factory(clock, max_line=100)
    proto, out = irc_connect(factory, "alice")
    proto.dataReceived(b"PRIVMSG #x :" + b"a" * 200 + b"\r\nPING :ok\r\n")
    assert lines(out) == [
        ":chatd 417 alice :Input line was too long",
        ":chatd PONG chatd :ok",
    ]


def test_bad_utf8_is_fail_and_connection_stays(clock: Clock) -> None:
    """A line that is not UTF-8 gets FAIL * INVALID_UTF8; the connection stays."""
    factory = make_factory(clock)
    proto, out = irc_connect(factory, "alice")
    proto.dataReceived(b"PRIVMSG #x :\xff\xfe\r\nPING :ok\r\n")
    got = lines(out)
    assert got[0].startswith(":chatd FAIL * INVALID_UTF8 :")
    assert got[1] == ":chatd PONG chatd :ok"
    assert not out.disconnecting


def test_registration_timeout(clock: Clock) -> None:
    """No NICK/USER within --register-timeout: ERROR and close."""
    factory = make_factory(clock, register_timeout=10.0)
    proto, out = irc_open(factory)
    clock.advance(10)
    assert lines(out) == [f"ERROR :Closing link: {proto.host} (Registration timeout)"]
    assert out.disconnecting


def test_silent_client_is_pinged_then_dropped(clock: Clock) -> None:
    """Silence: the server PINGs; no answer: the others see QUIT ... Ping timeout."""
    factory = make_factory(clock)
    carol, c_out = connect(factory, "carol")
    alice, a_out = irc_connect(factory, "alice")
    alice.dataReceived(b"JOIN #lobby\r\n")
    c_out.clear(), a_out.clear()
    interval = irc_server(factory).ping_interval
    clock.advance(interval)  # a line came during the first interval
    assert lines(a_out) == []
    clock.advance(interval)
    assert lines(a_out) == ["PING :chatd"]
    alice.dataReceived(b"PONG :chatd\r\n")
    clock.advance(interval)
    clock.advance(interval)
    assert lines(a_out) == ["PING :chatd"]
    clock.advance(interval)
    assert lines(a_out)[-1].endswith("(Ping timeout: 120 seconds)")
    assert lines(c_out) == ["QUIT alice Ping timeout: 120 seconds"]


def test_idle_timeout_holds_on_irc(clock: Clock) -> None:
    """--idle-timeout closes a silent registered IRC client, in IRC's words."""
    factory = make_factory(clock, idle_timeout=30.0)
    proto, out = irc_connect(factory, "alice")
    clock.advance(30)
    assert lines(out)[-1].endswith("(Idle for 30 seconds)")
    assert out.disconnecting


def test_max_clients_refusal_is_irc_error(clock: Clock) -> None:
    """Past --max-clients an IRC client is told ERROR and closed."""
    factory = make_factory(clock, max_clients=1)
    connect(factory, "carol")
    address = IPv4Address("TCP", "127.0.0.9", 40999)
    proto = factory.door(IrcConnection).buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    proto.makeConnection(transport)
    assert transport.value().startswith(b"ERROR :Closing link: (the server is full")
    assert transport.disconnecting


def test_flood_is_queued_with_one_notice(clock: Clock) -> None:
    """Past the burst, lines wait; the client is told once, in a NOTICE."""
    factory = make_factory(clock, flood_burst=3, flood_rate=1.0)
    proto, out = irc_open(factory)
    proto.dataReceived(b"PING a\r\nPING b\r\nPING c\r\nPING d\r\nPING e\r\n")
    got = lines(out)
    assert got[:3] == [
        ":chatd PONG chatd :a",
        ":chatd PONG chatd :b",
        ":chatd PONG chatd :c",
    ]
    assert got[3].startswith(":chatd NOTICE * :You are sending too fast")
    clock.advance(1)
    clock.advance(1)
    assert lines(out) == [":chatd PONG chatd :d", ":chatd PONG chatd :e"]


SOPEL_CAPS = (
    "account-notify away-notify cap-notify chghost echo-message extended-join "
    "message-tags multi-prefix server-time userhost-in-names account-tag"
).split()


def test_sopel_registers_without_a_flood_notice_or_a_delay(clock: Clock) -> None:
    """Sopel's handshake: CAP LS 302, NICK, USER, 11 CAP REQ, CAP END; then JOINs.

    15 registration lines at the default burst of 10: all pass at once, no
    NOTICE about sending too fast, and the joins after it at once too.
    """
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    proto, out = irc_open(factory)
    proto.dataReceived(b"CAP LS 302\r\nNICK sopel\r\nUSER sopel 0 * :Sopel\r\n")
    proto.dataReceived(b"".join(b"CAP REQ :%s\r\n" % c.encode() for c in SOPEL_CAPS))
    proto.dataReceived(b"CAP END\r\n")
    got = lines(out)
    assert proto.user is not None and any(" 001 sopel " in g for g in got)
    assert not [g for g in got if "too fast" in g]
    proto.dataReceived(b"".join(b"JOIN #r%d\r\n" % i for i in range(5)))
    got = lines(out)
    assert len([g for g in got if " JOIN " in g]) == 5
    assert not [g for g in got if "too fast" in g]


def test_registration_lines_are_free_only_up_to_their_allowance(clock: Clock) -> None:
    """Past REGISTRATION_LINES, and for other commands, lines cost the flood budget."""
    factory = make_factory(clock, flood_burst=3, flood_rate=1.0)
    proto, out = irc_open(factory)
    proto.dataReceived(b"CAP LS 302\r\n" * (REGISTRATION_LINES + 3))
    assert not [g for g in lines(out) if "too fast" in g]
    proto.dataReceived(b"CAP LS 302\r\n")
    assert [g for g in lines(out) if "too fast" in g]


def test_quit_says_error_after_the_answers_still_to_come(clock: Clock) -> None:
    """An answer on its way (a history read, a SASL check), then QUIT: the answer,
    then ERROR and the close."""
    factory = make_factory(clock)
    proto, out = irc_connect(factory, "alice")
    answer: Deferred[bytes] = Deferred()
    proto.send_later(answer, b"")
    proto.dataReceived(b"QUIT :bye\r\n")
    assert lines(out) == [] and not out.disconnecting
    answer.callback(b":chatd NOTICE alice :the answer\r\n")
    got = lines(out)
    assert got[0] == ":chatd NOTICE alice :the answer"
    assert got[1].startswith(":alice!") and got[1].endswith(" QUIT :Quit: bye")
    assert got[2].startswith("ERROR :Closing link") and out.disconnecting


def test_shutdown_says_error_to_irc(clock: Clock) -> None:
    """close_all: IRC clients get ERROR with the reason."""
    factory = make_factory(clock)
    proto, out = irc_connect(factory, "alice")
    factory.close_all("The server is shutting down.")
    assert lines(out)[-1].endswith("(The server is shutting down.)")


def test_account_tag_members_beside_the_shared_path(clock: Clock) -> None:
    """An account-tag member is sent an identified speaker's message with the
    tag, members without it the shared bytes; one render for the broadcast."""
    factory = make_factory(clock)
    tagged, t_out = irc_connect(factory, "tagged", "account-tag")
    plain, p_out = irc_connect(factory, "plain")
    speaker, s_out = irc_connect(factory, "speaker")
    for proto in (tagged, plain, speaker):
        proto.dataReceived(b"JOIN #r\r\n")
    assert speaker.user is not None
    speaker.user.account = "spk"
    for out in (t_out, p_out, s_out):
        out.clear()
    renderer = irc_server(factory).renderer
    before = renderer.renders
    speaker.dataReceived(b"PRIVMSG #r :hello\r\n")
    assert renderer.renders == before + 1
    source = f":speaker!~speaker@{speaker.user.host}"
    assert lines(t_out) == [f"@account=spk {source} PRIVMSG #r :hello"]
    assert lines(p_out) == [f"{source} PRIVMSG #r :hello"]
    assert lines(s_out) == []


def test_a_closed_irc_connection_is_freed_without_the_cycle_collector() -> None:
    """The IRC door renders with a bound method of the connection (its render,
    kept in a slot for broadcasts): connectionLost drops it, so nothing but log
    events refers to a closed connection (see tests/test_hostile.py)."""
    factory = make_factory(Clock())
    gc.disable()
    try:
        proto, transport = irc_connect(factory, "alice")
        proto.dataReceived(b"JOIN #r\r\n")
        alive = weakref.ref(proto)
        proto.connectionLost(Failure(ConnectionDone()))
        del proto, transport
        found = alive()
        holders = [
            holder
            for holder in gc.get_referrers(found)
            if not isinstance(holder, Logger | types.FrameType)
            and not (isinstance(holder, dict) and "log_source" in holder)
        ]
        del found
        assert holders == []
    finally:
        gc.enable()


def test_a_registered_nickname_says_how_each_door_identifies(clock: Clock) -> None:
    """IRC is told /msg NickServ IDENTIFY, the line door /identify: each its own.

    Found trying the README: both were told both, and each door had only one
    (IRC answered /identify with 421, the line door /msg NickServ with no-such-nick).
    """
    factory = make_factory(clock)
    for name in ("zed", "yan"):
        factory.accounts.store.save_account(name, AccountRecord(name, "x", 0))
    proto, out = irc_open(factory)
    proto.dataReceived(b"NICK zed\r\nUSER zed 0 * :zed\r\n")
    clock.advance(1)
    (notice,) = [line for line in lines(out) if "registered nickname" in line]
    assert "(/msg NickServ IDENTIFY <password>);" in notice
    line_proto, line_out = open_connection(factory, 40999, "127.9.9.9")
    line_proto.dataReceived(b"yan\r\n")
    clock.advance(1)
    (info,) = [line for line in lines(line_out) if "registered nickname" in line]
    assert info.startswith("INFO yan is a registered nickname")
    assert "(/identify <password>);" in info


def test_created_says_when_the_irc_listener_started_not_its_first_client() -> None:
    """003 RPL_CREATED names the daemon's start (when --irc is served), not the
    moment the first IRC client happened to connect an hour later."""
    from datetime import UTC, datetime

    from chatd.irc import entry

    clock = Clock()
    clock.advance(1_796_082_601)
    factory = make_factory(clock)
    entry.serve(factory, {})
    clock.advance(3600)
    proto, out = irc_open(factory)
    proto.dataReceived(b"NICK alice\r\nUSER alice 0 * :alice\r\n")
    (created,) = [text for text in lines(out) if " 003 " in text]
    started = datetime.fromtimestamp(1_796_082_601, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert created.endswith(f"This server was created {started} UTC")
