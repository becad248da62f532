"""The settings one chatd server runs with, defaults from PROTOCOL.md."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 5501


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the daemon was told on the command line, already checked."""

    name: str = "chatd"  # one word: the server name in HELLO
    motd: tuple[str, ...] = ()  # message of the day, one INFO line each
    max_line: int = 2048  # PROTOCOL.md, Limits: longest line accepted, in bytes
    shutdown_grace: float = 5.0  # seconds a closing connection gets to flush BYE
