"""Bans, invitations and who a user is, the same on every door and node (issue 22).

Ban lists bounded in bytes as well as count, and a MODE applying no more
changes with arguments than ISUPPORT's MODES says (item 11); an invitation
that belongs to the person and expires (item 13); the peer's address as the
host every door gives, so that one ban by address refuses a line, a web and
an IRC client (item 14).
"""

from __future__ import annotations

import json
from itertools import count

from cluster_fakes import FakeLog, know_each_other, make_node, pump_all
from helpers import RecordingClient, connect, lines, make_factory, open_connection
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from web_helpers import FakeBrowser, make_site

from chatd.cluster import snapshot
from chatd.factory import ChatFactory
from chatd.irc.protocol import IrcConnection
from chatd.irc.render import user_at_host
from chatd.irc.server import isupport_tokens
from chatd.model.room_rules import (
    INVITE_SECONDS,
    MAX_BAN_BYTES,
    MAX_INVITES,
    MAX_MODE_ARGS,
)
from chatd.protocol import LineConnection

ADDRESS = "192.0.2.9"  # the banned person's address (TEST-NET-1)
_ports = count(47001)
# The flood gate is off in these tests: they send many commands at once.


def line_from(
    factory: ChatFactory, nick: str, host: str = ADDRESS
) -> tuple[LineConnection, StringTransport]:
    """A line client from host, registered as nick; its output cleared."""
    proto, out = open_connection(factory, next(_ports), host)
    proto.dataReceived(nick.encode() + b"\r\n")
    out.clear()
    return proto, out


