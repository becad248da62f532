"""Wildcard masks (* and ?) matched without backtracking: bans and IRC's WHO.

A mask's runs between stars are placed once each, left to right: the one
before the first * at the start of the text, the one after the last at its
end, and each one between at the leftmost place it fits after the one
before. The leftmost place is always the right choice for a run between
stars (any later fit leaves less room for those after it), so nothing is
ever tried again: a run without ? is one str.find, and a run with ? is
looked for chunk by chunk, each chunk's place only moving forward. A user's
mask never becomes a regular expression, whose backtracking made one check
of *a*a*a*a*a*a*a*a*a*a*z take seconds (docs/hostile.md, Round three: bans,
masks and identity), and nothing is kept per mask but the mask itself: a
ban list costs the bytes of its masks.
"""

from __future__ import annotations

from dataclasses import dataclass

ANY_RUN, ANY_ONE = "*", "?"


def glob_match(mask: str, text: str) -> bool:
    """Tell whether the whole of text matches mask: * any run (none too), ? any
    one character, every other character itself."""
    runs = mask.split(ANY_RUN)
    if len(runs) == 1:
        return len(text) == len(mask) and _fits_at(mask, text, 0)
    head, tail = runs[0], runs[-1]
    end = len(text) - len(tail)  # where the tail must start
    if end < len(head) or not _fits_at(head, text, 0):
        return False
    if not _fits_at(tail, text, end):
        return False
    at = len(head)
    for run in runs[1:-1]:
        if run:
            found = _find(run, text, at, end)
            if found < 0:
                return False
            at = found + len(run)
    return True


def _fits_at(run: str, text: str, at: int) -> bool:
    """Tell whether run (no *) matches text at index at; text is long enough."""
    if ANY_ONE not in run:
        return text.startswith(run, at)
    for chunk in run.split(ANY_ONE):
        if chunk and not text.startswith(chunk, at):
            return False
        at += len(chunk) + 1
    return True


def _find(run: str, text: str, start: int, end: int) -> int:
    """Return the leftmost index >= start where run (no *) fits before end, or -1.

    Without ?, str.find. With ?, each chunk between them is looked for in
    turn from the place tried; one found further on moves the place there,
    and the place fits when a round of chunks leaves it where it is. The
    place only moves forward, so each chunk is looked for at most once for
    each place it moves to.
    """
    if ANY_ONE not in run:
        return text.find(run, start, end)
    last = end - len(run)  # the last index run may start at
    chunks: list[tuple[int, str]] = []
    offset = 0
    for chunk in run.split(ANY_ONE):
        if chunk:
            chunks.append((offset, chunk))
        offset += len(chunk) + 1
    at, settled, index = start, 0, 0
    while settled < len(chunks):
        if at > last:
            return -1
        offset, chunk = chunks[index]
        found = text.find(chunk, at + offset, last + offset + len(chunk))
        if found < 0:
            return -1
        if found - offset > at:
            at, settled = found - offset, 1
        else:
            settled += 1
        index = (index + 1) % len(chunks)
    return at if at <= last else -1


@dataclass(frozen=True, slots=True)
class Glob:
    """A mask read once for many texts (IRC's WHO against every nickname)."""

    mask: str

    def match(self, text: str) -> bool:
        """Tell whether the whole of text matches the mask."""
        return glob_match(self.mask, text)
