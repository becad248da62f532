"""IRC's words for accounts: SASL PLAIN, NickServ and OPER.

- AUTHENTICATE (IRCv3 SASL 3.1, mechanism PLAIN): the response comes in
  base64 chunks of at most 400 bytes; the check runs on the accounts'
  threads, and registration waits for it (CAP END meanwhile changes
  nothing until the answer: 900 and 903, or 904).
- PRIVMSG NickServ :IDENTIFY [<account>] <password> (and REGISTER, SET
  PASSWORD, DROP, HELP; RESETPASS and FDROP for server operators), for
  clients that only know that; the answers are NOTICEs from NickServ.
- OPER <account> <password>: an account listed in --operators, its password.

The rules and the password checks are chatd.model.accounts'; these spell them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import partial
from typing import TypeVar, cast

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatd.irc import markers, missed
from chatd.irc import numerics as n
from chatd.irc.message import IrcMessage, irc_line
from chatd.irc.reattach import attach_identified, holder_to_attach
from chatd.irc.registration import try_register
from chatd.irc.render import SERVICES_HOST, mask
from chatd.irc.session import (
    IrcCommand,
    IrcError,
    IrcSession,
    numeric,
    send_error,
)
from chatd.model.catch_up import fork
from chatd.model.chat import User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text, fold
from chatd.model.server_bans import ServerBanned
from chatd.store.accounts import AccountRecord

NICKSERV = "NickServ"
MECHANISMS = "PLAIN"
CHUNK = 400  # bytes of one AUTHENTICATE (IRCv3 SASL 3.1)
MAX_RESPONSE = 4096  # bytes of base64 one PLAIN response may take in all
T = TypeVar("T")


def _failed(failure: Failure) -> ChatError:
    failure.trap(ChatError)
    return cast(ChatError, failure.value)


def numeric_bytes(session: IrcSession, code: str, *params: str, text: str) -> bytes:
    """A numeric to the session's client, as bytes (for an answer that waits)."""
    return irc_line(code, session.nick, *params, text=text, source=session.server.name)


def answer_later(
    session: IrcSession,
    answer: Deferred[T],
    said: Callable[[T], bytes],
    refused: Callable[[ChatError], bytes],
    late: bytes,
) -> None:
    """Send said(result) or refused(error) when the check is done.

    What the client's later lines bring waits behind it
    (Connection.send_later), so a client that sends PING after OPER gets
    381 before its PONG; late is sent if the check takes too long.
    """

    def failed(failure: Failure) -> bytes:
        return refused(_failed(failure))

    session.send_later(answer.addCallbacks(said, failed), late)


# -- SASL ---------------------------------------------------------------------------


def _sasl_fail(session: IrcSession, text: str = "SASL authentication failed") -> None:
    reg = session.registration
    reg.mechanism, reg.response = None, ""
    numeric(session, n.ERR_SASLFAIL, text=text)


def logged_in(session: IrcSession, account: str) -> bytes:
    """900: the client is now logged in as account."""
    user = session.user
    if user is not None:
        who = mask(session.chat, user.nick)
    else:
        reg = session.registration
        nick = reg.nick or "*"
        who = f"{nick}!{reg.username or '*'}@{session.host}"
    return numeric_bytes(
        session,
        n.RPL_LOGGEDIN,
        who,
        account,
        text=f"You are now logged in as {account}",
    )


