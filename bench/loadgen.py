"""The load generator: many non-blocking client sockets driven by one epoll loop.

Receivers that only need counts add up `bytes.count(b"\\n")` over what each recv()
returned; only sampled receivers look inside the lines, and they do it with one
regular expression over the whole chunk, so no Python code runs per line on the
hot path. Every wait is bounded by a deadline given by the caller.
"""

from __future__ import annotations

import errno
import re
import select
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable

NL = b"\n"
READ_SIZE = 1 << 18  # bytes per recv(): large, so a busy socket is read in one call
# A stamped message's text starts with ~<seq>~<perf_counter_ns at send>~<sender>~.
STAMP = re.compile(rb"~\d+~(\d+)~(\d+)~")

# What a connection does with the bytes it receives.
COUNT = 0  # count lines, nothing else
WAIT = 1  # look for a marker; then call on_marker and switch to next_mode
SAMPLE = 2  # count lines and record the latency of every stamped message

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERRS = select.EPOLLHUP | select.EPOLLERR
ERRORS_KEPT = 20  # the first few connection errors are kept for the report


class Dialect(ABC):
    """How a client speaks to one kind of server."""

    name: str
    echoes: bool  # does the sender receive its own room message?
    # Does the server take commands only once it has welcomed the client? Then
    # hello() only registers, and join() is sent when welcomed() arrives.
    joins_after_welcome: bool = False

    @abstractmethod
    def hello(self, nick: str, room: str, fast: bool = False) -> bytes:
        """Bytes sent right after connecting: register as nick and join room
        (unless joins_after_welcome)."""

    def welcomed(self, nick: str) -> bytes:
        """A byte string that nick receives once registered (joins_after_welcome)."""
        raise NotImplementedError(f"{self.name}: joins at once")

    def join(self, nick: str, room: str, fast: bool = False) -> bytes:
        """Bytes sent once welcomed: join room (joins_after_welcome)."""
        raise NotImplementedError(f"{self.name}: joins at once")

    @abstractmethod
    def joined(self, nick: str, room: str) -> bytes:
        """A byte string that nick receives once registered and in room."""

    @abstractmethod
    def say(self, room: str, text: str) -> bytes:
        """One line sending text to room (the client's current room)."""

    def ping(self, token: str) -> bytes:
        """A line the server answers to the sender alone, quoting token.

        Only needed where the sender is not echoed its own room message.
        """
        raise NotImplementedError(f"{self.name}: no ping")


class ChatdDialect(Dialect):
    """docs/protocol.md: the first line is the nickname; plain lines go to the room."""

    name = "chatd"
    echoes = True  # docs/protocol.md: MSG goes to every member, the sender included

    def hello(self, nick: str, room: str, fast: bool = False) -> bytes:
        join = "" if room.lower() == "#lobby" else f"/join {room}\n"
        return f"{nick}\n{join}".encode()

    def joined(self, nick: str, room: str) -> bytes:
        # The CR ends the nick, so b1 never matches b10's JOIN.
        return f"JOIN {room} {nick}\r".encode()

    def say(self, room: str, text: str) -> bytes:
        return f"{text}\n".encode()


class IrcDialect(Dialect):
    """RFC 2812 over plain TCP: NICK/USER, JOIN, PRIVMSG; no echo to the sender."""

    name = "irc"
    echoes = False
    OPER = ("bench", "bench")  # the [Operator] block written into ngircd.conf

    def __init__(self, oper: bool = True, joins_after_welcome: bool = False) -> None:
        # chatd has no IRC operators, and its flood control is off in the
        # benchmark: its fast sender needs no OPER (it would get 421). Neither
        # does InspIRCd's, whose connect class lifts every throttle.
        self.oper = oper
        # InspIRCd answers 451 to a JOIN before its welcome (bench/inspircd.py).
        self.joins_after_welcome = joins_after_welcome

    def hello(self, nick: str, room: str, fast: bool = False) -> bytes:
        text = f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"
        if self.joins_after_welcome:
            return text.encode()
        return text.encode() + self.join(nick, room, fast)

    def welcomed(self, nick: str) -> bytes:
        return f" 001 {nick} ".encode()  # RPL_WELCOME

    def join(self, nick: str, room: str, fast: bool = False) -> bytes:
        lines = []
        if fast and self.oper:
            # ngircd handles 3 commands per read from a plain user and 10 from a
            # user with mode +F ("relaxed flood protection", operators only).
            name, password = self.OPER
            lines += [f"OPER {name} {password}", f"MODE {nick} +F"]
        lines.append(f"JOIN {room}")
        return "".join(text + "\r\n" for text in lines).encode()

    def joined(self, nick: str, room: str) -> bytes:
        return f" 366 {nick} {room} :".encode()  # RPL_ENDOFNAMES ends the JOIN reply

    def say(self, room: str, text: str) -> bytes:
        return f"PRIVMSG {room} :{text}\r\n".encode()

    def ping(self, token: str) -> bytes:
        return f"PING :{token}\r\n".encode()  # PONG <server> :<token>


