"""What keeping history costs per message said, in one process, with and without it.

`python bench/history_cost.py` builds the daemon's ChatFactory with N line
protocol members in one room, on transports that take bytes and drop them,
and has one of them say M messages, first with history in a real SQLite file
(chatd.store.writer.SQLiteHistory: its writer thread, batches every 5 ms of
the fake clock) and then without. It prints the CPU seconds of the whole
process (reactor side and writer thread) per run, and deliveries per CPU
second, alternating the two a few times. No sockets and no load generator:
what the machine's other load does to a loopback benchmark does not reach
these figures much (CPU time, not wall time, is counted).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class NullTransport:
    """A transport that takes every write and keeps nothing."""

    disconnecting = False
    TLS = False

    def write(self, data: bytes) -> None:
        pass

    def writeSequence(self, data: list[bytes]) -> None:
        pass

    def registerProducer(self, producer: object, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def loseConnection(self) -> None:
        pass

    def abortConnection(self) -> None:
        pass

    def getPeer(self) -> object:
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", "127.0.0.1", 40000)

    def getHost(self) -> object:
        return self.getPeer()


class DroppedCalls:
    """callFromThread for the writer thread: nothing it hands back is needed."""

    def callFromThread(self, call: Callable[..., Any], *args: Any, **kw: Any) -> None:
        pass


def one_run(members: int, messages: int, history: bool, tmp: Path) -> float:
    """CPU seconds (all threads) for messages said to members; history or not."""
    from twisted.internet.task import Clock

    from chatd.config import ServerConfig
    from chatd.factory import ChatFactory
    from chatd.protocol import LineConnection
    from chatd.store.writer import BATCH_DELAY, SQLiteHistory

    clock = Clock()
    clock.advance(1_796_082_601)
    store = None
    if history:
        path = str(tmp / f"cost-{time.monotonic_ns()}.sqlite3")
        store = SQLiteHistory(path, clock, DroppedCalls(), keep_days=0)  # type: ignore[arg-type]
        store.open()
    config = ServerConfig(
        flood_rate=0.0, max_clients=members + 10, max_per_ip=members + 10
    )
    factory = ChatFactory(config, clock, store)
    protocols = []
    for n in range(members):
        proto = factory.door(LineConnection).buildProtocol(None)
        assert isinstance(proto, LineConnection)
        proto.makeConnection(NullTransport())
        proto.dataReceived(f"u{n}\r\n".encode())
        protocols.append(proto)
    speaker = protocols[0]
    line = b"~" + b"x" * 47 + b"\r\n"
    per_batch = max(1, int(2000 * BATCH_DELAY))  # 2,000 messages a second
    started = time.process_time()
    for n in range(messages):
        speaker.dataReceived(line)
        if n % per_batch == per_batch - 1:
            clock.advance(BATCH_DELAY)  # the writer's hand-over, as the reactor does
    if store is not None:
        stopped = store.close()
        deadline = time.monotonic() + 60
        while not stopped.called and time.monotonic() < deadline:
            if store._thread is not None and not store._thread.is_alive():
                break
            time.sleep(0.001)
        if store._thread is not None:
            store._thread.join(timeout=60)
    return time.process_time() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/history_cost.py")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    on: list[float] = []
    off: list[float] = []
    with tempfile.TemporaryDirectory(prefix="chatd-cost-") as tmp:
        for _ in range(args.runs):
            on.append(one_run(args.members, args.messages, True, Path(tmp)))
            off.append(one_run(args.members, args.messages, False, Path(tmp)))
    deliveries = args.members * args.messages
    print(
        f"{args.messages} messages to {args.members} members, {args.runs} runs each, "
        "CPU of the whole process; medians (min-max)"
    )
    for name, values in (("history on", on), ("history off", off)):
        rate = [deliveries / value for value in values]
        print(
            f"  {name:<12} {statistics.median(values):.3f} s "
            f"({min(values):.3f}-{max(values):.3f}); "
            f"{statistics.median(rate) / 1e6:.2f} M deliveries per CPU-s "
            f"({min(rate) / 1e6:.2f}-{max(rate) / 1e6:.2f})"
        )
    ratios = [o2 / o1 for o1, o2 in zip(on, off, strict=True)]
    extra = [(o1 - o2) / args.messages * 1e6 for o1, o2 in zip(on, off, strict=True)]
    print(
        f"  on/off deliveries per CPU-s, pair by pair: median "
        f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}); "
        f"history's CPU per message: {statistics.median(extra):.1f} µs "
        f"({min(extra):.1f}-{max(extra):.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
