"""The protocol's error codes and the exception that carries one."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code of docs/protocol.md; the value is the word sent after ERR."""

    NICK_TAKEN = "nick-taken"
    NICK_INVALID = "nick-invalid"
    NOT_REGISTERED = "not-registered"
    UNKNOWN_COMMAND = "unknown-command"
    BAD_ARGS = "bad-args"
    NO_SUCH_NICK = "no-such-nick"
    NO_SUCH_ROOM = "no-such-room"
    NOT_IN_ROOM = "not-in-room"
    ROOM_INVALID = "room-invalid"
    TOO_LONG = "too-long"
    BAD_ENCODING = "bad-encoding"
    FLOOD = "flood"
    SERVER_FULL = "server-full"
    # docs/protocol.md version 2: /history on a server that keeps none (or whose
    # history cannot be read now; the text says why).
    NO_HISTORY = "no-history"
    # chatd's extension (docs/protocol.md): a /join past --max-rooms-per-user
    # or, for a new room, past --max-rooms.
    TOO_MANY_ROOMS = "too-many-rooms"
    # chatd's extension for rooms people run (docs/protocol.md, Rooms people run).
    NOT_OPERATOR = "not-operator"  # only a room's (or the server's) operators may
    BANNED = "banned"  # a ban of the room matches you: no join, no speaking
    INVITE_ONLY = "invite-only"  # the room is +i and nobody invited you
    WRONG_KEY = "wrong-key"  # the room has a key (+k) and you gave another, or none
    ROOM_FULL = "room-full"  # the room has its limit (+l) of members
    MODERATED = "moderated"  # the room is +m: only operators and voiced speak
    NOT_MEMBER = "not-member"  # the person you named is not in the room
    ALREADY_IN_ROOM = "already-in-room"  # /invite of someone in the room already
    BAN_LIST_FULL = "ban-list-full"  # the room has as many bans as it may
    # ... and for accounts (docs/protocol.md, Accounts).
    NOT_IDENTIFIED = "not-identified"  # that needs you identified to an account
    AUTH_FAILED = "auth-failed"  # wrong password, or no such account: never which
    THROTTLED = "throttled"  # too many wrong passwords from you or for the account
    BAD_PASSWORD = "bad-password"  # too short or long, or the two did not match
    ALREADY_REGISTERED = "already-registered"  # the nickname or room has an owner
    # ... and for several devices (docs/protocol.md, Devices (version 3)).
    TOO_MANY_DEVICES = "too-many-devices"  # the account has --max-devices connections
    UNREGISTERED = "unregistered"  # the room is not registered (/unregister #room)
    # ... and for clusters (docs/cluster.md): this node cannot reach the others.
    CLUSTER_DOWN = "cluster-down"


class ChatError(Exception):
    """A refusal: the request changed nothing, and the client is told why."""

    def __init__(
        self,
        code: ErrorCode,
        text: str,
        *,
        room: str = "",
        nick: str = "",
        mode: str = "",
        arg: str = "",
    ) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text
        # What the refusal is about, for a door whose errors name it (IRC's
        # numerics carry the room, the other member or the mode letter).
        self.room = room
        self.nick = nick
        self.mode = mode
        self.arg = arg  # the mode's argument that was refused

    def __str__(self) -> str:
        return f"{self.code.value} {self.text}"
