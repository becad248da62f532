"""What the bound on history does to a flood: rows and bytes kept, cost per message.

`python bench/history_bound.py` writes --messages messages into one room of a
SQLite history file in a temporary directory, straight through
chatd.store.sqlite.HistoryDatabase in batches of --batch rows (what the
writer thread does: 10 rows is 2,000 messages a second at one batch per
5 ms), with a room bound of --room-max and a total of --total-max (Bound; a
chatd without one writes them all); --rooms spreads the flood over rooms. It
prints the rows kept, the file's size once closed, and the CPU per message
written, for the messages below the bound and for those past it (which each
delete one). The figures of docs/hostile.md, Round three:
history has a bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE = 1_796_082_601_000_000  # 2026-11-30T23:50:01Z, in microseconds


def flood(
    path: str,
    messages: int,
    room_max: int,
    batch: int,
    text_bytes: int,
    rooms: int = 1,
    total_max: int = 0,
) -> tuple[int, int, float, float]:
    """Write the flood (spread over rooms); return (rows kept, file bytes, µs per
    message below the bound, µs per message past it), CPU time of this thread."""
    from chatd.store.sqlite import HistoryDatabase

    try:
        from chatd.store.interface import Bound
    except ImportError:  # a chatd from before the bound
        database = HistoryDatabase.open(path)
    else:
        bound = Bound(room=room_max, total=total_max)
        database = HistoryDatabase.open(path, bound=bound)
    text = "x" * text_bytes
    below = past = 0.0
    try:
        for first in range(0, messages, batch):
            rows = [
                (BASE + n, f"#flood{n % rooms}", (BASE + n) // 1000, "MSG", "f", text)
                for n in range(first, min(first + batch, messages))
            ]
            started = time.thread_time()
            database.append(rows)
            spent = time.thread_time() - started
            if first + batch <= (total_max or room_max * rooms):
                below += spent
            else:
                past += spent
        kept = database.connection.execute("SELECT count(*) FROM messages")
        rows_kept = int(kept.fetchone()[0])
    finally:
        database.close()  # the last close folds the WAL back into the file
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    full = total_max or room_max * rooms
    below_count = min(messages, full - full % batch)
    past_count = messages - below_count
    return (
        rows_kept,
        size,
        below / max(1, below_count) * 1e6,
        past / max(1, past_count) * 1e6,
    )


def main(argv: list[str]) -> int:
    """Print the figures; return 0."""
    parser = argparse.ArgumentParser(prog="python bench/history_bound.py")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--room-max", type=int, default=1_000)
    parser.add_argument("--total-max", type=int, default=0)
    parser.add_argument("--rooms", type=int, default=1, help="rooms flooded in turn")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--text-bytes", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    results = []
    with tempfile.TemporaryDirectory(prefix="chatd-bound-") as tmp:
        for run in range(args.runs):
            path = str(Path(tmp) / f"flood-{run}.sqlite3")
            results.append(
                flood(
                    path,
                    args.messages,
                    args.room_max,
                    args.batch,
                    args.text_bytes,
                    args.rooms,
                    args.total_max,
                )
            )
    rows, size = results[-1][0], results[-1][1]
    below = [r[2] for r in results]
    past = [r[3] for r in results]
    print(
        f"{args.messages} messages of {args.text_bytes} bytes into {args.rooms} "
        f"room(s), batches of {args.batch}, bound {args.room_max} a room and "
        f"{args.total_max} in all (0: none); {args.runs} runs"
    )
    print(f"  rows kept {rows}; file {size / 1e6:.2f} MB")
    print(
        f"  writer CPU per message: below the bound {statistics.median(below):.1f} µs "
        f"({min(below):.1f}-{max(below):.1f}); past it "
        f"{statistics.median(past):.1f} µs ({min(past):.1f}-{max(past):.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