def authenticate(session: IrcSession, msg: IrcMessage) -> None:
    """AUTHENTICATE <mechanism>, then the response in chunks, or * to abort."""
    reg = session.registration
    word = msg.params[0]
    if not session.caps.has("sasl") and not (
        session.user is None and session.caps.negotiating
    ):
        # As Ergo: while registering under CAP (after CAP LS), a client may
        # authenticate without asking for the capability (irctest's bouncer
        # tests do); after that, only with it.
        raise IrcError(n.ERR_SASLFAIL, text="Request the sasl capability first")
    if reg.checking:
        return  # an answer is on its way; nothing more is read meanwhile
    if word == "*":
        reg.mechanism, reg.response = None, ""
        numeric(session, n.ERR_SASLABORTED, text="SASL authentication aborted")
        return
    if reg.mechanism is None:
        if reg.account or (session.user is not None and session.user.account):
            numeric(session, n.ERR_SASLALREADY, text="You have already authenticated")
            return
        if word.upper() != MECHANISMS:
            numeric(
                session,
                n.RPL_SASLMECHS,
                MECHANISMS,
                text="are available SASL mechanisms",
            )
            _sasl_fail(session)
            return
        reg.mechanism = MECHANISMS
        session.send(irc_line("AUTHENTICATE", "+"))
        return
    if len(word) > CHUNK:
        reg.mechanism, reg.response = None, ""
        numeric(session, n.ERR_SASLTOOLONG, text="SASL message too long")
        return
    if word != "+":
        reg.response += word
        if len(reg.response) > MAX_RESPONSE:
            _sasl_fail(session, "SASL response too long")
            return
        if len(word) == CHUNK:
            return  # more to come (a last chunk of exactly 400 is followed by +)
    _check_plain(session, reg.response)


def _check_plain(session: IrcSession, response: str) -> None:
    """Decode a PLAIN response (authzid NUL authcid NUL password) and check it."""
    reg = session.registration
    reg.mechanism, reg.response = None, ""
    try:
        decoded = base64.b64decode(response, validate=True).decode("utf-8")
        authzid, authcid, password = decoded.split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        _sasl_fail(session)
        return
    if not authcid or (authzid and fold(authzid) != fold(authcid)):
        _sasl_fail(session)
        return
    reg.checking = True

    def done(record: AccountRecord) -> bytes:
        reg.checking = False
        if session.user is None:
            reg.account = record.name
        data = logged_in(session, record.name) + numeric_bytes(
            session, n.RPL_SASLSUCCESS, text="SASL authentication successful"
        )
        _after_check(session)  # its 001 waits behind these
        return data

    def refused(error: ChatError) -> bytes:
        reg.checking = False
        _after_check(session)
        text = f"SASL authentication failed: {clean_text(error.text)}"
        return numeric_bytes(session, n.ERR_SASLFAIL, text=text)

    answer = session.accounts.identify(session.user, authcid, password, session.host)
    late = numeric_bytes(session, n.ERR_SASLFAIL, text="SASL authentication timed out")
    answer_later(session, answer, done, refused, late)


def _after_check(session: IrcSession) -> None:
    """The check is over: registration may go on, where shared state may
    change (Chat.changing: a cluster node's turn of its own, since the check
    ends after its line's turn; docs/cluster.md, Several devices on a cluster)."""

    def go_on() -> None:
        if session.awaiting_nick:  # not closed meanwhile
            _registration_goes_on(session)

    session.chat.changing(go_on)


def _registration_goes_on(session: IrcSession) -> None:
    """A CAP END that came while the check ran may now register the client."""
    try:
        try_register(session)
    except IrcError as error:
        send_error(session, error)
    except ServerBanned as banned:  # the account SASL proved is banned
        session.refuse_banned(banned)


# -- NickServ -------------------------------------------------------------------------


def _notice(session: IrcSession, text: str) -> bytes:
    return irc_line(
        "NOTICE",
        session.nick,
        text=text,
        source=f"{NICKSERV}!{NICKSERV}@{SERVICES_HOST}",
    )


HELP = (
    "NickServ keeps registered nicknames. Commands:",
    "IDENTIFY [<account>] <password>: prove a registered nickname is yours",
    "REGISTER <password> [<email>]: register your nickname (the email is not kept)",
    "SET PASSWORD <new password>: a new password (identified only)",
    "SET ALWAYS-ON ON|OFF: stay in your channels while none of your devices is "
    "connected (identified only)",
    "DROP <password>: drop your account",
    "RESETPASS <account> <password>: an account's new password (server operators)",
    "FDROP <account>: drop someone's account (server operators)",
)
ALWAYS_ON_WORDS = {"on": True, "true": True, "off": False, "false": False}


