"""The least a Twisted chat server can do: a floor for chatd's chatter figures.

    python -m bench.floor_server [--transport-write]

Speaks just enough of chatd's line protocol for the benchmark's chatter
scenario: the first line is the nickname (JOIN #lobby), `/join <room>` moves
the client to a room, any other line goes to every member of the room as
`MSG <room> <nick> <text>`, the sender included. No validation, no limits, no
history, no accounts: one dictionary of rooms and a loop of send() calls. By
default each delivery is the socket's own send() (what chatd's plain-TCP
connections do while nothing waits in their transport); with
--transport-write, Twisted's transport.write (a buffer, two epoll changes and a
write event per delivery). It prints `listening on <port>` once it listens on
an ephemeral 127.0.0.1 port. bench/floor.py runs it beside chatd and InspIRCd.
Never a server to use: it trusts every byte.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402

ROOMS: dict[bytes, set[Member]] = {}


class Member(protocol.Protocol):
    """One client: a nickname, a room, and the bytes of a line not yet ended."""

    direct = True
    nick: bytes | None = None
    room: bytes | None = None
    partial = b""

    def connectionMade(self) -> None:
        self.send = self.transport.socket.send  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if self.nick is None:
                self.nick = line
                self.join(b"#lobby")
            elif line.startswith(b"/join "):
                self.join(line[6:])
            elif self.room is not None:
                out = b"MSG " + self.room + b" " + self.nick + b" " + line + b"\r\n"
                for member in ROOMS[self.room]:
                    member.write(out)

    def write(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if not self.direct:
            transport.write(data)
            return
        try:
            sent = self.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # gone: its connectionLost comes from the reactor
        if sent < len(data):
            transport.write(data[sent:])

    def join(self, room: bytes) -> None:
        if self.room is not None:
            ROOMS[self.room].discard(self)
        self.room = room
        ROOMS.setdefault(room, set()).add(self)
        self.write(b"JOIN " + room + b" " + (self.nick or b"") + b"\r\n")

    def connectionLost(self, reason: object = None) -> None:
        if self.room is not None:
            ROOMS[self.room].discard(self)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("--transport-write", action="store_true")
    args = parser.parse_args(argv)
    Member.direct = not args.transport_write
    factory = protocol.ServerFactory()
    factory.protocol = Member
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    print(f"listening on {port.getHost().port}", flush=True)  # type: ignore[attr-defined]
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
