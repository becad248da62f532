"""Smoke test: the load benchmark still runs (tiny sizes; no figures are judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon import ROOT


def test_bench_quick_runs_every_scenario(tmp_path: Path) -> None:
    """`python -m bench --quick` against chatd: 0 lost, every idle client held."""
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
            "chatter",
            "idle",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert {run["scenario"] for run in runs} == {"fanout", "chatter", "idle"}
    for run in runs:
        figures = run["figures"]
        assert figures.get("lost", 0) == 0, run
        if run["scenario"] == "idle":
            assert figures["held"] == figures["members"], run


def test_bench_runs_chatd_variants_side_by_side(tmp_path: Path) -> None:
    """--chatd-variant NAME=ARGS runs chatd again as chatd-NAME with those
    arguments, run by run beside chatd, and the tables give the ratio."""
    out = tmp_path / "variant.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--server",
            "chatd",
            "--no-pin",
            "--chatd-variant",
            "nohist=--no-history",
            "--json",
            str(out),
            "--markdown",
            str(tmp_path / "variant.md"),
            "chatter",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads(out.read_text())
    assert [run["server"] for run in document["runs"]] == ["chatd", "chatd-nohist"]
    assert document["meta"]["chatd_variants"] == {"chatd-nohist": "--no-history"}
    assert "chatd/chatd-nohist" in result.stdout
