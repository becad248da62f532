"""Property: whatever is said and asked, /history answers exactly what was kept.

Through the line door, the real SQLite store and its writer thread (the
thread's answers come back through a Mailbox, so every step is the test's),
with restarts of the store in between: any sequence of messages, actions,
waits, restarts and /history requests gives, for each request, the room's
messages in the order they were said, with the ids and times they were
given, cut where the count and `before` say.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from helpers import Mailbox, RecordingClient, connect, lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import parse_server_line, utc_time
from chatd.model.chat import Action, Message
from chatd.protocol import LineConnection
from chatd.store.interface import millis
from chatd.store.writer import SQLiteHistory

ROOMS = ("#a", "#b")
NICKS = ("alice", "bob")
SAFE = "abcxyz XYZ019éß字_-"  # no controls, no separators: kept as typed

texts = st.text(alphabet=SAFE, min_size=0, max_size=20).map(lambda t: "t" + t)
say = st.tuples(st.just("say"), st.sampled_from(NICKS), st.sampled_from(ROOMS), texts)
act = st.tuples(st.just("act"), st.sampled_from(NICKS), st.sampled_from(ROOMS), texts)
wait = st.tuples(st.just("wait"), st.floats(min_value=0, max_value=3))
restart = st.tuples(st.just("restart"))
ask = st.tuples(
    st.just("history"),
    st.sampled_from(NICKS),
    st.sampled_from(ROOMS),
    st.one_of(st.none(), st.integers(min_value=1, max_value=120)),
    # before: None, an index into the room's kept messages, or a foreign id
    st.one_of(st.none(), st.integers(min_value=0, max_value=40), st.just(-1)),
)
steps = st.lists(st.one_of(say, act, wait, restart, ask), max_size=40)

Kept = tuple[str, str, str, str, str]  # id, time, kind, nick, text


@dataclass
class World:
    """A daemon's insides on one database file, restartable."""

    path: str
    clock: Clock = field(default_factory=Clock)
    mailbox: Mailbox = field(default_factory=Mailbox)
    kept: dict[str, list[Kept]] = field(default_factory=lambda: {r: [] for r in ROOMS})
    history: SQLiteHistory | None = None
    watcher: RecordingClient = field(default_factory=RecordingClient)
    clients: dict[str, tuple[LineConnection, StringTransport]] = field(
        default_factory=dict
    )

    def start(self) -> None:
        self.history = SQLiteHistory(self.path, self.clock, self.mailbox, keep_days=0)
        self.history.open()
        config = ServerConfig(flood_rate=0.0)
        factory = ChatFactory(config, self.clock, self.history)
        watcher = factory.chat.register("watcher", self.watcher)
        for room in ROOMS:
            factory.chat.join(watcher, room)
        self.clients = {nick: connect(factory, nick) for nick in NICKS}
        for proto, _ in self.clients.values():
            for room in ROOMS:
                proto.dataReceived(f"/join {room}\r\n".encode())
        self.settle_all()

    def stop(self) -> None:
        if self.history is not None:
            stopped = self.history.close()
            self.mailbox.run_until(lambda: stopped.called)
            self.history = None

    def settle(self, nick: str) -> list[str]:
        """Everything nick's connection has been sent, held answers included."""
        proto, out = self.clients[nick]
        proto.dataReceived(b"/zzsync\r\n")
        while b"ERR unknown-command" not in out.value():
            self.mailbox.run_one()
        received = lines(out)
        return received[: next(i for i, t in enumerate(received) if "zzsync" in t)]

    def settle_all(self) -> None:
        for nick in NICKS:
            self.settle(nick)

    def speak(self, kind: str, nick: str, room: str, text: str) -> None:
        proto, _ = self.clients[nick]
        proto.dataReceived(f"/join {room}\r\n".encode())
        line = text if kind == "say" else f"/me {text}"
        proto.dataReceived(line.encode() + b"\r\n")
        event = self.watcher.events[-1]
        assert isinstance(event, Message | Action) and event.text == text
        self.kept[room].append(
            (
                str(event.id),
                utc_time(millis(event.time)),
                "MSG" if kind == "say" else "ACTION",
                nick,
                text,
            )
        )
        self.settle_all()

    def ask(self, nick: str, room: str, count: int | None, before: int | None) -> None:
        kept = self.kept[room]
        command = f"/history {room}" + (f" {count}" if count is not None else "")
        end = len(kept)
        foreign = False
        if before is not None:
            if 0 <= before < len(kept):
                end = before
                command += f" before {kept[before][0]}"
            else:
                foreign = True
                other = self.kept[ROOMS[1] if room == ROOMS[0] else ROOMS[0]]
                command += f" before {other[0][0] if other else 12345}"
        proto, _ = self.clients[nick]
        proto.dataReceived(command.encode() + b"\r\n")
        received = self.settle(nick)
        if foreign:
            assert len(received) == 1 and received[0].startswith("ERR bad-args ")
            return
        wanted = min(count or 20, 100)
        expected = kept[max(0, end - wanted) : end]
        got = []
        for text in received[:-1]:
            parsed = parse_server_line(text)
            assert parsed.verb == "HISTORY" and parsed.words[0] == room, text
            got.append((*parsed.words[1:], parsed.text))
        assert got == expected
        assert received[-1] == f"ENDHISTORY {room} {len(expected)}"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps)
def test_history_returns_exactly_what_was_said_in_order(
    program: list[tuple[object, ...]],
) -> None:
    """Any mix of messages, actions, waits, restarts and /history requests:
    each answer is the room's kept messages, in order, with their ids and times."""
    with tempfile.TemporaryDirectory(prefix="chatd-property-") as directory:
        world = World(str(Path(directory) / "chatd.sqlite3"))
        world.clock.advance(1_796_082_601.123)
        world.start()
        try:
            for step in program:
                match step:
                    case ("say" | "act", str(nick), str(room), str(text)):
                        world.speak(str(step[0]), nick, room, text)
                    case ("wait", float(seconds)):
                        world.clock.advance(seconds)
                    case ("restart",):
                        world.stop()
                        world.watcher = RecordingClient()
                        world.start()
                    case ("history", str(nick), str(room), count, before):
                        assert count is None or isinstance(count, int)
                        assert before is None or isinstance(before, int)
                        world.ask(nick, room, count, before)
            for nick in NICKS:  # and at the end, everything, from every side
                for room in ROOMS:
                    world.ask(nick, room, 100, None)
        finally:
            world.stop()
