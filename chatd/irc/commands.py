"""The IRC commands: one table with arity, and handlers that talk to the chat.

A handler gets the connection as an IrcSession (what it needs of it, no more)
and the parsed message, its parameters already counted against the table.
Refusals are IrcError (a numeric, ready to send) or the model's ChatError,
which the door turns into a numeric in one place (numeric_for).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial

from chatd.irc import (
    account_commands,
    kline_commands,
    labels,
    markers,
    redaction,
    rehash,
    room_commands,
)
from chatd.irc import numerics as n
from chatd.irc.caps import CapReply
from chatd.irc.history import backfill, chathistory
from chatd.irc.message import MAX_LINE, IrcMessage, ParseError, irc_line, parse_message
from chatd.irc.names_list import LIST_LINE_BUDGET, names_reply, word_lines
from chatd.irc.registration import lusers, motd, send_isupport, try_register
from chatd.irc.render import CTCP, shown_host, user_at_host, user_mask
from chatd.irc.search import search
from chatd.irc.server import AWAYLEN, MAX_TARGETS
from chatd.irc.session import (
    Handler,
    IrcCommand,
    IrcError,
    IrcSession,
    is_invisible,
    numeric,
    numeric_for,
    numeric_line,
    send_error,
    server_line,
    session_user,
    split_targets,
)
from chatd.model.chat import Room, User
from chatd.model.client_tags import client_tags
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.globs import Glob
from chatd.model.names import clean_text, fold
from chatd.model.server_bans import ServerBanned
from chatd.model.state import NO_HOST

# NAMES and LIST replies are split so that no line passes this many bytes.
USERLEN = 10


def _wildcard(pattern: str) -> Glob:
    """Read an IRC mask (* and ?) over folded names: matched without backtracking."""
    return Glob(fold(pattern))


# -- registration ----------------------------------------------------------------


def cap(session: IrcSession, msg: IrcMessage) -> None:
    """CAP LS/LIST/REQ/END: IRCv3 capability negotiation."""
    sub = msg.params[0].upper()
    registered = session.user is not None
    replies: list[CapReply]
    if sub == "LS":
        replies = session.caps.ls(
            msg.params[1] if len(msg.params) > 1 else None, registered
        )
    elif sub == "LIST":
        replies = session.caps.list()
    elif sub == "REQ":
        if len(msg.params) < 2:
            raise IrcError(n.ERR_NEEDMOREPARAMS, "CAP", text="Not enough parameters")
        replies = [session.caps.req(msg.params[1], registered)]
    elif sub == "END":
        session.caps.end()
        try_register(session)
        return
    else:
        raise IrcError(
            n.ERR_INVALIDCAPCMD, clean_text(msg.params[0]), text="Invalid CAP command"
        )
    for reply in replies:
        words = [session.nick, reply.subcommand] + (["*"] if reply.more else [])
        server_line(session, "CAP", *words, text=reply.text)


def _may_attach(session: IrcSession, wanted: str) -> bool:
    """Whether a NICK held by an identified user waits for SASL to say.

    docs/irc.md, Several devices: while CAP is negotiated, a nickname whose
    holder is identified may turn out to be this client's own (SASL to the
    same account attaches it); registration decides (try_register), with
    433 if it does not.
    """
    holder = session.chat.users.get(fold(wanted))
    return holder is not None and bool(holder.account) and session.caps.negotiating


def nick(session: IrcSession, msg: IrcMessage) -> None:
    """NICK <nick>: choose a nickname, or change it."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NONICKNAMEGIVEN, text="No nickname given")
    wanted = msg.params[0]
    user = session.user
    try:
        if user is None:
            if not _may_attach(session, wanted):
                session.chat.check_nick(wanted)
            session.registration.nick = wanted
            try_register(session)
            return
        old = user.nick
        session.chat.rename(user, wanted)
        if user.nick != old:
            session.log.info("{old} is now {new}", old=old, new=user.nick)
    except ServerBanned:
        raise  # the connection closes (Connection.handle_line: refuse_banned)
    except ChatError as error:
        raise numeric_for(error, wanted) from None


