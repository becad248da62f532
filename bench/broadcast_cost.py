"""The broadcast path's own cost, in one process: nanoseconds per delivery.

    python bench/broadcast_cost.py [--irc] [--rounds N] [ROOT ...]

For each checkout ROOT (default: this one) it builds a ChatFactory on a fake
clock with 1000 line-door members (StringTransports), sends 350 messages of
100 bytes in rounds of 10 and prints the CPU time per delivery of handing the
events out (deliver), of the timed flush (flush) and of clearing the test
transports (clear, the harness); with --irc, 1000 IRC members and PRIVMSGs
(999 deliveries a message). No sockets and no kernel, so it sees changes
of a few percent that the whole-daemon benchmark (python -m bench) cannot on
a shared machine. Give two roots and run it several times, alternating; on a
busy machine compare pairs, not single figures.

Instruction counts repeat where times do not: run one root under callgrind with
two round counts and take the difference, so that the setup cancels out:

    valgrind --tool=callgrind python bench/broadcast_cost.py --rounds 6 --one ROOT
    valgrind --tool=callgrind python bench/broadcast_cost.py --rounds 16 --one ROOT

(the instructions of the second less the first, over 10 rounds x 10 messages x
1000 members, are the instructions per delivery; docs/hostile.md has figures).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = 1000
ROUNDS = 40  # the first 5 warm up
BATCH = 10


def measure(root: Path, rounds: int = ROUNDS, irc: bool = False) -> str:
    """Run the measurement in this process against root's chatd.

    irc: IRC members (registered, put in #r without the JOIN's NAMES), and
    PRIVMSG #r from the first; the speaker is not sent its own message, so a
    message makes MEMBERS - 1 deliveries.
    """
    sys.path[:0] = [str(root), str(root / "tests")]
    from helpers import connect, make_factory
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    clock = Clock()
    factory = make_factory(clock, flush_delay=0.0, flood_rate=0.0)
    # The members' protocols: chatd.net.connection's Connection where it exists
    # (not in checkouts before it, which this must still measure).
    members: list[tuple[Any, StringTransport]]
    if irc:
        from test_irc_protocol import irc_connect

        members = [irc_connect(factory, f"m{i}") for i in range(MEMBERS)]
        for proto, _ in members:
            factory.chat.join(proto.registered_user(), "#r")
        clock.advance(0)
        line = b"PRIVMSG #r :" + b"x" * 100 + b"\r\n"
    else:
        members = [connect(factory, f"m{i}") for i in range(MEMBERS)]
        line = b"x" * 100 + b"\n"
    for _, transport in members:
        transport.clear()
    sender = members[0][0]
    gc.collect()
    gc.disable()
    deliver = flush = clear = 0.0
    for number in range(rounds):
        started = time.process_time()
        for _ in range(BATCH):
            sender.dataReceived(line)
        delivered = time.process_time()
        clock.advance(0)
        flushed = time.process_time()
        for _, transport in members:
            transport.clear()
        cleared = time.process_time()
        if number >= 5:
            deliver += delivered - started
            flush += flushed - delivered
            clear += cleared - flushed
    count = max(1, rounds - 5) * BATCH * (MEMBERS - 1 if irc else MEMBERS)
    return (
        f"deliver {deliver / count * 1e9:.0f} ns  flush {flush / count * 1e9:.0f} ns"
        f"  clear {clear / count * 1e9:.0f} ns per delivery"
    )


def main() -> None:
    """Measure each root given, each in a fresh process."""
    args = sys.argv[1:]
    rounds = ROUNDS
    irc = args[:1] == ["--irc"]
    if irc:
        args = args[1:]
    if args[:1] == ["--rounds"]:
        rounds, args = int(args[1]), args[2:]
    if len(args) == 2 and args[0] == "--one":
        print(measure(Path(args[1]), rounds, irc))
        return
    roots = [Path(arg) for arg in args] or [ROOT]
    door = ["--irc"] if irc else []
    for root in roots:
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                *door,
                "--rounds",
                str(rounds),
                "--one",
                str(root),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        print(f"{root}: {result.stdout.strip()}")


if __name__ == "__main__":
    main()
