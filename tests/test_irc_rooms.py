"""The IRC door's words for rooms people run and for accounts, with fakes.

FakeIrc sessions (chatd.irc.commands over no transport) on one server with
accounts hashing inline: TOPIC, MODE, KICK, INVITE, NAMES and WHO prefixes,
KILL, SASL PLAIN, NickServ, OPER, and the account capabilities.
"""

from __future__ import annotations

import base64

from irc_helpers import ACCOUNTS, FakeIrc, make_server, registered

from chatd.irc.server import IrcServer


def joined(server: IrcServer, nick: str, room: str, *caps: str) -> FakeIrc:
    session = registered(server, nick, *caps)
    session.line(f"JOIN {room}")
    session.lines()
    return session


def test_topic_set_and_shown_with_332_333() -> None:
    """TOPIC #a :text reaches the room; a joiner gets 332 and 333 before NAMES;
    TOPIC #a answers 332/333 (331 when none)."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    alice.line("TOPIC #a")
    assert alice.commands() == ["331"]
    alice.line("TOPIC #a :ship it")
    assert alice.lines() == [":alice!~alice@127.0.0.1 TOPIC #a :ship it"]
    bob = registered(server, "bob")
    bob.line("JOIN #a")
    out = bob.lines()
    assert out[1] == ":irc.test 332 bob #a :ship it"
    assert out[2] == ":irc.test 333 bob #a alice 1700000000"
    assert [line.split(" ")[1] for line in out[3:]] == ["353", "366"]


def test_topic_kept_to_operators_with_plus_t() -> None:
    """+t: a plain member's TOPIC is 482."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    bob = joined(server, "bob", "#a")
    alice.line("MODE #a +t")
    bob.lines()
    bob.line("TOPIC #a :mine now")
    assert bob.commands() == ["482"]


def test_mode_query_changes_and_ban_list() -> None:
    """MODE #a: 324 and 329; +int in one MODE line; +b shows in 367/368."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    alice.line("MODE #a +int")
    assert alice.lines() == [":alice!~alice@127.0.0.1 MODE #a +it"]
    alice.line("MODE #a +k-i secret")
    assert alice.lines() == [":alice!~alice@127.0.0.1 MODE #a +k-i secret"]
    alice.line("MODE #a")
    assert alice.lines() == [
        ":irc.test 324 alice #a +knt secret",
        ":irc.test 329 alice #a 1700000000",
    ]
    alice.line("MODE #a +b bob!*@*")
    alice.lines()
    alice.line("MODE #a +b")
    assert alice.lines() == [
        ":irc.test 367 alice #a bob!*@* alice 1700000000",
        ":irc.test 368 alice #a :End of channel ban list",
    ]


def test_mode_errors_have_the_numerics_clients_expect() -> None:
    """482 not an operator; 441 not in the room; 401 nobody; 696 a bad key or
    limit (the key never echoed); 472 an unknown letter; 442 not a member."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    bob = joined(server, "bob", "#a")
    registered(server, "carol")
    alice.lines()
    bob.line("MODE #a +o bob")
    assert bob.commands() == ["482"]
    alice.line("MODE #a +o carol")
    assert alice.lines() == [
        ":irc.test 441 alice carol #a :carol is not in #a",
    ]
    alice.line("MODE #a +o nobody")
    assert alice.commands() == ["401"]
    alice.line("MODE #a +k :two words")
    (reply,) = alice.lines()
    assert reply.startswith(":irc.test 696 alice #a k * :")
    alice.line("MODE #a +l 0")
    assert alice.lines()[0].startswith(":irc.test 696 alice #a l 0 :")
    alice.line("MODE #a +z")
    assert alice.commands() == ["472"]
    alice.line("MODE #lobby +m")
    assert alice.commands() == ["442"]


def test_names_and_who_show_prefixes() -> None:
    """@ for operators, + for voiced; multi-prefix shows both."""
    server = make_server()
    alice = joined(server, "alice", "#a", "multi-prefix")
    bob = joined(server, "bob", "#a")
    alice.line("MODE #a +v alice")
    alice.lines(), bob.lines()
    alice.line("NAMES #a")
    assert alice.lines()[0] == ":irc.test 353 alice = #a :@+alice bob"
    bob.line("NAMES #a")
    assert bob.lines()[0] == ":irc.test 353 bob = #a :@alice bob"
    bob.line("WHO #a")
    assert bob.lines()[0].split(" ")[8] == "H@"