def _always_on(session: IrcSession, user: User, word: str) -> bytes:
    """NickServ SET ALWAYS-ON on|off (as Ergo's): Chat.set_always_on decides."""
    on = ALWAYS_ON_WORDS.get(word)
    if on is None:
        return _notice(session, "Say SET ALWAYS-ON ON or SET ALWAYS-ON OFF.")
    try:
        session.chat.set_always_on(user, on, session.server.config.max_always_on_per_ip)
    except ChatError as error:
        text = clean_text(error.text)
        return _notice(session, text[:1].upper() + text[1:] + ".")
    if on:
        return _notice(
            session,
            "Always-on is on: when your last device goes, you stay in your "
            "channels, marked away, and what is said to you is kept.",
        )
    return _notice(session, "Always-on is off: when your last device goes, you quit.")


def _answered(
    session: IrcSession,
    answer: Deferred[AccountRecord],
    said: Callable[[AccountRecord], bytes],
) -> None:
    def refused(error: ChatError) -> bytes:
        text = clean_text(error.text)
        return _notice(session, text[:1].upper() + text[1:] + ".")

    late = _notice(session, "The check took too long; try again in a moment.")
    answer_later(session, answer, said, refused, late)


def _attached(session: IrcSession, user: User, record: AccountRecord) -> bytes:
    """IDENTIFY's password was right for an account whose user is here.

    This connection attaches to that user (chatd.irc.reattach); if that
    user left meanwhile, user is identified as IDENTIFY always did.
    """
    if session.user is not user:  # this connection closed meanwhile
        return b""
    said = logged_in(session, record.name)
    try:
        holder = attach_identified(session, user, record.name, said)
    except ChatError as error:  # too many devices, or on another cluster node
        text = clean_text(error.text)
        return _notice(session, text[:1].upper() + text[1:] + ".")
    if holder is None:
        try:
            session.accounts.identified(user, record)
        except ServerBanned:  # its connection is closing
            return b""
        return (
            said
            + _notice(session, f"You are now identified for {record.name}.")
            + markers.on_identify(session, record)
        )
    session.send(
        _notice(
            session,
            f"You are now identified for {record.name}, and this connection is "
            f"one more of {holder.nick}'s.",
        )
        + markers.on_identify(session, record)  # the account's markers, as after
    )  # an IDENTIFY that does not attach
    missed.replay_on_login(session)  # what it missed (none to CHATHISTORY clients)
    return b""


