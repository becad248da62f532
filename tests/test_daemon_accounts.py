"""Accounts and rooms people run end to end: the real `twistd -n chatd`, restarts.

Line and IRC clients on real sockets; the database is chatd.sqlite3 in a
temporary directory. Argon2 runs on the daemon's own threads, with cheap
settings (--argon2-*): these tests check what is kept, not what it costs.
The security checks of docs/security.md are here too: nothing secret in the
log, the database file private, wrong passwords throttled.
"""

from __future__ import annotations

import base64
import re
import socket
import stat
import time
from pathlib import Path

from daemon import WAIT, LineClient, running_daemon
from test_irc_daemon import IrcClient

LOOPBACK = "tcp:0:interface=127.0.0.1"
CHEAP = ["--argon2-time", "1", "--argon2-memory", "64", "--argon2-lanes", "1"]
PASSWORD = "correct-horse-battery"
DB = "chatd.sqlite3"


def line_user(port: int, nick: str) -> LineClient:
    client = LineClient.tcp(port)
    client.register(nick)
    return client


def sync(client: LineClient) -> list[str]:
    """Everything the server sent before the answer to an unknown command."""
    client.send("/zzsync")
    seen = []
    while not (text := client.read_line()).startswith("ERR unknown-command"):
        seen.append(text)
    return seen


def test_accounts_and_registered_rooms_survive_a_restart(tmp_path: Path) -> None:
    """Register a nickname and a room, set its topic, modes and a ban; restart;
    the account identifies with its password only, the founder gets operator
    status back on joining, the room kept its topic, modes and ban, and the
    nickname is still reserved for its owner."""
    args = ["--listen", LOOPBACK, "--nick-grace", "30", *CHEAP]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        alice = line_user(port, "alice")
        alice.send(f"/register {PASSWORD} {PASSWORD}")
        alice.expect("INFO alice is registered to you")
        alice.send("/join #dev")
        alice.send("/topic the build is green")
        alice.send("/mode +tn")
        alice.send("/ban mallory")
        alice.send("/register #dev")
        alice.expect("INFO #dev is registered to your account, alice")
        daemon.terminate()  # a clean stop: everything is written
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        daemon.wait_for_log(
            re.compile("1 accounts, 1 registered rooms and 0 server bans read")
        )
        bob = line_user(port, "bob")
        bob.send("/join #dev")
        assert bob.expect("TOPIC ") == "TOPIC #dev alice the build is green"
        bob.send("/mode")
        assert bob.expect("MODES ") == "MODES #dev +nt "
        bob.send("/bans")
        assert bob.expect("BANS ") == "BANS #dev mallory"
        bob.send("/topic mine now")
        assert bob.expect("ERR ").startswith("ERR not-operator")
        alice = LineClient.tcp(port)
        alice.expect("NICK ")
        alice.send("alice")
        alice.expect("WELCOME alice ")
        assert alice.expect("INFO ").startswith("INFO alice is a registered nickname")
        alice.send("/identify not-the-password")
        assert alice.expect("ERR ") == (
            "ERR auth-failed wrong password, or no account of that name"
        )
        alice.send(f"/identify {PASSWORD}")
        alice.expect("INFO You are identified as alice.")
        alice.send("/join #dev")
        assert bob.expect("OP ") == "OP #dev alice chatd"
        bob.send("/who")
        assert sync(bob)[-1] == "OPS #dev alice"


