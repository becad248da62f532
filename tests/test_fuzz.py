"""Property: no byte sequence breaks the server, the sender's replies or anyone else."""

from __future__ import annotations

import re
import unicodedata

from helpers import connect, disconnect, make_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from chatd.line.wire import parse_server_line

# Pieces that reach deeper than random bytes: commands, framing and encoding traps.
TRAPS = [
    b"\n",
    b"\r\n",
    b"\r",
    b"/",
    b"//",
    b" ",
    b"/join #room\n",
    b"/join #\xc3\xa9\n",
    b"/part\n",
    b"/part #room bye\n",
    b"/nick carol\n",
    b"/nick bob\n",
    b"/me \n",
    b"/msg bob hi\n",
    b"/msg\n",
    b"/who\n",
    b"/rooms\n",
    b"/help\n",
    b"/quit\n",
    b"/NICK x\n",
    b"hello\n",
    b"\x1b[31m",
    b"\x00",
    b"\x7f",
    b"\xc2\x9b",
    b"\xff",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"x" * 2100,
    b"\t",
    "ａｌｉｃｅ".encode(),
]

junk = st.lists(
    st.one_of(st.binary(max_size=300), st.sampled_from(TRAPS)), max_size=40
).map(b"".join)
cuts = st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=20)


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut data into pieces of the given sizes (cycled), the way TCP may."""
    pieces, at, i = [], 0, 0
    while at < len(data):
        size = sizes[i % len(sizes)]
        pieces.append(data[at : at + size])
        at, i = at + size, i + 1
    return pieces


# The server's refusals of telnet options (IAC WONT x, IAC DONT x; see
# chatd/line/telnet.py) are not lines and may come between them: UTF-8 text never
# holds 0xFF, so they are taken out before the lines are checked.
TELNET_REFUSAL = re.compile(rb"\xff[\xfc\xfe].", re.DOTALL)


def assert_well_formed(data: bytes) -> None:
    """Every line is UTF-8, ends in CRLF, parses by its verb, has no controls."""
    data = TELNET_REFUSAL.sub(b"", data)
    assert data == b"" or data.endswith(b"\r\n")
    for raw in data.split(b"\r\n")[:-1]:
        text = raw.decode("utf-8")
        parse_server_line(text)
        assert all(ch == "\t" or unicodedata.category(ch) != "Cc" for ch in text)


@settings(max_examples=150, deadline=None)
@given(data=junk, sizes=cuts)
def test_arbitrary_bytes_never_break_anything(data: bytes, sizes: list[int]) -> None:
    """Junk from alice: no exception, only well-formed replies, bob still served."""
    clock = Clock()
    factory = make_factory(clock)
    (alice, a_out), (bob, b_out) = connect(factory, "alice"), connect(factory, "bob")
    for piece in chunks(data, sizes):
        alice.dataReceived(piece)
    clock.advance(1000)  # let throttled lines drain
    if a_out.disconnecting:
        disconnect(alice)
    assert_well_formed(a_out.value())
    assert_well_formed(b_out.value())
    b_out.clear()
    bob.dataReceived(b"/join #lobby\nstill works\n")
    assert b_out.value().endswith(b"MSG #lobby bob still works\r\n")
