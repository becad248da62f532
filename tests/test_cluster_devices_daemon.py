"""One account's connections on two real nodes of a cluster (docs/cluster.md,
Several devices on a cluster): two `twistd -n chatd --redis ...` on one test
redis-server, line clients over loopback sockets.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from daemon import LineClient
from redis_server import RedisServer
from test_cluster_daemon import client, nodes
from test_daemon_accounts import CHEAP, LOOPBACK, PASSWORD, sync
from test_irc_daemon import IrcClient


def talk(who: LineClient) -> str:
    """The next MSG or PRIV line who is sent (others skipped)."""
    while not (text := who.read_line()).startswith(("MSG ", "PRIV ")):
        assert text or who.buffer, "closed"
    return text


def test_a_laptop_on_one_node_and_a_phone_on_another_are_one_user(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """alice registers on node a (the laptop) and logs in at the prompt on node
    b (the phone): WELCOME back and JOIN #lobby; bob, on b, sees no JOIN and
    /who lists alice once on both nodes. bob's room message and his PRIV to
    alice reach the laptop and the phone; the phone's PRIV to bob is echoed to
    the laptop too. The laptop closes: bob sees nothing; the phone closes: bob
    sees QUIT."""
    with nodes(redis_server, tmp_path, 2, *CHEAP) as (a, b):
        laptop = client(a, "alice")
        laptop.send(f"/register {PASSWORD} {PASSWORD}")
        laptop.expect("INFO alice is registered to you")
        bob = client(b, "bob")
        laptop.expect("JOIN #lobby bob")
        sync(bob)
        phone = LineClient.tcp(b.ports[LOOPBACK])
        phone.expect("NICK ")
        phone.send(f"/identify alice {PASSWORD}")
        assert phone.expect("WELCOME alice ").endswith("one of 2 of your account.")
        assert phone.read_line() == "JOIN #lobby alice"
        for who in (bob, laptop):
            who.send("/who")
            assert who.expect("USERS ") == "USERS #lobby alice bob"
        bob.send("hello both")
        bob.send("/msg alice just for you")
        phone.send("/msg bob from my phone")
        expected = [
            "MSG #lobby bob hello both",
            "PRIV bob alice just for you",
            "PRIV alice bob from my phone",
        ]
        for who in (laptop, phone, bob):
            got = [talk(who) for _ in expected]
            assert sorted(got) == sorted(expected), got
        laptop.send("/quit")
        laptop.expect("BYE ")
        phone.send("still here")
        assert bob.expect("MSG ") == "MSG #lobby alice still here"
        phone.send("/quit")
        phone.expect("BYE ")
        assert bob.expect("QUIT ").startswith("QUIT alice ")
        bob.send("/who")
        assert bob.expect("USERS ") == "USERS #lobby bob"


def test_an_always_on_user_survives_a_restart_of_every_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """alice (laptop on a, phone on b) turns always-on on and is in #dev; both
    nodes stop. Started again: the first node brings her back from Redis, in
    #lobby and #dev, away; bob, on the second, sees her there and his message
    to her is kept; her phone logs in on the second node and is attached."""
    with nodes(redis_server, tmp_path, 2, *CHEAP) as (a, b):
        laptop = client(a, "alice")
        laptop.send(f"/register {PASSWORD} {PASSWORD}")
        laptop.expect("INFO alice is registered to you")
        laptop.send("/join #dev")
        laptop.expect("JOIN #dev alice")
        phone = LineClient.tcp(b.ports[LOOPBACK])
        phone.expect("NICK ")
        phone.send(f"/identify alice {PASSWORD}")
        phone.expect("WELCOME alice ")
        phone.send("/always-on on")
        phone.expect("INFO Always-on is on")
        b.terminate()
        phone.expect("BYE ")
        laptop.send("/who #dev")  # her phone's node left; she stays
        assert laptop.expect("USERS ") == "USERS #dev alice"
        a.terminate()
        laptop.expect("BYE ")
    with nodes(redis_server, tmp_path, 2, *CHEAP) as (a, b):
        a.wait_for_log(re.compile("1 always-on users are back"))
        bob = client(b, "bob")
        bob.send("/join #dev")
        bob.expect("JOIN #dev bob")
        bob.send("/who #dev")
        assert bob.expect("USERS ") == "USERS #dev alice bob"
        bob.send("/msg alice are you there")
        assert bob.expect("AWAY alice ").startswith("AWAY alice not connected")
        phone = LineClient.tcp(b.ports[LOOPBACK])
        phone.expect("NICK ")
        phone.send(f"/identify alice {PASSWORD}")
        phone.expect("WELCOME alice Welcome back")
        assert [phone.read_line(), phone.read_line()] == [
            "JOIN #lobby alice",
            "JOIN #dev alice",
        ]
        # Before the back line: the AWAY lines of bob's /join and /who (docs/
        # protocol.md, Away on join) and of his /msg; each says not connected.
        back = bob.expect("AWAY alice")
        while back != "AWAY alice ":
            assert back.startswith("AWAY alice not connected")
            back = bob.expect("AWAY alice")
        phone.send("/history bob")
        assert phone.expect("HISTORY bob").endswith("PRIV bob are you there")


def test_an_irc_client_with_sasl_on_another_node_attaches(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """alice's line client is on node a; an IRC client on node b logs in with
    SASL PLAIN (CAP END sent at once, before the check ends): 001 as alice,
    JOIN #lobby; bob (line, on b) sees no JOIN, and his message reaches both."""
    irc = ("--irc", "tcp:0:interface=127.0.0.1")
    with nodes(redis_server, tmp_path, 2, *CHEAP, *irc) as (a, b):
        laptop = client(a, "alice")
        laptop.send(f"/register {PASSWORD} {PASSWORD}")
        laptop.expect("INFO alice is registered to you")
        bob = client(b, "bob")
        sync(bob)
        phone = IrcClient.connect(b.ports["irc tcp:0:interface=127.0.0.1"])
        plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        for line in (
            "CAP LS 302",
            "CAP REQ :sasl",
            "NICK phone",
            "USER p 0 * :Phone",
            "AUTHENTICATE PLAIN",
            f"AUTHENTICATE {plain}",
            "CAP END",
        ):
            phone.send(line)
        phone.expect_irc("903")
        assert phone.expect_irc("001").split(" ")[2] == "alice"
        assert phone.expect_irc("JOIN").endswith(" JOIN #lobby")
        bob.send("/who")
        assert bob.expect("USERS ") == "USERS #lobby alice bob"
        bob.send("both of you")
        assert laptop.expect("MSG ") == "MSG #lobby bob both of you"
        assert phone.expect_irc("PRIVMSG").endswith("PRIVMSG #lobby :both of you")
        assert not any(line.startswith(("JOIN", "QUIT")) for line in sync(bob))
