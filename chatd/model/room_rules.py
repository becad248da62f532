"""The rules of a room people run, as data: modes, ban masks, registered rooms.

What the letters mean, how ban masks are spelled and compared, what a
registered room keeps across restarts (RoomRecord), and how a mode string is
read. A room's rules as they stand (RoomRules, Ban) are chatd.model.state's; who
may change them, and the events that follow, chatd.model.moderation's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold

# Mode letters, as IRC spells them; the line protocol uses the same ones.
FLAG_MODES = "imnst"  # on or off, no argument
KEY_MODE, LIMIT_MODE = "k", "l"  # an argument to set
OP_MODE, VOICE_MODE = "o", "v"  # a member as argument
BAN_MODE = "b"  # a list of masks
ROOM_MODES = FLAG_MODES + KEY_MODE + LIMIT_MODE
MEMBER_MODES = OP_MODE + VOICE_MODE
ALL_MODES = ROOM_MODES + MEMBER_MODES + BAN_MODE
ARG_MODES = MEMBER_MODES + BAN_MODE + KEY_MODE  # always an argument (and +l)
DEFAULT_FLAGS = frozenset("n")
MODE_NAMES = {
    "i": "invite-only",
    "k": "key",
    "l": "limit",
    "m": "moderated",
    "n": "no-external",
    "s": "secret",
    "t": "topic-ops",
    "o": "operator",
    "v": "voice",
    "b": "ban",
}
MAX_BANS = 100  # per room (IRC's MAXLIST=b:100)
# And the bytes of a room's bans together (each counted by ban_size): enough
# for 100 bans of 80 bytes, typical masks being 15 to 50, so that a full
# list costs a room tens of kilobytes, not the hundreds 100 masks of 200
# characters did (docs/hostile.md, Round three: bans, masks and identity).
MAX_BAN_BYTES = 8192
MAX_MASK_LENGTH = 200  # characters of one ban mask
# Mode changes with an argument (+b mask, +o nick, +k key, +l n...) that one
# command applies; the others are left, as IRC servers do (ISUPPORT MODES).
MAX_MODE_ARGS = 6
# Invitations a room keeps (the oldest go first), and how long each is good
# for: an hour, long enough to come, short enough that forgotten ones go.
MAX_INVITES = 100
INVITE_SECONDS = 3600.0
MAX_KEY = 23  # characters of a key (RFC 2812)
MAX_LIMIT = 1_000_000
TOPIC_LENGTH = 390  # characters kept of a topic (IRC's TOPICLEN)
KICK_REASON_LENGTH = 300
ACCOUNT_PREFIXES = ("account:", "$a:", "~a:")  # ban masks that name an account


# -- mode changes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One mode change: letter, on or off, and its argument ("" if none)."""

    letter: str
    on: bool
    arg: str = ""

    def spelled(self) -> str:
        """The change as IRC writes it alone: +o, -k, ..."""
        return ("+" if self.on else "-") + self.letter


# -- bans -------------------------------------------------------------------------


def ban_key(mask: str) -> str:
    """Return the form two equivalent ban masks share (for matching and unban).

    account:name (or $a:name, ~a:name) names an account; a mask with ! or @
    or a wildcard is IRC's nick!user@host; a plain nickname means nick!*@*.
    """
    lowered = mask.lower()
    for prefix in ACCOUNT_PREFIXES:
        if lowered.startswith(prefix):
            return "account:" + fold(mask[len(prefix) :])
    if "!" not in mask and "@" not in mask:
        return fold(mask) + "!*@*"
    nick, bang, rest = mask.partition("!")
    if not bang:  # user@host without a nick
        nick, rest = "*", mask
    user, at, host = rest.partition("@")
    if not at:
        host = "*"
    key = f"{fold(nick or '*')}!{fold(user or '*')}@{fold(host or '*')}"
    return mask if key == mask else key  # one string kept, not two, when the same


def ban_size(mask: str, key: str) -> int:
    """Return what a ban counts against MAX_BAN_BYTES: the UTF-8 bytes of its
    mask, or of its folded form (key) when folding made that longer."""
    size = len(mask.encode())
    return size if key is mask else max(size, len(key.encode()))


