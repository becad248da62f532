"""What happens in the chat, as events: one object handed to every recipient.

The model (chatd.model.chat, chatd.model.moderation) makes them; each door renders them
its own way (chatd.line.wire, chatd.irc.render). A user's connection receives
them as an IChatClient.
"""

from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Attribute, Interface

from chatd.model.client_tags import NO_TAGS, Tags
from chatd.model.room_rules import Change


@dataclass(frozen=True, slots=True)
class Message:
    """Someone said text in a room.

    notice: an IRC NOTICE (never answered by bots). id and time: the
    message's history id and when it was received (the clock's seconds); 0
    when the server keeps no history. tags: the client tags it carries
    (chatd.model.client_tags: a reply's +draft/reply), passed on as given.
    """

    room: str
    nick: str
    text: str
    notice: bool = False
    id: int = 0
    time: float = 0.0
    tags: Tags = NO_TAGS


@dataclass(frozen=True, slots=True)
class Action:
    """Someone acted (/me) in a room; id, time and tags as for Message."""

    room: str
    nick: str
    text: str
    id: int = 0
    time: float = 0.0
    tags: Tags = NO_TAGS


@dataclass(frozen=True, slots=True)
class Private:
    """A private message from sender to recipient.

    notice: an IRC NOTICE; action: a /me (CTCP ACTION) sent to one person.
    id and time as for Message: the history's when it is kept, when at least
    one side is identified (docs/protocol.md, Private history); else a live
    id (Chat._live_id: below zero) that names it for replies and reactions, and that no
    history holds. tags as for Message.
    """

    sender: str
    recipient: str
    text: str
    notice: bool = False
    action: bool = False
    id: int = 0
    time: float = 0.0
    tags: Tags = NO_TAGS


@dataclass(frozen=True, slots=True)
class Tagged:
    """Someone sent client tags alone to a room or a person (IRC's TAGMSG).

    Typing, or a reaction (chatd.model.client_tags). target: the room's
    name, or the recipient's nickname when private. id and time: a live id
    (Chat._live_id: below zero) and the clock's time; never kept in history.
    """

    target: str
    nick: str
    tags: Tags
    private: bool = False
    id: int = 0
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class Joined:
    """Someone joined a room; away: the joiner's away text then ("" if here),
    so that the room learns who joined away (docs/protocol.md, Away on join)."""

    room: str
    nick: str
    away: str = ""


@dataclass(frozen=True, slots=True)
class Parted:
    """Someone left a room, with a reason that may be empty."""

    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quit:
    """Someone left the chat altogether."""

    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Renamed:
    """Someone changed nickname."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Away:
    """Someone went away with a message, or came back (text is empty).

    A door without a way to show it (the line protocol) shows nothing.
    """

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class TopicChanged:
    """Someone set a room's topic (text "" clears it); time is the clock's."""

    room: str
    nick: str
    text: str
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class ModesChanged:
    """Someone (or the server, by its name) changed room modes or member status."""

    room: str
    by: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Kicked:
    """Someone was put out of a room by an operator, with a reason."""

    room: str
    nick: str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Invited:
    """Someone was invited to a room (only the invitee receives it)."""

    room: str
    nick: str
    by: str


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Someone identified as account, or stopped being identified ("")."""

    nick: str
    account: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice for one user from the server or one of its services.

    service: "" for the server itself, or "NickServ" for what the accounts
    say (IRC shows it as a NOTICE from NickServ; the line protocol as INFO).
    """

    nick: str
    text: str
    service: str = ""


@dataclass(frozen=True, slots=True)
class Deleted:
    """A kept message was deleted (docs/protocol.md, Deleting messages).

    target: the room's name; for a private message, the nickname the
    deleter named (the other side of their conversation), as PRIV names the
    recipient. by: the deleter's nickname; reason may be empty.
    """

    target: str
    id: int
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReadMoved:
    """An account's read marker for target moved to id (docs/protocol.md, Read
    markers and catch-up); time: that message's, in ms since 1970 UTC.

    target as shown: a room's name, or the other side of a private conversation.
    """

    target: str
    id: int
    time: int


Event = (
    Message
    | Action
    | Private
    | Tagged
    | Joined
    | Parted
    | Quit
    | Renamed
    | Away
    # Rooms people run and accounts (chatd.model.moderation).
    | TopicChanged
    | ModesChanged
    | Kicked
    | Invited
    | AccountChanged
    | Notice
    | Deleted
    | ReadMoved
)


class IChatClient(Interface):
    """The connection of one user, as the chat sees it."""

    identify_hint = Attribute(
        "How this user identifies for a registered nickname, in the words of"
        " the door it came through: the model's notices quote it"
        " (chatd.doors, Door.identify_hint)"
    )

    def deliver(event: Event) -> None:
        """Pass one event on to the user; must not raise or call back into Chat."""

    def close(reason: str) -> None:
        """Say goodbye with reason and end the connection."""
