"""The web door's pure parts: frames, the message guard, origins."""

from __future__ import annotations

import pytest
from web_helpers import masked_frame
from wsproto.frame_protocol import FrameProtocol, Opcode

from chatd.web.frames import (
    CONTROL_COST,
    FRAGMENT_COST,
    MAX_FRAGMENTS,
    TOO_BIG,
    TOO_MANY,
    MessageGuard,
    frame_lines,
    text_frame,
)
from chatd.web.origins import Origins, normalize_origin


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frames_read_back_whole(size: int) -> None:
    """Each length form (7 bits, 16, 64) reads back as one whole text message."""
    payload = b"x" * size
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(text_frame(payload))
    (frame,) = list(reader.received_frames())
    assert frame.opcode is Opcode.TEXT and frame.message_finished
    assert frame.payload == payload.decode()


def test_frame_lines_makes_one_message_per_line() -> None:
    """Wire lines (CRLF-ended) become one frame each, without their CRLF."""
    data = frame_lines(b"INFO one\r\nINFO two\r\n")
    assert data == text_frame(b"INFO one") + text_frame(b"INFO two")
    assert frame_lines(b"") == b""
    assert frame_lines(b"PART #dev alice \r\n") == text_frame(b"PART #dev alice ")


def test_guard_counts_a_message_over_any_split() -> None:
    """The guard finds the same sizes however the bytes are cut into reads."""
    stream = (
        masked_frame(0x1, b"a" * 300)
        + masked_frame(0x9, b"p" * 100)
        + masked_frame(0x1, b"b" * 70000)
    )
    for cut in (1, 2, 3, 7, 1000):
        reads = [stream[at : at + cut] for at in range(0, len(stream), cut)]
        guard = MessageGuard(70000)
        assert all(guard.feed(data) == len(data) for data in reads)
        assert guard.message == 0
        guard = MessageGuard(69999)
        assert TOO_BIG in [guard.feed(data) for data in reads]


def test_guard_refuses_on_the_header_alone() -> None:
    """A header that claims too much is refused before any of its payload."""
    guard = MessageGuard(4096)
    assert guard.feed(masked_frame(0x2, b"", length=1 << 40)[:14]) == TOO_BIG


def test_guard_charges_control_frames_and_fragments_only() -> None:
    """A whole message is paid for by its line; a ping costs a line, a fragment
    a sixteenth; the guard stops at the header of the first it cannot pay."""
    costs: list[float] = []
    guard = MessageGuard(4096)

    def afford(cost: float) -> bool:
        costs.append(cost)
        return len(costs) < 4

    stream = (
        masked_frame(0x1, b"whole")
        + masked_frame(0x9, b"")  # a ping
        + masked_frame(0x1, b"", fin=False)  # an empty fragment
        + masked_frame(0x0, b"", fin=False)
        + masked_frame(0x0, b"end")
        + masked_frame(0xA, b"")  # a pong: refused, not read
        + masked_frame(0x1, b"after")
    )
    stop = guard.feed(stream, afford)
    assert costs == [CONTROL_COST, FRAGMENT_COST, FRAGMENT_COST, CONTROL_COST]
    assert stream[stop:] == masked_frame(0xA, b"") + masked_frame(0x1, b"after")
    costs.clear()
    assert guard.feed(stream[stop:], lambda cost: True) == len(stream) - stop


def test_guard_refuses_a_message_in_too_many_pieces() -> None:
    """MAX_FRAGMENTS frames make a message; one more piece is refused."""
    guard = MessageGuard(1 << 20)
    pieces = masked_frame(0x1, b"", fin=False) + masked_frame(0x0, b"", fin=False) * (
        MAX_FRAGMENTS - 2
    )
    assert guard.feed(pieces + masked_frame(0x0, b"x")) > 0  # 64 frames: whole
    assert guard.feed(pieces) == len(pieces)
    assert guard.feed(masked_frame(0x0, b"", fin=False)) == TOO_MANY


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("https://Chat.Example.com", "https://chat.example.com"),
        ("https://chat.example.com:443/", "https://chat.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("*", "*"),
        ("chat.example.com", None),
        ("ftp://chat.example.com", None),
        ("https://chat.example.com/path", None),
        ("https://user@chat.example.com", None),
        ("http://host:99999", None),
    ],
)
def test_origins_are_spelled_as_browsers_send_them(
    text: str, spelled: str | None
) -> None:
    assert normalize_origin(text) == spelled


def test_own_origin_is_a_name_of_this_machine_at_the_listeners_port() -> None:
    """The page's own origin: localhost, 127.0.0.1, ::1, the host name or the
    address the connection came in on, at the listener's port; never the Host."""
    own = Origins(hostname="chatbox")
    assert own.allows("http://127.0.0.1:8080", "127.0.0.1", 8080)
    assert own.allows("http://localhost:8080", "127.0.0.1", 8080)
    assert own.allows("https://[::1]:8080", "::1", 8080)
    assert own.allows("http://ChatBox:8080", "127.0.0.1", 8080)
    assert own.allows("http://192.0.2.5:8080", "192.0.2.5", 8080)  # by address
    assert own.allows("http://localhost", "127.0.0.1", 80)
    assert not own.allows("http://127.0.0.1:8081", "127.0.0.1", 8080)
    assert not own.allows("http://evil.example:8080", "127.0.0.1", 8080)
    assert not own.allows("https://chat.example.com", "127.0.0.1", 443)
    assert not own.allows("null", "127.0.0.1", 8080)
    assert not own.allows("ws://127.0.0.1:8080", "127.0.0.1", 8080)
    assert Origins(["*"]).allows("https://anywhere.example", "127.0.0.1", 1)
    proxied = Origins(["https://chat.example.com"])
    assert proxied.allows("https://chat.example.com", "127.0.0.1", 8080)
