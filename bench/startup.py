"""Start-up time of `twistd -n chatd`, with a config file and without.

Run from the repository root:

    python -m bench.startup [--runs 10]

Each run starts `twistd -n chatd` in a fresh temporary directory (so a new
history database each time) and times it from the process's start to the
first line a client reads on a connection the daemon accepted (its HELLO):
the client tries to connect every 2 ms. The two variants do the same work
but for the reading of the file, and take turns run by run:

- `flags`: `--listen tcp:PORT:interface=127.0.0.1` on the command line;
- `config`: `--config FILE`, FILE being deploy/chatd.toml (every key) with
  its listeners made that one (no IRC listener, no metrics listener).

It prints each variant's median, minimum and maximum, and the median of the
pairs' ratios (config / flags), of that time and of the CPU each whole run
took (start, the connection, the stop on SIGTERM: the CPU figure is the
steadier one on a shared machine). Traffic goes to 127.0.0.1 only; every wait
is bounded.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0  # seconds: the bound on one start
POLL = 0.002  # seconds between two tries to connect


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(port: int) -> str:
    """deploy/chatd.toml with one line listener on port and no other listener."""
    kept = []
    for line in (ROOT / "deploy" / "chatd.toml").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("listen", "irc", "metrics"):
            continue
        kept.append(line)
    kept.insert(0, f'listen = ["tcp:{port}:interface=127.0.0.1"]')
    return "\n".join(kept) + "\n"


def first_hello(port: int, deadline: float) -> None:
    """Connect as soon as the daemon accepts, and read its first line."""
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        except OSError:
            time.sleep(POLL)
            continue
        with sock:
            data = b""
            while b"\n" not in data:
                more = sock.recv(4096)
                if not more:
                    raise RuntimeError("the daemon closed before its first line")
                data += more
            return
    raise RuntimeError("the daemon did not accept a connection in time")


def _children_cpu() -> float:
    """CPU seconds (user and system) of the children waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_start(variant: str) -> tuple[float, float]:
    """Seconds from starting twistd to its first line on an accepted connection,
    and the CPU seconds of the whole run (start, that connection, SIGTERM)."""
    port = free_port()
    twistd = Path(sys.executable).with_name("twistd")
    with tempfile.TemporaryDirectory(prefix="chatd-startup-") as directory:
        if variant == "config":
            path = Path(directory) / "chatd.toml"
            path.write_text(config_text(port))
            args = ["--config", str(path)]
        else:
            args = ["--listen", f"tcp:{port}:interface=127.0.0.1"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cpu = _children_cpu()
        started = time.monotonic()
        process = subprocess.Popen(
            [str(twistd), "-n", "--pidfile=", "chatd", *args],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            first_hello(port, started + WAIT)
            took = time.monotonic() - started
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=WAIT)
    return took, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    """Time the starts, taking turns, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="starts of each")
    args = parser.parse_args(argv)
    one_start("flags")  # a warm-up: the page cache, .pyc files
    times: dict[str, list[float]] = {"flags": [], "config": []}
    cpus: dict[str, list[float]] = {"flags": [], "config": []}
    for _ in range(args.runs):
        for variant in ("flags", "config"):
            took, cpu = one_start(variant)
            times[variant].append(took)
            cpus[variant].append(cpu)
    for what, figures in (("to the first HELLO", times), ("CPU of a run", cpus)):
        print(f"{what}:")
        for variant, found in figures.items():
            print(
                f"  {variant:7} median {statistics.median(found):.3f} s  "
                f"min {min(found):.3f}  max {max(found):.3f}  ({len(found)} runs)"
            )
        pairs = zip(figures["flags"], figures["config"], strict=True)
        ratios = [c / f for f, c in pairs]
        print(
            f"  config / flags, pair by pair: median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
