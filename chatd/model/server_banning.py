"""Who may ban from the server, and what a server ban does: a part of Chat.

Only server operators (identified to an account of --operators) place, lift
and list server bans (chatd.model.server_bans: what a mask means, how it is
matched). Placing one disconnects every user it matches, server operators
spared; from then on the doors refuse a connection it matches before it
registers (an address at connect, a nickname mask at registration and
rename, an account when identifying). Bans end by themselves at their
expiry, on the model's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.server_bans import (
    ACCOUNT,
    MAX_SERVER_BANS,
    NO_REASON,
    REASON_LENGTH,
    ServerBan,
    ServerBanned,
    ServerBans,
    duration_seconds,
    identity_of,
    is_duration,
    peer_address,
    server_ban_key,
    server_ban_problem,
)

if TYPE_CHECKING:
    from chatd.model.state import User

NOT_OPERATOR = "you are not a server operator; only they ban from the server"


def read_kline(words: list[str]) -> tuple[str, str, str]:
    """[<duration>] <mask> [<reason>...] as (duration, mask, reason).

    The first word is a duration when it is meant as one (server_bans.
    is_duration: a bad one is refused, not taken for a mask) and a mask
    follows; a nickname that reads as a duration is banned as 1h!*@*.
    """
    if len(words) > 1 and is_duration(words[0]):
        return words[0], words[1], " ".join(words[2:])
    if not words:
        raise ChatError(
            ErrorCode.BAD_ARGS, "usage: /kline [<duration>] <mask> [<reason>]"
        )
    return "", words[0], " ".join(words[1:])


class ServerBanRules:
    """The server bans half of Chat; the attributes below are Chat's."""

    users: dict[str, User]
    server_bans: ServerBans
    server_operators: frozenset[str]
    now: Callable[[], float]

    if TYPE_CHECKING:

        def is_server_operator(self, user: User) -> bool: ...

    def _must_be_server_operator(self, user: User) -> None:
        if not self.is_server_operator(user):
            raise ChatError(ErrorCode.NOT_OPERATOR, NOT_OPERATOR)

    # -- placing and lifting ---------------------------------------------------------

    def kline(
        self, user: User, mask: str, reason: str = "", duration: str = ""
    ) -> tuple[ServerBan | None, list[str]]:
        """Ban mask from the server for duration ("": for good), and disconnect
        everyone it matches but server operators; return the ban and their nicks.

        The ban itself is add_server_ban's (replicated on a cluster); the
        disconnections follow, each user's quit a change of its own, as
        /kill's are.
        """
        self._must_be_server_operator(user)
        seconds = duration_seconds(duration) if duration else 0
        ban = self.add_server_ban(user, mask, reason, seconds)
        if ban is None:  # a cluster node outside a turn: every node applies it
            return None, []
        now = self.now()
        gone = [
            other
            for other in self.users.values()
            if not self.is_server_operator(other) and self._bans_user(ban, other)
        ]
        goodbye = ServerBanned(ban, now).goodbye
        for other in gone:
            other.client.close(goodbye)
        return ban, [other.nick for other in gone]

    def add_server_ban(
        self, user: User, mask: str, reason: str, seconds: int
    ) -> ServerBan:
        """Ban mask from the server for seconds (0: for good); mask's old ban, if
        any, is replaced. Server operators only; a mask that matches the
        operator, or an operator's account, is refused."""
        self._must_be_server_operator(user)
        problem = server_ban_problem(mask)
        if problem is not None:
            raise ChatError(ErrorCode.BAD_ARGS, problem, arg=mask)
        now = self.now()
        bans = self.server_bans
        bans.sweep(now)
        reason = clean_text(reason).strip()[:REASON_LENGTH] or NO_REASON
        ban = ServerBan(mask, reason, user.nick, now, now + seconds if seconds else 0)
        if self._bans_user(ban, user):
            raise ChatError(
                ErrorCode.BAD_ARGS,
                f"{mask} matches you; ban a narrower mask",
                arg=mask,
            )
        if (
            ban.key.startswith(ACCOUNT)
            and ban.key[len(ACCOUNT) :] in self.server_operators
        ):
            raise ChatError(
                ErrorCode.BAD_ARGS,
                f"{mask} is a server operator's account",
                arg=mask,
            )
        if bans.get(ban.key) is None and len(bans) >= MAX_SERVER_BANS:
            raise ChatError(
                ErrorCode.BAN_LIST_FULL,
                f"the server has {MAX_SERVER_BANS} bans, the most it keeps; "
                "lift one (/unkline) first",
                arg=mask,
            )
        bans.add(ban)
        return ban

    def lift_server_ban(self, user: User, mask: str) -> ServerBan:
        """Lift the server ban of mask (any spelling of it); server operators only."""
        self._must_be_server_operator(user)
        bans = self.server_bans
        bans.sweep(self.now())
        ban = bans.remove(server_ban_key(mask))
        if ban is None:
            raise ChatError(
                ErrorCode.BAD_ARGS,
                f"no server ban has the mask {mask}; /klines lists them",
                arg=mask,
            )
        return ban

    # -- reading ---------------------------------------------------------------------

    def server_ban_list(self, user: User) -> list[ServerBan]:
        """The bans in force, oldest first; server operators only."""
        self._must_be_server_operator(user)
        now = self.now()
        found = [ban for ban in self.server_bans if ban.active(now)]
        return sorted(found, key=lambda ban: (ban.time, ban.key))

    def server_ban_for_address(self, host: str) -> ServerBanned | None:
        """The refusal of a connection from host (at connect), if a ban holds."""
        now = self.now()
        ban = self.server_bans.for_address(host, now)
        return ServerBanned(ban, now) if ban is not None else None

    def server_ban_for_account(self, account: str) -> ServerBanned | None:
        """The refusal of a connection identifying as account, if a ban holds."""
        now = self.now()
        ban = self.server_bans.for_account(account, now)
        return ServerBanned(ban, now) if ban is not None else None

    def check_server_bans(
        self, nick: str, username: str = "", host: str = "", account: str = ""
    ) -> None:
        """Refuse (ServerBanned) a connection registering or renaming as this."""
        now = self.now()
        ban = self.server_bans.for_connection(nick, username, host, account, now)
        if ban is not None:
            raise ServerBanned(ban, now)

    def _bans_user(self, ban: ServerBan, user: User) -> bool:
        """Tell whether ban matches user as they are now."""
        if ban.network is not None:
            address = peer_address(user.host)
            return address is not None and address in ban.network
        if ban.key.startswith(ACCOUNT):
            return bool(user.account) and fold(user.account) == ban.key[len(ACCOUNT) :]
        username, host = user.user_and_host()
        return ban.matches_identity(identity_of(user.nick, username, host))
