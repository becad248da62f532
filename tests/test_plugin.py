"""The twistd plugin: options, checks and the service tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin, getPlugins
from twisted.python import usage
from zope.interface.verify import verifyObject

from chatd.config import ServerConfig
from chatd.ops.service import (
    FarewellService,
    FileLimitService,
    HistoryService,
    raise_open_file_limit,
)
from chatd.store.interface import Bound
from chatd.store.writer import SQLiteHistory
from twisted.plugins.chatd_plugin import Options, chatd


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def test_plugin_is_found_by_twistd() -> None:
    """getPlugins(IServiceMaker) lists the chatd tap."""
    assert "chatd" in {maker.tapname for maker in getPlugins(IServiceMaker)}
    assert verifyObject(IServiceMaker, chatd) and verifyObject(IPlugin, chatd)


def test_the_readme_documents_every_option_and_no_other() -> None:
    """README's option tables name exactly the options `twistd chatd --help` lists."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = set()
    for row in readme.splitlines():
        if row.startswith("| `--"):
            first_cell = row.split("|")[1]
            documented |= set(re.findall(r"`--([a-z0-9-]+)", first_cell))
    listed = {name.rstrip("=") for name in Options().longOpt} - {"help", "version"}
    assert documented == listed
    assert "--redis" in Options.synopsis  # the usage line names the cluster too


def test_defaults() -> None:
    """No options: tcp:5501 and the docs/protocol.md defaults."""
    options = parse()
    assert options["listen"] == ["tcp:5501"]
    assert options["config"] == ServerConfig(flush_delay=0.0)


def test_options_are_parsed(tmp_path: Path) -> None:
    """--listen repeats; --name, --motd and --max-line reach the config."""
    motd = tmp_path / "motd.txt"
    motd.write_text("Welcome to the LAN party\n\x1b[31mno colours\x1b[0m\n\n\n")
    options = parse(
        "--listen",
        "tcp:6000",
        "--listen",
        "tcp:6001",
        "--name",
        "lan",
        "--motd",
        str(motd),
        "--max-line",
        "4096",
    )
    assert options["listen"] == ["tcp:6000", "tcp:6001"]
    assert options["config"] == ServerConfig(
        name="lan",
        motd=("Welcome to the LAN party", "[31mno colours[0m"),
        max_line=4096,
        flush_delay=0.0,
    )