class Conn:
    """One client connection and what the loop knows about it."""

    __slots__ = (
        "index",
        "nick",
        "room",
        "sock",
        "fd",
        "mode",
        "next_mode",
        "lines",
        "tail",
        "marker",
        "on_marker",
        "out",
        "greeting",
        "connected",
        "closed",
        "own",
        "latencies",
    )

    def __init__(self, index: int, nick: str, room: str, sock: socket.socket) -> None:
        self.index = index
        self.nick = nick
        self.room = room
        self.sock = sock
        self.fd = sock.fileno()
        self.mode = WAIT
        self.next_mode = COUNT
        self.lines = 0  # complete lines received since the last reset
        self.tail = b""  # bytes after the last newline (WAIT and SAMPLE modes)
        self.marker = b""
        self.on_marker: Callable[[Conn], None] | None = None
        self.out = bytearray()  # bytes the kernel did not take yet
        self.greeting = b""
        self.connected = False
        self.closed: str | None = None  # why the connection ended, if it did
        self.own = str(index).encode()  # this client's sender field in stamps
        self.latencies: list[int] = []  # ns, in SAMPLE mode

    def expect(
        self,
        marker: bytes,
        on_marker: Callable[[Conn], None] | None = None,
        then: int = COUNT,
    ) -> None:
        """Watch for marker; on it call on_marker and switch to mode then.

        After the switch, lines counts the lines that followed the marker's own
        line (it is -1 while the marker's line has not ended yet).
        """
        self.mode, self.marker, self.on_marker, self.next_mode = (
            WAIT,
            marker,
            on_marker,
            then,
        )
        self.tail = b""


