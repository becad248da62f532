"""Wildcard masks (* and ?) matched without backtracking: bans and IRC's WHO.

A mask is read once into its pieces (Glob): the part before the first *,
the parts between stars and the part after the last. Matching then places
each piece once, left to right: the first at the start, each middle one at
the leftmost place it fits after the one before, the last at the end. The
leftmost place is always the right choice for a middle piece (any later
fit leaves less room for those after it), so nothing is ever tried again:
the work is at most the text's length times the mask's, and a piece without
? is found by str.find. A user's mask never becomes a regular expression,
whose backtracking made one check of *a*a*a*a*a*a*a*a*a*a*z take seconds
(docs/hostile.md, Round three: bans, masks and identity).
"""

from __future__ import annotations

from dataclasses import dataclass

ANY_RUN, ANY_ONE = "*", "?"


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of a mask without *: its length and its literal chunks by offset."""

    size: int
    chunks: tuple[tuple[int, str], ...]  # (offset, text) between the ? of the run

    @classmethod
    def of(cls, run: str) -> Piece:
        """Read a run of characters and ? (no *)."""
        chunks: list[tuple[int, str]] = []
        start = 0
        for index, ch in enumerate(run + ANY_ONE):
            if ch == ANY_ONE:
                if index > start:
                    chunks.append((start, run[start:index]))
                start = index + 1
        return cls(len(run), tuple(chunks))

    def fits_at(self, text: str, at: int) -> bool:
        """Tell whether the run matches text at index at (text long enough)."""
        return all(text.startswith(chunk, at + offset) for offset, chunk in self.chunks)

    def find(self, text: str, start: int, end: int) -> int:
        """Return the leftmost index >= start where the run fits before end, or -1.

        Each chunk in turn is looked for (str.find) from the place tried;
        one found further on moves the place there, and the chunks are
        looked for again from it; the place fits when none moves it. The
        place only moves forward, so each chunk is looked for at most
        once for each place it moves to.
        """
        last = end - self.size  # the last index the run may start at
        at = start
        settled = 0  # chunks in a row found at the place, without moving it
        count = len(self.chunks)
        index = 0
        while settled < count:
            if at > last:
                return -1
            offset, chunk = self.chunks[index]
            found = text.find(chunk, at + offset, last + offset + len(chunk))
            if found < 0:
                return -1
            if found - offset > at:
                at, settled = found - offset, 1
            else:
                settled += 1
            index = (index + 1) % count
        return at if at <= last else -1


@dataclass(frozen=True, slots=True)
class Glob:
    """A mask with * (any run, none included) and ? (any one character)."""

    head: Piece  # before the first * (the whole mask when it has none)
    middle: tuple[Piece, ...]  # between stars, in order
    tail: Piece | None  # after the last *; None when the mask has no *

    def match(self, text: str) -> bool:
        """Tell whether the whole of text matches the mask."""
        head, tail = self.head, self.tail
        if tail is None:
            return len(text) == head.size and head.fits_at(text, 0)
        end = len(text) - tail.size
        if end < head.size or not head.fits_at(text, 0):
            return False
        if not tail.fits_at(text, end):
            return False
        at = head.size
        for piece in self.middle:
            found = piece.find(text, at, end)
            if found < 0:
                return False
            at = found + piece.size
        return True


def compile_glob(mask: str) -> Glob:
    """Read mask (* and ?, every other character itself) into a Glob."""
    runs = mask.split(ANY_RUN)
    if len(runs) == 1:
        return Glob(Piece.of(mask), (), None)
    middle = tuple(Piece.of(run) for run in runs[1:-1] if run)
    return Glob(Piece.of(runs[0]), middle, Piece.of(runs[-1]))