def test_kick_with_reason_and_default_and_several() -> None:
    """KICK #a bob :why; KICK without a reason uses the kicker's nick; KICK #a
    b,c kicks both, one KICK line each."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    bob = joined(server, "bob", "#a")
    joined(server, "carol", "#a")
    dave = joined(server, "dave", "#a")
    bob.lines()
    alice.line("KICK #a bob :bye now")
    assert bob.lines() == [":alice!~alice@127.0.0.1 KICK #a bob :bye now"]
    dave.lines()
    alice.line("KICK #a carol,dave")
    assert dave.lines() == [
        ":alice!~alice@127.0.0.1 KICK #a carol :alice",
        ":alice!~alice@127.0.0.1 KICK #a dave :alice",
    ]


def test_invite_and_invite_only() -> None:
    """INVITE: 341 to the inviter, INVITE to the invitee; +i needs it; 443 for
    someone already in; 401 for nobody."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    bob = registered(server, "bob")
    alice.line("MODE #a +i")
    bob.line("JOIN #a")
    assert bob.commands() == ["473"]
    alice.lines()
    alice.line("INVITE bob #a")
    assert alice.lines() == [":irc.test 341 alice bob #a"]
    assert bob.lines() == [":alice!~alice@127.0.0.1 INVITE bob #a"]
    bob.line("JOIN #a")
    assert bob.commands()[0] == "JOIN"
    alice.lines()
    alice.line("INVITE bob #a")
    assert alice.commands() == ["443"]
    alice.line("INVITE nobody #a")
    assert alice.commands() == ["401"]


def test_join_refusals_with_keys_and_bans() -> None:
    """475 without the key, 474 banned, 471 full; JOIN #a key joins."""
    server = make_server()
    alice = joined(server, "alice", "#a")
    bob = registered(server, "bob")
    alice.line("MODE #a +k beer")
    bob.line("JOIN #a")
    assert bob.commands() == ["475"]
    bob.line("JOIN #a bees")
    assert bob.commands() == ["475"]
    bob.line("JOIN #a beer")
    assert bob.commands()[0] == "JOIN"
    alice.line("MODE #a +b carol")
    carol = registered(server, "carol")
    carol.line("JOIN #a beer")
    assert carol.commands() == ["474"]


def test_sasl_plain_logs_in_before_registration() -> None:
    """CAP REQ sasl, AUTHENTICATE PLAIN, the response: 900 and 903, and the
    user is registered already identified; a wrong one is 904."""
    server = make_server()
    owner = registered(server, "jilles")
    owner.line("PRIVMSG NickServ :REGISTER sesame-1 foo@example.org")
    assert "registered to you" in owner.lines()[-1]
    owner.line("QUIT")
    client = FakeIrc(server)
    client.line("CAP LS 302")
    client.line("CAP REQ :sasl")
    client.lines()
    client.line("AUTHENTICATE PLAIN")
    assert client.lines() == ["AUTHENTICATE +"]
    wrong = base64.b64encode(b"jilles\0jilles\0nope").decode()
    client.line(f"AUTHENTICATE {wrong}")
    assert client.commands() == ["904"]
    client.line("AUTHENTICATE PLAIN")
    client.lines()
    right = base64.b64encode(b"\0jilles\0sesame-1").decode()
    client.line(f"AUTHENTICATE {right}")
    assert client.commands() == ["900", "903"]
    client.line("NICK bar")
    client.line("USER bar 0 * :Bar")
    client.line("CAP END")
    assert client.user is not None and client.user.account == "jilles"


def test_nickserv_identify_and_reservation_notice() -> None:
    """Taking a registered nick: a NOTICE from NickServ after the welcome;
    PRIVMSG NickServ :IDENTIFY <password> gives 900 and a NOTICE."""
    server = make_server()
    owner = registered(server, "alice")
    owner.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    owner.line("QUIT")
    session = FakeIrc(server)
    session.line("NICK alice")
    session.line("USER alice 0 * :Alice")
    out = session.lines()
    assert out[-1].startswith(":NickServ!NickServ@services NOTICE alice :alice is a")
    session.line("PRIVMSG NickServ :IDENTIFY s3cret-pw")
    assert session.commands() == ["900", "NOTICE"]
    assert session.user is not None and session.user.account == "alice"
    assert ACCOUNTS[server].is_registered("ALICE")


