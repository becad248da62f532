"""The line door's commands for rooms people run (docs/protocol.md).

/topic, /op, /deop, /voice, /devoice, /kick, /ban, /unban, /bans, /invite,
/mode and /kill. The rules are the model's (chatd.model.moderation); these only
read the arguments and answer the one who typed them. chatd.line.commands puts
them in its table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatd.line.wire import line, word_lines
from chatd.model.chat import Room
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.model.room_rules import Change, parse_changes

if TYPE_CHECKING:
    from chatd.line.session import Session

LIST_LINE_BUDGET = 512
CLEAR_TOPIC = "-"  # /topic - clears the topic


def room_first(args: list[str]) -> tuple[str | None, list[str]]:
    """Split an optional leading #room off the arguments."""
    if args and args[0].startswith("#"):
        return args[0], args[1:]
    return None, args


def words_of(args: list[str]) -> list[str]:
    """The arguments as words (a free-text last argument split up)."""
    return " ".join(args).split()


def error_line(error: ChatError) -> bytes:
    """ERR code text, the text cleaned of control characters."""
    return line("ERR", error.code.value, text=clean_text(error.text))


def _room(session: Session, name: str | None) -> Room:
    """The room named (default: the current one); a secret room of others is none."""
    chat = session.chat
    user = session.registered_user()
    return (
        chat.visible_room(user, name) if name is not None else chat.rooms[user.current]
    )


def topic_line(room: Room) -> bytes:
    """TOPIC <room> <nick> <text>: the topic as it is, and who set it."""
    rules = room.rules
    return line("TOPIC", room.name, rules.topic_by or "-", text=rules.topic)


def topic(session: Session, args: list[str]) -> None:
    """/topic [<#room>] [<text>]: show the topic, set it, or clear it with -."""
    name, rest = room_first(args)
    text = " ".join(rest).strip()
    user = session.registered_user()
    if not text:
        room = _room(session, name)
        if room.rules.topic:
            session.send(topic_line(room))
        else:
            session.send_info(f"{room.name} has no topic.")
        return
    session.chat.set_topic(user, name, "" if text == CLEAR_TOPIC else text)


def _status_command(letter: str, on: bool) -> Callable[[Session, list[str]], None]:
    """The handler of /op, /deop, /voice or /devoice [<#room>] <nick>."""

    def handler(session: Session, args: list[str]) -> None:
        name, rest = room_first(args)
        if len(rest) != 1:
            raise ChatError(ErrorCode.BAD_ARGS, "name one person (and the room first)")
        _apply(session, name, [Change(letter, on, rest[0])])

    return handler


def _apply(session: Session, name: str | None, changes: list[Change]) -> None:
    """Make changes; what the model refuses is answered, one ERR each."""
    user = session.registered_user()
    _, applied, errors = session.chat.change_modes(user, name, changes)
    if len(errors) == 1 and not applied:
        raise errors[0]
    for error in errors:
        session.send(error_line(error))
    if not applied and not errors:
        session.send_info("That changes nothing.")


op = _status_command("o", True)
deop = _status_command("o", False)
voice = _status_command("v", True)
devoice = _status_command("v", False)


def ban(session: Session, args: list[str]) -> None:
    """/ban [<#room>] <nick | nick!user@host | account:name>."""
    name, rest = room_first(args)
    if len(rest) != 1:
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /ban [<#room>] <nick or mask>")
    _apply(session, name, [Change("b", True, rest[0])])


def unban(session: Session, args: list[str]) -> None:
    """/unban [<#room>] <mask>: lift a ban (any spelling of the same mask)."""
    name, rest = room_first(args)
    if len(rest) != 1:
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /unban [<#room>] <nick or mask>")
    _apply(session, name, [Change("b", False, rest[0])])


def bans_lines(room: Room) -> list[bytes]:
    """BANS <room> <mask>...: the room's bans (one line with the room alone: none)."""
    masks = [ban.mask for ban in room.rules.bans]
    return word_lines("BANS", [room.name], masks, LIST_LINE_BUDGET)


def bans(session: Session, args: list[str]) -> None:
    """/bans [<#room>]: the room's bans, in BANS lines."""
    for data in bans_lines(_room(session, args[0] if args else None)):
        session.send(data)


def kick(session: Session, args: list[str]) -> None:
    """/kick [<#room>] <nick> [reason]."""
    name, rest = room_first(words_of(args))
    if not rest:
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /kick [<#room>] <nick> [reason]")
    session.chat.kick(session.registered_user(), name, rest[0], " ".join(rest[1:]))


def invite(session: Session, args: list[str]) -> None:
    """/invite <nick> [<#room>] (in either order): they may join it once."""
    rooms = [word for word in args if word.startswith("#")]
    nicks = [word for word in args if not word.startswith("#")]
    if len(nicks) != 1 or len(rooms) > 1:
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /invite <nick> [<#room>]")
    user = session.registered_user()
    room_name = rooms[0] if rooms else session.chat.current_room(user).name
    room, target = session.chat.invite(user, nicks[0], room_name)
    session.send_info(f"You invited {target.nick} to {room.name}.")


def modes_line(room: Room, member: bool) -> bytes:
    """MODES <room> <modes> <arguments>: the key shown to members only."""
    modes, values = room.rules.mode_string(show_key=member)
    return line("MODES", room.name, modes, text=" ".join(values))


def mode(session: Session, args: list[str]) -> None:
    """/mode [<#room>] [<changes> [<arguments>...]]: show or change room modes."""
    name, rest = room_first(args)
    user = session.registered_user()
    if not rest:
        room = _room(session, name)
        session.send(modes_line(room, user.is_member(room)))
        return
    changes, lists, errors = parse_changes(rest)
    if lists:
        for data in bans_lines(_room(session, name)):
            session.send(data)
    for error in errors:
        session.send(error_line(error))
    if changes:
        _apply(session, name, changes)


def kill(session: Session, args: list[str]) -> None:
    """/kill <nick> [reason]: disconnect someone (server operators only)."""
    words = words_of(args)
    user = session.registered_user()
    target = session.chat.kill(user, words[0], " ".join(words[1:]))
    session.log.info("{oper} killed {nick}", oper=user.nick, nick=target.nick)
    session.send_info(f"{target.nick} was disconnected.")
