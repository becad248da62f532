"""Reloading the configuration (chatd.ops.reload): REHASH, /rehash and SIGHUP.

Each test starts from a real config file parsed by the plugin's Options, as
the daemon does, and changes the file; the hub runs on a fake clock and the
clients on StringTransport. tests/test_reload_daemon.py sends SIGHUP to the
real twistd.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from helpers import Mailbox, connect, lines, open_any, open_connection
from test_daemon import make_certificate
from test_irc_protocol import irc_connect
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from web_helpers import FakeBrowser

from chatd.factory import ChatFactory
from chatd.irc.entry import IRC
from chatd.irc.protocol import IrcConnection, irc_server
from chatd.ops.reload import Reloader, ReloadOnSignal, Served
from chatd.ops.tls import make_swappable
from chatd.protocol import LINE, LineConnection
from chatd.store.writer import SQLiteHistory
from chatd.web.entry import WEB
from chatd.web.site import ChatSite
from twisted.plugins.chatd_plugin import Options, chatd

# Cheap Argon2, so that /register in a test takes no time.
CHEAP = "argon2-time = 1\nargon2-memory = 8\nargon2-lanes = 1\n"
CHEAP_ARGS = ["--argon2-time", "1", "--argon2-memory", "8", "--argon2-lanes", "1"]


class Setup:
    """A config file, the options parsed from it, a hub, and its Reloader."""

    def __init__(
        self, tmp_path: Path, clock: Clock, *argv: str, history: bool = False
    ) -> None:
        """history: keep history (the reloader is given none unless a test
        gives it one: a cluster node's Redis history); else --no-history."""
        self.dir = tmp_path
        self.path = tmp_path / "chatd.toml"
        self.motd("Welcome, first edition.")
        (tmp_path / "operators").write_text("root\n")
        self.write()
        kept = ["--database", ":memory:"] if history else ["--no-history"]
        self.argv = ["--config", str(self.path), *kept, *argv]
        options = self.read()
        self.hub = ChatFactory(options["config"], clock)
        self.site = WEB.serve(self.hub, options)
        served = [
            Served(LINE, self.hub.door(LINE.connection)),
            Served(WEB, self.site),
        ]
        self.reloader = Reloader(
            self.read, options, str(self.path), self.hub, served, [], None, reactor
        )
        self.hub.reloader = self.reloader.reload

    def write(self, extra: str = "") -> None:
        """Write the config file: the MOTD and operators files, then extra keys."""
        self.path.write_text(
            f'motd = "{self.dir / "motd"}"\n'
            f'operators = "{self.dir / "operators"}"\n' + CHEAP + extra
        )

    def motd(self, text: str) -> None:
        (self.dir / "motd").write_text(text + "\n")

    def read(self) -> Options:
        options = Options()
        options.parseOptions(self.argv)
        return options


def operator(
    setup: Setup, nick: str = "root"
) -> tuple[LineConnection, Callable[[], list[str]]]:
    """A line client identified to an account of --operators."""
    proto, out = connect(setup.hub, nick)
    proto.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    assert proto.user is not None and setup.hub.chat.is_server_operator(proto.user)
    lines(out)
    return proto, lambda: lines(out)


def motd_of_new_client(setup: Setup, nick: str) -> list[str]:
    """The MOTD a line client connecting now is shown (its INFO after WELCOME)."""
    proto, out = open_connection(setup.hub, 45000 + len(nick), f"127.9.9.{len(nick)}")
    proto.dataReceived(nick.encode() + b"\r\n")
    said = lines(out)
    start = next(at for at, text in enumerate(said) if text.startswith("WELCOME"))
    end = next(at for at, text in enumerate(said) if text.startswith("JOIN"))
    return [text.removeprefix("INFO ") for text in said[start + 1 : end]]


def test_rehash_by_an_operator_applies_a_new_motd(tmp_path: Path, clock: Clock) -> None:
    """/rehash by a server operator: INFO says what changed; the next client
    sees the new MOTD."""
    setup = Setup(tmp_path, clock)
    assert motd_of_new_client(setup, "early") == ["Welcome, first edition."]
    root, said = operator(setup)
    setup.motd("Welcome, second edition.")
    root.dataReceived(b"/rehash\r\n")
    assert said() == [
        "INFO Reloaded the configuration.",
        "INFO changed: --motd",
    ]
    assert motd_of_new_client(setup, "later") == ["Welcome, second edition."]


def test_rehash_by_anyone_else_is_refused_and_changes_nothing(
    tmp_path: Path, clock: Clock
) -> None:
    """/rehash by a user who is no server operator: ERR not-operator, the old MOTD."""
    setup = Setup(tmp_path, clock)
    bob, out = connect(setup.hub, "bob")
    setup.motd("Changed behind the server's back.")
    bob.dataReceived(b"/rehash\r\n")
    assert lines(out) == [
        "ERR not-operator you are not a server operator; only they reload the "
        "configuration"
    ]
    assert motd_of_new_client(setup, "next") == ["Welcome, first edition."]


def test_irc_rehash_is_382_for_an_operator_and_481_for_anyone_else(
    tmp_path: Path, clock: Clock
) -> None:
    """REHASH: ERR_NOPRIVILEGES (481) for a user, RPL_REHASHING (382) and a
    NOTICE per change for a server operator; MOTD then shows the new lines."""
    setup = Setup(tmp_path, clock)
    bob, b = irc_connect(setup.hub, "bob")
    root, r = irc_connect(setup.hub, "root")
    root.dataReceived(b"PRIVMSG NickServ :REGISTER s3cret-pw\r\n")
    r.clear()
    setup.motd("IRC edition.")
    bob.dataReceived(b"REHASH\r\n")
    assert b.value().decode().split(" ", 2)[1] == "481"
    assert "Welcome, first edition." in "".join(setup.hub.chat.motd)
    root.dataReceived(b"REHASH\r\n")
    assert r.value().decode().splitlines() == [
        ":chatd 382 root chatd.toml :Rehashing",
        ":chatd NOTICE root :changed: --motd",
    ]
    r.clear()
    root.dataReceived(b"MOTD\r\n")
    assert ":chatd 372 root :- IRC edition." in r.value().decode().splitlines()


def test_a_bad_file_changes_nothing_and_names_every_problem(
    tmp_path: Path, clock: Clock
) -> None:
    """A file with problems: nothing is applied (not even the good keys), the
    log says why, and the operator who asked gets each problem."""
    setup = Setup(tmp_path, clock)
    root, said = operator(setup)
    setup.motd("Never shown.")
    setup.write('max-clients = "many"\nmax-per-ip = 3\nshoe-size = 44\n')
    with capturedLogs() as events:
        root.dataReceived(b"/rehash\r\n")
    answer = said()
    assert answer[:2] == [
        "INFO Reload refused.",
        f"INFO {setup.path} was not applied, nothing changed:",
    ]
    assert any("max-clients must be a whole number" in text for text in answer)
    assert any("unknown key 'shoe-size'" in text for text in answer)
    assert setup.hub.config.max_per_ip == 16
    assert setup.hub.chat.motd == ("Welcome, first edition.",)
    (refused,) = [e for e in events if "refused" in e["log_format"]]
    assert "shoe-size" in refused["problems"]
    assert refused["source"] == "rehash by root"


def test_a_file_that_is_no_toml_or_a_missing_motd_changes_nothing(
    tmp_path: Path, clock: Clock
) -> None:
    """Unreadable TOML, or a --motd file gone: refused, the running settings stay."""
    setup = Setup(tmp_path, clock)
    setup.path.write_text("max-clients = = 3\n")
    report = setup.hub.rehash("root")
    assert not report.applied and "is not TOML" in report.lines[1]
    setup.write()
    (tmp_path / "motd").unlink()
    report = setup.hub.rehash("root")
    assert not report.applied and "--motd: cannot read" in report.lines[1]
    assert setup.hub.chat.motd == ("Welcome, first edition.",)


def test_limits_apply_and_the_command_line_still_wins(
    tmp_path: Path, clock: Clock
) -> None:
    """max-per-ip and max-rooms-per-user from the file apply; max-clients,
    given on the command line, keeps the command line's value."""
    setup = Setup(tmp_path, clock, "--max-clients", "7")
    setup.write("max-clients = 100\nmax-per-ip = 2\nmax-rooms-per-user = 3\n")
    report = setup.hub.rehash("root")
    assert report.applied
    assert report.lines == ("changed: --max-per-ip, --max-rooms-per-user",)
    assert setup.hub.config.max_clients == 7
    assert setup.hub.config.max_per_ip == 2
    assert setup.hub.chat.max_rooms_per_user == 3


def test_limits_count_from_the_next_connection(tmp_path: Path, clock: Clock) -> None:
    """A lowered --max-per-ip refuses the next connection past it; those open stay."""
    setup = Setup(tmp_path, clock)
    first, _ = open_any(setup.hub, 40001, "10.0.0.1")
    second, _ = open_any(setup.hub, 40002, "10.0.0.1")
    setup.write("max-per-ip = 2\n")
    assert setup.hub.rehash("root").applied
    third, out = open_any(setup.hub, 40003, "10.0.0.1")
    assert b"ERR server-full too many connections from your address" in out.value()
    assert len(setup.hub.connections) == 2


def test_a_dropped_operator_loses_the_powers_at_once(
    tmp_path: Path, clock: Clock
) -> None:
    """The operators file without root: root's next /rehash is refused."""
    setup = Setup(tmp_path, clock)
    root, said = operator(setup)
    (tmp_path / "operators").write_text("someone-else\n")
    root.dataReceived(b"/rehash\r\n")
    assert said() == ["INFO Reloaded the configuration.", "INFO changed: --operators"]
    root.dataReceived(b"/rehash\r\n")
    assert said()[0].startswith("ERR not-operator")


def test_what_needs_a_restart_is_reported_and_left_as_it_runs(
    tmp_path: Path, clock: Clock
) -> None:
    """Listeners, the database and the name: "needs a restart", unchanged."""
    setup = Setup(tmp_path, clock)
    setup.write(
        'listen = ["tcp:5599"]\nirc = ["tcp:6667"]\ndatabase = "other.sqlite3"\n'
        'name = "renamed"\nmax-line = 4096\nrecvq = 65536\n'
    )
    report = setup.hub.rehash("root")
    assert report.applied
    assert report.lines == (
        "changed: --max-line",
        "needs a restart: --listen, --irc, --database, --name",
    )
    assert setup.hub.config.name == "chatd"
    assert setup.hub.config.max_line == 4096
    # The next reload says so again: it compares with what runs.
    assert setup.hub.rehash("root").lines == (
        "no setting changed",
        "needs a restart: --listen, --irc, --database, --name",
    )


def test_web_origins_and_irc_isupport_follow_the_file(
    tmp_path: Path, clock: Clock
) -> None:
    """--web-origin: the next WebSocket handshake allows the new origin; IRC's
    ISUPPORT gives the new CHANLIMIT."""
    setup = Setup(tmp_path, clock)
    server = irc_server(setup.hub)
    assert isinstance(setup.site, ChatSite)
    origins = setup.site.chat_socket.origins
    assert not origins.allows("https://chat.example.com", "10.0.0.1", 443)
    served = Served(IRC, setup.hub.door(IrcConnection))
    setup.reloader.served = (*setup.reloader.served, served)
    setup.write('web-origin = ["https://chat.example.com"]\nmax-rooms-per-user = 9\n')
    report = setup.hub.rehash("root")
    assert report.lines == ("changed: --max-rooms-per-user, --web-origin",)
    origins = setup.site.chat_socket.origins
    assert origins.allows("https://chat.example.com", "10.0.0.1", 443)
    assert "CHANLIMIT=#:9" in [token for group in server.isupport for token in group]


def test_without_a_config_file_the_command_lines_files_are_read_again(
    tmp_path: Path, clock: Clock
) -> None:
    """No --config: the reload says so, and re-reads --motd's file."""
    (tmp_path / "motd").write_text("Before.\n")
    argv = ["--no-history", "--motd", str(tmp_path / "motd")] + CHEAP_ARGS

    def read() -> Options:
        options = Options()
        options.parseOptions(argv)
        return options

    options = read()
    hub = ChatFactory(options["config"], clock)
    reloader = Reloader(read, options, None, hub, [], [], None, reactor)
    (tmp_path / "motd").write_text("After.\n")
    report = reloader.reload("SIGHUP")
    assert report.applied
    assert report.lines[0].startswith("no config file: chatd was started without")
    assert report.lines[1] == "changed: --motd"
    assert hub.chat.motd == ("After.",)


def test_history_retention_follows_the_file(tmp_path: Path, clock: Clock) -> None:
    """--history-days and the bounds reach the SQLite store: a store kept for
    ever starts pruning once days are set, and its thread takes the new bound."""
    mailbox = Mailbox()
    history = SQLiteHistory(str(tmp_path / "h.sqlite3"), clock, mailbox, keep_days=0)
    history.open()
    setup = Setup(tmp_path, clock)
    setup.reloader.history = history
    setup.write("history-days = 7\nhistory-room-max = 50\n")
    report = setup.hub.rehash("root")
    assert report.lines == ("changed: --history-days, --history-room-max",)
    assert history.keep_days == 7 and history.bound.room == 50
    assert history._pruner is not None and history._pruner.running
    asked = history.submit(lambda database: database.bound.room)
    got: list[object] = []
    asked.addCallback(got.append)
    mailbox.run_until(lambda: bool(got))
    assert got == [50]
    stopped = history.close()
    mailbox.run_until(lambda: stopped.called)


def test_the_plugin_wires_the_reloader_and_sighup(tmp_path: Path) -> None:
    """makeService: the hub's REHASH goes to a Reloader of the command line's
    file, and a ReloadOnSignal service takes SIGHUP."""
    path = tmp_path / "chatd.toml"
    path.write_text('listen = ["tcp:0:interface=127.0.0.1"]\n')
    options = Options()
    options.parseOptions(["--config", str(path), "--no-history"])
    service = chatd.makeService(options)
    (watcher,) = [s for s in service if isinstance(s, ReloadOnSignal)]
    assert watcher.reloader.path == str(path)
    assert watcher.reloader.hub.reloader == watcher.reloader.reload


def test_sighup_reloads_on_the_reactors_thread(tmp_path: Path, clock: Clock) -> None:
    """SIGHUP only schedules the reload (callFromThread); it runs there, and the
    previous handler comes back when the service stops."""
    setup = Setup(tmp_path, clock)
    mailbox = Mailbox()
    watcher = ReloadOnSignal(setup.reloader, mailbox)
    before = signal.getsignal(signal.SIGHUP)
    watcher.startService()
    try:
        setup.motd("After the signal.")
        os.kill(os.getpid(), signal.SIGHUP)
        assert setup.hub.chat.motd == ("Welcome, first edition.",)
        with capturedLogs() as events:
            mailbox.run_one()
    finally:
        watcher.stopService()
    assert signal.getsignal(signal.SIGHUP) == before
    assert setup.hub.chat.motd == ("After the signal.",)
    assert [e["text"] for e in events] == ["changed: --motd"]
    assert events[0]["source"] == "SIGHUP"


def test_a_renewed_certificate_is_swapped_and_a_mismatched_pair_refused(
    tmp_path: Path, clock: Clock
) -> None:
    """A TLS listener's files replaced: a key that is not the certificate's
    refuses the whole reload (the MOTD too) and names the listener; the right
    pair is swapped in, its fingerprint logged."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    key, cert = make_certificate(tmp_path / "old")
    new_key, new_cert = make_certificate(tmp_path / "new")
    description = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    swappable = make_swappable(description, serverFromString(reactor, description))
    assert swappable is not None
    setup = Setup(tmp_path, clock)
    setup.reloader.tls = (swappable,)
    before = swappable.fingerprint
    setup.motd("Not before the certificate is right.")
    shutil.copy(new_cert, cert)  # the certificate without its key
    report = setup.hub.rehash("root")
    assert not report.applied
    assert report.lines[1].startswith(
        f"TLS listener {description}: cannot use its key and certificate ("
    )
    assert swappable.fingerprint == before
    assert setup.hub.chat.motd == ("Welcome, first edition.",)
    shutil.copy(new_key, key)
    report = setup.hub.rehash("root")
    assert report.applied
    after = swappable.fingerprint
    assert after != before
    assert report.lines == (
        "changed: --motd",
        f"TLS listener {description}: new certificate (SHA-256 {after}) for new "
        "connections",
    )
    assert swappable.getContext() is swappable.options.getContext()


def test_rehash_on_the_web_page_is_the_line_doors(tmp_path: Path, clock: Clock) -> None:
    """/rehash typed on the web page: refused for a user, applied for a server
    operator, in the same lines as on the line door."""
    setup = Setup(tmp_path, clock)
    assert isinstance(setup.site, ChatSite)
    bob, root = FakeBrowser(setup.site), FakeBrowser(setup.site)
    bob.register("bob")
    root.register("root")
    root.send("/register s3cret-pw s3cret-pw")
    root.lines(), bob.lines()
    setup.motd("Web edition.")
    bob.send("/rehash")
    assert bob.lines() == [
        "ERR not-operator you are not a server operator; only they reload the "
        "configuration"
    ]
    root.send("/rehash")
    assert root.lines() == [
        "INFO Reloaded the configuration.",
        "INFO changed: --motd",
    ]
    assert setup.hub.chat.motd == ("Web edition.",)


def test_retention_of_a_history_set_at_start_needs_a_restart(
    tmp_path: Path, clock: Clock
) -> None:
    """A history without set_retention (a cluster's Redis): --history-days from
    the file is "needs a restart", again on each reload until then."""
    setup = Setup(tmp_path, clock, history=True)
    setup.write("history-days = 7\n")
    for _ in range(2):
        report = setup.hub.rehash("root")
        assert report.lines == (
            "no setting changed",
            "needs a restart: --history-days",
        )