def irc_from(
    factory: ChatFactory, nick: str, host: str = ADDRESS
) -> tuple[IrcConnection, StringTransport]:
    """An IRC client from host, registered as nick; its output cleared."""
    address = IPv4Address("TCP", host, next(_ports))
    proto = factory.door(IrcConnection).buildProtocol(address)
    assert isinstance(proto, IrcConnection)
    out = StringTransport(peerAddress=address)
    proto.makeConnection(out)
    proto.dataReceived(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    assert proto.user is not None, out.value()
    out.clear()
    return proto, out


def irc_lines(out: StringTransport) -> list[str]:
    """The IRC lines written so far (without their tags), cleared."""
    return [line.split(" ", 1)[1] if line[0] == "@" else line for line in lines(out)]


def room_with_operator(factory: ChatFactory, room: str) -> LineConnection:
    """A line user (from 127.0.x.y) who made room and runs it."""
    op, out = connect(factory, "op")
    op.dataReceived(f"/join {room}\r\n".encode())
    out.clear()
    return op


# -- item 14: one identity, whatever the door --------------------------------


def test_one_ban_by_address_refuses_a_line_a_web_and_an_irc_client() -> None:
    """/ban *!*@192.0.2.9: a line user, a web user and an IRC user from that
    address are all refused at /join (ERR banned; IRC 474)."""
    factory = make_factory(flood_rate=0)
    op = room_with_operator(factory, "#den")
    op.dataReceived(f"/ban *!*@{ADDRESS}\r\n".encode())
    line_user, line_out = line_from(factory, "lina")
    line_user.dataReceived(b"/join #den\r\n")
    assert lines(line_out)[0].startswith(
        f"ERR banned you are banned from #den (*!*@{ADDRESS})"
    )
    web = FakeBrowser(make_site(factory), host=ADDRESS, port=next(_ports))
    web.register("wendy")
    web.send("/join #den")
    assert web.lines()[0].startswith("ERR banned you are banned from #den")
    irc, irc_out = irc_from(factory, "ira")
    irc.dataReceived(b"JOIN #den\r\n")
    assert irc_lines(irc_out)[0].startswith(":chatd 474 ira #den ")
    assert list(factory.chat.rooms["#den"].members) == ["op"]


def test_irc_shows_every_doors_users_at_their_address() -> None:
    """WHOIS and a message's source show a line and a web user at the address
    they connected from, as an IRC user's: nick!nick@address."""
    factory = make_factory(flood_rate=0)
    line_user, _ = line_from(factory, "lina", "192.0.2.10")
    web = FakeBrowser(make_site(factory), host="192.0.2.11", port=next(_ports))
    web.register("wendy")
    irc, out = irc_from(factory, "ira")
    irc.dataReceived(b"JOIN #lobby\r\nWHOIS lina\r\nWHOIS wendy\r\n")
    replies = [line for line in irc_lines(out) if " 311 " in line]
    assert replies == [
        ":chatd 311 ira lina lina 192.0.2.10 * :lina",
        ":chatd 311 ira wendy wendy 192.0.2.11 * :wendy",
    ]
    line_user.dataReceived(b"hello\r\n")
    assert ":lina!lina@192.0.2.10 PRIVMSG #lobby :hello" in irc_lines(out)


def test_users_of_another_node_carry_their_address() -> None:
    """On a cluster, a line user of node b has their host on node a too, and a
    ban by address set on node a refuses them on node b."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    a, b = make_node(log, "a", clock), make_node(log, "b", clock)
    know_each_other(a, b)
    op, op_out = a.connect("op")
    bob, b_out = b.connect("bob")
    pump_all(a, b)
    host = b.chat.users["bob"].host
    assert host.startswith("127.0.") and a.chat.users["bob"].host == host
    op.dataReceived(f"/join #den\r\n/ban #den *!*@{host}\r\n".encode())
    pump_all(a, b)
    lines(b_out)
    bob.dataReceived(b"/join #den\r\n")
    pump_all(a, b)
    assert lines(b_out)[0].startswith("ERR banned ")


# -- item 11: bounded ban lists, and MODES told truly -------------------------


def test_a_ban_list_is_bounded_in_bytes_as_well_as_count() -> None:
    """Bans of 200 characters: those that fit in MAX_BAN_BYTES are set, the next
    gets ERR ban-list-full (IRC 478), long before 100 bans."""
    factory = make_factory(flood_rate=0)
    op = room_with_operator(factory, "#den")
    out = op.transport
    assert isinstance(out, StringTransport)
    fits = MAX_BAN_BYTES // 200
    for i in range(fits):
        op.dataReceived(f"/ban *!*@{i:04d}{'h' * 192}\r\n".encode())
    assert len(factory.chat.rooms["#den"].rules.bans) == fits < 100
    out.clear()
    op.dataReceived(f"/ban *!*@more{'h' * 192}\r\n".encode())
    refusal = lines(out)
    assert refusal[0].startswith("ERR ban-list-full #den has bans of 8192 bytes")
    irc, irc_out = irc_from(factory, "ira")
    irc.dataReceived(b"JOIN #den\r\n")
    op.dataReceived(b"/op #den ira\r\n")
    irc_out.clear()
    mask = f"*!*@irc{'h' * 193}"
    irc.dataReceived(f"MODE #den +b {mask}\r\n".encode())
    assert irc_lines(irc_out)[0].startswith(f":chatd 478 ira #den {mask} :")
    assert len(factory.chat.rooms["#den"].rules.bans) == fits


def test_a_mode_applies_at_most_modes_changes_with_arguments() -> None:
    """ISUPPORT says MODES=6: MODE +bbbbbbbbbbm with ten masks sets six bans (the
    rest are left, as IRC servers do) and +m still applies. The line door's
    /mode takes six arguments at most already."""
    factory = make_factory(flood_rate=0)
    op = room_with_operator(factory, "#den")
    rules = factory.chat.rooms["#den"].rules
    irc, out = irc_from(factory, "ira")
    irc.dataReceived(b"JOIN #den\r\n")
    op.dataReceived(b"/op #den ira\r\n")
    masks = " ".join(f"irc{i}" for i in range(10))
    irc.dataReceived(f"MODE #den +bbbbbbbbbbm {masks}\r\n".encode())
    assert [ban.mask for ban in rules.bans] == [f"irc{i}" for i in range(6)]
    assert rules.has("m")
    assert f"MODES={MAX_MODE_ARGS}" in " ".join(isupport_tokens(factory.config))
    assert MAX_MODE_ARGS == 6


# -- item 13: an invitation belongs to the person ----------------------------


def invite_only_room() -> tuple[ChatFactory, LineConnection, Clock]:
    clock = Clock()
    factory = make_factory(clock, flood_rate=0)
    op = room_with_operator(factory, "#club")
    op.dataReceived(b"/mode #club +i\r\n")
    return factory, op, clock


def test_an_invitation_follows_its_invitee_through_a_rename() -> None:
    """bob is invited, renames to robert, and mallory takes the name bob: mallory
    is refused (ERR invite-only), robert gets in."""
    factory, op, _ = invite_only_room()
    bob, b_out = connect(factory, "bob")
    op.dataReceived(b"/invite bob #club\r\n")
    bob.dataReceived(b"/nick robert\r\n")
    mallory, m_out = connect(factory, "bob")
    mallory.dataReceived(b"/join #club\r\n")
    assert lines(m_out)[0].startswith("ERR invite-only ")
    lines(b_out)
    bob.dataReceived(b"/join #club\r\n")
    assert "JOIN #club robert" in lines(b_out)


def test_an_invitation_expires_after_an_hour() -> None:
    """An invitation not used within INVITE_SECONDS no longer lets one in."""
    factory, op, clock = invite_only_room()
    bob, b_out = connect(factory, "bob")
    op.dataReceived(b"/invite bob #club\r\n")
    clock.advance(INVITE_SECONDS + 1)
    lines(b_out)
    bob.dataReceived(b"/join #club\r\n")
    assert lines(b_out)[0].startswith("ERR invite-only ")


def test_a_rooms_invitations_are_bounded() -> None:
    """Inviting more people than MAX_INVITES keeps the most recent MAX_INVITES."""
    factory, op, _ = invite_only_room()
    chat = factory.chat
    guests = [chat.register(f"guest{i}", op) for i in range(MAX_INVITES + 20)]
    for guest in guests:
        op.dataReceived(f"/invite {guest.nick} #club\r\n".encode())
    invited = chat.rooms["#club"].rules.invited
    assert list(invited) == guests[20:]


def test_a_snapshot_keeps_invitations_by_user() -> None:
    """A node loading a snapshot has the invitation of bob (by uid) with its end."""
    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    a, b = make_node(log, "a", clock), make_node(log, "b", clock)
    know_each_other(a, b)
    op, _ = a.connect("op")
    b.connect("bob")
    pump_all(a, b)
    op.dataReceived(b"/join #club\r\n/mode #club +i\r\n/invite bob #club\r\n")
    pump_all(a, b)
    c = make_node(log, "c", clock)
    data = snapshot.dump(a.chat, ["a", "b"])
    snapshot.load(c.chat, json.loads(json.dumps(data)), c.node)
    assert snapshot.dump(c.chat, ["a", "b"]) == data
    invited = c.chat.rooms["#club"].rules.invited
    assert invited == {c.chat.users["bob"]: clock.seconds() + INVITE_SECONDS}


def test_an_ipv6_host_stays_one_irc_parameter() -> None:
    """A user from ::1 is ::1 to bans, and 0::1 in IRC's replies (a parameter
    starting with ':' would swallow the rest of the line)."""
    factory = make_factory(flood_rate=0)
    user = factory.chat.register("six", RecordingClient(), host="::1")
    assert user_at_host(user) == ("six", "0::1")
    op = room_with_operator(factory, "#den")
    op.dataReceived(b"/ban *!*@::1\r\n")
    assert factory.chat.rooms["#den"].rules.banned(user) is not None


def test_who_by_mask_matches_without_backtracking() -> None:
    """WHO *a*a*a*a*a*a*a*a*a*a*z answers at once (nobody), WHO a*X finds the user."""
    factory = make_factory(flood_rate=0)
    line_from(factory, "aaaaaaaaaaaaaaaaaaaX")
    irc, out = irc_from(factory, "ira")
    irc.dataReceived(b"WHO *a*a*a*a*a*a*a*a*a*a*z\r\nWHO a*X\r\n")
    replies = [line.split()[1] for line in irc_lines(out)]
    assert replies == ["315", "352", "315"]
