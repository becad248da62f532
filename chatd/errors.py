"""The protocol's error codes and the exception that carries one."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code of PROTOCOL.md; the value is the word sent after ERR."""

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
    # PROTOCOL.md version 2: /history on a server that keeps none (or whose
    # history cannot be read now; the text says why).
    NO_HISTORY = "no-history"
    # chatd's extension (docs/protocol.md): a /join past --max-rooms-per-user
    # or, for a new room, past --max-rooms.
    TOO_MANY_ROOMS = "too-many-rooms"


class ChatError(Exception):
    """A refusal: the request changed nothing, and the client is told why."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return f"{self.code.value} {self.text}"
