"""What a slash command is, and what it needs of the connection that typed it.

The line door's commands live in chatd.line.commands (the table and the everyday
commands), chatd.line.room_commands and chatd.line.account_commands; all of them take
a Session, and none needs the others' modules to do so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chatd.config import ReloadReport, ServerConfig
from chatd.model.accounts import Accounts
from chatd.model.chat import Chat, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.logins import Login


class Session(Protocol):
    """What a command needs of the connection that typed it."""

    chat: Chat
    config: ServerConfig
    log: Logger
    host: str  # the peer's address: what throttles count wrong passwords by

    @property
    def accounts(self) -> Accounts:
        """The server's accounts."""

    @property
    def awaiting_nick(self) -> bool:
        """Tell whether the connection has yet to choose a nickname."""

    def registered_user(self) -> User:
        """Return the connection's user."""

    def register(self, nick: str) -> None:
        """Take nick as the connection's nickname."""

    def log_in(self, login: Login) -> None:
        """Take the nickname a login at the prompt gave, or attach (Devices)."""

    def reply_error(self, error: ChatError) -> None:
        """ERR code text (and the nickname prompt again, where it was refused)."""

    def send(self, data: bytes) -> None:
        """Write encoded lines."""

    def send_info(self, text: str) -> None:
        """Send an INFO line."""

    def quit_chat(self, reason: str) -> None:
        """Leave the chat and close."""

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come, everything sent later behind them."""

    def rehash(self) -> ReloadReport:
        """Re-read the config file (the user is a server operator)."""

    def charge_answer(self, lines: int) -> None:
        """Charge the flood budget for an answer of lines lines (chatd.net.bulk)."""

    def send_in_slices(self, lines: Iterator[bytes], fallback: bytes) -> None:
        """Send a long answer's lines, a slice per reactor turn (chatd.net.bulk)."""

    def show_ids(self, on: bool) -> None:
        """Lead each room message with its ID line (docs/protocol.md), or stop."""

    def show_tags(self, on: bool) -> None:
        """Show typing, reactions and replies (docs/protocol.md), or stop."""


Handler = Callable[[Session, list[str]], None]


@dataclass(frozen=True, slots=True)
class Command:
    """One slash command: its handler, arity and the help shown for it."""

    handler: Handler
    usage: str
    summary: str
    min_args: int = 0
    max_args: int = 0
    text: bool = False  # the last argument is free text running to the line's end
    before_nick: bool = False  # allowed before a nickname is chosen

    def split(self, rest: str) -> list[str]:
        """Split the argument string, or raise ChatError(BAD_ARGS)."""
        if self.text and self.max_args:
            args = rest.split(maxsplit=self.max_args - 1)
        else:
            args = rest.split()
        if not self.min_args <= len(args) <= self.max_args:
            raise ChatError(ErrorCode.BAD_ARGS, f"usage: {self.usage}")
        return args
