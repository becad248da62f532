"""The cluster log's entries, typed: one immutable class per kind.

Each is a NamedTuple rather than a frozen dataclass: one Talk is made per
message on its node and read once per message on every node, and a frozen
dataclass's __init__ (an object.__setattr__ per field) costs four times a
tuple's. Like the model's events, they are never changed once made; nodes
tell them apart by type (type(entry) is Talk), never by comparing them.

Each spells itself as the JSON object the log holds (to_json) and is read
back from it (from_json), as Synapse's replication commands are. The JSON
is the log's wire, shared by nodes of different versions during an upgrade:
its keys ("k" the kind, then short field names) are those of docs/cluster.md,
The log's entries, and a field is left out when it has its default.
entry_from_json reads any entry; it returns None for a kind this version
does not know (a newer node's), which the node skips. entry_text spells an
entry as the log's JSON text.

Talk is the hot path (a message: once on its node, once on every node), so it
skips what the others pay: entry_text spells a Talk in one f-string (Talk.to_text,
no dict), and a node applies a say or act read from the log straight from its
JSON (chatd.cluster.node, Node.receive), without making a Talk, unless it must
wait behind a turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import NamedTuple

from chatd.cluster.ops import Op, Wire
from chatd.model.client_tags import NO_TAGS, Tags


class Talk(NamedTuple):
    """say or act (/me): a room message, checked by the speaker's node."""

    action: bool  # act rather than say
    uid: str  # the speaker
    room: str  # the room's key
    text: str
    notice: bool = False
    echo: str | None = None  # answers a labeled IRC command (chatd.cluster.doors)
    tags: Tags = NO_TAGS  # client tags (a reply's); "g": [[name, value], ...]

    def to_json(self) -> dict[str, Wire]:
        data: dict[str, Wire] = {
            "k": "act" if self.action else "say",
            "u": self.uid,
            "r": self.room,
            "t": self.text,
        }
        if self.notice:
            data["x"] = 1
        if self.echo is not None:
            data["w"] = self.echo
        if self.tags:
            data["g"] = [list(pair) for pair in self.tags]
        return data

    def to_text(self) -> str:
        """to_json's JSON text, spelled at once (entry_text): once per message."""
        # What _encode(self.to_json()) gives, each string quoted by the
        # function json quotes it with.
        kind = "act" if self.action else "say"
        notice = ',"x":1' if self.notice else ""
        echo = "" if self.echo is None else ',"w":' + encode_basestring(self.echo)
        tags = (
            ',"g":' + _encode([list(pair) for pair in self.tags]) if self.tags else ""
        )
        return (
            f'{{"k":"{kind}","u":{encode_basestring(self.uid)},'
            f'"r":{encode_basestring(self.room)},'
            f'"t":{encode_basestring(self.text)}{notice}{echo}{tags}}}'
        )

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Talk:
        # The tuple made at once, without NamedTuple's __new__ (a call of
        # its own). A node that need not queue a say or act reads its JSON
        # itself (Node.receive) and makes none.
        return tuple.__new__(
            cls,
            (
                data["k"] == "act",
                data["u"],
                data["r"],
                data["t"],
                "x" in data,  # as Node.receive reads it
                data.get("w"),
                read_tags(data),
            ),
        )


class Tell(NamedTuple):
    """A private message (/msg, IRC PRIVMSG or NOTICE to a nick)."""

    uid: str  # the sender
    to: str  # the recipient's uid
    text: str
    notice: bool = False
    action: bool = False
    echo: str | None = None
    tags: Tags = NO_TAGS  # as Talk's

    def to_json(self) -> dict[str, Wire]:
        data: dict[str, Wire] = {
            "k": "tell",
            "u": self.uid,
            "to": self.to,
            "t": self.text,
        }
        if self.notice:
            data["x"] = 1
        if self.action:
            data["a"] = 1
        if self.echo is not None:
            data["w"] = self.echo
        if self.tags:
            data["g"] = [list(pair) for pair in self.tags]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Tell:
        return tuple.__new__(  # as Talk's
            cls,
            (
                data["u"],
                data["to"],
                data["t"],
                bool(data.get("x")),
                bool(data.get("a")),
                data.get("w"),
                read_tags(data),
            ),
        )


