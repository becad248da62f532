"""Server bans against the real twistd: every door refuses, and after a restart too.

A K-line on a nickname (checked at registration) and one on an address
(checked at connect, from 127.0.0.2) are placed by a server operator on the
line door; the banned reconnect on the line door, IRC and the web page and
are refused with the reason; the daemon is stopped and started again on the
same --database, and the bans still hold (issue 25, Done when).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import websocket
from daemon import WAIT, LineClient, running_daemon
from test_irc_daemon import IrcClient
from test_web_daemon import expect, ws_connect

LOOPBACK = "tcp:0:interface=127.0.0.1"
BANNED_ADDRESS = "127.0.0.2"
CHEAP = ["--argon2-time", "1", "--argon2-memory", "8", "--argon2-lanes", "1"]


def daemon_args(tmp_path: Path) -> list[str]:
    operators = tmp_path / "operators.txt"
    operators.write_text("root\n")
    return [
        *("--listen", LOOPBACK, "--irc", LOOPBACK, "--web", LOOPBACK),
        *("--database", str(tmp_path / "chatd.sqlite3")),
        *("--operators", str(operators), *CHEAP),
    ]


def from_address(port: int, source: str) -> socket.socket:
    """A connection to 127.0.0.1:port from another loopback address."""
    sock = socket.socket()
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def web_messages(sock: socket.socket) -> list[str]:
    """The text messages a refused WebSocket is sent, up to its close frame."""
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, frames = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    messages = []
    while frames:
        opcode, size = frames[0] & 0x0F, frames[1] & 0x7F
        start = 2
        if size == 126:
            (size,) = struct.unpack("!H", frames[2:4])
            start = 4
        payload, frames = frames[start : start + size], frames[start + size :]
        if opcode == 8:  # close
            break
        messages.append(payload.decode())
    return messages


def refused_everywhere(ports: dict[str, int]) -> None:
    """troll on each door, and anyone from 127.0.0.2, are refused with the reason."""
    line_port = ports[LOOPBACK]
    irc_port, web_port = ports["irc " + LOOPBACK], ports["web " + LOOPBACK]
    troll = LineClient.tcp(line_port)
    troll.expect("NICK ")
    troll.send("troll")
    assert troll.expect("ERR ") == (
        "ERR banned you are banned from this server: spamming #lobby"
    )
    assert troll.expect("BYE ") == "BYE K-lined: spamming #lobby"
    assert troll.at_eof()
    irc = IrcClient.connect(irc_port)
    irc.send("NICK troll")
    irc.send("USER troll 0 * :Troll")
    assert irc.expect_irc("465").endswith(
        " 465 troll :You are banned from this server: spamming #lobby"
    )
    assert irc.expect_irc("ERROR").endswith("(K-lined: spamming #lobby)")
    assert irc.at_eof()
    page = ws_connect(web_port)
    expect(page, "NICK ")
    page.send("troll")
    assert expect(page, "ERR ") == (
        "ERR banned you are banned from this server: spamming #lobby"
    )
    assert expect(page, "BYE ") == "BYE K-lined: spamming #lobby"
    page.close()
    # From the banned address nothing is read: the refusal comes at once.
    proxy = LineClient(from_address(line_port, BANNED_ADDRESS))
    # 1d, or 23h59m a moment later
    assert proxy.read_line().startswith(
        "ERR banned you are banned from this server: proxy (for "
    )
    assert proxy.read_line() == "BYE K-lined: proxy"
    assert proxy.at_eof()
    irc = IrcClient(from_address(irc_port, BANNED_ADDRESS))
    assert " 465 * :You are banned from this server: proxy (for " in irc.read_line()
    assert irc.read_line() == "ERROR :Closing link: (K-lined: proxy)"
    messages = web_messages(from_address(web_port, BANNED_ADDRESS))
    assert len(messages) == 2, messages
    assert messages[0].startswith("ERR banned you are banned from this server: proxy")
    assert messages[1] == "BYE K-lined: proxy"


def test_a_kline_refuses_every_door_and_survives_a_restart(tmp_path: Path) -> None:
    """/kline troll and /kline 127.0.0.2: troll is disconnected; line, IRC and
    web reconnects are refused with ERR banned / 465; after a restart on the
    same database, the same; /klines lists both; /unkline lets troll in."""
    args = daemon_args(tmp_path)
    with running_daemon(args, tmp_path, listeners=3) as daemon:
        root = LineClient.tcp(daemon.ports[LOOPBACK])
        root.register("root")
        root.send("/register s3cret-pw s3cret-pw")
        root.expect("ACCOUNT root root")
        troll = LineClient.tcp(daemon.ports[LOOPBACK])
        troll.register("troll")
        root.send("/kline troll spamming #lobby")
        assert troll.expect("BYE ") == "BYE K-lined: spamming #lobby"
        root.expect("INFO troll is banned from the server for good")
        root.send(f"/kline 1d {BANNED_ADDRESS} proxy")
        root.expect(f"INFO {BANNED_ADDRESS} is banned from the server for 1d")
        refused_everywhere(daemon.ports)
        root.close()
    with running_daemon(args, tmp_path, listeners=3) as daemon:
        refused_everywhere(daemon.ports)
        root = LineClient.tcp(daemon.ports[LOOPBACK])
        root.register("root")
        root.send("/identify s3cret-pw")
        root.expect("ACCOUNT root root")
        root.send("/klines")
        assert root.expect("KLINE ").startswith("KLINE troll root ")
        assert root.expect("KLINE ").startswith(f"KLINE {BANNED_ADDRESS} root ")
        assert root.expect("ENDKLINES") == "ENDKLINES 2"
        root.send("/unkline troll")
        root.expect("INFO The server ban of troll is lifted.")
        again = LineClient.tcp(daemon.ports[LOOPBACK])
        again.register("troll")
        page: websocket.WebSocket = ws_connect(daemon.ports["web " + LOOPBACK])
        expect(page, "NICK ")
        page.close()
        for client in (root, again):
            client.close()
