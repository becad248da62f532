"""Smoke test: the load benchmark still runs (tiny sizes; no figures are judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon import ROOT


def test_bench_quick_fanout_runs_and_loses_nothing(tmp_path: Path) -> None:
    """`python -m bench --quick fanout` against chatd writes figures with 0 lost."""
    out = tmp_path / "quick.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--server",
            "chatd",
            "--no-pin",
            "--json",
            str(out),
            "--markdown",
            str(tmp_path / "quick.md"),
            "fanout",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert runs and all(run["figures"]["lost"] == 0 for run in runs)
