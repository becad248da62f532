"""End to end: IRC and line clients of the real `twistd -n chatd` in one room."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from daemon import WAIT, LineClient, running_daemon

LOOPBACK = "tcp:0:interface=127.0.0.1"


class IrcClient(LineClient):
    """A blocking IRC client on a real socket; every read bounded by WAIT."""

    @classmethod
    def connect(cls, port: int) -> IrcClient:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=WAIT))

    def expect_irc(self, command: str) -> str:
        """Skip lines until one whose command (or numeric) is command; return it."""
        seen = []
        while True:
            text = self.read_line()
            words = text.split(" ")
            if words[0].startswith("@"):
                words = words[1:]
            if words[0].startswith(":"):
                words = words[1:]
            if words and words[0] == command:
                return text
            seen.append(text)
            if text == "" and not self.buffer:
                raise AssertionError(f"closed before {command!r}; saw {seen}")

    def register(self, nick: str) -> None:
        self.send("CAP LS 302")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} on IRC")
        self.send("CAP REQ :server-time")
        self.send("CAP END")
        self.expect_irc("001")
        self.expect_irc("376")


def test_irc_and_line_clients_talk_in_lobby(tmp_path: Path) -> None:
    """An IRC user and a line user in #lobby see each other in their own terms."""
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        assert any("chatd IRC listening on" in text for text in daemon.log)
        irc = IrcClient.connect(daemon.ports["irc " + LOOPBACK])
        line = LineClient.tcp(daemon.ports[LOOPBACK])
        irc.register("alice")
        line.register("carol")
        irc.send("JOIN #lobby")
        assert irc.expect_irc("353").endswith(":alice carol")
        assert line.expect("JOIN ") == "JOIN #lobby alice"
        line.send("hi alice")
        got = irc.expect_irc("PRIVMSG")
        assert got.startswith("@time=") and got.endswith(
            ":carol!carol@127.0.0.1 PRIVMSG #lobby :hi alice"
        )
        line.send("/me waves")
        assert irc.expect_irc("PRIVMSG").endswith(
            "PRIVMSG #lobby :\x01ACTION waves\x01"
        )
        irc.send("PRIVMSG #lobby :hello carol")
        assert line.expect("MSG #lobby alice") == "MSG #lobby alice hello carol"
        irc.send("PRIVMSG carol :\x01ACTION nods\x01")
        assert line.expect("PRIV ") == "PRIV alice carol * alice nods"
        line.send("/msg alice psst")
        assert irc.expect_irc("PRIVMSG").endswith(
            ":carol!carol@127.0.0.1 PRIVMSG alice :psst"
        )
        irc.send("NICK alicia")
        assert line.expect("RENAME ") == "RENAME alice alicia"
        line.send("/who")
        assert line.expect("USERS ") == "USERS #lobby alicia carol"
        irc.send("QUIT :good night")
        assert irc.expect_irc("ERROR").endswith("(Quit: good night)")
        assert irc.at_eof()
        assert line.expect("QUIT ") == "QUIT alicia Quit: good night"


def test_shutdown_tells_irc_clients(tmp_path: Path) -> None:
    """SIGTERM: an IRC client gets ERROR with the shutdown reason, then EOF."""
    args = ["--irc", LOOPBACK, "--listen", LOOPBACK]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        irc = IrcClient.connect(daemon.ports["irc " + LOOPBACK])
        irc.register("bob")
        assert daemon.terminate() == -signal.SIGTERM
        assert "shutting down" in irc.expect_irc("ERROR")
        assert irc.at_eof()


def test_irc_history_through_the_real_store(tmp_path: Path) -> None:
    """Through SQLite and its writer thread: an IRC client's live msgid and time
    are those of the line user's HISTORY line; a joiner without chathistory gets
    the backfill batch; CHATHISTORY BEFORE that msgid answers the one before."""
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        irc_port = daemon.ports["irc " + LOOPBACK]
        alice = IrcClient.connect(irc_port)
        alice.send("CAP LS 302")
        alice.send("CAP REQ :batch server-time message-tags draft/chathistory")
        alice.send("NICK alice")
        alice.send("USER alice 0 * :alice")
        alice.send("CAP END")
        alice.expect_irc("376")
        alice.send("JOIN #dev")
        alice.expect_irc("366")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/join #dev")
        carol.send("first")
        carol.send("second")
        alice.expect_irc("PRIVMSG")
        live = alice.expect_irc("PRIVMSG")
        tags = dict(item.split("=", 1) for item in live[1:].split(" ")[0].split(";"))
        carol.send("/history #dev 1")
        _, _, msg_id, time, *_ = carol.expect("HISTORY ").split(" ")
        assert (tags["msgid"], tags["time"]) == (msg_id, time)
        bob = IrcClient.connect(irc_port)
        bob.send("CAP LS 302")
        bob.send("CAP REQ :batch server-time")
        bob.send("NICK bob")
        bob.send("USER bob 0 * :bob")
        bob.send("CAP END")
        bob.expect_irc("376")
        bob.send("JOIN #dev")
        bob.expect_irc("366")
        assert bob.expect_irc("BATCH").endswith(" chathistory #dev")
        assert bob.expect_irc("PRIVMSG").endswith(":carol PRIVMSG #dev :first")
        assert bob.expect_irc("PRIVMSG").endswith(":carol PRIVMSG #dev :second")
        assert bob.expect_irc("BATCH").split(" ")[-1].startswith("-")
        alice.send(f"CHATHISTORY BEFORE #dev msgid={msg_id} 10")
        assert alice.expect_irc("BATCH").endswith(" chathistory #dev")
        assert alice.expect_irc("PRIVMSG").endswith("PRIVMSG #dev :first")
        assert alice.expect_irc("BATCH").split(" ")[-1].startswith("-")