def test_nickserv_aliases() -> None:
    """NS, NICKSERV and IDENTIFY do what PRIVMSG NickServ does (irssi's /identify)."""
    server = make_server()
    owner = registered(server, "alice")
    owner.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    owner.line("QUIT")
    for command in (
        "IDENTIFY s3cret-pw",
        "NS IDENTIFY s3cret-pw",
        "NICKSERV :IDENTIFY alice s3cret-pw",
    ):
        session = FakeIrc(server)
        session.line("NICK alice")
        session.line("USER alice 0 * :Alice")
        session.lines()
        session.line(command)
        assert session.commands() == ["900", "NOTICE"], command
        assert session.user is not None and session.user.account == "alice"
        session.line("QUIT")
    bob = registered(server, "bob")
    bob.line("NS HELP")
    assert bob.lines()[0].startswith(":NickServ!NickServ@services NOTICE bob :")
    bob.line("IDENTIFY")
    assert bob.commands() == ["461"]


def test_oper_needs_a_listed_account_and_its_password() -> None:
    """OPER name password: 491 for an account not in --operators, 464 for a
    wrong password, 381 and MODE +o for the right one."""
    server = make_server()
    server.chat.server_operators = frozenset({"root"})
    owner = registered(server, "root")
    owner.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    owner.line("QUIT")
    bob = registered(server, "bob")
    bob.line("OPER alice whatever")
    assert bob.commands() == ["491"]
    bob.line("OPER root wrong")
    assert bob.commands() == ["464"]
    bob.line("OPER root s3cret-pw")
    assert bob.lines() == [
        ":irc.test 381 bob :You are now an IRC operator",
        ":bob MODE bob +o",
    ]
    bob.line("MODE bob")
    assert bob.lines() == [":irc.test 221 bob +o"]


def test_account_capabilities() -> None:
    """extended-join shows the account and realname; account-tag tags what an
    identified user sends; account-notify tells when someone identifies."""
    server = make_server()
    watcher = joined(server, "watcher", "#a", "extended-join", "account-tag")
    notified = joined(server, "notified", "#a", "account-notify")
    bob = registered(server, "bob")
    watcher.lines()
    bob.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    assert notified.lines() == []  # not in a room with bob yet
    bob.line("JOIN #a")
    join = watcher.lines()[0]
    assert join == "@account=bob :bob!~bob@127.0.0.1 JOIN #a bob :Bob Example"
    bob.line("PRIVMSG #a :hi")
    assert watcher.lines() == ["@account=bob :bob!~bob@127.0.0.1 PRIVMSG #a :hi"]
    carol = joined(server, "carol", "#a")
    notified.lines()
    carol.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    assert notified.lines() == [":carol!~carol@127.0.0.1 ACCOUNT carol"]


def test_kill_by_a_server_operator() -> None:
    """KILL without OPER: 481; after it, the victim is closed with the reason."""
    server = make_server()
    server.chat.server_operators = frozenset({"root"})
    root = registered(server, "root")
    root.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    root.lines()
    bob = registered(server, "bob")
    bob.line("KILL root :no")
    assert bob.commands() == ["481"]
    root.line("KILL bob :spam")
    assert bob.closed == "Killed by root: spam"


def test_account_variants_beside_tag_variants_render_once() -> None:
    """extended-join and account-tag clients with server-time get the time
    tag before the account tag; two such clients share one bytes object, and
    the broadcast is still spelled once (the integration of issues 13 and 15)."""
    server = make_server()
    both = [
        joined(server, f"w{i}", "#a", "server-time", "extended-join", "account-tag")
        for i in range(2)
    ]
    plain = joined(server, "plain", "#a")
    bob = registered(server, "bob")
    bob.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    for client in [*both, plain]:
        client.out.clear()
    renderer = server.renderer
    before = renderer.renders
    bob.line("JOIN #a")
    assert renderer.renders == before + 1
    stamp = "time=2023-11-14T22:13:20.250Z"
    for client in both:
        assert client.lines() == [
            f"@{stamp};account=bob :bob!~bob@127.0.0.1 JOIN #a bob :Bob Example"
        ]
    assert plain.lines() == [":bob!~bob@127.0.0.1 JOIN #a"]
    for client in [*both, plain]:
        client.out.clear()
    bob.line("PRIVMSG #a :hi")
    assert renderer.renders == before + 2
    assert both[0].out[-1] is both[1].out[-1]
    assert plain.lines() == [":bob!~bob@127.0.0.1 PRIVMSG #a :hi"]
    line = both[0].lines()[-1]
    assert line.startswith("@time=") and ";account=bob " in line, line
