"""The client side of chatd: the line protocol and the life of a connection.

ClientProtocol frames the server's lines and parses them with chatd.line.wire.
ClientSession runs one user's chat over it: NICK negotiation, what the user
types (messages and /commands), reconnecting with a growing delay after a
drop, and leaving with /quit. The conversations themselves are
chatd/client/conversations.py's ChatState. Nothing here imports tkinter, so all of
it is tested with StringTransport and task.Clock; chatd/tk_client.py draws it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from functools import partial

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
    UnknownHostError,
)
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatd.client.conversations import (
    LOBBY_KEY,
    SERVER_KEY,
    ChatState,
    ClientView,
    Conversation,
    ConversationKind,
    EntryKind,
)
from chatd.config import DEFAULT_PORT
from chatd.line.wire import LIST_VERBS, ServerLine, parse_server_line
from chatd.model.names import fold
from chatd.model.rates import TokenBucket

DEFAULT_HOST = "127.0.0.1"
FIRST_RETRY_DELAY = 1.0  # seconds; doubled after each failed attempt ...
MAX_RETRY_DELAY = 30.0  # ... up to this
STABLE_AFTER = 60.0  # seconds up, every rejoin sent, before the delay starts over
SEND_BURST = 8  # lines written at once: below chatd's --flood-burst default, 10 ...
SEND_RATE = 1.8  # ... then lines per second: below its --flood-rate default, 2
SLOWEST_SEND_RATE = 0.25  # lines per second, however often ERR flood comes
QUIT_GRACE = 2.0  # seconds to wait for the server to close after /quit
CONNECT_TIMEOUT = 10  # seconds for one TCP connection attempt
NICK_REFUSALS = frozenset({"nick-taken", "nick-invalid"})  # docs/protocol.md codes
# A login at the prompt refused (docs/protocol.md, Devices): the form again.
LOGIN_REFUSALS = frozenset({"auth-failed", "throttled", "too-many-devices"})
PRIVATE_KINDS = frozenset({ConversationKind.PRIVATE, ConversationKind.OTHERS})


def retry_delay(attempt: int) -> float:
    """Return how long to wait before reconnect attempt number attempt (from 1)."""
    return min(FIRST_RETRY_DELAY * 2 ** max(attempt - 1, 0), MAX_RETRY_DELAY)


def read_server_line(raw: str) -> ServerLine:
    """Split a server line (no CRLF) as chatd.line.wire does, lenient with word lists.

    The words of USERS and ROOMS are a list: an empty word (two spaces in a
    row) is left out instead of costing the whole line. Which items make
    sense is ChatState's to judge. ValueError if the line is not in the
    protocol at all.
    """
    verb, _, rest = raw.partition(" ")
    if verb not in LIST_VERBS:
        return parse_server_line(raw)
    words = tuple(word for word in rest.split(" ") if word)
    if verb == "USERS" and not words:
        raise ValueError(f"USERS without a room: {raw!r}")
    return ServerLine(verb, words, None)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A line waiting for its turn to be written to the server."""

    text: str
    wanted: Callable[[], bool] | None = None  # asked at its turn: still worth it?
    sent: Callable[[], None] | None = None  # told once it is written


