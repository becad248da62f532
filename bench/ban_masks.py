"""Ban masks and ban lists as figures (issue 22, items 1 and 11): docs/hostile.md.

Run from the repository root, against this checkout or another (--root):

    python bench/ban_masks.py [--root PATH] [--limit 30]

- check: the time of one ban check of aaaaaaaaaaaaaaaaaaaX (from 127.0.0.1)
  against masks *a*a...*z of 18, 22 and 26 characters, and of 200
  (*a twelve times, 175 *, then z), each in its own process, stopped
  after --limit seconds;
- bytes: what a full ban list adds to a room (tracemalloc, after one check, so
  whatever a ban keeps for matching is counted): 100 bans of 200 characters
  where the checkout takes them, else as many as it takes, and 100 of 80;
- freeze: a real `twistd -n chatd` on 127.0.0.1; an operator bans the 18-
  character mask in #trap, aaaaaaaaaaaaaaaaaaaX joins and says 3 lines there,
  and a probe user in #lobby sends a line every 0.5 s (10 lines) and times its echo: the
  worst echo, while the victim's lines are handled (at most --limit seconds).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

VICTIM = "aaaaaaaaaaaaaaaaaaaX"


def mask_of(length: int) -> str:
    """*a*a...*z of length characters (18, 22, 26); past 26, twelve *a, *..., z."""
    if length <= 26:
        return "*a" * ((length - 2) // 2) + "*z"
    return "*a" * 12 + "*" * (length - 25) + "z"


CHECK = """
import time
from chatd.model.state import Ban, User
class Client:
    def deliver(self, event): pass
    def close(self, reason): pass
user = User({victim!r}, Client(), host="127.0.0.1")
ban = Ban({mask!r}, "op", 0.0)
start = time.perf_counter()
ban.matches(user)
print(time.perf_counter() - start)
"""

BYTES = """
import tracemalloc
from chatd.model.state import Ban, Room, User
from chatd.model.room_rules import MAX_BANS
try:
    from chatd.model.room_rules import MAX_BAN_BYTES
except ImportError:
    MAX_BAN_BYTES = None
class Client:
    def deliver(self, event): pass
    def close(self, reason): pass
user = User("someone", Client(), host="127.0.0.1")
for length in (200, 80):
    count = MAX_BANS
    if MAX_BAN_BYTES is not None:
        count = min(count, MAX_BAN_BYTES // length)
    room = Room("#r")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # The masks are made here too: a ban list holds them (as a command's
    # words, each its own string).
    room.rules.bans = tuple(
        Ban(f"*!*@{{i:03d}}" + "h" * (length - 7), "op", 0.0) for i in range(count)
    )
    room.rules.banned(user)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(length, count, size)
"""


def python(root: Path, code: str, limit: float) -> str | None:
    """Run code with root's chatd; its output, or None past limit seconds."""
    env = dict(os.environ, PYTHONPATH=str(root))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=limit,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return done.stdout


def freeze(root: Path, limit: float) -> float:
    """The probe's worst echo (s) while the victim joins and speaks in #trap."""
    sys.path.insert(0, str(root / "tests"))  # its daemon helper runs its chatd
    from daemon import Daemon, LineClient

    endpoint = "tcp:0:interface=127.0.0.1"
    daemon = Daemon(["--listen", endpoint, "--no-history"], root)
    try:
        daemon.wait_listening(1)
        port = daemon.ports[endpoint]
        op, victim, probe = (LineClient.tcp(port) for _ in range(3))
        op.register("op")
        op.send("/join #trap")
        op.expect("JOIN #trap op")
        op.send(f"/ban {mask_of(18)}")
        op.expect("BAN #trap ")
        victim.register(VICTIM)
        probe.register("probe")
        victim.send("/join #trap")
        for i in range(3):
            victim.send(f"line {i}")
        worst, end = 0.0, time.monotonic() + limit
        probe.sock.settimeout(limit)
        for i in range(10):
            start = time.monotonic()
            probe.send(f"ping {i}")
            probe.expect(f"MSG #lobby probe ping {i}")
            worst = max(worst, time.monotonic() - start)
            if time.monotonic() > end:
                break
            time.sleep(0.5)  # two a second: the flood gate never holds them
        return worst
    finally:
        daemon.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--limit", type=float, default=30.0)
    options = parser.parse_args()
    root = options.root.resolve()
    for length in (18, 22, 26, 200):
        code = CHECK.format(victim=VICTIM, mask=mask_of(length))
        out = python(root, code, options.limit)
        shown = f"over {options.limit:g} s" if out is None else f"{float(out):.6f} s"
        print(f"check, mask of {length} characters: {shown}")
    out = python(root, BYTES.format(), options.limit) or ""
    for row in out.splitlines():
        chars, count, size = row.split()
        print(f"bytes, {count} bans of {chars} characters: {int(size):,} bytes")
    print(f"freeze, the probe's worst echo: {freeze(root, options.limit):.3f} s")


if __name__ == "__main__":
    main()
