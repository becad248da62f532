"""What the writer thread spends per kept message, staged or written directly.

    python bench/history_write_cost.py [--rooms 100] [--batch 20] [--messages 40000]

Appends rows of 100 bytes to a fresh SQLite history file
(chatd.store.sqlite.HistoryDatabase) in batches of --batch rows spread over
--rooms rooms, as the writer thread gets them in chatter, and prints the
process's user and system CPU per row: once written straight into the
messages table (one page of the (room, id) index per room a batch touches),
once staged and settled every 1,000 rows as the writer does
(HistoryDatabase.settle). No reactor and no sockets: the figures are the
database's own and repeat on a busy machine far better than a whole-daemon
run. The file goes in a temporary directory, deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatd.store.sqlite import HistoryDatabase, RoomRow  # noqa: E402

SETTLE_AT = 1000  # rows, about a second of chatter at 100 rooms x 10


def batches(rooms: int, size: int, count: int, first: int) -> list[list[RoomRow]]:
    chooser = random.Random(7)
    text = "x" * 100
    made: list[list[RoomRow]] = []
    msg_id = first
    for _ in range(count):
        rows: list[RoomRow] = []
        for n in range(size):
            msg_id += 1000
            room = f"#room{chooser.randrange(rooms)}"
            rows.append((msg_id, room, msg_id // 1000, "MSG", f"user{n}", text))
        made.append(rows)
    return made


def one_run(staging: bool, rooms: int, size: int, messages: int) -> tuple[float, float]:
    """User and system CPU microseconds per row."""
    with tempfile.TemporaryDirectory() as directory:
        database = HistoryDatabase.open(os.path.join(directory, "h.sqlite3"))
        database.staging = staging
        warm = batches(rooms, size, 2000 // size, 10**15)
        timed = batches(rooms, size, messages // size, warm[-1][-1][0])
        for rows in warm:
            database.append(rows)
        database.settle()
        before = resource.getrusage(resource.RUSAGE_SELF)
        for rows in timed:
            database.append(rows)
            if database.staged >= SETTLE_AT:
                database.settle()
        database.settle()
        after = resource.getrusage(resource.RUSAGE_SELF)
        database.close()
    written = len(timed) * size
    return (
        (after.ru_utime - before.ru_utime) / written * 1e6,
        (after.ru_stime - before.ru_stime) / written * 1e6,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/history_write_cost.py")
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--messages", type=int, default=40000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"{args.messages} rows of 100 bytes in batches of {args.batch} over "
        f"{args.rooms} rooms; CPU per row, median of {args.runs} (user + system)"
    )
    for staging in (False, True):
        runs = [
            one_run(staging, args.rooms, args.batch, args.messages)
            for _ in range(args.runs)
        ]
        user = statistics.median(r[0] for r in runs)
        system = statistics.median(r[1] for r in runs)
        name = "staged, settled" if staging else "direct"
        print(f"  {name:16} {user + system:5.1f} us ({user:.1f} + {system:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
