"""A line-door user on a plain socket, for the real-client checks beside it."""

from __future__ import annotations

import socket

WAIT = 20.0  # seconds to connect


class LineUser:
    """A line-door user: what it sends, and every line it was sent."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.settimeout(0.2)
        self.seen = ""
        self.send(nick)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def read(self) -> str:
        """Everything sent so far (what arrives within 0.2 s added)."""
        try:
            while chunk := self.sock.recv(65536):
                self.seen += chunk.decode(errors="replace")
        except TimeoutError:
            pass
        return self.seen
