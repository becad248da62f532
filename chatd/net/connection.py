"""Connection: one client connection of any door, composed of the shared parts.

A door (the line protocol in chatd.protocol, IRC in chatd.irc, the WebSocket
in chatd.web) is a subclass of Connection that only translates: it greets,
turns one decoded line into model calls, renders events to bytes and spells
errors and goodbyes. What a connection needs besides lives below the doors,
once, in parts a connection is made of (each with the connection as its
delegate, as Tornado's HTTP1Connection has one, given on every call):

- framing lines, over-long ones refused whole (chatd.net.framing.LineFramer);
- the flood gate and the send queue (chatd.net.limits): every line (empty
  and over-long ones too) and every telnet command costs a token; past the
  budget the rest of the input is held as raw bytes, unframed, and handled at
  the rate; more than --recvq bytes held closes the connection;
- answers that come later, and what waits for them: a goodbye after /quit,
  the end of the client's input (chatd.net.answers.Answers);
- closing: goodbye, grace, abort (chatd.net.closing.Closing);
- socket tuning (chatd.net.sockets).

What stays here is the connection's life (register and idle timeouts, caps,
the log of each limit hit) and the broadcast hot path: output batching and
the render-once journal (chatd.net.output), direct sends on plain TCP. It is
read once per member of every broadcast, so it keeps its own slots and
calls no part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from errno import ENOBUFS
from typing import ClassVar
from typing import Protocol as TypingProtocol

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.config import ReloadReport, ServerConfig
from chatd.model.accounts import Accounts
from chatd.model.chat import Chat, Event, IChatClient, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.rates import TokenBucket
from chatd.model.server_bans import ServerBanned
from chatd.net import bulk
from chatd.net.answers import ANSWER_WAIT, Answers
from chatd.net.closing import Closing, Refusal
from chatd.net.framing import LineFramer, decode_line
from chatd.net.limits import FloodGate, SendQueue
from chatd.net.output import Journal, OutputBatch
from chatd.net.phase import Phase
from chatd.net.sockets import IChatTransport, peer_name, tune_socket
from chatd.net.stats import Stats

# Names the doors and tests import from here, where they used to live.
__all__ = [
    "ANSWER_WAIT",
    "Connection",
    "ConnectionHub",
    "IChatTransport",
    "Phase",
    "Refusal",
    "peer_name",
    "tune_socket",
]


class ConnectionHub(TypingProtocol):
    """What a connection needs from the factory that built it."""

    chat: Chat
    config: ServerConfig
    clock: IReactorTime
    output: OutputBatch
    accounts: Accounts
    stats: Stats

    def connection_made(self, connection: Connection) -> None:
        """Count connection among the open ones."""

    def connection_lost(self, connection: Connection) -> None:
        """Forget connection."""

    def rehash(self, who: str) -> ReloadReport:
        """Re-read the config file at who's request (chatd.ops.reload)."""


_CLOSING = Phase.CLOSING  # a global lookup is cheaper than Phase.CLOSING in hot paths


def _render_nothing(event: Event) -> bytes:
    """A closed connection's renderer (deliver returns before it is called)."""
    return b""


