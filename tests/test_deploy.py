"""deploy/: the systemd unit, the scrape config, the dashboard; JSON logs."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from daemon import ROOT, LineClient, running_daemon, twistd_path
from helpers import Mailbox, make_factory
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_daemon import LOOPBACK
from twisted.internet.task import Clock
from twisted.python.reflect import namedAny

from bench.dashboard import PANELS, dashboard_json
from chatd.ops.metrics import ReactorLag, metrics_registry
from chatd.store.writer import SQLiteHistory

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "chatd.service"


def unit_settings() -> dict[str, list[str]]:
    """The unit's settings, continuation lines joined (name -> values in order)."""
    text = UNIT.read_text().replace("\\\n", " ")
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        name, _, setting = line.partition("=")
        settings.setdefault(name, []).append(setting.strip())
    return settings


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing wrong with deploy/chatd.service.

    Its ExecStart names /opt/chatd/bin/twistd, which verify insists exists:
    the copy checked here names this machine's twistd instead, nothing else
    changed.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (no systemd here)")
    copy = tmp_path / "chatd.service"
    copy.write_text(UNIT.read_text().replace("/opt/chatd/bin/twistd", twistd_path()))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "chatd.service" not in done.stderr, done.stderr  # no warning about it


def test_systemd_unit_runs_chatd_sandboxed_as_its_own_user() -> None:
    """Dedicated user, restart on failure, open files raised, system read-only."""
    settings = unit_settings()
    assert settings["User"] == ["chatd"]
    assert settings["Restart"] == ["on-failure"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["StateDirectory"] == ["chatd"]
    assert settings["ReadWritePaths"] == ["/var/lib/chatd"]
    assert "u chatd " in (DEPLOY / "chatd.sysusers").read_text()


def test_systemd_units_command_line_is_one_chatd_accepts() -> None:
    """ExecStart's twistd options parse; chatd's are the example config file."""
    from twisted.plugins.chatd_plugin import Options

    command = shlex.split(unit_settings()["ExecStart"][0])
    assert command[:3] == ["/opt/chatd/bin/twistd", "-n", "--pidfile="]
    at = command.index("chatd")
    twistd_options = command[3:at]
    assert twistd_options[0] == "--logger"
    assert callable(namedAny(twistd_options[1]))
    assert command[at + 1 :] == ["--config", "/etc/chatd/chatd.toml"]
    assert "deploy/chatd.toml /etc/chatd/chatd.toml" in UNIT.read_text()
    options = Options()
    options.parseOptions(["--config", str(DEPLOY / "chatd.toml")])
    # Relative to WorkingDirectory: the one directory the service may write.
    assert unit_settings()["WorkingDirectory"] == ["/var/lib/chatd"]
    assert "/" not in options["database"]
    scrape = (DEPLOY / "prometheus.yml").read_text()
    assert '"127.0.0.1:9101"' in scrape and "job_name: chatd" in scrape
    # The service serves what prometheus.yml scrapes, and IRC, as it always did.
    assert options["metrics"] == "tcp:9101:interface=127.0.0.1"
    assert options["irc"] == ["tcp:6667"]


def test_dashboard_file_is_the_one_bench_dashboard_writes() -> None:
    """deploy/grafana-dashboard.json == python -m bench.dashboard (no drift)."""
    assert (DEPLOY / "grafana-dashboard.json").read_text() == dashboard_json()
    model = json.loads(dashboard_json())
    assert len(model["panels"]) == len(PANELS)
    assert all(panel["targets"] for panel in model["panels"])


def test_every_metric_the_dashboard_queries_is_served(tmp_path: Path) -> None:
    """Each metric named in a panel is in a scrape of chatd (with history on)."""
    clock = Clock()
    history = SQLiteHistory(str(tmp_path / "h.sqlite3"), clock, Mailbox())
    factory = make_factory(clock)
    factory.stats.door("line")  # as the plugin announces the doors it listens for
    registry = metrics_registry(factory, history, ReactorLag(clock))
    text = generate_latest(registry).decode()
    served = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for panel in PANELS:
        for query in panel.queries:
            name = query.metric + ("_bucket" if query.kind == "quantile" else "")
            assert name in served, (panel.title, name)
            if query.kind == "rate":
                assert name.endswith("_total"), name  # rate() only on counters


def test_json_logs_with_twistds_logger_option(tmp_path: Path) -> None:
    """--logger chatd.ops.logs.json_to_stdout: one JSON object a line, fields kept."""
    with running_daemon(
        ["--listen", LOOPBACK],
        tmp_path,
        twistd_args=("--logger", "chatd.ops.logs.json_to_stdout"),
    ) as daemon:
        client = LineClient.tcp(daemon.ports[LOOPBACK])
        client.register("alice")
        daemon.wait_for_log(re.compile(r"registered as alice"))
        assert daemon.terminate() == -15
    records = [json.loads(line) for line in daemon.log]  # every line is JSON
    for record in records:
        assert {"time", "level", "namespace", "message"} <= set(record)
        assert record["time"].endswith("Z")
    (registered,) = [r for r in records if r["message"].endswith("registered as alice")]
    assert registered["nick"] == "alice"
    assert registered["level"] == "info"
    assert registered["namespace"] == "chatd.protocol.LineConnection"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", registered["peer"])
    assert any(r["message"].startswith("closing 1 connections") for r in records)
