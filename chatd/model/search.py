"""Searching kept messages: what a user may search, and how much, for every door.

docs/protocol.md, Searching history (extension). The rule is the one for
reading history, asked the same way:

- With no target, a search looks in the rooms the asker is in now, and, if
  identified, in every private conversation of its account.
- `in <#room>`: the room if the asker may read its history (Chat.may_read:
  members, server operators, others in a public room that does not ban
  them); a room that does not exist, or a secret room of others, has
  nothing to find, as /history answers it.
- `in <nick>`: the asker's own conversation with the party the name means
  (chatd.model.private_history): identified users only.

A private message said before the accounts of its conversation were made is
an earlier owner's and is never found. The store answers for exactly the
rooms and conversations it is given (chatd.store.interface.Search).

Bounds, so that searching cannot become a flood of work: at most
SEARCH_MAX results, a query of at most MAX_QUERY characters and MAX_WORDS
words, and SEARCH_BURST searches at once then SEARCH_RATE a second per user.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from weakref import WeakKeyDictionary

from twisted.internet.defer import Deferred, succeed

from chatd.model.accounts import Accounts
from chatd.model.chat import Room, User, usable_history
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold
from chatd.model.private_history import conversation_of, own_account
from chatd.model.rates import TokenBucket
from chatd.store.interface import (
    NICK_PARTY,
    Entry,
    Found,
    IHistory,
    Search,
    conversation,
    search_tokens,
)

SEARCH_COUNT = 20  # results when a door does not say how many
SEARCH_MAX = 50  # results one search answers at most
MAX_QUERY = 200  # characters of the words searched for
MAX_WORDS = 8  # words (each a phrase) in one search
SEARCH_BURST = 5  # searches one user may make at once...
SEARCH_RATE = 0.5  # ...and then this many a second
MAX_USERS = 4096  # users whose rate is kept; the least recent go first


@dataclass(frozen=True, slots=True)
class Request:
    """A search as a door read it: the words, and what narrows it."""

    words: str  # as typed: split into words here
    target: str | None = None  # a room, or a nickname or account (private)
    before: int | None = None  # exclusive bound on the id
    after: int | None = None  # exclusive bound on the id
    nick: str | None = None  # only what this nickname said
    limit: int = SEARCH_COUNT


@dataclass(frozen=True, slots=True)
class Result:
    """One message found, and where, as the asker names it.

    target: the room's name, or the other side of a private conversation
    (its account as registered, or the nickname); mine: a private message
    the asker's side said (False for a room's).
    """

    target: str
    private: bool
    mine: bool
    entry: Entry


class SearchRates:
    """Each user's token bucket for searches (a bounded number of users)."""

    def __init__(self, accounts: Accounts) -> None:
        self.clock = accounts.clock
        self.buckets: OrderedDict[User, TokenBucket] = OrderedDict()

    def take(self, user: User) -> float | None:
        """Spend one search of user's; None if it may, else seconds to wait."""
        bucket = self.buckets.get(user)
        if bucket is None:
            bucket = self.buckets[user] = TokenBucket(
                SEARCH_BURST, SEARCH_RATE, self.clock
            )
            while len(self.buckets) > MAX_USERS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(user)
        return None if bucket.take() else bucket.wait()


_RATES: WeakKeyDictionary[Accounts, SearchRates] = WeakKeyDictionary()


def rates_of(accounts: Accounts) -> SearchRates:
    """The search rates of the server whose accounts these are."""
    rates = _RATES.get(accounts)
    if rates is None:
        rates = _RATES[accounts] = SearchRates(accounts)
    return rates


