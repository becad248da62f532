"""The cluster's talk path in one process: its cost per message, publish and apply.

    python bench/cluster_talk_cost.py [--messages 100] [--rounds 40] [ROOT ...]
    python bench/cluster_talk_cost.py --instructions [--small 200] [--large 2200]
                                      [ROOT ...]

Two nodes on the tests' fake log (tests/cluster_fakes.py), no Redis and no
history: alice on node a, bob on node b, both in #lobby, no flood limit. Each
node's entries go out through chatd.cluster.redis's RedisLog.publish (encoded
to the log's JSON, queued for the reactor turn's XADD that never runs), so:

- publish: one line of alice ("hello ...") from her connection's
  dataReceived to the log's JSON text on node a (the speaker's node);
- apply here: node a's receive of one say entry of alice, as RedisLog reads it
  (json.loads of the text, then Node.receive of the id and dict): the talk
  checked again, delivered to alice (the one local member) and written to her
  transport;
- apply there: the same on node b, delivered to bob.

Both sides are APIs every checkout since the cluster has (Node.receive of a
raw log entry, RedisLog.publish of what the node sends), so give two roots
for a before/after: the wall times are the best of --rounds of --messages
messages (per message, in microseconds; on a shared machine compare pairs).

--instructions runs each root under valgrind's callgrind (if installed) once
for each measure with --small and once with --large messages, the setup the
same, and prints (large - small) / (large - small messages): instructions per
message, repeatable where times are not. Each run takes about 15 seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MEASURES = ("publish", "apply-here", "apply-there")
TEXT = b"hello everyone, this is a line of chat of a usual length"


def build(root: Path, most: int) -> dict[str, Callable[[int], None]]:
    """Two nodes of root's chatd; a function per measure that runs it count times."""
    sys.path[:0] = [str(root), str(root / "tests")]
    from cluster_fakes import FakeLog, know_each_other, make_node, pump_all
    from twisted.internet.task import Clock

    from chatd.cluster.redis import RedisLog

    clock = Clock()
    clock.advance(1_700_000_000)
    log = FakeLog(clock)
    a, b = make_node(log, "a", clock), make_node(log, "b", clock)
    for node in (a, b):
        node.factory.config = replace(node.factory.config, flood_rate=0.0)
    know_each_other(a, b)
    alice, a_out = a.connect("alice")
    _, b_out = b.connect("bob")
    pump_all(a, b)
    # a's entries through RedisLog.publish, as in the daemon: encoded, then queued.
    redis = RedisLog(a.node, None, Clock(), "redis://127.0.0.1:6379", 10.0)  # type: ignore[arg-type]
    redis.writer = object()
    redis.up = True
    line = TEXT + b"\r\n"
    alice.dataReceived(line)
    assert len(redis.appended) == 1, "alice's line was not published"
    text = redis.appended[0][0]
    redis.appended.clear()
    # The entries a node reads: ids after the log's, the text as published;
    # a first one shows that each node delivers it.
    ms = int(clock.seconds() * 1000) + 1
    for node, out in ((a, a_out), (b, b_out)):
        out.clear()
        node.node.receive([(f"{ms}-0", json.loads(text))])
        assert out.value() == b"MSG #lobby alice " + TEXT + b"\r\n", out.value()
    ms += 1
    texts = [(f"{ms}-{seq}", text) for seq in range(2 * most)]

    def publish(count: int) -> None:
        for _ in range(count):
            alice.dataReceived(line)
        redis.appended.clear()

    def apply_on(node: Any) -> Callable[[int], None]:
        def apply(count: int) -> None:
            start = node.read
            receive = node.node.receive
            loads = json.loads
            for entry_id, data in texts[start : start + count]:
                receive([(entry_id, loads(data))])
            node.read = start + count

        node.read = 0
        return apply

    return {"publish": publish, "apply-here": apply_on(a), "apply-there": apply_on(b)}


def wall(root: Path, messages: int, rounds: int) -> dict[str, float]:
    """Best of rounds, microseconds per message, for each measure."""
    runs = build(root, messages * (rounds + 2))
    best: dict[str, float] = {}
    gc.collect()
    gc.disable()
    try:
        for measure in MEASURES:
            run = runs[measure]
            run(messages)  # warm up
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                run(messages)
                times.append(time.perf_counter() - started)
            best[measure] = min(times) / messages * 1e6
    finally:
        gc.enable()
    return best


def one(root: Path, counts: list[int], most: int) -> None:
    """What a callgrind run does: set up for most, then each measure its count."""
    runs = build(root, most)
    gc.collect()
    gc.disable()
    for measure, count in zip(MEASURES, counts, strict=True):
        runs[measure](count)


def instructions(root: Path, small: int, large: int) -> dict[str, float]:
    """Instructions per message for each measure, by callgrind's totals.

    One run with every measure small, then one per measure with it large.
    """
    runs = [[small] * len(MEASURES)]
    runs += [
        [large if i == j else small for j in range(len(MEASURES))]
        for i in range(len(MEASURES))
    ]
    totals = []
    for counts in runs:
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}/callgrind.out",
                    sys.executable,
                    __file__,
                    "--one",
                    str(root),
                    "--counts",
                    ",".join(map(str, counts)),
                    "--most",
                    str(large),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                timeout=120,
                check=True,
            )
        found = re.search(r"Collected : (\d+)", done.stderr)
        assert found is not None, done.stderr
        totals.append(int(found.group(1)))
    return {
        measure: (totals[i + 1] - totals[0]) / (large - small)
        for i, measure in enumerate(MEASURES)
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[ROOT])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2200)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    parser.add_argument("--most", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        one(args.one, [int(n) for n in args.counts.split(",")], args.most)
        return
    if args.instructions:
        for root in args.roots:
            show(root, "instructions/msg", instructions(root, args.small, args.large))
    elif len(args.roots) == 1:
        show(args.roots[0], "us/msg", wall(args.roots[0], args.messages, args.rounds))
    else:  # each root in a process of its own: one chatd imported per process
        for root in args.roots:
            command = [sys.executable, __file__, str(root)]
            command += ["--messages", str(args.messages), "--rounds", str(args.rounds)]
            subprocess.run(command, check=True)


def show(root: Path, unit: str, figures: dict[str, float]) -> None:
    places = 2 if unit.startswith("us") else 0
    shown = ", ".join(f"{m} {figures[m]:,.{places}f}" for m in MEASURES)
    print(f"{root}: {unit}: {shown}", flush=True)


if __name__ == "__main__":
    main()