def user_(session: IrcSession, msg: IrcMessage) -> None:
    """USER <username> <mode> <unused> :<realname>."""
    if session.user is not None:
        raise IrcError(n.ERR_ALREADYREGISTRED, text="You may not reregister")
    if len(msg.params) < 4 or not msg.params[0] or not msg.params[3]:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "USER", text="Not enough parameters")
    # No ident lookup is done, so the username is marked with '~' as usual.
    raw = "".join(ch for ch in clean_text(msg.params[0]) if ch.isalnum() or ch in "_-.")
    session.registration.username = "~" + (raw[:USERLEN] or "user")
    session.registration.realname = clean_text(msg.params[3])
    try_register(session)


def pass_(session: IrcSession, msg: IrcMessage) -> None:
    """PASS: this server has no password; say so and go on."""
    if session.user is not None:
        raise IrcError(n.ERR_ALREADYREGISTRED, text="You may not reregister")
    server_line(
        session,
        "NOTICE",
        session.nick,
        text="This server has no password; PASS is ignored.",
    )


# -- connection ----------------------------------------------------------------


def ping(session: IrcSession, msg: IrcMessage) -> None:
    """PING <token>: answered with PONG at once."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NOORIGIN, text="No origin specified")
    server_line(session, "PONG", session.server.name, text=msg.params[0])


def pong(session: IrcSession, msg: IrcMessage) -> None:
    """PONG <token>: the client is alive."""
    session.pong_received()


def quit_(session: IrcSession, msg: IrcMessage) -> None:
    """QUIT [:reason]."""
    reason = clean_text(msg.params[0]).strip() if msg.params else ""
    session.quit_chat(f"Quit: {reason}" if reason else "Quit")


# -- rooms -----------------------------------------------------------------------


def join(session: IrcSession, msg: IrcMessage) -> None:
    """JOIN <#room>{,<#room>} [keys], or JOIN 0 to leave every room."""
    user = session_user(session)
    if msg.params[0] == "0":
        for room in list(user.rooms.values()):
            session.chat.part(user, room.name, "")
        return
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for at, name in enumerate(split_targets(msg.params[0])[:MAX_TARGETS]):
        key = keys[at] if at < len(keys) and keys[at] else None
        try:
            room, added = session.chat.join(user, name, key)
        except ChatError as error:
            send_error(session, numeric_for(error, name))
            continue
        if added:  # Modern: RPL_TOPIC only if one is set, then NAMES
            markers.on_join(session, room)  # draft/read-marker: before NAMES' end
            if room.rules.topic:
                room_commands.topic_reply(session, room)
            names_reply(session, room)
            backfill(session, room)


def part(session: IrcSession, msg: IrcMessage) -> None:
    """PART <#room>{,<#room>} [:reason]."""
    user = session_user(session)
    reason = clean_text(msg.params[1]) if len(msg.params) > 1 else ""
    for name in split_targets(msg.params[0])[:MAX_TARGETS]:
        try:
            session.chat.part(user, name, reason)
        except ChatError as error:
            send_error(session, numeric_for(error, name))


def names(session: IrcSession, msg: IrcMessage) -> None:
    """NAMES <#room>{,<#room>}: their members, charged by the lines answered.

    Without a room only 366 `*` is answered, as Ergo and InspIRCd do on large
    networks: every member of every room is the whole server, which no
    client needs at once (docs/irc.md, Limits).
    """
    if not msg.params or not msg.params[0]:
        numeric(session, n.RPL_ENDOFNAMES, "*", text="End of /NAMES list")
        return
    me = session.user
    visible = session.chat.may_see  # a secret room of others is none
    wanted = split_targets(msg.params[0])[:MAX_TARGETS]
    sent = 0
    for name in wanted:
        found = session.chat.rooms.get(fold(name))
        if found is not None and visible(me, found):
            sent += names_reply(session, found, end=False)
    shown = clean_text(",".join(wanted)) or "*"
    numeric(session, n.RPL_ENDOFNAMES, shown, text="End of /NAMES list")
    session.charge_answer(sent)


