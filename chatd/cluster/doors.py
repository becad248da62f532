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
inside the labeled response, which IrcProtocol frames under the label.

cluster_door(door, node) makes the cluster's subclass of a door's
connection class; the factory builds those instead (ChatFactory.door_classes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from chatd.doors import Door, Kind
from chatd.model.errors import ChatError, ErrorCode

if TYPE_CHECKING:
    from chatd.cluster.node import Node
    from chatd.net.connection import Connection, ConnectionHub


class ClusterLines:
    """Mixed in before a door's class: lines that change shared state wait a turn."""

    node: ClassVar[Node]
    declared: ClassVar[Door]  # the door's declaration: the kind of each line
    uid: str
    held: deque[bytes]
    asked: bool
    running: bool
    lost: Failure | None
    echoes: dict[str, Deferred[bytes]]

    def __init__(self, hub: ConnectionHub) -> None:
        super().__init__(hub)  # type: ignore[call-arg]
        self.uid = self.node.new_uid()
        self.held = deque()
        # A turn asked for and not yet come; and whether the one running was ours
        # (a turn request sent again after Redis came back may come twice).
        self.asked = False
        self.running = False
        self.lost = None  # lost with lines held: it ends once they have run
        self.echoes: dict[str, Deferred[bytes]] = {}  # labeled talk awaiting echo
        self._echo_count = 0
        self.node.add_local(self)  # type: ignore[arg-type]

    def _connection(self) -> Connection:
        return self  # type: ignore[return-value]

    def handle_line(self, raw: bytes) -> None:
        """Handle raw at once, or hold it (and ask for a turn) if it must wait."""
        if self.held:
            self.held.append(raw)
            return
        self._take(raw)

    def _take(self, raw: bytes) -> bool:
        """Handle raw now, or hold it for a turn; True if it waits."""
        connection = self._connection()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            super().handle_line(raw)  # type: ignore[misc]  # the door refuses it
            return False
        kind = type(self).declared.kind_of(text, not connection.awaiting_nick)
        if kind is not Kind.CHANGE:
            super().handle_line(raw)  # type: ignore[misc]
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
        self.node.request_turn(self)  # type: ignore[arg-type]
        return True

    def run_turn(self) -> None:
        """The turn of the oldest held line came: the door handles it now."""
        self.running, self.asked = self.asked and bool(self.held), False
        if self.running:
            connection = self._connection()
            output = connection.output
            output.begin()
            try:
                super().handle_line(self.held[0])  # type: ignore[misc]
            finally:
                output.end(connection)

    def turn_done(self) -> None:
        """Handle the lines held behind the turn, up to the next that waits."""
        from chatd.net.connection import Phase

        if not self.running:
            return  # a turn asked twice: the line ran at the first
        self.running = False
        held = self.held
        if held:
            held.popleft()
        connection = self._connection()
        if connection.phase is Phase.CLOSING:
            held.clear()  # lines after a goodbye (QUIT, /quit) are not run
        output = connection.output
        output.begin()
        try:
            while held:
                raw = held.popleft()
                if self._take(raw):
                    return
        finally:
            output.end(connection)
        if self.lost is not None:  # the last held line has run: now it ends
            self._finish_lost(self.lost)
            return
        connection.answers_settled()  # a goodbye or an end of input may wait

    def awaiting_answers(self) -> bool:
        """Lines waiting for their turn are answers still to come, too."""
        return bool(self.held) or super().awaiting_answers()  # type: ignore[misc]

    def await_echo(self) -> str | None:
        """Talk is being published: a token if its echo answers a labeled command."""
        labeling = getattr(self, "_labeling", None)
        caps = getattr(self, "caps", None)
        if labeling is None or caps is None or not caps.has("echo-message"):
            return None
        self._echo_count += 1
        token = str(self._echo_count)
        answer: Deferred[bytes] = Deferred()
        self.echoes[token] = answer
        self._connection().send_later(answer, b"")  # within the labeled response
        return token

    def echo_applied(self, token: str, run: Callable[[], object]) -> None:
        """The talk entry of token is applied by run: what we are sent is the echo."""
        from chatd.net.connection import Phase

        answer = self.echoes.pop(token, None)
        if answer is None:
            run()
            return
        connection = self._connection()
        mine: list[bytes] = []
        before = connection.divert(mine)
        try:
            run()
        finally:
            if connection.phase is not Phase.CLOSING:
                connection.divert(before)
            answer.callback(b"".join(mine))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        from chatd.net.connection import Phase

        if (
            self.held
            and self.asked
            and self.node.chat.up
            and self._connection().phase is not Phase.CLOSING
        ):
            # Lines wait for a turn (the client half-closed right after them):
            # they run first, as they would have in one process.
            self.lost = reason
            self._connection().transport_closed()
            return
        self._finish_lost(reason)

    def _finish_lost(self, reason: Failure) -> None:
        self.held.clear()
        self.lost = None
        super().connectionLost(reason)  # type: ignore[misc]
        self.node.remove_local(self)  # type: ignore[arg-type]


def cluster_door(door: Door, node: Node) -> type[Connection]:
    """The cluster's subclass of door's connection class, bound to node."""
    connection = door.connection
    namespace = {"node": node, "declared": door, "__module__": __name__}
    return type(f"Cluster{connection.__name__}", (ClusterLines, connection), namespace)
