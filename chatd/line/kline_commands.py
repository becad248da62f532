"""The line door's server ban commands: /kline, /unkline, /klines.

docs/protocol.md, Server bans (an extension): the rules are the model's
(chatd.model.server_banning); these only read the words and spell the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatd.line.wire import line
from chatd.model.server_banning import read_kline
from chatd.model.server_bans import ServerBan
from chatd.model.times import utc_time
from chatd.store.interface import millis

if TYPE_CHECKING:
    from chatd.line.session import Session


def kline(session: Session, args: list[str]) -> None:
    """/kline [<duration>] <mask> [<reason>]: ban from the server."""
    user = session.registered_user()
    duration, mask, reason = read_kline(" ".join(args).split())
    ban, gone = session.chat.kline(user, mask, reason, duration)
    if ban is None:
        return
    session.log.info(
        "{oper} K-lined {mask}: {reason}",
        oper=user.nick,
        mask=ban.mask,
        reason=ban.reason,
    )
    how_long = ban.lasting()
    said = f"{ban.mask} is banned from the server {how_long}: {ban.reason}."
    if gone:
        said += f" Disconnected: {', '.join(gone)}."
    session.send_info(said)


def unkline(session: Session, args: list[str]) -> None:
    """/unkline <mask>: lift a server ban."""
    user = session.registered_user()
    ban = session.chat.lift_server_ban(user, args[0])
    session.log.info("{oper} lifted the K-line {mask}", oper=user.nick, mask=ban.mask)
    session.send_info(f"The server ban of {ban.mask} is lifted.")


def kline_line(ban: ServerBan) -> bytes:
    """KLINE <mask> <by> <set> <expires> <reason>: one server ban."""
    expires = utc_time(millis(ban.expires)) if ban.expires else "permanent"
    return line(
        "KLINE", ban.mask, ban.by, utc_time(millis(ban.time)), expires, text=ban.reason
    )


def klines(session: Session, args: list[str]) -> None:
    """/klines: the server bans in force, KLINE lines then ENDKLINES <count>."""
    bans = session.chat.server_ban_list(session.registered_user())
    session.charge_answer(len(bans))  # a bulk answer costs its lines (net.bulk)
    for ban in bans:
        session.send(kline_line(ban))
    session.send(line("ENDKLINES", str(len(bans))))
