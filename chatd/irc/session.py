"""What an IRC command is, what it needs of its connection, and how it answers.

The IRC door's commands live in chatd.irc.commands (the table and the
everyday commands), chatd.irc.room_commands and chatd.irc.account_commands;
all of them take an IrcSession and answer with numerics, refusals as
IrcError, the model's refusals turned into numerics in one place
(numeric_for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chatd.config import ReloadReport
from chatd.irc import numerics as n
from chatd.irc.caps import CapState
from chatd.irc.history import HistorySession
from chatd.irc.message import IrcMessage, irc_line
from chatd.irc.server import IrcServer
from chatd.model.accounts import Accounts
from chatd.model.chat import Chat, Event, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.model.server_bans import ServerBanned


class IrcError(Exception):
    """A refusal spelled as a numeric: code, middle parameters and text."""

    def __init__(self, code: str, *params: str, text: str) -> None:
        super().__init__(code, *params, text)
        self.code = code
        self.params = params
        self.text = text


@dataclass(slots=True)
class Registration:
    """What a client told before it is registered."""

    nick: str | None = None
    username: str | None = None
    realname: str = ""
    # SASL (chatd.irc.account_commands): the mechanism chosen, the response
    # so far (base64), a check on its way, and the account it proved.
    mechanism: str | None = None
    response: str = ""
    checking: bool = False
    account: str = ""


class IrcSession(HistorySession, Protocol):
    """What a command needs of the IRC connection that sent it."""

    chat: Chat
    server: IrcServer
    caps: CapState
    log: Logger
    user: User | None
    registration: Registration
    host: str

    @property
    def nick(self) -> str:
        """The client's nickname as numerics address it ("*" before one is set)."""

    @property
    def awaiting_nick(self) -> bool:
        """Whether the connection has yet to register (and is not closing)."""

    def send(self, data: bytes) -> None:
        """Write encoded lines."""

    def register_user(self, nick: str, username: str, realname: str) -> User:
        """Register the connection's user in the chat (raises ChatError)."""

    def attach_user(self, user: User) -> None:
        """Become one more connection of user (chatd.model.devices)."""

    def switch_user(self, user: User, reason: str) -> None:
        """Leave this connection's user (QUIT to the others) and become user's."""

    def deliver(self, event: Event) -> None:
        """Write a chat event as this connection renders it."""

    def quit_chat(self, reason: str) -> None:
        """Leave the chat (QUIT to the others), say ERROR and close."""

    def refuse_banned(self, banned: ServerBanned) -> None:
        """A server ban refuses the connection: 465, then ERROR and close."""

    def pong_received(self) -> None:
        """The client answered (or sent) a PONG."""

    def unregistered_count(self) -> int:
        """Connections that are open but not yet registered, on any door."""

    def welcomed(self) -> None:
        """The welcome is said: the accounts may speak (a reserved nickname)."""

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come, everything sent later behind them."""

    def rehash(self) -> ReloadReport:
        """Re-read the config file (the user is a server operator)."""

    def send_in_slices(self, lines: Iterator[bytes], fallback: bytes) -> None:
        """Send a long answer's lines, a slice per reactor turn (chatd.net.bulk)."""

    def begin_label(self, label: str) -> None:
        """A labeled command starts: what is sent from now on is its response."""

    def end_label(self) -> None:
        """The labeled command is done: frame and send its response."""

    def unlabeled(self, run: Callable[[], object]) -> bytes:
        """Run run; what it sends is no reply to the command (returned too)."""

    @property
    def accounts(self) -> Accounts:
        """The server's accounts (chatd.model.accounts)."""


Handler = Callable[[IrcSession, IrcMessage], None]


@dataclass(frozen=True, slots=True)
class IrcCommand:
    """One IRC command: its handler, how many parameters it needs, when allowed."""

    handler: Handler
    min_params: int = 0
    before_registration: bool = False


# -- replies -------------------------------------------------------------------


def numeric(
    session: IrcSession, code: str, *params: str, text: str | None = None
) -> None:
    """Send a numeric from the server to the session's client."""
    session.send(numeric_line(session, code, *params, text=text))


def numeric_line(
    session: IrcSession, code: str, *params: str, text: str | None = None
) -> bytes:
    """Return a numeric from the server to the session's client, encoded."""
    return irc_line(code, session.nick, *params, text=text, source=session.server.name)


def server_line(
    session: IrcSession, command: str, *params: str, text: str | None = None
) -> None:
    """Send a non-numeric line from the server (NOTICE, CAP, PONG, ...)."""
    session.send(irc_line(command, *params, text=text, source=session.server.name))