def list_(session: IrcSession, msg: IrcMessage) -> None:
    """LIST [<#room>{,<#room>}]: rooms and their sizes.

    Charged by the rooms it may list (chatd.net.bulk), made a slice per reactor
    turn: a LIST of every room of a big server holds nobody else up.
    """
    chat = session.chat
    if msg.params and msg.params[0]:
        keys = [fold(name) for name in split_targets(msg.params[0])]
    else:
        keys = list(chat.room_keys)  # sorted; a copy, as rooms come and go
    session.charge_answer(len(keys))
    end = numeric_line(session, n.RPL_LISTEND, text="End of /LIST")
    every = not (msg.params and msg.params[0])
    session.send_in_slices(_list_lines(session, keys, every), end)


def _list_lines(session: IrcSession, keys: list[str], every: bool) -> Iterator[bytes]:
    """LIST's lines for the rooms of keys (as they are when each line is made)."""
    rooms = session.chat.rooms
    me = session.user
    yield numeric_line(session, n.RPL_LISTSTART, "Channel", text="Users  Name")
    for key in keys:
        room = rooms.get(key)
        if room is None or (every and not room.members):
            continue  # an empty room (#lobby before anyone came) does not exist
        if not session.chat.may_see(me, room):
            continue  # secret (+s): listed to its members only
        yield numeric_line(
            session,
            n.RPL_LIST,
            room.name,
            str(len(room.members)),
            text=room.rules.topic,
        )
    yield numeric_line(session, n.RPL_LISTEND, text="End of /LIST")


def mode(session: IrcSession, msg: IrcMessage) -> None:
    """MODE <target> [changes]: a room's (chatd.irc.room_commands), or one's own."""
    user = session_user(session)
    target = msg.params[0]
    if target.startswith("#"):
        room_commands.channel_mode(session, msg)
        return
    if fold(target) != user.key:
        if fold(target) in session.chat.users:
            raise IrcError(
                n.ERR_USERSDONTMATCH, text="Can't change mode for other users"
            )
        raise IrcError(
            n.ERR_NOSUCHNICK, clean_text(target), text="No such nick/channel"
        )
    if len(msg.params) == 1:
        oper = "o" if session.chat.is_server_operator(user) else ""
        numeric(session, n.RPL_UMODEIS, "+" + ("i" if user.invisible else "") + oper)
        return
    changes, on, applied = msg.params[1], True, ""
    for ch in changes:
        if ch in "+-":
            on = ch == "+"
        elif ch == "i":
            if session.chat.set_invisible(user, on):
                applied += ("+" if on else "-") + "i"
        else:
            numeric(session, n.ERR_UMODEUNKNOWNFLAG, text="Unknown MODE flag")
    if applied:
        session.send(irc_line("MODE", user.nick, text=applied, source=user.nick))


# -- talking ---------------------------------------------------------------------


def _split_ctcp(text: str) -> tuple[str | None, str]:
    """Return (CTCP command, argument) for a CTCP message, or (None, text)."""
    if not text.startswith(CTCP):
        return None, text
    body = text[1:].removesuffix(CTCP)
    command, _, argument = body.partition(" ")
    return command.upper(), argument


