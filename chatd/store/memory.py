"""A history store in memory: the fake the tests give the chat.

It answers reads at once, or, with manual=True, when the test says so
(answer()), so that a test can show what a client receives while a read is
on its way, as with the SQLite store's thread.
"""

from __future__ import annotations

from bisect import bisect_left

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from chatd.store.interface import (
    Entry,
    HistoryUnavailable,
    IHistory,
    Kind,
    Stamps,
    UnknownId,
    millis,
)

Answer = list[Entry] | Exception  # what a read will be answered with


@implementer(IHistory)
class MemoryHistory:
    """IHistory kept in lists, one per room; nothing survives the object."""

    def __init__(self, clock: IReactorTime, manual: bool = False) -> None:
        self.clock = clock
        self.manual = manual
        self.reason: str | None = None
        self.rooms: dict[str, list[Entry]] = {}
        self.stamps = Stamps()
        # Reads not yet answered (manual), with the answer each will get.
        self.waiting: list[tuple[defer.Deferred[list[Entry]], Answer]] = []

    def record(self, room: str, kind: Kind, nick: str, text: str) -> tuple[int, float]:
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        if self.reason is None:
            entry = Entry(msg_id, millis(now), kind, nick, text)
            self.rooms.setdefault(room, []).append(entry)
        return msg_id, now

    def has_history(self, room: str) -> bool:
        return room in self.rooms

    def read(
        self, room: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        answer: Answer
        if self.reason is not None:
            answer = HistoryUnavailable(self.reason)
        else:
            answer = self._select(room, count, before)
        if not self.manual:
            if isinstance(answer, Exception):
                return defer.fail(answer)
            return defer.succeed(answer)
        waiting: defer.Deferred[list[Entry]] = defer.Deferred()
        self.waiting.append((waiting, answer))
        return waiting

    def _select(self, room: str, count: int, before: int | None) -> Answer:
        entries = self.rooms.get(room, [])
        end = len(entries)
        if before is not None:
            end = bisect_left([entry.id for entry in entries], before)
            if end == len(entries) or entries[end].id != before:
                return UnknownId(before)
        return entries[max(0, end - count) : end]

    def answer(self) -> None:
        """Answer every read made so far, in the order they were made."""
        waiting, self.waiting = self.waiting, []
        for deferred, answer in waiting:
            if isinstance(answer, Exception):
                deferred.errback(answer)
            else:
                deferred.callback(answer)
