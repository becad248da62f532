"""chatd-admin on a database in this process: backup, export, reset, drop."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from chatd.config import AccountSettings
from chatd.model.accounts import Hasher, run_inline
from chatd.model.room_rules import RoomRecord
from chatd.ops.admin import accounts, cli
from chatd.ops.admin.backup import AdminError, backup
from chatd.store.accounts import load, room_to_json
from chatd.store.lock import DatabaseLock
from chatd.store.sqlite import HistoryDatabase

CHEAP = AccountSettings(time_cost=1, memory_cost=8, parallelism=1)
T0 = 1_796_000_000_000  # ms since 1970: 2026-11-30T00:53:20Z
ROOM_ROWS = [
    (1000, "#lobby", T0, "MSG", "alice", "hello"),
    (1001, "#dev", T0 + 1, "MSG", "bob", "elsewhere"),
    (1002, "#lobby", T0 + 2, "ACTION", "bob", "waves"),
    (1003, "#lobby", T0 + 1500, "MSG", "Alice", 'quotes " and ünïcode'),
]
# id, low, high, time, kind, sender, text: alice's account with bob's, and
# with carol, who was not identified; bob with dave (not alice's).
PRIVATE_ROWS = [
    (1004, "alice", "bob", T0 + 3, "MSG", "Alice", "psst"),
    (1005, "alice", "bob", T0 + 4, "MSG", "Bob", "hi back"),
    (1006, "alice", "~carol", T0 + 5, "ACTION", "carol", "nods"),
    (1007, "bob", "dave", T0 + 6, "MSG", "Bob", "not alice's"),
]


def _room(name: str, founder: str, operators: set[str]) -> RoomRecord:
    return RoomRecord(name=name, founder=founder, operators=operators | {founder})


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A stopped daemon's database: messages, alice's and bob's accounts, and
    two registered rooms (#alices founded by alice, #bobs run by both)."""
    path = str(tmp_path / "chatd.sqlite3")
    db = HistoryDatabase.open(path)
    db.append([*ROOM_ROWS, *PRIVATE_ROWS])
    old = Hasher(CHEAP, run_inline).argon2.hash("old password")
    execute = db.connection.execute
    for key, name in (("alice", "Alice"), ("bob", "Bob")):
        execute("INSERT INTO accounts VALUES (?, ?, ?, ?)", (key, name, old, T0))
    for key, record in (
        ("#alices", _room("#alices", "alice", set())),
        ("#bobs", _room("#bobs", "bob", {"alice"})),
    ):
        execute(
            "INSERT INTO registered_rooms VALUES (?, ?, ?)",
            (key, record.founder, room_to_json(record)),
        )
    db.close()
    yield path


def admin(*argv: str, stdin: str = "") -> tuple[int, str]:
    """Run chatd-admin's tools in this process: the exit code and stdout."""
    out = io.StringIO()
    args = cli.parser().parse_args(argv)
    try:
        said = cli.run(args, io.StringIO(stdin), out)
    except AdminError as error:
        return cli.PROBLEM, str(error)
    return cli.OK, out.getvalue() + said


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of text as one JSON object (each must be one)."""
    return [json.loads(line) for line in text.splitlines()]


def test_export_of_a_room_is_one_json_object_per_message_oldest_first(
    database: str,
) -> None:
    """--room "#Lobby" (any case): the room's messages only, each with its id,
    ISO time, kind, nick, text and the room as target."""
    out = io.StringIO()
    args = cli.parser().parse_args(
        ["export", "--database", database, "--room", "#Lobby"]
    )
    assert cli.run(args, io.StringIO(), out) == "exported 3 messages"
    assert json_lines(out.getvalue()) == [
        {
            "id": 1000,
            "time": "2026-11-30T00:53:20.000Z",
            "kind": "MSG",
            "nick": "alice",
            "text": "hello",
            "target": "#lobby",
        },
        {
            "id": 1002,
            "time": "2026-11-30T00:53:20.002Z",
            "kind": "ACTION",
            "nick": "bob",
            "text": "waves",
            "target": "#lobby",
        },
        {
            "id": 1003,
            "time": "2026-11-30T00:53:21.500Z",
            "kind": "MSG",
            "nick": "Alice",
            "text": 'quotes " and ünïcode',
            "target": "#lobby",
        },
    ]


def test_export_of_a_room_includes_what_the_daemon_has_not_settled_yet(
    database: str,
) -> None:
    """A running daemon stages its latest messages before settling them into
    their table (chatd.store.sqlite): export reads both, in id order."""
    db = HistoryDatabase.open(database)
    db.staging = True
    db.append([(2000, "#lobby", T0 + 2000, "MSG", "carol", "just said")])
    db.connection.close()  # left staged, as a running daemon's file has them
    code, out = admin("export", "--database", database, "--room", "#lobby")
    assert code == cli.OK
    assert [line["text"] for line in json_lines(out.split("exported")[0])] == [
        "hello",
        "waves",
        'quotes " and ünïcode',
        "just said",
    ]


def test_export_leaves_deleted_messages_out(database: str) -> None:
    """A deleted message is a tombstone (its text '') in the file: export
    writes nothing of it, in a room or in a conversation."""
    plain = sqlite3.connect(database)
    plain.execute("UPDATE messages SET text = '' WHERE id = 1002")
    plain.execute("UPDATE private_messages SET text = '' WHERE id = 1005")
    plain.commit()
    plain.close()
    code, out = admin("export", "--database", database, "--room", "#lobby")
    assert code == cli.OK and "waves" not in out
    assert [line["id"] for line in json_lines(out.split("exported")[0])] == [1000, 1003]
    code, out = admin("export", "--database", database, "--account", "alice")
    assert code == cli.OK and '"text": ""' not in out and "hi back" not in out


def test_export_of_an_account_is_its_private_conversations(database: str) -> None:
    """--account alice: her conversations with bob and with carol (not
    identified), each line's target the side it was written to."""
    code, text = admin("export", "--database", database, "--account", "ALICE")
    assert code == 0
    lines = json_lines(text.rsplit("\n", 1)[0])
    assert [(m["nick"], m["target"], m["text"]) for m in lines] == [
        ("Alice", "bob", "psst"),
        ("Bob", "Alice", "hi back"),
        ("carol", "Alice", "nods"),
    ]
    assert [m["kind"] for m in lines] == ["MSG", "MSG", "ACTION"]


