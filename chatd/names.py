"""Pure functions on names and text: folding, validation and cleaning."""

from __future__ import annotations

import unicodedata

MAX_NICK_LENGTH = 20
MAX_ROOM_LENGTH = 32  # characters after the "#"
LOBBY = "#lobby"

# The categories of combining marks. PROTOCOL.md allows "letters (any script)";
# scripts such as Devanagari or Thai cannot spell a name without their vowel
# signs, which Unicode files as marks, so a mark may follow a letter
# (docs/protocol.md, Names).
_MARKS = frozenset({"Mn", "Mc", "Me"})


def fold(name: str) -> str:
    """Return the form under which names are compared: NFKC, then casefolded."""
    return unicodedata.normalize("NFKC", name).casefold()


def _is_name_char(ch: str, previous: str | None) -> bool:
    """Tell whether ch may appear in a name after the character previous."""
    if ch.isalpha() or ch.isdecimal() or ch in "_-":
        return True
    return previous is not None and unicodedata.category(ch) in _MARKS


def _is_name_body(text: str) -> bool:
    """Tell whether every character of text belongs to the name alphabet."""
    previous: str | None = None
    for ch in text:
        if not _is_name_char(ch, previous):
            return False
        previous = ch
    return True


def normalize_name(name: str) -> str:
    """Return the display form of a name as typed: its NFC normalisation."""
    return unicodedata.normalize("NFC", name)


def nick_problem(nick: str) -> str | None:
    """Say what is wrong with a nickname, or return None if it is valid."""
    if not nick:
        return "a nickname needs at least one character"
    if len(nick) > MAX_NICK_LENGTH:
        return f"a nickname has at most {MAX_NICK_LENGTH} characters"
    if nick[0].isdecimal() or nick[0] == "-":
        return "a nickname cannot start with a digit or '-'"
    if not _is_name_body(nick):
        return "a nickname may hold only letters, digits, '_' and '-'"
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
    if not _is_name_body(body):
        return "a room name may hold only letters, digits, '_' and '-' after '#'"
    return None


def valid_nick(nick: str) -> bool:
    """Tell whether nick is a valid nickname (PROTOCOL.md, Names)."""
    return nick_problem(nick) is None


def valid_room(room: str) -> bool:
    """Tell whether room is a valid room name (PROTOCOL.md, Names)."""
    return room_problem(room) is None


def clean_text(text: str) -> str:
    """Drop every control character (category Cc) except TAB from text.

    PROTOCOL.md, Limits: C0 other than TAB, DEL and C1 never reach another
    client, which also defuses ANSI escape sequences (their ESC is gone).
    """
    if text.isprintable():  # the common case: nothing to strip
        return text
    return "".join(ch for ch in text if ch == "\t" or unicodedata.category(ch) != "Cc")