class LinePacer:
    """Writes a connection's lines no faster than the server's flood gate takes them.

    chatd handles a burst of a client's lines, then a few a second, keeps the
    rest waiting and cuts the client off when more than --recvq bytes wait
    (README, Limits). A client in 1,700 rooms that sent its /joins all at once
    after a reconnect was cut off every time (issue 11). So every line waits
    here for a token instead: first the lines the user's actions make, in
    order, then the background ones (rejoins). A background line whose wanted()
    says no at its turn is dropped without costing a token.
    """

    def __init__(self, clock: IReactorTime, write: Callable[[str], None]) -> None:
        self.clock = clock
        self.bucket = TokenBucket(SEND_BURST, SEND_RATE, clock)
        self._write = write
        self._now: deque[Outgoing] = deque()
        self._later: deque[Outgoing] = deque()  # background
        self._turn: IDelayedCall | None = None  # when the next token is there

    def send(self, line: Outgoing, background: bool = False) -> None:
        """Write line as soon as a token and the lines before it allow."""
        (self._later if background else self._now).append(line)
        self._pump()

    def has_background(self) -> bool:
        """Tell whether background lines still wait."""
        return bool(self._later)

    def slow_down(self) -> None:
        """The server said ERR flood: its limits are below ours; halve the rate."""
        self.bucket.rate = max(self.bucket.rate / 2, SLOWEST_SEND_RATE)
        self.bucket.tokens, self.bucket.stamp = 0.0, self.clock.seconds()
        self._cancel()
        self._pump()

    def stop(self) -> None:
        """Forget every waiting line: the connection is over."""
        self._cancel()
        self._now.clear()
        self._later.clear()

    def _cancel(self) -> None:
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None

    def _pump(self) -> None:
        while self._turn is None:
            queue = self._now or self._later
            if not queue:
                return
            line = queue[0]
            if line.wanted is not None and not line.wanted():
                queue.popleft()
                continue
            if not self.bucket.take():
                self._turn = self.clock.callLater(self.bucket.wait(), self._next_turn)
                return
            queue.popleft()
            self._write(line.text)
            if line.sent is not None:
                line.sent()

    def _next_turn(self) -> None:
        self._turn = None
        self._pump()


Connector = Callable[[str, int, "ClientProtocol"], "Deferred[object]"]


def tcp_connector(reactor: IReactorTCP) -> Connector:
    """Return a Connector that dials host:port over TCP with reactor."""

    def connect(host: str, port: int, protocol: ClientProtocol) -> Deferred[object]:
        # Endpoint strings give ":" and "=" a meaning: a host escapes them
        # (an IPv6 address has colons). A bad one fails the Deferred, not us.
        escaped = "".join("\\" + c if c in "\\:=" else c for c in host)
        description = f"tcp:{escaped}:{port}:timeout={CONNECT_TIMEOUT}"
        connected: Deferred[object] = maybeDeferred(
            lambda: connectProtocol(clientFromString(reactor, description), protocol)
        )
        return connected

    return connect


def describe_failure(reason: Failure) -> str:
    """Say in a few words why a connection failed or ended."""
    if reason.check(ConnectionRefusedError):
        return "nothing is listening there (connection refused)"
    if reason.check(TimeoutError):
        return "no answer (timed out)"
    if reason.check(DNSLookupError, UnknownHostError):
        return "unknown host name"
    if reason.check(ConnectionDone):
        return "the server closed the connection"
    if reason.check(ConnectionLost):
        return "the connection was lost"
    return reason.getErrorMessage()


