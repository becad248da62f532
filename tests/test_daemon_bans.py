"""Bans against the real twistd: a hostile mask freezes nobody (issue 22, item 1)."""

from __future__ import annotations

import time
from pathlib import Path

from daemon import LineClient, running_daemon

LOOPBACK = "tcp:0:interface=127.0.0.1"
FREEZING = "*a*a*a*a*a*a*a*a*a*a*z"  # 11 s a check when masks were regexes
VICTIM = "aaaaaaaaaaaaaaaaaaaX"
BOUND = 2.0  # seconds: generous for a loaded machine; the freeze was 11 s a line


def timed_expect(client: LineClient, prefix: str) -> float:
    """Wait (at most BOUND) for a line starting with prefix; return the seconds."""
    start = time.monotonic()
    client.sock.settimeout(BOUND)
    client.expect(prefix)
    return time.monotonic() - start


def test_a_backtracking_mask_freezes_nobody(tmp_path: Path) -> None:
    """/ban *a*a*a*a*a*a*a*a*a*a*z, then aaaaaaaaaaaaaaaaaaaX joins and speaks:
    it is let in (no match), and another user's echo comes back at once."""
    with running_daemon(["--listen", LOOPBACK, "--no-history"], tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        op, victim, probe = (LineClient.tcp(port) for _ in range(3))
        op.register("op")
        op.send("/join #trap")
        op.expect("JOIN #trap op")
        op.send(f"/ban {FREEZING}")
        op.expect(f"BAN #trap {FREEZING}")
        victim.register(VICTIM)
        probe.register("probe")
        victim.send("/join #trap")
        victim.send("in the trap")
        probe.send("ping")
        assert timed_expect(probe, "MSG #lobby probe ping") < BOUND
        assert timed_expect(victim, f"JOIN #trap {VICTIM}") < BOUND
        assert timed_expect(victim, f"MSG #trap {VICTIM} in the trap") < BOUND
        for client in (op, victim, probe):
            client.close()