class LoadLoop:
    """Client connections to one server on 127.0.0.1, driven by one epoll."""

    def __init__(self, port: int, dialect: Dialect) -> None:
        self.address = ("127.0.0.1", port)  # loopback only, always
        self.dialect = dialect
        self.epoll = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.buffer = bytearray(READ_SIZE)
        self.opened = 0  # connections opened so far; the next one's index
        self.lost = 0  # connections that ended while we still wanted them
        self.errors: list[str] = []
        self.on_lost: Callable[[Conn], None] | None = None

    # -- connections ---------------------------------------------------------------

    def open(self, nick: str, room: str, greeting: bytes) -> Conn:
        """Start connecting a client; greeting is sent once the connection is up."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(self.opened, nick, room, sock)
        self.opened += 1
        conn.greeting = greeting
        self.conns[conn.fd] = conn
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            self._lose(conn, f"connect: {errno.errorcode.get(code, code)}")
            return conn
        self.epoll.register(conn.fd, _EPOLLIN | _EPOLLOUT)
        return conn

    def write(self, conn: Conn, data: bytes) -> None:
        """Send data now, keeping whatever the kernel does not take for later."""
        if conn.closed is not None:
            return
        if conn.out or not conn.connected:
            conn.out += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self._lose(conn, f"send: {error}")
            return
        if sent < len(data):
            conn.out += data[sent:]
            self.epoll.modify(conn.fd, _EPOLLIN | _EPOLLOUT)

    def close_all(self) -> None:
        """Close every client socket and the epoll."""
        for conn in self.conns.values():
            if conn.closed is None:
                conn.closed = "closed by the benchmark"
                conn.sock.close()
        self.conns.clear()
        self.epoll.close()

    def _lose(self, conn: Conn, why: str) -> None:
        if conn.closed is not None:
            return
        conn.closed = why
        self.lost += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(f"{conn.nick}: {why}")
        try:
            self.epoll.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()
        if self.on_lost is not None:
            self.on_lost(conn)

    def _writable(self, conn: Conn) -> None:
        if not conn.connected:
            code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._lose(conn, f"connect: {errno.errorcode.get(code, code)}")
                return
            conn.connected = True
            conn.out[:0] = conn.greeting
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                return
            except OSError as error:
                self._lose(conn, f"send: {error}")
                return
            del conn.out[:sent]
        if not conn.out:
            self.epoll.modify(conn.fd, _EPOLLIN)

    # -- the loop ---------------------------------------------------------------

    def poll(self, timeout: float) -> int:
        """Wait up to timeout seconds for events and handle them; return how many."""
        events = self.epoll.poll(timeout, max(64, len(self.conns)))
        conns, buffer, count = self.conns, self.buffer, self.buffer.count
        for fd, flags in events:
            conn = conns[fd]
            if flags & _EPOLLOUT:
                self._writable(conn)
                if conn.closed is not None:
                    continue
            if not flags & (_EPOLLIN | _EPOLLERRS):
                continue
            try:
                size = conn.sock.recv_into(buffer)
            except BlockingIOError:
                continue
            except OSError as error:
                self._lose(conn, f"recv: {error}")
                continue
            if size == 0:
                self._lose(conn, "closed by the server")
                continue
            mode = conn.mode
            if mode == COUNT:
                conn.lines += count(NL, 0, size)
            elif mode == SAMPLE:
                self._sample(conn, bytes(buffer[:size]))
            else:
                self._wait(conn, bytes(buffer[:size]))
        return len(events)

    @staticmethod
    def _sample(conn: Conn, data: bytes) -> None:
        now = time.perf_counter_ns()
        if conn.tail:
            data = conn.tail + data
        cut = data.rfind(NL) + 1
        whole, conn.tail = data[:cut], data[cut:]
        conn.lines += whole.count(NL)
        own, latencies = conn.own, conn.latencies
        for stamp, sender in STAMP.findall(whole):
            if sender != own:  # an echo of one's own line is not a delivery to time
                latencies.append(now - int(stamp))

    @staticmethod
    def _wait(conn: Conn, data: bytes) -> None:
        if conn.tail:
            data = conn.tail + data
        found = data.find(conn.marker)
        if found < 0:
            keep = len(conn.marker) - 1  # enough to find a marker split in two reads
            conn.tail = data[-keep:] if keep > 0 else b""
            return
        conn.lines = data.count(NL, found) - 1
        conn.mode = conn.next_mode
        end = data.rfind(NL) + 1
        conn.tail = data[end:] if conn.mode == SAMPLE and end > found else b""
        callback, conn.on_marker = conn.on_marker, None
        if callback is not None:
            callback(conn)

    def run_until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Poll until done() is true or time.monotonic() passes deadline."""
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.05))
        return True


class Registration:
    """Outcome of connecting and registering a batch of clients."""

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.done = 0
        self.failed = 0
        self.started = 0.0  # perf_counter() when the first connection was opened
        self.finished = 0.0  # perf_counter() when the last one registered
        self.stalled = ""  # why registration stopped early, if it did
        self.last_progress = time.monotonic()  # when the last client registered


def register(
    loop: LoadLoop,
    clients: Iterable[tuple[str, str, bool]],
    window: int,
    deadline: float,
    stall: float,
    then: int = COUNT,
    welcome_window: int | None = None,
) -> Registration:
    """Connect clients (nick, room, fast) and register them, window at a time.

    A client counts as registered when it has its own JOIN of room. Where the
    dialect joins after the welcome, up to welcome_window clients (default:
    window) are connected at once, waiting for their welcome or their turn, and
    window of them at a time have a JOIN unanswered: the same JOINs in flight as
    for any other server, while the server welcomes in batches. Gives up at
    deadline (time.monotonic()) or when no client registered for stall seconds.
    """
    registrar = _Registrar(loop, window, welcome_window or window, then)
    return registrar.run(list(clients), deadline, stall)


