"""Several devices end to end: the real `twistd -n chatd`, and a restart.

docs/protocol.md, Devices (version 3): two line connections log in to one
account at the nickname prompt and are one user; an always-on user, its
rooms and what is said to it survive a restart of the server.
"""

from __future__ import annotations

import re
from pathlib import Path

from daemon import LineClient, running_daemon
from test_daemon_accounts import CHEAP, LOOPBACK, PASSWORD, line_user, sync


def log_in(port: int, nick: str) -> LineClient:
    client = LineClient.tcp(port)
    client.expect("NICK ")
    client.send(f"/identify {nick} {PASSWORD}")
    return client


def test_two_devices_and_always_on_survive_a_restart(tmp_path: Path) -> None:
    """alice registers on her laptop, logs in from her phone (WELCOME, JOIN
    #lobby, JOIN #dev), turns always-on on and closes both; bob sees no QUIT,
    only AWAY. Restart: alice is still in #lobby and #dev, away; bob's message
    to #dev is kept; the phone logs in and is attached to her."""
    args = ["--listen", LOOPBACK, *CHEAP]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        laptop = line_user(port, "alice")
        laptop.send(f"/register {PASSWORD} {PASSWORD}")
        laptop.expect("INFO alice is registered to you")
        laptop.send("/join #dev")
        bob = line_user(port, "bob")
        phone = log_in(port, "alice")
        assert phone.expect("WELCOME alice ").startswith("WELCOME alice Welcome back")
        assert [phone.read_line(), phone.read_line()] == [
            "JOIN #lobby alice",
            "JOIN #dev alice",
        ]
        phone.send("/always-on on")
        phone.expect("INFO Always-on is on")
        phone.send("/quit")
        phone.expect("BYE ")
        laptop.send("/quit")
        laptop.expect("BYE ")
        assert bob.expect("AWAY alice ").startswith("AWAY alice not connected")
        assert not any(line.startswith("QUIT") for line in sync(bob))
        daemon.terminate()  # a clean stop: everything is written
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        daemon.wait_for_log(re.compile("1 always-on users are back"))
        bob = line_user(port, "bob")
        bob.send("/join #dev")
        assert bob.expect("JOIN #dev bob") == "JOIN #dev bob"
        bob.send("/who #dev")
        assert bob.expect("USERS ") == "USERS #dev alice bob"
        bob.send("/msg alice are you there")
        assert bob.expect("AWAY alice ").startswith("AWAY alice not connected")
        bob.send("/join #dev")
        bob.send("said while she was away")
        sync(bob)
        phone = log_in(port, "alice")
        phone.expect("WELCOME alice Welcome back")
        assert [phone.read_line(), phone.read_line()] == [
            "JOIN #lobby alice",
            "JOIN #dev alice",
        ]
        phone.send("/history #dev")
        assert phone.expect("HISTORY #dev").endswith("MSG bob said while she was away")
        phone.send("/history bob")
        assert phone.expect("HISTORY bob").endswith("PRIV bob are you there")
        assert bob.expect("AWAY alice") == "AWAY alice "
