"""The one declaration of the model's state-changing operations a cluster replicates.

OPERATIONS lists every public Chat method that changes shared state, each
with its name in the log. From it, and from nothing else:

- ClusterChat's methods are made (chatd.cluster.replica, ReplicatedChat):
  each records or publishes its call as an Op and runs Chat's method;
- the apply side reads an Op back (Operation.arguments) and calls the same
  method on every other node.

An Op names its subject (the user, or for register the connection) by the
uid that never changes, and spells the other arguments in the order of the
Chat method's parameters, as JSON values (Codec: how a parameter that is not
one is spelled). So the wire of an op is [name, uid, arguments...], as it
was before this table (docs/cluster.md, The log's entries).

NOT_REPLICATED is every other public Chat method, with why it needs no op:
tests/test_cluster_ops.py fails when a public Chat method is in neither, so
a new method that changes state cannot be forgotten here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chatd.model.chat import Chat
from chatd.model.room_rules import Change

# A value decoded from the log's JSON: dicts, lists, str, int, float, bool, None.
Wire = Any


@dataclass(frozen=True, slots=True)
class Op:
    """One change of shared state in the log: operation, subject, arguments."""

    name: str  # the operation's name in the log (Operation.wire)
    uid: str | None  # the subject's uid; None for an operation without one
    args: tuple[Wire, ...]  # the other arguments, in the method's order

    def to_json(self) -> list[Wire]:
        """[name, uid, arguments...]."""
        return [self.name, self.uid, *self.args]

    @classmethod
    def from_json(cls, data: list[Wire]) -> Op:
        """The Op that to_json spelled as data."""
        name, uid, *args = data
        return cls(name, uid, tuple(args))


@dataclass(frozen=True, slots=True)
class Codec:
    """How a parameter that is not a JSON value is spelled in an Op."""

    prepare: Callable[[Any], Any]  # the value the call runs with (once, up front)
    to_json: Callable[[Any], Wire]
    from_json: Callable[[Wire], Any]


# change_modes' changes: any iterable, run as a list, spelled [letter, on, arg].
CHANGES = Codec(
    prepare=list,
    to_json=lambda changes: [[c.letter, c.on, c.arg] for c in changes],
    from_json=lambda spelled: [Change(letter, on, arg) for letter, on, arg in spelled],
)

NO_CODECS: Mapping[str, Codec] = MappingProxyType({})


@dataclass(frozen=True)
class Operation:
    """A state-changing Chat method, as the cluster replicates it.

    subject: the parameter the Op names by uid: a User ("user"), the
    connection being registered ("client"), or none (None).
    """

    function: Callable[..., Any]  # Chat's own method
    wire: str  # its name in the log; never changes (older nodes read it)
    subject: str | None = "user"
    codecs: Mapping[str, Codec] = field(default_factory=lambda: NO_CODECS)
    name: str = field(init=False)  # the method's name
    names: tuple[str, ...] = field(init=False)  # its parameters, self left out
    # The other parameters, in order, and the defaults of those that have one.
    parameters: tuple[str, ...] = field(init=False)
    defaults: Mapping[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        signature = inspect.signature(self.function)
        names = [name for name in signature.parameters if name != "self"]
        defaults = {
            name: parameter.default
            for name, parameter in signature.parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        object.__setattr__(self, "name", self.function.__name__)
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(
            self, "parameters", tuple(n for n in names if n != self.subject)
        )
        object.__setattr__(self, "defaults", MappingProxyType(defaults))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults filled in, prepared to run."""
        arguments = dict(self.defaults)
        arguments.update(zip(self.names, args, strict=False))
        arguments.update(kwargs)
        for name, codec in self.codecs.items():
            arguments[name] = codec.prepare(arguments[name])
        return arguments

    def op(self, arguments: dict[str, Any], uid: str | None) -> Op:
        """The Op of a call with arguments (bind), its subject's uid given."""
        codecs = self.codecs
        return Op(
            self.wire,
            uid,
            tuple(
                codecs[name].to_json(arguments[name])
                if name in codecs
                else arguments[name]
                for name in self.parameters
            ),
        )

    def arguments(self, op: Op, subject: object) -> dict[str, Any]:
        """The arguments to call the method with for op, read back from the log."""
        if len(op.args) != len(self.parameters):
            raise ValueError(
                f"op {op.name} has {len(op.args)} arguments, "
                f"{len(self.parameters)} expected"
            )
        codecs = self.codecs
        arguments = {
            name: codecs[name].from_json(value) if name in codecs else value
            for name, value in zip(self.parameters, op.args, strict=True)
        }
        if self.subject is not None:
            arguments[self.subject] = subject
        return arguments