class _Registrar:
    """The state of one register() call."""

    def __init__(
        self, loop: LoadLoop, window: int, welcome_window: int, then: int
    ) -> None:
        self.loop = loop
        self.dialect = loop.dialect
        self.window = window  # JOINs unanswered at once
        self.then = then
        # Clients connected and not registered yet, at most.
        self.in_flight = welcome_window if self.dialect.joins_after_welcome else window
        self.result = Registration()
        self.welcomed: deque[Conn] = deque()  # waiting for their turn to JOIN
        self.joining: set[int] = set()  # Conn.index of those that sent it
        self.fast: set[int] = set()  # Conn.index of the fast ones

    def run(
        self, pending: list[tuple[str, str, bool]], deadline: float, stall: float
    ) -> Registration:
        result = self.result
        pending.reverse()
        self.loop.on_lost = self.lost
        result.started = time.perf_counter()
        try:
            while pending or result.done + result.failed < len(result.conns):
                busy = len(result.conns) - result.done - result.failed
                while pending and busy < self.in_flight:
                    self.open(*pending.pop())
                    busy += 1
                now = time.monotonic()
                if now > deadline:
                    result.stalled = "time limit reached"
                    break
                if now - result.last_progress > stall:
                    result.stalled = f"no registration for {stall:.0f} s"
                    break
                self.loop.poll(0.05)
        finally:
            self.loop.on_lost = None
        return result

    def open(self, nick: str, room: str, fast: bool) -> None:
        dialect = self.dialect
        conn = self.loop.open(nick, room, dialect.hello(nick, room, fast))
        if dialect.joins_after_welcome:
            conn.expect(dialect.welcomed(nick), self.on_welcome)
            if fast:
                self.fast.add(conn.index)
        else:
            conn.expect(dialect.joined(nick, room), self.registered, self.then)
        self.result.conns.append(conn)
        if conn.closed is not None:  # refused at once
            self.result.failed += 1

    def on_welcome(self, conn: Conn) -> None:
        # From now on it waits for its JOIN's answer, so that a loss counts.
        conn.expect(
            self.dialect.joined(conn.nick, conn.room), self.registered, self.then
        )
        self.welcomed.append(conn)
        self.send_joins()

    def send_joins(self) -> None:
        while self.welcomed and len(self.joining) < self.window:
            conn = self.welcomed.popleft()
            if conn.closed is None:
                self.joining.add(conn.index)
                fast = conn.index in self.fast
                self.loop.write(conn, self.dialect.join(conn.nick, conn.room, fast))

    def registered(self, conn: Conn) -> None:
        result = self.result
        result.done += 1
        result.finished = time.perf_counter()
        result.last_progress = time.monotonic()
        if conn.index in self.joining:
            self.joining.discard(conn.index)
            self.send_joins()

    def lost(self, conn: Conn) -> None:
        # Lost before it registered: still waiting for its welcome or its JOIN.
        if conn.on_marker is not None:
            self.result.failed += 1
        self.joining.discard(conn.index)


def barrier(
    loop: LoadLoop,
    groups: Iterable[tuple[Conn, list[Conn]]],
    token: str,
    deadline: float,
    then: int = COUNT,
) -> float | None:
    """Have each speaker say token in its room; wait until every listener has it.

    A server writes a connection's lines in order, so once a listener has the
    token it has everything sent to it before (JOIN notices and the like), and
    its line count starts from zero after it. The speaker is a listener too when
    the server echoes; when it does not, the speaker PINGs with the token and
    waits for its PONG instead, since a JOIN notice may still be on its way to
    it. Returns perf_counter() when the last listener got the token, or None at
    the deadline.
    """
    marker = token.encode()
    waiting = 0
    last = 0.0

    def arrived(conn: Conn) -> None:
        nonlocal waiting, last
        waiting -= 1
        last = time.perf_counter()

    speakers = []
    for speaker, listeners in groups:
        for conn in listeners:
            if conn.closed is None:
                conn.expect(marker, arrived, then)
                waiting += 1
        pings = not loop.dialect.echoes and speaker in listeners
        speakers.append((speaker, pings))
    for speaker, pings in speakers:
        if pings:  # the PONG quotes the token, as an echo would
            loop.write(speaker, loop.dialect.ping(token))
        loop.write(speaker, loop.dialect.say(speaker.room, token))
    if not loop.run_until(lambda: waiting <= 0, deadline):
        return None
    return last
