"""The line door's commands for typing, reactions and replies (docs/protocol.md).

/tags [on|off] (the opt-in to see them), /typing, /react and /reply. What
they mean, who may send them and how fast are the model's
(chatd.model.client_tags, Chat.send_tags); these only read the arguments.
chatd.line.commands puts them in its table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatd.model.client_tags import (
    REACT,
    REPLY,
    TYPING,
    TYPING_STATES,
    is_message_id,
    reaction_problem,
)
from chatd.model.errors import ChatError, ErrorCode

if TYPE_CHECKING:
    from chatd.line.session import Session


def tags(session: Session, args: list[str]) -> None:
    """/tags [on|off]: TYPING, REACT and REPLY lines from now on, or no more."""
    word = args[0].lower() if args else "on"
    if word not in ("on", "off"):
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /tags [on|off]")
    on = word == "on"
    session.show_tags(on)
    if on:
        session.send_info(
            "Typing, reactions and replies are on: TYPING <target> <nick> <state>, "
            "REACT <target> <nick> <id> <reaction>, and REPLY <target> <id> "
            "before a message that answers another."
        )
    else:
        session.send_info("Typing, reactions and replies are off.")


def typing(session: Session, args: list[str]) -> None:
    """/typing <#room|nick> active|paused|done: tell them you are typing."""
    target, state = args[0], args[1].lower()
    if state not in TYPING_STATES:
        raise ChatError(
            ErrorCode.BAD_ARGS, "usage: /typing <#room|nick> active|paused|done"
        )
    session.chat.send_tags(session.registered_user(), target, ((TYPING, state),))


def react(session: Session, args: list[str]) -> None:
    """/react <#room|nick> <id> <reaction>: react to a message with an emoji."""
    target, msg_id, text = args[0], args[1], args[2].strip()
    _check_id(msg_id)
    problem = reaction_problem(text)
    if problem is not None:
        raise ChatError(ErrorCode.BAD_ARGS, problem)
    session.chat.send_tags(
        session.registered_user(), target, ((REACT, text), (REPLY, msg_id))
    )


def reply(session: Session, args: list[str]) -> None:
    """/reply <#room|nick> <id> <text>: a message that answers message id."""
    target, msg_id, text = args[0], args[1], args[2].strip()
    _check_id(msg_id)
    if not text:
        raise ChatError(ErrorCode.BAD_ARGS, "usage: /reply <#room|nick> <id> <text>")
    user, chat = session.registered_user(), session.chat
    marked = ((REPLY, msg_id),)
    if target.startswith("#"):
        chat.say(user, text, room=target, tags=marked)
    else:
        chat.tell(user, target, text, tags=marked)


def _check_id(msg_id: str) -> None:
    """Refuse what cannot be a message id (ids are opaque words)."""
    if not is_message_id(msg_id):
        raise ChatError(ErrorCode.BAD_ARGS, f"{msg_id[:64]} is not a message id")
