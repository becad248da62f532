"""What a door's connection does differently in a cluster: lines wait for their turn.

A line that may change shared state (a nickname, a join, a mode...) is not
handled when it arrives: the connection asks the log for a turn and holds
it, and every line after it, until the turn comes up (chatd.cluster.node).
Then the door's own handler runs it, exactly as in one process, at its place
in the cluster's order. Lines that only read (WHO, /rooms, PING) and talk
(checked at once, delivered from the log) are handled at once, unless
something is held before them: each line's kind is the door's declaration's
(chatd.doors, Door.kind_of), not this module's.

A client that sends its lines and half-closes at once (`printf 'alice\nhello\n/quit\n'
| nc -N HOST PORT`) still has every line run, in order, and gets every reply, as
in one process: lines waiting for a turn are answers still to come
(awaiting_answers), so the end of input and the goodbye of /quit wait for them
(Connection.answers_settled). A connection lost (closed both ways) with lines
held stays among the node's connections until they have run (their replies go
nowhere), then the user leaves.

A labeled IRC command (labeled-response) that talks, on a client with
echo-message, waits for its echo as one process's would have it at once:
the talk entry carries a token (await_echo), and when the node applies it
(echo_applied) what the speaker is sent is the answer of a send_later
inside the labeled response, which IrcConnection frames under the label.

cluster_door(door, node) makes the cluster's class of a door's connection:
the door's own class, with its line handling, answers and end handed to a
ClusterLines part (no mixin); the factory builds those instead
(ChatFactory.door_classes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from chatd.doors import CommandKind, Door
from chatd.model.errors import ChatError, ErrorCode
from chatd.net.phase import Phase

if TYPE_CHECKING:
    from chatd.cluster.node import Local, Node
    from chatd.net.connection import Connection, ConnectionHub


class ClusterLines:
    """A connection's lines in the cluster's order: those that change shared
    state wait for a turn, and the lines after them wait behind them.

    A part of the connection (its turns slot), given the connection on every
    call; door_handle_line and door_connection_lost are the door's own, which
    run a line and end the connection.
    """

    __slots__ = (
        "node",
        "declared",
        "door_handle_line",
        "door_connection_lost",
        "uid",
        "held",
        "asked",
        "running",
        "lost",
        "echoes",
        "echo_count",
    )

    def __init__(
        self,
        node: Node,
        declared: Door,
        door_handle_line: Callable[[Connection, bytes], None],
        door_connection_lost: Callable[[Connection, Failure], None],
    ) -> None:
        self.node = node
        self.declared = declared  # the door's declaration: the kind of each line
        self.door_handle_line = door_handle_line
        self.door_connection_lost = door_connection_lost
        self.uid = node.new_uid()
        self.held: deque[bytes] = deque()
        # A turn asked for and not yet come; and whether the one running was ours
        # (a turn request sent again after Redis came back may come twice).
        self.asked = False
        self.running = False
        self.lost: Failure | None = None  # lost with lines held: ends once run
        self.echoes: dict[str, Deferred[bytes]] = {}  # labeled talk awaiting echo
        self.echo_count = 0

    def handle_line(self, connection: Connection, raw: bytes) -> None:
        """Handle raw at once, or hold it (and ask for a turn) if it must wait."""
        if self.held:
            self.held.append(raw)
            return
        self._take(connection, raw)

    def _take(self, connection: Connection, raw: bytes) -> bool:
        """Handle raw now, or hold it for a turn; True if it waits."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.door_handle_line(connection, raw)  # the door refuses it
            return False
        kind = self.declared.kind_of(text, not connection.awaiting_nick)
        if kind is not CommandKind.CHANGE:
            self.door_handle_line(connection, raw)
            return False
        if not self.node.chat.up:
            connection.reply_error(
                ChatError(
                    ErrorCode.CLUSTER_DOWN,
                    "the cluster is unreachable (Redis is down); this node "
                    "reconnects by itself, try again in a moment",
                )
            )
            return False
        self.held.appendleft(raw)
        self.asked = True
        self.node.request_turn(cast("Local", connection))
        return True

    def run_turn(self, connection: Connection) -> None:
        """The turn of the oldest held line came: the door handles it now."""
        self.running, self.asked = self.asked and bool(self.held), False
        if self.running:
            output = connection.output
            output.begin()
            try:
                self.door_handle_line(connection, self.held[0])
            finally:
                output.end(connection)

    def turn_done(self, connection: Connection) -> None:
        """Handle the lines held behind the turn, up to the next that waits."""
        if not self.running:
            return  # a turn asked twice: the line ran at the first
        self.running = False
        held = self.held
        if held:
            held.popleft()
        if connection.phase is Phase.CLOSING:
            held.clear()  # lines after a goodbye (QUIT, /quit) are not run
        output = connection.output
        output.begin()
        try:
            while held:
                raw = held.popleft()
                if self._take(connection, raw):
                    return
        finally:
            output.end(connection)
        if self.lost is not None:  # the last held line has run: now it ends
            self.finish_lost(connection, self.lost)
            return
        connection.answers_settled()  # a goodbye or an end of input may wait

    def await_echo(self, connection: Connection) -> str | None:
        """Talk is being published: a token if its echo answers a labeled command."""
        labeling = getattr(connection, "_labeling", None)
        caps = getattr(connection, "caps", None)
        if labeling is None or caps is None or not caps.has("echo-message"):
            return None
        self.echo_count += 1
        token = str(self.echo_count)
        answer: Deferred[bytes] = Deferred()
        self.echoes[token] = answer
        connection.send_later(answer, b"")  # within the labeled response
        return token

    def echo_applied(
        self, connection: Connection, token: str, run: Callable[[], object]
    ) -> None:
        """The talk entry of token is applied by run: what we are sent is the echo."""
        answer = self.echoes.pop(token, None)
        if answer is None:
            run()
            return
        mine: list[bytes] = []
        before = connection.divert(mine)
        try:
            run()
        finally:
            if connection.phase is not Phase.CLOSING:
                connection.divert(before)
            answer.callback(b"".join(mine))

    def keeps_lost(self, connection: Connection, reason: Failure) -> bool:
        """Keep a lost connection until its held lines have run (True if kept)."""
        if (
            self.held
            and self.asked
            and self.node.chat.up
            and connection.phase is not Phase.CLOSING
        ):
            # Lines wait for a turn (the client half-closed right after them):
            # they run first, as they would have in one process.
            self.lost = reason
            connection.transport_closed()
            return True
        return False

    def finish_lost(self, connection: Connection, reason: Failure) -> None:
        """The connection ends: the door's connectionLost, then the node forgets it."""
        self.held.clear()
        self.lost = None
        self.door_connection_lost(connection, reason)
        self.node.remove_local(cast("Local", connection))


