"""End to end: the real `twistd chatd --web ...`, a WebSocket client, line clients."""

from __future__ import annotations

import json
import re
import selectors
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import websocket
from daemon import WAIT, LineClient, running_daemon
from test_daemon import LOOPBACK

PAYLOAD = "p" * 1000
MAX_MESSAGES = 20000  # bound on the flood below: ~20 MB of room traffic
BATCH = 50


def ws_connect(
    port: int,
    origin: str | None = None,
    sockopt: list[tuple[int, int, int]] | None = None,
) -> websocket.WebSocket:
    """A WebSocket to the daemon's /ws as the page makes it (its own Origin)."""
    return websocket.create_connection(
        f"ws://127.0.0.1:{port}/ws",
        timeout=WAIT,
        origin=origin or f"http://127.0.0.1:{port}",
        sockopt=sockopt or [],
    )


def expect(ws: websocket.WebSocket, prefix: str) -> str:
    """Read messages until one starts with prefix; each message is one line."""
    seen = []
    while True:
        text = ws.recv()
        assert isinstance(text, str) and "\r" not in text and "\n" not in text, text
        if text.startswith(prefix):
            return text
        seen.append(text)
        assert text, f"closed before {prefix!r}; saw {seen}"


def ws_register(ws: websocket.WebSocket, nick: str) -> None:
    expect(ws, "NICK ")
    ws.send(nick)
    expect(ws, f"WELCOME {nick} ")
    expect(ws, f"JOIN #lobby {nick}")


def web_args(*more: str) -> list[str]:
    return ["--listen", LOOPBACK, "--web", LOOPBACK, "--no-history", *more]


def test_page_websocket_and_telnet_share_the_rooms(tmp_path: Path) -> None:
    """The page, /healthz, and a WebSocket user and a line user talking both ways."""
    with running_daemon(web_args(), tmp_path, listeners=2) as daemon:
        line_port, web_port = daemon.ports[LOOPBACK], daemon.ports["web " + LOOPBACK]
        daemon.wait_for_log(
            re.compile(rf"chatd web page at http://127\.0\.0\.1:{web_port}/")
        )
        base = f"http://127.0.0.1:{web_port}"
        with urllib.request.urlopen(base + "/", timeout=WAIT) as page:
            assert page.status == 200
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            assert b"<title>chatd</title>" in page.read()
        with urllib.request.urlopen(base + "/healthz", timeout=WAIT) as health:
            assert json.loads(health.read())["status"] == "ok"

        web = ws_connect(web_port)
        ws_register(web, "alice")
        bob = LineClient.tcp(line_port)
        bob.register("bob")
        expect(web, "JOIN #lobby bob")
        web.send("hello <b>bob</b>")
        assert bob.expect("MSG ") == "MSG #lobby alice hello <b>bob</b>"
        assert expect(web, "MSG ") == "MSG #lobby alice hello <b>bob</b>"
        bob.send("/msg alice psst")
        assert expect(web, "PRIV ") == "PRIV bob alice psst"
        web.send("/join #games")
        expect(web, "JOIN #games alice")
        bob.send("/join #games")
        assert expect(web, "JOIN #games") == "JOIN #games bob"
        bob.send("in games")
        assert expect(web, "MSG ") == "MSG #games bob in games"
        web.close()
        assert bob.expect("QUIT ") == "QUIT alice connection closed"


def test_hostile_pages_and_frames(tmp_path: Path) -> None:
    """A page of another origin (403, a DNS-rebound one too), binary frames, and a
    message too big to hold."""
    with running_daemon(web_args("--recvq", "8192"), tmp_path, listeners=2) as daemon:
        port = daemon.ports["web " + LOOPBACK]
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            ws_connect(port, origin="https://evil.example")
        assert refused.value.status_code == 403
        daemon.wait_for_log(re.compile(r"a page from https://evil\.example"))
        with pytest.raises(websocket.WebSocketBadStatusException) as rebound:
            websocket.create_connection(  # a DNS-rebound page: its own name as Host
                f"ws://127.0.0.1:{port}/ws",
                timeout=WAIT,
                host=f"evil.example:{port}",
                origin=f"http://evil.example:{port}",
            )
        assert rebound.value.status_code == 403

        web = ws_connect(port)
        ws_register(web, "alice")
        web.send_binary(b"\x00\xff binary")
        assert expect(web, "ERR ").startswith("ERR bad-encoding ")
        web.send("x" * 3000)  # over --max-line: refused, the connection stays
        assert expect(web, "ERR ").startswith("ERR too-long ")
        web.send("y" * 20000)  # over --recvq: closed as too big
        assert expect(web, "BYE ") == "BYE Message too big: more than 8192 bytes."
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                frame = web.recv_data_frame(True)[1]
                if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    assert int.from_bytes(frame.data[:2], "big") == 1009
                    break
            web.recv()


def test_a_page_that_stops_reading_is_cut_off(tmp_path: Path) -> None:
    """A WebSocket that never reads is dropped past --sendq, as any client is."""
    args = web_args("--flood-rate", "0", "--sendq", "262144")
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        line_port, web_port = daemon.ports[LOOPBACK], daemon.ports["web " + LOOPBACK]
        stuck = ws_connect(
            web_port, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
        )
        ws_register(stuck, "stuck")  # from here on it never reads again
        reader, talker = LineClient.tcp(line_port), LineClient.tcp(line_port)
        reader.register("reader")
        talker.register("talker")

        cut_off = None
        deadline = time.monotonic() + 60
        sent = 0
        while cut_off is None and sent < MAX_MESSAGES:
            assert time.monotonic() < deadline, f"no cut-off after {sent} messages"
            for _ in range(BATCH):
                talker.send(f"{sent} {PAYLOAD}")
                sent += 1
            last = f"MSG #lobby talker {sent - 1} "
            while not (text := talker.read_line()).startswith(last):
                assert text, "talker was disconnected"
            while not (text := reader.read_line()).startswith(last):
                assert text, "reader was disconnected"
                if text.startswith("QUIT stuck "):
                    cut_off = text
        assert cut_off == "QUIT stuck send queue full (not reading)", cut_off
        daemon.wait_for_log(re.compile(r"stopped reading; send queue over 262144"))
        stuck.close()


