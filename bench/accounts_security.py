"""The security checks of docs/security.md, against a real daemon: figures.

Starts `twistd -n chatd` (the real Argon2 settings unless --cheap) in a
temporary directory, on loopback, and measures:

1. wrong passwords for an account that exists and for a name that does not:
   the answers (code and text) and how long each took (median, spread);
2. 1000 wrong passwords from one address, sent at once (--flood-rate 0) and
   at the default flood rate (2 lines a second, --paced: 500 s): how many
   were checked, how many throttled, how long it took;
3. the log: no password, no hash;
4. the database file and its -wal and -shm: their modes.

    python bench/accounts_security.py [--cheap] [--paced]
"""

from __future__ import annotations

import argparse
import re
import socket
import stat
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from daemon import Daemon  # noqa: E402

LOOPBACK = "tcp:0:interface=127.0.0.1"
PASSWORD = "correct-horse-battery"
WAIT = 60.0


class Client:
    """A blocking line client from a given loopback address."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=WAIT, source_address=(source, 0)
        )
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw.decode()

    def expect(self, prefix: str) -> str:
        while not (text := self.line()).startswith(prefix):
            pass
        return text

    def register(self, nick: str) -> None:
        self.expect("NICK ")
        self.send(nick)
        self.expect(f"JOIN #lobby {nick}")


def timed_wrong(port: int, name: str, source: str) -> tuple[str, float]:
    client = Client(port, source)
    client.register(f"probe{source.split('.')[-1]}")
    started = time.perf_counter()
    client.send(f"/identify {name} not-the-password")
    answer = client.expect("ERR ")
    return answer, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cheap", action="store_true", help="cheap Argon2")
    parser.add_argument(
        "--paced", action="store_true", help="also 1000 at the default 2 a second"
    )
    options = parser.parse_args()
    cost = ["--argon2-time", "1", "--argon2-memory", "64", "--argon2-lanes", "1"]
    with tempfile.TemporaryDirectory() as directory:
        args = ["--listen", LOOPBACK, "--flood-rate", "0"]
        daemon = Daemon(args + (cost if options.cheap else []), Path(directory))
        try:
            daemon.wait_listening(1)
            port = daemon.ports[LOOPBACK]
            owner = Client(port)
            owner.register("alice")
            owner.send(f"/register {PASSWORD} {PASSWORD}")
            owner.expect("INFO alice is registered")

            print("1. a wrong password: an account, and a name without one")
            # Taken in turn, 10 each (the per-account burst), each from an
            # address of its own (below the per-address burst).
            answers: dict[str, set[str]] = {"alice": set(), "nobody": set()}
            times: dict[str, list[float]] = {"alice": [], "nobody": []}
            for n in range(2, 12):
                for name in answers:
                    last = 1 if name == "alice" else 2
                    source = f"127.0.{n}.{last}"
                    answer, took = timed_wrong(port, name, source)
                    answers[name].add(answer)
                    times[name].append(took * 1000)
            for name, taken in times.items():
                print(
                    f"   {name:7} answers {sorted(answers[name])}; median "
                    f"{statistics.median(taken):.1f} ms, min {min(taken):.1f}, "
                    f"max {max(taken):.1f}"
                )

            print("2. 1000 wrong passwords from one address, sent at once")
            mallory = Client(port, "127.0.99.1")
            mallory.register("mallory")
            started = time.perf_counter()
            mallory.sock.sendall(
                b"".join(f"/identify target guess{n}\r\n".encode() for n in range(1000))
            )
            codes: dict[str, int] = {}
            while sum(codes.values()) < 1000:
                code = mallory.expect("ERR ").split(" ")[1]
                codes[code] = codes.get(code, 0) + 1
            took = time.perf_counter() - started
            print(f"   {codes} in {took:.2f} s")
            if options.paced:
                print("   and paced at 2 a second (500 s)")
                paced = Client(port, "127.0.98.1")
                paced.register("paced")
                codes = {}
                for n in range(1000):
                    paced.send(f"/identify other paced{n}")
                    code = paced.expect("ERR ").split(" ")[1]
                    codes[code] = codes.get(code, 0) + 1
                    time.sleep(0.5)
                print(f"   {codes}")

            files = [Path(directory) / name for name in ("chatd.sqlite3",)]
            files += [Path(str(files[0]) + suffix) for suffix in ("-wal", "-shm")]
            modes = {
                path.name: oct(stat.S_IMODE(path.stat().st_mode))
                for path in files
                if path.exists()
            }
            daemon.terminate()
        finally:
            daemon.kill()
        log = "\n".join(daemon.log)
        secrets = [PASSWORD, "not-the-password", "guess17", "$argon2"]
        found = [secret for secret in secrets if secret in log]
        print(f"3. the log: {len(daemon.log)} lines; secrets in it: {found or 'none'}")
        wrong = len(re.findall("a wrong password for an account", log))
        print(f"   'a wrong password' lines: {wrong}")
        print(f"4. file modes: {modes}")


if __name__ == "__main__":
    main()
