"""REHASH: a server operator has the server re-read its config file.

The model says who may (Chat.check_server_operator: ERR_NOPRIVILEGES for
anyone else); the reload is chatd.ops.reload's, reached through the
connection (IrcSession.rehash). Applied: RPL_REHASHING (382), then a server
NOTICE for each thing changed. Refused: a NOTICE for each problem, then
FAIL REHASH CONFIG_INVALID (IRCv3 standard replies); nothing changed
(docs/irc.md, "Reloading the configuration").
"""

from __future__ import annotations

import os

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

DOING = "reload the configuration"
# What 382 names: the config file's name (not its directory), or this when
# the daemon was started without --config.
NO_FILE = "*"


def rehash(session: IrcSession, msg: IrcMessage) -> None:
    """REHASH: re-read the config file and apply what may change (operators)."""
    user = session_user(session)
    try:
        session.chat.check_server_operator(user, DOING)
    except ChatError as error:
        if error.code is ErrorCode.NOT_OPERATOR:
            raise IrcError(
                n.ERR_NOPRIVILEGES, text="Permission Denied- You're not an IRC operator"
            ) from None
        raise
    report = session.rehash()
    if report.applied:
        name = os.path.basename(report.path) or NO_FILE
        numeric(session, n.RPL_REHASHING, name, text="Rehashing")
    for text in report.lines:
        server_line(session, "NOTICE", session.nick, text=text)
    if not report.applied:
        server_line(
            session,
            "FAIL",
            "REHASH",
            "CONFIG_INVALID",
            text="the configuration was not reloaded; nothing changed",
        )


COMMANDS: dict[str, IrcCommand] = {"REHASH": IrcCommand(rehash, 0)}