def _message(session: IrcSession, msg: IrcMessage, notice: bool) -> None:
    """PRIVMSG and NOTICE: to rooms or people, CTCP ACTION as chatd's action."""
    user = session_user(session)
    command = "NOTICE" if notice else "PRIVMSG"
    if not msg.params or not msg.params[0]:
        if not notice:
            raise IrcError(n.ERR_NORECIPIENT, text=f"No recipient given ({command})")
        return
    if len(msg.params) < 2 or not msg.params[1]:
        if not notice:
            raise IrcError(n.ERR_NOTEXTTOSEND, text="No text to send")
        return
    ctcp, raw = _split_ctcp(msg.params[1])
    if ctcp is not None and ctcp != "ACTION":
        return  # other CTCP requests and replies carry control characters: dropped
    action = ctcp == "ACTION"
    text = clean_text(raw)
    if not text.strip():
        if not notice:
            raise IrcError(n.ERR_NOTEXTTOSEND, text="No text to send")
        return
    chat = session.chat
    source = user_mask(user)
    tags = client_tags(msg.tags)  # a reply's +draft/reply, say: passed on
    for target in split_targets(msg.params[0])[:MAX_TARGETS]:
        if fold(target) == NICKSERV_KEY:
            if not notice:
                account_commands.nickserv(session, msg.params[1])
            continue
        if _relay_size(source, command, target, msg.params[1]) > MAX_LINE:
            # What the others would get must fit IRC's 512 bytes: refused whole.
            if not notice:
                raise IrcError(n.ERR_INPUTTOOLONG, text="Input line was too long")
            return
        try:
            if target.startswith("#"):
                if action:
                    chat.act(user, text, room=target, tags=tags)
                else:
                    chat.say(user, text, room=target, notice=notice, tags=tags)
            elif fold(target) == user.key:
                # To oneself: the delivery, then with echo-message the echo,
                # which answers the command; the delivery does not, and is
                # never labeled (IRCv3 labeled-response).
                delivered = session.unlabeled(
                    partial(
                        chat.tell,
                        user,
                        target,
                        text,
                        notice=notice,
                        action=action,
                        tags=tags,
                    )
                )
                if session.caps.has("echo-message"):
                    session.send(delivered)
                if user.away and not notice:
                    numeric(session, n.RPL_AWAY, user.nick, text=user.away)
            else:
                chat.tell(user, target, text, notice=notice, action=action, tags=tags)
                recipient = chat.users.get(fold(target))
                if recipient is not None and recipient.away and not notice:
                    numeric(session, n.RPL_AWAY, recipient.nick, text=recipient.away)
        except ChatError as error:
            # RFC 2812: a NOTICE never gets an automatic reply.
            if notice:
                continue
            send_error(session, refusal_to_send(error, target))


CANNOT_SEND = frozenset({ErrorCode.NOT_IN_ROOM, ErrorCode.BANNED, ErrorCode.MODERATED})


def refusal_to_send(error: ChatError, target: str) -> IrcError:
    """A message to target refused: 404 where the room will not take it (not
    in it, banned, moderated), else the error's own numeric."""
    if error.code in CANNOT_SEND:
        return IrcError(
            n.ERR_CANNOTSENDTOCHAN, clean_text(target), text="Cannot send to channel"
        )
    return numeric_for(error, target)


def _relay_size(source: str, command: str, target: str, text: str) -> int:
    """The bytes of `:source COMMAND target :text` CRLF, as the others get it."""
    return len(f":{source} {command} {target} :{text}\r\n".encode())


def privmsg(session: IrcSession, msg: IrcMessage) -> None:
    """PRIVMSG <target>{,<target>} :<text>."""
    _message(session, msg, notice=False)


def notice(session: IrcSession, msg: IrcMessage) -> None:
    """NOTICE <target>{,<target>} :<text>."""
    _message(session, msg, notice=True)


def tagmsg(session: IrcSession, msg: IrcMessage) -> None:
    """TAGMSG <target>{,<target>}: client tags alone (typing, a reaction).

    Relayed as the model says (Chat.send_tags: who may speak there, the
    deny list, the rate), to clients with message-tags only. One to oneself
    is delivered, then echoed with echo-message, as PRIVMSG's.
    """
    user = session_user(session)
    tags = client_tags(msg.tags)
    if not tags:
        return  # nothing a client may be sent: no reply, as for an empty NOTICE
    chat = session.chat
    for target in split_targets(msg.params[0])[:MAX_TARGETS]:
        try:
            if fold(target) == user.key:
                delivered = session.unlabeled(
                    partial(chat.send_tags, user, target, tags)
                )
                if session.caps.has("echo-message"):
                    session.send(delivered)
            else:
                chat.send_tags(user, target, tags)
        except ChatError as error:
            if error.code is ErrorCode.FLOOD:
                # IRCv3 standard replies: typing too fast is no numeric's.
                server_line(
                    session, "FAIL", "TAGMSG", "RATE_LIMITED", target, text=error.text
                )
            else:
                send_error(session, refusal_to_send(error, target))


