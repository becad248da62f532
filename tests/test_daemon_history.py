"""History end to end: the real `twistd -n chatd`, restarts, retention and faults.

The database is the default one, chatd.sqlite3 in the daemon's working
directory (a temporary directory here), unless a test says otherwise.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemon import ROOT, WAIT, LineClient, running_daemon, twistd_path
from test_daemon import LOOPBACK

from chatd.store.sqlite import HistoryDatabase

DB = "chatd.sqlite3"
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
# Holds the write lock of a database until its standard input closes.
HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()
"""


def history_of(received: list[str], room: str) -> list[list[str]]:
    """The [id, time, kind, nick, text] of each HISTORY line for room."""
    return [
        text.split(" ", 6)[2:]
        for text in received
        if text.startswith(f"HISTORY {room} ")
    ]


def read_until(client: LineClient, prefix: str) -> list[str]:
    """Read lines up to and including the first that starts with prefix."""
    seen = []
    while True:
        text = client.read_line()
        seen.append(text)
        if text.startswith(prefix):
            return seen
        if text == "" and not client.buffer:
            raise AssertionError(f"closed before {prefix!r}; saw {seen}")


def joined(port: int, nick: str) -> tuple[LineClient, list[str]]:
    """Register nick; return the client and what followed its JOIN #lobby."""
    client = LineClient.tcp(port)
    client.expect("NICK ")
    client.send(nick)
    client.expect(f"JOIN #lobby {nick}")
    client.send("/zzsync")  # its answer comes after the backfill, if any
    after = read_until(client, "ERR unknown-command")
    return client, after[:-1]


def parse_time(text: str) -> float:
    """Read a contract time (2026-11-30T23:50:01.123Z) as seconds since 1970."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment.timestamp()


def start_fails(
    args: list[str], cwd: Path, preexec: Callable[[], None] | None = None
) -> tuple[int, str]:
    """Run twistd -n chatd expecting it to stop at start; return (code, output)."""
    result = subprocess.run(
        [twistd_path(), "-n", "--pidfile=", "chatd", "--listen", LOOPBACK, *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
        preexec_fn=preexec,
    )
    return result.returncode, result.stdout + result.stderr


def one_clear_line(output: str, start: str) -> str:
    """The single line of output starting with start; no traceback anywhere."""
    found = [text for text in output.splitlines() if start in text]
    assert len(found) == 1, output
    assert "Traceback" not in output, output
    return found[0]


def _drop_file_override() -> None:
    """In the child: give up root's power to ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def permissions_apply() -> Callable[[], None] | None:
    """A preexec that makes file permissions hold for the daemon, even as root."""
    if os.geteuid() != 0:
        return None
    try:
        subprocess.run(["true"], preexec_fn=_drop_file_override, check=True)
    except (subprocess.SubprocessError, OSError):
        pytest.skip("root without CAP_SETPCAP: file permissions cannot apply")
    return _drop_file_override