def raw_websocket(port: int) -> socket.socket:
    """A WebSocket opened by hand, for sending hand-made frames."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:%d\r\n\r\n"
        % (port, port)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        assert data, head
        head += data
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def source_socket(port: int, source: str) -> socket.socket:
    """A connection to 127.0.0.1:port from another loopback address."""
    sock = socket.socket()
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def test_half_sent_requests_are_cut_to_max_per_ip(tmp_path: Path) -> None:
    """200 half-sent requests from one address: 16 are held, the rest answered
    503 at once; another address still chats and /healthz counts them."""
    with running_daemon(web_args(), tmp_path, listeners=2) as daemon:
        line_port, web_port = daemon.ports[LOOPBACK], daemon.ports["web " + LOOPBACK]
        socks = []
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", web_port), timeout=WAIT)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(sock)
        answered: dict[socket.socket, bytes] = {}
        with selectors.DefaultSelector() as selector:
            for sock in socks:
                selector.register(sock, selectors.EVENT_READ)
            deadline = time.monotonic() + WAIT
            while len(answered) < 200 - 16 and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.5):
                    sock = key.fileobj  # type: ignore[assignment]
                    answered[sock] = sock.recv(65536)
                    selector.unregister(sock)
        assert len(answered) == 184
        assert all(data.startswith(b"HTTP/1.1 503 ") for data in answered.values())
        held = [sock for sock in socks if sock not in answered]
        for sock in held:  # still open, unanswered
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)

        chatter = LineClient(source_socket(line_port, "127.0.0.2"))
        chatter.register("chatter")
        health = source_socket(web_port, "127.0.0.3")
        health.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while data := health.recv(65536):
            answer += data
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["http"] == 17
        for sock in socks + [health]:
            sock.close()


def test_a_huge_body_is_answered_413_before_it_is_sent(tmp_path: Path) -> None:
    """POST /healthz with Content-Length 300 MB: 413 comes before a byte of the
    body is sent, and the connection closes."""
    with running_daemon(web_args(), tmp_path, listeners=2) as daemon:
        port = daemon.ports["web " + LOOPBACK]
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        sock.sendall(
            b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 300000000\r\n\r\n"
        )
        answer = b""
        while data := sock.recv(65536):
            answer += data
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert answer.endswith(b"This server takes no request bodies.\r\n")
        sock.close()


EMPTY_PIECES = (  # one empty message in 64 frames: as many as one may have
    b"\x01\x80\0\0\0\0" + b"\x00\x80\0\0\0\0" * 62 + b"\x80\x80\0\0\0\0"
)
PINGS = b"\x89\x80\0\0\0\0" * 64


def test_frame_floods_do_not_slow_the_others(tmp_path: Path) -> None:
    """A message in 20,000 empty pieces is closed at the 64th frame (1009). A
    socket flooding empty continuation frames (messages of 64 pieces) and one
    flooding pings are read at the flood rate; meanwhile a line user's echo
    stays fast (before the fix: a median of 0.3 s under these two)."""
    with running_daemon(web_args(), tmp_path, listeners=2) as daemon:
        line_port, web_port = daemon.ports[LOOPBACK], daemon.ports["web " + LOOPBACK]
        probe = LineClient.tcp(line_port)
        probe.register("probe")
        pieces = raw_websocket(web_port)
        pieces.sendall(b"\x01\x81\0\0\0\0x" + b"\x00\x80\0\0\0\0" * 20000)
        closing = b""
        while data := pieces.recv(65536):
            closing += data
        assert b"Message in too many pieces: more than 64." in closing
        assert b"\x88\x02\x03\xf1" in closing  # the close frame: 1009

        flooders = [raw_websocket(web_port) for _ in range(2)]
        stop = threading.Event()
        sent = [0, 0]

        def flood(index: int, unit: bytes) -> None:
            chunk = unit * (65536 // len(unit))
            sock = flooders[index]
            sock.settimeout(0.2)
            deadline = time.monotonic() + 3 * WAIT
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    sent[index] += sock.send(chunk)
                except TimeoutError:
                    continue

        threads = [
            threading.Thread(target=flood, args=(n, unit), daemon=True)
            for n, unit in enumerate((EMPTY_PIECES, PINGS))
        ]
        for thread in threads:
            thread.start()
        try:
            echoes = []
            for number in range(8):  # within the probe's burst
                began = time.monotonic()
                probe.send(f"p {number}")
                probe.expect(f"MSG #lobby probe p {number}")
                echoes.append(time.monotonic() - began)
        finally:
            stop.set()
            for thread in threads:
                thread.join(WAIT)
        assert min(sent) > 60_000  # both flooded
        echoes.sort()
        assert echoes[len(echoes) // 2] < 0.1 and echoes[-1] < 1.0, echoes
        daemon.wait_for_log(re.compile(r"sends WebSocket frames too fast"))
        daemon.wait_for_log(re.compile(r"sends WebSocket frames too fast"))
        for sock in flooders:  # paused, not closed
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                while sock.recv(65536):
                    pass
            sock.close()