def test_export_pages_through_a_large_room(database: str, tmp_path: Path) -> None:
    """More messages than one page of the query: all of them, in order, to a file."""
    db = HistoryDatabase.open(database)
    db.append([(2000 + n, "#big", T0, "MSG", "bot", f"n{n}") for n in range(2501)])
    db.close()
    out = tmp_path / "big.jsonl"
    code, said = admin(
        "export", "--database", database, "--room", "#big", "--output", str(out)
    )
    assert (code, said) == (0, "exported 2501 messages")
    texts = [m["text"] for m in json_lines(out.read_text(encoding="utf-8"))]
    assert texts == [f"n{n}" for n in range(2501)]


def test_export_and_backup_read_while_a_daemon_holds_the_lock(
    database: str, tmp_path: Path
) -> None:
    """They take no lock and write nothing: the database file is unchanged."""
    before = Path(database).read_bytes()
    lock = DatabaseLock.take(database)
    try:
        assert admin("export", "--database", database, "--room", "#dev")[0] == 0
        copy = tmp_path / "copy.sqlite3"
        assert admin("backup", "--database", database, str(copy))[0] == 0
    finally:
        lock.release()
    assert Path(database).read_bytes() == before


def test_export_of_a_bad_room_name_or_a_missing_database_is_a_problem(
    database: str, tmp_path: Path
) -> None:
    """A name that cannot be a room, or no file: exit 1 with a sentence."""
    code, text = admin("export", "--database", database, "--room", "lobby")
    assert code == 1 and text.startswith("lobby: ")
    missing = str(tmp_path / "nothing.sqlite3")
    out = tmp_path / "out.jsonl"
    code, text = admin(
        "export", "--database", missing, "--room", "#lobby", "-o", str(out)
    )
    assert (code, text) == (1, f"there is no history database at {missing}")
    assert not os.path.exists(missing)
    assert not out.exists()  # refused before the file is made


def test_a_backup_is_one_complete_private_file(database: str, tmp_path: Path) -> None:
    """The copy holds every message and account, opens as a history database,
    is readable by its owner only, has no -wal beside it, and no temporary
    file is left."""
    copy = tmp_path / "backups" / "chatd-copy.sqlite3"
    copy.parent.mkdir()
    code, said = admin("backup", "--database", database, str(copy))
    assert code == 0
    assert said.startswith(f"backed up {database} to {copy}: 8 messages, 2 accounts")
    assert sorted(p.name for p in copy.parent.iterdir()) == ["chatd-copy.sqlite3"]
    assert copy.stat().st_mode & 0o777 == 0o600
    restored = HistoryDatabase.open(str(copy))
    try:
        assert [e.text for e in restored.read("#lobby", 10)] == [
            "hello",
            "waves",
            'quotes " and ünïcode',
        ]
        assert set(load(restored)[0]) == {"alice", "bob"}
    finally:
        restored.close()


def test_a_failed_backup_leaves_the_old_copy_whole(
    database: str, tmp_path: Path
) -> None:
    """A backup of something that is not chatd's: exit 1, the previous backup
    still there as it was, no temporary file."""
    copy = tmp_path / "copy.sqlite3"
    assert admin("backup", "--database", database, str(copy))[0] == 0
    before = copy.read_bytes()
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, text = admin("backup", "--database", str(other), str(copy))
    assert (code, text) == (1, f"{other} is not a chatd history database")
    assert copy.read_bytes() == before
    # (Reading a stopped daemon's WAL database leaves its -wal and -shm.)
    assert sorted(
        p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))
    ) == ["chatd.sqlite3", "copy.sqlite3", "other.sqlite3"]
    with pytest.raises(AdminError):
        backup(database, str(tmp_path / "no-such-dir" / "copy.sqlite3"))