def nickserv(session: IrcSession, text: str) -> None:
    """A PRIVMSG to NickServ: IDENTIFY, REGISTER, SET PASSWORD, DROP, HELP, and
    for server operators RESETPASS and FDROP (Atheme's words)."""
    words = text.split()
    command = words[0].upper() if words else "HELP"
    args = words[1:]
    user = session.user
    if user is None:  # the table lets only registered sessions PRIVMSG
        return
    accounts = session.accounts
    host = session.host

    def identified(record: AccountRecord) -> bytes:
        return (
            logged_in(session, record.name)
            + _notice(session, f"You are now identified for {record.name}.")
            + markers.on_identify(session, record)  # draft/read-marker
        )

    if command == "IDENTIFY" and 1 <= len(args) <= 2:
        name, password = (user.nick, args[0]) if len(args) == 1 else (args[0], args[1])
        if holder_to_attach(session, user, name) is None:
            checked = accounts.identify(user, name, password, host)
            caught_up = fork(checked)
            _answered(session, checked, identified)
            missed.replay_after(session, caught_up)  # what it missed, after the answer
        else:  # a second device: this connection attaches (chatd.irc.reattach)
            answer = accounts.identify(None, name, password, host)
            _answered(session, answer, partial(_attached, session, user))
    elif command == "REGISTER" and 1 <= len(args) <= 2:
        # The second word is an email to services elsewhere (not kept here);
        # a second word without @ is the password again, and must match.
        again = args[1] if len(args) == 2 and "@" not in args[1] else None

        def registered(record: AccountRecord) -> bytes:
            return logged_in(session, record.name) + _notice(
                session,
                f"{record.name} is registered to you, and you are identified. "
                "If you mistyped the password, set it again now with "
                "SET PASSWORD <new password>.",
            )

        _answered(session, accounts.register(user, args[0], again, host), registered)
    elif command == "SET" and len(args) == 2 and args[0].upper() == "PASSWORD":

        def changed(record: AccountRecord) -> bytes:
            return _notice(session, f"{record.name} has its new password.")

        _answered(session, accounts.set_password(user, args[1], None, host), changed)
    elif command == "SET" and len(args) == 2 and args[0].upper() == "ALWAYS-ON":
        session.send(_always_on(session, user, args[1].lower()))
    elif command in ("DROP", "UNREGISTER") and len(args) == 1:

        def dropped(record: AccountRecord) -> bytes:
            return _notice(session, f"The account {record.name} is gone.")

        _answered(session, accounts.unregister(user, args[0], host), dropped)
    elif command == "RESETPASS" and len(args) == 2:

        def reset(record: AccountRecord) -> bytes:
            return _notice(session, f"{record.name} has its new password.")

        _answered(session, accounts.reset_password(args[0], args[1], by=user), reset)
    elif command == "FDROP" and len(args) == 1:

        def forced(record: AccountRecord) -> bytes:
            return _notice(session, f"The account {record.name} is gone.")

        _answered(session, accounts.drop_account(args[0], by=user), forced)
    else:
        session.send(b"".join(_notice(session, line) for line in HELP))


# -- OPER ---------------------------------------------------------------------------


def nickserv_alias(session: IrcSession, msg: IrcMessage) -> None:
    """NICKSERV or NS <text>: the same as PRIVMSG NickServ :<text> (Ergo, Atheme)."""
    nickserv(session, " ".join(msg.params))


def identify(session: IrcSession, msg: IrcMessage) -> None:
    """IDENTIFY [<account>] <password>: PRIVMSG NickServ :IDENTIFY (irssi sends it)."""
    nickserv(session, " ".join(["IDENTIFY", *msg.params]))


def oper(session: IrcSession, msg: IrcMessage) -> None:
    """OPER <account> <password>: become a server operator (--operators lists it)."""
    user = session.user
    if user is None:
        return
    name, password = msg.params[0], msg.params[1]
    if fold(name) not in session.chat.server_operators:
        raise IrcError(n.ERR_NOOPERHOST, text="No O-lines for your host")

    def done(record: AccountRecord) -> bytes:
        nick = session.nick
        return numeric_bytes(
            session, n.RPL_YOUREOPER, text="You are now an IRC operator"
        ) + irc_line("MODE", nick, "+o", source=nick)

    def refused(error: ChatError) -> bytes:
        text = "Password incorrect"
        if error.code is ErrorCode.THROTTLED:
            text = clean_text(error.text)
        return numeric_bytes(session, n.ERR_PASSWDMISMATCH, text=text)

    answer = session.accounts.identify(user, name, password, session.host)
    late = numeric_bytes(session, n.ERR_PASSWDMISMATCH, text="Try again in a moment")
    answer_later(session, answer, done, refused, late)


# fmt: off
COMMANDS: dict[str, IrcCommand] = {
    "AUTHENTICATE": IrcCommand(authenticate, 1, before_registration=True),
    "OPER": IrcCommand(oper, 2),
    "NICKSERV": IrcCommand(nickserv_alias, 0),
    "NS": IrcCommand(nickserv_alias, 0),
    "IDENTIFY": IrcCommand(identify, 1),
}
# fmt: on
