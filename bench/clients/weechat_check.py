"""WeeChat (headless) against a fresh chatd: docs/clients.md's checklist, repeatable.

Starts `twistd -n chatd` from this checkout on loopback ports it picks, a
line-door user (a socket, as nc would be) who registers the operator account
alice, and two `weechat-headless` processes driven through their FIFO (one
plain, one logging in to alice with SASL PLAIN, which attaches to the line
user); WeeChat's logger writes each buffer to a file, and each check waits (at
most WAIT seconds) for its line there or on the line door. Prints one line per
check and exits 1 if any failed:

    /work/venv/bin/python -m bench.clients.weechat_check

Needs `weechat-headless` (Debian's weechat-headless). About 30 seconds: WeeChat
paces its own output (about one line every 2 seconds after a burst).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.clients.line_user import LineUser

ROOT = Path(__file__).resolve().parents[2]

WAIT = 20.0  # seconds a check waits for its line
PASSWORD = "correct-horse-1"
LISTENING = re.compile(r"chatd (IRC )?listening on \S+: \S+ port (\d+)")


def twistd() -> str:
    beside = Path(sys.executable).with_name("twistd")
    return str(beside) if beside.exists() else shutil.which("twistd") or "twistd"


class Daemon:
    """twistd -n chatd on tcp:0 loopback ports; the line and IRC ports from its log."""

    def __init__(self, home: Path) -> None:
        (home / "ops.txt").write_text("alice\n")
        args = [
            *("--listen", "tcp:0:interface=127.0.0.1"),
            *("--irc", "tcp:0:interface=127.0.0.1"),
            *("--database", ":memory:", "--operators", str(home / "ops.txt")),
            *("--argon2-memory", "8192", "--argon2-time", "1"),
        ]
        self.log = home / "chatd.log"
        self.process = subprocess.Popen(
            [twistd(), "-n", "--pidfile=", "chatd", *args],
            cwd=home,
            env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.line_port = self.irc_port = 0
        deadline = time.monotonic() + WAIT
        while not (self.line_port and self.irc_port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("chatd did not start:\n" + self.log.read_text())
            for found in LISTENING.finditer(self.log.read_text()):
                if found.group(1):
                    self.irc_port = int(found.group(2))
                else:
                    self.line_port = int(found.group(2))
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class WeeChat:
    """weechat-headless in a directory of its own, driven through its FIFO."""

    def __init__(self, home: Path, name: str, port: int, *setup: str) -> None:
        self.dir = home / name
        self.dir.mkdir()
        logs, fifo = self.dir / "logs", self.dir / "fifo"
        commands = [
            f"/set logger.file.path {logs}",
            "/set logger.file.mask $plugin.$name.log",
            "/set logger.file.flush_delay 0",
            f"/set fifo.file.path {fifo}",
            f"/server add t 127.0.0.1/{port} -notls -nicks={name}",
            *setup,
            "/connect t",
        ]
        self.fifo, self.logs = fifo, logs
        self.process = subprocess.Popen(
            ["weechat-headless", "--stdout", "-d", str(self.dir)]
            + ["-r", ";".join(commands)],
            stdin=subprocess.DEVNULL,
            stdout=(self.dir / "stdout.log").open("w"),
            stderr=subprocess.STDOUT,
        )

    def command(self, buffer: str, text: str) -> None:
        """Type text in buffer (irc.server.t, irc.t.#lobby...)."""
        deadline = time.monotonic() + WAIT
        while not self.fifo.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with self.fifo.open("w") as pipe:
            pipe.write(f"{buffer} *{text}\n")

    def log(self, buffer: str) -> str:
        path = self.logs / f"irc.{buffer}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def waits(what: str, seen: Callable[[], str], pattern: str) -> bool:
    """Wait for pattern in seen(); print the check's result."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if re.search(pattern, seen()):
            print(f"ok    {what}")
            return True
        time.sleep(0.2)
    print(f"FAIL  {what}: no {pattern!r}")
    return False


def run(home: Path) -> bool:
    daemon = Daemon(home)
    started: list[WeeChat] = []
    try:
        alice = LineUser(daemon.line_port, "alice")
        alice.send(f"/register {PASSWORD} {PASSWORD}")
        results = [waits("alice registers", alice.read, r"ACCOUNT alice alice")]
        bob = WeeChat(
            home, "wbob", daemon.irc_port, "/set irc.server.t.autojoin #lobby"
        )
        started.append(bob)
        results.append(waits("WeeChat joins", alice.read, r"JOIN #lobby wbob"))
        alice.send("hello from the line door")
        results.append(
            waits("line -> WeeChat", lambda: bob.log("t.#lobby"), r"alice\thello from")
        )
        bob.command("irc.t.#lobby", "hi alice")
        bob.command("irc.t.#lobby", "/me waves")
        results.append(
            waits("WeeChat -> line", alice.read, r"MSG #lobby wbob hi alice")
        )
        results.append(waits("WeeChat /me", alice.read, r"ACTION #lobby wbob waves"))
        bob.command("irc.server.t", "/msg alice psst")
        results.append(waits("WeeChat /msg", alice.read, r"PRIV wbob alice psst"))
        alice.send("/msg wbob private back")
        results.append(
            waits("line /msg", lambda: bob.log("t.alice"), r"alice\tprivate back")
        )
        bob.command("irc.server.t", "/away brb")
        results.append(waits("WeeChat /away", alice.read, r"AWAY wbob brb"))
        bob.command("irc.server.t", "/nick wbobby")
        results.append(waits("WeeChat /nick", alice.read, r"RENAME wbob wbobby"))
        alice.send("/away at lunch")
        bob.command("irc.server.t", "/msg alice are you there")
        results.append(
            waits(
                "line /away, 301 to WeeChat",
                lambda: bob.log("t.alice"),
                r"\[alice\] is away: at lunch",
            )
        )
        sasl = WeeChat(
            home,
            "walice",
            daemon.irc_port,
            "/set irc.server.t.sasl_mechanism plain",
            "/set irc.server.t.sasl_username alice",
            f"/set irc.server.t.sasl_password {PASSWORD}",
        )
        started.append(sasl)
        server = lambda: sasl.log("server.t")  # noqa: E731
        results.append(waits("SASL PLAIN", server, r"SASL authentication successful"))
        results.append(
            waits(
                "SASL attaches: #lobby", lambda: sasl.log("t.#lobby"), r"alice.*joined"
            )
        )
        results.append(
            waits("attached while away: 306", server, r"marked as being away")
        )
        sasl.command("irc.t.#lobby", "from the second device")
        results.append(
            waits("device -> line", alice.read, r"MSG #lobby alice from the second")
        )
        sasl.command("irc.server.t", "/quote KLINE 5 wbobby!*@* :testing")
        results.append(waits("KLINE", server, r"Added K-line wbobby!\*@\* for 5m"))
        results.append(
            waits("K-lined WeeChat closed", lambda: bob.log("server.t"), r"K-lined")
        )
        sasl.command("irc.server.t", "/quote REHASH")
        results.append(waits("REHASH", server, r"Rehashing"))
        return all(results)
    finally:
        for weechat in started:
            weechat.stop()
        daemon.stop()


def main() -> None:
    if shutil.which("weechat-headless") is None:
        raise SystemExit(
            "weechat-headless is not installed (apt-get install weechat-headless)"
        )
    with tempfile.TemporaryDirectory(prefix="chatd-weechat-") as home:
        sys.exit(0 if run(Path(home)) else 1)


if __name__ == "__main__":
    main()