def away(session: IrcSession, msg: IrcMessage) -> None:
    """AWAY [:text]: set or clear the away message."""
    user = session_user(session)
    text = clean_text(msg.params[0]).strip()[:AWAYLEN] if msg.params else ""
    session.chat.set_away(user, text)
    if text:
        numeric(session, n.RPL_NOWAWAY, text="You have been marked as being away")
    else:
        numeric(session, n.RPL_UNAWAY, text="You are no longer marked as being away")


# -- who is there ----------------------------------------------------------------


def _who_line(
    session: IrcSession, channel: str, member: User, room: Room | None = None
) -> None:
    flags = "G" if member.away else "H"
    if session.chat.is_server_operator(member):
        flags += "*"
    if room is not None:
        flags += room_commands.prefixes(room, member, session.caps.has("multi-prefix"))
    numeric(
        session,
        n.RPL_WHOREPLY,
        channel,
        *user_at_host(member),
        session.server.name,
        member.nick,
        flags,
        text=f"0 {member.realname or member.nick}",
    )


def _visible_to(me: User, other: User) -> bool:
    """Whether a WHO by mask shows other to me: +i hides from strangers."""
    if other is me or not is_invisible(other):
        return True
    return any(key in other.rooms for key in me.rooms)


def who(session: IrcSession, msg: IrcMessage) -> None:
    """WHO <mask>: a room's members, or the users whose nick matches mask.

    Charged by the lines answered (chatd.net.bulk).
    """
    chat = session.chat
    target = msg.params[0] if msg.params else "*"
    sent = 0
    if target.startswith("#"):
        room = chat.rooms.get(fold(target))
        if room is not None and chat.may_see(session.user, room):
            for member in sorted(room.members.values(), key=lambda u: u.key):
                _who_line(session, room.name, member, room)
            sent = len(room.members)
    else:
        pattern = _wildcard(target if target not in ("0", "") else "*")
        me = session_user(session)
        # +i hides from masks only: a plain nickname is always answered (Modern).
        exact = "*" not in target and "?" not in target
        for found in sorted(chat.users.values(), key=lambda u: u.key):
            if pattern.match(found.key) and (exact or _visible_to(me, found)):
                _who_line(session, "*", found)
                sent += 1
    numeric(session, n.RPL_ENDOFWHO, clean_text(target) or "*", text="End of WHO list")
    session.charge_answer(sent)


def whois(session: IrcSession, msg: IrcMessage) -> None:
    """WHOIS [<server>] <nick>: who a user is, where, and whether away."""
    chat = session.chat
    wanted = msg.params[-1]
    shown = clean_text(wanted)
    first = split_targets(wanted)[:1]
    found = chat.users.get(fold(first[0])) if first else None
    if found is None:
        numeric(session, n.ERR_NOSUCHNICK, shown, text="No such nick/channel")
        numeric(session, n.RPL_ENDOFWHOIS, shown, text="End of /WHOIS list")
        return
    username, host = user_at_host(found)
    realname = found.realname or found.nick
    numeric(session, n.RPL_WHOISUSER, found.nick, username, host, "*", text=realname)
    multi = session.caps.has("multi-prefix")
    me = session.user
    rooms = [
        room_commands.prefixes(room, found, multi) + room.name
        for room in sorted(found.rooms.values(), key=lambda room: room.key)
        if chat.may_see(me, room)
    ]
    if rooms:
        head = f":{session.server.name} 319 {session.nick} {found.nick} :"
        for chunk in word_lines(head, rooms, LIST_LINE_BUDGET):
            numeric(session, n.RPL_WHOISCHANNELS, found.nick, text=chunk)
    numeric(
        session,
        n.RPL_WHOISSERVER,
        found.nick,
        session.server.name,
        text=f"chatd {session.server.version}",
    )
    if session.chat.is_server_operator(found):
        numeric(session, n.RPL_WHOISOPERATOR, found.nick, text="is an IRC operator")
    if found.account:
        numeric(
            session,
            n.RPL_WHOISACCOUNT,
            found.nick,
            found.account,
            text="is logged in as",
        )
    if found.away:
        numeric(session, n.RPL_AWAY, found.nick, text=found.away)
    numeric(session, n.RPL_ENDOFWHOIS, found.nick, text="End of /WHOIS list")


