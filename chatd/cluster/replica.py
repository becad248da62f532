"""ClusterChat: one node's replica of the whole cluster's chat, changed in log order.

Every node holds every user of the cluster. A user of another node is a User
whose client is a RemoteClient: delivering to it does nothing (their own node
delivers to them), closing it asks their node to. So /who, NAMES, WHO, LIST
and WHOIS read the local replica as before.

Every change of shared state goes through the log (chatd.cluster.node), so
every replica makes the same changes in the same order:

- while a turn runs (a line that may change shared state, run by its node
  when its turn entry comes up in the log), each outermost call of a
  mutating method is applied at once, as in one process, and recorded as an
  op: [method, user id, arguments]; the node then publishes the ops and the
  other nodes apply them at the turn's place;
- outside a turn (a connection dropped, an account timer), the call is not
  applied but published as an op, and every node applies it when read;
- talk (say, act, tell) is checked at once, so refusals come back as
  usual, then published; every node delivers it to its own members when read
  (apply_talk, apply_tell), the speaker's node keeping it in history.

Users are named in ops by a uid that never changes, "<node>/<n>", since a
nickname can change between publishing an op and applying it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from twisted.logger import Logger
from zope.interface import implementer

from chatd.model.chat import (
    Action,
    Chat,
    Event,
    IChatClient,
    Message,
    Private,
    Room,
    User,
    deliver_to,
    party_of,
)
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.room_rules import Change, RoomRecord
from chatd.store.interface import Kind

# A value decoded from the log's JSON: dicts, lists, str, int, float, bool, None.
Wire = Any
Op = list[Wire]  # [method name, user id or None, arguments...]


class Publisher:
    """Where a replica's ops and talk go: the node (chatd.cluster.node)."""

    def publish(self, entry: dict[str, Wire]) -> None:
        """Append entry to the shared log."""
        raise NotImplementedError


@implementer(IChatClient)
class RemoteClient:
    """The client of a user on another node: delivered to there, not here."""

    __slots__ = ("uid", "node", "publisher")

    def __init__(self, uid: str, node: str, publisher: Publisher) -> None:
        self.uid = uid
        self.node = node
        self.publisher = publisher

    def deliver(self, event: Event) -> None:
        """Nothing: the user's own node delivers the event to them."""

    def close(self, reason: str) -> None:
        """Ask the user's node to close their connection (a /kill)."""
        self.publisher.publish(
            {"k": "close", "node": self.node, "u": self.uid, "r": reason}
        )


def uid_of(user: User) -> str:
    """The cluster-wide id of user: their client's (a connection or RemoteClient)."""
    return cast(str, getattr(user.client, "uid", ""))


def is_remote(user: User) -> bool:
    """Tell whether user's connection is on another node."""
    return type(user.client) is RemoteClient


def _await_echo(user: User, entry: dict[str, Wire]) -> None:
    """Mark talk whose echo answers a labeled IRC command (chatd.cluster.doors)."""
    await_echo = getattr(user.client, "await_echo", None)
    if await_echo is not None:
        token = await_echo()
        if token is not None:
            entry["w"] = token


