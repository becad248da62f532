"""The web door's declaration (chatd.doors): its connection, site and commands.

The web door is the line protocol over a WebSocket (docs/architecture.md):
its lines are the line door's, so are their kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocolFactory

from chatd.doors import Door
from chatd.factory import ChatFactory
from chatd.line.kinds import LINE_COMMANDS, command_of
from chatd.web.door import WebConnection
from chatd.web.site import ChatSite, web_site


def serve(hub: ChatFactory, options: Mapping[str, Any]) -> IProtocolFactory:
    """The site every --web listener serves: the page and its WebSocket."""
    return web_site(hub, options["web-origin"], options["web-trust-proxy"])


def reconfigure(
    hub: ChatFactory, serving: IProtocolFactory, options: Mapping[str, Any]
) -> None:
    """Take a reloaded config file's --web-origin (chatd.ops.reload)."""
    if isinstance(serving, ChatSite):
        serving.set_origins(options["web-origin"])


WEB = Door(
    connection=WebConnection,
    title="web",
    serve=serve,
    commands=LINE_COMMANDS,
    command_of=command_of,
    serves_page=True,
    reconfigure=reconfigure,
)
