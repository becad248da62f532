"""IRC messages: parsing what a client sends, and spelling what the server sends.

The grammar is the Modern IRC Client Protocol's, with IRCv3 message tags:
``[@tags SPACE] [:source SPACE] command *(SPACE param) [SPACE :trailing]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CRLF = b"\r\n"
# RFC 1459/2812: 512 bytes per line, CRLF included, not counting the tags.
MAX_LINE = 512
MAX_TAG_BYTES = 8191  # IRCv3 message-tags: the client's tags, '@' and space included

_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPES = str.maketrans(
    {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
)


class ParseError(ValueError):
    """A line that is not an IRC message (an empty command, a bad tag section)."""


@dataclass(frozen=True, slots=True)
class IrcMessage:
    """One message from a client: tags, optional source, command and parameters."""

    command: str  # upper-cased
    params: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None


def unescape_tag_value(value: str) -> str:
    """Undo IRCv3 tag value escaping; a lone trailing backslash is dropped."""
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        out.append(_TAG_UNESCAPES.get(nxt, nxt))
    return "".join(out)


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire (IRCv3 message-tags)."""
    return value.translate(_TAG_ESCAPES)


def parse_tags(section: str) -> dict[str, str]:
    """Parse the part between '@' and the first space into a dict."""
    tags: dict[str, str] = {}
    for item in section.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if not key:
            raise ParseError("a message tag has an empty name")
        tags[key] = unescape_tag_value(value)
    return tags


def parse_message(line: str) -> IrcMessage:
    """Parse one line (without CRLF) from a client; ParseError if it has no command."""
    rest = line.lstrip(" ")
    tags: dict[str, str] = {}
    source: str | None = None
    if rest.startswith("@"):
        section, _, rest = rest[1:].partition(" ")
        tags = parse_tags(section)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    params: list[str] = []
    command, _, rest = rest.partition(" ")
    if not command:
        raise ParseError("no command")
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return IrcMessage(command.upper(), tuple(params), tags, source)


def irc_line(
    command: str,
    *params: str,
    text: str | None = None,
    source: str | None = None,
    tags: str = "",
) -> bytes:
    """Encode one server line with CRLF.

    params are middle parameters (no spaces, not starting with ':'); text,
    when given, is the trailing parameter and always gets its ':'. tags is
    the already-spelled tag section without '@' ("" for none).
    """
    parts: list[str] = []
    if tags:
        parts.append("@" + tags)
    if source is not None:
        parts.append(":" + source)
    parts.append(command)
    parts.extend(params)
    if text is not None:
        parts.append(":" + text)
    return " ".join(parts).encode("utf-8") + CRLF


def split_utf8(text: str, budget: int) -> list[str]:
    """Split text into pieces of at most budget UTF-8 bytes, on character bounds.

    Splits at the last space within the budget where there is one, so that
    words stay whole; at least one piece is returned.
    """
    budget = max(budget, 4)  # one character of UTF-8 always fits
    data = text.encode("utf-8")
    if len(data) <= budget:
        return [text]
    pieces: list[str] = []
    while len(data) > budget:
        cut = budget
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # inside a character
            cut -= 1
        space = data.rfind(b" ", 0, cut + 1)
        if space > budget // 2:
            cut = space
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        if data.startswith(b" ") and cut == space:
            data = data[1:]
    if data:
        pieces.append(data.decode("utf-8"))
    return pieces