def test_room_caps_reach_the_config_and_the_chat() -> None:
    """--max-rooms and --max-rooms-per-user end up in ServerConfig, and the
    service's Chat enforces them."""
    options = parse("--max-rooms", "500", "--max-rooms-per-user", "10")
    config = options["config"]
    assert (config.max_rooms, config.max_rooms_per_user) == (500, 10)
    assert parse()["config"].max_rooms == 10000
    assert parse()["config"].max_rooms_per_user == 50
    service = chatd.makeService(options)
    listener = next(c for c in service if isinstance(c, StreamServerEndpointService))
    chat = listener.factory.hub.chat
    assert (chat.max_rooms, chat.max_rooms_per_user) == (500, 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "two words"], "--name"),
        (["--name", ""], "--name"),
        (["--max-line", "10"], "--max-line"),
        (["--max-line", "many"], "whole number"),
        (["--motd", "/nonexistent/motd"], "--motd"),
        (["--max-rooms", "0"], "--max-rooms must be at least 1"),
        (["--max-rooms-per-user", "0"], "--max-rooms-per-user must be at least 1"),
        (["--max-rooms", "lots"], "whole number"),
        (["--backfill", "101"], "--backfill must be at most 100"),
        (["--backfill", "-1"], "zero or more"),
        (["--history-days", "-1"], "zero or more"),
        (["--history-days", "a month"], "expected a number"),
        (["--database", ""], "--database needs a file name"),
        (["--history-room-max", "-1"], "zero or more"),
        (["--history-room-max", "lots"], "whole number"),
        (["--history-total-max", "1e6"], "whole number"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    """Each bad value is a UsageError that names the option."""
    with pytest.raises(usage.UsageError, match=message):
        parse(*args)


def test_make_service_has_one_listener_per_listen_and_a_farewell() -> None:
    """Two --listen give two listeners sharing one factory, plus the farewell."""
    service = chatd.makeService(
        parse(
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--listen",
            "tcp:0:interface=127.0.0.2",
        )
    )
    children = list(service)
    farewell = next(c for c in children if isinstance(c, FarewellService))
    listeners = [c for c in children if isinstance(c, StreamServerEndpointService)]
    assert len(listeners) == 2
    assert children.index(farewell) < children.index(listeners[0])  # stops last
    assert listeners[0].factory is listeners[1].factory  # one door factory
    assert listeners[0].factory.hub is farewell.factory  # on the one hub
    assert any(isinstance(c, FileLimitService) for c in children)


def test_history_options_and_service() -> None:
    """By default history is kept in chatd.sqlite3 for 30 days, 20 lines of
    backfill; the HistoryService comes before the farewell, so it stops after."""
    options = parse()
    assert (options["database"], options["history-days"]) == ("chatd.sqlite3", 30.0)
    assert options["config"].backfill == 20 and not options["no-history"]
    service = chatd.makeService(options)
    children = list(service)
    history = next(c for c in children if isinstance(c, HistoryService))
    farewell = next(c for c in children if isinstance(c, FarewellService))
    assert children.index(history) < children.index(farewell)
    assert isinstance(history.history, SQLiteHistory)
    assert farewell.factory.chat.history is history.history
    assert history.history.path == "chatd.sqlite3"


def test_history_options_are_parsed() -> None:
    """--database, --history-days and --backfill reach the store and config."""
    options = parse(
        "--database", "/var/lib/chatd/h.db", "--history-days", "7", "--backfill", "0"
    )
    assert options["config"].backfill == 0
    history = next(
        c for c in chatd.makeService(options) if isinstance(c, HistoryService)
    )
    assert (history.history.path, history.history.keep_days) == (
        "/var/lib/chatd/h.db",
        7.0,
    )


def test_history_bound_options_reach_the_store() -> None:
    """--history-room-max and --history-total-max (default 10,000 and 1,000,000;
    0: no bound) become the SQLite store's Bound."""
    assert parse()["history-bound"] == Bound(10_000, 1_000_000) == Bound()
    options = parse("--history-room-max", "500", "--history-total-max", "0")
    history = next(
        c for c in chatd.makeService(options) if isinstance(c, HistoryService)
    )
    assert history.history.bound == Bound(room=500, total=0)


def test_no_history_means_no_store() -> None:
    """--no-history: no HistoryService, and the chat has no store."""
    service = chatd.makeService(parse("--no-history"))
    assert not any(isinstance(c, HistoryService) for c in service)
    farewell = next(c for c in service if isinstance(c, FarewellService))
    assert farewell.factory.chat.history is None


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    """The soft limit goes up to the hard one, and the log would say from what."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        before, after = raise_open_file_limit()
        assert before == lowered
        assert after == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert after == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_bad_endpoint_is_a_usage_error() -> None:
    """An unparsable --listen is a UsageError naming it."""
    with pytest.raises(usage.UsageError, match="carrier-pigeon"):
        parse("--listen", "carrier-pigeon:5501")


def test_a_bare_port_number_gets_a_hint() -> None:
    """--listen 5501 suggests tcp:5501."""
    with pytest.raises(usage.UsageError, match="did you mean tcp:5501"):
        parse("--listen", "5501")


def test_installed_distribution_ships_the_plugin() -> None:
    """A regular `pip install .` puts twisted/plugins/chatd_plugin.py in place."""
    from importlib.metadata import PackageNotFoundError, files

    try:
        installed = files("chatd") or []
    except PackageNotFoundError:
        pytest.skip("chatd is not installed; run from the README's install")
    names = {str(path) for path in installed}
    if not any(name.startswith("chatd/") for name in names):
        pytest.skip("chatd is installed in editable mode; nothing to inspect")
    assert "twisted/plugins/chatd_plugin.py" in names
    assert not any(
        name in names for name in ("twisted/__init__.py", "twisted/plugins/__init__.py")
    )


def test_irc_is_off_unless_given() -> None:
    """Without --irc there is no IRC listener; --irc is repeatable."""
    assert parse()["door_endpoints"]["irc"] == []
    options = parse("--irc", "tcp:6667", "--irc", "tcp:6668")
    assert [description for description, _ in options["door_endpoints"]["irc"]] == [
        "tcp:6667",
        "tcp:6668",
    ]


def test_irc_listeners_share_the_hub() -> None:
    """--irc adds a listener whose door factory builds IRC connections on the hub."""
    from chatd.factory import ChatFactory, DoorFactory
    from chatd.irc.protocol import IrcConnection
    from chatd.protocol import LineConnection

    service = chatd.makeService(
        parse(
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--irc",
            "tcp:0:interface=127.0.0.1",
        )
    )
    listeners = [c for c in service if isinstance(c, StreamServerEndpointService)]
    assert len(listeners) == 2
    line, irc = (listener.factory for listener in listeners)
    assert isinstance(line, DoorFactory) and isinstance(irc, DoorFactory)
    assert isinstance(line.hub, ChatFactory) and irc.hub is line.hub
    assert line.door is LineConnection and irc.door is IrcConnection


def test_bad_irc_endpoint_is_a_usage_error() -> None:
    """An unparsable --irc is a UsageError naming the option."""
    with pytest.raises(usage.UsageError, match="--irc carrier-pigeon"):
        parse("--irc", "carrier-pigeon:6667")


def test_web_is_off_unless_given() -> None:
    """Without --web there is no web listener; --web and --web-origin repeat."""
    options = parse()
    assert options["door_endpoints"]["web"] == [] and options["web-origin"] == []
    assert not options["web-trust-proxy"]
    options = parse(
        "--web",
        "tcp:8080",
        "--web",
        "tcp:8081",
        "--web-origin",
        "https://Chat.Example.com:443/",
        "--web-origin",
        "*",
        "--web-trust-proxy",
    )
    assert [d for d, _ in options["door_endpoints"]["web"]] == ["tcp:8080", "tcp:8081"]
    assert options["web-origin"] == ["https://chat.example.com", "*"]
    assert options["web-trust-proxy"]


def test_bad_web_options_are_usage_errors() -> None:
    """A --web that is no endpoint, or a --web-origin that is no origin, is refused."""
    with pytest.raises(usage.UsageError, match="--web carrier-pigeon"):
        parse("--web", "carrier-pigeon:80")
    with pytest.raises(usage.UsageError, match="--web-origin chat.example.com"):
        parse("--web-origin", "chat.example.com")


def test_web_listeners_serve_one_site_on_the_hub() -> None:
    """--web adds listeners of one site whose WebSocket builds web connections."""
    from chatd.factory import ChatFactory, DoorFactory
    from chatd.web.site import ChatSite, SocketDoor

    service = chatd.makeService(
        parse(
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--web",
            "tcp:0:interface=127.0.0.1",
            "--web",
            "tcp6:0:interface=\\:\\:1",
        )
    )
    listeners = [c for c in service if isinstance(c, StreamServerEndpointService)]
    line, web, web6 = (listener.factory for listener in listeners)
    assert isinstance(line, DoorFactory) and isinstance(line.hub, ChatFactory)
    assert isinstance(web, ChatSite) and web is web6
    socket = web.resource.children[b"ws"]
    door = socket.factory
    assert isinstance(door, SocketDoor) and door.hub is line.hub


def test_setup_cfg_lists_every_package_of_chatd() -> None:
    """A regular install (the README's first command) ships every chatd package:
    the tests run from the checkout and would not notice one left out."""
    import configparser
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    setup = configparser.ConfigParser()
    setup.read(root / "setup.cfg")
    listed = set(setup["options"]["packages"].split())
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "chatd").rglob("__init__.py")
    }
    assert found <= listed


def test_account_options(tmp_path: Path) -> None:
    """--operators lists accounts (comments and blank lines skipped); the grace,
    the shortest password and Argon2's costs reach the config."""
    listed = tmp_path / "operators"
    listed.write_text("# the people who run the server\nAlice\n\n  bob  # on call\n")
    config = parse(
        "--operators",
        str(listed),
        "--nick-grace",
        "30",
        "--min-password",
        "12",
        "--new-accounts-per-address",
        "40",
        "--argon2-time",
        "2",
        "--argon2-memory",
        "32768",
        "--argon2-lanes",
        "2",
    )["config"]
    assert config.operators == ("Alice", "bob")
    settings = config.accounts
    assert (settings.grace, settings.min_password) == (30.0, 12)
    assert settings.register_burst == 40
    assert (settings.time_cost, settings.memory_cost, settings.parallelism) == (
        2,
        32768,
        2,
    )
    assert ServerConfig().accounts.memory_cost == 65536  # the real cost by default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operators", "/nonexistent/ops"], "--operators: cannot read"),
        (["--argon2-memory", "8", "--argon2-lanes", "4"], "at least 8 KiB for each"),
        (["--min-password", "0"], "--min-password must be at least 1"),
        (
            ["--new-accounts-per-address", "0"],
            "--new-accounts-per-address must be at least 1",
        ),
    ],
)
def test_account_option_refusals(args: list[str], message: str) -> None:
    """Each refusal is one sentence naming the option."""
    with pytest.raises(usage.UsageError, match=message):
        parse(*args)


