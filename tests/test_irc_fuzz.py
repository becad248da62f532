"""Property: no byte sequence from an IRC client breaks the server or anyone else."""

from __future__ import annotations

import unicodedata

from helpers import connect, disconnect, make_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs

from chatd.irc.message import parse_message
from chatd.line.wire import parse_server_line

TRAPS = [
    b"\n",
    b"\r\n",
    b" ",
    b":",
    b"@",
    b"@a=b;c=\\ :src ",
    b"JOIN #lobby\r\n",
    b"JOIN #a,#b,,#\xc3\xa9 key\r\n",
    b"JOIN 0\r\n",
    b"JOIN :\r\n",
    b"PART #lobby :bye\r\n",
    b"PART\r\n",
    b"PRIVMSG #lobby :hi\r\n",
    b"PRIVMSG #lobby :\x01ACTION waves\x01\r\n",
    b"PRIVMSG bob,carol,#lobby,nobody :x\r\n",
    b"PRIVMSG bob :\x01VERSION\x01\r\n",
    b"NOTICE #lobby :n\r\n",
    b"PRIVMSG\r\n",
    b"NICK carol\r\n",
    b"NICK m2\r\n",
    b"NICK :\r\n",
    b"USER a b c d\r\n",
    b"CAP LS 302\r\n",
    b"CAP REQ :server-time echo-message away-notify\r\n",
    b"CAP REQ :-server-time bogus\r\n",
    b"CAP END\r\n",
    b"CAP\r\n",
    b"AWAY :gone\r\n",
    b"AWAY\r\n",
    b"WHO *\r\n",
    b"WHO #lobby\r\n",
    b"WHOIS bob\r\n",
    b"WHOIS\r\n",
    b"MODE #lobby +o bob\r\n",
    b"MODE m +i-x\r\n",
    b"NAMES #lobby\r\n",
    b"LIST\r\n",
    b"ISON bob carol\r\n",
    b"USERHOST bob\r\n",
    b"TOPIC #lobby :t\r\n",
    b"PING\r\n",
    b"PONG :x\r\n",
    b"MOTD elsewhere\r\n",
    b"LUSERS\r\n",
    b"QUIT :bye\r\n",
    b"\x1b[31m",
    b"\x00",
    b"\xff",
    b"\xe2\x82",
    b"x" * 2100,
]

junk = st.lists(
    st.one_of(st.binary(max_size=200), st.sampled_from(TRAPS)), max_size=40
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


def assert_irc_well_formed(data: bytes) -> None:
    """Every line is UTF-8, ends in CRLF, parses, and carries no control but CTCP's."""
    assert data == b"" or data.endswith(b"\r\n")
    for raw in data.split(b"\r\n")[:-1]:
        text = raw.decode("utf-8")
        parse_message(text)
        assert len(raw.split(b" ", 1)[-1]) + 2 <= 512 or raw.startswith(b"@")
        assert all(ch in "\t\x01" or unicodedata.category(ch) != "Cc" for ch in text), (
            text
        )


def assert_line_well_formed(data: bytes) -> None:
    assert data == b"" or data.endswith(b"\r\n")
    for raw in data.split(b"\r\n")[:-1]:
        text = raw.decode("utf-8")
        parse_server_line(text)
        assert all(ch == "\t" or unicodedata.category(ch) != "Cc" for ch in text)


@settings(max_examples=150, deadline=None)
@given(data=junk, sizes=cuts)
def test_arbitrary_irc_bytes_never_break_anything(
    data: bytes, sizes: list[int]
) -> None:
    """Junk from an IRC client: no failure logged, well-formed output, others served."""
    clock = Clock()
    factory = make_factory(clock)
    bob, b_out = connect(factory, "bob")
    carol, c_out = irc_connect(factory, "carol", "server-time", "echo-message")
    mallory, m_out = irc_connect(factory, "m")
    carol.dataReceived(b"JOIN #lobby\r\n")
    mallory.dataReceived(b"JOIN #lobby\r\n")
    with capturedLogs() as events:
        for piece in chunks(data, sizes):
            mallory.dataReceived(piece)
        clock.advance(1000)  # let throttled lines drain
    assert not [e for e in events if e["log_level"] >= LogLevel.error]
    if m_out.disconnecting:
        disconnect(mallory)  # type: ignore[arg-type]
    assert_irc_well_formed(m_out.value())
    assert_irc_well_formed(c_out.value())
    assert_line_well_formed(b_out.value())
    c_out.clear()
    bob.dataReceived(b"still works\n")
    said = f":bob!bob@{bob.host} PRIVMSG #lobby :still works\r\n".encode()
    assert c_out.value().endswith(said)
