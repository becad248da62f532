"""Smoke test: the load benchmark still runs (tiny sizes; no figures are judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon import ROOT

from bench.report import Median, side_by_side


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


def test_bench_quick_runs_through_the_irc_listener(tmp_path: Path) -> None:
    """`--server chatd-irc`: IRC clients on chatd's --irc port, 0 lost, no echo."""
    out = tmp_path / "quick.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--server",
            "chatd-irc",
            "--no-pin",
            "--json",
            str(out),
            "--markdown",
            str(tmp_path / "quick.md"),
            "fanout",
            "chatter",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads(out.read_text())
    assert "--no-history" in document["meta"]["chatd_irc_args_text"]
    runs = document["runs"]
    assert {run["server"] for run in runs} == {"chatd-irc"}
    assert {run["scenario"] for run in runs} == {"fanout", "chatter"}
    for run in runs:
        figures = run["figures"]
        assert "error" not in figures, run
        assert figures["lost"] == 0 and figures["extra"] == 0, run
        if run["scenario"] == "fanout":
            # IRC does not echo PRIVMSG to its sender: N - 1 deliveries each.
            assert figures["per_message"] == figures["members"] - 1, run


def test_side_by_side_compares_each_chatd_with_ngircd() -> None:
    """The table has a chatd/ngircd and a chatd-irc/ngircd ratio row per size."""
    rows = [
        Median("fanout", server, 1000, "1000", 3, 0, {"deliveries_per_cpu_s": value})
        for server, value in (("chatd", 4e6), ("chatd-irc", 3e6), ("ngircd", 2e6))
    ]
    table = side_by_side(rows, markdown=True).splitlines()
    ratios = {cells[1]: cells[3] for cells in (t.split(" | ") for t in table[4:])}
    assert ratios["chatd/ngircd"] == "2.00x"
    assert ratios["chatd-irc/ngircd"] == "1.50x"


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


def test_history_bound_bench_holds_the_bound(tmp_path: Path) -> None:
    """bench/history_bound.py's flood: 300 messages over 3 rooms at 50 a room
    leave 150 rows; with a total of 60, 60 rows."""
    from bench.history_bound import flood

    rows, size, _, _ = flood(str(tmp_path / "a.sqlite3"), 300, 50, 10, 48, rooms=3)
    assert rows == 150 and size > 0
    rows, _, _, _ = flood(str(tmp_path / "b.sqlite3"), 300, 50, 10, 48, 3, 60)
    assert rows == 60
