"""What the history store itself costs: write batches and rows per second, size on disk.

`python bench/store_cost.py` writes messages straight into the SQLite
database (chatd.store.sqlite.HistoryDatabase, as the writer thread does) in
a temporary directory, and prints, for several batch sizes, the batches
(transactions) and rows the database takes per second, and the file's size
per million messages. The rows look like the benchmark's chatter: 48-byte
texts, short nicknames, a hundred rooms.

It measures the database alone, on one thread and one core: the daemon's
writer thread makes one batch every BATCH_DELAY (5 ms) at most, so 200
batches a second is what a busy daemon asks of it; the rows per second at
batches of that size say how far the store is from being the limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

Row = tuple[int, str, int, str, str, str]


def _rows(first: int, count: int, text_bytes: int) -> list[Row]:
    """count messages from id first: a hundred rooms, ten speakers, padded text."""
    pad = "x" * max(0, text_bytes - 12)
    base = 1_796_082_601_000_000
    return [
        (
            base + n,
            f"#r{n % 100}",
            (base + n) // 1000,
            "MSG",
            f"c{n % 1000}",
            f"~{n:09d}~{pad}",
        )
        for n in range(first, first + count)
    ]


def write_rate(
    path: str, batch: int, rows: int, text_bytes: int
) -> tuple[float, float]:
    """Append rows in batches of batch rows; return (batches/s, rows/s)."""
    from chatd.store.sqlite import HistoryDatabase

    database = HistoryDatabase.open(path)
    try:
        data = _rows(database.last_id() + 1, rows, text_bytes)
        started = time.perf_counter()
        for at in range(0, rows, batch):
            database.append(data[at : at + batch])
        wall = time.perf_counter() - started
    finally:
        database.close()
    return rows / batch / wall, rows / wall


def size_per_million(path: str, rows: int, text_bytes: int) -> float:
    """Write rows in batches of 1000; return bytes on disk per million messages."""
    from chatd.store.sqlite import HistoryDatabase

    database = HistoryDatabase.open(path)
    try:
        empty = _size(path)
        first = database.last_id() + 1
        for at in range(0, rows, 1000):
            database.append(_rows(first + at, min(1000, rows - at), text_bytes))
    finally:
        database.close()  # the last close folds the WAL back into the file
    return (_size(path) - empty) * 1_000_000 / rows


def _size(path: str) -> int:
    return sum(
        os.path.getsize(name) for name in (path, path + "-wal") if os.path.exists(name)
    )


def main(argv: list[str]) -> int:
    """Print the table; return 0."""
    parser = argparse.ArgumentParser(prog="python bench/store_cost.py")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per measure")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--text-bytes", type=int, default=48)
    parser.add_argument("--size-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(
        f"history store alone: {args.rows} rows per measure, {args.runs} runs, "
        f"texts of {args.text_bytes} bytes; medians (min-max)"
    )
    print(f"{'rows/batch':>10}  {'batches/s':>24}  {'rows/s':>28}")
    with tempfile.TemporaryDirectory(prefix="chatd-store-") as tmp:
        for batch in (1, 5, 50, 500, 5000):
            rates = []
            for run in range(args.runs):
                path = str(Path(tmp) / f"b{batch}-{run}.sqlite3")
                rows = min(args.rows, batch * 20_000)
                rates.append(write_rate(path, batch, rows, args.text_bytes))
            per_batch = [rate[0] for rate in rates]
            per_row = [rate[1] for rate in rates]
            print(f"{batch:>10}  {_spread(per_batch):>24}  {_spread(per_row):>28}")
        path = str(Path(tmp) / "size.sqlite3")
        size = size_per_million(path, args.size_rows, args.text_bytes)
        print(
            f"database size: {size / 1e6:.1f} MB per million messages "
            f"({size / 1e6:.0f} bytes each; {args.size_rows} written)"
        )
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
