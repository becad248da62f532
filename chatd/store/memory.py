"""A history store in memory: the fake the tests give the chat.

It answers reads at once, or, with manual=True, when the test says so
(answer()), so that a test can show what a client receives while a read is
on its way, as with the SQLite store's thread.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from chatd.store.interface import (
    DEFAULT_BOUND,
    Bound,
    Entry,
    Found,
    HistoryUnavailable,
    IHistory,
    Kind,
    Search,
    Span,
    Stamps,
    UnknownId,
    conversation,
    millis,
)
from chatd.store.scan import scan_search

T = TypeVar("T")


@implementer(IHistory)
class MemoryHistory:
    """IHistory kept in lists, one per room; nothing survives the object."""

    def __init__(
        self, clock: IReactorTime, manual: bool = False, bound: Bound = DEFAULT_BOUND
    ) -> None:
        self.clock = clock
        self.manual = manual
        self.bound = bound
        self.total = 0  # messages kept, rooms' and private
        self.reason: str | None = None
        self.rooms: dict[str, list[Entry]] = {}
        # Private conversations by conversation(one, other) (folded accounts).
        self.conversations: dict[tuple[str, str], list[Entry]] = {}
        self.stamps = Stamps()
        # Who said each message, by id (docs/protocol.md, Deleting messages).
        self.authors: dict[int, str] = {}
        # Reads not yet answered (manual): each call gives its answer.
        self.waiting: list[Callable[[], None]] = []

    def record(
        self, room: str, kind: Kind, nick: str, text: str, author: str = ""
    ) -> tuple[int, float]:
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        self.record_at(room, kind, nick, text, msg_id, now, author)
        return msg_id, now

    def record_at(
        self,
        room: str,
        kind: Kind,
        nick: str,
        text: str,
        msg_id: int,
        time: float,
        author: str = "",
    ) -> None:
        self.stamps.passed(msg_id)
        if self.reason is None:
            entry = Entry(msg_id, millis(time), kind, nick, text)
            self.authors[msg_id] = author
            self._keep(self.rooms.setdefault(room, []), entry)

    def record_private(
        self, sender: str, recipient: str, kind: Kind, name: str, text: str
    ) -> tuple[int, float]:
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        self.record_private_at(sender, recipient, kind, name, text, msg_id, now)
        return msg_id, now

    def record_private_at(
        self,
        sender: str,
        recipient: str,
        kind: Kind,
        name: str,
        text: str,
        msg_id: int,
        time: float,
    ) -> None:
        self.stamps.passed(msg_id)
        if self.reason is None:
            entry = Entry(msg_id, millis(time), kind, name, text)
            self.authors[msg_id] = sender
            pair = conversation(sender, recipient)
            self._keep(self.conversations.setdefault(pair, []), entry)
            for party in set(pair):
                self._keep_party(party)

    def _keep_party(self, party: str) -> None:
        """Keep party's private messages, all its conversations', within the
        bound (Bound.account): its oldest go first."""
        lists = [kept for pair, kept in self.conversations.items() if party in pair]
        for _ in range(self.bound.over_account(sum(map(len, lists)))):
            del min((kept for kept in lists if kept), key=lambda k: k[0].id)[0]
            self.total -= 1

    def _keep(self, entries: list[Entry], entry: Entry) -> None:
        """Add entry to its room's (or conversation's) list, within the bound."""
        entries.append(entry)
        over = self.bound.over_room(len(entries))
        del entries[:over]
        self.total += 1 - over
        for _ in range(self.bound.over_total(self.total)):
            kept = [kept for kept in self._lists() if kept]
            del min(kept, key=lambda oldest: oldest[0].id)[0]
            self.total -= 1

    def _lists(self) -> list[list[Entry]]:
        return [*self.rooms.values(), *self.conversations.values()]

    def has_history(self, room: str) -> bool:
        return room in self.rooms

    def _lookup(self, entries: list[Entry], msg_id: int) -> int | None:
        """Where the live message msg_id is in entries, if it is."""
        at = bisect_left([entry.id for entry in entries], msg_id)
        if at < len(entries) and entries[at].id == msg_id and entries[at].text:
            return at
        return None

    def _author(self, entries: list[Entry], msg_id: int) -> defer.Deferred[str | None]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        at = self._lookup(entries, msg_id)
        return self._answer_with(None if at is None else self.authors.get(msg_id, ""))

    def author(self, room: str, msg_id: int) -> defer.Deferred[str | None]:
        return self._author(self.rooms.get(room, []), msg_id)

    def private_author(
        self, me: str, other: str, msg_id: int
    ) -> defer.Deferred[str | None]:
        return self._author(self.conversations.get(conversation(me, other), []), msg_id)

    def _delete(self, entries: list[Entry], msg_id: int) -> defer.Deferred[bool]:
        at = self._lookup(entries, msg_id)
        if at is not None:
            gone = entries[at]
            entries[at] = Entry(gone.id, gone.time, gone.kind, gone.nick, "")
        return defer.succeed(at is not None)

    def delete(self, room: str, msg_id: int) -> defer.Deferred[bool]:
        return self._delete(self.rooms.get(room, []), msg_id)

    def delete_private(self, me: str, other: str, msg_id: int) -> defer.Deferred[bool]:
        return self._delete(self.conversations.get(conversation(me, other), []), msg_id)

    def read(
        self, room: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        return self._answer_with(self._read(room, count, before))

    def select(self, room: str, span: Span) -> defer.Deferred[list[Entry]]:
        return self._select(self.rooms.get(room, []), span)

    def read_private(
        self, me: str, other: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        entries = self.conversations.get(conversation(me, other), [])
        return self._answer_with(_last(entries, count, before))

    def select_private(
        self, me: str, other: str, span: Span
    ) -> defer.Deferred[list[Entry]]:
        return self._select(self.conversations.get(conversation(me, other), []), span)

    def private_latest(self, me: str) -> defer.Deferred[dict[str, Entry]]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        found = {}
        for (low, high), entries in self.conversations.items():
            if entries and me in (low, high):
                last = _last_live(entries)
                if last is not None:
                    found[high if low == me else low] = last
        return self._answer_with(found)

    def forget_private(self, account: str) -> None:
        for pair in [pair for pair in self.conversations if account in pair]:
            self.total -= len(self.conversations.pop(pair))

    def search(self, search: Search) -> defer.Deferred[list[Found]]:
        # docs/protocol.md, Searching history: a bounded scan (chatd.store.scan).
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        return scan_search(self, search)

    def _select(self, entries: list[Entry], span: Span) -> defer.Deferred[list[Entry]]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        ids = [entry.id for entry in entries]
        start = 0 if span.after is None else bisect_right(ids, span.after)
        end = len(ids) if span.before is None else bisect_left(ids, span.before)
        live = [entry for entry in entries[start:end] if entry.text]
        if span.newest:
            return self._answer_with(live[max(0, len(live) - span.limit) :])
        return self._answer_with(live[: span.limit])

    def latest(self, rooms: Sequence[str]) -> defer.Deferred[dict[str, Entry]]:
        if self.reason is not None:
            return self._answer_with(HistoryUnavailable(self.reason))
        found = {}
        for room in rooms:
            last = _last_live(self.rooms.get(room, []))
            if last is not None:
                found[room] = last
        return self._answer_with(found)

    def _answer_with(self, answer: T | Exception) -> defer.Deferred[T]:
        """Answer at once, or (manual) when the test calls answer()."""
        if not self.manual:
            if isinstance(answer, Exception):
                return defer.fail(answer)
            return defer.succeed(answer)
        waiting: defer.Deferred[T] = defer.Deferred()

        def give() -> None:
            if isinstance(answer, Exception):
                waiting.errback(answer)
            else:
                waiting.callback(answer)

        self.waiting.append(give)
        return waiting

    def _read(
        self, room: str, count: int, before: int | None
    ) -> list[Entry] | Exception:
        return _last(self.rooms.get(room, []), count, before)

    def answer(self) -> None:
        """Answer every read made so far, in the order they were made."""
        waiting, self.waiting = self.waiting, []
        for give in waiting:
            give()


def _last(
    entries: list[Entry], count: int, before: int | None
) -> list[Entry] | Exception:
    """The last count of entries (before the id, if given), or UnknownId."""
    end = len(entries)
    if before is not None:
        end = bisect_left([entry.id for entry in entries], before)
        if end == len(entries) or entries[end].id != before:
            return UnknownId(before)
    live = [entry for entry in entries[:end] if entry.text]  # no tombstones
    return live[max(0, len(live) - count) :]


def _last_live(entries: list[Entry]) -> Entry | None:
    """The newest of entries that is not a tombstone (a deleted message)."""
    return next((entry for entry in reversed(entries) if entry.text), None)
