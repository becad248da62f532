"""Count the answers of every door that disagree with the permission table.

The table is tests/test_permissions.py's (docs/security.md, "What every door
and node enforces"); each door (line, IRC, web) asks each question of each
row in process, and every answer that the table does not give is counted:
the figures of docs/hostile.md, "Round three: one rule for seeing rooms and
reading history". Usage: python bench/permissions_table.py [CHECKOUT]
(default: this one; the table module is taken from CHECKOUT/tests, so copy
it there to measure an older checkout).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

ROOT = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent)
sys.path[:0] = [ROOT + "/tests", ROOT]

import test_permissions as t  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

wrong: collections.Counter[str] = collections.Counter()
total = 0
shown: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
for door, make in t.DOORS.items():
    for state, mode, expected in t.ROWS:
        clock = Clock()
        factory = t.make_factory(clock)
        owner = t.owned_room(factory, mode)
        asker = make(factory, "asker")
        t.put_in_state(owner, asker, state, mode)
        for q in t.QUESTIONS:
            total += 1
            reply = asker.ask(q, t.ROOM)
            got: bool | None
            try:
                got = asker.allowed(q, t.ROOM, reply)
            except AssertionError:  # the door disagrees with itself
                got = None  # (WHO lists the members, NAMES hides them)
            if got != expected[q]:
                wrong[door] += 1
                shown[(door, q)].add(f"{state}/{mode}")
print(f"answers: {total}; against the table: {sum(wrong.values())} {dict(wrong)}")
for (door, q), cases in sorted(shown.items()):
    print(f"  {door:4} {q:13} {len(cases):2}: {' '.join(sorted(cases))}")
