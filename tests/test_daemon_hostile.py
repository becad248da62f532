"""Hostile clients against the real twistd (issue 11): TLS half-opens, ghosts,
bursts, empty-line floods and the listen backlog, over loopback sockets."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from daemon import WAIT, LineClient, running_daemon
from test_daemon import make_certificate

LOOPBACK = "tcp:0:interface=127.0.0.1"


def tls_endpoint(tmp_path: Path) -> str:
    key, cert = make_certificate(tmp_path)
    return f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes or resets; False if it is still open after WAIT."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_tls_half_opens_are_closed_and_free_their_slots(tmp_path: Path) -> None:
    """Connections that never start the TLS handshake: timed out and aborted (and
    a refused one too), so the address can connect again."""
    tls = tls_endpoint(tmp_path)
    args = ["--listen", tls, "--register-timeout", "0.5", "--max-per-ip", "2"]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[tls]
        raw = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        assert all(closed_by_server(sock) for sock in raw)
        client = LineClient.tls(port)
        client.register("alice")
        client.close()


def test_bye_over_tls_to_a_peer_that_holds_on_leaves_no_ghost(tmp_path: Path) -> None:
    """A TLS user overflows its input queue and keeps its socket open: the others
    see QUIT at once, /who no longer lists it and its nickname is free."""
    tls = tls_endpoint(tmp_path)
    args = ["--listen", LOOPBACK, "--listen", tls, "--recvq", "4096"]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        plain = LineClient.tcp(daemon.ports[LOOPBACK])
        plain.register("plain")
        ghost = LineClient.tls(daemon.ports[tls])
        ghost.register("ghost")
        assert plain.expect("JOIN ") == "JOIN #lobby ghost"
        ghost.sock.sendall(b"spam\n" * 2000)  # then neither reads nor closes
        assert plain.expect("QUIT ").startswith("QUIT ghost Input queue full")
        plain.send("/who")
        assert plain.expect("USERS ") == "USERS #lobby plain"
        plain.send("/nick ghost")
        assert plain.expect("RENAME ") == "RENAME plain ghost"
        ghost.close()


def test_a_burst_from_many_senders_cuts_off_no_reader(tmp_path: Path) -> None:
    """20 senders send 9 lines of 2 kB at once (360 kB, --sendq 64 kB): every
    reader that keeps reading gets every line, and nobody is cut off."""
    args = ["--listen", LOOPBACK, "--sendq", "65536", "--max-per-ip", "64"]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        readers = [LineClient.tcp(port) for _ in range(8)]
        for i, reader in enumerate(readers):
            reader.register(f"reader{i}")
        senders = [LineClient.tcp(port) for _ in range(20)]
        for i, sender in enumerate(senders):
            sender.register(f"sender{i}")
        counts = [0] * len(readers)
        cut = []

        def read(index: int, reader: LineClient) -> None:
            while counts[index] < 180:
                text = reader.read_line()
                if text.startswith("MSG #lobby sender"):
                    counts[index] += 1
                elif "send queue full" in text or text == "":
                    cut.append(text)
                    return

        threads = [
            threading.Thread(target=read, args=(i, r), daemon=True)
            for i, r in enumerate(readers)
        ]
        for thread in threads:
            thread.start()
        payload = b"".join(b"%d " % n + b"x" * 2000 + b"\r\n" for n in range(9))
        for sender in senders:
            sender.sock.sendall(payload)
        for thread in threads:
            thread.join(WAIT)
        assert not cut and counts == [180] * len(readers)


def test_an_empty_line_flood_is_cut_off_and_others_chat_on(tmp_path: Path) -> None:
    """A megabyte of LFs before registration: ERR flood, then BYE Input queue full;
    a registered user's messages go through meanwhile."""
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        probe = LineClient.tcp(port)
        probe.register("probe")
        attacker = LineClient.tcp(port)
        attacker.expect("NICK ")
        try:
            attacker.sock.sendall(b"\n" * 1_000_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut off while still sending
        assert attacker.expect("ERR flood ")
        assert attacker.expect("BYE ").startswith("BYE Input queue full")
        probe.send("still here")
        assert probe.expect("MSG ") == "MSG #lobby probe still here"


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_listeners_ask_for_a_backlog_of_1024(tmp_path: Path) -> None:
    """The listening socket's accept queue holds 1024, not Twisted's 50."""
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        shown = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=True,
        ).stdout.split()
        # State, Recv-Q, Send-Q (the backlog, for a listening socket), ...
        assert shown[2] == "1024", shown
