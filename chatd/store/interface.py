"""What the chat asks of a history store, and what a store answers with.

docs/protocol.md, History (v2): what is said in rooms (MSG and ACTION) is kept,
each message with an id that is unique within its room and orders its
history, and the time the server received it. The model (chatd.model.chat) records
through IHistory and the doors read through it; neither knows how or where
the store keeps things (chatd.store.sqlite, chatd.store.memory).

An extension (docs/protocol.md, Private history): a private message is kept
too when at least one of its two sides is identified, under the pair of
their parties: an identified side's account (folded name), never its
nickname (a nickname can pass to another person, an account cannot); a side
that is not identified by its folded nickname behind NICK_PARTY, so that only
the identified side can ever read it. Its id comes from the same sequence as
rooms' ids, and retention is the same.

Another (docs/protocol.md, Deleting messages): a message can be deleted.
Its text is forgotten and a tombstone keeps its id (SQLite and memory: the
entry with an empty text, so no message is empty; Redis: the id in a set):
reads leave tombstones out, while an id that was deleted is still a `before`
that pages on. Each message keeps its author for that
(chatd.model.redaction): who may delete it as its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Protocol

from zope.interface import Attribute, Interface

from chatd.config import HISTORY_ACCOUNT_MAX, HISTORY_ROOM_MAX, HISTORY_TOTAL_MAX

if TYPE_CHECKING:  # the model imports this module: no Twisted at run time
    from twisted.internet.defer import Deferred

    from chatd.model.room_rules import RoomRecord
    from chatd.model.server_bans import ServerBan


class Kind(StrEnum):
    """What a kept message was; the value is the word HISTORY lines carry."""

    MESSAGE = "MSG"
    ACTION = "ACTION"


@dataclass(frozen=True, slots=True)
class Entry:
    """One kept message, as read back: oldest first in a list of them."""

    id: int  # unique among all messages, so within the room; orders them
    time: int  # milliseconds since 1970-01-01 UTC, when the server received it
    kind: Kind
    nick: str  # the speaker's nickname at the time
    text: str  # as it was delivered


@dataclass(frozen=True, slots=True)
class Span:
    """Which of a room's messages a query wants: a range of ids, and how many.

    after and before are exclusive bounds on the id (None: no bound). Of the
    messages in range, the newest limit are wanted (newest=True) or the
    oldest limit; either way they are answered oldest first. Ids are the
    positions of messages in the room's one order, so any whole number is a
    bound, whether or not a message has that id (see id_at).
    """

    limit: int
    after: int | None = None
    before: int | None = None
    newest: bool = True


# A bound is kept within a hundredth of itself: the oldest go once a room (or
# the total) holds a hundredth more than its bound, back down to the bound, so
# that a full room costs one deletion per hundredth of its bound written, not
# one per message. A bound below 100 is kept exactly.
SLACK = 100


@dataclass(frozen=True, slots=True)
class Bound:
    """How many messages a store keeps at most; past it the oldest are deleted.

    room: per room, and per private conversation; total: in all, rooms' and
    private together (a store that cannot count all says so in its docs);
    account: per party of private conversations (an account, or a nickname
    not identified), its messages in all of them. 0: no bound. A store holds
    at most a bound and a hundredth of it (SLACK).
    Ids stay as they were: a deleted one is a `before` that is not one of
    the room's ids any more, as after retention.
    """

    room: int = HISTORY_ROOM_MAX
    total: int = HISTORY_TOTAL_MAX
    account: int = HISTORY_ACCOUNT_MAX

    def over_room(self, count: int) -> int:
        """How many of a room's (or conversation's) count messages go now."""
        return _over(count, self.room)

    def over_total(self, count: int) -> int:
        """How many of the count messages kept in all go now."""
        return _over(count, self.total)

    def over_account(self, count: int) -> int:
        """How many of a party's count private messages (all its
        conversations) go now."""
        return _over(count, self.account)


# The bound a store keeps unless told otherwise: the options' defaults.
DEFAULT_BOUND = Bound()


def _over(count: int, most: int) -> int:
    """count less most once count passes most by more than its SLACK; else 0."""
    if not most or count <= most + most // SLACK:
        return 0
    return count - most


def id_at(millis: int) -> int:
    """The position in history of a time (milliseconds since 1970 UTC).

    An id is the time its message was received in microseconds, raised by
    one only where two would be equal or the clock went back (Stamps). So
    the messages received before a millisecond are, but for such a clock,
    exactly those with ids below id_at(it), and those received after it the
    ones from id_at(it + 1) up.
    """
    return millis * 1000


# Leads the party of a side that was not identified: "~" and its folded
# nickname. No nickname, so no account name, can start with it.
NICK_PARTY = "~"


def nick_party(folded_nick: str) -> str:
    """The party of a side that was not identified, by its folded nickname."""
    return NICK_PARTY + folded_nick


def conversation(one: str, other: str) -> tuple[str, str]:
    """The key of the private conversation between two parties.

    A party is an account (its folded name) or nick_party(...). The same
    pair whoever writes: the two in order.
    """
    return (one, other) if one <= other else (other, one)


# docs/protocol.md, Searching history (extension): a search's words match
# whole words of a message, in any case and with or without accents, as
# SQLite's FTS5 unicode61 tokenizer (remove_diacritics 2) splits them: runs of
# letters and digits. A word with several such runs (a link, "don't") is a
# phrase: its runs one after another.
_TOKEN = re.compile(r"[^\W_]+")
_ASCII_TOKEN = re.compile(r"[a-z0-9]+")


@cache
def _accents() -> dict[int, None]:
    """The accents NFKD takes apart, to be dropped (made on first use: ~50 ms)."""
    return {
        point: None for point in range(0x20000) if unicodedata.combining(chr(point))
    }


def search_tokens(text: str) -> list[str]:
    """The words of text as a search matches them: folded, accents taken off."""
    if text.isascii():  # most of chat: no accents to take off, a quicker split
        return _ASCII_TOKEN.findall(text.lower())
    plain = unicodedata.normalize("NFKD", text).translate(_accents())
    return _TOKEN.findall(plain.casefold())


@dataclass(frozen=True, slots=True)
class Search:
    """What a store is asked to search: the phrases, where, and how many.

    The model (chatd.model.search) decides where the asker may search; a
    store answers for exactly the rooms and conversations it is given,
    never more. phrases: each the tokens (search_tokens) of one word, joined
    by spaces; a message matches when it has every phrase. rooms: folded
    room keys; conversations: keys made by conversation(); party: every
    conversation of that party as well. nick: only what that (folded) nick
    said. before and after: exclusive bounds on the id. limit: the newest
    that many are answered, newest first.
    """

    phrases: tuple[str, ...]
    rooms: tuple[str, ...] = ()
    conversations: tuple[tuple[str, str], ...] = ()
    party: str | None = None
    nick: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 20

    def matches(self, entry: Entry) -> bool:
        """Whether entry has every phrase (and is said by nick, if given): the
        rule a store that scans follows, as FTS5 does."""
        if self.nick is not None and not self.matches_nick(entry):
            return False
        text = entry.text
        if text.isascii():  # a word that is not in it at all: no need to split
            lower = text.lower()
            for phrase in self.phrases:
                if any(word not in lower for word in phrase.split(" ")):
                    return False
        said = " " + " ".join(search_tokens(text)) + " "
        return all(f" {phrase} " in said for phrase in self.phrases)

    def matches_nick(self, entry: Entry) -> bool:
        """Whether entry was said by nick (folded as chatd.model.names.fold)."""
        return unicodedata.normalize("NFKC", entry.nick).casefold() == self.nick


@dataclass(frozen=True, slots=True)
class Found:
    """One message a search found, and where: a room's key, or a conversation."""

    entry: Entry
    room: str | None = None  # the folded room; None for a private message
    pair: tuple[str, str] | None = None  # the conversation, for a private one


