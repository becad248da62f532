"""The door contract: what a door declares once, and the registry of chatd's doors.

A door (the line protocol, IRC, the web page) is declared once, in its own
package, as a Door: its connection class, how a listener's factory is made,
and its command table with each command's kind (read, talk, or a change of
shared state). The plugin (options, listeners), chatd.ops (log lines,
metrics labels) and the cluster (which lines wait for their turn in the log)
read the declaration; none of them knows a door by name. A fourth door is
its own package plus one registration line in DOORS, the option that opens
it and where its declaration is (docs/architecture.md, "The door contract").

Declarations are named "module:attribute" and imported on first use, so
that parsing the command line loads no door, and a daemon loads only the
doors it listens for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib import import_module
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IProtocolFactory

if TYPE_CHECKING:
    from chatd.factory import ChatFactory
    from chatd.net.connection import Connection


class CommandKind(Enum):
    """What one command of a door does to the chat's shared state."""

    READ = "read"  # reads only: run at once, on any node
    TALK = "talk"  # says something: checked at once, delivered in the log's order
    CHANGE = "change"  # may change shared state: a cluster node runs it in its turn
    # This connection's own settings (IRC's CAP): a read once registered;
    # before that it may be what registers (CAP END), so it is a change.
    SETTING = "setting"


# The command name a door's command_of gives a line that is no command: text
# said where the user is (the line door's plain lines). Its spaces keep it
# apart from every command a client can type (a command name is one word).
TEXT = "(plain text)"


@dataclass(frozen=True, slots=True)
class Door:
    """One door, declared once: what the plugin, ops and the cluster read of it.

    name (the spelling in logs, metrics and the counts) and identify_hint
    (the words the model's notices give for identifying) are the connection
    class's own attributes, spelled there once: the model reads the hint
    through IChatClient, the connection layer the name on every line.
    """

    connection: type[Connection]  # the door's connection class (IChatClient)
    title: str  # how the human log text names it: "chatd IRC listening on"
    # The factory a listener of this door listens with, on the hub (given the
    # parsed options: the web door reads --web-origin).
    serve: Callable[[ChatFactory, Mapping[str, Any]], IProtocolFactory]
    # Every command of the door, by the name command_of gives, with its kind;
    # a name not in it is a change (the safe side).
    commands: Mapping[str, CommandKind]
    # The table's name for the command in a line (TEXT for a line that says
    # something; None for a line that asks nothing, an empty one).
    command_of: Callable[[str], str | None]
    serves_page: bool = field(default=False)  # the log says the page's address
    # Takes the settings of a reloaded config file (chatd.ops.reload), given
    # the hub (already reconfigured), the factory serve made and the new
    # options: the web door's --web-origin. None: the door has nothing of
    # its own to change.
    reconfigure: (
        Callable[[ChatFactory, IProtocolFactory, Mapping[str, Any]], None] | None
    ) = field(default=None)

    @property
    def name(self) -> str:
        """The door's one spelling: "line", "irc", "web" (no spaces)."""
        return self.connection.door

    @property
    def identify_hint(self) -> str:
        """How a user of this door identifies, in the door's own words."""
        hint: str = self.connection.identify_hint
        return hint

    def kind_of(self, text: str, registered: bool) -> CommandKind:
        """The kind of one decoded line from a client of this door.

        Until a connection registers, any line but a read may be what
        registers it (a nickname, NICK, CAP END): it is a change.
        """
        command = self.command_of(text)
        if command is None:
            return CommandKind.READ
        kind = self.commands.get(command, CommandKind.CHANGE)
        if kind is CommandKind.READ:
            return kind
        if not registered:
            return CommandKind.CHANGE
        return CommandKind.READ if kind is CommandKind.SETTING else kind


def command_kinds(
    table: Mapping[str, object], kinds: Mapping[str, CommandKind]
) -> dict[str, CommandKind]:
    """A door's command table with each command's kind: kinds, else a change.

    Every name in kinds must be a command of table (a misspelt read would
    otherwise make a change run at once).
    """
    strays = set(kinds) - set(table) - {TEXT}
    if strays:
        raise ValueError(f"kinds of commands the door does not have: {sorted(strays)}")
    named = {name: kinds.get(name, CommandKind.CHANGE) for name in table}
    if TEXT in kinds:
        named[TEXT] = kinds[TEXT]
    return named


class Doors:
    """The registry of declared doors: the option that opens each, and where
    its declaration is, in the order they were registered.

    The options are known without loading a door, so that parsing the
    command line loads none; a door is imported when it is asked for.
    """

    def __init__(self, entries: Mapping[str, str | Door]) -> None:
        self._entries: dict[str, str | Door] = dict(entries)

    @property
    def options(self) -> list[str]:
        """The options that open the doors ("listen" is --listen), in order."""
        return list(self._entries)

    def register(self, option: str, entry: str | Door) -> None:
        """Add a door opened by --option: a Door, or "module:attribute" naming one."""
        if option in self._entries:
            raise ValueError(f"--{option} already opens a door")
        self._entries[option] = entry

    def unregister(self, option: str) -> None:
        """Take the door opened by --option out again (a test's own door)."""
        del self._entries[option]

    def opened_by(self, option: str) -> Door:
        """The door --option opens (imported now if it was not yet)."""
        door = self._entries[option]
        if not isinstance(door, Door):
            door = self._entries[option] = _load(door)
        return door

    def __iter__(self) -> Iterator[Door]:
        return iter([self.opened_by(option) for option in self.options])

    def named(self, name: str) -> Door:
        """The door called name; KeyError if none is."""
        for door in self:
            if door.name == name:
                return door
        raise KeyError(name)


def _load(entry: str) -> Door:
    """The Door an entry ("module:attribute") names."""
    module, _, attribute = entry.partition(":")
    door = getattr(import_module(module), attribute)
    if not isinstance(door, Door):
        raise TypeError(f"{entry} is not a Door")
    return door


# chatd's doors: one registration line each, the option that opens it and
# where its declaration is.
DOORS = Doors(
    {
        "listen": "chatd.protocol:LINE",
        "irc": "chatd.irc.entry:IRC",
        "web": "chatd.web.entry:WEB",
    }
)
