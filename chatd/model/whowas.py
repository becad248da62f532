"""Who had a nickname before: the last users to give one up, for IRC's WHOWAS.

A user gives up a nickname by quitting or by renaming. The record is bounded
in count (a ring of the latest departures), so a flood of short visits costs
a fixed amount of memory and pushes out the oldest entries only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from chatd.model.names import fold

WHOWAS_SIZE = 1000  # departures remembered, across all nicknames


@dataclass(frozen=True, slots=True)
class Departure:
    """A nickname as its holder left it: who they said they were, and when."""

    nick: str
    key: str  # the folded nickname
    username: str
    host: str
    realname: str
    time: float  # the clock's seconds


class PastNicks:
    """The latest departures, newest last; at most size of them."""

    def __init__(self, size: int = WHOWAS_SIZE) -> None:
        self._departures: deque[Departure] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._departures)

    def left(
        self, nick: str, username: str, host: str, realname: str, when: float
    ) -> None:
        """Someone gave up nick at when; username, host, realname: who they said."""
        self._departures.append(
            Departure(nick, fold(nick), username, host, realname, when)
        )

    def lookup(self, nick: str, count: int = 0) -> list[Departure]:
        """Who held nick (any case), newest first: count of them, all if count < 1."""
        key = fold(nick)
        found: list[Departure] = []
        for departure in reversed(self._departures):
            if departure.key == key:
                found.append(departure)
                if len(found) == count:
                    break
        return found
