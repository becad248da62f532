"""End to end: the real `twistd -n chatd` process on loopback sockets."""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from daemon import ROOT, WAIT, LineClient, running_daemon, twistd_path

LOOPBACK = "tcp:0:interface=127.0.0.1"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a throwaway self-signed key and certificate for localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_help_lists_every_option(tmp_path: Path) -> None:
    """`twistd chatd --help` documents each option."""
    result = subprocess.run(
        [twistd_path(), "chatd", "--help"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    for option in (
        "--listen",
        "--name",
        "--motd",
        "--max-line",
        "--max-rooms",
        "--database",
        "--history-days",
        "--backfill",
        "--no-history",
    ):
        assert option in result.stdout


def test_chat_through_the_real_daemon_and_sigterm_says_bye(tmp_path: Path) -> None:
    """Two sockets chat; on SIGTERM both get BYE, then EOF, and twistd shuts down."""
    (tmp_path / "motd").write_text("Be excellent to each other.\n")
    args = ["--listen", LOOPBACK, "--name", "e2e", "--motd", str(tmp_path / "motd")]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, bob = LineClient.tcp(port), LineClient.tcp(port)
        assert alice.read_line().startswith("HELLO e2e ")
        alice.register("alice")
        bob.register("bob")
        alice.expect("JOIN #lobby bob")
        bob.send("hello from bob")
        assert alice.expect("MSG ") == "MSG #lobby bob hello from bob"
        assert bob.expect("MSG ") == "MSG #lobby bob hello from bob"
        alice.send("/msg bob psst")
        assert bob.expect("PRIV ") == "PRIV alice bob psst"
        alice.send("/who")
        assert alice.expect("USERS ") == "USERS #lobby alice bob"

        assert daemon.terminate() == -signal.SIGTERM
        for client in (alice, bob):
            assert client.expect("BYE ").startswith("BYE ")
            assert client.at_eof()
    assert any("alice" in text and "registered" in text for text in daemon.log)
    assert any("Server Shut Down" in text for text in daemon.log)
    assert not any("Traceback" in text for text in daemon.log)


def test_tls_and_tcp_listeners_share_rooms(tmp_path: Path) -> None:
    """A TLS client and a plain TCP client meet in #lobby of one daemon."""
    key, cert = make_certificate(tmp_path)
    tls = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    args = ["--listen", LOOPBACK, "--listen", tls]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        secure = LineClient.tls(daemon.ports[tls])
        plain = LineClient.tcp(daemon.ports[LOOPBACK])
        secure.register("sec")
        plain.register("plain")
        secure.send("over TLS")
        assert plain.expect("MSG ") == "MSG #lobby sec over TLS"
        plain.send("/quit done")
        assert secure.expect("QUIT ") == "QUIT plain done"
        daemon.process.send_signal(signal.SIGTERM)
        assert secure.expect("BYE ").startswith("BYE ")
        # Told, it goes: without this its TLS close would hold the daemon for
        # the shutdown grace (5 s) before the connection is aborted.
        secure.close()
        assert daemon.wait_exit() == -signal.SIGTERM


def peak_rss_kib(pid: int) -> int:
    """Return the process's peak resident set size (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found
    return int(found.group(1))


def test_megabyte_line_is_refused_without_growing_memory(tmp_path: Path) -> None:
    """A 1 MB line with no LF: ERR too-long, the next line works, peak RSS flat."""
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice = LineClient.tcp(port)
        alice.register("alice")
        alice.send("warm up")
        alice.expect("MSG ")
        before = peak_rss_kib(daemon.process.pid)
        chunk = b"x" * 65536
        for _ in range(16):
            alice.sock.sendall(chunk)
        alice.sock.sendall(b"\nstill here\n")
        assert alice.expect("ERR ").startswith("ERR too-long ")
        assert alice.expect("MSG ") == "MSG #lobby alice still here"
        growth = peak_rss_kib(daemon.process.pid) - before
        assert growth < 512, f"peak RSS grew by {growth} KiB"


def test_a_busy_port_stops_twistd_with_one_sentence(tmp_path: Path) -> None:
    """A second daemon on a taken port says why in one line and exits 1."""
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        result = subprocess.run(
            [
                twistd_path(),
                "-n",
                "--pidfile=",
                "chatd",
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=WAIT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"chatd: cannot listen on tcp:{port}:interface=127.0.0.1" in output
    assert "Address already in use" in output
    assert "Traceback" not in output
