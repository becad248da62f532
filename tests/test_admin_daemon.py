"""chatd-admin against a real twistd: a backup under load, changes refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from daemon import ROOT, WAIT, LineClient, running_daemon

DB = "chatd.sqlite3"
LOOPBACK = "tcp:0:interface=127.0.0.1"
CHEAP = ["--argon2-time", "1", "--argon2-memory", "8", "--argon2-lanes", "1"]
SENDS = 50_000  # messages per talker at most: the load is bounded in count ...
LOAD_SECONDS = 20.0  # ... and in time


def admin(cwd: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run chatd-admin (this checkout's) as a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "chatd.ops.admin.cli", *argv],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )


class Talker(threading.Thread):
    """A line client that says numbered lines and counts each one echoed back."""

    def __init__(self, port: int, nick: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = LineClient.tcp(port)
        self.client.register(nick)
        self.nick = nick
        self.stop = stop
        self.acked: list[str] = []  # texts the daemon echoed, in order
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        try:
            for n in range(SENDS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    break
                text = f"{self.nick}-{n}"
                self.client.send(text)
                self.client.expect(f"MSG #lobby {self.nick} {text}")
                self.acked.append(text)
        except BaseException as error:  # reported by the test
            self.error = error


def kept_texts(path: Path) -> list[str]:
    """The texts of #lobby's messages in a history database, in id order:
    those settled and those still staged (chatd settles them when it opens
    the file)."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT text FROM (SELECT id, room, text FROM messages UNION ALL "
            "SELECT id, room, text FROM staged_messages) "
            "WHERE room = '#lobby' ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [str(row[0]) for row in rows]


def wait_for(test: Callable[[], bool]) -> None:
    """Poll test until it holds, for WAIT seconds at most."""
    deadline = time.monotonic() + WAIT
    while not test() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_backup_under_load_holds_every_acknowledged_message(tmp_path: Path) -> None:
    """Two clients talk without pause, each line echoed before the next; two
    backups are taken meanwhile. Each copy opens, holds every line echoed
    before it began, and holds each talker's lines without a gap (one moment
    of the history, not a mix of two)."""
    # No bound on the room: every line said stays (the test counts them all).
    args = ["--listen", LOOPBACK, "--flood-rate", "0", "--history-room-max", "0"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        stop = threading.Event()
        talkers = [Talker(port, nick, stop) for nick in ("alice", "bob")]
        probe = LineClient.tcp(port)
        probe.register("probe")
        for talker in talkers:
            talker.start()
        backups: list[tuple[Path, dict[str, list[str]]]] = []

        def echoed() -> int:
            return sum(len(t.acked) for t in talkers)

        try:
            for n in range(2):
                enough = 100 * (n + 1)
                wait_for(partial(lambda most: echoed() > most, enough))
                acked = {t.nick: list(t.acked) for t in talkers}
                # A read goes through the writer's queue behind every message
                # recorded before it (docs/protocol.md, History): once it is
                # answered, every line echoed above is in the file.
                probe.send("/history #lobby 1")
                probe.expect("ENDHISTORY")
                copy = tmp_path / f"backup-{n}.sqlite3"
                before = echoed()
                done = admin(tmp_path, "backup", "--database", DB, str(copy))
                assert done.returncode == 0, done.stderr
                assert done.stderr.startswith(f"chatd-admin: backed up {DB} to")
                assert echoed() > before  # they talked on while it copied
                backups.append((copy, acked))
        finally:
            stop.set()
            for talker in talkers:
                talker.join(timeout=WAIT)
        for talker in talkers:
            assert talker.error is None, talker.error
        assert daemon.terminate() == -15
    for copy, acked in backups:
        kept = kept_texts(copy)
        for nick, texts in acked.items():
            mine = [text for text in kept if text.startswith(f"{nick}-")]
            assert mine[: len(texts)] == texts  # every acknowledged one, in order
            assert mine == [f"{nick}-{n}" for n in range(len(mine))]  # no gap
        connection = sqlite3.connect(copy)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        finally:
            connection.close()


def test_account_changes_wait_for_the_daemon_to_stop(tmp_path: Path) -> None:
    """While chatd runs, reset-password and drop-account exit 1 with one line
    and change nothing; stopped, the reset works and the daemon, started
    again, takes the new password (and not the old)."""
    args = ["--listen", LOOPBACK, *CHEAP]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice = LineClient.tcp(port)
        alice.register("alice")
        alice.send("/register old-password old-password")
        alice.expect("INFO alice is registered to you")
        for argv in (("reset-password", "alice"), ("drop-account", "alice")):
            done = admin(tmp_path, argv[0], "--database", DB, argv[1], stdin="x" * 9)
            assert done.returncode == 1
            assert done.stderr.count("\n") == 1
            assert done.stderr.startswith(f"chatd-admin: chatd is running on {DB}")
        alice.close()
        assert daemon.terminate() == -15
    done = admin(
        tmp_path, "reset-password", "--database", DB, "alice", stdin="new-password\n"
    )
    assert (done.returncode, done.stderr) == (
        0,
        "chatd-admin: alice has its new password\n",
    )
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        bob = LineClient.tcp(port)
        bob.register("bob")
        bob.send("/identify alice old-password")
        bob.expect("ERR auth-failed")
        bob.send("/identify alice new-password")
        bob.expect("INFO You are identified as alice.")
