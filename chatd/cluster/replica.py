"""ClusterChat: one node's replica of the whole cluster's chat, changed in log order.

Every node holds every user of the cluster. A user of another node is a User
whose client is a RemoteClient: delivering to it does nothing (their own node
delivers to them), closing it asks their node to. So /who, NAMES, WHO, LIST
and WHOIS read the local replica as before.

Every change of shared state goes through the log (chatd.cluster.node), so
every replica makes the same changes in the same order:

- while a turn runs (a line that may change shared state, run by its node
  when its turn entry comes up in the log), each outermost call of a
  state-changing operation (the one table: chatd.cluster.ops.OPERATIONS) is
  applied at once, as in one process, and recorded as an Op; the node then
  publishes the ops and the other nodes apply them at the turn's place;
- outside a turn (a connection dropped, an account timer), the call is not
  applied but published as an op, and every node applies it when read;
- talk (say, act, tell) is checked at once, so refusals come back as
  usual, then published; every node delivers it to its own members when read
  (apply_talk, apply_tell), the speaker's node keeping it in history.

Users are named in ops by a uid that never changes, "<node>/<n>", since a
nickname can change between publishing an op and applying it.

A user's connections may be on several nodes (docs/cluster.md, Several
devices on a cluster): each node's replica of the user has a Devices
(chatd.model.devices) holding that node's own connections, and every node
counts them all, by node, from the connections op (Chat.set_connections),
which decides alike everywhere when the user quits. The first node that
holds its connections keeps what it says (keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from twisted.logger import Logger
from zope.interface import implementer

from chatd.cluster.entries import Changes, Close, Entry, Tag, Talk, Tell
from chatd.cluster.ops import BY_WIRE, OPERATIONS, Op, Operation, Wire
from chatd.model import devices
from chatd.model.chat import (
    Action,
    Chat,
    Event,
    IChatClient,
    Message,
    Private,
    Room,
    Tagged,
    User,
    author_of,
    deliver_to,
    party_of,
)
from chatd.model.client_tags import NO_TAGS, Tags, check_size
from chatd.model.devices import ALWAYS_ON_AWAY, Devices
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold
from chatd.store.interface import Kind

__all__ = ["ClusterChat", "Op", "Publisher", "RemoteClient", "Wire", "uid_of"]


class Publisher:
    """Where a replica's ops and talk go: the node (chatd.cluster.node)."""

    def publish(self, entry: Entry) -> None:
        """Append entry to the shared log."""
        raise NotImplementedError


@implementer(IChatClient)
class RemoteClient:
    """The client of a user on another node: delivered to there, not here."""

    __slots__ = ("uid", "node", "publisher")
    # Never quoted: only the user's own node guards their nickname (_nick_taken).
    identify_hint = ""
    # A user of another node: a device attaching here gets a Devices with
    # none of its connections here yet (chatd.model.devices.devices_of).
    remote = True

    def __init__(self, uid: str, node: str, publisher: Publisher) -> None:
        self.uid = uid
        self.node = node
        self.publisher = publisher

    def deliver(self, event: Event) -> None:
        """Nothing: the user's own node delivers the event to them."""

    def close(self, reason: str) -> None:
        """Ask the user's node to close their connection (a /kill)."""
        self.publisher.publish(Close(self.node, self.uid, reason))


@implementer(IChatClient)
class Elsewhere:
    """A user's connections on the other nodes, as its Devices closes them.

    A /kill or a K-line closes a user's connections: its Devices closes
    those of this node, and this asks each other node that holds some to
    close its own (a close entry naming the user).
    """

    __slots__ = ("chat", "held")
    identify_hint = ""

    def __init__(self, chat: ClusterChat, held: Devices) -> None:
        self.chat = chat
        self.held = held

    def deliver(self, event: Event) -> None:
        """Nothing: each node delivers to its own connections."""

    def close(self, reason: str) -> None:
        """Ask every other node holding some of the user's connections to close them."""
        here = self.chat.node_id
        for node in list(self.held.places or ()):
            if node != here:
                self.chat.publisher.publish(Close(node, self.held.uid, reason))


