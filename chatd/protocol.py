"""The line door: chatd's own protocol (docs/protocol.md) for telnet, nc and chatd-tk.

LineConnection is a Connection (chatd.net.connection: framing, limits, output,
closing) that speaks the line protocol's words (chatd.line.door.LineDoor:
HELLO and NICK negotiation, slash commands, plain lines) in lines ending in
CRLF, with telnet's commands taken out of its input. The web door speaks the
same words in WebSocket frames (chatd.web.door); neither is made from the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.conch.telnet import AYT, IP
from twisted.internet.interfaces import IProtocolFactory

from chatd.doors import Door
from chatd.factory import ChatFactory
from chatd.line.door import LINE_DOOR, NICK_PROMPT, SpeaksLine
from chatd.line.extensions import ShowsExtensions
from chatd.line.kinds import LINE_COMMANDS, command_of
from chatd.line.telnet import TelnetFilter
from chatd.line.wire import LINE_RENDERERS, render
from chatd.model.chat import Event
from chatd.net.connection import Connection, ConnectionHub

__all__ = ["LINE", "NICK_PROMPT", "LineConnection"]

_IP, _AYT = ord(IP), ord(AYT)


class LineConnection(SpeaksLine, ShowsExtensions, Connection):
    """The chatd line protocol (docs/protocol.md) for one TCP connection."""

    door = "line"
    identify_hint = "/identify <password>"
    __slots__ = ("telnet", "extensions", "_shared_render")
    render = staticmethod(render)  # one encoding per broadcast (wire.render)
    renderers = LINE_RENDERERS  # ShowsExtensions': shared by extensions

    def __init__(self, hub: ConnectionHub) -> None:
        super().__init__(hub)
        self.telnet: TelnetFilter | None = None  # made once a telnet command comes
        self.extensions = 0  # wire.IDS | wire.TAGS: what /ids on, /tags on asked
        self._shared_render: Callable[[Event], bytes] = render  # see _extend

    # -- the door's words: the line protocol's (chatd.line.door) -----------------

    def greet(self) -> None:
        """HELLO with the banner, then ask for a nickname."""
        LINE_DOOR.greet(self)

    def plain_lines(self, event: Event) -> bytes:
        """An event's line as every line connection without extensions gets it."""
        return render(event)

    # -- telnet ------------------------------------------------------------------

    def filter_input(self, data: bytes) -> bytes:
        """Take telnet commands out of data, refusing options, noting Ctrl-C.

        Each telnet sequence costs a token, as a line does. Option requests
        are refused once per option and packet (telnet stops showing output
        until it hears back); Ctrl-C and are-you-there get an INFO once per
        packet, and none while the client's input waits.
        """
        if self.telnet is None:
            if b"\xff" not in data:
                return data  # the common case: no telnet at all
            self.telnet = TelnetFilter()
        data, reply = self.telnet.feed(data)
        if reply:
            self.send(reply)  # telnet discards our output until it hears back
        commands = self.telnet.take_commands()
        gate = self.gate
        telnet = self.telnet
        if telnet.letters_lost:  # the line will be refused as bad UTF-8
            telnet.letters_lost = 0
            if not telnet.told:  # telnet sends such a line in several packets
                telnet.told = True
                self.send_info(
                    "Your telnet turned a letter into a telnet command (it does so"
                    " to some non-ASCII letters: у, Ã, ✓...), so the line is lost;"
                    " nc -C or chatd-tk send them as typed."
                )
        if b"\n" in data:
            telnet.told = False
        if gate is None or gate.held is None:  # a throttled client waits for these
            if _IP in commands:
                self.send_info("Ctrl-C does not leave the chat; type /quit to leave.")
            if _AYT in commands:
                self.send_info(f"Yes, {self.config.name} is here.")
        if gate is not None and self.telnet.sequences:
            gate.charge(self.telnet.sequences)
        return data


# -- the line door's declaration (chatd.doors) ------------------------------------


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
