"""The config file (--config chatd.toml) and --check-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from daemon import ROOT, LineClient, running_daemon, twistd_path
from test_daemon import LOOPBACK
from twisted.python import usage

from chatd.ops.config_file import ConfigFileError, config_path, read_config
from twisted.plugins.chatd_plugin import Options

EXAMPLE = ROOT / "deploy" / "chatd.toml"


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "chatd.toml"
    path.write_text(text)
    return str(path)


def test_file_values_are_used(tmp_path: Path) -> None:
    """Numbers, strings, flags and lists from the file reach the options."""
    path = config(
        tmp_path,
        'name = "filed"\nmax-clients = 300\nflood-rate = 1\nno-history = true\n'
        'listen = ["tcp:0:interface=127.0.0.1", "tcp:5599"]\n'
        'irc = ["tcp:0:interface=127.0.0.1"]\n'
        'web-origin = ["HTTPS://Chat.Example.com"]\n',
    )
    options = parse("--config", path)
    assert options["config"].name == "filed"
    assert options["config"].max_clients == 300
    assert options["config"].flood_rate == 1.0
    assert options["no-history"]
    assert options["listen"] == ["tcp:0:interface=127.0.0.1", "tcp:5599"]
    assert options["irc"] == ["tcp:0:interface=127.0.0.1"]
    assert options["web-origin"] == ["https://chat.example.com"]


def test_command_line_wins_over_the_file(tmp_path: Path) -> None:
    """An option on the command line replaces the file's (a list as a whole)."""
    path = config(
        tmp_path,
        'name = "filed"\nmax-clients = 300\nlisten = ["tcp:5601", "tcp:5602"]\n',
    )
    options = parse("--max-clients", "20", f"--config={path}", "--listen", "tcp:0")
    assert options["config"].max_clients == 20
    assert options["config"].name == "filed"
    assert options["listen"] == ["tcp:0"]


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    """Unknown keys and wrong types: one UsageError, one line per problem."""
    path = config(
        tmp_path,
        'max-client = 10\nmax-clients = "ten"\nlisten = "tcp:5501"\n'
        'no-history = 1\nflood-rate = true\nconfig = "other.toml"\n',
    )
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", path)
    lines = str(raised.value).splitlines()
    assert len(lines) == 6, lines
    assert "unknown key 'max-client'" in lines[0]
    assert "max-clients must be a whole number, not 'ten'" in lines[1]
    assert "listen must be a list of strings" in lines[2]
    assert "no-history must be true or false" in lines[3]
    assert "flood-rate must be a number" in lines[4]
    assert "unknown key 'config'" in lines[5]


def test_bad_values_are_named_with_their_key(tmp_path: Path) -> None:
    """Values of the right type but out of range: each named, all at once."""
    path = config(tmp_path, 'backfill = -1\nweb-origin = ["nope"]\n')
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", path)
    lines = str(raised.value).splitlines()
    assert len(lines) == 2 and "backfill" in lines[0] and "nope" in lines[1]
    path = config(tmp_path, 'max-line = 10\nsendq = 1\nname = "two words"\n')
    with pytest.raises(usage.UsageError) as raised:  # the options' own rules
        parse("--config", path)
    assert str(raised.value).splitlines() == [
        "--name must be one word, without spaces",
        "--max-line must be at least 64",
        "--sendq must be at least 4096",
    ]


def test_unreadable_or_not_toml(tmp_path: Path) -> None:
    """A missing file or broken TOML is one clear error."""
    with pytest.raises(usage.UsageError, match="cannot read"):
        parse("--config", str(tmp_path / "missing.toml"))
    with pytest.raises(usage.UsageError, match="not TOML"):
        parse("--config", config(tmp_path, "name = \n"))


def test_read_config_and_config_path(tmp_path: Path) -> None:
    """The module alone: kinds checked; the last --config of a command line."""
    path = config(tmp_path, "a = 1\nb = 2.5\n")
    assert read_config(path, {"a": "int", "b": "number"}) == {"a": 1, "b": 2.5}
    with pytest.raises(ConfigFileError) as raised:
        read_config(path, {"a": "str"})
    assert len(raised.value.problems) == 2
    assert config_path(["--config", "a", "--config=b"]) == "b"
    assert config_path(["--name", "x"]) is None


# What the service turns on beyond the defaults: IRC, and metrics on this
# machine for deploy/prometheus.yml (what the unit's command line said before).
DEPLOYED = {"irc": ["tcp:6667"], "metrics": "tcp:9101:interface=127.0.0.1"}


def test_example_file_parses_and_equals_the_defaults() -> None:
    """deploy/chatd.toml names every option, each set to its default but for
    DEPLOYED, what the service turns on.

    The other options without a default (off unless given) are there commented out.
    """
    kinds = Options()._config_kinds()
    text = EXAMPLE.read_text()
    set_in_file = set(read_config(str(EXAMPLE), kinds))
    no_default = {"motd", "operators", "redis", "node-name"}
    assert set_in_file == set(kinds) - no_default
    assert all(f"\n# {key} = " in text for key in no_default)
    options, defaults = parse("--config", str(EXAMPLE)), parse()
    for key in kinds:
        assert options[key] == DEPLOYED.get(key, defaults[key]), key
    assert options["config"] == defaults["config"]  # the ServerConfig built


def test_check_config_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check-config: exit 0 and ok, or 1 and every problem on stderr."""
    with pytest.raises(SystemExit) as exited:
        parse("--config", str(EXAMPLE), "--check-config")
    assert exited.value.code == 0
    assert capsys.readouterr().out == "ok\n"
    path = config(tmp_path, "max-client = 10\nname = 3\n")
    with pytest.raises(SystemExit) as exited:
        parse("--config", path, "--check-config")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "max-client" in err and "name must be a string" in err


@pytest.mark.parametrize(("text", "code"), [("", 0), ("sendq = 1\n", 1)])
def test_check_config_with_the_real_twistd(
    tmp_path: Path, text: str, code: int
) -> None:
    """`twistd chatd --config F --check-config` exits as nginx -t does."""
    path = config(tmp_path, text)
    done = subprocess.run(
        [twistd_path(), "chatd", "--config", path, "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)},
    )
    assert done.returncode == code, done.stderr
    if code == 0:
        assert done.stdout == "ok\n"
    else:
        assert "--sendq must be at least 4096" in done.stderr


def test_daemon_runs_with_a_config_file(tmp_path: Path) -> None:
    """The real twistd started with --config listens and greets as the file says."""
    path = config(
        tmp_path,
        f'listen = ["{LOOPBACK}"]\nname = "filed"\ndatabase = ":memory:"\n',
    )
    with running_daemon(["--config", path], tmp_path) as daemon:
        client = LineClient.tcp(daemon.ports[LOOPBACK])
        assert client.expect("HELLO ").startswith("HELLO filed")
        client.close()