# Every state-changing model operation a cluster replicates: the one table.
OPERATIONS: tuple[Operation, ...] = (
    Operation(Chat.register, "register", subject="client"),
    Operation(Chat.rename, "rename"),
    Operation(Chat.quit, "quit"),
    Operation(Chat.set_away, "away"),
    Operation(Chat.set_account, "account"),
    Operation(Chat.set_invisible, "invisible"),  # new in this version
    Operation(Chat.join, "join"),
    Operation(Chat.part, "part"),
    Operation(Chat.set_topic, "topic"),
    Operation(Chat.change_modes, "modes", codecs={"changes": CHANGES}),
    Operation(Chat.kick, "kick"),
    Operation(Chat.invite, "invite"),
    Operation(Chat.register_room, "register_room"),
    Operation(Chat.unregister_room, "unregister_room"),
    Operation(Chat.forget_account, "forget_account", subject=None),
    Operation(Chat.add_server_ban, "kline"),  # new in this version
    Operation(Chat.lift_server_ban, "unkline"),  # new in this version
    # Deleting a kept message (chatd.model.redaction): new in this version.
    Operation(Chat.delete_message, "delete_message"),
    Operation(Chat.delete_private_message, "delete_private_message"),
    Operation(Chat.mark_read, "mark_read"),  # new in version 3 (read markers)
    # A user's connections on several nodes (docs/cluster.md, Several devices
    # on a cluster): how many a node holds, and always-on, which every node
    # consults when the last one goes. New in this version.
    Operation(Chat.set_connections, "connections"),
    Operation(Chat.set_always_on, "always_on"),
    # A notice for one user, delivered by the node that holds it (a guest
    # renamed because its account logged in on another node). New in round six.
    Operation(Chat.notify, "notify"),
)

# The operations by their name in the log (the apply side).
BY_WIRE: Mapping[str, Operation] = MappingProxyType(
    {operation.wire: operation for operation in OPERATIONS}
)

_TALK = "talk: checked at once, then a talk entry every node delivers (Talk, Tell, Tag)"
_READS = "reads only"

# Every other public Chat method, and why no op replicates it.
NOT_REPLICATED: Mapping[str, str] = MappingProxyType(
    {
        "say": _TALK,
        "act": _TALK,
        "tell": _TALK,
        "send_tags": _TALK,
        "kill": "closes the target's connection: a RemoteClient asks its node "
        "(a close entry), whose quit is then replicated",
        "kline": "adds through add_server_ban (an op), then closes the users it "
        "matches as kill does: each quit is an op of its own",
        "server_ban_list": _READS,
        "server_ban_for_address": _READS,
        "server_ban_for_account": _READS,
        "check_server_bans": _READS,
        "nick_taken": "tells this node's nick watchers (the accounts' reservation "
        "clock), which are the user's own node's",
        # Several devices (chatd.model.devices): a user's connections are its
        # own node's; on the others it is one user whichever it has.
        "attach": "adds a connection held by this node; the count of the "
        "user's connections here goes through set_connections (replicated)",
        "drop_connection": "a connection of this node closed: the count of the "
        "user's connections here goes through set_connections, or a lone one's "
        "quit through quit (both replicated)",
        "check_always_on": _READS,
        "changing": "runs a change where it may be made: a cluster node in a turn "
        "of its own, whose ops are then replicated",
        "away_reply": "who was told of an away message is the sender's node's: "
        "a private message is delivered by each node to its own users",
        "user": _READS,
        "room": _READS,
        "room_sizes": _READS,
        "neighbours": _READS,
        "current_room": _READS,
        "check_nick": _READS,
        "speaking_room": _READS,
        "check_speaker": _READS,
        "is_server_operator": _READS,
        "check_server_operator": _READS,
        "reconfigure": "node-local: each node applies its own config file when it "
        "is reloaded (chatd.ops.reload; docs/running.md)",
        "is_operator": _READS,
        "is_founder": _READS,
        "is_invited": _READS,
        "may_see": _READS,
        "may_read": _READS,
        "hidden_rooms": _READS,
        "visible_rooms": _READS,
        "visible_room": _READS,
        "marker": _READS,
        "marker_of": _READS,
        "account_users": _READS,
    }
)