def _account(database: str, key: str) -> tuple[str, str, int] | None:
    connection = sqlite3.connect(database)
    try:
        row = connection.execute(
            "SELECT name, hash, created FROM accounts WHERE account = ?", (key,)
        ).fetchone()
    finally:
        connection.close()
    return None if row is None else (str(row[0]), str(row[1]), int(row[2]))


def test_reset_password_hashes_as_the_daemon_does(database: str) -> None:
    """The new password (stdin's line) verifies with Argon2id at the settings'
    cost; the old one does not; the name and creation time stay."""
    record = accounts.reset_password(database, "ALICE", "a new password", CHEAP)
    assert record.name == "Alice"
    found = _account(database, "alice")
    assert found is not None
    name, encoded, created = found
    assert (name, created) == ("Alice", T0)
    assert encoded.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    hasher = PasswordHasher()
    assert hasher.verify(encoded, "a new password")
    with pytest.raises(Exception, match="does not match"):
        hasher.verify(encoded, "old password")


def test_reset_password_reads_stdin_and_refuses_what_the_daemon_would(
    database: str,
) -> None:
    """Through the command: the password is stdin's first line; too short, or
    no such account: exit 1 with the model's words, nothing changed."""
    before = _account(database, "alice")
    code, text = cli_main("reset-password", "--database", database, "alice", "short")
    assert code == 1 and "at least 8 characters" in text
    code, text = cli_main(
        "reset-password", "--database", database, "nobody", "long enough"
    )
    assert code == 1 and "there is no account called nobody" in text
    assert _account(database, "alice") == before
    code, text = cli_main(
        "reset-password", "--database", database, "alice", "long enough"
    )
    assert code == 0 and "Alice has its new password" in text
    after = _account(database, "alice")
    assert after is not None and before is not None and after[1] != before[1]
    assert PasswordHasher().verify(after[1], "long enough")
    assert after[1].startswith("$argon2id$v=19$m=8,t=1,p=1$")  # the options' cost


def cli_main(*argv_and_stdin: str) -> tuple[int, str]:
    """chatd-admin's main with argv and a last word for stdin: code and stderr.

    reset-password hashes at CHEAP's cost, given as the daemon's options."""
    *argv, stdin = argv_and_stdin
    if argv[0] == "reset-password":
        argv += ["--argon2-time", "1", "--argon2-memory", "8", "--argon2-lanes", "1"]
    return _main(list(argv), stdin)


def _main(argv: list[str], stdin: str) -> tuple[int, str]:
    import contextlib
    import sys

    err = io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin + "\n")
    try:
        with contextlib.redirect_stderr(err):
            code = cli.main(argv)
    finally:
        sys.stdin = saved
    return code, err.getvalue()


def test_drop_account_forgets_it_as_unregister_does(database: str) -> None:
    """The account goes; the room it founded is registered no more; it is no
    longer an operator of another; its private conversations are deleted,
    others' stay."""
    code, text = cli_main("drop-account", "--database", database, "Alice", "")
    assert code == 0 and "the account Alice is gone" in text
    db = HistoryDatabase.open(database)
    try:
        found, rooms = load(db)
        assert set(found) == {"bob"}
        assert set(rooms) == {"#bobs"}
        assert rooms["#bobs"].operators == {"bob"}
        assert db.private_latest("alice") == {}
        assert [e.text for e in db.read_private("bob", "dave", 10)] == ["not alice's"]
        assert len(db.read("#lobby", 10)) == 3  # room history is not an account's
    finally:
        db.close()
    code, text = cli_main("drop-account", "--database", database, "alice", "")
    assert code == 1 and "there is no account called alice" in text


def test_account_changes_are_refused_while_a_daemon_runs(database: str) -> None:
    """The lock held (as a running daemon holds it): exit 1, one line naming
    the way through, and nothing changed."""
    before = _account(database, "alice")
    lock = DatabaseLock.take(database)
    try:
        for argv in (
            ["reset-password", "--database", database, "alice", "long enough"],
            ["drop-account", "--database", database, "alice", ""],
        ):
            code, text = cli_main(*argv)
            assert code == 1
            assert text.count("\n") == 1
            assert text.startswith(f"chatd-admin: chatd is running on {database}")
            assert "stop it first" in text
    finally:
        lock.release()
    assert _account(database, "alice") == before


def test_usage_errors_exit_2(database: str) -> None:
    """No tool, no --database, both --room and --account: argparse's exit 2."""
    for argv in (
        [],
        ["backup", "copy.sqlite3"],
        ["export", "--database", database, "--room", "#a", "--account", "b"],
        ["reset-password", "--database", database, "alice", "a password"],
    ):
        with pytest.raises(SystemExit) as exited:
            _main(argv, "")
        assert exited.value.code == 2


def test_the_console_script_is_declared() -> None:
    """setup.cfg installs chatd-admin as chatd.ops.admin.cli:main, which exists."""
    import configparser
    import importlib

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    scripts = dict(
        line.split(" = ")
        for line in config["options.entry_points"]["console_scripts"].split("\n")
        if line
    )
    module, _, name = scripts["chatd-admin"].partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main
    assert "chatd.ops.admin" in config["options"]["packages"].split()
