"""Smoke test: the load benchmark still runs (tiny sizes; no figures are judged)."""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon import ROOT

from bench import cli
from bench.inspircd import (
    NETBUFFER_MAX,
    inspircd_conf,
    inspircd_path,
    inspircd_settings,
)
from bench.loadgen import IrcDialect, LoadLoop, register
from bench.report import Median, side_by_side, write_json
from bench.scenarios import Settings, default_window

# Smaller still than --quick's sizes (N = 10 and 30, 1 s of fanout, 2 s of
# chatter): one fanout size, a few tenths of a second each. These runs check
# that every scenario runs and loses nothing, not the figures.
SMOKE = ["--fanout-sizes", "10", "--fanout-seconds", "0.3", "--chatter-seconds", "0.5"]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m args...` from the checkout, which must exit 0 within 2 minutes."""
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_bench_quick_runs_every_scenario(tmp_path: Path) -> None:
    """`python -m bench --quick` against chatd: 0 lost, every idle client held."""
    out = tmp_path / "quick.json"
    run_module(
        "bench",
        "--quick",
        *SMOKE,
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
    )
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
    run_module(
        "bench",
        "--quick",
        *SMOKE,
        "--server",
        "chatd-irc",
        "--no-pin",
        "--json",
        str(out),
        "--markdown",
        str(tmp_path / "quick.md"),
        "fanout",
        "chatter",
    )
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
    result = run_module(
        "bench",
        "--quick",
        *SMOKE,
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
    )
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


def _tags(text: str) -> list[tuple[str, dict[str, str]]]:
    """InspIRCd's config format, as far as the benchmark writes it: tags of
    name="value" pairs, and # comments between them; anything else fails."""
    tags = []
    rest = re.sub(r"(?m)^\s*#.*$", "", text)
    for found in re.finditer(r"<(\w+)((?:\s+\w+=\"[^\"]*\")*)\s*>|(\S+)", rest):
        assert found.group(3) is None, f"not a tag: {found.group(3)!r}"
        pairs = dict(re.findall(r"(\w+)=\"([^\"]*)\"", found.group(2)))
        tags.append((found.group(1), pairs))
    return tags


def test_inspircd_config_lifts_every_throttle(tmp_path: Path) -> None:
    """The inspircd.conf written for a run listens on loopback only, and its one
    connect class has no flood penalty, no fakelag, large queues, no caps, no
    DNS lookups and no pings; netbuffersize is the largest InspIRCd accepts."""
    tags = _tags(inspircd_conf(40123, tmp_path, 20000))
    names = [name for name, _ in tags]
    assert "module" not in names  # core modules only: no ident, no dnsbl
    [bind] = [pairs for name, pairs in tags if name == "bind"]
    assert bind == {"address": "127.0.0.1", "port": "40123", "type": "clients"}
    [connect] = [pairs for name, pairs in tags if name == "connect"]
    assert connect["allow"] == "*" and connect["fakelag"] == "no"
    # The penalty allowed is threshold * 1000 in an unsigned 32-bit sum.
    assert 1_000_000 <= int(connect["threshold"]) <= (2**32 - 1) // 1000
    assert int(connect["commandrate"]) >= 1_000_000_000  # per second, in 1/1000s
    for queue in ("softsendq", "hardsendq", "recvq"):
        assert int(connect[queue]) >= 64 * 1024 * 1024, queue
    for cap in ("localmax", "globalmax", "limit"):
        assert int(connect[cap]) >= 100_000, cap
    assert connect["resolvehostnames"] == "no"
    assert int(connect["pingfreq"]) >= 3600 and int(connect["timeout"]) >= 3600
    [performance] = [pairs for name, pairs in tags if name == "performance"]
    assert performance["netbuffersize"] == str(NETBUFFER_MAX) == "65534"
    assert performance["softlimit"] == "20000"
    assert int(performance["somaxconn"]) >= 1024
    [dns] = [pairs for name, pairs in tags if name == "dns"]
    assert dns["server"] == "127.0.0.1"


def test_inspircd_window_holds_one_netbuffer() -> None:
    """fanout's default window: InspIRCd's runs hold at most one netbuffer of
    messages in flight (at N = 10: 1074 of 61 bytes, not 10,000); the cap does
    not bind from N = 100 on, and the other servers have none."""
    inspircd = inspircd_settings(Settings())
    assert default_window(10, inspircd, 61) == NETBUFFER_MAX // 61 == 1074
    assert default_window(100, inspircd, 61) == default_window(100, Settings(), 61)
    assert default_window(10, Settings(), 61) == 10_000


def test_side_by_side_compares_each_chatd_with_each_peer(tmp_path: Path) -> None:
    """Beside the ngircd ratios, a chatd/inspircd and a chatd-irc/inspircd row,
    in the tables and in the JSON."""
    rows = [
        Median("fanout", server, 1000, "1000", 3, 0, {"deliveries_per_cpu_s": value})
        for server, value in (
            ("chatd", 4e6),
            ("chatd-irc", 3e6),
            ("ngircd", 2e6),
            ("inspircd", 2.5e6),
        )
    ]
    table = side_by_side(rows, markdown=True).splitlines()
    ratios = {cells[1]: cells[3] for cells in (t.split(" | ") for t in table[4:])}
    assert ratios["chatd/ngircd"] == "2.00x"
    assert ratios["chatd/inspircd"] == "1.60x"
    assert ratios["chatd-irc/inspircd"] == "1.20x"
    path = tmp_path / "ratios.json"
    write_json(path, {}, [], rows)
    written = {
        ratio["pair"]: ratio["figures"]["deliveries_per_cpu_s"]
        for ratio in json.loads(path.read_text())["ratios"]
    }
    assert written == {
        "chatd/ngircd": 2.0,
        "chatd-irc/ngircd": 1.5,
        "chatd/inspircd": 1.6,
        "chatd-irc/inspircd": 1.2,
    }


def test_inspircd_missing_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--server inspircd` where it is not installed: one sentence saying how to
    install it, and exit status 2."""
    monkeypatch.setitem(cli.PEERS, "inspircd", lambda: None)
    before = signal.getsignal(signal.SIGTERM)
    try:
        status = cli.main(["--server", "inspircd", "fanout"])
    finally:
        signal.signal(signal.SIGTERM, before)
    said = capsys.readouterr().out.strip()
    assert status == 2
    assert said.startswith("inspircd is not installed") and said.count(". ") == 0
    assert "apt-get install -y inspircd" in said


def test_bench_quick_runs_against_inspircd(tmp_path: Path) -> None:
    """`--quick --server inspircd`: its clients JOIN after the welcome, every
    scenario runs, 0 lost, no echo, every idle client held."""
    if inspircd_path() is None:
        pytest.skip("inspircd is not installed (Debian: apt-get install -y inspircd)")
    out = tmp_path / "quick.json"
    run_module(
        "bench",
        "--quick",
        *SMOKE,
        "--server",
        "inspircd",
        "--no-pin",
        "--json",
        str(out),
        "--markdown",
        str(tmp_path / "quick.md"),
        "fanout",
        "chatter",
        "idle",
    )
    document = json.loads(out.read_text())
    assert document["meta"]["inspircd"].startswith("InspIRCd")
    runs = document["runs"]
    assert {run["scenario"] for run in runs} == {"fanout", "chatter", "idle"}
    for run in runs:
        figures = run["figures"]
        assert "error" not in figures, run
        assert figures.get("lost", 0) == 0 and figures.get("extra", 0) == 0, run
        if run["scenario"] == "fanout":
            assert figures["per_message"] == figures["members"] - 1, run
        if run["scenario"] == "idle":
            assert figures["held"] == figures["members"], run


class _SlowJoinServer(threading.Thread):
    """A loopback IRC server for register(): it welcomes each client at its USER,
    then answers JOINs oldest first, only once `hold` of them are unanswered (or
    none came for a moment), so that a client sending more would be seen."""

    def __init__(self, hold: int) -> None:
        super().__init__(daemon=True)
        self.hold = hold
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.most_unanswered = 0
        self.stopping = False

    def run(self) -> None:
        chosen = selectors.DefaultSelector()
        chosen.register(self.listener, selectors.EVENT_READ)
        unanswered: list[tuple[socket.socket, bytes]] = []
        buffers: dict[socket.socket, bytes] = {}
        nicks: dict[socket.socket, bytes] = {}
        while not self.stopping:
            events = chosen.select(0.05)
            for key, _ in events:
                if key.fileobj is self.listener:
                    accepted, _ = self.listener.accept()
                    buffers[accepted] = b""
                    chosen.register(accepted, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                data = conn.recv(4096)
                if not data:
                    chosen.unregister(conn)
                    continue
                *lines, buffers[conn] = (buffers[conn] + data).split(b"\r\n")
                for line in lines:
                    word, *args = line.split()
                    if word == b"NICK":
                        nicks[conn] = args[0]
                    elif word == b"USER":
                        conn.sendall(b":s 001 " + nicks[conn] + b" :hi\r\n")
                    elif word == b"JOIN":
                        unanswered.append((conn, args[0]))
            self.most_unanswered = max(self.most_unanswered, len(unanswered))
            if unanswered and (len(unanswered) >= self.hold or not events):
                conn, room = unanswered.pop(0)
                conn.sendall(b":s 366 " + nicks[conn] + b" " + room + b" :end\r\n")


def test_register_after_welcome_keeps_reg_window_joins_in_flight() -> None:
    """A server that welcomes before it takes JOINs (InspIRCd): up to
    welcome_window clients connect at once, and no more than window of them
    have a JOIN unanswered at any time."""
    server = _SlowJoinServer(hold=3)
    server.start()
    loop = LoadLoop(server.port, IrcDialect(oper=False, joins_after_welcome=True))
    try:
        clients = [(f"c{i}", "#r", False) for i in range(20)]
        done = register(
            loop, clients, 2, time.monotonic() + 20, 10.0, welcome_window=20
        )
    finally:
        loop.close_all()
        server.stopping = True
        server.join(5)
    assert done.done == 20 and done.failed == 0
    assert server.most_unanswered == 2


def test_cluster_talk_cost_measures_publish_and_apply_in_process() -> None:
    """bench/cluster_talk_cost.py's wall mode: a figure per side, each delivered."""
    from bench.cluster_talk_cost import MEASURES, ROOT, wall

    figures = wall(ROOT, messages=5, rounds=2)
    assert set(figures) == set(MEASURES)
    assert all(figure > 0 for figure in figures.values())


def test_floor_runs_chatter_against_chatd_and_the_floor(tmp_path: Path) -> None:
    """`python -m bench.floor` (small): chatd's IRC door with history kept and the
    floor server both carry every line (0 lost), and the JSON holds each one's
    CPU split."""
    out = tmp_path / "floor.json"
    run_module(
        "bench.floor",
        "--runs=1",
        "--seconds=0.5",
        "--rooms=3",
        "--members=3",
        "--no-pin",
        "--servers=chatd-irc,floor",
        f"--json={out}",
    )
    results = json.loads(out.read_text())
    assert sorted(results) == ["chatd-irc", "floor"]
    for kind, (figures,) in results.items():
        assert "error" not in figures, (kind, figures)
        assert figures["lost"] == 0 and figures["messages"] > 0, (kind, figures)
        assert figures["user_pct"] >= 0 and figures["sys_pct"] >= 0, (kind, figures)