def ban_problem(mask: str) -> str | None:
    """Say what is wrong with a ban mask, or return None."""
    if not mask or len(mask) > MAX_MASK_LENGTH or any(ch.isspace() for ch in mask):
        return f"{mask or 'an empty mask'} is not a nickname, mask or account:name"
    if mask != clean_text(mask) or mask.startswith(":") or "," in mask:
        return f"{mask} is not a nickname, mask or account:name"
    key = ban_key(mask)
    if key.startswith("account:") and key == "account:":
        return "account: needs an account name after it"
    return None


@dataclass(eq=False, slots=True)
class RoomRecord:
    """A registered room as kept in the database: it outlives its members.

    operators holds folded account names (the founder's among them); flags,
    key, limit, topic and bans are what the room had when last changed.
    """

    name: str
    founder: str  # folded account name
    operators: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=lambda: set(DEFAULT_FLAGS))
    key: str = ""
    limit: int = 0
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    bans: list[tuple[str, str, float]] = field(default_factory=list)
    created: float = 0.0


def valid_key(key: str) -> bool:
    """Tell whether key may be a room key: 1 to 23 visible ASCII characters, no ','."""
    return (
        0 < len(key) <= MAX_KEY
        and all("!" <= ch <= "~" for ch in key)
        and "," not in key
        and not key.startswith(":")
    )


def limit_value(arg: str) -> int | None:
    if not (arg.isascii() and arg.isdecimal()) or len(arg) > 7:
        return None
    value = int(arg)
    return value if 0 < value <= MAX_LIMIT else None


def parse_changes(
    words: list[str],
) -> tuple[list[Change], list[str], list[ChatError]]:
    """Read IRC-style mode words (+o-v alice bob) into changes.

    Returns the changes, the list modes asked for without an argument (b:
    show the ban list) and refusals for letters not known or arguments
    missing. A missing argument to +o, +v, +b, +k, +l or -o, -v, -b is a
    refusal; -k takes an argument on IRC but needs none; -l takes none.
    Changes with an argument past the first MAX_MODE_ARGS are left out,
    as IRC servers do with the rest of a MODE past its ISUPPORT MODES.
    """
    changes: list[Change] = []
    lists: list[str] = []
    errors: list[ChatError] = []
    if not words:
        return changes, lists, errors
    args = list(words[1:])
    on = True
    with_args = len(args)
    for letter in words[0]:
        if letter in "+-":
            on = letter == "+"
            continue
        takes_arg = letter in ARG_MODES or (letter == LIMIT_MODE and on)
        if takes_arg and with_args - len(args) >= MAX_MODE_ARGS:
            continue  # past ISUPPORT's MODES: left, as IRC servers do
        if letter in MEMBER_MODES or letter == BAN_MODE:
            if not args:
                if letter == BAN_MODE:
                    lists.append(letter)
                else:
                    errors.append(
                        ChatError(
                            ErrorCode.BAD_ARGS,
                            f"{'+' if on else '-'}{letter} needs a nickname",
                            mode=letter,
                        )
                    )
                continue
            changes.append(Change(letter, on, args.pop(0)))
        elif letter == KEY_MODE:
            if on and not args:
                errors.append(
                    ChatError(ErrorCode.BAD_ARGS, "+k needs a key", mode=letter)
                )
                continue
            arg = args.pop(0) if args else ""
            changes.append(Change(letter, on, arg if on else ""))
        elif letter == LIMIT_MODE:
            if on:
                if not args:
                    errors.append(
                        ChatError(ErrorCode.BAD_ARGS, "+l needs a number", mode=letter)
                    )
                    continue
                changes.append(Change(letter, on, args.pop(0)))
            else:
                changes.append(Change(letter, on))
        elif letter in FLAG_MODES:
            changes.append(Change(letter, on))
        else:
            errors.append(
                ChatError(
                    ErrorCode.BAD_ARGS,
                    f"{letter} is not a room mode; the modes are {ALL_MODES}",
                    mode=letter,
                )
            )
    return changes, lists, errors
