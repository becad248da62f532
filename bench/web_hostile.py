"""Figures of issue 22 items 8 and 9: the HTTP side of --web, and WebSocket frames.

    python bench/web_hostile.py                   # every scenario (~50 s)
    python bench/web_hostile.py --root ../orig    # the same against another chatd
    python bench/web_hostile.py halfsent body     # some scenarios

Each scenario starts its own `twistd -n chatd --listen ... --web ... --no-history`
on ephemeral 127.0.0.1 ports (PYTHONPATH=--root), attacks it from this process
over loopback for a bounded time, prints its figures and stops the daemon.

- halfsent: 1,100 connections to --web from 127.0.0.1 each send half a request
  (`GET / HTTP/1.1` and one header), under an open-file limit of 1,100 for the
  daemon. Figures: connections the daemon still holds after 2 s, its open
  descriptors, whether a line client (from 127.0.0.2) registers and what
  /healthz (from 127.0.0.3) answers.
- body: a POST to /healthz with Content-Length 300 MB, the body sent for up to
  10 s. Figures: bytes the client got through, the largest temporary file the
  daemon held, and the status (with the bytes of body sent before it came).
- frames, pieces, pings: 4 WebSockets send empty continuation frames (after a
  one-byte text fragment: one endless message), or empty messages of 64 frames
  each (62 of them empty continuations), or empty pings, as fast as the daemon
  reads, for 10 s; a socket the daemon closes is opened again. A registered
  line client (the probe) sends a line every 0.5 s and times its echo.
  Figures: the probe's p50/p90/worst, the daemon's CPU over the attack (% of
  one core), reconnects.

Only the standard library; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"chatd (IRC |web )?listening on (\S+): \S+ port (\d+)")
WAIT = 10.0
ATTACK = 10.0  # seconds each attack lasts
HALF_SENT = 1100
FILE_LIMIT = 1100


class Daemon:
    """One twistd -n chatd with a line and a web listener on loopback."""

    def __init__(self, root: Path, file_limit: int | None = None) -> None:
        twistd = Path(sys.executable).with_name("twistd")
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")

        def limit() -> None:
            if file_limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))

        self.process = subprocess.Popen(
            [str(twistd), "-n", "--pidfile=", "chatd", "--no-history"]
            + ["--listen", "tcp:0:interface=127.0.0.1"]
            + ["--web", "tcp:0:interface=127.0.0.1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=limit,
        )
        self.ports: dict[str, int] = {}
        deadline = time.monotonic() + WAIT
        assert self.process.stdout is not None
        while len(self.ports) < 2 and time.monotonic() < deadline:
            text = self.process.stdout.readline()
            found = LISTENING.search(text)
            if found:
                self.ports["web" if found.group(1) else "line"] = int(found.group(3))
        if len(self.ports) < 2:
            self.stop()
            raise RuntimeError("the daemon did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def cpu(self) -> float:
        """utime + stime of the daemon, in seconds."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1]
        ticks = os.sysconf("SC_CLK_TCK")
        parts = fields.split()
        return (int(parts[11]) + int(parts[12])) / ticks

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def largest_file(self) -> int:
        """The largest regular file the daemon has open (a request body's)."""
        largest = 0
        for name in os.listdir(f"/proc/{self.process.pid}/fd"):
            try:
                info = os.stat(f"/proc/{self.process.pid}/fd/{name}")
            except OSError:
                continue
            if (info.st_mode & 0o170000) == 0o100000:
                largest = max(largest, info.st_size)
        return largest

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: float = WAIT) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def line_client(port: int, nick: str, source: str = "127.0.0.1") -> socket.socket:
    """A registered line client, or raise."""
    sock = connect(port, source)
    read_until(sock, b"NICK ")
    sock.sendall(nick.encode() + b"\r\n")
    if b"WELCOME" not in read_until(sock, b"JOIN #lobby " + nick.encode()):
        raise RuntimeError("not welcomed")
    return sock


def halfsent(root: Path) -> dict[str, object]:
    daemon = Daemon(root, FILE_LIMIT)
    socks: list[socket.socket] = []
    try:
        before = daemon.descriptors()
        failed = 0
        for _ in range(HALF_SENT):
            try:
                sock = connect(daemon.ports["web"])
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                socks.append(sock)
            except OSError:
                failed += 1
        time.sleep(2.0)
        held = 0
        for sock in socks:
            sock.setblocking(False)
            try:
                sock.recv(65536)  # an answer (503, 408) or the end: not held
            except BlockingIOError:
                held += 1  # nothing to read, not closed: still held
            except OSError:
                pass
        descriptors = daemon.descriptors()
        try:
            line_client(daemon.ports["line"], "chatter", "127.0.0.2").close()
            chat = "registered"
        except (OSError, RuntimeError) as error:
            chat = f"failed ({error.__class__.__name__})"
        try:
            sock = connect(daemon.ports["web"], "127.0.0.3")
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            answer = read_until(sock, b"}\n")
            health = answer.split(b"\r\n\r\n", 1)[-1].decode().strip() or "no answer"
            sock.close()
        except OSError as error:
            health = f"failed ({error.__class__.__name__})"
        return {
            "half-sent connections": HALF_SENT,
            "connect failures": failed,
            "held after 2 s": held,
            "daemon descriptors before": before,
            "daemon descriptors after 2 s": descriptors,
            "line client from 127.0.0.2": chat,
            "/healthz from 127.0.0.3": health,
        }
    finally:
        for sock in socks:
            sock.close()
        daemon.stop()


