"""What counting costs a broadcast, in-process: this checkout against another.

    python -m bench.count_cost --other /tmp/chatd-main --pairs 20

A room of --members line connections on transports that drop what they are
given; one member says --messages lines, each its own batch (so each member
gets one write per message: the most flushes, the worst case for counting
per write). The CPU time per delivery is measured in a fresh subprocess for
each checkout in turn, pair after pair, so both see the same machine; the
summary gives each one's median and the median of the pairs' ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import sys, time
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from chatd.config import ServerConfig
from chatd.factory import ChatFactory
import chatd.protocol
# The line door's class; checkouts before issue 23 named it ChatProtocol.
line_door = chatd.protocol
LineConnection = getattr(line_door, "ChatProtocol", None) or line_door.LineConnection

class Dropping(StringTransport):
    def write(self, data):
        pass

members, messages = int(sys.argv[1]), int(sys.argv[2])
factory = ChatFactory(ServerConfig(flood_rate=0, max_clients=100000,
                                   max_per_ip=100000), Clock())
protos = []
for i in range(members):
    address = IPv4Address("TCP", "127.0.0.1", 20000 + i)
    proto = factory.door(LineConnection).buildProtocol(address)
    proto.makeConnection(Dropping(peerAddress=address))
    proto.dataReceived(b"m%d\\r\\n" % i)
    protos.append(proto)
sender = protos[0]
lines = [b"message number %d with some text\\r\\n" % n for n in range(messages)]
for line in lines[:50]:
    sender.dataReceived(line)  # warm up
started = time.process_time()
for line in lines:
    sender.dataReceived(line)
spent = time.process_time() - started
print(spent / (members * messages) * 1e9)
"""


def measure(root: Path, members: int, messages: int) -> float:
    """ns of CPU per delivery with root's chatd, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(members), str(messages)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return float(done.stdout.strip())


def main(argv: list[str]) -> int:
    """Measure pairs and print the summary."""
    p = argparse.ArgumentParser(prog="python -m bench.count_cost")
    p.add_argument("--other", type=Path, required=True, help="the other checkout")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--messages", type=int, default=300)
    args = p.parse_args(argv)
    here: list[float] = []
    other: list[float] = []
    for number in range(args.pairs):
        order = [(ROOT, here), (args.other, other)]
        if number % 2:
            order.reverse()
        for root, into in order:
            into.append(measure(root, args.members, args.messages))
        print(f"pair {number + 1}: this {here[-1]:.1f} ns, other {other[-1]:.1f} ns")
    ratios = [a / b for a, b in zip(here, other, strict=True)]
    print(
        f"\nns of CPU per delivery, {args.members} members, one write each:\n"
        f"this checkout   median {statistics.median(here):.1f}"
        f" (range {min(here):.1f}-{max(here):.1f})\n"
        f"other checkout  median {statistics.median(other):.1f}"
        f" (range {min(other):.1f}-{max(other):.1f})\n"
        f"this/other, pair by pair: median {statistics.median(ratios):.3f}"
        f" (range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
