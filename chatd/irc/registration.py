"""Registering an IRC client: the moment NICK and USER are in, and the welcome.

The welcome is what a client waits for after registering: 001-005, LUSERS
and the MOTD (which are commands of their own too, in chatd.irc.commands's
table). SASL (chatd.irc.account_commands) ends here as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from chatd.irc import markers, missed, room_commands
from chatd.irc import numerics as n
from chatd.irc.message import IrcMessage, irc_line
from chatd.irc.names_list import names_reply
from chatd.irc.render import mask
from chatd.irc.session import IrcSession, is_invisible, numeric, numeric_for
from chatd.model import devices
from chatd.model.chat import IChatClient, Joined, User
from chatd.model.errors import ChatError
from chatd.model.logins import attachable
from chatd.model.names import LOBBY, clean_text
from chatd.model.server_bans import ServerBanned

# What a client sends to register (chatd.net.limits.REGISTRATION_LINES).
REGISTRATION_COMMANDS = frozenset({b"CAP", b"NICK", b"USER", b"PASS", b"AUTHENTICATE"})


def is_registration_line(raw: bytes) -> bool:
    """Tell whether raw is a registration command (tags and a source skipped)."""
    words = raw.split(None, 3)
    while words and words[0][:1] in (b"@", b":"):
        words.pop(0)
    return bool(words) and words[0].upper() in REGISTRATION_COMMANDS


def try_register(session: IrcSession) -> None:
    """Register once NICK and USER are in and no CAP negotiation is open."""
    reg = session.registration
    if session.user is not None or session.caps.negotiating or reg.checking:
        return
    if reg.nick is None or reg.username is None:
        return
    if reg.account:  # SASL: a user of the account may be here already
        try:
            holder = attachable(
                session.chat.users,
                reg.account,
                session.server.config.max_devices,
                reg.nick,
            )
        except ChatError as error:  # past --max-devices: a user of its own
            holder = None
            session.send(irc_line("NOTICE", reg.nick, text=clean_text(error.text)))
        if holder is not None:
            attach(session, holder)
            return
    try:
        user = session.register_user(reg.nick, reg.username, reg.realname)
    except ServerBanned:
        raise  # the connection closes (IrcSession.refuse_banned)
    except ChatError as error:
        # The nickname went to someone else between NICK and USER.
        wanted, reg.nick = reg.nick, None
        raise numeric_for(error, wanted) from None
    welcome(session, user)
    missed.replay_on_login(session)  # logged in with SASL: what it missed


def attach(session: IrcSession, user: User) -> None:
    """SASL to an account whose user is here: this connection is one more of it.

    docs/irc.md, Several devices: the welcome with the user's nickname (not
    the one NICK asked for), then a JOIN for each of its rooms with its topic
    and NAMES, as if it had joined them; nobody else sees anything.
    """
    session.attach_user(user)
    welcome(session, user)
    join_burst(session, user)
    away = user.away
    # Attached after its burst: what the user is sent from now on follows it.
    session.chat.attach(user, cast(IChatClient, session))
    if away and user.away == away:  # away on the other devices: the client's bar
        numeric(session, n.RPL_NOWAWAY, text="You have been marked as being away")
    missed.replay_on_login(session)  # what it missed, as after IDENTIFY


def join_burst(session: IrcSession, user: User) -> None:
    """The JOIN burst of an attach (SASL here, NickServ IDENTIFY in
    chatd.irc.reattach): for each of user's rooms, #lobby first, JOIN, the
    topic and NAMES, as if this connection had joined them.

    What each room said comes after the burst, in the replay of what was
    missed (chatd.irc.missed): after the account's marker, or the
    latest as a JOIN's backfill where it has none; none unasked to a client
    that asks with CHATHISTORY.
    """
    for room in devices.rooms_in_order(user):
        session.deliver(Joined(room.name, user.nick))
        if room.rules.topic:
            room_commands.topic_reply(session, room)
        names_reply(session, room)


def welcome(session: IrcSession, user: User) -> None:
    """001-005, LUSERS and the MOTD: what a client waits for after registering."""
    server = session.server
    name = server.name
    numeric(
        session,
        n.RPL_WELCOME,
        text=f"Welcome to the {name} IRC network, {mask(session.chat, user.nick)}",
    )
    numeric(
        session,
        n.RPL_YOURHOST,
        text=f"Your host is {name}, running version {server.version}",
    )
    created = datetime.fromtimestamp(server.created, UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )
    numeric(session, n.RPL_CREATED, text=f"This server was created {created}")
    numeric(session, n.RPL_MYINFO, name, server.version, "io", "biklmnostv", "bklov")
    send_isupport(session)
    lusers(session, IrcMessage("LUSERS"))
    motd(session, IrcMessage("MOTD"))
    session.welcomed()  # a registered nickname's notice comes after the welcome
    markers.on_welcome(session)  # draft/read-marker: the account's, after SASL


def send_isupport(session: IrcSession) -> None:
    """The 005 lines."""
    for tokens in session.server.isupport:
        numeric(session, n.RPL_ISUPPORT, *tokens, text="are supported by this server")


def _motd_lines(session: IrcSession) -> list[str]:
    """The --motd lines, then where people are: IRC users join no room by themselves."""
    chat = session.chat
    # A secret room of others is none (chatd.model.permissions).
    busiest = sorted(
        chat.visible_rooms(session.user),
        key=lambda room: (-len(room.members), room.key),
    )
    shown = ", ".join(f"{room.name} ({len(room.members)})" for room in busiest[:5])
    user = session.user
    where = (
        []  # in rooms already (an attached device, MOTD asked later)
        if user is not None and user.rooms
        else [f"You are in no room yet. Most people are in {LOBBY}: /join {LOBBY}"]
    )
    return [
        *chat.motd,  # as reloaded last (chatd.ops.reload)
        *where,
        f"Rooms: {shown}" if shown else f"No rooms yet: /join {LOBBY}",
    ]


def motd(session: IrcSession, msg: IrcMessage) -> None:
    """MOTD: the message of the day, ending with where people are."""
    name = session.server.name
    numeric(session, n.RPL_MOTDSTART, text=f"- {name} Message of the day -")
    for line in _motd_lines(session):
        numeric(session, n.RPL_MOTD, text=f"- {line}")
    numeric(session, n.RPL_ENDOFMOTD, text="End of /MOTD command.")


def lusers(session: IrcSession, msg: IrcMessage) -> None:
    """LUSERS: how many users, unregistered connections and rooms."""
    chat = session.chat
    users = len(chat.users)
    most = max(users, chat.most_users)
    hidden = sum(1 for user in chat.users.values() if is_invisible(user))
    numeric(
        session,
        n.RPL_LUSERCLIENT,
        text=f"There are {users - hidden} users and {hidden} invisible on 1 servers",
    )
    opers = sum(1 for user in chat.users.values() if chat.is_server_operator(user))
    numeric(session, n.RPL_LUSEROP, str(opers), text="operator(s) online")
    numeric(
        session,
        n.RPL_LUSERUNKNOWN,
        str(session.unregistered_count()),
        text="unknown connection(s)",
    )
    numeric(session, n.RPL_LUSERCHANNELS, str(len(chat.rooms)), text="channels formed")
    numeric(session, n.RPL_LUSERME, text=f"I have {users} clients and 0 servers")
    numeric(
        session,
        n.RPL_LOCALUSERS,
        str(users),
        str(most),
        text=f"Current local users {users}, max {most}",
    )
    numeric(
        session,
        n.RPL_GLOBALUSERS,
        str(users),
        str(most),
        text=f"Current global users {users}, max {most}",
    )
