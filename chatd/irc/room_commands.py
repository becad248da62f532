"""IRC's words for rooms people run: TOPIC, MODE, KICK, INVITE, KILL, prefixes.

The rules are the model's (chatd.model.moderation); these read IRC's parameters,
answer with the numerics clients expect, and leave the broadcast (TOPIC,
MODE, KICK, INVITE lines) to the events. chatd.irc.commands puts them in its
table.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatd.irc import numerics as n
from chatd.irc.message import IrcMessage
from chatd.irc.server import MAX_TARGETS
from chatd.irc.session import (
    IrcCommand,
    IrcError,
    IrcSession,
    numeric,
    numeric_for,
    send_error,
    session_user,
    split_targets,
)
from chatd.model.chat import Room, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.room_rules import ALL_MODES, parse_changes

# List modes chatd has not (ban exceptions, invite exceptions): asked for, their
# lists end at once, as they did before chatd had modes.
EMPTY_LISTS = {"e": n.RPL_ENDOFEXCEPTLIST, "I": n.RPL_ENDOFINVITELIST}


def prefixes(room: Room, user: User, multi: bool) -> str:
    """The NAMES/WHO prefix of user in room: @ for operators, + for voiced.

    With multi-prefix, both (@+); without it, the highest only.
    """
    rules = room.rules
    marks = ("@" if user in rules.ops else "") + ("+" if user in rules.voiced else "")
    return marks if multi else marks[:1]


def _room(session: IrcSession, name: str) -> Room:
    """The room named; a secret room of others is none (model.permissions): 403."""
    try:
        return session.chat.visible_room(session.user, name)
    except ChatError as error:
        raise numeric_for(error, name) from None


def topic_reply(session: IrcSession, room: Room) -> None:
    """332 and 333 when the room has a topic (after a JOIN, or TOPIC #room)."""
    rules = room.rules
    numeric(session, n.RPL_TOPIC, room.name, text=rules.topic)
    numeric(
        session,
        n.RPL_TOPICWHOTIME,
        room.name,
        rules.topic_by or session.server.name,
        str(int(rules.topic_time)),
    )


def topic(session: IrcSession, msg: IrcMessage) -> None:
    """TOPIC <#room> [:text]: show the topic (332/333, or 331), or set it."""
    user = session_user(session)
    room = _room(session, msg.params[0])
    if len(msg.params) == 1:
        if room.rules.topic:
            topic_reply(session, room)
        else:
            numeric(session, n.RPL_NOTOPIC, room.name, text="No topic is set")
        return
    try:
        session.chat.set_topic(user, room.name, msg.params[1])
    except ChatError as error:
        raise numeric_for(error, room.name) from None


def mode_reply(session: IrcSession, room: Room, user: User) -> None:
    """324 (the modes, the key shown to members) and 329 (creation time)."""
    modes, values = room.rules.mode_string(show_key=user.is_member(room))
    numeric(session, n.RPL_CHANNELMODEIS, room.name, modes, *values)
    # #lobby is made with the Chat, before any join sets a time: its creation is
    # the server's (0 showed as "created on 1 January 1970" in WeeChat).
    created = room.rules.created or session.server.created
    numeric(session, n.RPL_CREATIONTIME, room.name, str(int(created)))


def ban_list(session: IrcSession, room: Room) -> None:
    """367 for each ban (mask, who set it, when), then 368."""
    for ban in room.rules.bans:
        numeric(session, n.RPL_BANLIST, room.name, ban.mask, ban.by, str(int(ban.time)))
    numeric(session, n.RPL_ENDOFBANLIST, room.name, text="End of channel ban list")


def _change_error(session: IrcSession, room: Room, error: ChatError) -> None:
    """One refused change, as the numeric a client expects for it."""
    if error.code is ErrorCode.BAD_ARGS and error.mode in ("k", "l"):
        # A key is never echoed; a limit only if it is one plain word.
        arg = clean_text(error.arg)
        shown = arg if error.mode == "l" and arg.isalnum() else "*"
        numeric(
            session,
            n.ERR_INVALIDMODEPARAM,
            room.name,
            error.mode,
            shown,
            text=clean_text(error.text),
        )
    elif (
        error.code is ErrorCode.BAD_ARGS and error.mode and error.mode not in ALL_MODES
    ):
        numeric(
            session,
            n.ERR_UNKNOWNMODE,
            error.mode,
            text="is unknown mode char to me",
        )
    elif error.code is ErrorCode.BAD_ARGS and error.mode:
        numeric(session, n.ERR_NEEDMOREPARAMS, "MODE", text=clean_text(error.text))
    else:
        send_error(session, numeric_for(error, error.nick or error.arg or room.name))


def channel_mode(session: IrcSession, msg: IrcMessage) -> None:
    """MODE <#room> [<changes> [<arguments>...]]: show, list or change modes."""
    user = session_user(session)
    room = _room(session, msg.params[0])
    if len(msg.params) == 1:
        mode_reply(session, room, user)
        return
    word = msg.params[1]
    if word.lstrip("+") in EMPTY_LISTS and len(msg.params) == 2:
        numeric(session, EMPTY_LISTS[word.lstrip("+")], room.name, text="End of list")
        return
    changes, lists, errors = parse_changes(list(msg.params[1:]))
    if lists:
        ban_list(session, room)
    for problem in errors:
        _change_error(session, room, problem)
    if not changes:
        return
    try:
        _, _, refused = session.chat.change_modes(user, room.name, changes)
    except ChatError as error:
        raise numeric_for(error, room.name) from None
    for problem in refused:
        _change_error(session, room, problem)


def kick(session: IrcSession, msg: IrcMessage) -> None:
    """KICK <#room>{,<#room>} <nick>{,<nick>} [:reason]: one KICK line per person."""
    user = session_user(session)
    if len(msg.params) < 2:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "KICK", text="Not enough parameters")
    rooms = split_targets(msg.params[0])
    nicks = split_targets(msg.params[1])[:MAX_TARGETS]
    reason = msg.params[2] if len(msg.params) > 2 else ""
    if not rooms or not nicks:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "KICK", text="Not enough parameters")
    if len(rooms) == 1:
        pairs: Iterable[tuple[str, str]] = ((rooms[0], nick) for nick in nicks)
    else:
        pairs = zip(rooms, nicks, strict=False)
    for room_name, nick in pairs:
        try:
            session.chat.kick(user, room_name, nick, reason)
        except ChatError as error:
            subject = error.nick if error.code is ErrorCode.NO_SUCH_NICK else room_name
            send_error(session, numeric_for(error, error.nick or subject))


