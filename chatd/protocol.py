"""One client connection: bytes in, commands to the chat, events out as lines."""

from __future__ import annotations

import socket
from collections.abc import Callable
from enum import Enum, auto
from typing import Protocol as TypingProtocol

from twisted.conch.telnet import AYT, IAC, IP
from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IReactorTime,
    ISystemHandle,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd import __version__
from chatd.chat import Chat, Event, IChatClient, User
from chatd.commands import COMMANDS
from chatd.config import ServerConfig
from chatd.errors import ChatError, ErrorCode
from chatd.limits import FloodGate, SendQueue, TokenBucket
from chatd.names import LOBBY, clean_text
from chatd.output import Journal, OutputBatch
from chatd.telnet import TelnetFilter
from chatd.wire import line, render

NICK_PROMPT = (
    "Choose a nickname: 1-20 letters, digits, _ or -, not starting with a digit"
)
NICK_REFUSALS = frozenset({ErrorCode.NICK_TAKEN, ErrorCode.NICK_INVALID})


class ConnectionHub(TypingProtocol):
    """What a connection needs from the factory that built it."""

    chat: Chat
    config: ServerConfig
    clock: IReactorTime
    output: OutputBatch

    def connection_made(self, connection: ChatProtocol) -> None:
        """Count connection among the open ones."""

    def connection_lost(self, connection: ChatProtocol) -> None:
        """Forget connection."""


class Phase(Enum):
    """Where a connection is in its life."""

    AWAITING_NICK = auto()  # HELLO and NICK sent; the next line is a nickname
    REGISTERED = auto()  # WELCOME sent; lines are messages and commands
    CLOSING = auto()  # BYE sent; nothing more is written


_CLOSING = Phase.CLOSING  # a global lookup is cheaper than Phase.CLOSING in hot paths


def _peer_name(connection: ChatProtocol) -> str:
    """Return host:port of the connection's peer, for the log."""
    peer = connection.transport.getPeer() if connection.transport else None
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    return f"{host}:{port}" if host is not None else str(peer)


# Dead peers: probe after a minute of silence, every 15 s, give up after 4 misses.
KEEPALIVE_OPTIONS = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4))


class IChatTransport(ITCPTransport, IConsumer, ISystemHandle):
    """What a connection's transport offers: TCP (or TLS over TCP) and a consumer."""


def tune_socket(transport: IChatTransport) -> None:
    """Turn on TCP keepalive (tuned to find dead peers in minutes) and NODELAY."""
    if not hasattr(transport, "setTcpKeepAlive"):
        return  # not a TCP connection (a test transport, say)
    transport.setTcpKeepAlive(True)
    transport.setTcpNoDelay(True)  # chat lines are small; no 40 ms Nagle stalls
    handle = transport.getHandle()
    if not isinstance(handle, socket.socket):
        return
    for name, value in KEEPALIVE_OPTIONS:
        if hasattr(socket, name):
            handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


