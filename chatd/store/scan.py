"""Search by reading and looking: what a store without a text index answers.

docs/protocol.md, Searching history (extension). The memory store and Redis
keep no index of words, so a search reads the latest messages of each room
and conversation it is given (through the store's own select and
select_private, before the search's `before`) and keeps those that match
(Search.matches, the words as FTS5 splits them). It reads at most SCAN_TOTAL
messages in all, shared out among the targets (never fewer than
SCAN_LEAST each), so that a search costs the reactor a bounded time however
long the history: older messages are reached by paging with `before`.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.python.failure import Failure

from chatd.store.interface import Entry, Found, IHistory, Search, Span, conversation

SCAN_TOTAL = 2000  # messages looked at by one search, all targets together
SCAN_LEAST = 100  # and at least this many of each target's


def scan_search(history: IHistory, search: Search) -> Deferred[list[Found]]:
    """Search history's latest messages of each target; see the module."""
    pairs = list(search.conversations)
    if search.party is None:
        return _scan(history, search, pairs)
    party = search.party

    def with_party(latest: dict[str, Entry]) -> Deferred[list[Found]]:
        mine = [conversation(party, other) for other in latest]
        return _scan(history, search, [*pairs, *(p for p in mine if p not in pairs)])

    return history.private_latest(party).addCallback(with_party)


def _scan(
    history: IHistory, search: Search, pairs: list[tuple[str, str]]
) -> Deferred[list[Found]]:
    targets = len(search.rooms) + len(pairs)
    each = max(SCAN_LEAST, SCAN_TOTAL // max(1, targets))
    span = Span(each, after=search.after, before=search.before)
    reads: list[Deferred[list[Found]]] = []
    for room in search.rooms:
        reads.append(
            history.select(room, span).addCallback(_matching, search, room, None)
        )
    for low, high in pairs:
        reads.append(
            history.select_private(low, high, span).addCallback(
                _matching, search, None, (low, high)
            )
        )

    def newest(parts: list[list[Found]]) -> list[Found]:
        found = [one for part in parts for one in part]
        found.sort(key=lambda one: one.entry.id, reverse=True)
        return found[: search.limit]

    answer = gatherResults(reads, consumeErrors=True)
    return answer.addCallbacks(newest, _first_failure)


def _matching(
    entries: list[Entry],
    search: Search,
    room: str | None,
    pair: tuple[str, str] | None,
) -> list[Found]:
    """The entries (oldest first) that match, as Found, newest first."""
    found = []
    for entry in reversed(entries):
        if search.matches(entry):
            found.append(Found(entry, room, pair))
            if len(found) >= search.limit:
                break
    return found


def _first_failure(failure: Failure) -> Failure:
    """The failure of the first read that failed (not gatherResults' wrapper)."""
    if failure.check(FirstError):
        return failure.value.subFailure
    return failure
