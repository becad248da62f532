"""End to end: SIGHUP to the real twistd reloads its config file.

A renewed TLS certificate reaches new connections of every TLS listener
while the ones already open stay and chat; a bad file changes nothing and
the log says why.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from daemon import WAIT, Daemon, LineClient, running_daemon
from test_daemon import LOOPBACK, make_certificate


def der_of(cert_path: Path) -> bytes:
    """The DER bytes of a PEM certificate file: what a TLS client is shown."""
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        Encoding.DER
    )


def shown_certificate(port: int) -> bytes:
    """Open a TLS connection to port, return the certificate it shows, close it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            shown = tls.getpeercert(binary_form=True)
    assert shown is not None
    return shown


def sighup(daemon: Daemon, expect: str) -> str:
    """Send SIGHUP and return the log line that matches expect."""
    daemon.process.send_signal(signal.SIGHUP)
    return daemon.wait_for_log(re.compile(expect)).string


def motd_shown(client: LineClient, nick: str) -> list[str]:
    """Register nick; return the INFO lines between WELCOME and the JOIN."""
    client.expect("NICK ")
    client.send(nick)
    client.expect(f"WELCOME {nick} ")
    shown = []
    while not (text := client.read_line()).startswith("JOIN "):
        shown.append(text.removeprefix("INFO "))
    return shown


def test_a_renewed_certificate_reaches_new_clients_and_nobody_is_dropped(
    tmp_path: Path,
) -> None:
    """Key and certificate replaced, SIGHUP: a new TLS client of the line, the
    IRC and the web listener sees the new certificate; the TLS client
    connected before stays and chats with the new one."""
    key, cert = make_certificate(tmp_path)
    old = der_of(cert)
    tls = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    config = tmp_path / "chatd.toml"
    config.write_text(
        f'listen = ["{LOOPBACK}", "{tls}"]\nirc = ["{tls}"]\nweb = ["{tls}"]\n'
        "no-history = true\n"
    )
    with running_daemon(["--config", str(config)], tmp_path, listeners=4) as daemon:
        line_port, irc_port = daemon.ports[tls], daemon.ports[f"irc {tls}"]
        web_port = daemon.ports[f"web {tls}"]
        alice = LineClient.tls(line_port)
        alice.register("alice")
        assert shown_certificate(irc_port) == old

        renewed = tmp_path / "renewed"
        renewed.mkdir()
        new_key, new_cert = make_certificate(renewed)
        new = der_of(new_cert)
        assert new != old
        os.replace(new_key, key)  # as certbot's deploy hook would copy them in
        os.replace(new_cert, cert)
        daemon.process.send_signal(signal.SIGHUP)
        found = [
            daemon.wait_for_log(re.compile(r"new certificate \(SHA-256")).string
            for _ in range(3)  # one line per TLS listener
        ]
        assert all(tls in text for text in found)

        assert shown_certificate(line_port) == new
        assert shown_certificate(irc_port) == new
        assert shown_certificate(web_port) == new
        bob = LineClient.tls(line_port)
        assert bob.sock.getpeercert(binary_form=True) == new  # type: ignore[attr-defined]
        bob.register("bob")
        alice.expect("JOIN #lobby bob")
        alice.send("still here after the renewal")
        assert bob.expect("MSG ") == "MSG #lobby alice still here after the renewal"
        bob.send("welcome back")
        assert alice.expect("MSG #lobby bob") == "MSG #lobby bob welcome back"

        daemon.process.send_signal(signal.SIGTERM)
        assert alice.expect("BYE ").startswith("BYE ")
        assert bob.expect("BYE ").startswith("BYE ")
        # Told, they go: their TLS closes would otherwise hold the daemon for
        # the shutdown grace (5 s) before the connections are aborted.
        alice.close()
        bob.close()
        assert daemon.wait_exit() == -signal.SIGTERM
    assert not any("Traceback" in text for text in daemon.log)


def test_a_bad_file_on_sighup_keeps_the_old_settings_and_logs_why(
    tmp_path: Path,
) -> None:
    """A file with a wrong value: SIGHUP logs the problem, new clients still
    get the old MOTD; the file mended, SIGHUP applies the new one."""
    motd = tmp_path / "motd"
    motd.write_text("The first MOTD.\n")
    config = tmp_path / "chatd.toml"
    good = f'listen = ["{LOOPBACK}"]\nno-history = true\nmotd = "{motd}"\n'
    config.write_text(good)
    with running_daemon(["--config", str(config)], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        motd.write_text("The second MOTD.\n")
        config.write_text(good + 'max-clients = "lots"\n')
        refused = sighup(daemon, r"reload \(SIGHUP\) refused")
        assert "max-clients must be a whole number" in refused
        assert motd_shown(LineClient.tcp(port), "early") == ["The first MOTD."]

        config.write_text(good)
        assert "changed: --motd" in sighup(daemon, r"reload \(SIGHUP\): ")
        assert motd_shown(LineClient.tcp(port), "later") == ["The second MOTD."]
        assert daemon.terminate() == -signal.SIGTERM
    assert not any("Traceback" in text for text in daemon.log)
