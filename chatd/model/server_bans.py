"""Server bans (IRC's K-lines): who may not use the server at all, and why.

A server ban is a mask, a reason, who set it, when, and when it ends (0:
never). The mask is one of three kinds, each checked at the earliest moment
it can be (docs/protocol.md, Server bans):

- an address or network, IPv4 or IPv6 in CIDR (`203.0.113.7`,
  `198.51.100.0/24`, `2001:db8::/32`, also written `*!*@...` or `*@...`):
  checked when the connection is made, before a word is read;
- a nickname mask nick!user@host with * and ? (a bare `troll` means
  `troll!*@*`, `user@host` means `*!user@host`): checked at registration
  and at every rename, folded and without backtracking (chatd.model.globs);
- an account, `account:name` (or `$a:name`, `~a:name`): checked when a
  connection identifies (SASL, NickServ, /identify).

Addresses are found by their networks' prefix lengths, a dictionary look-up
for each length in use, so a connection costs the same however many address
bans there are; masks are matched one by one, each in time linear in the
mask and the identity's lengths at most. A list holds MAX_SERVER_BANS at
most, each mask MAX_MASK_LENGTH characters.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.globs import glob_match
from chatd.model.names import clean_text, fold
from chatd.model.room_rules import (
    ACCOUNT_PREFIXES,
    KICK_REASON_LENGTH,
    MAX_MASK_LENGTH,
    ban_key,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_SERVER_BANS = 1000  # K-lines a server keeps at most
REASON_LENGTH = KICK_REASON_LENGTH  # characters kept of a reason
NO_REASON = "no reason given"
ACCOUNT = "account:"  # the key of an account ban starts so
ADDRESS = "address:"  # and of an address or network ban
PERMANENT_WORDS = frozenset({"permanent", "perm", "forever", "0"})
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
MAX_DURATION = 10 * UNIT_SECONDS["y"]  # longer: say permanent
# 90s, 1h, 7d, 1d12h, 2w; a bare number is minutes, as Solanum's KLINE reads it.
DURATION = re.compile(r"(?:\d{1,9}[smhdwy])+|\d{1,9}", re.ASCII)
PART = re.compile(r"(\d+)([smhdwy])", re.ASCII)


class ServerBanned(ChatError):
    """A connection a server ban refuses: the door says why, then closes."""

    def __init__(self, ban: ServerBan, now: float) -> None:
        super().__init__(
            ErrorCode.BANNED, f"you are banned from this server: {ban.reason}"
        )
        self.ban = ban
        until = ban.until_text(now)
        if until:
            self.text += f" ({until})"

    @property
    def goodbye(self) -> str:
        """The reason the connection closes with (BYE, IRC's ERROR, QUIT)."""
        return f"K-lined: {self.ban.reason}"


# -- durations ------------------------------------------------------------------------


def is_duration(word: str) -> bool:
    """Tell whether word is meant as a duration (1h, 7d, 30, permanent; 1x too,
    a bad one): it reads as one, or starts with a digit and is no address or
    mask (no nickname starts with a digit)."""
    if word.lower() in PERMANENT_WORDS or DURATION.fullmatch(word) is not None:
        return True
    return (
        word[:1].isdigit()
        and not any(ch in word for ch in "!@*?")
        and _network(word) is None
        and "/" not in word
    )


def duration_seconds(word: str) -> int:
    """The seconds a duration word says (0: permanent), or refuse it."""
    word = word.lower()
    if word in PERMANENT_WORDS:
        return 0
    if DURATION.fullmatch(word) is None:
        raise ChatError(
            ErrorCode.BAD_ARGS,
            f"{word} is not a duration: say 90s, 30m, 1h, 7d, 2w, 1d12h, a number "
            "of minutes, or permanent",
        )
    if word.isdigit():
        seconds = int(word) * 60
    else:
        seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in PART.findall(word))
    if seconds > MAX_DURATION:
        raise ChatError(
            ErrorCode.BAD_ARGS,
            f"{word} is longer than 10 years; say permanent for a ban that never ends",
        )
    return seconds


