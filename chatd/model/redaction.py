"""Deleting a kept message: who may delete which, the one rule every door asks.

docs/protocol.md, Deleting messages. The rule:

- Anyone may delete their own message. Own is decided by the author the
  store kept with it (chatd.model.chat.author_of): the speaker's account if
  they were identified, else their session, which is that registration's
  only. So a person who takes a nickname later is never the author of what
  its earlier holder said, and someone not identified can delete their
  messages only until they disconnect (identified, for ever).
- A room's operators may delete any message of the room, and server
  operators any message of any room (a room without members too).
- A private message (docs/protocol.md, Private history) is deleted only by
  its sender, identified to the account that sent it: reading private
  history needs an account, and so does deleting from it.

The deletion itself is Chat.delete_message or Chat.delete_private_message (a
cluster replicates them); delete() asks the store who said the message, then
the rule, then calls the one that fits. The doors render its ChatError.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.model.accounts import Accounts
from chatd.model.chat import Chat, Room, User, author_of, usable_history
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold, normalize_name, room_problem
from chatd.model.private_history import conversation_of
from chatd.store.interface import HistoryUnavailable, IHistory

# Who deleted what, for the operators (the spec's "deletion log"): never the text.
log = Logger(namespace="chatd.deletions")
# Ids are whole numbers below 2**63: at most 19 digits.
MAX_ID_DIGITS = 19
# What one deletion costs its asker, in lines of answer (the connection layer
# charges 50 lines a flood token, so 5 tokens, 2.5 s of the default rate): on
# Redis a deletion writes the room's stream again (up to 10,000 entries, about
# 130 ms of Redis), so nobody may ask for them at the rate of lines.
DELETION_COST = 250


def message_id(word: str) -> int:
    """The message id word spells, or ChatError(BAD_ARGS)."""
    if not (word.isascii() and word.isdecimal() and len(word) <= MAX_ID_DIGITS):
        raise ChatError(ErrorCode.BAD_ARGS, f"{word} is not a message id")
    return int(word)


def may_delete(chat: Chat, user: User, room: Room | None, author: str) -> bool:
    """Tell whether user may delete a message of room (None: a room nobody is
    in now) whose kept author is author ("" for a message kept without one)."""
    if author and author == author_of(user):
        return True
    if chat.is_server_operator(user):
        return True
    return room is not None and chat.is_operator(room, user)


def _unavailable(failure: Failure) -> Failure:
    """A store that could not answer, as the error a door shows."""
    if failure.check(HistoryUnavailable):
        reason = failure.value.reason
        return Failure(
            ChatError(ErrorCode.NO_HISTORY, f"history is unavailable: {reason}")
        )
    return failure


def _unknown(msg_id: int, where: str) -> ChatError:
    return ChatError(
        ErrorCode.BAD_ARGS,
        f"{msg_id} is not a message id of {where} (or it was deleted)",
    )


def _logged(user: User, target: str, msg_id: int, reason: str, own: bool) -> None:
    log.info(
        "{nick} deleted {whose} message {id} of {target} ({reason})",
        nick=user.nick,
        account=user.account,
        whose="their own" if own else "a",
        id=msg_id,
        target=target,
        reason=reason,
    )


def _not_allowed(where: str) -> ChatError:
    return ChatError(
        ErrorCode.NOT_OPERATOR,
        f"only its author, or an operator of {where}, may delete that message",
    )


def delete(
    chat: Chat,
    accounts: Accounts,
    user: User,
    target: str,
    word: str,
    reason: str,
) -> defer.Deferred[str]:
    """Delete the message whose id word spells, of target (a room, or a
    nickname or account: a private conversation) for user, if the rule allows.

    The target is checked before the id (a room that is not there is said
    so, whatever the id).

    Fires with the target as shown once the deletion is made (its Deleted
    event is on its way); fails with ChatError: bad-args for an id that is
    not a live message of target, not-operator for someone else's message,
    and the errors of reading history (no such room, not identified,
    no-history). Raises them at once where no store need be asked.
    """
    history = usable_history(chat)
    if not target.startswith("#"):
        return _delete_private(chat, accounts, history, user, target, word, reason)
    name = normalize_name(target)
    problem = room_problem(name)
    if problem is not None:
        raise ChatError(ErrorCode.ROOM_INVALID, f"{name}: {problem}")
    room = chat.may_read(user, name)
    if room is None and not chat.is_server_operator(user):
        raise ChatError(ErrorCode.NO_SUCH_ROOM, f"there is no room {name}", room=name)
    shown = room.name if room is not None else name
    key = room.key if room is not None else fold(name)
    msg_id = message_id(word)

    def decide(author: str | None) -> str:
        if author is None:
            raise _unknown(msg_id, shown)
        found = chat.rooms.get(key)  # as it is now, after the store answered
        if not may_delete(chat, user, found, author):
            raise _not_allowed(shown)
        chat.delete_message(user, shown, msg_id, reason)
        _logged(user, shown, msg_id, reason, own=author == author_of(user))
        return shown

    asked = history.author(key, msg_id).addErrback(_unavailable)
    return asked.addCallback(decide)


def _delete_private(
    chat: Chat,
    accounts: Accounts,
    history: IHistory,
    user: User,
    target: str,
    word: str,
    reason: str,
) -> defer.Deferred[str]:
    """delete() for one's private conversation with target: one's own only."""
    found = conversation_of(accounts, user, target)
    msg_id = message_id(word)
    shown = normalize_name(target)
    where = f"your conversation with {shown}"

    def decide(author: str | None) -> str:
        if author is None:
            raise _unknown(msg_id, where)
        # The account the asker is identified to now, as it was when asked.
        if author != found.me or fold(user.account) != found.me:
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                "only its sender may delete a private message",
            )
        chat.delete_private_message(user, found.me, found.other, shown, msg_id, reason)
        _logged(user, shown, msg_id, reason, own=True)
        return shown

    asked = history.private_author(found.me, found.other, msg_id)
    return asked.addErrback(_unavailable).addCallback(decide)
