"""IrcProtocol: one IRC client's connection, a second door to the same chat.

It only translates: lines in to chatd.irc.commands, chat events out through
chatd.irc.render. Framing, the flood gate, the send queue, output batching,
timeouts and closing are the shared connection machinery's.

Interim: until chatd/connection.py holds that machinery, the door is built on
ChatProtocol and overrides its line-protocol hooks (greeting, handling a
decoded line, rendering an event, replying to an error, the goodbye line).
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.chat import Event, IChatClient, User
from chatd.errors import ChatError, ErrorCode
from chatd.factory import ChatFactory, address_host
from chatd.irc.caps import CapState
from chatd.irc.commands import Registration, dispatch, numeric_for, send_error
from chatd.irc.message import irc_line
from chatd.irc.render import show_event
from chatd.irc.server import IrcServer
from chatd.protocol import ChatProtocol, Phase


@implementer(IChatClient)
class IrcProtocol(ChatProtocol):
    """The IRC client protocol (Modern IRC, RFC 2812, IRCv3) for one connection."""

    log = Logger()

    def __init__(self, hub: ChatFactory, server: IrcServer) -> None:
        super().__init__(hub)
        self.factory_hub = hub
        self.server = server
        self.caps = CapState()
        self.registration = Registration()
        self.invisible = False
        self._greeting = False  # line-protocol output is being held back
        self._heard = True  # a line came since the last ping check
        self._pinged = False  # a PING is out and unanswered
        self._ping_call: IDelayedCall | None = None

    # -- the session interface (chatd.irc.commands.IrcSession) -----------------

    @property
    def nick(self) -> str:
        """The nickname numerics address ("*" before one is chosen)."""
        if self.user is not None:
            return self.user.nick
        return self.registration.nick or "*"

    def register_user(self, nick: str, username: str, realname: str) -> User:
        """Register in the chat; unlike the line door, join no room."""
        user = self.chat.register(
            nick, self, username=username, realname=realname, host=self.host
        )
        self.user = user
        self.phase = Phase.REGISTERED
        self.setTimeout(self.config.idle_timeout or None)
        self.log.info("{peer} registered as {nick} (IRC)", peer=self.peer, nick=nick)
        self._schedule_ping()
        return user

    def quit_chat(self, reason: str) -> None:
        """QUIT: the others hear the reason; the client gets ERROR; close."""
        self._leave(reason, logged="QUIT")
        self.close(reason)

    def pong_received(self) -> None:
        """A PONG came: the client is alive (any line counts, see lineReceived)."""
        self._pinged = False

    def unregistered_count(self) -> int:
        """Connections on any door that have not registered yet."""
        return max(0, len(self.factory_hub.connections) - len(self.chat.users))

    # -- hooks over the shared machinery ----------------------------------------

    def connectionMade(self) -> None:
        self._greeting = True  # the line protocol's HELLO and NICK are not sent
        try:
            super().connectionMade()
        finally:
            self._greeting = False

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None
        super().connectionLost(reason)

    def send(self, data: bytes) -> None:
        if not self._greeting:
            super().send(data)

    def send_info(self, text: str) -> None:
        """A human notice from the server."""
        self.send(irc_line("NOTICE", self.nick, text=text, source=self.server.name))

    def deliver(self, event: Event) -> None:
        """Write what this client sees of a chat event (rendered once per broadcast)."""
        if self.phase is Phase.CLOSING:
            return
        caps = self.caps
        data = show_event(
            self.server.renderer,
            self.user,
            event,
            "echo-message" in caps.enabled,
            "away-notify" in caps.enabled,
            "server-time" in caps.enabled,
        )
        if data:
            self._write(data)

    def _handle(self, text: str) -> None:
        dispatch(self, text)

    def lineReceived(self, raw: bytes) -> None:
        self._heard = True
        super().lineReceived(raw)

    def _reply_error(self, error: ChatError) -> None:
        if error.code is ErrorCode.BAD_ENCODING:
            # IRCv3 UTF8ONLY: FAIL <command> INVALID_UTF8; the command is unknown.
            self.send(
                irc_line(
                    "FAIL",
                    "*",
                    "INVALID_UTF8",
                    text="Message rejected, your IRC software MUST use UTF-8",
                    source=self.server.name,
                )
            )
            return
        send_error(self, numeric_for(error, "*"))

    def close(self, reason: str) -> None:
        """Say ERROR with reason and close once it is written."""
        if self.phase is Phase.CLOSING:
            return
        self.send(irc_line("ERROR", text=f"Closing link: {self.host} ({reason})"))
        self._greeting = True  # the line protocol's BYE is not sent: ERROR was
        super().close(reason)

    def timeoutConnection(self) -> None:
        """IRC's wording: registration timeout, or idle."""
        if self.phase is Phase.AWAITING_NICK:
            self.log.info("{peer} timed out registering", peer=self.peer)
            self.close("Registration timeout")
        else:
            seconds = self.config.idle_timeout
            self.log.info("{peer} timed out: idle {s:g}s", peer=self.peer, s=seconds)
            self.close(f"Idle for {seconds:g} seconds")

    def input_throttled(self) -> None:
        """Lines now wait: IRC servers say nothing, chatd says it once."""
        self.log.warn("{peer} is flooding; throttling its input", peer=self.peer)
        self.send_info(
            f"You are sending too fast; your lines wait and are handled at "
            f"{self.config.flood_rate:g} per second"
        )

    def input_overflowed(self) -> None:
        """The input queue passed --recvq: IRC calls it Excess Flood."""
        self.log.warn(
            "{peer} overflowed its input queue ({limit} bytes)",
            peer=self.peer,
            limit=self.config.recvq,
        )
        self.close("Excess Flood")

    # -- the server's PING ------------------------------------------------------

    def _schedule_ping(self) -> None:
        self._ping_call = self.hub.clock.callLater(
            self.server.ping_interval, self._ping_check
        )

    def _ping_check(self) -> None:
        """Every interval: PING a client that was silent; drop one that stays so."""
        self._ping_call = None
        if self.phase is Phase.CLOSING:
            return
        if self._heard:
            self._heard = self._pinged = False
        elif not self._pinged:
            self._pinged = True
            self.send(irc_line("PING", text=self.server.name))
            self.flush()
        else:
            seconds = self.server.ping_interval
            self.log.info("{peer} ping timeout", peer=self.peer)
            self.close(f"Ping timeout: {seconds:g} seconds")
            return
        self._schedule_ping()


class IrcFactory(ServerFactory):
    """Builds IrcProtocols on the shared ChatFactory: same chat, same caps."""

    noisy = False

    def __init__(self, hub: ChatFactory) -> None:
        self.hub = hub
        self.server = IrcServer(hub.chat, hub.config, now=hub.clock.seconds)

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        host = address_host(addr)
        refusal = self.hub.refusal(host)
        if refusal is not None:
            return RefusedIrc(refusal)
        connection = IrcProtocol(self.hub, self.server)
        connection.host = host
        return connection


class RefusedIrc(Protocol):
    """Answers an IRC connection the server cannot take: ERROR, then close."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def connectionMade(self) -> None:
        assert self.transport is not None  # set by makeConnection
        self.transport.write(irc_line("ERROR", text=f"Closing link: ({self.reason})"))
        self.transport.loseConnection()