class SearchTooSlow(Exception):
    """A search ran past the time a store gives one (it found nothing by then)."""


class HistoryUnavailable(Exception):
    """History cannot be read or kept now; reason says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownId(Exception):
    """A `before` id that is not one of the room's messages."""


class IHistory(Interface):
    """A store of what was said in rooms: recorded at once, read later."""

    reason = Attribute(
        "None while history works; otherwise why not, a sentence for users"
    )

    def record(
        room: str, kind: Kind, nick: str, text: str, author: str = ""
    ) -> tuple[int, float]:
        """Keep one message said now in room (a folded room name).

        author: who said it, as chatd.model.redaction names a speaker (the
        account, or the session of a user not identified); "" for nobody.
        Returns its id and its time (the clock's seconds). Never blocks and
        never raises: a store that cannot keep it drops it (see reason).
        """

    def record_at(
        room: str,
        kind: Kind,
        nick: str,
        text: str,
        msg_id: int,
        time: float,
        author: str = "",
    ) -> None:
        """Keep one message under an id and time the caller chose.

        A cluster's event log gives them (chatd.cluster.replica), the same on
        every node; ids must grow within a room, and later record() calls
        carry on above msg_id. Never blocks and never raises, as record.
        """

    def has_history(room: str) -> bool:
        """Tell whether room (folded) may have messages kept; False: surely none."""

    def read(room: str, count: int, before: int | None = None) -> Deferred[list[Entry]]:
        """The room's latest count messages (before the id, if given), oldest first.

        Everything recorded before this call is included and nothing recorded
        after it. Fails with UnknownId when before is not one of the room's
        ids, and with HistoryUnavailable when the store cannot answer.
        """

    def select(room: str, span: Span) -> Deferred[list[Entry]]:
        """The room's messages in span (see Span), oldest first.

        Like read, it sees everything recorded before the call and nothing
        after; it fails only with HistoryUnavailable.
        """

    def latest(rooms: Sequence[str]) -> Deferred[dict[str, Entry]]:
        """The latest message kept of each of rooms (folded) that has one.

        Seen as read sees; fails only with HistoryUnavailable.
        """

    # Private conversations (docs/protocol.md, Private history) between two
    # parties (see conversation()); an Entry's nick is the sender's name: its
    # account as registered, or its nickname at the time if not identified.

    def record_private(
        sender: str, recipient: str, kind: Kind, name: str, text: str
    ) -> tuple[int, float]:
        """Keep one private message from party sender to party recipient.

        name: what is read back as the Entry's nick. Returns its id and time
        as record does, with the same rules: never blocks, never raises.
        """

    def record_private_at(
        sender: str,
        recipient: str,
        kind: Kind,
        name: str,
        text: str,
        msg_id: int,
        time: float,
    ) -> None:
        """Keep one private message under an id and time the caller chose, as
        record_at is to record."""

    def read_private(
        me: str, other: str, count: int, before: int | None = None
    ) -> Deferred[list[Entry]]:
        """The conversation of parties me and other, as read reads a room's."""

    def select_private(me: str, other: str, span: Span) -> Deferred[list[Entry]]:
        """The conversation of parties me and other in span, as select does."""

    def private_latest(me: str) -> Deferred[dict[str, Entry]]:
        """The latest message of each of party me's conversations, by the other
        party (me itself for notes to oneself)."""

    def search(search: Search) -> Deferred[list[Found]]:
        """The newest search.limit messages that match search, newest first.

        Only in the rooms and conversations search names. Fails with
        HistoryUnavailable when the store cannot answer, and with
        SearchTooSlow when a search takes longer than a store allows.
        """

    def forget_private(account: str) -> None:
        """Delete every conversation of party account (it was dropped): in turn,
        so that a read asked for after this never sees them. Never raises."""

    # Deleting one message (docs/protocol.md, Deleting messages). A private
    # message's author is its sender's party (record_private's sender).

    def author(room: str, msg_id: int) -> Deferred[str | None]:
        """The author of the room's message msg_id as recorded ("" if none was);
        None when the room has no such message or it was deleted.

        Seen as read sees; fails only with HistoryUnavailable.
        """

    def private_author(me: str, other: str, msg_id: int) -> Deferred[str | None]:
        """The author (party) of message msg_id of the conversation of me and
        other; None when it has no such message or it was deleted."""

    def delete(room: str, msg_id: int) -> Deferred[bool]:
        """Forget the text of the room's message msg_id, keeping its tombstone.

        In turn: a read asked for after this never sees the text. The store
        leaves no copy of the text where it keeps things (a file's free pages
        included), so that a backup taken after holds none. Fires with
        whether a message was deleted; never fails (a failure is logged).
        """

    def delete_private(me: str, other: str, msg_id: int) -> Deferred[bool]:
        """Forget the text of message msg_id of the conversation of me and
        other, as delete does a room's."""


