"""The line door's declaration (chatd.doors): its connection, listener and commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocolFactory

from chatd.doors import Door
from chatd.factory import ChatFactory
from chatd.line.kinds import LINE_COMMANDS, command_of
from chatd.protocol import LineConnection


def serve(hub: ChatFactory, options: Mapping[str, Any]) -> IProtocolFactory:
    """A --listen listener's factory: line connections on the shared hub."""
    return hub.door(LineConnection)


LINE = Door(
    connection=LineConnection,
    title="",
    serve=serve,
    commands=LINE_COMMANDS,
    command_of=command_of,
)
