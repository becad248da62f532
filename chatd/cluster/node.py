"""Node: applies the cluster's one log, in order, to this node's replica.

The log (a Redis stream, chatd.cluster.redis; a list in the tests) holds
entries whose ids ("<ms>-<seq>") give one total order. Each entry is JSON,
read here into its typed entry (chatd.cluster.entries):

- say, act, tell (Talk, Tell): talk, checked by the speaker's node before it published
  it; every node delivers it to its own users when read;
- turn (Turn): a line of one of node n's connections (uid u) that may change
  shared state. Node n runs it when it reads the entry, recording the
  changes (ClusterChat.record), and publishes them as fx; every other node
  stalls at the turn until its fx has come, applies the ops there, then
  goes on with what followed;
- fx (Effects): a turn's ops (turn: the turn entry's id); not a place in the order;
- op (Changes): changes made outside a turn (a connection dropped), applied by every
  node, its own included, where read;
- hello, left, lost (Hello, Left, Lost): a node joins, leaves cleanly, or
  is declared dead (its users quit with "node lost"); a node's turns
  without fx are dropped once it is gone;
- close (Close): ask node to close one of its connections (a /kill from elsewhere).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from chatd.cluster.entries import READERS as READ_ENTRY
from chatd.cluster.entries import (
    Changes,
    Close,
    Effects,
    Entry,
    Hello,
    Left,
    Lost,
    Tag,
    Talk,
    Tell,
    Turn,
)
from chatd.cluster.replica import (
    ClusterChat,
    Op,
    Publisher,
    RemoteClient,
    Wire,
    home_of,
)
from chatd.model.chat import Joined, Renamed, Room, User
from chatd.model.devices import carry_devices
from chatd.model.errors import ChatError
from chatd.model.events import ModesChanged, Notice
from chatd.model.names import fold, guest_name
from chatd.model.room_rules import Change
from chatd.model.server_bans import ServerBanned
from chatd.net.output import OutputBatch

LOST_REASON = "node lost"
LEFT_REASON = "node left"
SPLIT_REASON = "cluster link lost"


class Local(Protocol):
    """What the node needs of one of its own connections (chatd.cluster.doors)."""

    uid: str
    user: User | None

    def run_turn(self) -> None:
        """Handle the line whose turn came (the oldest held one)."""

    def turn_done(self) -> None:
        """The turn is over: handle the lines held behind it."""

    def close(self, reason: str) -> None:
        """Say goodbye and close."""

    def echo_applied(self, token: str, run: Callable[[], object]) -> None:
        """run applies this connection's talk whose echo answers token."""


