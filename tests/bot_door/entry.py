"""The bot door's declaration (chatd.doors): its connection, listener, two commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocolFactory

from bot_door.connection import BotConnection
from chatd.doors import CommandKind, Door
from chatd.factory import ChatFactory


def command_of(text: str) -> str | None:
    """The verb of a bot's line (None for a blank one)."""
    words = text.split()
    return words[0] if words else None


def serve(hub: ChatFactory, options: Mapping[str, Any]) -> IProtocolFactory:
    """A --bot listener's factory: bot connections on the shared hub."""
    return hub.door(BotConnection)


BOT = Door(
    connection=BotConnection,
    title="bot",
    serve=serve,
    commands={"NICK": CommandKind.CHANGE, "SAY": CommandKind.TALK},
    command_of=command_of,
)