def whowas(session: IrcSession, msg: IrcMessage) -> None:
    """WHOWAS <nick> [<count>]: who gave up a nickname lately, newest first.

    A count below 1 (or none) asks for every one remembered (RFC 2812 3.6.3).
    """
    wanted = msg.params[0]
    shown = clean_text(wanted)
    first = split_targets(wanted)[:1]
    count = 0
    if len(msg.params) > 1:
        try:
            count = int(msg.params[1])
        except ValueError:
            count = 0
    departures = session.chat.past_nicks.lookup(first[0], count) if first else []
    if not departures:
        numeric(session, n.ERR_WASNOSUCHNICK, shown, text="There was no such nickname")
    for departure in departures:
        username = departure.username or departure.nick
        host = shown_host(departure.host or NO_HOST)
        realname = departure.realname or departure.nick
        numeric(
            session,
            n.RPL_WHOWASUSER,
            departure.nick,
            username,
            host,
            "*",
            text=realname,
        )
        numeric(
            session,
            n.RPL_WHOISSERVER,
            departure.nick,
            session.server.name,
            text=datetime.fromtimestamp(departure.time, UTC).strftime(
                "%a %b %d %H:%M:%S %Y UTC"
            ),
        )
    numeric(session, n.RPL_ENDOFWHOWAS, shown, text="End of WHOWAS")


def ison(session: IrcSession, msg: IrcMessage) -> None:
    """ISON <nick>...: which of them are here."""
    present = []
    for word in " ".join(msg.params).split():
        found = session.chat.users.get(fold(word))
        if found is not None:
            present.append(found.nick)
    numeric(session, n.RPL_ISON, text=" ".join(present))


def userhost(session: IrcSession, msg: IrcMessage) -> None:
    """USERHOST <nick>{ <nick>}: up to five nick=+user@host replies."""
    replies = []
    for word in msg.params[:5]:
        found = session.chat.users.get(fold(word))
        if found is not None:
            here = "-" if found.away else "+"
            username, host = user_at_host(found)
            replies.append(f"{found.nick}={here}{username}@{host}")
    numeric(session, n.RPL_USERHOST, text=" ".join(replies))


# -- the server ------------------------------------------------------------------


def version(session: IrcSession, msg: IrcMessage) -> None:
    """VERSION: the server's version, then the 005 lines."""
    server = session.server
    numeric(
        session,
        n.RPL_VERSION,
        server.version,
        server.name,
        text="chatd: line protocol and IRC in the same rooms",
    )
    send_isupport(session)


def time_(session: IrcSession, msg: IrcMessage) -> None:
    """TIME: the server's clock, as people read it."""
    now = datetime.fromtimestamp(session.server.now(), UTC)
    numeric(
        session,
        n.RPL_TIME,
        session.server.name,
        text=now.strftime("%A %B %d %Y -- %H:%M:%S UTC"),
    )


def info(session: IrcSession, msg: IrcMessage) -> None:
    """INFO: a few words about this server."""
    numeric(
        session, n.RPL_INFO, text=f"{session.server.version}: a chat server on Twisted"
    )
    numeric(session, n.RPL_ENDOFINFO, text="End of /INFO list")


def _server_arg(msg: IrcMessage, session: IrcSession) -> None:
    """Refuse a server argument naming another server (there is only this one)."""
    if msg.params and fold(msg.params[0]) != fold(session.server.name):
        raise IrcError(
            n.ERR_NOSUCHSERVER, clean_text(msg.params[0]), text="No such server"
        )


def _on_this_server(handler: Handler) -> Handler:
    """Wrap a server query so that naming another server gets 402."""

    def checked(session: IrcSession, msg: IrcMessage) -> None:
        _server_arg(msg, session)
        handler(session, msg)

    checked.__doc__ = handler.__doc__
    return checked