class ClientProtocol(LineReceiver):
    """The client end of the chatd line protocol: lines to and from a session."""

    delimiter = b"\n"  # a CR before it is dropped in lineReceived
    MAX_LENGTH = 65536  # far above what chatd sends
    log = Logger()

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    def connectionMade(self) -> None:
        self.session.connection_made(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.session.connection_lost(self, reason)

    def lineReceived(self, raw: bytes) -> None:
        """Hand one server line to the session; the only place errors are caught."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = raw.decode("utf-8", errors="replace")
        self.log.debug("received {line!r}", line=text)
        try:
            try:
                parsed = read_server_line(text)
            except ValueError:
                self.session.unreadable(self, text)
                return
            self.session.line_received(self, parsed)
        except Exception:
            self.log.failure("while handling {line!r}", line=text)
            self.session.internal_error(text)

    def send_line(self, text: str) -> None:
        """Write one line to the server."""
        self.log.debug("sending {line!r}", line=text)
        if self.transport is not None:
            self.transport.write(text.encode("utf-8") + b"\r\n")


class SessionPhase(Enum):
    """Where the session's connection is in its life."""

    OFFLINE = auto()  # no connection and none wanted
    CONNECTING = auto()  # a TCP connection is being made
    AWAITING_NICK = auto()  # connected; HELLO and NICK negotiation
    REGISTERED = auto()  # WELCOME received: chatting
    WAITING = auto()  # connection lost; a reconnect is scheduled
    QUITTING = auto()  # /quit sent; waiting for the server to close


class ClientSession:
    """One user's chat: the connection, reconnects, and what the user types."""

    log = Logger()

    def __init__(
        self, view: ClientView, clock: IReactorTime, connector: Connector
    ) -> None:
        self.view = view
        self.clock = clock
        self.connector = connector
        self.state = ChatState(view, clock, self._send)
        self.host = DEFAULT_HOST
        self.port = DEFAULT_PORT
        self.phase = SessionPhase.OFFLINE
        self._protocol: ClientProtocol | None = None
        self._pacer: LinePacer | None = None  # the open connection's
        self._settling: IDelayedCall | None = None  # STABLE_AFTER after WELCOME
        self._dialing: Deferred[object] | None = None
        self._retry: IDelayedCall | None = None
        self._quit_timer: IDelayedCall | None = None
        self._quitters: list[Deferred[None]] = []
        self._attempt = 0  # reconnect attempts since a connection last stayed up
        self._ever_registered = False  # since the user last chose a server
        self._nick_sent = False  # answered the current NICK prompt
        self._refusal: str | None = None  # ERR text of a refused nickname
        self._login_refused = False  # the refusal was of a password login
        self._password = ""  # logs in at the prompt (connect), in memory only
        self._bye: str | None = None  # BYE text on this connection

    @property
    def nick(self) -> str:
        """The nickname asked for, then the one the server gave."""
        return self.state.nick

    # -- what the user does -----------------------------------------------------------

    def connect(self, host: str, port: int, nick: str, password: str = "") -> None:
        """Connect to host:port as nick, or answer a NICK prompt on the open one.

        With a password the prompt is answered `/identify <nick> <password>`
        (docs/protocol.md, Devices): the account's user, attached to if it is
        connected elsewhere. The password stays in memory for reconnects.
        """
        self.state.nick = nick
        self._password = password
        if self.phase is SessionPhase.AWAITING_NICK and (host, port) == (
            self.host,
            self.port,
        ):
            self._send_nick()
            return
        self._hang_up()
        self.host, self.port = host, port
        self._ever_registered = False
        self._attempt = 0
        self._dial()

    def submit(self, text: str) -> None:
        """Handle what the user typed: messages, and /commands as in telnet."""
        for part in text.splitlines():
            if part.strip():  # docs/protocol.md: empty lines are ignored
                self._submit_line(part)

    def select(self, key: str) -> None:
        """Show the conversation key."""
        self.state.select(key)

    def load_older(self, key: str) -> None:
        """The user scrolled to the top of a room: ask for the page before it."""
        conversation = self.state.conversations.get(key)
        if conversation is None or conversation.kind is not ConversationKind.ROOM:
            return
        if self.phase is not SessionPhase.REGISTERED:
            return
        said = self.state.history.load_older(conversation)
        if said is not None:
            self.view.status(said)

    def close(self, key: str) -> None:
        """Close a private conversation, or leave a room (its tab closes on PART)."""
        conversation = self.state.conversations.get(key)
        if conversation is None:
            return
        if conversation.kind is ConversationKind.ROOM:
            self._send(f"/part {conversation.name}")
        elif conversation.kind in PRIVATE_KINDS:
            self.state.remove(key)

    def quit(self, reason: str = "") -> Deferred[None]:
        """Leave on purpose: /quit and no reconnect; fires once disconnected."""
        done: Deferred[None] = Deferred()
        if self.phase is SessionPhase.QUITTING:
            self._quitters.append(done)
            return done
        protocol = self._protocol
        if protocol is None or self.phase is SessionPhase.CONNECTING:
            self._hang_up()
            self._finish_quit()
            return succeed(None)
        self.phase = SessionPhase.QUITTING
        self._quitters.append(done)
        self.view.status("Leaving the chat…")
        self._stop_pacing()  # what still waits is not sent after /quit
        protocol.send_line(f"/quit {reason}".rstrip())
        self._quit_timer = self.clock.callLater(QUIT_GRACE, self._quit_timed_out)
        return done

    # -- the connection's life --------------------------------------------------------

    def _dial(self) -> None:
        self._retry = None
        self.phase = SessionPhase.CONNECTING
        verb = "Reconnecting" if self._ever_registered else "Connecting"
        self.view.status(f"{verb} to {self.host}:{self.port}…")
        protocol = ClientProtocol(self)
        self._protocol = protocol
        self._dialing = self.connector(self.host, self.port, protocol)
        self._dialing.addErrback(self._dial_failed, protocol)

    def _dial_failed(self, reason: Failure, protocol: ClientProtocol) -> None:
        if protocol is not self._protocol or reason.check(CancelledError):
            return
        self._protocol = self._dialing = None
        self._connection_over(
            f"Cannot reach {self.host}:{self.port}: {describe_failure(reason)}"
        )

    def connection_made(self, protocol: ClientProtocol) -> None:
        """The TCP connection is up; the server speaks first (HELLO, NICK)."""
        if protocol is not self._protocol:
            if protocol.transport is not None:
                protocol.transport.loseConnection()
            return
        self._dialing = None
        self._pacer = LinePacer(self.clock, protocol.send_line)
        self.phase = SessionPhase.AWAITING_NICK
        self._nick_sent = False
        self._refusal = self._bye = None
        self.state.connected()
        self.view.status(f"Connected to {self.host}:{self.port}; signing in…")

    def connection_lost(self, protocol: ClientProtocol, reason: Failure) -> None:
        """The connection ended: finish a /quit, or say so and reconnect."""
        if protocol is not self._protocol:
            return
        self._protocol = None
        self._stop_pacing()
        self.state.disconnected()
        if self.phase is SessionPhase.QUITTING:
            self._finish_quit()
            return
        if self._bye is not None:
            why = f"The server closed the connection: {self._bye}"
        else:
            why = f"Disconnected from {self.host}:{self.port}: "
            why += describe_failure(reason)
        self.state.note_shown(EntryKind.ERROR, why)
        self._connection_over(why)

    def _connection_over(self, why: str) -> None:
        """After a lost or failed connection: retry if we were chatting, else ask."""
        if self._ever_registered:
            self._attempt += 1
            delay = retry_delay(self._attempt)
            self.phase = SessionPhase.WAITING
            self.view.status(f"{why.rstrip('.')}. Reconnecting in {delay:g} s…")
            self._retry = self.clock.callLater(delay, self._dial)
        else:
            self.phase = SessionPhase.OFFLINE
            self.view.status(why)
            self.view.connect_failed(why)

    def _stop_pacing(self) -> None:
        """Forget the lines waiting to be sent, and stop waiting to call it stable."""
        if self._pacer is not None:
            self._pacer.stop()
            self._pacer = None
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = None

    def _hang_up(self) -> None:
        """Drop any connection, dial or scheduled retry, without reconnecting."""
        protocol, self._protocol = self._protocol, None
        self._stop_pacing()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._dialing is not None:
            dialing, self._dialing = self._dialing, None
            dialing.cancel()
        elif protocol is not None and protocol.transport is not None:
            protocol.transport.loseConnection()
        self.phase = SessionPhase.OFFLINE

    def _quit_timed_out(self) -> None:
        self._quit_timer = None
        self._hang_up()
        self._finish_quit()

    def _finish_quit(self) -> None:
        if self._quit_timer is not None and self._quit_timer.active():
            self._quit_timer.cancel()
        self._quit_timer = None
        self.phase = SessionPhase.OFFLINE
        self.view.status("You left the chat.")
        quitters, self._quitters = self._quitters, []
        for done in quitters:
            done.callback(None)
        self.view.finished()

    def _send(self, text: str) -> None:
        """Send a line, paced, if the server is listening to us (not after /quit)."""
        if self._pacer is not None and self.phase in (
            SessionPhase.AWAITING_NICK,
            SessionPhase.REGISTERED,
        ):
            self._pacer.send(Outgoing(text))

    def _send_nick(self) -> None:
        self._nick_sent = True
        self._refusal = None
        self.view.status(f"Asking for the nickname {self.nick}…")
        history = self.state.history
        if not history.ids_sent:
            # docs/protocol.md, Message ids: before the nickname, so that every
            # room message from WELCOME on comes with its id. Its answer (INFO,
            # or ERR unknown-command from a server without it) is not shown.
            history.ids_sent = history.ids_pending = True
            self._send("/ids on")
        tags = self.state.tags
        if not tags.sent:
            # docs/protocol.md, Typing, reactions and replies: shown as text.
            tags.sent = tags.pending = True
            self._send("/tags on")
        if self._password:  # docs/protocol.md, Devices: log in at the prompt
            self.view.status(f"Logging in as {self.nick}…")
            self._send(f"/identify {self.nick} {self._password}")
            return
        # docs/protocol.md: while the server waits for a nickname, `NICK alice` is one.
        self._send(f"NICK {self.nick}")

    # -- typing -----------------------------------------------------------------------

    def _submit_line(self, text: str) -> None:
        if self.phase is not SessionPhase.REGISTERED:
            self.state.note_shown(EntryKind.ERROR, "Not connected: that was not sent.")
            return
        conversation = self.state.shown()
        if text.startswith("/") and not text.startswith("//"):
            self._command(text, conversation)
        elif conversation.kind is ConversationKind.ROOM:
            self.state.make_server_current(conversation)
            self._send(text)  # "//text" is sent as is: the server drops one "/"
        elif conversation.kind is ConversationKind.PRIVATE:
            body = text[1:] if text.startswith("//") else text
            self._send(f"/msg {conversation.name} {body}")
        elif conversation.kind is ConversationKind.OTHERS:
            self.state.note_shown(
                EntryKind.ERROR,
                "This tab collects private messages from several people. "
                "Answer one with /msg <nick> <text>.",
            )
        else:
            self.state.note_shown(
                EntryKind.ERROR,
                "This tab shows the server's notices. Pick a room to talk in, "
                "or type a /command.",
            )

    def _command(self, text: str, conversation: Conversation) -> None:
        """Send a typed /command, aimed at the conversation on screen where it can."""
        name, _, rest = text[1:].partition(" ")
        args = rest.split()
        in_room = conversation.kind is ConversationKind.ROOM
        private = conversation.kind in PRIVATE_KINDS
        names_a_room = bool(args) and args[0].startswith("#")
        match name.lower():
            case "join" if args:
                key = fold(args[0])
                known = self.state.conversations.get(key)
                if known is not None and known.kind is ConversationKind.ROOM:
                    self.state.server_room = key  # the server just makes it current
                    self.state.select(key)
                else:
                    self.state.asked_joins.add(key)  # show it once JOIN arrives
                self._send(text)
            case "part" if private and not names_a_room:
                self.state.remove(conversation.key)
            case "part" if in_room and not names_a_room:
                self._send(f"/part {conversation.name} {rest.strip()}".rstrip())
            case "who" if len(args) <= 1:
                if in_room and not args:
                    text = f"/who {conversation.name}"
                    args = [conversation.name]
                room = args[0] if args else self.state.server_room
                self.state.expect_users(room, shown=True)
                self._send(text)
            case "me" if private:
                self.state.note_shown(
                    EntryKind.ERROR, "/me works in rooms, not in private conversations."
                )
            case "me":
                if in_room:
                    self.state.make_server_current(conversation)
                self._send(text)
            case "quit":
                self.quit(rest.strip())
            case _:
                self._send(text)

    # -- server lines -----------------------------------------------------------------

    def line_received(self, protocol: ClientProtocol, line: ServerLine) -> None:
        """Apply one parsed server line (docs/protocol.md, Server to client)."""
        if protocol is not self._protocol or self._bye is not None:
            return  # after BYE nothing more arrives; ignore it if it does
        words, text = line.words, line.text or ""
        match line.verb:
            case "HELLO":
                server = self.state.conversations[SERVER_KEY]
                server.name = words[0]
                self.state.note_server(EntryKind.INFO, text)
                self.view.changed(server)
            case "NICK":
                self._on_nick()
            case "WELCOME":
                self._on_welcome(words[0], text)
            case "BYE":
                self._bye = text  # connection_lost tells the user
            case "ERR" if words[0] in NICK_REFUSALS:
                if self.phase is SessionPhase.AWAITING_NICK:
                    self._refusal = text  # the NICK prompt that follows asks again
            case "ERR" if words[0] in LOGIN_REFUSALS:
                if self.phase is SessionPhase.AWAITING_NICK and self._password:
                    self._refusal = text
                    self._login_refused = True
            case "ERR" if words[0] == "flood" and self._pacer is not None:
                self._pacer.slow_down()
        self.state.apply(line)

    def unreadable(self, protocol: ClientProtocol, text: str) -> None:
        """Note a line that is not in the protocol, and carry on."""
        if protocol is self._protocol:
            self.state.note_server(
                EntryKind.ERROR,
                f"The server sent a line this client does not understand: {text}",
            )

    def internal_error(self, text: str) -> None:
        """Tell the user that handling a line failed (the log has the details)."""
        self.view.status(f"Sorry, this client could not handle the line {text!r}.")

    def _on_nick(self) -> None:
        if self.phase is not SessionPhase.AWAITING_NICK:
            return
        if self._refusal is not None and self._login_refused:
            reason, self._refusal, self._login_refused = self._refusal, None, False
            self._nick_sent = False
            self.view.status(f"Logging in failed: {reason}")
            self.view.connect_failed(f"Logging in as {self.nick} failed: {reason}")
        elif self._refusal is not None:
            reason, self._refusal = self._refusal, None
            self._nick_sent = False
            self.view.status(f"Nickname refused: {reason}")
            self.view.ask_nick(reason)
        elif self._nick_sent:
            # A second prompt without a refusal: ask the person rather than loop.
            self._nick_sent = False
            self.view.ask_nick("The server asked for a nickname again.")
        elif self.nick:
            self._send_nick()
        else:
            self.view.ask_nick("Choose a nickname.")

    def _on_welcome(self, nick: str, text: str) -> None:
        self.state.nick = nick
        self.phase = SessionPhase.REGISTERED
        # Not self._attempt = 0: a server that takes us in and then cuts us
        # off would make that a loop of quick reconnects (issue 11).
        self._settling = self.clock.callLater(STABLE_AFTER, self._stayed_up)
        if self._ever_registered:
            self.state.note_shown(EntryKind.INFO, f"Connected again as {nick}.")
        self._ever_registered = True
        self.state.note_server(EntryKind.INFO, text)
        self.view.status(f"Connected to {self.host}:{self.port} as {nick}")
        self.view.registered(nick)
        # After a reconnect, go back into the user's rooms, paced, behind what
        # the user does; #lobby the server joins by itself (docs/protocol.md, WELCOME).
        for room in self.state.rooms():
            if room.key != LOBBY_KEY and self._pacer is not None:
                rejoin = Outgoing(
                    f"/join {room.name}",
                    wanted=partial(self.state.needs_rejoin, room),
                    sent=partial(self.state.joining, room),
                )
                self._pacer.send(rejoin, background=True)

    def _stayed_up(self) -> None:
        """Registered STABLE_AFTER ago: the next drop starts from the first delay.

        Not before the rejoins have all gone out, so that a server that cuts
        us off during them is not answered by the same burst of /joins.
        """
        if self._pacer is not None and self._pacer.has_background():
            self._settling = self.clock.callLater(STABLE_AFTER, self._stayed_up)
            return
        self._settling = None
        self._attempt = 0


class InputHistory:
    """What the user typed, walked through with Up and Down like a shell."""

    def __init__(self, limit: int = 500) -> None:
        self.items: deque[str] = deque(maxlen=limit)
        self._index = 0  # len(items) means "the line being typed"
        self._draft = ""

    def add(self, text: str) -> None:
        """Remember a sent line and go back to a fresh draft."""
        if text and (not self.items or self.items[-1] != text):
            self.items.append(text)
        self._index = len(self.items)
        self._draft = ""

    def previous(self, current: str) -> str | None:
        """Return the line before, or None at the oldest; current is kept as draft."""
        if self._index == len(self.items):
            self._draft = current
        if self._index == 0:
            return None
        self._index -= 1
        return self.items[self._index]

    def next(self) -> str | None:
        """Return the line after (the draft at the end), or None if already there."""
        if self._index >= len(self.items):
            return None
        self._index += 1
        if self._index == len(self.items):
            return self._draft
        return self.items[self._index]
