"""A telnet client writing non-ASCII letters on the line door (docs/clients.md).

netkit telnet in its line mode turns a UTF-8 byte whose low 7 bits are one of
its control characters into a telnet command (0x83 of "у" becomes IAC IP, the
byte lost). The line is refused as bad UTF-8, as before; the person is told
why, and not that Ctrl-C does not leave the chat (they pressed no Ctrl-C).
"""

from __future__ import annotations

from helpers import connect, lines, make_factory

from chatd.line.telnet import TelnetFilter, inside_letter

# "у ✓" as netkit telnet 0.17 sent it (captured on loopback): D1 83 became
# D1 IAC IP IAC DO TIMING-MARK, E2 9C 93 became E2 IAC BRK IAC DO TIMING-MARK 93.
TELNET_MANGLED = b"\xd1\xff\xf4\xff\xfd\x06 \xe2\xff\xf3\xff\xfd\x06\x93\r\n"


def test_a_letter_telnet_mangled_is_explained_not_taken_for_ctrl_c() -> None:
    factory = make_factory()
    proto, out = connect(factory, "dave")
    bob, bob_out = connect(factory, "bob")
    lines(out), lines(bob_out)
    proto.dataReceived(TELNET_MANGLED)
    got = out.value()
    assert got.startswith(b"\xff\xfc\x06")  # WONT TIMING-MARK, as before
    said = got[3:].decode().splitlines()
    assert said[0].startswith("INFO Your telnet turned a letter into a telnet command")
    assert said[1].startswith("ERR bad-encoding")
    assert not [text for text in said if "Ctrl-C" in text]
    assert lines(bob_out) == []
    out.clear()
    # telnet waits for the answer to DO TIMING-MARK: one line, several packets
    proto.dataReceived(b"\xd1\xff\xf4\xff\xfd\x06")
    proto.dataReceived(b" \xe2\xff\xf3\xff\xfd\x06\x93\r\n")
    said = out.value().replace(b"\xff\xfc\x06", b"").decode().splitlines()
    assert [text.split()[:2] for text in said] == [
        ["INFO", "Your"],
        ["ERR", "bad-encoding"],
    ]
    out.clear()
    proto.dataReceived(b"\xff\xf4\xff\xfd\x06")  # a real Ctrl-C: as before
    assert "Ctrl-C does not leave the chat" in out.value().decode(errors="replace")


def test_inside_letter() -> None:
    assert inside_letter(bytearray(b"\xd1"))  # 2-byte letter, lead only
    assert inside_letter(bytearray(b"ok \xe2\x9c"))  # 3-byte letter, two of three
    assert not inside_letter(bytearray(b"ok \xe2\x9c\x93"))  # whole
    assert not inside_letter(bytearray(b"abc"))
    assert not inside_letter(bytearray())
    telnet = TelnetFilter()
    telnet.feed(b"hi\xff\xf4")
    assert telnet.take_commands() == [0xF4] and telnet.letters_lost == 0