def split_id(entry_id: str) -> tuple[int, int]:
    """The (milliseconds, sequence) of a stream id "<ms>-<seq>"."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Node(Publisher):
    """One node of the cluster: its replica, its connections, its place in the log."""

    log = Logger()

    def __init__(
        self,
        chat: ClusterChat,
        node_id: str,
        send: Callable[[Entry], object],
        output: OutputBatch | None = None,
    ) -> None:
        self.chat = chat
        self.node_id = node_id
        self.send = send  # appends an entry to the log (the bus)
        self.output = output
        chat.publisher = self
        chat.node_id = node_id
        chat.node_live = self.is_live
        chat.live_nodes = self.live_nodes
        chat.new_uid = self.new_uid
        chat.run_in_turn = self.in_turn
        self.locals: dict[str, Local] = {}
        self.queue: deque[tuple[str, Entry]] = deque()
        self.effects: dict[str, tuple[Op, ...]] = {}
        self.nodes: dict[str, None] = {}  # known live nodes, in the order they came
        self.gone: set[str] = set()  # lost or left: their turns need no fx
        self.last_id = "0-0"  # the last entry read
        self._counter = 0
        # Called when another node says hello (the bus answers with a snapshot).
        self.on_hello: Callable[[str, str], None] = lambda node, entry_id: None
        # Called when this node is declared lost by the others (it must rejoin).
        self.on_lost_self: Callable[[], None] = lambda: None
        # Turns of this node that run something other than a line (a rejoin).
        self.specials: dict[str, Callable[[], None]] = {}

    def is_live(self, node: str) -> bool:
        """Whether node is this one or a live node this one knows."""
        return node == self.node_id or (node in self.nodes and node not in self.gone)

    def live_nodes(self) -> list[str]:
        """This node and the live nodes it knows."""
        return [self.node_id, *(n for n in self.nodes if n not in self.gone)]

    def in_turn(self, run: Callable[[], None]) -> None:
        """Run run in a turn of this node's own: its changes are replicated."""
        self._counter += 1
        token = f"*special/{self.node_id}/{self._counter}"
        self.specials[token] = run
        self.publish(Turn(self.node_id, token))

    def restore_in_turn(self, restore: Callable[[], object]) -> None:
        """Bring kept always-on users back (restore) in a turn of our own."""
        self.in_turn(lambda: self.chat.bring_back(restore))

    # -- this node's connections -------------------------------------------------

    def new_uid(self) -> str:
        """A uid for a new connection of this node."""
        self._counter += 1
        return f"{self.node_id}/{self._counter}"

    def add_local(self, connection: Local) -> None:
        self.locals[connection.uid] = connection

    def remove_local(self, connection: Local) -> None:
        if self.locals.get(connection.uid) is connection:
            del self.locals[connection.uid]

    def request_turn(self, connection: Local) -> None:
        """connection has a line that may change shared state: ask for its turn."""
        self.publish(Turn(self.node_id, connection.uid))

    def publish(self, entry: Entry) -> None:
        """Append entry to the log (Publisher)."""
        self.send(entry)

    def notify_all(self, text: str) -> None:
        """Tell every local user something about the cluster (INFO, IRC NOTICE)."""
        for local in list(self.locals.values()):
            user = local.user
            if user is not None:
                user.deliver(Notice(user.nick, text))

    # -- reading the log ---------------------------------------------------------

    def receive(self, entries: list[tuple[str, dict[str, Wire]]]) -> None:
        """Take entries read from the log (JSON, in order) and apply what can be."""
        output = self.output
        if output is not None:
            output.begin()
        chat = self.chat
        queue = self.queue
        try:
            for entry_id, data in entries:
                self.last_id = entry_id
                kind = data.get("k")
                if (
                    (kind == "say" or kind == "act")
                    and not queue
                    and "w" not in data
                    and "g" not in data  # a reply's tags: read as a Talk below
                ):
                    # The hot path: talk with nothing waiting ahead of it, applied
                    # now from its JSON (Talk's fields; entries.py), no Talk made.
                    ms, seq = split_id(entry_id)
                    chat.log_time = ms / 1000
                    try:
                        chat.apply_talk(
                            data["u"],
                            data["r"],
                            data["t"],
                            kind == "act",
                            "x" in data,
                            ms,
                            seq,
                        )
                    except Exception:
                        self.log.failure("applying cluster entry Talk failed")
                    continue
                # entry_from_json, without its call: once per entry, every node.
                read = READ_ENTRY.get(kind)
                if read is None:  # a newer node's kind: docs/cluster.md, Upgrades
                    self.log.warn("unknown cluster entry {kind}", kind=kind)
                    continue
                entry = read(data)
                if type(entry) is Effects:
                    if entry.node != self.node_id and self._waits_for(entry.turn):
                        self.effects[entry.turn] = entry.ops
                    continue
                if type(entry) is Lost or type(entry) is Left:
                    self.gone.add(entry.node)  # its turns without fx are dropped
                elif type(entry) is Hello and entry.node != self.node_id:
                    self._forget_turns(entry.node)
                queue.append((entry_id, entry))
            self._drain()
        finally:
            if output is not None:
                # A read of the log is a round already: written at once,
                # not a reactor turn later (no timed flush).
                output.end_now()

    def _waits_for(self, turn: str) -> bool:
        """Whether turn is still ahead in the queue (not passed already).

        A turn passed without its fx (its node was lost, or never known
        here) is gone: an fx that comes for it later would stay for ever.
        """
        queue = self.queue
        return bool(queue) and split_id(turn) >= split_id(queue[0][0])

    def _forget_turns(self, node: str) -> None:
        """node started again: its last run's turns waiting here get no fx."""
        # A node killed and started again under its name before the others
        # declared it lost says hello; the turns it had asked for before
        # dying would stall every other node for ever.
        for entry_id, entry in self.queue:
            if type(entry) is Turn and entry.node == node:
                self.effects.setdefault(entry_id, ())

    @property
    def stalled(self) -> bool:
        """Tell whether the node waits for another node's turn to be told."""
        return bool(self.queue)

    def _drain(self) -> None:
        queue = self.queue
        chat = self.chat
        while queue:
            entry_id, entry = queue[0]
            if type(entry) is Turn and entry.node != self.node_id:
                ops = self.effects.pop(entry_id, None)
                if ops is None:
                    node = entry.node
                    # Stall until its fx comes, unless its node is gone or was
                    # never known here (an old node's turn, sent again after a
                    # rejoin): nobody would ever answer it.
                    if node in self.nodes and node not in self.gone:
                        return
                    ops = ()
                queue.popleft()
                chat.log_time = split_id(entry_id)[0] / 1000
                chat.apply_ops(ops, entry.node)
                continue
            queue.popleft()
            try:
                self._apply(entry_id, entry)
            except Exception:
                self.log.failure(
                    "applying cluster entry {kind} failed", kind=type(entry).__name__
                )

    def _apply(self, entry_id: str, entry: Entry) -> None:
        chat = self.chat
        ms, seq = split_id(entry_id)
        chat.log_time = ms / 1000
        if type(entry) is Talk:
            if entry.echo is None or not self._echoed(entry, ms, seq):
                chat.apply_talk(
                    entry.uid,
                    entry.room,
                    entry.text,
                    entry.action,
                    entry.notice,
                    ms,
                    seq,
                    entry.tags,
                )
        elif type(entry) is Tag:
            chat.apply_tag(entry, ms, seq)
        elif type(entry) is Tell:
            if entry.echo is None or not self._echoed(entry, ms, seq):
                chat.apply_tell(entry, ms, seq)
        elif isinstance(entry, Turn):  # our own
            self._run_turn(entry_id, entry.uid)
        elif isinstance(entry, Changes):
            chat.apply_ops(entry.ops, entry.node)
        elif isinstance(entry, Hello):
            node = entry.node
            if node != self.node_id:
                self.nodes[node] = None
                # Users of its last run, if it was killed and started again
                # before anyone declared it lost: nobody serves them any more.
                # They quit before the snapshot it will load is taken.
                ghosts = chat.drop_node(node, LOST_REASON)
                if ghosts:
                    self.log.info(
                        "cluster node {node} started again: {count} users gone",
                        node=node,
                        count=len(ghosts),
                    )
                # A node started again under a name that was lost or left
                # (the same --node-name) is live again: its turns wait for
                # their fx, unless a later lost or left of it is already here.
                if not any(
                    isinstance(later, Lost | Left) and later.node == node
                    for _, later in self.queue
                ):
                    self.gone.discard(node)
                self.log.info("cluster node {node} joined", node=node)
                self.on_hello(node, entry_id)
        elif isinstance(entry, Lost | Left):
            node = entry.node
            lost = isinstance(entry, Lost)
            if node == self.node_id:
                if lost:
                    self.log.warn("the cluster declared this node lost; rejoining")
                    self.on_lost_self()
                return
            self.nodes.pop(node, None)
            nicks = chat.drop_node(node, LOST_REASON if lost else LEFT_REASON)
            self.log.info(
                "cluster node {node} {what}: {count} users gone",
                node=node,
                what="lost" if lost else "left",
                count=len(nicks),
            )
        elif isinstance(entry, Close):
            if entry.node == self.node_id:
                user = chat.by_uid.get(entry.uid)
                held = user.devices if user is not None else None
                if held is not None:  # every connection of the user's here
                    for client in list(held.clients):
                        client.close(entry.reason)
                    return
                local = self.locals.get(entry.uid)
                if local is not None:
                    local.close(entry.reason)

    def _echoed(self, entry: Talk | Tell, ms: int, seq: int) -> bool:
        """Apply talk whose echo answers a labeled command of ours; False: not ours."""
        local = self.locals.get(entry.uid)
        if local is None or entry.echo is None:
            return False
        chat = self.chat
        if isinstance(entry, Talk):
            talk = entry
            local.echo_applied(
                entry.echo,
                lambda: chat.apply_talk(
                    talk.uid,
                    talk.room,
                    talk.text,
                    talk.action,
                    talk.notice,
                    ms,
                    seq,
                    talk.tags,
                ),
            )
        else:
            tell = entry
            local.echo_applied(entry.echo, lambda: chat.apply_tell(tell, ms, seq))
        return True

    def _run_turn(self, entry_id: str, uid: str) -> None:
        """Our own turn came: run the connection's line, publish what it changed."""
        local = self.locals.get(uid)
        ops: list[Op] = []
        special = self.specials.pop(uid, None)
        if special is not None:
            ops = self.chat.record(special)
        elif local is not None:
            ops = self.chat.record(local.run_turn)
        # Always published, even empty (a refused NICK, a connection gone):
        # the other nodes wait for it.
        self.send(Effects(self.node_id, entry_id, tuple(ops)))
        if local is not None:
            local.turn_done()

    # -- rejoining after the log lost our place (chatd.cluster.redis) --------------

    def reset(self, node_id: str) -> None:
        """Start again as node_id: the others' users go (local users see them quit).

        Lines held for turns that will never come are asked for again once
        the node is back (readd_locals).
        """
        chat = self.chat
        with chat.applying():
            for each in list(chat.users.values()):
                if not self._ours(each):
                    chat.quit(each, SPLIT_REASON)
        self.node_id = chat.node_id = node_id
        locals_, self.locals = self.locals, {}
        for uid, local in locals_.items():
            user = chat.by_uid.pop(uid) if uid in chat.by_uid else None
            local.uid = self.new_uid()
            self.locals[local.uid] = local
            if user is not None:
                chat.by_uid[local.uid] = user
                held = user.devices
                if held is not None and held.uid == uid:
                    held.uid = local.uid
        self.queue.clear()
        self.effects.clear()
        self.nodes.clear()
        self.last_id = "0-0"

    def _ours(self, user: User) -> bool:
        """Whether user stays through a rejoin: registered here, with a
        connection here; or always-on and connected nowhere here.

        A user of several nodes registered on another one quits here (its
        connections here are closed: they log in again).
        """
        held = user.devices
        if held is None:
            return not isinstance(user.client, RemoteClient)
        if not held.clients:
            return user in self.chat.always_on
        return home_of(held.uid) == self.node_id

    def save_locals(self) -> list[tuple[Local, User, list[str]]]:
        """This node's users and their rooms, to add again after a snapshot."""
        saved = []
        for local in self.locals.values():
            user = self.chat.by_uid.get(local.uid)
            if user is not None:
                saved.append((local, user, [room.name for room in user.rooms.values()]))
        return saved

    def readd_locals(
        self, saved: list[tuple[Local, User, list[str]]], loaded: bool
    ) -> None:
        """Back in the cluster: add our users again (if a snapshot replaced them).

        In a turn of its own, so every node adds them at the same place: the
        nickname if still free (else a guest name), then each room that lets
        them in; they are shown who is there now (JOIN of each member).
        """
        if loaded and saved:
            token = f"*rejoin/{self.node_id}"
            self.specials[token] = lambda: self._readd(saved)
            self.publish(Turn(self.node_id, token))
        for local in list(self.locals.values()):
            held = getattr(local, "held", None)
            if held:
                self.request_turn(local)

    def _readd(self, saved: list[tuple[Local, User, list[str]]]) -> None:
        chat = self.chat
        for local, old, rooms in saved:
            if self.locals.get(local.uid) is not local:
                continue  # closed meanwhile
            nick = old.nick
            if old.devices is not None:
                # Counted again from here: the old log's places mean nothing.
                old.devices.places = None
            if fold(nick) in chat.users:
                nick = guest_name(lambda name: fold(name) in chat.users)
            try:
                user = chat.register(
                    nick,
                    old.client,
                    username=old.username,
                    realname=old.realname,
                    host=old.host,
                    account=old.account,
                )
            except ServerBanned as banned:  # K-lined while this node was away
                old.client.close(banned.goodbye)
                continue
            except ChatError:
                continue
            local.user = user
            if old.devices is not None:  # several connections: all are the new user's
                carry_devices(old, user)
                for other in self.locals.values():
                    if other.user is old:
                        other.user = user
            if user.nick != old.nick:
                user.deliver(Renamed(old.nick, user.nick))
            for name in rooms:
                try:
                    room, _ = chat.join(user, name)
                except ChatError:
                    continue
                for member in room.members.values():
                    if member is not user:
                        user.deliver(Joined(room.name, member.nick))
                shown = old.rooms.get(room.key)
                if shown is not None:
                    marks = _marks_now(shown, room)
                    if marks:
                        user.deliver(ModesChanged(room.name, chat.server_name, marks))
            if old.current in user.rooms:  # plain lines go where they went
                user.current = old.current
            if old.away:
                chat.set_away(user, old.away)


def _marks_now(shown: Room, now: Room) -> tuple[Change, ...]:
    """The operator and voice marks that differ between two states of a room.

    shown: the room as this node's users last saw it, the marks made while
    cut off included (the others' users dropped: a member left alone was
    given operator); now: the room in the merged cluster, whose log decided.
    What a user was shown and the log did not keep is taken back (-o, -v);
    what the log has that they were not shown is given (+o, +v).
    """
    changes: list[Change] = []
    for letter, before, after in (
        ("o", shown.rules.ops, now.rules.ops),
        ("v", shown.rules.voiced, now.rules.voiced),
    ):
        had = {member.nick for member in before}
        has = {member.nick for member in after}
        changes += [Change(letter, False, nick) for nick in sorted(had - has)]
        changes += [Change(letter, True, nick) for nick in sorted(has - had)]
    return tuple(changes)
