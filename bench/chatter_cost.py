"""The chatter scenario's per-message cost, in one process: microseconds a message.

    python bench/chatter_cost.py [--rooms 100] [--members 10] [--messages 20000]
                                 [--history] [--irc] [--profile N] [ROOT ...]

Builds the daemon's ChatFactory (flush delay 0, as twistd runs it) with rooms x
members line-door members, each room its own, on transports that drop what they
are given, with the direct send of a plain TCP connection replaced by one that
takes every byte: so the path measured is the daemon's (deliver, flush, the
socket's send) less the kernel and the reactor's dispatch. Members speak in the
order of `python -m bench chatter`: member 0 of every room, then member 1...
one line a read. It prints the CPU time of the whole process per message said
(each reaching `members` connections, the speaker's echo included). With
--history, rooms' messages are kept in a real SQLite file (its writer thread
counted too). With --irc, the members are IRC clients and say PRIVMSG (the
speaker is not sent its own line: members - 1 deliveries). With --profile N,
it runs once more under cProfile and prints the N functions with the most own
time, per message.

Give several checkouts (ROOT) to compare them: runs alternate between them and
the medians are printed side by side; on a busy machine compare pairs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LINE = b"~" + b"x" * 47 + b"\r\n"  # the benchmark's stamped text is about this long


def said(room: int, irc: bool) -> bytes:
    """What a member of room #r<room> sends to say the benchmark's line."""
    return b"PRIVMSG #r%d :" % room + LINE if irc else LINE


def taken(data: bytes) -> int:
    """A socket's send() that always takes everything."""
    return len(data)


class TakesAll:
    """A plain TCP transport's writeSomeData that always takes everything."""

    def writeSomeData(self, data: bytes) -> int:
        return len(data)


def build(
    rooms: int, members: int, history: Path | None, irc: bool = False
) -> tuple[Any, list[Any]]:
    """The factory and its members, ordered as the benchmark's speakers."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.task import Clock

    from bench.history_cost import DroppedCalls, NullTransport
    from chatd.config import ServerConfig
    from chatd.factory import ChatFactory
    from chatd.irc.protocol import IrcConnection
    from chatd.protocol import LineConnection

    clock = Clock()
    clock.advance(1_796_082_601)
    store = None
    if history is not None:
        from chatd.store.writer import SQLiteHistory

        store = SQLiteHistory(str(history), clock, DroppedCalls(), keep_days=0)  # type: ignore[arg-type]
        store.open()
    total = rooms * members
    config = ServerConfig(
        flood_rate=0.0, max_clients=total + 10, max_per_ip=total + 10, flush_delay=0.0
    )
    factory = ChatFactory(config, clock, store)
    protocols = []
    for n in range(total):
        if irc:
            address = IPv4Address("TCP", "127.0.0.1", 10000 + n)
            proto: Any = factory.door(IrcConnection).buildProtocol(address)
            proto.makeConnection(NullTransport())
            hello = f"NICK c{n}\r\nUSER c{n} 0 * :c{n}\r\nJOIN #r{n // members}\r\n"
        else:
            proto = factory.door(LineConnection).buildProtocol(None)
            proto.makeConnection(NullTransport())
            hello = f"c{n}\r\n/join #r{n // members}\r\n"
        proto.dataReceived(hello.encode())
        clock.advance(0)
        proto.sendq.exact()
        proto.sendq.resumeProducing()  # nothing waits: deliveries go to _send
        if hasattr(type(proto), "_send"):
            proto._send = taken
        else:  # checkouts before 6c86474 sent through the transport's writeSomeData
            proto._socket = TakesAll()
        protocols.append(proto)
    order = sorted(range(total), key=lambda i: (i % members, i // members))
    return (factory, clock, store), [
        (protocols[i], said(i // members, irc)) for i in order
    ]


def run(
    rooms: int, members: int, messages: int, history: bool, tmp: Path, irc: bool
) -> float:
    """CPU microseconds of the whole process per message said."""
    path = tmp / f"chatter-{time.monotonic_ns()}.sqlite3" if history else None
    (factory, clock, store), speakers = build(rooms, members, path, irc)
    from chatd.store.writer import BATCH_DELAY

    per_batch = max(1, int(1000 * BATCH_DELAY))  # 1,000 messages a second
    count = len(speakers)
    started = time.process_time()
    for n in range(messages):
        speaker, line = speakers[n % count]
        speaker.dataReceived(line)
        if n % per_batch == per_batch - 1:
            clock.advance(BATCH_DELAY)
    if store is not None:
        store.close()
        if store._thread is not None:
            store._thread.join(timeout=60)
    return (time.process_time() - started) / messages * 1e6


def profile(rooms: int, members: int, messages: int, top: int, irc: bool) -> str:
    """The top functions by own time under cProfile, per message (no history)."""
    (_factory, _clock, _store), speakers = build(rooms, members, None, irc)
    count = len(speakers)
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(messages):
        speaker, line = speakers[n % count]
        speaker.dataReceived(line)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/chatter_cost.py")
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--irc", action="store_true", help="IRC members")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("roots", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if args.one:  # one run in this process, against the root first on sys.path
        sys.path[:0] = [str(args.roots[0])]
        with tempfile.TemporaryDirectory(prefix="chatd-chatter-") as tmp:
            cost = run(
                args.rooms,
                args.members,
                args.messages,
                args.history,
                Path(tmp),
                args.irc,
            )
        print(f"{cost:.3f}")
        if args.profile:
            print(
                profile(args.rooms, args.members, args.messages, args.profile, args.irc)
            )
        return 0
    roots = args.roots or [ROOT]
    costs: dict[Path, list[float]] = {root: [] for root in roots}
    for _ in range(args.runs):
        for root in roots:  # each run in a fresh process, roots taking turns
            command = [sys.executable, __file__, "--one", str(root)]
            command += [f"--rooms={args.rooms}", f"--members={args.members}"]
            command += [f"--messages={args.messages}"]
            command += ["--history"] if args.history else []
            command += ["--irc"] if args.irc else []
            done = subprocess.run(
                command, capture_output=True, text=True, check=True, timeout=600
            )
            costs[root].append(float(done.stdout.split()[0]))
    kept = "kept in SQLite" if args.history else "not kept"
    kept += ", IRC members" if args.irc else ""
    print(
        f"{args.rooms} rooms x {args.members} members, {args.messages} messages "
        f"({kept}), {args.runs} runs: CPU us per message, median (min-max)"
    )
    first = statistics.median(costs[roots[0]])
    for root, values in costs.items():
        median = statistics.median(values)
        print(
            f"  {root}: {median:.1f} ({min(values):.1f}-{max(values):.1f})"
            f"  {median / first:.2f}x the first"
        )
    if args.profile:
        command = [sys.executable, __file__, "--one", str(roots[-1])]
        command += [f"--messages={args.messages}", f"--profile={args.profile}"]
        command += ["--irc"] if args.irc else []
        print(subprocess.run(command, capture_output=True, text=True).stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