def invite(session: IrcSession, msg: IrcMessage) -> None:
    """INVITE <nick> <#room>: 341 to the inviter, INVITE to the invitee."""
    user = session_user(session)
    if len(msg.params) < 2:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "INVITE", text="Not enough parameters")
    nick, room_name = msg.params[0], msg.params[1]
    if fold(nick) not in session.chat.users:
        raise IrcError(n.ERR_NOSUCHNICK, clean_text(nick), text="No such nick/channel")
    try:
        room, target = session.chat.invite(user, nick, room_name)
    except ChatError as error:
        raise numeric_for(error, room_name) from None
    numeric(session, n.RPL_INVITING, target.nick, room.name)


def kill(session: IrcSession, msg: IrcMessage) -> None:
    """KILL <nick> [:reason]: server operators disconnect someone."""
    user = session_user(session)
    reason = msg.params[1] if len(msg.params) > 1 else ""
    try:
        target = session.chat.kill(user, msg.params[0], reason)
    except ChatError as error:
        if error.code is ErrorCode.NOT_OPERATOR:
            raise IrcError(
                n.ERR_NOPRIVILEGES, text="Permission Denied- You're not an IRC operator"
            ) from None
        raise numeric_for(error, msg.params[0]) from None
    session.log.info("{oper} killed {nick}", oper=user.nick, nick=target.nick)


# fmt: off
COMMANDS: dict[str, IrcCommand] = {
    "TOPIC": IrcCommand(topic, 1),
    "KICK": IrcCommand(kick, 2),
    "INVITE": IrcCommand(invite, 2),
    "KILL": IrcCommand(kill, 1),
}
# fmt: on
