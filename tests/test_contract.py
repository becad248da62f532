"""An independent client, written only from PROTOCOL.md, against the real daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from daemon import running_daemon
from test_daemon import LOOPBACK, make_certificate

CHECKER = Path(__file__).with_name("contract_check.py")


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_contract_checker_passes_against_twistd(tmp_path: Path, transport: str) -> None:
    """Every check of contract_check.py passes over TCP and over TLS."""
    if transport == "tls":
        key, cert = make_certificate(tmp_path)
        listen = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    else:
        listen = LOOPBACK
    # The checker sends as fast as the server answers: flood control off.
    args = ["--listen", listen, "--flood-rate", "0"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        extra = ["--tls"] if transport == "tls" else []
        result = subprocess.run(
            [
                sys.executable,
                str(CHECKER),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--pace",
                "0",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert result.returncode == 0 and not failures, result.stdout[-4000:]
    assert result.stdout.rstrip().endswith(" 0 failed")