@implementer(IChatClient)
class ChatProtocol(LineReceiver, TimeoutMixin):
    """The chatd line protocol (PROTOCOL.md) for one connection."""

    delimiter = b"\n"  # a CR before it is dropped in lineReceived
    log = Logger()
    # Thousands of these live at once: slots keep each small and quick to read.
    # (Twisted's base classes still give every instance a __dict__ of their own.)
    __slots__ = (
        "hub",
        "chat",
        "config",
        "output",
        "_out",
        "_journal",
        "_start",
        "_end",
        "_socket",
        "phase",
        "user",
        "host",
        "_discarding",
        "_leftover",
        "_bye_reason",
        "telnet",
        "gate",
        "sendq",
    )
    transport: IChatTransport  # set by makeConnection: TCP, or TLS over TCP

    def __init__(self, hub: ConnectionHub) -> None:
        self.hub = hub
        self.chat = hub.chat
        self.config = hub.config
        self.output = hub.output
        # Output waiting for the next flush (see OutputBatch): either a run of
        # the round's broadcast lines, _journal.lines[_start:_end], or a list
        # of this connection's own; never both.
        self._out: list[bytes] | None = None
        self._journal: Journal | None = None
        self._start = self._end = 0
        self._socket: tcp.Connection | None = None  # plain TCP: direct sends
        # +1: the line limit counts the text, not the CR that may end it.
        self.MAX_LENGTH = hub.config.max_line + 1
        self.phase = Phase.AWAITING_NICK
        self.user: User | None = None
        self.host = "?"  # the peer's address, as --max-per-ip counts it
        self._discarding = False  # skipping the rest of an over-long line
        self._leftover = b""  # bytes after an over-long line, to parse next
        self._bye_reason: str | None = None  # why the server closed, if it did
        self.telnet: TelnetFilter | None = None  # made once a telnet command comes
        self.gate: FloodGate | None = None
        if self.config.flood_rate > 0:
            self.gate = FloodGate(
                TokenBucket(self.config.flood_burst, self.config.flood_rate, hub.clock),
                self.config.recvq,
                self,
            )
        self.sendq = SendQueue(self.config.sendq, self)

    # -- connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        self.hub.connection_made(self)
        tune_socket(self.transport)
        transport = self.transport
        if isinstance(transport, tcp.Connection) and not transport.TLS:
            # Plain TCP: told each time the buffer empties (see SendQueue).
            self._socket = transport
            self.sendq.exact()
            transport.registerProducer(self.sendq, False)
        else:
            # TLS: paused once the buffer passes bufferSize, resumed when empty.
            self.sendq.buffer_size = getattr(transport, "bufferSize", 65536)
            transport.registerProducer(self.sendq, True)
        self.setTimeout(self.config.register_timeout)
        self.log.info("{peer} connected", peer=self.peer)
        self.send(line("HELLO", self.config.name, text=self._banner()))
        self.send(line("NICK", text=NICK_PROMPT))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.phase = Phase.CLOSING
        self._stop_limits()
        self.hub.connection_lost(self)
        if self._bye_reason is not None:
            why = self._bye_reason
        elif reason.check(ConnectionDone):
            why = "connection closed"
        else:
            why = "connection lost"
        self._leave(why)
        self.log.info("{peer} disconnected: {why}", peer=self.peer, why=why)

    @property
    def peer(self) -> str:
        """host:port of the other end, for the log (worked out when logging)."""
        return _peer_name(self)

    @property
    def awaiting_nick(self) -> bool:
        """Tell whether the connection has yet to choose a nickname."""
        return self.phase is Phase.AWAITING_NICK

    def _leave(self, reason: str, logged: str | None = None) -> None:
        """Take the user out of the chat; everyone sharing a room sees QUIT.

        logged replaces reason in the log where the reason is the user's own
        words (the log never holds what people write).
        """
        user, self.user = self.user, None
        if user is not None:
            self.chat.quit(user, reason)
            self.log.info(
                "{nick} left: {reason}", nick=user.nick, reason=logged or reason
            )

    def _banner(self) -> str:
        name = self.config.name
        server = (
            f"chatd {__version__}"
            if name == "chatd"
            else f"{name} (chatd {__version__})"
        )
        return f"Welcome to {server}. Pick a nickname; /help lists the commands."

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """Schedule TimeoutMixin's timers on the injected clock."""
        return self.hub.clock.callLater(period, func)

    def _stop_limits(self) -> None:
        """Cancel timers and queued input: nothing more will be handled."""
        self.setTimeout(None)
        if self.gate is not None:
            self.gate.stop()

    def timeoutConnection(self) -> None:
        """Say why in a BYE, then close: no nickname in time, or idle too long."""
        if self.phase is Phase.AWAITING_NICK:
            seconds, why = self.config.register_timeout, "No nickname chosen within"
        else:
            seconds, why = self.config.idle_timeout, "Idle for"
        self.log.info(
            "{peer} timed out: {why} {seconds:g}s",
            peer=self.peer,
            why=why,
            seconds=seconds,
        )
        self.close(f"{why} {seconds:g} seconds.")

    # -- limits ----------------------------------------------------------------------

    def input_throttled(self) -> None:
        """Tell a client once per episode that its lines are now queued."""
        self.log.warn("{peer} is flooding; throttling its input", peer=self.peer)
        rate = self.config.flood_rate
        self.send(
            line(
                "ERR",
                ErrorCode.FLOOD.value,
                text=f"you are sending too fast; your lines wait and are handled "
                f"at {rate:g} per second",
            )
        )

    def input_overflowed(self) -> None:
        """The input queue passed --recvq: say why, and close."""
        self.log.warn(
            "{peer} overflowed its input queue ({limit} bytes)",
            peer=self.peer,
            limit=self.config.recvq,
        )
        self.close(f"Input queue full: more than {self.config.recvq} bytes waiting.")

    def send_queue_full(self) -> None:
        """The client stopped reading: cut it off without waiting for a flush."""
        self.log.warn(
            "{peer} stopped reading; send queue over {limit} bytes",
            peer=self.peer,
            limit=self.config.sendq,
        )
        self._abort("send queue full (not reading)")

    def _abort(self, bye_reason: str | None) -> None:
        """Drop the connection now: no BYE, nothing more written or handled.

        bye_reason is what the others hear in QUIT; None leaves it to
        connectionLost, which says "connection lost" for an abort.
        """
        if self.phase is not Phase.CLOSING:
            self.phase = Phase.CLOSING
            self._bye_reason = bye_reason
            self._stop_limits()
        self._out = self._journal = None
        self.transport.abortConnection()  # BYE would only join the unread queue

    # -- writing -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one or more encoded lines, unless this connection is closing."""
        if self.phase is not Phase.CLOSING:
            self._write(data)

    def send_info(self, text: str) -> None:
        """Send a human notice."""
        self.send(line("INFO", text=text))

    def deliver(self, event: Event) -> None:
        """Write a chat event; the rendering is shared by every recipient."""
        # The hot path of every broadcast: each member takes the same bytes,
        # so most members only move the end of their run (see Journal).
        if self.phase is _CLOSING:
            return
        data = render(event)
        if not data:
            return  # an event this protocol does not show (Away)
        journal = self._journal
        if journal is not None:  # waiting for a run of broadcast lines
            lines = journal.lines
            end = self._end
            if lines[-1] is data:  # a member before this one added the line
                if end == len(lines) - 1:
                    self._end = end + 1
                    return
            elif end == len(lines):  # the first member to take it
                lines.append(data)
                self._end = end + 1
                return
            self._write(data)  # out of turn: to a list of its own
        elif self._out is not None:
            self._out.append(data)
        elif self.output.collecting:
            journal = self.output.journal
            self._end = journal.add(data)
            self._start = self._end - 1
            self._journal = journal
            self.output.add(self)
        else:
            self._transmit(data)

    def _write(self, data: bytes) -> None:
        """Collect data for the next flush, or write it now (see OutputBatch)."""
        journal = self._journal
        if journal is not None:  # the run so far goes first
            self._journal = None
            self._out = journal.lines[self._start : self._end]
        out = self._out
        if out is not None:
            out.append(data)
        elif self.output.collecting:
            self.output.add(self)
            self._out = [data]
        else:
            self._transmit(data)

    def flush(self) -> None:
        """Write what was collected during a batch, with one transport.write."""
        journal = self._journal
        if journal is not None:
            self._journal = None
            self._transmit(journal.joined(self._start, self._end))
            return
        out = self._out
        if out is not None:
            self._out = None  # an idle connection holds no list
            self._transmit(out[0] if len(out) == 1 else b"".join(out))

    def _transmit(self, data: bytes) -> None:
        """Send data, or cut the client off if it would pass its send queue."""
        sendq = self.sendq
        if sendq.drained and self._socket is not None:
            # Nothing waits in the transport, so the socket can take the bytes
            # now: one send() instead of a buffer, two epoll changes and a
            # write event later. What it does not take goes the usual way.
            sent = self._socket.writeSomeData(data)
            if sent == len(data):
                return
            if not isinstance(sent, int):
                # send() failed: the peer is gone (a reset). The failed send
                # took the socket's error with it, so the next read would see
                # a plain end of file and everyone would hear "connection
                # closed"; an abort reports the connection as lost.
                self._abort(None)
                return
            if sent > 0:
                data = data[sent:]
        if sendq.counting:  # these bytes will wait in the transport
            sendq.wrote(len(data))
            if self.phase is _CLOSING:
                return
        self.transport.write(data)

    def close(self, reason: str) -> None:
        """Send BYE with reason and close once it is written."""
        if self.phase is Phase.CLOSING:
            return
        self.send(line("BYE", text=reason))
        self.flush()  # everything up to BYE, before the connection closes
        self.phase = Phase.CLOSING
        self._bye_reason = reason
        self._stop_limits()
        # A registered producer would hold the connection open: let it go first.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    # -- framing ---------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Handle received bytes as one output batch (see OutputBatch)."""
        self.output.begin()
        try:
            self._receive(data)
        finally:
            self.output.end(self)

    def _receive(self, data: bytes) -> None:
        """Frame lines, dropping the tail of over-long lines without buffering it."""
        if self.telnet is not None or IAC in data:
            data = self._filter_telnet(data)
        while True:
            if self._discarding:
                end = data.find(b"\n")
                if end < 0:
                    return  # still inside the over-long line: nothing is kept
                self._discarding = False
                data = data[end + 1 :]
            super().dataReceived(data)
            data, self._leftover = self._leftover, b""
            if not data or self.phase is Phase.CLOSING:
                return

    def _filter_telnet(self, data: bytes) -> bytes:
        """Take telnet commands out of data, refusing options, noting Ctrl-C."""
        if self.telnet is None:
            self.telnet = TelnetFilter()
        data, reply = self.telnet.feed(data)
        if reply:
            self.send(reply)  # telnet discards our output until it hears back
        for command in self.telnet.take_commands():
            if command == ord(IP):
                self.send_info("Ctrl-C does not leave the chat; type /quit to leave.")
            elif command == ord(AYT):
                self.send_info(f"Yes, {self.config.name} is here.")
        return data

    def lineLengthExceeded(self, line_: bytes) -> None:
        """Refuse an over-long line whole and go on with the next one."""
        # PROTOCOL.md, Limits: refused whole, the connection stays open.
        # line_ may hold the following lines too; dataReceived feeds them back
        # once LineReceiver has returned (calling it from here only buffers).
        self._reply_error(self._too_long())
        end = line_.find(b"\n")
        if end < 0:
            self._discarding = True
        else:
            self._leftover = line_[end + 1 :]

    def _too_long(self) -> ChatError:
        self.log.warn(
            "{peer} sent a line over {limit} bytes; refused",
            peer=self.peer,
            limit=self.config.max_line,
        )
        return ChatError(
            ErrorCode.TOO_LONG,
            f"lines are limited to {self.config.max_line} bytes; that one was dropped",
        )

    def lineReceived(self, raw: bytes) -> None:
        """Take one framed line: handle it now, or queue it if the client floods."""
        if self.phase is Phase.REGISTERED:
            self.resetTimeout()  # idle means silent; the nickname deadline stays
        if self.gate is None:
            self.handle_line(raw)
        else:
            self.gate.submit(raw)

    def handle_line(self, raw: bytes) -> None:
        """Handle one line; the only place where errors become ERR lines."""
        if self.phase is Phase.CLOSING:
            return
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            if len(raw) > self.config.max_line:
                raise self._too_long()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ChatError(
                    ErrorCode.BAD_ENCODING, "that line was not valid UTF-8; dropped"
                ) from None
            self._handle(text)
        except ChatError as error:
            self._reply_error(error)
        except Exception:
            self.log.failure("while handling a line from {peer}", peer=self.peer)
            self.send_info("Sorry, that command failed inside the server.")

    def _reply_error(self, error: ChatError) -> None:
        # The text may quote what the client sent: never echo control characters.
        self.send(line("ERR", error.code.value, text=clean_text(error.text)))
        if self.phase is Phase.AWAITING_NICK and error.code in NICK_REFUSALS:
            self.send(line("NICK", text=NICK_PROMPT))

    # -- parsing -----------------------------------------------------------------

    def _handle(self, text: str) -> None:
        # Control characters go first (PROTOCOL.md, Limits), so that a stray
        # Ctrl-L or a leading blank cannot turn "/msg bob secret" into a room
        # message (docs/protocol.md, Messages).
        text = clean_text(text)
        lead = text.lstrip()
        if not lead:
            return  # PROTOCOL.md: empty lines are ignored
        if lead.startswith("/") and not lead.startswith("//"):
            self._run_command(lead[1:])
        elif self.phase is Phase.AWAITING_NICK:
            self.register(self._nick_from(text))
        else:
            self._say(lead[1:] if lead.startswith("//") else text)

    @staticmethod
    def _nick_from(text: str) -> str:
        """Take the nickname from a bare `alice` or a `NICK alice` line."""
        word, _, rest = text.strip().partition(" ")
        if word.upper() == "NICK" and rest.strip():
            return rest.strip()
        return text.strip()

    def _run_command(self, text: str) -> None:
        name, _, rest = text.partition(" ")
        command = COMMANDS.get(name.lower())
        if command is None:
            raise ChatError(
                ErrorCode.UNKNOWN_COMMAND, f"/{name} is not a command; try /help"
            )
        if self.phase is Phase.AWAITING_NICK and not command.before_nick:
            raise ChatError(
                ErrorCode.NOT_REGISTERED, "choose a nickname first (send just the name)"
            )
        command.handler(self, command.split(rest))

    def registered_user(self) -> User:
        """Return this connection's user; commands past registration use it."""
        if self.user is None:  # cannot happen: the command table guards it
            raise ChatError(ErrorCode.NOT_REGISTERED, "choose a nickname first")
        return self.user

    def register(self, nick: str) -> None:
        """Take nick: WELCOME, the message of the day, then #lobby."""
        user = self.chat.register(nick, self)
        self.user = user
        self.phase = Phase.REGISTERED
        self.setTimeout(self.config.idle_timeout or None)
        self.log.info("{peer} registered as {nick}", peer=self.peer, nick=user.nick)
        self.send(
            line(
                "WELCOME",
                user.nick,
                text=f"Welcome to {self.config.name}, {user.nick}! "
                "Type /help for commands.",
            )
        )
        for motd_line in self.config.motd:
            self.send_info(motd_line)
        self.chat.join(user, LOBBY)

    def _say(self, text: str) -> None:
        self.chat.say(self.registered_user(), text)

    def quit_chat(self, reason: str) -> None:
        """Leave at the client's request: QUIT to the others, BYE, close."""
        nick = self.user.nick if self.user is not None else None
        self._leave(reason or "quit", logged="/quit")
        self.close(f"Goodbye, {nick}." if nick else "Goodbye.")


class RefusedProtocol(Protocol):
    """Answers a connection the server cannot take: ERR server-full, BYE, close."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def connectionMade(self) -> None:
        assert self.transport is not None  # set by makeConnection
        self.transport.write(line("ERR", ErrorCode.SERVER_FULL.value, text=self.reason))
        self.transport.write(line("BYE", text="Please try again later."))
        self.transport.loseConnection()
