"""Telnet command sequences taken out of the byte stream."""

from __future__ import annotations

from chatd.line.telnet import TelnetFilter


def test_plain_text_passes_untouched() -> None:
    """Without 0xFF nothing changes and nothing is owed."""
    assert TelnetFilter().feed("héllo\r\n".encode()) == ("héllo\r\n".encode(), b"")


def test_options_are_refused_and_refusals_not_answered() -> None:
    """DO x gets WONT x, WILL x gets DONT x; DONT and WONT get nothing."""
    text, reply = TelnetFilter().feed(
        b"a\xff\xfd\x01b\xff\xfb\x03c\xff\xfe\x01\xff\xfc\x03"
    )
    assert text == b"abc"
    assert reply == b"\xff\xfc\x01\xff\xfe\x03"


def test_sequences_cut_between_packets_are_put_together() -> None:
    """An IAC at a packet's end waits for the rest."""
    telnet = TelnetFilter()
    assert telnet.feed(b"ab\xff") == (b"ab", b"")
    assert telnet.feed(b"\xfd") == (b"", b"")
    assert telnet.feed(b"\x18cd") == (b"cd", b"\xff\xfc\x18")


def test_subnegotiation_is_skipped_and_bounded() -> None:
    """IAC SB ... IAC SE vanishes; an endless one is not kept past its bound."""
    telnet = TelnetFilter()
    assert telnet.feed(b"x\xff\xfa\x18\x00xterm\xff\xf0y") == (b"xy", b"")
    telnet.feed(b"\xff\xfa" + b"z" * 1000)
    assert telnet.partial == b""


def test_bare_commands_are_collected() -> None:
    """IP (Ctrl-C) and AYT are reported in order, once."""
    telnet = TelnetFilter()
    assert telnet.feed(b"\xff\xf4a\xff\xf6") == (b"a", b"")
    assert telnet.take_commands() == [0xF4, 0xF6]
    assert telnet.take_commands() == []


def test_non_telnet_ff_stays_in_the_text() -> None:
    """A 0xFF before a byte below 240, or doubled, is text (bad UTF-8 later)."""
    assert TelnetFilter().feed(b"a\xff b\xff\xffc") == (b"a\xff b\xffc", b"")
