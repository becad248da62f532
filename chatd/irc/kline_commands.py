"""IRC's words for server bans: KLINE, UNKLINE and STATS K (docs/irc.md).

Solanum's spelling: `KLINE [<duration>] <mask> :<reason>` (a bare number is
minutes, as there; chatd also reads 1h, 7d, permanent), `UNKLINE <mask>`,
and `STATS K` lists every K-line, `STATS k` the temporary ones, one 216
RPL_STATSKLINE each, then 219. The rules are the model's
(chatd.model.server_banning); a refusal to a non-operator is 481.
"""

from __future__ import annotations

from chatd.irc import numerics as n
from chatd.irc.message import IrcMessage
from chatd.irc.session import (
    IrcCommand,
    IrcError,
    IrcSession,
    numeric,
    server_line,
    session_user,
)
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.model.server_banning import read_kline
from chatd.model.server_bans import ServerBan

NO_PRIVILEGES = "Permission Denied- You're not an IRC operator"


def _refusal(error: ChatError) -> IrcError | None:
    """481 for a non-operator; None: the refusal is told in a NOTICE."""
    if error.code is ErrorCode.NOT_OPERATOR:
        return IrcError(n.ERR_NOPRIVILEGES, text=NO_PRIVILEGES)
    return None


def _notice(session: IrcSession, text: str) -> None:
    server_line(session, "NOTICE", session.nick, text=clean_text(text))


def kline(session: IrcSession, msg: IrcMessage) -> None:
    """KLINE [<duration>] <mask> :<reason>: ban from the server, disconnect matches."""
    user = session_user(session)
    try:
        duration, mask, reason = read_kline(list(msg.params))
        ban, gone = session.chat.kline(user, mask, reason, duration)
    except ChatError as error:
        refusal = _refusal(error)
        if refusal is not None:
            raise refusal from None
        _notice(session, f"KLINE refused: {error.text}")
        return
    if ban is None:
        return
    session.log.info(
        "{oper} K-lined {mask}: {reason}",
        oper=user.nick,
        mask=ban.mask,
        reason=ban.reason,
    )
    how_long = ban.lasting()
    _notice(
        session,
        f"Added K-line {ban.mask} {how_long}: {ban.reason}"
        + (f" (disconnected: {', '.join(gone)})" if gone else ""),
    )


def unkline(session: IrcSession, msg: IrcMessage) -> None:
    """UNKLINE <mask>: lift a server ban."""
    user = session_user(session)
    try:
        ban = session.chat.lift_server_ban(user, msg.params[0])
    except ChatError as error:
        refusal = _refusal(error)
        if refusal is not None:
            raise refusal from None
        _notice(session, f"UNKLINE refused: {error.text}")
        return
    session.log.info("{oper} lifted the K-line {mask}", oper=user.nick, mask=ban.mask)
    _notice(session, f"Removed K-line {ban.mask}")


def stats(session: IrcSession, msg: IrcMessage) -> None:
    """STATS <letter>: K lists the K-lines, k the temporary ones (operators)."""
    user = session_user(session)
    letter = msg.params[0][:1] if msg.params and msg.params[0] else "*"
    if letter in "kK":
        try:
            bans = session.chat.server_ban_list(user)
        except ChatError as error:
            refusal = _refusal(error)
            raise refusal if refusal is not None else error from None
        for ban in bans:
            if letter == "K" or ban.expires:
                _stats_line(session, ban)
    numeric(session, n.RPL_ENDOFSTATS, clean_text(letter), text="End of /STATS report")


def _stats_line(session: IrcSession, ban: ServerBan) -> None:
    """216 <nick> K <mask> <expires> <by> :<reason>; expires 0: permanent."""
    kind = "k" if ban.expires else "K"
    numeric(
        session,
        n.RPL_STATSKLINE,
        kind,
        ban.mask,
        str(int(ban.expires)),
        ban.by,
        text=ban.reason,
    )


# fmt: off
COMMANDS: dict[str, IrcCommand] = {
    "KLINE": IrcCommand(kline, 1),
    "UNKLINE": IrcCommand(unkline, 1),
    "STATS": IrcCommand(stats, 0),
}
# fmt: on