@implementer(IChatClient, IHalfCloseableProtocol)
class Connection(Protocol, TimeoutMixin):
    """One client connection of any door: the machinery below the translation.

    A door overrides greet, handle_text, reply_error, report_failure,
    goodbye, flood_notice and render, and may override filter_input and
    hang_up (the WebSocket door sends a close frame before the TCP close).
    Its parts: framer (LineFramer), gate (FloodGate), sendq (SendQueue),
    answers (Answers) and closing (Closing).
    """

    log = Logger()
    door: ClassVar[str] = "?"  # the door's name, for the log and the journals
    identify_hint: ClassVar[str]  # the door's words for identifying (IChatClient)
    # Bytes a line may hold beyond --max-line in a tag section the door
    # reads itself (IRC's: IRCv3 message-tags gives clients 4096); 0: none.
    tag_room: ClassVar[int] = 0
    # Thousands of these live at once: slots keep each small and quick to read.
    __slots__ = (
        "hub",
        "chat",
        "config",
        "output",
        "_out",
        "_journal",
        "_start",
        "_end",
        "_send",
        "phase",
        "user",
        "host",
        "_render",
        "framer",
        "gate",
        "sendq",
        "answers",
        "closing",
        "counts",
        "journal_key",
    )
    transport: IChatTransport  # set by makeConnection: TCP, or TLS over TCP

    # The door's bytes for a chat event, shared by every recipient: a door
    # sets it to a renderer that encodes each broadcast once (wire.render).
    render: Callable[[Event], bytes]

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
        # Which of the round's journals this connection's broadcast lines go
        # to: members sent the same bytes for an event share one (a door, or
        # one variant of a door's rendering). A slot the door keeps current,
        # not a method: it is read for every member of every round.
        self.journal_key = self.door
        self._start = self._end = 0
        # Plain TCP: the socket's send, for writing without the transport.
        self._send: Callable[[bytes], int] | None = None
        self.phase = Phase.AWAITING_NICK
        self.user: User | None = None
        self.host = "?"  # the peer's address, as --max-per-ip counts it
        self.framer = LineFramer()
        self.gate: FloodGate | None = None
        if self.config.flood_rate > 0:
            self.gate = FloodGate(
                TokenBucket(self.config.flood_burst, self.config.flood_rate, hub.clock),
                self.config.recvq,
                self,
            )
        self.sendq = SendQueue(self.config.sendq, self, hub.clock)
        self.answers = Answers()
        self.closing = Closing()
        # The renderer is read once per member of every broadcast. A slot is
        # the quickest attribute to read; self.render, a staticmethod found
        # through an instance that has a __dict__, is not specialised by
        # CPython and costs about 40 ns a member (bench/broadcast_cost.py).
        # deliver reads the slot into a local before calling it: a call of a
        # slot, self._render(event), is not specialised by CPython 3.11 either.
        # A door that changes its renderer calls use_renderer (IRC sets the
        # slot itself: a shorter renderer for clients without tags, whose
        # render stays the door's method).
        self._render = self.render
        # The door's counters (chatd.net.stats): a few additions per line or write.
        self.counts = hub.stats.door(self.door)

    # -- what a door provides ----------------------------------------------------

    def greet(self) -> None:
        """Say hello to a new connection (and ask for a nickname)."""

    def handle_text(self, text: str) -> None:
        """Handle one decoded line; raise ChatError to refuse it."""
        raise NotImplementedError

    def reply_error(self, error: ChatError) -> None:
        """Tell the client of a refusal, in the door's words."""
        raise NotImplementedError

    def report_failure(self) -> None:
        """Tell the client that its line failed inside the server (our bug)."""

    def goodbye(self, reason: str) -> bytes:
        """Return the door's last line before the server closes, with reason."""
        raise NotImplementedError

    def flood_notice(self) -> bytes:
        """Return the line telling the client that its lines now wait."""
        raise NotImplementedError

    def filter_input(self, data: bytes) -> bytes:
        """Take out of received bytes what is not lines (telnet commands, say)."""
        return data

    def is_registration_line(self, raw: bytes) -> bool:
        """Tell whether raw, sent before registering, is part of registering.

        Up to REGISTRATION_LINES of them pass without spending the flood
        budget (chatd.net.limits), so that a client's own handshake never trips it.
        """
        return False

    def recvq_reason(self) -> str:
        """Why a client whose held input passed --recvq is closed (door words)."""
        return f"Input queue full: more than {self.config.recvq} bytes waiting."

    def sendq_reason(self) -> str:
        """What the others hear of a client cut off for not reading."""
        return "send queue full (not reading)"

    @staticmethod
    def refusal(reason: str) -> bytes:
        """What a connection the server cannot take is told before it is closed."""
        raise NotImplementedError

    @staticmethod
    def ban_refusal(banned: ServerBanned, server: str) -> bytes:
        """What a connection a server ban refuses is told before it is closed
        (its address is banned: nothing it says is read)."""
        raise NotImplementedError

    def refuse_banned(self, banned: ServerBanned) -> None:
        """A server ban refuses this connection (at registration, a rename or
        identifying): say why in the door's words, then close."""
        self.reply_error(banned)
        self.close(banned.goodbye)

    # -- connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        self.hub.connection_made(self)
        self.counts.accepted += 1
        tune_socket(self.transport)
        transport = self.transport
        if isinstance(transport, tcp.Connection) and not transport.TLS:
            # Plain TCP: told each time the buffer empties (see SendQueue).
            self._send = transport.socket.send
            self.sendq.exact()
            transport.registerProducer(self.sendq, False)
        else:
            # TLS: paused once the buffer passes bufferSize, resumed when empty.
            self.sendq.buffer_size = getattr(transport, "bufferSize", 65536)
            transport.registerProducer(self.sendq, True)
        self.setTimeout(self.config.register_timeout)
        self.log.info("{peer} connected ({door})", peer=self.peer, door=self.door)
        self.greet()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.phase = Phase.CLOSING
        self._out = self._journal = None  # a flush still due finds nothing to send
        # A door's renderer may be a bound method of this connection (IRC's):
        # dropped, so that no cycle waits for the cycle collector.
        self._render = _render_nothing
        self.stop_limits()
        self.closing.cancel()
        self.hub.connection_lost(self)
        if self.closing.bye_reason is not None:
            why = self.closing.bye_reason
        elif reason.check(ConnectionDone):
            why = "connection closed"
        else:
            why = "connection lost"
        self.leave(why)
        self.log.info("{peer} disconnected: {why}", peer=self.peer, why=why)

    @property
    def peer(self) -> str:
        """host:port of the other end, for the log (worked out when logging)."""
        return peer_name(self.transport)

    @property
    def accounts(self) -> Accounts:
        """The server's accounts (chatd.model.accounts)."""
        return self.hub.accounts

    @property
    def awaiting_nick(self) -> bool:
        """Tell whether the connection has yet to choose a nickname."""
        return self.phase is Phase.AWAITING_NICK

    def registered(self, user: User) -> None:
        """The client is now user: lines are messages and commands from now on."""
        self.user = user
        self.phase = Phase.REGISTERED
        self.counts.registrations += 1
        self.setTimeout(self.config.idle_timeout or None)
        self.log.info("{peer} registered as {nick}", peer=self.peer, nick=user.nick)

    def welcomed(self) -> None:
        """The door has said its welcome: the accounts may speak now.

        A registered nickname taken without identifying gets its notice
        (and its clock) here, after the welcome, never before it.
        """
        if self.user is not None:
            self.hub.accounts.nick_taken(self.user)

    def registered_user(self) -> User:
        """Return this connection's user; commands past registration use it."""
        if self.user is None:  # cannot happen: the command tables guard it
            raise ChatError(ErrorCode.NOT_REGISTERED, "choose a nickname first")
        return self.user

    def rehash(self) -> ReloadReport:
        """Re-read the config file for this connection's user (REHASH, /rehash).

        The door asks the model first whether the user may
        (Chat.check_server_operator).
        """
        return self.hub.rehash(self.user.nick if self.user is not None else "?")

    def leave(self, reason: str, logged: str | None = None) -> None:
        """Take the user out of the chat; everyone sharing a room sees QUIT.

        logged replaces reason in the log where the reason is the user's own
        words (the log never holds what people write).
        """
        user, self.user = self.user, None
        if user is None:
            return
        # One of several connections just goes (chatd.model.devices).
        if self.chat.drop_connection(user, self, reason):
            self.log.info(
                "{nick} left: {reason}", nick=user.nick, reason=logged or reason
            )
        else:
            self.log.info(
                "{nick} closed a connection: {reason}",
                nick=user.nick,
                reason=logged or reason,
            )

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """Schedule TimeoutMixin's timers on the injected clock.

        Only TimeoutMixin calls this, so a timer that fires is a timeout:
        it is counted here, for every door (a door may say it its own way).
        """
        return self.hub.clock.callLater(period, self._timed_out, func)

    def _timed_out(self, func: Callable[[], object]) -> None:
        waiting = self.phase is Phase.AWAITING_NICK
        kind = "register-timeout" if waiting else "idle-timeout"
        self.hub.stats.limit_hit(self.door, kind)
        func()

    def stop_limits(self, keep_answers: bool = False) -> None:
        """Cancel timers and held input: nothing more will be handled.

        keep_answers: answers still to come are sent (close_after_answers).
        """
        if not keep_answers:
            self.answers.stop(self)  # nothing more is sent
        self.setTimeout(None)
        if self.gate is not None:
            self.gate.stop()
        self.sendq.close()

    def timeoutConnection(self) -> None:
        """Say why, then close: no nickname in time, or idle too long."""
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

    def close(self, reason: str, leave: bool = True) -> None:
        """Say goodbye with reason and close once it is written.

        The user leaves the chat now (unless leave is false: the caller
        does it), so the others see QUIT at once, whatever the peer does. A
        peer that does not let the connection close within the grace (a TLS
        handshake never finished, a full send buffer) is aborted then.
        After close_after_answers, the goodbye waits behind answers still
        to come (ANSWER_WAIT at most); otherwise they are left out.
        """
        self.closing.close(self, reason, leave)

    def close_after_answers(self, reason: str) -> None:
        """Close as close does, the goodbye after every answer still to come.

        For a client that asked to go (/quit, QUIT): what it asked before
        is answered first (a history read on the store's thread, a password
        check, a cluster's turn), as if it had waited for the answers.
        """
        self.answers.bye_after = True
        self.close(reason)

    def hang_up(self) -> None:
        """Close the transport once what was written is sent (a door may say more)."""
        self.transport.loseConnection()

    # -- limits ------------------------------------------------------------------

    def input_throttled(self) -> None:
        """Tell a client once per episode that its lines now wait."""
        self.hub.stats.limit_hit(self.door, "flood")
        self.log.warn("{peer} is flooding; throttling its input", peer=self.peer)
        self.send(self.flood_notice())

    def input_overflowed(self) -> None:
        """More than --recvq bytes held: say why, and close."""
        self.hub.stats.limit_hit(self.door, "recvq")
        self.log.warn(
            "{peer} overflowed its input queue ({limit} bytes)",
            peer=self.peer,
            limit=self.config.recvq,
        )
        self.close(self.recvq_reason())

    def send_queue_full(self) -> None:
        """The client stopped reading: cut it off without waiting for a flush."""
        self.hub.stats.limit_hit(self.door, "sendq")
        self.log.warn(
            "{peer} stopped reading; send queue over {limit} bytes",
            peer=self.peer,
            limit=self.config.sendq,
        )
        self.closing.abort(self, self.sendq_reason())

    # -- writing -----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one or more encoded lines, unless this connection is closing."""
        if self.phase is not Phase.CLOSING:
            self._write(data)

    def deliver(self, event: Event) -> None:
        """Write a chat event; the rendering is shared by every recipient."""
        # The hot path of every broadcast: each member takes the same bytes,
        # so most members only move the end of their run (see Journal).
        if self.phase is _CLOSING:
            return
        render = self._render
        data = render(event)
        journal = self._journal
        if journal is not None:  # waiting for a run of broadcast lines
            lines = journal.lines
            end = self._end
            if lines[-1] is data:  # a member before this one added the line
                if end == len(lines) - 1:
                    self._end = end + 1
                    return
            elif end == len(lines) and data:  # the first member to take it
                lines.append(data)
                self._end = end + 1
                return
        # Not the common case: tested here, not above, so that it costs the
        # members who only move the end of their run nothing (a journal never
        # holds b"", so lines[-1] is never b"").
        if not data:
            return  # an event this door has no words for (the line door: Away)
        if journal is not None:
            self.counts.events += 1  # a run's lines are counted when it is sent
            self._write(data)  # out of turn: to a list of its own
        elif self._out is not None:
            self.counts.events += 1
            self._out.append(data)
        elif self.output.collecting:  # the first line of this member's round
            output = self.output
            # OutputBatch.journal_for, without a call once the journal exists
            journal = output.journals.get(self.journal_key)
            if journal is None:
                journal = output.journal_for(self.journal_key)
            lines = journal.lines  # Journal.add, spelled out as above
            if not lines or lines[-1] is not data:
                lines.append(data)
            end = len(lines)
            self._start = end - 1
            self._end = end
            self._journal = journal
            if output.depth:  # OutputBatch.add within a batch, without a call
                output.pending.append(self)
            else:
                output.add(self)
        else:
            self.counts.events += 1
            self._transmit(data)

    def divert(self, into: list[bytes] | None) -> list[bytes] | None:
        """Collect this connection's output in into from now on; return the list before.

        A door that frames a command's replies (IRC labeled-response) diverts
        them to a list of its own, then diverts back to what this returned
        and sends the framed lines. The round's broadcast run so far stays
        in front, in the list returned.
        """
        journal = self._journal
        if journal is not None:
            self._journal = None
            self.counts.events += self._end - self._start
            self._out = journal.lines[self._start : self._end]
        before, self._out = self._out, into
        return before

    def use_renderer(
        self, render: Callable[[Event], bytes], journal_key: str | None = None
    ) -> None:
        """Render this connection's events with render from now on.

        journal_key names the journal its broadcast lines share with every
        member rendered the same way (the door's name if not given).
        """
        self.render = render
        self._render = render
        self.journal_key = journal_key or self.door

    def _write(self, data: bytes) -> None:
        """Collect data for the next flush, or write it now (see OutputBatch)."""
        journal = self._journal
        if journal is not None:  # the run so far goes first
            self._journal = None
            self.counts.events += self._end - self._start
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
            # A run's events are counted here, once per write, not per delivery.
            start, end = self._start, self._end
            self.counts.events += end - start
            # A run of one line (most: a line a round) is that line, no call.
            self._transmit(
                journal.lines[start] if end - start == 1 else journal.joined(start, end)
            )
            return
        out = self._out
        if out is not None and self.answers.holds is None:
            self._out = None  # an idle connection holds no list
            self._transmit(out[0] if len(out) == 1 else b"".join(out))

    # -- answers in bulk (chatd.net.bulk) ---------------------------------------------

    def charge_answer(self, lines: int) -> None:
        """Charge the flood budget for an answer of lines lines (chatd.net.bulk)."""
        bulk.charge_answer(self.gate, lines)

    def send_in_slices(self, lines: Iterator[bytes], fallback: bytes) -> None:
        """Send a long answer's lines, a slice per reactor turn (chatd.net.bulk)."""
        bulk.send_in_slices(self, self.hub.clock, lines, fallback)

    def still_answering(self) -> bool:
        """Tell whether answers still reach the client (closing after them counts)."""
        return self.phase is not _CLOSING or self.answers.bye_after

    # -- answers that come later (chatd.net.answers) -----------------------------

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come, in order with everything else.

        Until then, whatever this connection is sent later (broadcasts,
        replies) waits behind the answer, so the client sees the answer
        exactly where it asked and the lines that came meanwhile after it.
        An answer that fails, or has not come within ANSWER_WAIT seconds, is
        replaced by fallback (b"": nothing).
        """
        self.answers.send_later(self, answer, fallback)

    def _transmit(self, data: bytes) -> None:
        """Send data, or cut the client off if it would pass its send queue."""
        self.counts.bytes += len(data)
        sendq = self.sendq
        send = self._send
        if sendq.drained and send is not None:
            # Nothing waits in the transport, so the socket can take the bytes
            # now: one send() instead of a buffer, two epoll changes and a
            # write event later. What it does not take goes the usual way.
            # The socket's own send, not the transport's writeSomeData: two
            # Python calls and a memoryview less for every delivery.
            try:
                sent = send(data)
            except BlockingIOError:
                sent = 0
            except OSError as error:
                if error.errno != ENOBUFS:
                    self._send_failed()
                    return
                sent = 0
            if sent == len(data):
                return
            if sent > 0:
                data = data[sent:]
        if sendq.counting:  # these bytes will wait in the transport
            sendq.wrote(len(data))
            if self.phase is _CLOSING:
                return
        self.transport.write(data)

    def _send_failed(self) -> None:
        """A send() failed: the peer is gone (a reset)."""
        # The failed send took the socket's error with it, so the next read
        # would see a plain end of file and everyone would hear "connection
        # closed"; an abort reports the connection as lost.
        if self.answers.input_ended:
            # It ended its input, then went without reading: it is lost as if
            # it had closed, so what it sent still runs (a cluster node's held
            # lines); what is written is dropped.
            self.sendq.stopProducing()
            self.transport.abortConnection()
            return
        self.closing.abort(self, None)

    # -- reading -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Handle received bytes as one output batch (see OutputBatch)."""
        self.output.begin()
        try:
            self._receive(data)
        finally:
            self.output.end(self)

    def _receive(self, data: bytes) -> None:
        if self.phase is _CLOSING:
            return
        size = len(data)
        data = self.filter_input(data)
        gate = self.gate
        if gate is not None and gate.held is not None:
            gate.hold(data, size)  # throttled: kept unframed, counted raw
        else:
            self.frame(data)

    def release(self, data: bytes) -> None:
        """Frame input the flood gate held, now that the budget allows some."""
        self.output.begin()
        try:
            self.frame(data)
        finally:
            self.output.end(self)
        if self.answers.input_ended:
            self.answers.finish_input(self)  # the last of what the client sent, perhaps

    # -- the client's end of input (TCP half-close) ------------------------------

    def readConnectionLost(self) -> None:
        """The client will send nothing more (it half-closed, or closed).

        Lines the flood gate holds are still handled, at its rate, in order,
        as if the client had stayed (`printf 'alice\n...' | nc HOST PORT`
        with more lines than --flood-burst), and answers still to come (a
        history read, a password check, a cluster's turn) are sent; then the
        connection closes as one that closes does. With nothing held or
        awaited, it closes now.
        """
        self.answers.end_of_input(self)

    def awaiting_answers(self) -> bool:
        """Tell whether answers to what the client sent are still to come.

        A door whose lines may wait elsewhere (a cluster node's turns) says so too.
        """
        return self.answers.holds is not None

    def answers_settled(self) -> None:
        """Answers awaited have come: a goodbye or an end of input waiting goes on."""
        self.answers.settled(self)

    def writeConnectionLost(self) -> None:
        """The output side closed first: nothing more can reach the client."""
        self.closing.after_input(self)

    def transport_closed(self) -> None:
        """The transport is gone, though the connection lives on (a cluster
        node runs its held lines): there is no close left to enforce."""
        self.closing.cancel()

    def frame(self, data: bytes) -> None:
        """Split data into lines and handle each, as far as the budget allows."""
        self.framer.frame(self, data)

    def handle_line(self, raw: bytes) -> None:
        """Handle one framed line (no CR or LF); errors become replies only here."""
        if self.phase is _CLOSING:
            return
        try:
            self.handle_text(decode_line(raw))
        except ServerBanned as banned:
            self.refuse_banned(banned)
        except ChatError as error:
            self.reply_error(error)
        except Exception:
            self.log.failure("while handling a line from {peer}", peer=self.peer)
            self.report_failure()