@contextmanager
def lock_held(path: Path) -> Iterator[None]:
    """Another process holding the database's write lock (BEGIN EXCLUSIVE)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=WAIT)


def test_history_survives_sigterm_and_restart(tmp_path: Path) -> None:
    """Messages said, SIGTERM, start again in the same directory: /history and
    a join's backfill show them in order, with the same ids and their times."""
    args = ["--listen", LOOPBACK, "--flood-rate", "0"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, _ = joined(port, "alice")
        bob, _ = joined(port, "bob")
        started = time.time()
        alice.send("hello from before")
        alice.expect("MSG #lobby alice hello from before")
        bob.send("/me waves")
        bob.expect("ACTION #lobby bob waves")
        bob.send("/join #dev")
        bob.send("only in dev")
        bob.expect("MSG #dev bob only in dev")
        alice.send("/history")
        before = history_of(read_until(alice, "ENDHISTORY #lobby"), "#lobby")
        alice.send("last words")  # said, echoed, then at once the stop
        alice.expect("MSG #lobby alice last words")
        finished = time.time()
        assert daemon.terminate() == -signal.SIGTERM
    assert stat.S_IMODE((tmp_path / DB).stat().st_mode) == 0o600
    assert not (tmp_path / f"{DB}-wal").exists()  # all written, WAL folded in
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        carol, backfill = joined(port, "carol")
        assert backfill[-1] == "ENDHISTORY #lobby 3"
        kept = history_of(backfill, "#lobby")
        assert kept[:2] == before
        assert [row[2:] for row in kept] == [
            ["MSG", "alice", "hello from before"],
            ["ACTION", "bob", "waves"],
            ["MSG", "alice", "last words"],
        ]
        ids = [int(row[0]) for row in kept]
        assert ids == sorted(ids) and len(set(ids)) == 3
        times = [parse_time(row[1]) for row in kept]
        assert started - 1 <= times[0] <= times[1] <= times[2] <= finished + 1
        # #dev is gone with the restart: its history comes back to whoever
        # makes it again (the backfill); /history reads only rooms that exist.
        carol.send("/join #dev")
        dev = read_until(carol, "ENDHISTORY #dev")
        assert [row[2:] for row in history_of(dev, "#dev")] == [
            ["MSG", "bob", "only in dev"]
        ]
        carol.send("/part #dev")  # #lobby is current again
        carol.send(f"/history 1 before {ids[2]}")
        assert history_of(read_until(carol, "ENDHISTORY"), "#lobby") == kept[1:2]
        carol.send("new after restart")
        carol.expect("MSG #lobby carol new after restart")
        carol.send("/history 1")
        newest = history_of(read_until(carol, "ENDHISTORY"), "#lobby")
        assert int(newest[0][0]) > ids[-1]


def test_retention_deletes_old_messages(tmp_path: Path) -> None:
    """--history-days 30: a message 40 days old is deleted at start, the log
    says so, and a joiner sees only the recent one."""
    database = HistoryDatabase.open(str(tmp_path / DB))
    now = time.time()
    database.append(
        [
            (1, "#lobby", int((now - 40 * 86400) * 1000), "MSG", "old", "forty days"),
            (2, "#lobby", int((now - 86400) * 1000), "MSG", "new", "yesterday"),
        ]
    )
    database.close()
    with running_daemon(["--listen", LOOPBACK, "--history-days", "30"], tmp_path) as d:
        (port,) = d.ports.values()
        d.wait_for_log(re.compile(r"deleted 1 message older than 30 days"))
        _, backfill = joined(port, "alice")
        assert [row[3:] for row in history_of(backfill, "#lobby")] == [
            ["new", "yesterday"]
        ]
    with sqlite3.connect(tmp_path / DB) as connection:
        texts = connection.execute("SELECT text FROM messages").fetchall()
    connection.close()
    assert texts == [("yesterday",)]


def test_no_history_keeps_no_file(tmp_path: Path) -> None:
    """--no-history: no database, and /history answers ERR no-history."""
    with running_daemon(["--listen", LOOPBACK, "--no-history"], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, backfill = joined(port, "alice")
        alice.send("hello")
        alice.send("/history")
        assert alice.expect("ERR ") == "ERR no-history this server keeps no history"
        assert backfill == []
    assert not (tmp_path / DB).exists()


def test_memory_database_keeps_history_while_running(tmp_path: Path) -> None:
    """--database :memory:: history works, and nothing is written to disk."""
    args = ["--listen", LOOPBACK, "--database", ":memory:"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, _ = joined(port, "alice")
        alice.send("in memory")
        alice.expect("MSG #lobby alice in memory")
        _, backfill = joined(port, "bob")
        assert [row[3:] for row in history_of(backfill, "#lobby")] == [
            ["alice", "in memory"]
        ]
    assert list(tmp_path.iterdir()) == []


def test_a_locked_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """Another process holding the database's lock: twistd exits 1 with a sentence."""
    HistoryDatabase.open(str(tmp_path / DB)).close()
    with lock_held(tmp_path / DB):
        code, output = start_fails([], tmp_path)
    assert code == 1
    line = one_clear_line(output, "chatd: ")
    assert line.endswith(
        "chatd: the history database chatd.sqlite3 is locked by another process "
        "(database is locked); stop that process, or give chatd another --database."
    )


def test_a_corrupt_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """Garbage bytes in chatd.sqlite3: exit 1 and what to do, not a traceback."""
    (tmp_path / DB).write_bytes(os.urandom(8192))
    code, output = start_fails([], tmp_path)
    assert code == 1
    line = one_clear_line(output, "chatd: ")
    assert "chatd: chatd.sqlite3 is not a usable history database" in line
    assert "move it away to start a new history" in line


def test_a_read_only_directory_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """A directory chatd may not write to: exit 1, the sentence says what to do."""
    preexec = permissions_apply()
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        code, output = start_fails([], directory, preexec)
    finally:
        directory.chmod(0o755)
    assert code == 1
    line = one_clear_line(output, "chatd: ")
    assert "chatd: cannot write the history database chatd.sqlite3" in line
    assert "--no-history" in line
    assert not (directory / DB).exists()


def test_a_read_only_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """A database file chatd may only read: exit 1 with the sentence."""
    preexec = permissions_apply()
    HistoryDatabase.open(str(tmp_path / DB)).close()
    (tmp_path / DB).chmod(0o400)
    code, output = start_fails([], tmp_path, preexec)
    assert code == 1
    line = one_clear_line(output, "chatd: ")
    assert "chatd: cannot write the history database chatd.sqlite3" in line


def test_a_lock_while_running_turns_history_off_and_back(tmp_path: Path) -> None:
    """Locked by another process mid-run: logged once, /history gets
    ERR no-history with the reason, the chat goes on; history comes back."""
    with running_daemon(["--listen", LOOPBACK, "--flood-rate", "0"], tmp_path) as d:
        (port,) = d.ports.values()
        alice, _ = joined(port, "alice")
        bob, _ = joined(port, "bob")
        with lock_held(tmp_path / DB):
            alice.send("while locked")
            d.wait_for_log(
                re.compile(r"history is off: the history database is locked")
            )
            alice.send("/history")
            assert alice.expect("ERR ") == (
                "ERR no-history history is unavailable: "
                "the history database is locked by another process"
            )
            bob.expect("MSG #lobby alice while locked")
        alice.send("unlocked again")
        d.wait_for_log(re.compile(r"history is kept again"))
        alice.send("/history")
        kept = history_of(read_until(alice, "ENDHISTORY"), "#lobby")
        assert kept[-1][3:] == ["alice", "unlocked again"]
        assert sum("history is off" in text for text in d.log) == 1


def test_a_flooded_room_keeps_its_bound_in_the_database(tmp_path: Path) -> None:
    """--history-room-max 5 --flood-rate 0: 30 lines into #lobby leave 5 rows in
    the file, the newest; /history before the oldest id answers none, and
    before a deleted id ERR bad-args (as for one retention deleted)."""
    args = ["--listen", LOOPBACK, "--history-room-max", "5", "--flood-rate", "0"]
    with running_daemon(args, tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, _ = joined(port, "alice")
        alice.send("/ids on")
        first = ""
        for n in range(30):
            alice.send(f"flood {n}")
            if n == 0:
                first = alice.expect("ID #lobby ").split()[2]
            alice.expect(f"MSG #lobby alice flood {n}")
        alice.send("/history 100")
        kept = history_of(read_until(alice, "ENDHISTORY"), "#lobby")
        assert [row[4] for row in kept] == [f"flood {n}" for n in range(25, 30)]
        alice.send(f"/history before {kept[0][0]}")
        assert alice.expect("ENDHISTORY") == "ENDHISTORY #lobby 0"
        alice.send(f"/history before {first}")
        assert alice.expect("ERR ") == (
            f"ERR bad-args {first} is not a message id of #lobby"
        )
    with sqlite3.connect(tmp_path / DB) as connection:
        rows = connection.execute("SELECT count(*) FROM messages").fetchone()
    connection.close()
    assert rows == (5,)


def _script_answers(port: int, script: bytes) -> list[str]:
    """Send script, half-close (as `nc -N` at the end of its input), read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(script)
        sock.shutdown(socket.SHUT_WR)
        answers = b""
        while chunk := sock.recv(65536):  # until the server closes
            answers += chunk
    return answers.decode().splitlines()


def test_a_script_that_ends_its_input_gets_every_answer(tmp_path: Path) -> None:
    """printf 'di\\n/history\\n/quit\\n' | nc -N: the backfill, HISTORY, then BYE.

    History reads are answered on the store's thread, after the input has
    ended: the answers come all the same, in order, then BYE and the close.
    The same script without /quit gets them too, then the close.
    """
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, _ = joined(port, "alice")
        alice.send("said before")
        alice.expect("MSG #lobby alice said before")
        got = _script_answers(port, b"di\n/history\n/quit\n")
        endings = [at for at, g in enumerate(got) if g.startswith("ENDHISTORY #lobby")]
        assert len(endings) == 2, got  # the join's backfill, then /history
        assert "MSG alice said before" in got[endings[1] - 1]
        assert got[-1] == "BYE Goodbye, di.", got
        got = _script_answers(port, b"dj\n/history\n")
        assert [g for g in got if g.startswith("ENDHISTORY")] == [
            "ENDHISTORY #lobby 1",
            "ENDHISTORY #lobby 1",
        ], got


def test_a_second_daemon_on_the_same_database_is_refused(tmp_path: Path) -> None:
    """One daemon per database: the second exits 1 with a sentence; the first serves."""
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        alice, _ = joined(port, "alice")
        code, output = start_fails([], tmp_path)
        assert code == 1
        line = one_clear_line(output, "chatd: ")
        assert line.endswith(
            "chatd: the history database chatd.sqlite3 is in use by another chatd "
            "(it holds chatd.sqlite3.lock); one daemon per database: stop that one, "
            "or give this one another --database."
        )
        alice.send("still here")
        alice.expect("MSG #lobby alice still here")
        daemon.kill()  # SIGKILL: the lock file stays, its lock goes with the process
    assert (tmp_path / "chatd.sqlite3.lock").exists()
    with running_daemon(["--listen", LOOPBACK], tmp_path) as daemon:
        (port,) = daemon.ports.values()
        joined(port, "bob")