def test_operators_file_names_must_be_nicknames(tmp_path: Path) -> None:
    """A line that is no account name is refused with its line number."""
    listed = tmp_path / "operators"
    listed.write_text("alice\nnot a name\n")
    with pytest.raises(usage.UsageError, match="line 2"):
        parse("--operators", str(listed))


def test_metrics_is_off_unless_given() -> None:
    """Without --metrics the service tree is as before: no metrics listener."""
    assert parse()["metrics_endpoint"] is None
    service = chatd.makeService(parse("--listen", "tcp:0:interface=127.0.0.1"))
    assert not any(getattr(c, "option", "") == "--metrics" for c in service)


def test_metrics_wraps_the_daemon_and_stops_after_it() -> None:
    """--metrics: the daemon, the lag timer, then the listener; it stops last."""
    from chatd.ops.metrics import ReactorLag
    from chatd.ops.metrics_http import MetricsService, MetricsSite

    options = parse(
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--metrics",
        "tcp:0:interface=127.0.0.1",
        "--no-history",
    )
    service = chatd.makeService(options)
    assert isinstance(service, MetricsService)
    daemon, lag, listener = list(service)
    assert any(isinstance(c, FarewellService) for c in daemon)
    assert isinstance(lag, ReactorLag)
    assert isinstance(listener, StreamServerEndpointService)
    assert isinstance(listener.factory, MetricsSite)
    assert listener.option == "--metrics"  # type: ignore[attr-defined]

    order: list[str] = []
    daemon.stopService = lambda: order.append("daemon")
    listener.stopService = lambda: order.append("listener")  # type: ignore[method-assign]
    lag.startService()
    service.stopService()
    assert order == ["daemon", "listener"]
    assert not lag.running


def test_bad_metrics_endpoint_is_a_usage_error() -> None:
    """An unparsable --metrics is a UsageError naming the option."""
    with pytest.raises(usage.UsageError, match="--metrics nonsense"):
        parse("--metrics", "nonsense:9101")


def test_the_help_has_no_runs_of_spaces_inside_a_sentence() -> None:
    """`twistd chatd --help`: each option's text reads as one sentence, with no
    docstring indentation left inside it."""
    for line in str(Options()).splitlines():
        text = line.strip()
        if text.startswith("-"):
            text = text.split("  ", 1)[-1].strip()  # after the option's column
        assert "  " not in text, line
