"""Rendering and splitting server lines."""

from __future__ import annotations

import pytest

from chatd.line.wire import line, parse_server_line, render, word_lines
from chatd.model.chat import (
    Action,
    Event,
    Joined,
    Message,
    Parted,
    Private,
    Quit,
    Renamed,
)


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (Message("#lobby", "alice", "hi there"), b"MSG #lobby alice hi there\r\n"),
        (Action("#dev", "bob", "waves"), b"ACTION #dev bob waves\r\n"),
        (Private("alice", "bob", "psst"), b"PRIV alice bob psst\r\n"),
        (Joined("#dev", "bob"), b"JOIN #dev bob\r\n"),
        (Parted("#dev", "bob", ""), b"PART #dev bob \r\n"),
        (Parted("#dev", "bob", "lunch"), b"PART #dev bob lunch\r\n"),
        (Quit("bob", "connection lost"), b"QUIT bob connection lost\r\n"),
        (Renamed("bob", "robert"), b"RENAME bob robert\r\n"),
        (Message("#café", "Zoë", "¡hola!"), "MSG #café Zoë ¡hola!\r\n".encode()),
    ],
)
def test_render_spells_each_event(event: Event, wire: bytes) -> None:
    """Each event becomes its docs/protocol.md line, UTF-8, ending in CRLF."""
    assert render(event) == wire


def test_empty_text_keeps_its_field() -> None:
    """split(" ", n) finds the (empty) free-text field."""
    assert line("PART", "#dev", "bob", text="").decode().split(" ", 3)[3] == "\r\n"


def test_word_lines_splits_within_budget() -> None:
    """A long list is spread over lines under the budget, head repeated."""
    items = [f"nick{i:04d}" for i in range(300)]
    out = word_lines("USERS", ["#big"], items, 200)
    assert len(out) > 1
    assert all(len(data) <= 200 and data.startswith(b"USERS #big ") for data in out)
    assert [w for data in out for w in data.decode().split()[2:]] == items
    assert word_lines("USERS", ["#empty"], [], 200) == [b"USERS #empty\r\n"]


@pytest.mark.parametrize(
    ("raw", "verb", "words", "text"),
    [
        ("MSG #lobby alice hi  there ", "MSG", ("#lobby", "alice"), "hi  there "),
        ("PART #x bob ", "PART", ("#x", "bob"), ""),
        ("JOIN #x bob", "JOIN", ("#x", "bob"), None),
        ("USERS #x a b c", "USERS", ("#x", "a", "b", "c"), None),
        ("ROOMS #lobby:2 #x:1", "ROOMS", ("#lobby:2", "#x:1"), None),
        ("ERR nick-taken alice is taken", "ERR", ("nick-taken",), "alice is taken"),
    ],
)
def test_parse_server_line(
    raw: str, verb: str, words: tuple[str, ...], text: str | None
) -> None:
    """Server lines split by their verb's shape."""
    parsed = parse_server_line(raw)
    assert (parsed.verb, parsed.words, parsed.text) == (verb, words, text)


@pytest.mark.parametrize(
    "raw", ["NOPE x", "JOIN #x", "JOIN #x bob extra", "MSG #x", "USERS", ""]
)
def test_parse_server_line_rejects_malformed(raw: str) -> None:
    """Unknown verbs and wrong field counts are ValueError."""
    with pytest.raises(ValueError):
        parse_server_line(raw)
