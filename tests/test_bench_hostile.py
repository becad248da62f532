"""Smoke test: the hostile-client figures script still runs (tiny sizes, no judging)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon import ROOT

# Every code path of the script; empty-open is empty with other daemon options.
SCENARIOS = ["burst", "empty", "toolong", "telnet", "recvq", "backlog"]


def test_hostile_quick_runs_every_scenario(tmp_path: Path) -> None:
    """`python bench/hostile.py --quick` against this checkout: one run of each."""
    out = tmp_path / "quick.json"
    result = subprocess.run(
        [
            sys.executable,
            "bench/hostile.py",
            "--quick",
            "--root",
            str(ROOT),
            "--json",
            str(out),
            *SCENARIOS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    scenarios = json.loads(out.read_text())["scenarios"]
    assert list(scenarios) == SCENARIOS
    for name, runs in scenarios.items():
        assert len(runs) == 1, name
        assert runs[0]["figures"], name
    hello = scenarios["backlog"][0]["figures"][0]
    assert hello["name"] == "got HELLO" and hello["value"] > 0
