"""What searching costs: answers over a million kept messages, and the index's
cost to every message kept.

`python bench/search.py` (docs/performance.md, Search):

1. Builds a history database of --messages kept messages (a million by
   default) in --rooms rooms: texts of 6 to 14 words drawn from a vocabulary
   of 20,000 with Zipf's law (as words in chat are: a few very common, most
   rare), a link in one message of 20 (100,000 distinct lines, each said
   about ten times over, in other rooms). The rows go in with executemany in one
   transaction with the index's triggers off, then the index is built at once
   (what the migration of an old file does); both are timed.
2. Times searches as the daemon runs them (HistoryDatabase.search on the
   file): a rare word, a common word, two words, a link's phrase, in the 20
   rooms a user is in or in one room, and the page after (before the last
   id). Each is run --repeat times; median and p99 in milliseconds.
3. The index's cost per message kept: the writer's insert of batches of 10
   rows (a 5 ms batch at 2,000 messages a second), CPU per row with the
   triggers and without, alternated; and the whole daemon's CPU per message
   with history on, index on and off (bench/history_cost.py's one process:
   members in one room, one speaking).

Bounded: the build takes about half a minute at a million; every loop is
counted. Nothing listens on a socket.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VOCABULARY = 20_000
WORDS_PER_TEXT = (6, 14)
LINK_EVERY = 20
USER_ROOMS = 20  # rooms one searching user is in
POOL = 100_000  # distinct lines made for the database
BATCH = 10  # rows per insert batch: 5 ms of messages at 2,000 a second


def vocabulary(rng: random.Random) -> list[str]:
    """VOCABULARY made-up words of 3 to 9 letters, the first the most common."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choices(letters, k=rng.randint(3, 9))))
    return sorted(words)


def texts(rng: random.Random, words: list[str], count: int) -> list[str]:
    """count chat lines of Zipf-distributed words."""
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    low, high = WORDS_PER_TEXT
    drawn = rng.choices(words, weights=weights, k=count * high)
    out = []
    at = 0
    for n in range(count):
        size = rng.randint(low, high)
        line = drawn[at : at + size]
        at += size
        if n % LINK_EVERY == 0:
            line.append(f"https://{line[0]}.example/{n % 997}/{line[-1]}")
        out.append(" ".join(line))
    return out


