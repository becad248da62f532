"""The IRC door's declaration (chatd.doors): its connection, listener and commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocolFactory

from chatd.doors import CommandKind, Door, command_kinds
from chatd.factory import ChatFactory
from chatd.irc.commands import COMMANDS
from chatd.irc.protocol import IrcConnection, irc_server

# The IRC door's commands that are not changes (the rest are).
KINDS = {
    **dict.fromkeys(
        (
            "PING",
            "PONG",
            "WHO",
            "WHOIS",
            "WHOWAS",
            "ISON",
            "USERHOST",
            "MOTD",
            "LUSERS",
            "VERSION",
            "TIME",
            "INFO",
            "NAMES",
            "LIST",
            "CHATHISTORY",
            "REHASH",  # this node's own settings: no shared state
            "STATS",
            "SEARCH",
        ),
        CommandKind.READ,
    ),
    **dict.fromkeys(("PRIVMSG", "NOTICE", "TAGMSG"), CommandKind.TALK),
    "CAP": CommandKind.SETTING,  # CAP END may be what registers
}


def command_of(text: str) -> str | None:
    """The command of an IRC line, past its tags and prefix (None: no command)."""
    words = text.lstrip().split(" ")
    while words and (
        words[0].startswith("@") or words[0].startswith(":") or not words[0]
    ):
        words.pop(0)
    return words[0].upper() if words else None


def serve(hub: ChatFactory, options: Mapping[str, Any]) -> IProtocolFactory:
    """An --irc listener's factory: IRC connections on the shared hub.

    The IRC side is made now, at the start: its creation time is what 003
    says (made at the first IRC connection, it named that moment instead).
    """
    irc_server(hub)
    return hub.door(IrcConnection)


def reconfigure(
    hub: ChatFactory, serving: IProtocolFactory, options: Mapping[str, Any]
) -> None:
    """Take a reloaded configuration: ISUPPORT's limits (chatd.ops.reload)."""
    irc_server(hub).reconfigure(hub.config)


IRC = Door(
    connection=IrcConnection,
    title="IRC",
    serve=serve,
    commands=command_kinds(COMMANDS, KINDS),
    command_of=command_of,
    reconfigure=reconfigure,
)
