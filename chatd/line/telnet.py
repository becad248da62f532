"""Telnet commands inside a client's byte stream: taken out, every option refused.

A person using `telnet` sends commands such as IAC IP IAC DO TIMING-MARK when
they press Ctrl-C, and telnet then discards everything the server sends until
it gets an answer. UTF-8 text never contains the byte 0xFF (IAC), so these
sequences can be told from chat text without knowing whether the client is
telnet at all. The option codes come from twisted.conch.telnet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.conch.telnet import DO, DONT, IAC, SB, SE, WILL, WONT

FIRST_COMMAND = 240  # telnet commands are the bytes 240 (SE) to 255 (IAC)
MAX_SUBNEGOTIATION = 512  # bytes of an unfinished IAC SB ... kept between packets

_IAC, _DO, _DONT, _WILL, _WONT, _SB = (ord(b) for b in (IAC, DO, DONT, WILL, WONT, SB))
_NEGOTIATION = frozenset({_DO, _DONT, _WILL, _WONT})


@dataclass
class TelnetFilter:
    """Splits received bytes into text, the answers owed, and bare commands."""

    partial: bytes = b""  # an IAC sequence cut off at the end of the last packet
    commands: list[int] = field(default_factory=list)  # e.g. IP, AYT, in order
    sequences: int = 0  # telnet sequences taken out by the last feed()
    # Commands inside a UTF-8 letter (docs/clients.md, telnet): netkit telnet
    # sends IAC IP for the 0x83 of "у", the byte lost. Not the person's Ctrl-C.
    letters_lost: int = 0
    told: bool = False  # the person was told of the line being lost (once a line)

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Return (text without telnet sequences, bytes to send back)."""
        data, self.partial = self.partial + data, b""
        self.sequences = 0
        text, reply = bytearray(), bytearray()
        # Each request is refused every time it comes (RFC 1143; telnet waits
        # for the answer to DO TIMING-MARK at every Ctrl-C), but once per
        # packet: a packet of thousands of requests gets one answer each.
        answered: set[bytes] = set()
        at, size = 0, len(data)
        while at < size:
            start = data.find(IAC, at)
            if start < 0:
                text += data[at:]
                break
            text += data[at:start]
            if start + 1 >= size:
                self.partial = data[start:]
                break
            command = data[start + 1]
            if command < FIRST_COMMAND:  # not telnet: a stray 0xFF in bad UTF-8
                text.append(_IAC)
                at = start + 1
            elif command == _IAC:  # an escaped 0xFF: text, and so bad UTF-8
                text.append(_IAC)
                at = start + 2
            elif command in _NEGOTIATION:
                if start + 2 >= size:
                    self.partial = data[start:]
                    break
                request = data[start + 1 : start + 3]
                option = request[1:]
                # Refuse what is offered or asked; never answer a refusal (RFC 854).
                if command in (_DO, _WILL) and request not in answered:
                    answered.add(request)
                    reply += IAC + (WONT if command == _DO else DONT) + option
                self.sequences += 1
                at = start + 3
            elif command == _SB:
                end = data.find(IAC + SE, start + 2)
                if end < 0:
                    if size - start <= MAX_SUBNEGOTIATION:
                        self.partial = data[start:]
                    break
                self.sequences += 1
                at = end + 2
            else:
                if inside_letter(text):
                    self.letters_lost += 1
                else:
                    self.commands.append(command)
                self.sequences += 1
                at = start + 2
        return bytes(text), bytes(reply)

    def take_commands(self) -> list[int]:
        """Return the bare commands seen so far and forget them."""
        commands, self.commands = self.commands, []
        return commands


def inside_letter(text: bytearray) -> bool:
    """Tell whether text ends inside a UTF-8 sequence (a lead byte, too few after).

    A telnet command there stands for a byte of the letter that telnet's line
    mode took for one of its control characters (0x83 is ^C with the high bit).
    """
    for back in range(1, min(4, len(text)) + 1):
        byte = text[-back]
        if byte < 0x80:
            return False
        if byte >= 0xC0:  # the lead byte: how long the sequence should be
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back < length
    return False
