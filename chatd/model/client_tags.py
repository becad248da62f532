"""Client tags: what a user attaches to a message or sends alone (typing, reactions).

IRCv3 message-tags calls them client-only tags: a name starting with '+'
and a value, which the server relays without reading. chatd's model reads
three of them, so that every door shows the same meaning (docs/protocol.md,
Typing, reactions and replies):

- `+typing` (IRCv3 typing): active, paused or done, sent alone (TAGMSG);
- `+draft/react` (IRCv3 react): a reaction, an emoji or a short text, sent
  alone with `+draft/reply` naming the message reacted to;
- `+draft/reply` (IRCv3 reply): on a message, the id of the one it answers.

The rules here are the model's, asked by every door: which tags are never
passed on (DENIED, IRC's CLIENTTAGDENY), how many bytes a message's client
tags may hold (MAX_CLIENT_TAG_BYTES), and how fast a user may send tags
alone (TAG_BURST, TAG_RATE: typing must not become a flood).
"""

from __future__ import annotations

from collections.abc import Mapping

from chatd.model.errors import ChatError, ErrorCode

# Client tags in the order given: (name with its '+', value) pairs.
Tags = tuple[tuple[str, str], ...]
NO_TAGS: Tags = ()

TYPING = "+typing"
REACT = "+draft/react"
REPLY = "+draft/reply"
TYPING_STATES = ("active", "paused", "done")

# Never passed on. +draft/channel-context shows a private message inside a
# room's window, a room the sender need not be in: chatd cannot vouch for it.
DENIED: frozenset[str] = frozenset({"+draft/channel-context"})

# IRCv3 message-tags: a client's tag data, all its tags, may hold 4094 bytes
# (4096 with the '@' and the space); a server's line, all tags, 8191.
MAX_CLIENT_TAG_BYTES = 4094
MAX_TAG_BYTES = 8191
MAX_REACTION_BYTES = 64  # a reaction is an emoji or a word or two
MAX_ID_LENGTH = 64  # a message id named by a reply or a reaction (opaque)

# Tags sent alone (IRC's TAGMSG, the line door's /typing and /react): a
# burst of TAG_BURST, then TAG_RATE a second. IRCv3 typing asks clients for
# one +typing=active every 3 seconds at most, so a person typing in three
# rooms at once and reacting now and then stays well inside it.
TAG_BURST = 10
TAG_RATE = 1.0


def client_tags(tags: Mapping[str, str]) -> Tags:
    """The client-only tags of a message's tags that may be passed on, in order.

    Tags without the '+' (the client's label, say) are the server's to read
    and are never relayed; neither are the DENIED ones, nor a name IRCv3 does
    not allow or a value holding NUL (nothing may end a line where relayed).
    """
    if not tags:
        return NO_TAGS
    return tuple(
        (name, value)
        for name, value in tags.items()
        if name.startswith("+")
        and is_tag_name(name)
        and name not in DENIED
        and "\x00" not in value
    )


def is_tag_name(name: str) -> bool:
    """Whether name ('+' included) is one IRCv3 message-tags allows.

    An optional vendor (a host name and '/'), then ASCII letters, digits and
    hyphens: nothing that could end or split a line where it is relayed.
    """
    vendor, _, key = name[1:].rpartition("/")
    return (
        bool(key)
        and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in key)
        and all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in vendor)
    )


def tag_value(tags: Tags, name: str) -> str | None:
    """The value of tag name in tags, or None."""
    for key, value in tags:
        if key == name:
            return value
    return None


def typing_state(tags: Tags) -> str | None:
    """The typing state (active, paused, done) tags say, or None."""
    state = tag_value(tags, TYPING)
    return state if state in TYPING_STATES else None


def reaction(tags: Tags) -> tuple[str, str] | None:
    """(id reacted to, reaction) if tags are a reaction, else None.

    A value an IRC client escaped may hold anything, a line break too: a
    reaction that is not short printable text means nothing to the doors
    that show it as text (reaction_problem).
    """
    react, to = tag_value(tags, REACT), tag_value(tags, REPLY)
    if not react or not to or not is_message_id(to) or reaction_problem(react):
        return None
    return to, react


def reply_to(tags: Tags) -> str | None:
    """The id of the message a message with tags answers, or None."""
    to = tag_value(tags, REPLY)
    return to if to and is_message_id(to) else None


def is_message_id(text: str) -> bool:
    """Whether text can name a message: one word, printable, not too long."""
    return (
        0 < len(text) <= MAX_ID_LENGTH
        and text.isprintable()
        and not any(ch.isspace() for ch in text)
    )


def reaction_problem(text: str) -> str | None:
    """Why text cannot be a reaction (empty, too long, several lines), or None."""
    if not text.strip():
        return "a reaction is an emoji or a short text"
    if len(text.encode()) > MAX_REACTION_BYTES:
        return f"a reaction holds at most {MAX_REACTION_BYTES} bytes"
    if not text.isprintable():
        return "a reaction is printable text"
    return None


def check_size(tags: Tags) -> None:
    """Refuse tags past IRCv3's 4094 bytes of client tag data (ERR too-long)."""
    if tags and spelled_size(tags) > MAX_CLIENT_TAG_BYTES:
        raise ChatError(
            ErrorCode.TOO_LONG,
            f"client tags hold at most {MAX_CLIENT_TAG_BYTES} bytes; "
            "the message was dropped",
        )


def spelled_size(tags: Tags) -> int:
    """The bytes tags take on an IRC line, escaped, ';' between (no '@')."""
    size = 0
    for name, value in tags:
        size += len(name.encode()) + 1 + len(value.encode()) + 1
        size += sum(value.count(ch) for ch in "; \\\r\n")
    return max(0, size - 1)
