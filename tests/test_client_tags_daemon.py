"""End to end: a reaction from raw IRC reaches a web page and an opt-in line client.

The real `twistd chatd --listen ... --irc ... --web ...`: an IRC client on a
socket (as irssi would, its tags written by hand), a WebSocket as the page
makes it, and two line clients, one that said /tags on and one that did not
(docs/protocol.md, Typing, reactions and replies).
"""

from __future__ import annotations

from pathlib import Path

from daemon import LineClient, running_daemon
from test_irc_daemon import IrcClient
from test_web_daemon import expect, ws_connect, ws_register

LOOPBACK = "tcp:0:interface=127.0.0.1"


def test_a_tagmsg_reaction_reaches_the_page_and_opt_in_line_clients(
    tmp_path: Path,
) -> None:
    """alice (IRC) reacts to a message with TAGMSG; the page and the /tags line
    client get REACT, the plain line client gets nothing before the next MSG;
    the page's typing reaches the IRC client as +typing."""
    args = ["--listen", LOOPBACK, "--irc", LOOPBACK, "--web", LOOPBACK]
    args += ["--database", str(tmp_path / "chat.db")]
    with running_daemon(args, tmp_path, listeners=3) as daemon:
        irc = IrcClient.connect(daemon.ports["irc " + LOOPBACK])
        irc.send("CAP LS 302")
        irc.send("CAP REQ :message-tags server-time")
        irc.send("NICK alice")
        irc.send("USER alice 0 * :alice")
        irc.send("CAP END")
        irc.expect_irc("376")
        irc.send("JOIN #lobby")
        irc.expect_irc("366")
        page = ws_connect(daemon.ports["web " + LOOPBACK])
        page.send("/tags on")
        ws_register(page, "pat")
        tk = LineClient.tcp(daemon.ports[LOOPBACK])
        tk.send("/tags on")
        tk.register("tk")
        plain = LineClient.tcp(daemon.ports[LOOPBACK])
        plain.register("plain")
        plain.send("hello all")
        said = irc.expect_irc("PRIVMSG")
        msgid = said.split(";")[0].split("=", 1)[1]
        assert said.startswith("@msgid=") and msgid
        irc.send(f"@+draft/react=👍;+draft/reply={msgid} TAGMSG #lobby")
        irc.send("PRIVMSG #lobby :after the reaction")
        react = f"REACT #lobby alice {msgid} 👍"
        assert expect(page, "REACT ") == react
        assert tk.expect("REACT ") == react
        seen = []
        while not (got := plain.read_line()).startswith("MSG #lobby alice"):
            seen.append(got)
        assert not any(text.startswith(("REACT", "TYPING")) for text in seen), seen
        page.send("/typing #lobby active")
        typing = irc.expect_irc("TAGMSG")
        assert "+typing=active" in typing and typing.endswith("TAGMSG #lobby")
        assert tk.expect("TYPING ") == "TYPING #lobby pat active"
        page.close()
        for client in (irc, tk, plain):
            client.close()
