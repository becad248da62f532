"""A room's members as NAMES lists them (353 lines, then 366), for every IRC
command that shows them: NAMES, JOIN, and the JOIN burst of a device that
attaches (registration, reattach)."""

from __future__ import annotations

from collections.abc import Iterable

from chatd.irc import numerics as n
from chatd.irc.render import mask
from chatd.irc.room_commands import prefixes
from chatd.irc.session import IrcSession, numeric
from chatd.model.chat import Room
from chatd.net.bulk import pack_words

LIST_LINE_BUDGET = 400


def word_lines(head: str, words: Iterable[str], budget: int) -> list[str]:
    """Join words into space-separated chunks of at most budget bytes after head."""
    return [" ".join(chunk) for chunk in pack_words(words, len(head.encode()), budget)]


def names_reply(session: IrcSession, room: Room, end: bool = True) -> int:
    """353 lines listing room's members (@ and + before operators and voiced),
    then 366 unless end is false (a NAMES of several rooms ends once).

    Return how many 353 lines were sent (what a NAMES is charged by)."""
    long_form = session.caps.has("userhost-in-names")
    multi = session.caps.has("multi-prefix")
    names = [
        prefixes(room, member, multi)
        + (mask(session.chat, member.nick) if long_form else member.nick)
        for member in sorted(room.members.values(), key=lambda u: u.key)
    ]
    symbol = "@" if room.rules.has("s") else "="
    head = f":{session.server.name} 353 {session.nick} {symbol} {room.name} :"
    chunks = word_lines(head, names, LIST_LINE_BUDGET)
    for chunk in chunks:
        numeric(session, n.RPL_NAMREPLY, symbol, room.name, text=chunk)
    if end:
        numeric(session, n.RPL_ENDOFNAMES, room.name, text="End of /NAMES list")
    return len(chunks)