def body(root: Path) -> dict[str, object]:
    daemon = Daemon(root)
    try:
        sock = connect(daemon.ports["web"])
        sock.sendall(
            b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 300000000\r\n\r\n"
        )
        sock.settimeout(0.2)
        answer = b""
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            pass
        sent_before_answer = 0 if answer else None
        chunk = b"x" * 65536
        sent = 0
        largest = 0
        deadline = time.monotonic() + ATTACK
        sock.settimeout(1.0)
        while sent < 300_000_000 and time.monotonic() < deadline:
            try:
                sent += sock.send(chunk)
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                break
            if sent % (64 * 65536) < 65536:
                largest = max(largest, daemon.largest_file())
        largest = max(largest, daemon.largest_file())
        if not answer:
            try:
                answer = read_until(sock, b"\r\n\r\n", 5.0)
            except OSError:
                pass
        sock.close()
        status = answer.split(b"\r\n", 1)[0].decode() if answer else "none"
        return {
            "body bytes sent": sent,
            "largest temporary file": largest,
            "answer": status,
            "answered before any body": sent_before_answer == 0,
        }
    finally:
        daemon.stop()


def ws_open(port: int) -> socket.socket:
    sock = connect(port)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:%d\r\n\r\n"
        % (port, port)
    )
    head = read_until(sock, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:40].decode(errors="replace"))
    return sock


EMPTY_CONTINUATION = b"\x00\x80\0\0\0\0"
FRAGMENT_START = b"\x01\x81\0\0\0\0x"
PING = b"\x89\x80\0\0\0\0"
# One empty text message in 64 frames: the most pieces a message may have.
PIECES = b"\x01\x80\0\0\0\0" + EMPTY_CONTINUATION * 62 + b"\x80\x80\0\0\0\0"


def attacker(port: int, unit: bytes, start: bytes, stop: threading.Event) -> int:
    """Send unit as fast as it is read until stop; reopen when closed."""
    chunk = unit * (65536 // len(unit))
    reconnects = -1
    while not stop.is_set():
        try:
            sock = ws_open(port)
            reconnects += 1
            sock.settimeout(0.5)
            sock.sendall(start)
            while not stop.is_set():
                try:
                    sock.send(chunk)
                except TimeoutError:
                    continue
        except (OSError, RuntimeError):
            time.sleep(0.05)
            continue
        finally:
            try:
                sock.close()
            except (OSError, UnboundLocalError):
                pass
    return reconnects


def flood(root: Path, unit: bytes, start: bytes) -> dict[str, object]:
    daemon = Daemon(root)
    try:
        probe = line_client(daemon.ports["line"], "probe")
        stop = threading.Event()
        counts: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: counts.append(
                    attacker(daemon.ports["web"], unit, start, stop)
                ),
                daemon=True,
            )
            for _ in range(4)
        ]
        cpu_before = daemon.cpu()
        began = time.monotonic()
        for thread in threads:
            thread.start()
        echoes: list[float] = []
        lost = 0
        buffer = b""
        for number in range(int(ATTACK / 0.5)):
            tick = began + number * 0.5
            time.sleep(max(0.0, tick - time.monotonic()))
            sent = time.monotonic()
            probe.sendall(b"p %d\r\n" % number)
            want = b"MSG #lobby probe p %d\r\n" % number
            probe.settimeout(WAIT)
            try:
                while want not in buffer:
                    buffer += probe.recv(65536)
                echoes.append(time.monotonic() - sent)
                buffer = buffer.split(want, 1)[1]
            except TimeoutError:
                lost += 1
        stop.set()
        spent = time.monotonic() - began
        cpu = (daemon.cpu() - cpu_before) / spent
        for thread in threads:
            thread.join(timeout=WAIT)
        echoes.sort()
        ms = [round(1000 * echoes[int(q * (len(echoes) - 1))], 1) for q in (0.5, 0.9)]
        return {
            "probe p50 ms": ms[0],
            "probe p90 ms": ms[1],
            "probe worst ms": round(1000 * echoes[-1], 1) if echoes else None,
            "echoes lost": lost,
            "daemon CPU %": round(100 * cpu),
            "reconnects": sum(counts),
        }
    finally:
        daemon.stop()


SCENARIOS = {
    "halfsent": halfsent,
    "body": body,
    "frames": lambda root: flood(root, EMPTY_CONTINUATION, FRAGMENT_START),
    "pieces": lambda root: flood(root, PIECES, b""),
    "pings": lambda root: flood(root, PING, b""),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []])
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    for name in args.scenarios or SCENARIOS:
        print(name, json.dumps(SCENARIOS[name](args.root.resolve())), flush=True)


if __name__ == "__main__":
    main()
