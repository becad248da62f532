"""Private history end to end: the real `twistd -n chatd`, a restart, both doors.

Two identified users talk privately on the line door; after a restart each
reads the conversation back with /history, an IRC client of one of the
accounts with CHATHISTORY, and someone holding one of the nicknames without
its account reads nothing of it (docs/protocol.md, Private history).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from daemon import LineClient, running_daemon
from test_daemon_accounts import CHEAP, DB, PASSWORD, line_user
from test_irc_daemon import IrcClient

LOOPBACK = "tcp:0:interface=127.0.0.1"


def read_until(client: LineClient, prefix: str) -> list[str]:
    """Read lines up to and including the first that starts with prefix."""
    seen: list[str] = []
    while not (text := client.read_line()).startswith(prefix):
        assert text or client.buffer, f"closed before {prefix!r}; saw {seen}"
        seen.append(text)
    return [*seen, text]


def test_private_history_survives_a_restart_for_its_two_accounts_only(
    tmp_path: Path,
) -> None:
    """alice and bob (both identified) talk, dave (not identified) writes to
    alice (kept for alice, apart); after a restart alice and bob read their
    conversation with the same ids, an IRC client of alice's account replays
    it, and mallory with bob's nickname but no account is refused."""
    irc = "irc " + LOOPBACK
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK, "--nick-grace", "30", *CHEAP]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        port = daemon.ports[LOOPBACK]
        alice, bob = line_user(port, "alice"), line_user(port, "bob")
        for client, nick in ((alice, "alice"), (bob, "bob")):
            client.send(f"/register {PASSWORD} {PASSWORD}")
            client.expect(f"INFO {nick} is registered to you")
        alice.send("/msg bob are you there?")
        bob.expect("PRIV alice bob are you there?")
        bob.send("/msg alice yes")
        alice.expect("PRIV bob alice yes")
        dave = line_user(port, "dave")
        dave.send("/msg alice kept for alice")
        alice.expect("PRIV dave alice kept for alice")
        alice.send("/history bob")
        before = read_until(alice, "ENDHISTORY ")
        assert [text.split(" ", 6)[4:] for text in before[:-1]] == [
            ["PRIV", "alice", "are you there?"],
            ["PRIV", "bob", "yes"],
        ]
        assert before[-1] == "ENDHISTORY bob 2"
        daemon.terminate()  # a clean stop: everything is written
    with sqlite3.connect(tmp_path / DB) as database:
        rows = database.execute(
            "SELECT low, high, sender, text FROM private_messages ORDER BY id"
        ).fetchall()
    assert rows == [
        ("alice", "bob", "alice", "are you there?"),
        ("alice", "bob", "bob", "yes"),
        ("alice", "~dave", "dave", "kept for alice"),
    ]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        port = daemon.ports[LOOPBACK]
        daemon.wait_for_log(
            re.compile("2 accounts, 0 registered rooms and 0 server bans read")
        )
        mallory = line_user(port, "bob")  # bob's nickname, not his account
        mallory.send("/history alice")
        assert mallory.expect("ERR ").startswith("ERR not-identified ")
        bob = line_user(port, "robert")
        bob.send(f"/identify bob {PASSWORD}")
        bob.expect("ACCOUNT robert bob")
        bob.send("/history alice")
        assert read_until(bob, "ENDHISTORY ") == [
            text.replace("HISTORY bob ", "HISTORY alice ") for text in before[:-1]
        ] + ["ENDHISTORY alice 2"]
        alice = IrcClient.connect(daemon.ports[irc])
        alice.send("CAP LS 302")
        alice.send("CAP REQ :batch server-time message-tags draft/chathistory")
        alice.send("NICK alicia")
        alice.send("USER alicia 0 * :Alice on IRC")
        alice.send("CAP END")
        alice.expect_irc("376")
        alice.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
        alice.expect_irc("900")
        alice.send("CHATHISTORY LATEST bob * 10")
        alice.expect_irc("BATCH")
        replayed = [alice.expect_irc("PRIVMSG"), alice.expect_irc("PRIVMSG")]
        ids = [text.split(" ", 3)[2] for text in before[:-1]]
        assert [text.split(" ", 1)[1] for text in replayed] == [
            ":alicia PRIVMSG bob :are you there?",
            ":bob PRIVMSG alicia :yes",
        ]
        assert [re.findall(r"msgid=(\d+)", text) for text in replayed] == [
            [msg_id] for msg_id in ids
        ]