def build(path: str, messages: int, rooms: int, seed: int) -> tuple[list[str], int]:
    """Fill a new database at path; return the vocabulary and the last id."""
    from chatd.store.interface import Bound
    from chatd.store.sqlite import HistoryDatabase
    from chatd.store.sqlite_search import SEARCH_TABLES

    rng = random.Random(seed)
    words = vocabulary(rng)
    database = HistoryDatabase.open(path, bound=Bound(room=0, total=0))
    execute = database.connection.execute
    for table in ("messages", "private_messages"):
        for trigger in ("add", "gone", "changed"):
            execute(f"DROP TRIGGER {table}_words_{trigger}")  # built below
    started = time.perf_counter()
    base = 1_796_000_000_000_000
    # Distinct lines, each said about POOL_REPEAT times over (in other rooms):
    # making a million lines in Python would take longer than indexing them.
    pool = texts(rng, words, max(1, min(messages, POOL)))
    execute("BEGIN")
    database.connection.executemany(
        "INSERT INTO messages (id, room, time, kind, nick, text) "
        "VALUES (?, ?, ?, 'MSG', ?, ?)",
        (
            (
                base + n * 1000,
                f"#room{n % rooms}",
                (base + n * 1000) // 1000,
                f"nick{n % 500}",
                pool[(n * 7919) % len(pool)],
            )
            for n in range(messages)
        ),
    )
    execute(
        "INSERT INTO rooms SELECT DISTINCT room FROM messages WHERE true "
        "ON CONFLICT DO NOTHING"
    )
    execute("COMMIT")
    rows = time.perf_counter() - started
    started = time.perf_counter()
    execute("INSERT INTO messages_words (messages_words) VALUES ('rebuild')")
    indexed = time.perf_counter() - started
    for statement in SEARCH_TABLES:  # the triggers back: the file stays chatd's
        if statement.lstrip().startswith("CREATE TRIGGER"):
            execute(statement)
    database.close()
    print(
        f"built {messages:,} messages in {rooms} rooms: rows {rows:.1f} s, "
        f"index {indexed:.1f} s; file {Path(path).stat().st_size / 1e6:.0f} MB"
    )
    return words, base + (messages - 1) * 1000


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of repeat calls."""
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def searches(path: str, words: list[str], rooms: int, repeat: int) -> None:
    """Time the kinds of search a person makes; print median and p99."""
    from chatd.store.interface import Search
    from chatd.store.sqlite import HistoryDatabase
    from chatd.store.sqlite_search import SEARCH_TIME as limit

    database = HistoryDatabase.open(path)
    mine = tuple(f"#room{n}" for n in range(0, rooms, max(1, rooms // USER_ROOMS)))
    mine = mine[:USER_ROOMS]
    rare, middling, common = words[8_000], words[300], words[0]
    link = database.connection.execute(
        "SELECT text FROM messages WHERE room = ? AND text LIKE '%https://%' "
        "ORDER BY id DESC LIMIT 1",
        (mine[0],),
    ).fetchone()[0]
    phrase = " ".join(link.rsplit(" ", 1)[-1].replace("https://", "").split("/")[:2])
    phrase = phrase.replace(".", " ")
    first = database.search(Search((middling,), rooms=mine, limit=50))
    cases: list[tuple[str, Search]] = [
        (f"a rare word ({rare}), {len(mine)} rooms", Search((rare,), rooms=mine)),
        (f"a middling word, {len(mine)} rooms", Search((middling,), rooms=mine)),
        (f"the commonest word, {len(mine)} rooms", Search((common,), rooms=mine)),
        (
            f"two middling words, {len(mine)} rooms",
            Search((middling, words[301]), rooms=mine),
        ),
        (f"a link's phrase ({phrase}), 1 room", Search((phrase,), rooms=mine[:1])),
        ("a rare word, 1 room", Search((rare,), rooms=mine[:1])),
        ("the commonest word, 1 room", Search((common,), rooms=mine[:1])),
        (
            "a middling word, the next page (before)",
            Search((middling,), rooms=mine, before=first[-1].entry.id, limit=50),
        ),
        (
            "the commonest word, 1 room no one spoke in",
            Search((common,), rooms=("#nobody",)),
        ),
    ]
    print(
        f"searches ({repeat} each, limit 20 unless paged with 50; "
        f"SEARCH_TIME {limit * 1000:.0f} ms): median, p99 ms, found"
    )
    for name, search in cases:

        def run(search: Search = search) -> object:
            try:
                return database.search(search)
            except Exception as error:  # SearchTooSlow: counted, shown
                return error

        answer = run()
        spent = timed(run, repeat)
        shown = len(answer) if isinstance(answer, list) else type(answer).__name__
        print(
            f"  {name:<52} {statistics.median(spent):7.2f} {p99(spent):7.2f}  {shown}"
        )
    database.close()


def insert_cost(tmp: Path, rounds: int, batches: int) -> None:
    """CPU per row of the writer's append, triggers on and off, alternated."""
    from chatd.store.interface import Bound
    from chatd.store.sqlite import HistoryDatabase

    rng = random.Random(7)
    words = vocabulary(rng)
    lines = texts(rng, words, batches * BATCH)
    on: list[float] = []
    off: list[float] = []
    for round_ in range(rounds):
        for index in (True, False):
            path = str(tmp / f"insert-{round_}-{index}.sqlite3")
            database = HistoryDatabase.open(path, bound=Bound(room=0, total=0))
            if not index:
                for trigger in ("add", "gone", "changed"):
                    database.connection.execute(
                        f"DROP TRIGGER messages_words_{trigger}"
                    )
            rows = [
                (1 + n, f"#room{n % 100}", n, "MSG", "nick", text)
                for n, text in enumerate(lines)
            ]
            started = time.process_time()
            for at in range(0, len(rows), BATCH):
                database.append(rows[at : at + BATCH])
            spent = (time.process_time() - started) / len(rows) * 1e6
            (on if index else off).append(spent)
            database.close()
    ratio = statistics.median(on) / statistics.median(off)
    print(
        f"writer's insert, batches of {BATCH}, {batches * BATCH} rows, {rounds} "
        f"rounds: index on {statistics.median(on):.1f} µs a row "
        f"({min(on):.1f}-{max(on):.1f}), off {statistics.median(off):.1f} "
        f"({min(off):.1f}-{max(off):.1f}): {ratio:.2f}x"
    )


def daemon_cost(tmp: Path, members: int, messages: int, runs: int) -> None:
    """The whole process's CPU per message with history, index on and off."""
    from bench import history_cost
    from chatd.store import writer

    original = writer.SQLiteHistory.open_database

    def without_index(self: Any) -> Any:
        database = original(self)
        for table in ("messages", "private_messages"):
            for trigger in ("add", "gone", "changed"):
                database.connection.execute(f"DROP TRIGGER {table}_words_{trigger}")
        return database

    on: list[float] = []
    off: list[float] = []
    for _ in range(runs):
        on.append(history_cost.one_run(members, messages, True, tmp))
        writer.SQLiteHistory.open_database = without_index  # type: ignore[method-assign]
        try:
            off.append(history_cost.one_run(members, messages, True, tmp))
        finally:
            writer.SQLiteHistory.open_database = original  # type: ignore[method-assign]
    ratios = [one / other for one, other in zip(on, off, strict=True)]
    print(
        f"whole process, {messages} messages to {members} members, history on, "
        f"{runs} runs: index on {statistics.median(on):.3f} s CPU, off "
        f"{statistics.median(off):.3f} s; on/off {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/search.py")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--chatter", type=int, default=4000, help="messages said")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", help="keep the built database here")
    parser.add_argument(
        "--only", choices=("search", "cost"), help="one half of the benchmark"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 5_000_000 or not 1 <= args.repeat <= 1000:
        parser.error("--messages at most 5,000,000 and --repeat at most 1000")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="chatd-search-") as tmp:
        if args.only != "cost":
            path = args.database or str(Path(tmp) / "search.sqlite3")
            if Path(path).exists():
                parser.error(f"{path} exists: give a new file")
            words, _ = build(path, args.messages, args.rooms, args.seed)
            searches(path, words, args.rooms, args.repeat)
        if args.only != "search":
            insert_cost(Path(tmp), args.runs, 200)
            daemon_cost(Path(tmp), args.members, args.chatter, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