def send_error(session: IrcSession, error: IrcError) -> None:
    """Send an IrcError as its numeric."""
    numeric(session, error.code, *error.params, text=error.text)


def numeric_for(error: ChatError, subject: str) -> IrcError:
    """Translate the model's refusal about subject into IRC's numeric."""
    subject = clean_text(subject) or "*"
    text = clean_text(error.text)
    match error.code:
        case ErrorCode.NICK_TAKEN:
            return IrcError(
                n.ERR_NICKNAMEINUSE, subject, text="Nickname is already in use"
            )
        case ErrorCode.NICK_INVALID:
            return IrcError(
                n.ERR_ERRONEUSNICKNAME, subject, text=f"Erroneous nickname: {text}"
            )
        case ErrorCode.NO_SUCH_NICK:
            nick = clean_text(error.nick) or subject
            return IrcError(n.ERR_NOSUCHNICK, nick, text="No such nick/channel")
        case ErrorCode.NO_SUCH_ROOM | ErrorCode.ROOM_INVALID:
            return IrcError(
                n.ERR_NOSUCHCHANNEL, subject, text=f"No such channel: {text}"
            )
        case ErrorCode.NOT_IN_ROOM:
            return IrcError(
                n.ERR_NOTONCHANNEL,
                clean_text(error.room) or subject,
                text="You're not on that channel",
            )
        case ErrorCode.TOO_MANY_ROOMS:
            return IrcError(n.ERR_TOOMANYCHANNELS, subject, text=text)
        case ErrorCode.NOT_REGISTERED:
            return IrcError(n.ERR_NOTREGISTERED, text="You have not registered")
        case ErrorCode.BAD_ARGS:
            return IrcError(n.ERR_NEEDMOREPARAMS, subject, text=text)
        case ErrorCode.TOO_LONG:
            return IrcError(n.ERR_INPUTTOOLONG, text="Input line was too long")
        case ErrorCode.UNKNOWN_COMMAND:
            return IrcError(n.ERR_UNKNOWNCOMMAND, subject, text="Unknown command")
    return _room_numeric(error, subject, text)


def _room_numeric(error: ChatError, subject: str, text: str) -> IrcError:
    """The numerics of rooms people run (chatd.model.moderation's refusals)."""
    room = clean_text(error.room) or subject
    match error.code:
        case ErrorCode.NOT_OPERATOR if error.room:
            return IrcError(n.ERR_CHANOPRIVSNEEDED, room, text=text)
        case ErrorCode.NOT_OPERATOR:
            return IrcError(n.ERR_NOPRIVILEGES, text=text)
        case ErrorCode.BANNED:
            return IrcError(
                n.ERR_BANNEDFROMCHAN, room, text=f"Cannot join channel (+b): {text}"
            )
        case ErrorCode.INVITE_ONLY:
            return IrcError(
                n.ERR_INVITEONLYCHAN, room, text=f"Cannot join channel (+i): {text}"
            )
        case ErrorCode.WRONG_KEY:
            return IrcError(
                n.ERR_BADCHANNELKEY, room, text=f"Cannot join channel (+k): {text}"
            )
        case ErrorCode.ROOM_FULL:
            return IrcError(
                n.ERR_CHANNELISFULL, room, text=f"Cannot join channel (+l): {text}"
            )
        case ErrorCode.MODERATED:
            return IrcError(n.ERR_CANNOTSENDTOCHAN, room, text=text)
        case ErrorCode.NOT_MEMBER:
            nick = clean_text(error.nick) or subject
            return IrcError(n.ERR_USERNOTINCHANNEL, nick, room, text=text)
        case ErrorCode.ALREADY_IN_ROOM:
            nick = clean_text(error.nick) or subject
            return IrcError(n.ERR_USERONCHANNEL, nick, room, text=text)
        case ErrorCode.BAN_LIST_FULL:
            return IrcError(
                n.ERR_BANLISTFULL, room, clean_text(error.arg) or "*", text=text
            )
        case ErrorCode.CLUSTER_DOWN:  # a cluster node cut off (docs/cluster.md)
            return IrcError(n.RPL_TRYAGAIN, subject, text=text)
    return IrcError(n.ERR_UNKNOWNCOMMAND, subject, text=text)


def session_user(session: IrcSession) -> User:
    """The session's user; the table lets only registered sessions get here."""
    if session.user is None:
        raise IrcError(n.ERR_NOTREGISTERED, text="You have not registered")
    return session.user


def split_targets(param: str) -> list[str]:
    """Split a comma list of targets, dropping empty ones."""
    return [target for target in param.split(",") if target]


def is_invisible(user: User) -> bool:
    """Tell whether user set IRC's user mode +i (the model's User.invisible)."""
    return user.invisible
