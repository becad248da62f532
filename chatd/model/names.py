"""Pure functions on names and text: folding, validation and cleaning."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable

import regex

MAX_NICK_LENGTH = 20
MAX_ROOM_LENGTH = 32  # characters after the "#"
LOBBY = "#lobby"
GUEST_PREFIX = "Guest"

# The categories of combining marks. docs/protocol.md allows "letters (any script)";
# scripts such as Devanagari or Thai cannot spell a name without their vowel
# signs, which Unicode files as marks, so a mark may follow a letter
# (docs/protocol.md, Names).
_MARKS = frozenset({"Mn", "Mc", "Me"})


def fold(name: str) -> str:
    """Return the form under which names are compared: NFKC, then casefolded."""
    if name.isascii():  # NFKC leaves ASCII as it is, and casefold is lower there
        return name.lower()
    return unicodedata.normalize("NFKC", name).casefold()


# Code points that draw nothing: Default_Ignorable_Code_Point (Unicode UAX #44,
# DerivedCoreProperties.txt). Some are letters (the Hangul fillers U+115F,
# U+1160, U+3164, U+FFA0) or marks (variation selectors), so they pass the
# alphabet below, and a name made of them looks blank, or like another with
# one added. Python's unicodedata lacks the property. Unicode derives it from
# category Cf, Variation_Selector, White_Space, Prepended_Concatenation_Mark,
# two excluded ranges and a hand-kept list (Other_Default_Ignorable_Code_Point)
# that grows with new versions. The regex package ships Unicode's own data for
# it and follows each version, so we ask it instead of keeping a copy of the
# derivation here (STYLE.md 9: prefer the library that already does it).
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
MAX_MARKS_IN_A_ROW = 2  # enough for real scripts, not for stacks of "Zalgo" marks


def _invisible(text: str) -> str | None:
    """Describe the first code point of text that draws nothing, or return None."""
    found = _IGNORABLE.search(text)
    if found is None:
        return None
    ch = found.group()
    name = unicodedata.name(ch, "unassigned")
    return f"invisible characters such as U+{ord(ch):04X} ({name})"


def _is_name_body(text: str) -> bool:
    """Tell whether every character of text belongs to the name alphabet.

    That is letters, digits, _ and -, and combining marks after one of them
    (at most MAX_MARKS_IN_A_ROW in a row). Invisible ones are refused before.
    """
    marks_in_a_row = -1  # -1: no base character yet, so no mark may come
    for ch in text:
        if ch.isalpha() or ch.isdecimal() or ch in "_-":
            marks_in_a_row = 0
        elif 0 <= marks_in_a_row < MAX_MARKS_IN_A_ROW and (
            unicodedata.category(ch) in _MARKS
        ):
            marks_in_a_row += 1
        else:
            return False
    return True


# Nicknames that would pass for the server where lines are read as they come
# (nc, telnet): "PRIV chatd you ..." or "PRIV INFO you ..." reads like a notice.
# The server's configured --name, "server" and the service names an IRC
# listener answers for are reserved in any case. The verbs of docs/protocol.md are
# reserved as the wire spells them, in capitals: "PRIV MSG you ..." reads as a
# verb, "PRIV msg you ..." does not, and "nick" is an everyday IRC nickname
# (irctest registers as it) that should stay free.
RESERVED_NICKS = frozenset(
    fold(name) for name in ("server", "NickServ", "ChanServ", "Global")
)
VERB_NICKS = frozenset(
    (
        *("HELLO", "NICK", "WELCOME", "MSG", "ACTION", "PRIV", "JOIN", "PART"),
        *("QUIT", "RENAME", "USERS", "ROOMS", "INFO", "ERR", "BYE"),
        *("HISTORY", "ENDHISTORY", "ID"),
        *("TYPING", "REACT", "REPLY"),
        # chatd's extension: rooms people run, and accounts (docs/protocol.md).
        *("TOPIC", "OP", "DEOP", "VOICE", "DEVOICE", "BAN", "UNBAN", "MODE"),
        *("KICK", "INVITE", "MODES", "ACCOUNT", "OPS", "VOICES", "BANS"),
        *("KLINE", "ENDKLINES"),  # and server bans
        # Version 3 (docs/protocol.md, Devices (version 3)): AWAY; read markers:
        # READ.
        *("AWAY", "READ"),
        "DELETED",  # deleting messages (docs/protocol.md)
        # ... and searching history (docs/protocol.md, Searching history).
        *("FOUND", "ENDSEARCH"),
    )
)


def reserved_nicks(server_name: str) -> frozenset[str]:
    """Return the folded nicknames a server called server_name keeps for itself."""
    return RESERVED_NICKS | {fold(server_name)}


def normalize_name(name: str) -> str:
    """Return the display form of a name as typed: its NFC normalisation."""
    return unicodedata.normalize("NFC", name)


def nick_problem(nick: str, reserved: frozenset[str] = RESERVED_NICKS) -> str | None:
    """Say what is wrong with a nickname, or return None if it is valid.

    reserved holds the folded names kept for the server (see reserved_nicks);
    a verb of the protocol in capitals (VERB_NICKS) is refused too.
    """
    if not nick:
        return "a nickname needs at least one character"
    if len(nick) > MAX_NICK_LENGTH:
        return f"a nickname has at most {MAX_NICK_LENGTH} characters"
    invisible = _invisible(nick)
    if invisible is not None:
        return f"a nickname cannot hold {invisible}"
    if nick[0].isdecimal() or nick[0] == "-":
        return "a nickname cannot start with a digit or '-'"
    if not _is_name_body(nick):
        return "a nickname may hold only letters, digits, '_' and '-'"
    if fold(nick) in reserved or unicodedata.normalize("NFKC", nick) in VERB_NICKS:
        return "that name is reserved for the server; please choose another"
    return None


def room_problem(room: str) -> str | None:
    """Say what is wrong with a room name, or return None if it is valid."""
    if not room.startswith("#"):
        return "a room name starts with '#'"
    body = room[1:]
    if not body:
        return "a room name needs at least one character after '#'"
    if len(body) > MAX_ROOM_LENGTH:
        return f"a room name has at most {MAX_ROOM_LENGTH} characters after '#'"
    invisible = _invisible(body)
    if invisible is not None:
        return f"a room name cannot hold {invisible}"
    if not _is_name_body(body):
        return "a room name may hold only letters, digits, '_' and '-' after '#'"
    return None


def valid_nick(nick: str) -> bool:
    """Tell whether nick is a valid nickname (docs/protocol.md, Names)."""
    return nick_problem(nick) is None


def valid_room(room: str) -> bool:
    """Tell whether room is a valid room name (docs/protocol.md, Names)."""
    return room_problem(room) is None


# What clean_text removes. Control characters (category Cc: C0 but TAB, DEL,
# C1): docs/protocol.md, Limits. The bidirectional controls (embeddings, overrides,
# isolates, LRM, RLM, ALM): one of them reorders what follows it on screen, so
# a message can show text other than what it says ("Trojan Source"). And the
# line and paragraph separators: str.splitlines() and many editors break a
# line at them, which would make one MSG look like two lines, the second
# forged. Other format characters stay: emoji sequences need ZWJ (U+200D) and
# the tag characters, and Persian is spelled with ZWNJ (U+200C).
_BIDI_CONTROLS = (
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_SEPARATORS = "\u2028\u2029"
_CONTROLS = "".join(
    chr(c)
    for c in range(0x100)
    if chr(c) != "\t" and unicodedata.category(chr(c)) == "Cc"
)
_STRIPPED = str.maketrans("", "", _CONTROLS + _BIDI_CONTROLS + _SEPARATORS)


def clean_text(text: str) -> str:
    """Drop control characters but TAB, bidi controls and line separators.

    docs/protocol.md, Limits: C0 other than TAB, DEL and C1 never reach another
    client, which also defuses ANSI escape sequences (their ESC is gone);
    docs/protocol.md, Messages, says why the others go too.
    """
    if text.isprintable():  # the common case: none of them is printable
        return text
    return text.translate(_STRIPPED)


def guest_name(taken: Callable[[str], bool]) -> str:
    """A guest nickname not taken: Guest and five digits, drawn at random."""
    for _ in range(1000):
        name = f"{GUEST_PREFIX}{secrets.randbelow(100_000):05d}"
        if not taken(name):
            return name
    raise RuntimeError("no free guest nickname")  # 100,000 names all taken
