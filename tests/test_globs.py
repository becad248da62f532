"""Wildcard masks (chatd.model.globs): a glob's answers, without backtracking."""

from __future__ import annotations

import re

from helpers import RecordingClient
from hypothesis import given
from hypothesis import strategies as st

from chatd.model.globs import Glob, glob_match
from chatd.model.state import Ban, User

# The freeze of issue 22: one check of these took seconds to minutes with the
# masks compiled to regular expressions (docs/hostile.md, Round three).
FREEZING = "*a*a*a*a*a*a*a*a*a*a*z"
LONGEST = "*a" * 99 + "*z"  # 200 characters, the longest mask a ban may be
VICTIM = "aaaaaaaaaaaaaaaaaaaX"


def reference(mask: str, text: str) -> bool:
    """What a glob means, spelled the slow way (only for these short inputs)."""
    spelled = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in mask
    )
    return re.fullmatch(spelled, text, re.DOTALL) is not None


@given(st.text("ab*?", max_size=10), st.text("ab", max_size=10))
def test_a_glob_matches_what_the_wildcards_mean(mask: str, text: str) -> None:
    """* is any run (none too), ? any one character, the rest itself: as a glob."""
    assert glob_match(mask, text) == reference(mask, text)


@given(st.text("aé!@.*?", max_size=14), st.text("aé!@.", max_size=14))
def test_a_glob_agrees_on_mask_like_text(mask: str, text: str) -> None:
    """The same on the characters of nick!user@host masks, non-ASCII included."""
    assert glob_match(mask, text) == reference(mask, text)


class CountingStr(str):
    """A text that counts the searches a match makes in it."""

    calls = 0

    def find(self, sub: str, start: int = 0, end: int | None = None, /) -> int:  # type: ignore[override]
        CountingStr.calls += 1
        return super().find(sub, start, end)

    def startswith(self, prefix: str, start: int = 0, /) -> bool:  # type: ignore[override]
        CountingStr.calls += 1
        return super().startswith(prefix, start)


def test_the_freezing_masks_are_answered_in_a_few_steps() -> None:
    """*a*a*...*z against aaaaaaaaaaaaaaaaaaaX: no match, each star's piece looked
    for once (a backtracking matcher tries every way of splitting the a's)."""
    for mask in (FREEZING, LONGEST, "?a" * 100, "*a?" * 66 + "z"):
        CountingStr.calls = 0
        assert not Glob(mask).match(CountingStr(VICTIM))
        assert CountingStr.calls <= len(mask) + 2, (mask, CountingStr.calls)


def test_a_ban_mask_is_not_a_regular_expression() -> None:
    """Bans ask chatd.model.globs; the model no longer builds a pattern from a mask."""
    user = User(VICTIM, RecordingClient(), host="192.0.2.1")
    ban = Ban(FREEZING, "op", 0.0)
    assert not ban.matches(user)
    assert not hasattr(ban, "_pattern")
    assert Ban("*!*@192.0.2.*", "op", 0.0).matches(user)
    assert Ban(VICTIM.upper(), "op", 0.0).matches(user)  # folded, as nick!*@*
