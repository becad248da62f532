"""IRCv3 labeled-response: a command's replies, framed under the client's label.

A client with the `labeled-response` and `batch` caps on may tag a command
with `label=...`. Everything the server sends it as the answer to that
command (numerics, the echo of its own message, a JOIN's NAMES, a history
batch that comes later) is its response, framed here as the spec says:

- no line at all: `@label=L :server ACK`;
- one line: that line, with the label tag added;
- several: `@label=L :server BATCH +ref labeled-response`, each line tagged
  `batch=ref` (a line already in a batch of its own, such as a chathistory
  batch's messages, keeps that tag: the inner batch nests, its BATCH lines
  carrying the outer tag), then `BATCH -ref`.

What the door collects as the response, and when, is IrcConnection's
(chatd.irc.protocol); this module only spells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred

from chatd.irc.message import CRLF, escape_tag_value, irc_line

CAP = "labeled-response"
BATCH_TYPE = "labeled-response"
# IRCv3 labeled-response: "The value MUST NOT exceed 64 bytes."
MAX_LABEL = 64


@dataclass(eq=False, slots=True)
class Labeling:
    """One labeled command being answered: its label and what it said so far."""

    label: str
    before: list[bytes] | None  # the connection's output from before the command
    replies: list[bytes] = field(default_factory=list)  # the response so far
    apart: list[bytes] = field(default_factory=list)  # sent meanwhile, not replies
    # Answers that come later, each with where it goes among the replies
    # (how many reply writes came before it) and its fallback.
    later: list[tuple[int, Deferred[bytes], bytes]] = field(default_factory=list)


def label_error(label: str) -> str | None:
    """Why label cannot be used (too long), or None if it can."""
    if len(label.encode("utf-8")) > MAX_LABEL:
        return f"Labels are limited to {MAX_LABEL} bytes"
    return None


def has_batch_tag(line: bytes) -> bool:
    """Tell whether a line (no CRLF) already carries a batch tag."""
    if not line.startswith(b"@"):
        return False
    section = line[1:].partition(b" ")[0]
    return any(tag.startswith(b"batch=") for tag in section.split(b";"))


def tagged(line: bytes, tag: bytes) -> bytes:
    """A line (no CRLF) with tag (key=value, spelled) added to its tags."""
    if line.startswith(b"@"):
        head, _, rest = line.partition(b" ")
        return head + b";" + tag + b" " + rest
    return b"@" + tag + b" " + line


def labeled(
    label: str, replies: bytes, source: str, reference: Callable[[], str]
) -> bytes:
    """The response to a labeled command whose replies are these lines.

    reference() names the labeled-response batch, if one is needed.
    """
    label_tag = b"label=" + escape_tag_value(label).encode("utf-8")
    lines = replies.split(CRLF)[:-1] if replies else []
    if not lines:
        return irc_line("ACK", source=source, tags=label_tag.decode("utf-8"))
    if len(lines) == 1:
        return tagged(lines[0], label_tag) + CRLF
    name = reference()
    batch_tag = f"batch={name}".encode()
    out = [
        irc_line(
            "BATCH",
            f"+{name}",
            BATCH_TYPE,
            source=source,
            tags=label_tag.decode("utf-8"),
        )
    ]
    for line in lines:
        out.append((line if has_batch_tag(line) else tagged(line, batch_tag)) + CRLF)
    out.append(irc_line("BATCH", f"-{name}", source=source))
    return b"".join(out)