def test_sasl_and_irc_moderation_through_the_daemon(tmp_path: Path) -> None:
    """An IRC client registers with NickServ, a second logs in with SASL PLAIN
    (900, 903) and runs a room it made: MODE, KICK, TOPIC as IRC spells them."""
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK, *CHEAP]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        irc_port = daemon.ports["irc " + LOOPBACK]
        owner = IrcClient.connect(irc_port)
        owner.register("jilles")
        owner.send(f"PRIVMSG NickServ :REGISTER {PASSWORD} jilles@example.org")
        assert "registered to you" in owner.expect_irc("NOTICE")
        owner.send("QUIT")
        client = IrcClient.connect(irc_port)
        client.send("CAP LS 302")
        assert "sasl=PLAIN" in client.expect_irc("CAP")
        client.send("CAP REQ :sasl")
        client.expect_irc("CAP")
        client.send("AUTHENTICATE PLAIN")
        client.expect_irc("AUTHENTICATE")
        response = base64.b64encode(f"\0jilles\0{PASSWORD}".encode()).decode()
        client.send(f"AUTHENTICATE {response}")
        assert client.expect_irc("900").split(" ")[4] == "jilles"
        client.expect_irc("903")
        client.send("NICK jilles")
        client.send("USER j 0 * :J")
        client.send("CAP END")
        client.expect_irc("001")
        client.send("JOIN #irc")
        names = client.expect_irc("353")
        assert names.endswith(":@jilles")
        guest = line_user(daemon.ports[LOOPBACK], "guest")
        guest.send("/join #irc")
        client.expect_irc("JOIN")
        client.send("TOPIC #irc :welcome")
        assert guest.expect("TOPIC ") == "TOPIC #irc jilles welcome"
        client.send("MODE #irc +m")
        assert guest.expect("MODE ") == "MODE #irc jilles +m "
        guest.send("can I speak?")
        assert guest.expect("ERR ").startswith("ERR moderated ")
        client.send("KICK #irc guest :quiet")
        assert guest.expect("KICK ") == "KICK #irc guest jilles quiet"
        assert guest.read_line() == "PART #irc guest kicked by jilles: quiet"


def test_secrets_stay_out_of_the_log_and_the_file_is_private(tmp_path: Path) -> None:
    """docs/security.md, checks 3 and 4: after registering, identifying right
    and wrong, SASL and NickServ, changing and dropping, the log holds no
    password and no hash; the database and its -wal and -shm are 0600."""
    secrets = [PASSWORD, "wrong-guess-4711", "second-secret-0815"]
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK, *CHEAP]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        port, irc_port = daemon.ports[LOOPBACK], daemon.ports["irc " + LOOPBACK]
        alice = line_user(port, "alice")
        alice.send(f"/register {PASSWORD} {PASSWORD}")
        alice.expect("INFO alice is registered")
        alice.send("/identify alice wrong-guess-4711")
        alice.expect("ERR auth-failed")
        alice.send(f"/password {secrets[2]} {secrets[2]}")
        alice.expect("INFO alice has its new password.")
        irc = IrcClient.connect(irc_port)
        irc.register("bob")
        irc.send(f"PRIVMSG NickServ :IDENTIFY alice {secrets[2]}")
        irc.expect_irc("900")
        for name in (DB, DB + "-wal", DB + "-shm"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
        alice.send(f"/unregister {secrets[2]}")
        alice.expect("INFO The account alice is gone")
        daemon.terminate()
    log = "\n".join(daemon.log)
    assert "account alice registered" in log and "alice identified as alice" in log
    for secret in secrets:
        assert secret not in log
    assert "$argon2" not in log


def test_a_thousand_wrong_passwords_from_one_address_are_throttled(
    tmp_path: Path,
) -> None:
    """docs/security.md, check 2: 1000 /identify with wrong passwords, sent as
    fast as the flood gate lets them through (--flood-rate 0 here: all at once),
    are answered; 5 are checked (auth-failed), the other 995 throttled without
    a hash, in well under a second each."""
    args = ["--listen", LOOPBACK, "--flood-rate", "0", *CHEAP]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        owner = line_user(port, "alice")
        owner.send(f"/register {PASSWORD} {PASSWORD}")
        owner.expect("INFO alice is registered")
        mallory = line_user(port, "mallory")
        started = time.monotonic()
        mallory.sock.sendall(
            b"".join(f"/identify alice guess{n}\r\n".encode() for n in range(1000))
        )
        codes: dict[str, int] = {}
        while sum(codes.values()) < 1000:
            text = mallory.expect("ERR ")
            code = text.split(" ")[1]
            codes[code] = codes.get(code, 0) + 1
        elapsed = time.monotonic() - started
        assert codes == {"auth-failed": 5, "throttled": 995}, codes
        assert elapsed < 30
        # The owner, from another address, is throttled only per account: 10
        # wrong at once were allowed for it, and 5 were spent; the right
        # password works (a right one costs nothing).
        other = LineClient(
            socket.create_connection(
                ("127.0.0.1", port), timeout=WAIT, source_address=("127.0.0.2", 0)
            )
        )
        other.register("alice2")
        other.send(f"/identify alice {PASSWORD}")
        other.expect("INFO You are identified as alice.")
