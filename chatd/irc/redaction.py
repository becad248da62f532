"""IRCv3 draft/message-redaction: REDACT <target> <msgid> [:reason] on the IRC door.

Who may delete which message is the model's (chatd.model.redaction); this
only translates. A deletion reaches the room's members (or the two sides of
a private conversation) that negotiated draft/message-redaction as
`:deleter!user@host REDACT <target> <msgid> [:reason]` (chatd.irc.render);
the others are sent nothing, as the spec's fallback allows. Refusals are
the spec's FAIL REDACT lines (docs/irc.md, Deleting messages).
"""

from __future__ import annotations

from twisted.python.failure import Failure

from chatd.irc.message import IrcMessage, irc_line
from chatd.irc.session import IrcCommand, IrcSession, session_user
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.model.redaction import DELETION_COST, delete

CAP = "draft/message-redaction"


def _fail(session: IrcSession, error: ChatError, target: str, msgid: str) -> bytes:
    """The spec's FAIL REDACT for the model's refusal."""
    target = clean_text(target)[:64] or "*"
    msgid = clean_text(msgid)[:64] or "*"
    text = clean_text(error.text)
    source = session.server.name
    if error.code is ErrorCode.BAD_ARGS:
        words = ["UNKNOWN_MSGID", target, msgid]
    elif error.code is ErrorCode.NOT_OPERATOR:
        words = ["REDACT_FORBIDDEN", target, msgid]
    else:  # no such room, not identified, no history ...
        words = ["INVALID_TARGET", target]
    return irc_line("FAIL", "REDACT", *words, text=text, source=source)


def redact(session: IrcSession, msg: IrcMessage) -> None:
    """REDACT <target> <msgid> [:reason]: delete a kept message."""
    user = session_user(session)
    target, msgid = msg.params[0], msg.params[1]
    reason = clean_text(msg.params[2]).strip() if len(msg.params) > 2 else ""
    session.charge_answer(DELETION_COST)  # before the work (DELETION_COST)
    try:
        done = delete(session.chat, session.accounts, user, target, msgid, reason)
    except ChatError as error:
        session.send(_fail(session, error, target, msgid))
        return

    def refused(failure: Failure) -> bytes:
        failure.trap(ChatError)
        return _fail(session, failure.value, target, msgid)

    late = _fail(
        session,
        ChatError(ErrorCode.NO_HISTORY, "history did not answer in time"),
        target,
        msgid,
    )
    # Nothing to say when done: the REDACT itself is the answer.
    session.send_later(done.addCallbacks(lambda shown: b"", refused), late)


COMMANDS = {"REDACT": IrcCommand(redact, 2)}
