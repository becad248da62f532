"""A conversation of the desktop client: a room, a person or the server.

Plain data: chatd.client.conversations (ChatState) keeps the conversations and
turns the server's lines into entries; chatd.client.scrollback merges what history
brings into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from chatd.model.names import fold

SCROLLBACK = 2000  # entries kept per conversation


class EntryKind(Enum):
    """How an entry in a conversation is shown."""

    MESSAGE = auto()  # MSG, PRIV, and HISTORY lines of MSG
    ACTION = auto()  # ACTION (/me)
    NOTICE = auto()  # JOIN, PART, QUIT, RENAME: quiet
    INFO = auto()  # INFO, HELLO, WELCOME, USERS and ROOMS answers, BYE
    ERROR = auto()  # ERR, lost connections, and what this client refused to send
    MARKER = auto()  # a quiet line above messages from history


@dataclass(frozen=True, slots=True)
class ScrollbackEntry:
    """One line of a conversation's scrollback."""

    when: float  # seconds since the epoch; the view shows it in local time
    kind: EntryKind
    text: str
    nick: str | None = None  # the sender of a MESSAGE or ACTION
    own: bool = False  # sent by this user
    id: int | None = None  # a room message's history id, when the server gave it
    # Deleted since (DELETED, docs/protocol.md): text says so, shown greyed.
    deleted: bool = False


class ConversationKind(Enum):
    """What a conversation is with: the server itself, a room or one person."""

    SERVER = auto()
    ROOM = auto()
    PRIVATE = auto()
    OTHERS = auto()  # private messages from people past MAX_PRIVATE, together


@dataclass(eq=False)
class Conversation:
    """A room, a private conversation or the server's notices, and its scrollback."""

    key: str  # folded name: "#games", "bob", or SERVER_KEY
    name: str  # display name, as the server spells it
    kind: ConversationKind
    # Oldest first; room messages merged by id (chatd/client/scrollback.py).
    scrollback: list[ScrollbackEntry] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)  # folded -> display nick
    unread: int = 0  # messages that arrived while another conversation was shown
    joined: bool = True  # False for a room while disconnected
    limit: int = SCROLLBACK  # entries kept; loading older pages raises it
    ids: set[int] = field(default_factory=set)  # ids of the messages in scrollback
    join_entry: ScrollbackEntry | None = (
        None  # the notice of the user's latest own JOIN
    )
    last_seen: int | None = None  # after a drop: the last id seen, until caught up
    gap_pages: int = 0  # pages asked for to catch up since the last reconnect
    history_done: bool = False  # the oldest page was loaded: nothing before it
    loading: bool = False  # a /history for it is on its way
    # Rooms people run (docs/protocol.md): the topic, and who runs the room
    # and who is voiced (folded nicks, from OPS/VOICES and OP/DEOP/...).
    topic: str = ""
    topic_by: str = ""  # who set it
    # Just joined: a TOPIC now is the topic as it stands, not news (until the
    # answer to the /who sent on joining, which comes after it).
    topic_standing: bool = False
    ops: set[str] = field(default_factory=set)
    voiced: set[str] = field(default_factory=set)
    kicked: bool = False  # put out by an operator: not joined again by itself
    # The account's read marker (READ; chatd/client/read_markers.py), the last
    # /read sent for it, and the id where unread messages begin (shown once).
    read_id: int = 0
    sent_read: int = 0
    new_from: int | None = None

    def member_names(self) -> list[str]:
        """Return the members' nicknames, sorted as a person looks them up."""
        return sorted(self.members.values(), key=fold)

    def mark(self, nick: str) -> str:
        """The mark before a member's name: @ for an operator, + for voiced."""
        key = fold(nick)
        return "@" if key in self.ops else "+" if key in self.voiced else ""
