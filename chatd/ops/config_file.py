"""The config file (--config chatd.toml): its keys checked against the options.

Each key is a long option's name (``max-clients = 1024``); a repeatable
option takes a list of strings (``listen = ["tcp:5501"]``), a flag a boolean.
Reading a file gives every problem at once, one line each, so that an
operator fixes them all in one go (and ``--check-config`` names them all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

# What a key's value must be: a flag's boolean, a repeatable option's list of
# strings, a whole number, a number (whole or with decimals), or a string.
Kind = Literal["flag", "list", "int", "number", "str"]

_KIND_WORDS: dict[Kind, str] = {
    "flag": "true or false",
    "list": 'a list of strings, like ["tcp:5501"]',
    "int": "a whole number",
    "number": "a number",
    "str": "a string",
}


class ConfigFileError(Exception):
    """A config file that cannot be used: one line per problem in problems."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


def config_path(argv: Sequence[str]) -> str | None:
    """The file named by --config in a command line, or None (the last one wins)."""
    path = None
    for at, word in enumerate(argv):
        if word == "--":
            break
        if word == "--config" and at + 1 < len(argv):
            path = argv[at + 1]
        elif word.startswith("--config="):
            path = word.partition("=")[2]
    return path


def _fits(value: object, kind: Kind) -> bool:
    """Whether a TOML value is of the kind an option needs."""
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def read_config(path: str, kinds: Mapping[str, Kind]) -> dict[str, object]:
    """Read a TOML config file: its keys and values, each of the kind it needs.

    Raises ConfigFileError naming every unknown key and every value of the
    wrong kind, or why the file cannot be read at all.
    """
    import tomllib

    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except OSError as error:
        raise ConfigFileError([f"--config: cannot read {path}: {error}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError([f"--config: {path} is not TOML: {error}"]) from None
    problems = []
    for key, value in table.items():
        kind = kinds.get(key)
        if kind is None:
            problems.append(f"{path}: unknown key {key!r} (not an option of chatd)")
        elif not _fits(value, kind):
            problems.append(f"{path}: {key} must be {_KIND_WORDS[kind]}, not {value!r}")
    if problems:
        raise ConfigFileError(problems)
    return table