def home_of(uid: str) -> str:
    """The node a uid was made on: where its user registered."""
    return uid.split("/", 1)[0]


def _live_id(ms: int, seq: int) -> int:
    """The live id of what is not kept, at log position (ms, seq): below zero,
    the same on every node (one process's are the clock's: Chat._live_id)."""
    return -(ms * 1000 + seq)


def uid_of(user: User) -> str:
    """The cluster-wide id of user: their client's (a connection or RemoteClient)."""
    return cast(str, getattr(user.client, "uid", ""))


def is_remote(user: User) -> bool:
    """Tell whether user's connection is on another node."""
    return type(user.client) is RemoteClient


def _echo_token(user: User) -> str | None:
    """The token of talk whose echo answers a labeled IRC command, if it does."""
    await_echo = getattr(user.client, "await_echo", None)
    if await_echo is None:
        return None
    token: str | None = await_echo()
    return token


class ReplicatedChat(Chat):
    """A Chat whose state-changing operations all go through replicate().

    Its methods are made from the one table (chatd.cluster.ops.OPERATIONS),
    one per operation, below the class; ClusterChat says what replicate does.
    """

    def replicate(
        self, operation: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run, record or publish one call of operation."""
        raise NotImplementedError


def _replicating(operation: Operation) -> Callable[..., Any]:
    """ReplicatedChat's method for operation: the call goes through replicate."""

    def method(self: ReplicatedChat, *args: Any, **kwargs: Any) -> Any:
        return self.replicate(operation, args, kwargs)

    method.__name__ = operation.name
    method.__qualname__ = f"ReplicatedChat.{operation.name}"
    method.__doc__ = operation.function.__doc__
    return method


for _operation in OPERATIONS:
    setattr(ReplicatedChat, _operation.name, _replicating(_operation))


class ClusterChat(ReplicatedChat):
    """A Chat whose shared state changes only in the cluster's log order."""

    log = Logger()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.publisher = Publisher()  # the node sets itself here
        self.node_id = ""
        self.by_uid: dict[str, User] = {}
        # The log's time while an entry is applied: Chat.now for every replica.
        self.log_time = 0.0
        self.now = self._log_now
        self._applying = 0  # > 0 while the log's entries change the replica
        self._ops: list[Op] | None = None  # recording a turn's ops
        self._depth = 0  # nesting of mutating calls inside one recorded call
        # Whether the cluster can take changes now (Redis reachable, state loaded).
        self.up = False
        self.last_stamp = 0  # the last history id given out (Stamps, in log order)
        # Whether a node is live as this replica knows, the live nodes, and a
        # new uid of this node's (the node sets them: chatd.cluster.node).
        self.node_live: Callable[[str], bool] = lambda node: True
        self.live_nodes: Callable[[], list[str]] = lambda: [self.node_id]
        self.new_uid: Callable[[], str] = lambda: ""
        # Runs a change in a turn of this node's own (Node.in_turn).
        self.run_in_turn: Callable[[Callable[[], None]], None] = lambda run: run()

    # Always-on users are written to the store by one node only (keeps):
    # Accounts sets what writes them (chatd.model.accounts), this wraps it.
    @property
    def always_on_changed(self) -> Callable[[User, bool], None]:
        return self._always_on_kept

    @always_on_changed.setter
    def always_on_changed(self, keep: Callable[[User, bool], None]) -> None:
        self._keep_always_on = keep

    def _always_on_kept(self, user: User, on: bool) -> None:
        if self.keeps(user):
            self._keep_always_on(user, on)

    def _log_now(self) -> float:
        return self.log_time

    # -- how a change goes: recorded in a turn, applied from the log, or published --

    def record(self, run: Callable[[], None]) -> list[Op]:
        """Run a turn's line: changes apply now and come back as ops."""
        ops: list[Op] = []
        self._ops = ops
        try:
            run()
        finally:
            self._ops = None
        return ops

    def applying(self) -> _Applying:
        """A context in which calls change the replica without being published."""
        return _Applying(self)

    def replicate(
        self, operation: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Apply a call now (from the log, or nested), record it, or publish it."""
        if self._applying or self._depth:
            return operation.function(self, *args, **kwargs)
        arguments = operation.bind(args, kwargs)
        uid: str | None = None
        if operation.subject is not None:
            subject = arguments[operation.subject]
            # A user, or the connection being registered: both named by uid.
            uid = (
                uid_of(subject)
                if isinstance(subject, User)
                else cast(str, getattr(subject, "uid", ""))
            )
        op = operation.op(arguments, uid)
        if self._ops is None:  # outside a turn: every node applies it from the log
            self.publisher.publish(Changes(self.node_id, (op,)))
            return None
        self._depth += 1
        try:
            result = operation.function(self, **arguments)
        finally:
            self._depth -= 1
        self._ops.append(op)
        return result

    # -- what the replica keeps beside the model's state ----------------------

    def register(
        self,
        nick: str,
        client: IChatClient,
        *,
        username: str = "",
        realname: str = "",
        host: str = "",
        account: str = "",
    ) -> User:
        if self._ops is None and not (self._applying or self._depth):
            raise ChatError(ErrorCode.CLUSTER_DOWN, "registering needs the cluster")
        if isinstance(client, Devices) and not client.uid:
            # An always-on user brought back with no connection: a uid of ours.
            client.uid = self.new_uid()
        user = super().register(
            nick,
            client,
            username=username,
            realname=realname,
            host=host,
            account=account,
        )
        self.by_uid[cast(str, getattr(client, "uid", ""))] = user
        return user

    def quit(self, user: User, reason: str) -> None:
        super().quit(user, reason)
        if self.users.get(user.key) is not user:  # applied, not only published
            self.by_uid.pop(uid_of(user), None)
            held = user.devices
            if held is not None and held.clients:
                # Quit everywhere (a /kill, or its other nodes' last connection
                # went as this one came): the connections here go too.
                for client in list(held.clients):
                    client.close(reason)

    def set_account(self, user: User, account: str) -> None:
        super().set_account(user, account)
        if self._applying and self.keeps(user):
            # Read from the log on the user's node: a reservation ends
            # (chatd.model.accounts).
            Chat.nick_taken(self, user)

    def nick_taken(self, user: User) -> None:
        """Only the user's own node guards a registered nickname (one timer)."""
        if self.keeps(user):
            Chat.nick_taken(self, user)

    # -- a user's connections on several nodes (chatd.model.devices) --------------

    def keeps(self, user: User) -> bool:
        """Whether this node keeps what user says (history) and guards its name.

        A user on one node: that node. A user whose connections the log
        counts on several: the first of them (the same on every replica);
        before any is counted, the node it registered on.
        """
        held = user.devices
        if held is None:
            return type(user.client) is not RemoteClient
        if held.places is None:
            return home_of(held.uid) == self.node_id
        for node in held.places:
            return node == self.node_id
        # Connected nowhere (always-on): the first live node by name.
        return min(self.live_nodes()) == self.node_id

    def devices_here(self, user: User) -> Devices:
        """user's Devices on this node, made on first need (remote: none here)."""
        was_remote = is_remote(user)
        held = devices.devices_of(user)
        held.here = self.node_id
        if held.elsewhere is None:
            held.elsewhere = Elsewhere(self, held)
        if was_remote:  # delivered to here from now on: the rooms list it again
            for room in user.rooms.values():
                room.local = None
        return held

    def attach(self, user: User, client: IChatClient) -> None:
        """A connection of this node is one more of user (maybe of another node's):
        delivered to here at once; the count of its connections here is an op."""
        held = self.devices_here(user)
        devices.attach(user, client)
        self.set_connections(user, self.node_id, len(held.clients), "")

    def drop_connection(self, user: User, client: IChatClient, reason: str) -> bool:
        """client closed: a lone connection's user quits (an op, as ever); one
        of several goes, and the count of the user's connections here is an op,
        applied by every node in the log's order (Chat.set_connections decides)."""
        if self.users.get(user.key) is not user:
            return True
        if user.devices is None and user not in self.always_on:
            return super().drop_connection(user, client, reason)
        self.devices_here(user)
        left = devices.detach(user, client)
        others = devices.count(user) - left
        self.set_connections(user, self.node_id, left, reason)
        return not (left or others) and user not in self.always_on

    def set_connections(self, user: User, place: str, count: int, reason: str) -> None:
        if self._applying or self._depth or self._ops is not None:
            # Runs here now (applied, or in a turn): first counted, the user
            # had its one connection on the node it registered on.
            held = self.devices_here(user)
            if held.places is None:
                # Never counted: its one connection on the node it registered
                # on, unless that node is gone, or it is an always-on user
                # brought back with none (chatd.model.always_on).
                home = home_of(held.uid)
                held.places = (
                    {home: 1}
                    if self.node_live(home)
                    and not (user in self.always_on and user.away == ALWAYS_ON_AWAY)
                    else {}
                )
        super().set_connections(user, place, count, reason)

    def changing(self, run: Callable[[], None]) -> None:
        """Run run at once in a turn or applying; else in a turn of our own,
        so that what it changes is replicated (a login at the prompt whose
        password check ended after its line's turn)."""
        if self._ops is not None or self._applying or self._depth:
            run()
        else:
            self.run_in_turn(run)

    def bring_back(self, restore: Callable[[], object]) -> None:
        """Run restore (in a turn), which brings kept always-on users back with
        no connection (chatd.model.always_on); then count them connected
        nowhere, on every node (set_connections)."""
        restore()
        for user in list(self.always_on):
            held = user.devices
            if held is not None and held.places is None and not held.clients:
                self.set_connections(user, self.node_id, 0, "")

    def set_always_on(self, user: User, on: bool, per_address: int = 4) -> bool:
        if self._applying or self._depth:
            return bool(super().set_always_on(user, on, per_address))
        # Refused at once, in the door's words; then every node applies it.
        if not self.check_always_on(user, on, per_address):
            return False
        super().set_always_on(user, on, per_address)
        return True

    # -- talk: checked here, delivered when read from the log -------------------

    def say(
        self,
        user: User,
        text: str,
        room: str | None = None,
        notice: bool = False,
        tags: Tags = NO_TAGS,
    ) -> None:
        found = self.speaking_room(user, room)
        self._talk("say", user, found, text, notice, tags)

    def act(
        self, user: User, text: str, room: str | None = None, tags: Tags = NO_TAGS
    ) -> None:
        found = self.speaking_room(user, room)
        self._talk("act", user, found, text, False, tags)

    def _talk(
        self, kind: str, user: User, room: Room, text: str, notice: bool, tags: Tags
    ) -> None:
        if not self.up:
            raise ChatError(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_TEXT)
        if tags:  # most messages carry none: no call
            check_size(tags)
        self.publisher.publish(
            Talk(
                kind == "act",
                uid_of(user),
                room.key,
                text,
                notice,
                _echo_token(user),
                tags,
            )
        )

    def tell(
        self,
        user: User,
        nick: str,
        text: str,
        notice: bool = False,
        action: bool = False,
        tags: Tags = NO_TAGS,
    ) -> None:
        recipient = self.user(nick)
        if not self.up:
            raise ChatError(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_TEXT)
        if tags:  # most messages carry none: no call
            check_size(tags)
        self.publisher.publish(
            Tell(
                uid_of(user),
                uid_of(recipient),
                text,
                notice,
                action,
                _echo_token(user),
                tags,
            )
        )

    def send_tags(self, user: User, target: str, tags: Tags) -> None:
        """Checked here (who may, the rate), delivered when read from the log."""
        if not self.up:
            raise ChatError(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_TEXT)
        members, shown, private = self._tag_audience(user, target, tags)
        to = uid_of(members[0]) if private else fold(shown)
        self.publisher.publish(Tag(uid_of(user), to, private, tags))

    def next_stamp(self, ms: int, seq: int) -> int:
        """The history id of a message at log position (ms, seq): same on every node."""
        stamp = ms * 1000 + seq
        if stamp <= self.last_stamp:
            stamp = self.last_stamp + 1
        self.last_stamp = stamp
        return stamp

    def apply_talk(
        self,
        uid: str,
        room_key: str,
        text: str,
        action: bool,
        notice: bool,
        ms: int,
        seq: int,
        tags: Tags = NO_TAGS,
    ) -> None:
        """A say or act read from the log: deliver it to this node's members.

        Given a Talk's fields, not a Talk: the node reads them from the log's
        JSON itself on the hot path (chatd.cluster.node, Node.receive).
        """
        user = self.by_uid.get(uid)
        room = self.rooms.get(room_key)
        if user is None or room is None:
            return  # gone meanwhile: every replica drops it alike
        try:
            self.check_speaker(room, user)
        except ChatError:
            return  # banned or moderated meanwhile (the same on every node)
        kind = Kind.ACTION if action else Kind.MESSAGE
        msg_id, time = 0, 0.0
        if self.history is not None:
            msg_id, time = self.next_stamp(ms, seq), ms / 1000
            # The speaker's node keeps it, once (several nodes: keeps).
            if (
                type(user.client) is not RemoteClient
                if user.devices is None
                else self.keeps(user)
            ):
                self.history.record_at(
                    room.key, kind, user.nick, text, msg_id, time, author_of(user)
                )
        event: Event
        if action:
            event = Action(room.name, user.nick, text, id=msg_id, time=time, tags=tags)
        else:
            event = Message(
                room.name, user.nick, text, notice, id=msg_id, time=time, tags=tags
            )
        # Only this node's members: the others' nodes deliver to them.
        local = room.local
        if local is None:
            local = room.local = [
                member for member in room.members.values() if not is_remote(member)
            ]
        deliver_to(local, event)

    def apply_tell(self, entry: Tell, ms: int, seq: int) -> None:
        """A private message read from the log: to the recipient, and the sender."""
        user = self.by_uid.get(entry.uid)
        recipient = self.by_uid.get(entry.to)
        if user is None or recipient is None:
            return
        action = entry.action
        msg_id, time = 0, 0.0
        # Kept when a side is identified (docs/protocol.md, Private history),
        # under an id from the log, the same on every node; by the sender's node.
        if self.history is not None and (user.account or recipient.account):
            msg_id, time = self.next_stamp(ms, seq), ms / 1000
            if self.keeps(user):
                kind = Kind.ACTION if action else Kind.MESSAGE
                name = user.account or user.nick
                self.history.record_private_at(
                    party_of(user),
                    party_of(recipient),
                    kind,
                    name,
                    entry.text,
                    msg_id,
                    time,
                )
        else:  # a live id, from the log: the same on every node
            msg_id, time = _live_id(ms, seq), ms / 1000
        event = Private(
            user.nick,
            recipient.nick,
            entry.text,
            entry.notice,
            action,
            id=msg_id,
            time=time,
            tags=entry.tags,
        )
        deliver_to([recipient] if recipient is user else [recipient, user], event)

    def apply_tag(self, entry: Tag, ms: int, seq: int) -> None:
        """Tags alone read from the log: to this node's members (or the two)."""
        user = self.by_uid.get(entry.uid)
        if user is None:
            return
        members: list[User]
        if entry.private:
            recipient = self.by_uid.get(entry.to)
            if recipient is None:
                return
            members, shown = [recipient], recipient.nick
            if recipient is not user:
                members.append(user)
        else:
            room = self.rooms.get(entry.to)
            if room is None:
                return  # gone meanwhile: every replica drops it alike
            try:
                self.check_speaker(room, user)
            except ChatError:
                return  # banned or moderated meanwhile (the same on every node)
            members, shown = list(room.members.values()), room.name
        event = Tagged(
            shown,
            user.nick,
            entry.tags,
            entry.private,
            id=_live_id(ms, seq),
            time=ms / 1000,
        )
        deliver_to(members, event)

    # -- applying ops read from the log ----------------------------------------

    def apply_ops(self, ops: Iterable[Op], node: str) -> None:
        """Apply a turn's (or a lone change's) ops, published by node."""
        with self.applying():
            for op in ops:
                try:
                    self._apply_op(op, node)
                except ChatError as error:
                    # Cannot happen while replicas agree; say so rather than stop.
                    self.log.warn(
                        "cluster op {op} refused here: {error}",
                        op=op.name,
                        error=error.text,
                    )
                except Exception:
                    self.log.failure("cluster op {op} failed", op=op.name)

    def _apply_op(self, op: Op, node: str) -> None:
        """Call op's operation (the table: chatd.cluster.ops) on this replica."""
        operation = BY_WIRE.get(op.name)
        if operation is None:  # a newer node's: see docs/cluster.md, Upgrades
            self.log.warn("unknown cluster op {op}", op=op.name)
            return
        subject: object = None
        if operation.subject == "client":  # register: a user of node
            if op.uid is None or op.uid in self.by_uid:
                return  # our own, applied in its turn
            subject = RemoteClient(op.uid, node, self.publisher)
        elif operation.subject is not None:
            subject = self.by_uid.get(op.uid or "")
            if subject is None:
                return  # gone already
        # Through this class's method, so that by_uid follows (register, quit).
        method = getattr(self, operation.name)
        method(**operation.arguments(op, subject))

    def drop_node(self, node: str, reason: str) -> list[str]:
        """Take node's connections away (lost or left); return who quit.

        A user of that node alone quits; one whose connections the log
        counts on several nodes loses those of node only, and quits only
        if it had none elsewhere (Chat.set_connections).
        """
        gone: list[User] = []
        counted: list[User] = []
        for user in self.users.values():
            held = user.devices
            if held is not None and held.places is not None:
                if node in held.places:
                    counted.append(user)
            elif isinstance(user.client, RemoteClient) and user.client.node == node:
                gone.append(user)
            elif held is not None and home_of(held.uid) == node:
                gone.append(user)  # attached here, not counted yet: as everywhere
        # An always-on user of node alone stays, away, as its last connection's
        # going would leave it.
        for user in gone:
            if user in self.always_on:
                counted.append(user)
                self.devices_here(user).places = {node: 1}  # its one, there
        gone = [user for user in gone if user not in self.always_on]
        with self.applying():
            for user in gone:
                self.quit(user, reason)
            for user in counted:
                self.set_connections(user, node, 0, reason)
        return [user.nick for user in gone] + [
            user.nick for user in counted if self.users.get(user.key) is not user
        ]


class _Applying:
    """Context manager: changes from the log apply without being published."""

    def __init__(self, chat: ClusterChat) -> None:
        self.chat = chat

    def __enter__(self) -> None:
        self.chat._applying += 1

    def __exit__(self, *exc: object) -> None:
        self.chat._applying -= 1


CLUSTER_DOWN_TEXT = (
    "the cluster is unreachable (Redis is down); this node reconnects by itself, "
    "try again in a moment"
)
