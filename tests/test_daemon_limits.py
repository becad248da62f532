"""End to end: limits against the real twistd on loopback sockets."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

from daemon import WAIT, LineClient, running_daemon
from test_daemon import LOOPBACK

MAX_MESSAGES = 20000  # bound on the flood below: ~20 MB of room traffic
BATCH = 50
PAYLOAD = "p" * 1000


def test_stuck_reader_is_cut_off_and_a_live_reader_gets_everything_in_order(
    tmp_path: Path,
) -> None:
    """A client that never reads is dropped past --sendq; the others lose nothing."""
    args = ["--listen", LOOPBACK, "--flood-rate", "0", "--sendq", "262144"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port))
        stuck = LineClient(raw)
        stuck.register("stuck")  # from here on it never reads again
        reader, talker = LineClient.tcp(port), LineClient.tcp(port)
        reader.register("reader")
        talker.register("talker")

        received: list[int] = []
        cut_off = None
        deadline = time.monotonic() + 60
        sent = 0
        while cut_off is None and sent < MAX_MESSAGES:
            assert time.monotonic() < deadline, f"no cut-off after {sent} messages"
            for _ in range(BATCH):
                talker.send(f"{sent} {PAYLOAD}")
                sent += 1
            # Read both live clients up to the batch's last message.
            last = f"MSG #lobby talker {sent - 1} "
            while not (text := talker.read_line()).startswith(last):
                assert text, "talker was disconnected"
            while not (text := reader.read_line()).startswith(last):
                assert text, "reader was disconnected"
                if text.startswith("MSG #lobby talker "):
                    received.append(int(text.split(" ")[3]))
                elif text.startswith("QUIT stuck "):
                    cut_off = text
            received.append(sent - 1)

        assert cut_off == "QUIT stuck send queue full (not reading)", cut_off
        assert received == list(range(sent)), "the live reader lost or reordered"
        assert sent * 1000 > 262144  # the stuck client really fell behind

        # The stuck client's connection was aborted: reading drains, then ends.
        raw.settimeout(WAIT)
        ended = False
        try:
            while raw.recv(1 << 20):
                pass
            ended = True
        except ConnectionResetError:
            ended = True
        assert ended
        daemon.wait_for_log(re.compile(r"stopped reading; send queue over 262144"))


def test_connection_caps_answer_server_full(tmp_path: Path) -> None:
    """Past --max-per-ip a new connection gets ERR server-full and is closed."""
    args = ["--listen", LOOPBACK, "--max-per-ip", "2"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        first, second = LineClient.tcp(port), LineClient.tcp(port)
        first.expect("NICK ")
        second.expect("NICK ")
        third = LineClient.tcp(port)
        assert third.read_line().startswith("ERR server-full ")
        assert third.read_line().startswith("BYE ")
        assert third.at_eof()
        first.close()
        daemon.wait_for_log(re.compile(r"disconnected"))
        fourth = LineClient.tcp(port)
        assert fourth.read_line().startswith("HELLO ")


def test_register_timeout_closes_a_silent_connection(tmp_path: Path) -> None:
    """A connection that never picks a nickname gets BYE after --register-timeout."""
    args = ["--listen", LOOPBACK, "--register-timeout", "0.5"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        silent = LineClient.tcp(port)
        assert silent.expect("BYE ") == "BYE No nickname chosen within 0.5 seconds."
        assert silent.at_eof()


def test_flood_is_throttled_in_order_and_recvq_cuts_off(tmp_path: Path) -> None:
    """Past the burst: one ERR flood, every line in order; past --recvq: BYE."""
    args = [
        "--listen",
        LOOPBACK,
        "--flood-burst",
        "3",
        "--flood-rate",
        "50",
        "--recvq",
        "4096",
    ]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        paster, watcher = LineClient.tcp(port), LineClient.tcp(port)
        paster.register("paster")
        watcher.register("watcher")
        paster.sock.sendall(b"".join(b"line %d\n" % i for i in range(20)))
        assert paster.expect("ERR ").startswith("ERR flood ")
        got = [watcher.expect("MSG #lobby paster ").split(" ")[4] for _ in range(20)]
        assert got == [str(i) for i in range(20)]
        rest = []
        while not (text := paster.read_line()).startswith("MSG #lobby paster line 19"):
            rest.append(text)
        assert not [text for text in rest if text.startswith("ERR")]  # told once
        # 100 lines of 100 bytes at once: more than 4096 bytes wait.
        paster.sock.sendall((b"x" * 99 + b"\n") * 100)
        assert paster.expect("BYE ").startswith("BYE Input queue full")
        assert watcher.expect("QUIT paster ").startswith("QUIT paster Input queue")


def test_idle_timeout_sends_a_silent_client_away(tmp_path: Path) -> None:
    """Registered and silent for --idle-timeout: BYE, then the connection closes."""
    args = ["--listen", LOOPBACK, "--idle-timeout", "0.3"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        sleeper = LineClient.tcp(port)
        sleeper.register("sleeper")
        assert sleeper.expect("BYE ") == "BYE Idle for 0.3 seconds."
        assert sleeper.at_eof()


def test_a_script_piped_into_nc_is_handled_whole(tmp_path: Path) -> None:
    """Nick and 25 lines, then a half-close (nc at the end of its input).

    Past --flood-burst the lines wait for the rate; the server handles them
    all, in order, then closes as for a client that closes. The client reads
    every answer up to the end.
    """
    args = ["--listen", LOOPBACK, "--flood-burst", "10", "--flood-rate", "40"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        bob = LineClient.tcp(port)
        bob.expect("NICK ")
        bob.send("bob")
        bob.expect("JOIN #lobby bob")
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            script = "carol\n" + "".join(f"line {n}\n" for n in range(25))
            sock.sendall(script.encode())
            sock.shutdown(socket.SHUT_WR)
            answers = b""
            while chunk := sock.recv(65536):  # until the server closes
                answers += chunk
        assert answers.count(b"MSG #lobby carol line ") == 25
        assert bob.expect("JOIN #lobby ") == "JOIN #lobby carol"
        for n in range(25):
            assert bob.expect("MSG #lobby ") == f"MSG #lobby carol line {n}"
        assert bob.expect("QUIT ") == "QUIT carol connection closed"