def cluster_door(declared: Door, node: Node) -> type[Connection]:
    """The cluster's connection class of a door: the door, with a ClusterLines part.

    No mixin: the door's own class, whose line handling, answers still to
    come and end are handed to the connection's ClusterLines (turns).
    """
    door = declared.connection

    class ClusterConnection(door):  # type: ignore[valid-type,misc]
        """A door's connection on a cluster node: its lines wait for turns."""

        turns: ClusterLines

        def __init__(self, hub: ConnectionHub) -> None:
            super().__init__(hub)
            self.turns = ClusterLines(
                node, declared, door.handle_line, door.connectionLost
            )
            node.add_local(self)

        def handle_line(self, raw: bytes) -> None:
            """Handle raw at once, or hold it for its turn (ClusterLines)."""
            self.turns.handle_line(self, raw)

        def awaiting_answers(self) -> bool:
            """Lines waiting for their turn are answers still to come, too."""
            return bool(self.turns.held) or super().awaiting_answers()

        def connectionLost(self, reason: Failure = connectionDone) -> None:
            if not self.turns.keeps_lost(self, reason):
                self.turns.finish_lost(self, reason)

        # What the node asks of its connections (chatd.cluster.node.Local),
        # and the replica of a talking client (await_echo): the part answers.

        @property
        def uid(self) -> str:
            return self.turns.uid

        @uid.setter
        def uid(self, uid: str) -> None:
            self.turns.uid = uid

        @property
        def held(self) -> deque[bytes]:
            return self.turns.held

        def run_turn(self) -> None:
            self.turns.run_turn(self)

        def turn_done(self) -> None:
            self.turns.turn_done(self)

        def await_echo(self) -> str | None:
            return self.turns.await_echo(self)

        def echo_applied(self, token: str, run: Callable[[], object]) -> None:
            self.turns.echo_applied(self, token, run)

    ClusterConnection.node = node
    ClusterConnection.__name__ = ClusterConnection.__qualname__ = (
        f"Cluster{door.__name__}"
    )
    return cast("type[Connection]", ClusterConnection)