class ClusterChat(Chat):
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

    def _change(
        self, name: str, uid: str | None, args: list[Wire], run: Callable[[], Any]
    ) -> Any:
        if self._applying or self._depth:
            return run()
        if self._ops is None:  # outside a turn: every node applies it from the log
            self.publisher.publish(
                {"k": "op", "n": self.node_id, "ops": [[name, uid, *args]]}
            )
            return None
        self._depth += 1
        try:
            result = run()
        finally:
            self._depth -= 1
        self._ops.append([name, uid, *args])
        return result

    # -- the mutating methods --------------------------------------------------

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
        uid = cast(str, getattr(client, "uid", ""))

        def run() -> User:
            user = Chat.register(
                self,
                nick,
                client,
                username=username,
                realname=realname,
                host=host,
                account=account,
            )
            self.by_uid[uid] = user
            return user

        if self._ops is None and not (self._applying or self._depth):
            raise ChatError(ErrorCode.CLUSTER_DOWN, "registering needs the cluster")
        return cast(
            User,
            self._change(
                "register", uid, [nick, username, realname, host, account], run
            ),
        )

    def rename(self, user: User, new: str) -> None:
        self._change(
            "rename", uid_of(user), [new], lambda: Chat.rename(self, user, new)
        )

    def quit(self, user: User, reason: str) -> None:
        def run() -> None:
            Chat.quit(self, user, reason)
            if self.users.get(user.key) is not user:
                self.by_uid.pop(uid_of(user), None)

        self._change("quit", uid_of(user), [reason], run)

    def set_away(self, user: User, text: str) -> None:
        self._change(
            "away", uid_of(user), [text], lambda: Chat.set_away(self, user, text)
        )

    def set_account(self, user: User, account: str) -> None:
        self._change(
            "account",
            uid_of(user),
            [account],
            lambda: Chat.set_account(self, user, account),
        )

    def join(self, user: User, name: str, key: str | None = None) -> tuple[Room, bool]:
        return cast(
            tuple[Room, bool],
            self._change(
                "join",
                uid_of(user),
                [name, key],
                lambda: Chat.join(self, user, name, key),
            ),
        )

    def part(self, user: User, name: str | None, reason: str) -> Room:
        return cast(
            Room,
            self._change(
                "part",
                uid_of(user),
                [name, reason],
                lambda: Chat.part(self, user, name, reason),
            ),
        )

    def set_topic(self, user: User, name: str | None, text: str) -> Room:
        return cast(
            Room,
            self._change(
                "topic",
                uid_of(user),
                [name, text],
                lambda: Chat.set_topic(self, user, name, text),
            ),
        )

    def change_modes(
        self, user: User, name: str | None, changes: Iterable[Change]
    ) -> tuple[Room, list[Change], list[ChatError]]:
        changes = list(changes)
        spelled = [[c.letter, c.on, c.arg] for c in changes]
        return cast(
            tuple[Room, list[Change], list[ChatError]],
            self._change(
                "modes",
                uid_of(user),
                [name, spelled],
                lambda: Chat.change_modes(self, user, name, changes),
            ),
        )

    def kick(self, user: User, name: str | None, nick: str, reason: str) -> Room:
        return cast(
            Room,
            self._change(
                "kick",
                uid_of(user),
                [name, nick, reason],
                lambda: Chat.kick(self, user, name, nick, reason),
            ),
        )

    def invite(self, user: User, nick: str, name: str) -> tuple[Room, User]:
        return cast(
            tuple[Room, User],
            self._change(
                "invite",
                uid_of(user),
                [nick, name],
                lambda: Chat.invite(self, user, nick, name),
            ),
        )

    def register_room(self, user: User, name: str | None) -> RoomRecord:
        return cast(
            RoomRecord,
            self._change(
                "register_room",
                uid_of(user),
                [name],
                lambda: Chat.register_room(self, user, name),
            ),
        )

    def unregister_room(self, user: User, name: str | None) -> Room:
        return cast(
            Room,
            self._change(
                "unregister_room",
                uid_of(user),
                [name],
                lambda: Chat.unregister_room(self, user, name),
            ),
        )

    def forget_account(self, account: str) -> None:
        self._change(
            "forget_account",
            None,
            [account],
            lambda: Chat.forget_account(self, account),
        )

    def nick_taken(self, user: User) -> None:
        """Only the user's own node guards a registered nickname (one timer)."""
        if not is_remote(user):
            Chat.nick_taken(self, user)

    # -- talk: checked here, delivered when read from the log -------------------

    def say(
        self, user: User, text: str, room: str | None = None, notice: bool = False
    ) -> None:
        found = self.speaking_room(user, room)
        self._talk("say", user, found, text, notice)

    def act(self, user: User, text: str, room: str | None = None) -> None:
        found = self.speaking_room(user, room)
        self._talk("act", user, found, text, False)

    def _talk(self, kind: str, user: User, room: Room, text: str, notice: bool) -> None:
        if not self.up:
            raise ChatError(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_TEXT)
        entry: dict[str, Wire] = {
            "k": kind,
            "u": uid_of(user),
            "r": room.key,
            "t": text,
        }
        if notice:
            entry["x"] = 1
        _await_echo(user, entry)
        self.publisher.publish(entry)

    def tell(
        self,
        user: User,
        nick: str,
        text: str,
        notice: bool = False,
        action: bool = False,
    ) -> None:
        recipient = self.user(nick)
        if not self.up:
            raise ChatError(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_TEXT)
        entry: dict[str, Wire] = {
            "k": "tell",
            "u": uid_of(user),
            "to": uid_of(recipient),
            "t": text,
        }
        if notice:
            entry["x"] = 1
        if action:
            entry["a"] = 1
        _await_echo(user, entry)
        self.publisher.publish(entry)

    def next_stamp(self, ms: int, seq: int) -> int:
        """The history id of a message at log position (ms, seq): same on every node."""
        stamp = ms * 1000 + seq
        if stamp <= self.last_stamp:
            stamp = self.last_stamp + 1
        self.last_stamp = stamp
        return stamp

    def apply_talk(self, entry: dict[str, Wire], ms: int, seq: int) -> None:
        """A say or act read from the log: deliver it to this node's members."""
        user = self.by_uid.get(entry["u"])
        room = self.rooms.get(entry["r"])
        if user is None or room is None:
            return  # gone meanwhile: every replica drops it alike
        try:
            self.check_speaker(room, user)
        except ChatError:
            return  # banned or moderated meanwhile (the same on every node)
        kind = Kind.ACTION if entry["k"] == "act" else Kind.MESSAGE
        msg_id, time = 0, 0.0
        if self.history is not None:
            msg_id, time = self.next_stamp(ms, seq), ms / 1000
            if not is_remote(user):  # the speaker's node keeps it, once
                self.history.record_at(
                    room.key, kind, user.nick, entry["t"], msg_id, time
                )
        event: Event
        if kind is Kind.ACTION:
            event = Action(room.name, user.nick, entry["t"], id=msg_id, time=time)
        else:
            notice = bool(entry.get("x"))
            event = Message(
                room.name, user.nick, entry["t"], notice, id=msg_id, time=time
            )
        # Only this node's members: the others' nodes deliver to them.
        local = room.local
        if local is None:
            local = room.local = [
                member for member in room.members.values() if not is_remote(member)
            ]
        deliver_to(local, event)

    def apply_tell(self, entry: dict[str, Wire], ms: int, seq: int) -> None:
        """A private message read from the log: to the recipient, and the sender."""
        user = self.by_uid.get(entry["u"])
        recipient = self.by_uid.get(entry["to"])
        if user is None or recipient is None:
            return
        action = bool(entry.get("a"))
        msg_id, time = 0, 0.0
        # Kept when a side is identified (docs/protocol.md, Private history),
        # under an id from the log, the same on every node; by the sender's node.
        if self.history is not None and (user.account or recipient.account):
            msg_id, time = self.next_stamp(ms, seq), ms / 1000
            if not is_remote(user):
                kind = Kind.ACTION if action else Kind.MESSAGE
                name = user.account or user.nick
                self.history.record_private_at(
                    party_of(user),
                    party_of(recipient),
                    kind,
                    name,
                    entry["t"],
                    msg_id,
                    time,
                )
        event = Private(
            user.nick,
            recipient.nick,
            entry["t"],
            bool(entry.get("x")),
            action,
            id=msg_id,
            time=time,
        )
        deliver_to([recipient] if recipient is user else [recipient, user], event)

    # -- applying ops read from the log ----------------------------------------

    def apply_ops(self, ops: list[Op], node: str) -> None:
        """Apply a turn's (or a lone change's) ops, published by node."""
        with self.applying():
            for op in ops:
                try:
                    self._apply_op(op, node)
                except ChatError as error:
                    # Cannot happen while replicas agree; say so rather than stop.
                    self.log.warn(
                        "cluster op {op} refused here: {error}",
                        op=op[0],
                        error=error.text,
                    )
                except Exception:
                    self.log.failure("cluster op {op} failed", op=op[0])

    def _apply_op(self, op: Op, node: str) -> None:
        name, uid, *args = op
        if name == "register":
            if uid in self.by_uid:
                return  # our own, applied in its turn
            nick, username, realname, host, account = args
            client: IChatClient = RemoteClient(uid, node, self.publisher)
            self.register(
                nick,
                client,
                username=username,
                realname=realname,
                host=host,
                account=account,
            )
            return
        if name == "forget_account":
            self.forget_account(args[0])
            return
        user = self.by_uid.get(uid)
        if user is None:
            return  # gone already
        match name:
            case "rename":
                self.rename(user, args[0])
            case "quit":
                self.quit(user, args[0])
            case "away":
                self.set_away(user, args[0])
            case "account":
                self.set_account(user, args[0])
                if not is_remote(user):  # a reservation ends (chatd.model.accounts)
                    Chat.nick_taken(self, user)
            case "join":
                self.join(user, args[0], args[1])
            case "part":
                self.part(user, args[0], args[1])
            case "topic":
                self.set_topic(user, args[0], args[1])
            case "modes":
                changes = [Change(letter, on, arg) for letter, on, arg in args[1]]
                self.change_modes(user, args[0], changes)
            case "kick":
                self.kick(user, args[0], args[1], args[2])
            case "invite":
                self.invite(user, args[0], args[1])
            case "register_room":
                self.register_room(user, args[0])
            case "unregister_room":
                self.unregister_room(user, args[0])
            case _:
                self.log.warn("unknown cluster op {op}", op=name)

    def drop_node(self, node: str, reason: str) -> list[str]:
        """Quit every user of node (lost or left); return their nicknames."""
        gone = [
            user
            for user in self.users.values()
            if isinstance(user.client, RemoteClient) and user.client.node == node
        ]
        with self.applying():
            for user in gone:
                self.quit(user, reason)
        return [user.nick for user in gone]


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
