"""The line door's commands with their kinds, and how a line names its command.

The web door speaks the same lines (docs/architecture.md), so it reads them too.
"""

from __future__ import annotations

from chatd.doors import TEXT, CommandKind, command_kinds
from chatd.line.commands import COMMANDS
from chatd.model.names import clean_text

# The line door's commands that are not changes (the rest are).
_KINDS = {
    "who": CommandKind.READ,
    "rooms": CommandKind.READ,
    "history": CommandKind.READ,
    "search": CommandKind.READ,
    "help": CommandKind.READ,
    "ids": CommandKind.READ,
    "tags": CommandKind.READ,
    "bans": CommandKind.READ,
    "rehash": CommandKind.READ,  # this node's own settings: no shared state
    "klines": CommandKind.READ,
    "me": CommandKind.TALK,
    "msg": CommandKind.TALK,
    "typing": CommandKind.TALK,
    "react": CommandKind.TALK,
    "reply": CommandKind.TALK,
    TEXT: CommandKind.TALK,  # a plain line: said in the current room
}


def command_of(text: str) -> str | None:
    """The slash command a line runs (TEXT for a plain line, None for a blank one)."""
    # As LineConnection.handle_text reads it (docs/protocol.md, Messages):
    # control characters out first, "//" leads a plain line.
    lead = clean_text(text).lstrip()
    if not lead:
        return None
    if lead.startswith("/") and not lead.startswith("//"):
        return lead[1:].split(" ", 1)[0].lower()
    return TEXT


# Every slash command of the line door (and TEXT), with its kind.
LINE_COMMANDS = command_kinds(COMMANDS, _KINDS)