class Stamps:
    """Ids and times for new messages: ids grow with time and never repeat.

    An id is the time in microseconds, or one more than the last id when
    that is larger (several messages in a microsecond, or a clock stepped
    back). Started after the highest id kept, a restart never gives out an
    id again, even one lost in a crash: those were handed out earlier, at
    smaller times.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def passed(self, msg_id: int) -> None:
        """An id was given out elsewhere (record_at): carry on above it."""
        if msg_id > self.last:
            self.last = msg_id

    def next(self, now: float) -> int:
        """Return the id for a message received at now (seconds)."""
        new = int(now * 1_000_000)
        if new <= self.last:
            new = self.last + 1
        self.last = new
        return new


def millis(seconds: float) -> int:
    """Return a clock time in whole milliseconds, as kept and shown."""
    return int(seconds * 1000)


@dataclass(frozen=True, slots=True)
class Marker:
    """An account's read marker for one target (docs/protocol.md, Read markers).

    Every message of the target up to and including id has been read; time
    is that message's (ms since 1970 UTC, IRC's MARKREAD gives it); name is
    the target as shown: the room's name, or the other side of a private
    conversation (its account as registered, or a nickname).
    """

    id: int
    time: int
    name: str


def keep_marker(
    markers: dict[str, dict[str, Marker]],
    account: str,
    target: str,
    marker: Marker | None,
) -> bool:
    """Put marker in the cache markers (None: take it out), forward only;
    whether that changed anything."""
    kept = markers.get(account)
    if marker is None:
        if kept is None or kept.pop(target, None) is None:
            return False
        if not kept:
            del markers[account]
        return True
    if kept is None:
        kept = markers[account] = {}
    old = kept.get(target)
    if old is not None and old.id >= marker.id:
        return False
    kept[target] = marker
    return True


@dataclass(slots=True)
class AccountRecord:
    """One account: its name as registered, the Argon2 hash, when (ms, UTC)."""

    name: str
    hash: str
    created: int


@dataclass(slots=True)
class AlwaysOnRecord:
    """An always-on user as kept across restarts (docs/protocol.md, Always-on).

    Its nickname, account (as registered), host (what --max-always-on-per-ip
    counts, and bans match) and rooms (names, in the order joined).
    """

    nick: str
    account: str
    host: str
    rooms: list[str]


class AccountStore(Protocol):
    """Where accounts, registered rooms and server bans live.

    Keys are folded names; a server ban's is its mask's key
    (chatd.model.server_bans.server_ban_key).
    """

    accounts: dict[str, AccountRecord]
    rooms: dict[str, RoomRecord]
    server_bans: dict[str, ServerBan]
    # Always-on users by their folded account (read when the store opens).
    always_on: dict[str, AlwaysOnRecord]
    # Read markers: folded account -> target key -> Marker. A target key is a
    # room's folded name, or the other party of a private conversation (see
    # conversation()). Read at start, as accounts are; kept in place.
    markers: dict[str, dict[str, Marker]]
    durable: bool  # False: nothing outlives the daemon

    def save_always_on(self, key: str, record: AlwaysOnRecord | None) -> None:
        """Keep account key's always-on user as record; None: it is not any more."""

    def when_loaded(self, call: Callable[[], None]) -> None:
        """Call call once what the store keeps is read (at once if it is)."""

    def save_account(self, key: str, record: AccountRecord) -> None:
        """Keep account key as record (new or changed)."""

    def delete_account(self, key: str) -> None:
        """Forget account key."""

    def save_room(self, key: str, record: RoomRecord | None) -> None:
        """Keep registered room key as record; None: it is registered no more."""

    def save_server_ban(self, key: str, ban: ServerBan | None) -> None:
        """Keep server ban key as ban; None: it is lifted (or ended)."""

    def save_marker(self, account: str, target: str, marker: Marker | None) -> None:
        """Keep account's marker for target (None: forget it); markers only
        move forward: a kept one with a larger id stays. Never raises."""

    def forget_markers(self, account: str) -> None:
        """Forget every marker of account (it was dropped). Never raises."""

    def fetch_account(self, key: str) -> Deferred[AccountRecord | None]:
        """The account key as the store holds it now (accounts is then up to date)."""

    def add_account(self, key: str, record: AccountRecord) -> Deferred[bool]:
        """Keep record as account key unless there is one: whether it was added."""

    def replace_account(
        self, key: str, old: AccountRecord, new: AccountRecord | None
    ) -> Deferred[bool]:
        """Put new (None: nothing) in place of account key if it is still old
        (the same hash and creation): whether it was."""


def same_account(one: AccountRecord | None, other: AccountRecord | None) -> bool:
    """Whether two records are one account as it was (hash and creation)."""
    if one is None or other is None:
        return one is other
    return one.hash == other.hash and one.created == other.created