class Tag(NamedTuple):
    """Client tags alone (typing, a reaction: IRC's TAGMSG), checked by the
    sender's node; never kept."""

    uid: str  # the sender
    to: str  # a room's key, or the recipient's uid when private
    private: bool
    tags: Tags

    def to_json(self) -> dict[str, Wire]:
        data: dict[str, Wire] = {
            "k": "tag",
            "u": self.uid,
            "to": self.to,
            "g": [list(pair) for pair in self.tags],
        }
        if self.private:
            data["p"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Tag:
        return cls(data["u"], data["to"], bool(data.get("p")), read_tags(data))


def read_tags(data: dict[str, Wire]) -> Tags:
    """An entry's client tags ("g"), as pairs; none when it has none."""
    spelled = data.get("g")
    if not spelled:
        return NO_TAGS
    return tuple((str(name), str(value)) for name, value in spelled)


class Turn(NamedTuple):
    """A line of connection uid on node that may change shared state: its place."""

    node: str
    uid: str

    def to_json(self) -> dict[str, Wire]:
        return {"k": "turn", "n": self.node, "u": self.uid}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Turn:
        return cls(data["n"], data["u"])


class Effects(NamedTuple):
    """What a turn changed (its ops), applied at the turn's place; not a place."""

    node: str
    turn: str  # the turn entry's id
    ops: tuple[Op, ...]

    def to_json(self) -> dict[str, Wire]:
        return {
            "k": "fx",
            "n": self.node,
            "turn": self.turn,
            "ops": [op.to_json() for op in self.ops],
        }

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Effects:
        return cls(data["n"], data["turn"], _ops(data["ops"]))


class Changes(NamedTuple):
    """Changes made outside a turn (a user dropped), applied where read."""

    node: str
    ops: tuple[Op, ...]

    def to_json(self) -> dict[str, Wire]:
        return {"k": "op", "n": self.node, "ops": [op.to_json() for op in self.ops]}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Changes:
        return cls(data["n"], _ops(data["ops"]))


class Hello(NamedTuple):
    """A node joins: the others push it a snapshot."""

    node: str

    def to_json(self) -> dict[str, Wire]:
        return {"k": "hello", "node": self.node}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Hello:
        return cls(data["node"])


class Left(NamedTuple):
    """A node stopped cleanly: its remaining users quit."""

    node: str

    def to_json(self) -> dict[str, Wire]:
        return {"k": "left", "node": self.node}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Left:
        return cls(data["node"])


class Lost(NamedTuple):
    """A node's heartbeat expired: its users quit, its turns without fx drop."""

    node: str

    def to_json(self) -> dict[str, Wire]:
        return {"k": "lost", "node": self.node}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Lost:
        return cls(data["node"])


class Close(NamedTuple):
    """Ask node to close its connection uid (a /kill from elsewhere)."""

    node: str
    uid: str
    reason: str

    def to_json(self) -> dict[str, Wire]:
        return {"k": "close", "node": self.node, "u": self.uid, "r": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Wire]) -> Close:
        return cls(data["node"], data["u"], data["r"])


Entry = Talk | Tell | Tag | Turn | Effects | Changes | Hello | Left | Lost | Close

# What a node keeps while Redis is away and appends once back (chatd.cluster.redis):
# changes that happened, a turn's fx (the others wait for it), turns, a clean stop.
# A set of classes, asked type(entry) in it: one look-up per entry published.
KEPT_WHILE_DOWN: frozenset[type[Entry]] = frozenset({Changes, Effects, Left, Turn})

# The log's JSON text of an entry: compact, non-ASCII kept as it is.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _ops(data: list[list[Wire]]) -> tuple[Op, ...]:
    return tuple(Op.from_json(op) for op in data)


# Each kind's reader, by its "k"; a plain dict, read once per entry on every node.
READERS: dict[str | None, Callable[[dict[str, Wire]], Entry]] = {
    "say": Talk.from_json,
    "act": Talk.from_json,
    "tell": Tell.from_json,
    "tag": Tag.from_json,
    "turn": Turn.from_json,
    "fx": Effects.from_json,
    "op": Changes.from_json,
    "hello": Hello.from_json,
    "left": Left.from_json,
    "lost": Lost.from_json,
    "close": Close.from_json,
}


def entry_text(entry: Entry) -> str:
    """The JSON text the log holds for entry: its to_json, encoded."""
    if type(entry) is Talk:  # the hot path: no dict made
        return entry.to_text()
    return _encode(entry.to_json())


def entry_from_json(data: dict[str, Wire]) -> Entry | None:
    """The entry data spells; None for a kind this version does not know."""
    read = READERS.get(data.get("k"))
    return None if read is None else read(data)