def phrases(words: str) -> tuple[str, ...]:
    """The phrases a search's words ask for, or ChatError(BAD_ARGS).

    Each word is a phrase of its runs of letters and digits (so that a link
    is found by its words); a word without any (punctuation) asks nothing.
    """
    if len(words) > MAX_QUERY:
        raise ChatError(
            ErrorCode.BAD_ARGS, f"a search is at most {MAX_QUERY} characters"
        )
    found: list[str] = []
    for word in words.split():
        phrase = " ".join(search_tokens(word))
        if phrase and phrase not in found:
            found.append(phrase)
    if not found:
        raise ChatError(
            ErrorCode.BAD_ARGS, "nothing to search for: give words of letters or digits"
        )
    if len(found) > MAX_WORDS:
        raise ChatError(ErrorCode.BAD_ARGS, f"a search is at most {MAX_WORDS} words")
    return tuple(found)


def search(accounts: Accounts, user: User, request: Request) -> Deferred[list[Result]]:
    """Search what user may read for request: the newest first.

    Raises ChatError at once when the request cannot be answered: bad words,
    too many searches (THROTTLED), no history (NO_HISTORY), a room it may
    not read (as Chat.may_read refuses), a private target while not
    identified. The Deferred fails with the store's HistoryUnavailable or
    SearchTooSlow.
    """
    chat = accounts.chat
    wanted = phrases(request.words)
    limit = max(1, min(request.limit, SEARCH_MAX))
    store = usable_history(chat)
    wait = rates_of(accounts).take(user)
    if wait is not None:
        raise ChatError(
            ErrorCode.THROTTLED,
            f"too many searches: try again in {max(1, round(wait + 0.5))} s",
        )
    nick = fold(request.nick) if request.nick else None
    asked = Search(
        wanted, nick=nick, before=request.before, after=request.after, limit=limit
    )
    target = request.target
    if target is None:
        return _everywhere(accounts, store, user, asked)
    if target.startswith("#"):
        room = chat.may_read(user, target)
        return _in_room(store, room, asked)
    found = conversation_of(accounts, user, target)
    pair = conversation(found.me, found.other)
    name, start = found.name, found.start
    asked = replace(asked, conversations=(pair,))

    def named(hits: list[Found]) -> list[Result]:
        return [
            Result(name, True, fold(hit.entry.nick) == found.me, hit.entry)
            for hit in hits
            if hit.entry.time >= start
        ]

    return store.search(asked).addCallback(named)


def _in_room(
    store: IHistory, room: Room | None, asked: Search
) -> Deferred[list[Result]]:
    """One room's messages (None: nothing to find, as for /history)."""
    if room is None or not store.has_history(room.key):
        return succeed([])
    name = room.name
    answer = store.search(replace(asked, rooms=(room.key,)))
    return answer.addCallback(
        lambda hits: [Result(name, False, False, hit.entry) for hit in hits]
    )


def _everywhere(
    accounts: Accounts, store: IHistory, user: User, asked: Search
) -> Deferred[list[Result]]:
    """The rooms user is in, and its account's conversations, if identified."""
    names = {
        room.key: room.name
        for room in user.rooms.values()
        if store.has_history(room.key)
    }
    mine = own_account(accounts, user)
    party = fold(mine.name) if mine is not None else None
    if not names and party is None:
        return succeed([])
    asked = replace(asked, rooms=tuple(names), party=party)

    def named(hits: list[Found]) -> list[Result]:
        results = []
        for hit in hits:
            if hit.room is not None:
                if hit.room in names:
                    results.append(Result(names[hit.room], False, False, hit.entry))
                continue
            if hit.pair is None or mine is None or party not in hit.pair:
                continue  # not the asker's: no store should answer it, none shows
            low, high = hit.pair
            other = high if low == party else low
            if other.startswith(NICK_PARTY):
                name, start = other[len(NICK_PARTY) :], mine.created
            else:
                theirs = accounts.account(other)
                if theirs is None:
                    continue  # dropped: its conversations are on their way out
                name, start = theirs.name, max(mine.created, theirs.created)
            if hit.entry.time >= start:
                mine_said = fold(hit.entry.nick) == party
                results.append(Result(name, True, mine_said, hit.entry))
        return results

    return store.search(asked).addCallback(named)
