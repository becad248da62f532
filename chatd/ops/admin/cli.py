"""The chatd-admin console script: argparse subcommands (docs/running.md).

Exit codes: 0 done, 1 a problem (said in one line on stderr, chatd-admin:
first), 2 a usage error (argparse's). A password is never an argument (it
would show in ps and the shell's history): it is read from standard input,
typed twice at a prompt when that is a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
from collections.abc import Sequence
from typing import TextIO

from chatd.config import AccountSettings
from chatd.model.errors import ChatError, ErrorCode

OK, PROBLEM, USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per tool."""
    top = argparse.ArgumentParser(
        prog="chatd-admin",
        description="Operator's tools for a chatd history database.",
    )
    tools = top.add_subparsers(dest="tool", required=True, metavar="TOOL")

    def tool(name: str, text: str) -> argparse.ArgumentParser:
        sub = tools.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--database", required=True, metavar="FILE", help="the daemon's --database"
        )
        return sub

    backup = tool("backup", "copy the database while the daemon runs")
    backup.add_argument("output", metavar="OUT", help="the copy (replaced whole)")
    export = tool("export", "a room's or an account's history as JSON lines")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--room", help="a room's messages, like '#lobby'")
    which.add_argument("--account", help="an account's private conversations")
    export.add_argument(
        "--output", "-o", metavar="FILE", help="write here (default: stdout)"
    )
    reset = tool(
        "reset-password",
        "give an account a new password (read from stdin); the daemon stopped",
    )
    reset.add_argument("name", metavar="NAME", help="the account")
    # The daemon's options of the same names, at the daemon's defaults: the
    # hash is made as that daemon would make it.
    defaults = AccountSettings()
    for option, default, text in (
        ("min-password", defaults.min_password, "characters a password has at least"),
        ("argon2-time", defaults.time_cost, "Argon2id passes per hash"),
        ("argon2-memory", defaults.memory_cost, "KiB of memory per hash"),
        ("argon2-lanes", defaults.parallelism, "Argon2id lanes per hash"),
    ):
        reset.add_argument(
            f"--{option}",
            type=int,
            default=default,
            metavar="N",
            help=f"the daemon's --{option}: {text} (default %(default)s)",
        )
    drop = tool("drop-account", "drop an account; the daemon stopped")
    drop.add_argument("name", metavar="NAME", help="the account")
    return top


def read_password(stdin: TextIO) -> str:
    """The new password: typed twice at a terminal, else stdin's first line."""
    if stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise ChatError(ErrorCode.BAD_PASSWORD, "the two passwords differ")
        return first
    return stdin.readline().removesuffix("\n").removesuffix("\r")


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> str:
    """Do what args ask; return the line to say on stderr (AdminError if not)."""
    # Imported here: `chatd-admin --help` stays quick.
    from chatd.ops.admin import accounts, backup, export

    if args.tool == "backup":
        done = backup.backup(args.database, args.output)
        return (
            f"backed up {args.database} to {done.path}: {done.messages} messages, "
            f"{done.accounts} account{'' if done.accounts == 1 else 's'}, "
            f"{done.size} bytes"
        )
    if args.tool == "export":
        if args.room is not None:
            messages = export.room_messages(args.database, args.room)
        else:
            messages = export.account_messages(args.database, args.account)
        if args.output is None:
            count = export.write_lines(messages, stdout)
        else:
            with open(args.output, "w", encoding="utf-8") as out:
                count = export.write_lines(messages, out)
        return f"exported {count} messages"
    if args.tool == "reset-password":
        settings = AccountSettings(
            min_password=args.min_password,
            time_cost=args.argon2_time,
            memory_cost=args.argon2_memory,
            parallelism=args.argon2_lanes,
        )
        password = read_password(stdin)
        record = accounts.reset_password(args.database, args.name, password, settings)
        return f"{record.name} has its new password"
    record = accounts.drop_account(args.database, args.name)
    return f"the account {record.name} is gone; the nickname is free for anyone"


def main(argv: Sequence[str] | None = None) -> int:
    """chatd-admin's entry point: the exit code."""
    from chatd.ops.admin.backup import AdminError

    args = parser().parse_args(argv)  # a usage error exits 2
    try:
        said = run(args, sys.stdin, sys.stdout)
    except (AdminError, OSError, sqlite3.Error) as error:
        return _problem(str(error))
    except ChatError as error:
        return _problem(error.text)
    print(f"chatd-admin: {said}", file=sys.stderr)
    return OK


def _problem(text: str) -> int:
    print(f"chatd-admin: {text}", file=sys.stderr)
    return PROBLEM


if __name__ == "__main__":
    sys.exit(main())
