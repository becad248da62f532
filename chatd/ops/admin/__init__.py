"""chatd-admin: the operator's tools for a history database (docs/running.md).

cli.py       the console script: argparse subcommands, messages, exit codes
backup.py    an online backup (SQLite's backup API) written atomically
export.py    a room's or an account's history as JSON lines, read-only
accounts.py  a password reset or an account dropped, against a stopped daemon
"""
