"""Phase: where a connection is in its life (shared by the connection's parts)."""

from __future__ import annotations

from enum import Enum, auto


class Phase(Enum):
    """Where a connection is in its life."""

    AWAITING_NICK = auto()  # greeted; the client has yet to choose a nickname
    REGISTERED = auto()  # the client has a user in the chat
    CLOSING = auto()  # goodbye said (or aborted); nothing more is written
