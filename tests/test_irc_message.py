"""IRC message parsing and spelling (chatd.irc.message)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatd.irc.message import (
    ParseError,
    escape_tag_value,
    irc_line,
    parse_message,
    split_utf8,
    unescape_tag_value,
)


def test_parse_plain_command_and_trailing() -> None:
    """PRIVMSG #a :hello there has two parameters, the text whole."""
    msg = parse_message("privmsg #a :hello there")
    assert msg.command == "PRIVMSG"
    assert msg.params == ("#a", "hello there")
    assert msg.tags == {} and msg.source is None


def test_parse_tags_and_source() -> None:
    """Tags are unescaped, the source kept apart from the parameters."""
    msg = parse_message(r"@+draft/reply=abc\:d;time :nick!u@h NOTICE bob :x y")
    assert msg.tags == {"+draft/reply": "abc;d", "time": ""}
    assert msg.source == "nick!u@h"
    assert msg.params == ("bob", "x y")


def test_parse_collapses_repeated_spaces() -> None:
    """Several spaces between parameters separate them like one."""
    assert parse_message("USER  a   0 *  :Real  Name").params == (
        "a",
        "0",
        "*",
        "Real  Name",
    )


def test_parse_empty_trailing_is_a_parameter() -> None:
    """A lone ':' is an empty last parameter, not a missing one."""
    assert parse_message("AWAY :").params == ("",)


@pytest.mark.parametrize("text", ["", "   ", "@a=b", ":src"])
def test_parse_without_command_is_refused(text: str) -> None:
    """A line with no command is a ParseError."""
    with pytest.raises(ParseError):
        parse_message(text)


def test_irc_line_puts_colon_before_text_only() -> None:
    """Middle parameters go bare; the text always gets its colon; CRLF ends it."""
    assert (
        irc_line("001", "bob", text="Welcome", source="s") == b":s 001 bob :Welcome\r\n"
    )
    assert irc_line("JOIN", "#a", source="n!u@h") == b":n!u@h JOIN #a\r\n"
    assert irc_line("AWAY", text="") == b"AWAY :\r\n"


@given(st.text())
def test_tag_values_round_trip(value: str) -> None:
    """Escaping then unescaping a tag value gives it back."""
    assert unescape_tag_value(escape_tag_value(value)) == value


@given(st.text(min_size=0, max_size=300), st.integers(min_value=4, max_value=100))
def test_split_utf8_keeps_pieces_in_budget(text: str, budget: int) -> None:
    """Every piece fits the budget in UTF-8, and nothing but split spaces is lost."""
    pieces = split_utf8(text, budget)
    assert pieces
    assert all(len(piece.encode()) <= budget for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