def spelled_duration(seconds: float) -> str:
    """A duration as people read it: 1h, 7d, 1d12h, 45s."""
    left = max(0, int(seconds + 0.5))
    parts = []
    for unit in "ydhms":
        size = UNIT_SECONDS[unit]
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts[:2]) or "0s"


# -- masks ---------------------------------------------------------------------


def _network(text: str) -> Network | None:
    """The network text names (an address is a network of one), if it is one."""
    if not text or not (text[0].isdigit() or ":" in text) or "*" in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def server_ban_key(mask: str) -> str:
    """The form equivalent masks share: account:name, address:network or
    nick!user@host folded (chatd.model.room_rules.ban_key)."""
    lowered = mask.lower()
    for prefix in ACCOUNT_PREFIXES:
        if lowered.startswith(prefix):
            return ACCOUNT + fold(mask[len(prefix) :])
    host = mask
    if "@" in mask:
        head, _, host = mask.rpartition("@")
        if head not in ("*", "*!*"):
            host = ""
    network = _network(host)
    if network is not None:
        return ADDRESS + str(network)
    return ban_key(mask)


def server_ban_problem(mask: str) -> str | None:
    """Say what is wrong with a server ban's mask, or return None."""
    shape = "a nickname, nick!user@host, an address or network, or account:name"
    if not mask or len(mask) > MAX_MASK_LENGTH:
        return f"a mask has 1 to {MAX_MASK_LENGTH} characters: {shape}"
    if any(ch.isspace() for ch in mask) or mask != clean_text(mask):
        return f"{mask} is not {shape}"
    if mask.startswith(":") or "," in mask:
        return f"{mask} is not {shape}"
    key = server_ban_key(mask)
    if key == ACCOUNT:
        return "account: needs an account name after it"
    if "/" in mask and not key.startswith(ADDRESS):
        return f"{mask} is not a network: write 198.51.100.0/24 or 2001:db8::/32"
    return None