# fmt: off
COMMANDS: dict[str, IrcCommand] = {
    "CAP": IrcCommand(cap, 1, before_registration=True),
    "NICK": IrcCommand(nick, 0, before_registration=True),
    "USER": IrcCommand(user_, 0, before_registration=True),
    "PASS": IrcCommand(pass_, 1, before_registration=True),
    "PING": IrcCommand(ping, 0, before_registration=True),
    "PONG": IrcCommand(pong, 0, before_registration=True),
    "QUIT": IrcCommand(quit_, 0, before_registration=True),
    "JOIN": IrcCommand(join, 1),
    "PART": IrcCommand(part, 1),
    "PRIVMSG": IrcCommand(privmsg, 0),
    "NOTICE": IrcCommand(notice, 0),
    "TAGMSG": IrcCommand(tagmsg, 1),
    "NAMES": IrcCommand(names, 0),
    "LIST": IrcCommand(list_, 0),
    "MODE": IrcCommand(mode, 1),
    "AWAY": IrcCommand(away, 0),
    "WHO": IrcCommand(who, 0),
    "WHOIS": IrcCommand(whois, 1),
    "WHOWAS": IrcCommand(whowas, 1),
    "ISON": IrcCommand(ison, 1),
    "USERHOST": IrcCommand(userhost, 1),
    "MOTD": IrcCommand(_on_this_server(motd), 0),
    "LUSERS": IrcCommand(lusers, 0),
    "VERSION": IrcCommand(_on_this_server(version), 0),
    "TIME": IrcCommand(_on_this_server(time_), 0),
    "INFO": IrcCommand(_on_this_server(info), 0),
    "CHATHISTORY": IrcCommand(chathistory, 1),
    "MARKREAD": IrcCommand(markers.markread, 0),
    "SEARCH": IrcCommand(search, 1),  # soju.im/search (chatd.irc.search)
    # Rooms people run and accounts: modules of their own.
    **room_commands.COMMANDS,
    **account_commands.COMMANDS,
    **rehash.COMMANDS,
    **kline_commands.COMMANDS,
    **redaction.COMMANDS,
}
# fmt: on

NICKSERV_KEY = fold(account_commands.NICKSERV)


def run_command(session: IrcSession, msg: IrcMessage) -> None:
    """Look msg up in COMMANDS, check registration and arity, run its handler."""
    command = COMMANDS.get(msg.command)
    if command is None:
        raise IrcError(
            n.ERR_UNKNOWNCOMMAND,
            clean_text(msg.command)[:32] or "*",
            text="Unknown command",
        )
    if session.user is None and not command.before_registration:
        raise IrcError(n.ERR_NOTREGISTERED, text="You have not registered")
    if len(msg.params) < command.min_params:
        raise IrcError(n.ERR_NEEDMOREPARAMS, msg.command, text="Not enough parameters")
    command.handler(session, msg)


def dispatch(session: IrcSession, text: str) -> None:
    """Handle one decoded line: parse, run, and answer refusals with numerics.

    The one place where IrcError and ChatError become numerics; anything else
    is the caller's to log (it is our bug, and the connection carries on).
    A labeled command (IRCv3 labeled-response) runs between the session's
    begin_label and end_label, which frame whatever it sends as its response.
    """
    if not text.strip():
        return  # empty lines are ignored
    try:
        msg = parse_message(text)
    except ParseError:
        return  # nothing that names a command: there is no one to answer
    label = msg.tags.get("label")
    caps = session.caps.enabled
    # IRCv3 labeled-response, which needs batch too: the label is ignored
    # without both caps on.
    if not label or labels.CAP not in caps or "batch" not in caps:
        _run(session, msg)
        return
    why = labels.label_error(label)
    if why is not None:  # over 64 bytes: the command is refused, not run
        command = clean_text(msg.command)[:32] or "*"
        server_line(session, "FAIL", command, "INVALID_LABEL", text=why)
        return
    session.begin_label(label)
    try:
        _run(session, msg)
    finally:
        session.end_label()


def _run(session: IrcSession, msg: IrcMessage) -> None:
    """Run msg; its refusals become numerics."""
    try:
        run_command(session, msg)
    except IrcError as error:
        send_error(session, error)
    except ServerBanned:
        raise  # the connection closes (Connection.handle_line: refuse_banned)
    except ChatError as error:
        send_error(session, numeric_for(error, msg.params[0] if msg.params else "*"))