def peer_address(host: str) -> Address | None:
    """The address a peer's host names (an IPv4 one for ::ffff:a.b.c.d), if any."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# -- one ban, and the list ------------------------------------------------------


@dataclass(eq=False, slots=True)
class ServerBan:
    """One server ban: the mask as given, why, by whom, when, until (0: never)."""

    mask: str
    reason: str
    by: str
    time: float
    expires: float = 0.0
    key: str = field(init=False)
    network: Network | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.key = server_ban_key(self.mask)
        if self.key.startswith(ADDRESS):
            self.network = ipaddress.ip_network(self.key[len(ADDRESS) :])

    def active(self, now: float) -> bool:
        """Tell whether the ban holds at time now."""
        return not self.expires or now < self.expires

    def lasting(self) -> str:
        """How long it was placed for, in words: "for 2 hours", "for good"."""
        if not self.expires:
            return "for good"
        return f"for {spelled_duration(self.expires - self.time)}"

    def matches_identity(self, identity: str) -> bool:
        """Tell whether a mask ban matches identity, nick!user@host folded.

        Linear in the two lengths at most, whatever the mask (globs)."""
        return "!" in self.key and glob_match(self.key, identity)

    def until_text(self, now: float) -> str:
        """How long it holds yet, in words ("" when permanent)."""
        if not self.expires:
            return ""
        return f"for {spelled_duration(self.expires - now)} more"


def identity_of(nick: str, username: str, host: str) -> str:
    """The folded nick!user@host a mask ban is matched against."""
    return f"{fold(nick)}!{fold(username or nick)}@{fold(host)}"


class ServerBans:
    """The server's bans by key, with their networks indexed by prefix length.

    kept is the store's dictionary (chatd.store: it is read in place when the
    database opens), and keep(key, ban) tells the store of a change; until
    the model is given a store, both are its own.
    """

    def __init__(self) -> None:
        self.kept: dict[str, ServerBan] = {}
        self.keep: Callable[[str, ServerBan | None], None] = _nowhere
        self._networks: dict[Network, ServerBan] = {}
        self._prefixes: dict[int, set[int]] = {4: set(), 6: set()}
        self._indexed = -1  # how many bans the index was made from (-1: none)

    def attach(
        self,
        kept: dict[str, ServerBan],
        keep: Callable[[str, ServerBan | None], None],
    ) -> None:
        """Use a store's dictionary (filled later, as it opens) and its writer."""
        kept.update(self.kept)
        self.kept = kept
        self.keep = keep
        self._indexed = -1

    def replace(self, bans: list[ServerBan]) -> None:
        """Hold exactly bans (a cluster's snapshot), the store told of each."""
        for key in list(self.kept):
            self.remove(key)
        for ban in bans:
            self.add(ban)

    def __len__(self) -> int:
        return len(self.kept)

    def __iter__(self) -> Iterator[ServerBan]:
        return iter(self.kept.values())

    def get(self, key: str) -> ServerBan | None:
        """The ban of key, if any."""
        return self.kept.get(key)

    def add(self, ban: ServerBan) -> None:
        """Hold ban (in place of one of its key) and keep it."""
        self.kept[ban.key] = ban
        self._indexed = -1
        self.keep(ban.key, ban)

    def remove(self, key: str) -> ServerBan | None:
        """Forget the ban of key, if any, in the store too."""
        ban = self.kept.pop(key, None)
        if ban is not None:
            self._indexed = -1
            self.keep(key, None)
        return ban

    def sweep(self, now: float) -> None:
        """Forget the bans that have ended."""
        for key in [key for key, ban in self.kept.items() if not ban.active(now)]:
            self.remove(key)

    def _index(self) -> None:
        """Index the networks again after a change (or the store's first read)."""
        self._networks = {}
        self._prefixes = {4: set(), 6: set()}
        for ban in self.kept.values():
            network = ban.network
            if network is not None:
                self._networks[network] = ban
                self._prefixes[network.version].add(network.prefixlen)
        self._indexed = len(self.kept)

    def for_address(self, host: str, now: float) -> ServerBan | None:
        """The ban that holds for a connection from host, if any: one look-up
        per prefix length in use."""
        if not self.kept:
            return None
        if self._indexed != len(self.kept):
            self._index()
        address = peer_address(host)
        if address is None:
            return None
        networks = self._networks
        for prefix in self._prefixes[address.version]:
            ban = networks.get(ipaddress.ip_network((address, prefix), strict=False))
            if ban is not None and ban.active(now):
                return ban
        return None

    def for_account(self, account: str, now: float) -> ServerBan | None:
        """The ban of account (folded or not), if one holds."""
        ban = self.kept.get(ACCOUNT + fold(account)) if account else None
        return ban if ban is not None and ban.active(now) else None

    def for_identity(
        self, nick: str, username: str, host: str, now: float
    ) -> ServerBan | None:
        """The first mask ban that holds for nick!username@host, if any."""
        identity = ""
        for ban in self.kept.values():
            if "!" not in ban.key or not ban.active(now):
                continue
            identity = identity or identity_of(nick, username, host)
            if glob_match(ban.key, identity):
                return ban
        return None

    def for_connection(
        self, nick: str, username: str, host: str, account: str, now: float
    ) -> ServerBan | None:
        """The ban that refuses this connection, of any kind, if one does."""
        if not self.kept:
            return None
        return (
            self.for_address(host, now)
            or self.for_account(account, now)
            or self.for_identity(nick, username, host, now)
        )


def _nowhere(key: str, ban: ServerBan | None) -> None:
    """The default keeper: a chat without a store keeps its bans in memory only."""
