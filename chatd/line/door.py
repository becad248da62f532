"""LineDoor: the line protocol's words, for any connection that carries its lines.

HELLO and NICK negotiation, slash commands and plain lines in, ERR, INFO and
BYE out (docs/protocol.md). Two doors carry these lines: the TCP line door
(chatd.protocol.LineConnection, lines with CRLF, telnet taken out) and the
web door (chatd.web.door.WebConnection, one WebSocket text frame a line).
Each is a Connection of its own that composes this part: it hands its
hooks (greet, handle_text, reply_error, ...) to LINE_DOOR, which writes
through the connection's send, so each door's bytes stay its own.

LineDoor keeps no state: one instance serves every connection of both
doors, given the connection on every call.
"""

from __future__ import annotations

from typing import Protocol, cast

from chatd import __version__
from chatd.line.catch_up import send_catch_up
from chatd.line.commands import COMMANDS, backfill, send_away_members
from chatd.line.session import Session
from chatd.line.wire import away_lines, line
from chatd.model import devices
from chatd.model.away import away_members
from chatd.model.chat import IChatClient, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.logins import Login
from chatd.model.names import LOBBY, clean_text, fold
from chatd.model.server_bans import ServerBanned
from chatd.net.phase import Phase
from chatd.store.interface import AccountRecord

NICK_PROMPT = (
    "Choose a nickname: 1-20 letters, digits, _ or -, not starting with a digit or -"
)
# Refusals at the prompt that ask again: of a nickname, or of a login
# (docs/protocol.md, Devices: auth-failed "and the nickname prompt again").
NICK_REFUSALS = frozenset(
    {
        ErrorCode.NICK_TAKEN,
        ErrorCode.NICK_INVALID,
        ErrorCode.AUTH_FAILED,
        ErrorCode.THROTTLED,
        ErrorCode.TOO_MANY_DEVICES,
    }
)


class LineCarrier(Session, Protocol):
    """What the line door's words need of the connection carrying them."""

    phase: Phase
    user: User | None

    def registered(self, user: User) -> None:
        """The client is now user."""

    def welcomed(self) -> None:
        """The welcome has been said: the accounts may speak now."""

    def leave(self, reason: str, logged: str | None = None) -> None:
        """Take the user out of the chat."""

    def close_after_answers(self, reason: str) -> None:
        """Say goodbye after every answer still to come, and close."""


class LineDoor:
    """The line protocol (docs/protocol.md) spoken over one connection at a time."""

    __slots__ = ()

    def greet(self, conn: LineCarrier) -> None:
        """HELLO with the banner, then ask for a nickname."""
        conn.send(line("HELLO", conn.config.name, text=self.banner(conn)))
        conn.send(line("NICK", text=NICK_PROMPT))

    @staticmethod
    def banner(conn: LineCarrier) -> str:
        """The HELLO line's words: the server and how to start."""
        name = conn.config.name
        server = (
            f"chatd {__version__}"
            if name == "chatd"
            else f"{name} (chatd {__version__})"
        )
        return f"Welcome to {server}. Pick a nickname; /help lists the commands."

    @staticmethod
    def goodbye(reason: str) -> bytes:
        """BYE with the reason (docs/protocol.md)."""
        return line("BYE", text=reason)

    @staticmethod
    def flood_notice(conn: LineCarrier) -> bytes:
        """ERR flood: the client's lines now wait, and at what rate."""
        rate = conn.config.flood_rate
        return line(
            "ERR",
            ErrorCode.FLOOD.value,
            text=f"you are sending too fast; your lines wait and are handled "
            f"at {rate:g} per second",
        )

    @staticmethod
    def reply_error(conn: LineCarrier, error: ChatError) -> None:
        """ERR code text; a refused nickname is asked for again."""
        # The text may quote what the client sent: never echo control characters.
        conn.send(line("ERR", error.code.value, text=clean_text(error.text)))
        if conn.phase is Phase.AWAITING_NICK and error.code in NICK_REFUSALS:
            conn.send(line("NICK", text=NICK_PROMPT))

    def report_failure(self, conn: LineCarrier) -> None:
        """INFO: the line failed inside the server (our bug; logged)."""
        conn.send(self.info("Sorry, that command failed inside the server."))

    @staticmethod
    def info(text: str) -> bytes:
        """An INFO line: a human notice."""
        return line("INFO", text=text)

    @staticmethod
    def is_registration_line(raw: bytes) -> bool:
        """A nickname (bare, `NICK alice`, `/nick alice`), `/ids` or `/tags`."""
        lead = raw.strip()
        if not lead.startswith(b"/"):
            return bool(lead)  # an empty line is no attempt
        return lead[1:].split(b" ", 1)[0].lower() in (b"nick", b"ids", b"tags")

    # -- parsing -----------------------------------------------------------------

    def handle_text(self, conn: LineCarrier, text: str) -> None:
        """A command, a nickname, or a message to the current room."""
        # Control characters go first (docs/protocol.md, Limits), so that a stray
        # Ctrl-L or a leading blank cannot turn "/msg bob secret" into a room
        # message (docs/protocol.md, Messages).
        text = clean_text(text)
        lead = text.lstrip()
        if not lead:
            return  # docs/protocol.md: empty lines are ignored
        user = conn.user
        if user is not None and user.devices is not None:
            # One of several connections: its own current room (docs/protocol.md,
            # Devices), brought in for this line and kept after it.
            client = cast(IChatClient, conn)
            devices.take_current(user, client)
            try:
                self.handle_line(conn, text, lead)
            finally:
                devices.keep_current(user, client)
        else:
            self.handle_line(conn, text, lead)

    def handle_line(self, conn: LineCarrier, text: str, lead: str) -> None:
        """A cleaned, non-empty line: a command, a nickname or a message."""
        if lead.startswith("/") and not lead.startswith("//"):
            self.run_command(conn, lead[1:])
        elif conn.phase is Phase.AWAITING_NICK:
            nick = self.nick_from(text)
            try:
                conn.register(nick)
            except ChatError as error:
                holder = conn.chat.users.get(fold(nick))
                if error.code is ErrorCode.NICK_TAKEN and holder and holder.account:
                    # Held by an account (another device, or always-on): say
                    # how its owner logs in here too (docs/protocol.md, Devices).
                    raise ChatError(
                        error.code,
                        f"{error.text}; if it is yours, log in as one more "
                        f"device: /identify {holder.nick} <password>",
                    ) from None
                raise
        else:
            said = lead[1:] if lead.startswith("//") else text
            conn.chat.say(conn.registered_user(), said)

    @staticmethod
    def nick_from(text: str) -> str:
        """Take the nickname from a bare `alice` or a `NICK alice` line."""
        word, _, rest = text.strip().partition(" ")
        if word.upper() == "NICK" and rest.strip():
            return rest.strip()
        return text.strip()

    @staticmethod
    def run_command(conn: LineCarrier, text: str) -> None:
        """Run a slash command (text without its /) from the table."""
        name, _, rest = text.partition(" ")
        command = COMMANDS.get(name.lower())
        if command is None:
            raise ChatError(
                ErrorCode.UNKNOWN_COMMAND, f"/{name} is not a command; try /help"
            )
        if conn.phase is Phase.AWAITING_NICK and not command.before_nick:
            raise ChatError(
                ErrorCode.NOT_REGISTERED, "choose a nickname first (send just the name)"
            )
        command.handler(conn, command.split(rest))

    def register(self, conn: LineCarrier, nick: str, account: str = "") -> None:
        """Take nick: WELCOME, the message of the day, then #lobby.

        account: the account the connection logged in to at the prompt.
        """
        # The peer's address is the user's host, as on every door: a ban by
        # address (nick!user@host) catches the person whatever door they use.
        # The connection is the user's client (a Connection: IChatClient).
        user = conn.chat.register(
            nick, cast(IChatClient, conn), host=conn.host, account=account
        )
        conn.registered(user)
        config = conn.config
        conn.send(
            line(
                "WELCOME",
                user.nick,
                text=f"Welcome to {config.name}, {user.nick}! Type /help for commands.",
            )
        )
        for motd_line in conn.chat.motd:  # as reloaded last (chatd.ops.reload)
            conn.send(self.info(motd_line))
        conn.welcomed()
        room, _ = conn.chat.join(user, LOBBY)
        send_away_members(conn, room, user)
        backfill(conn, room)  # docs/protocol.md, History: #lobby's too, at registration

    def log_in(self, conn: LineCarrier, login: Login) -> None:
        """A right /identify <nick> <password> at the prompt (chatd.model.logins).

        docs/protocol.md, Devices: a free nickname is taken as choosing it
        would be; a user of the same account is attached to: WELCOME, then
        to this connection only a JOIN for each of its rooms (#lobby first,
        then in the order joined). Either way the catch-up follows
        (after_login).
        """
        name = login.record.name
        user = login.holder
        if user is None:
            self.register(conn, name, account=name)
            conn.send(self.info(f"You are identified as {name}."))
            user = conn.registered_user()
        else:
            conn.registered(user)
            connections = devices.count(user) + 1
            how_many = (
                f"this connection is one of {connections} of your account."
                if connections > 1
                else "yours was kept while no device was connected (always-on)."
            )
            conn.send(
                line(
                    "WELCOME",
                    user.nick,
                    text=f"Welcome back to {conn.config.name}, {user.nick}: {how_many}",
                )
            )
            rooms = devices.rooms_in_order(user)
            for room in rooms:
                conn.send(line("JOIN", room.name, user.nick))
            # Who is away already in those rooms (docs/protocol.md, Away on join).
            away_here = away_members(rooms, user)
            if away_here:
                conn.send(away_lines(away_here))
            away = user.away
            # Attached after its burst: what the user is sent from now on
            # (an always-on user's AWAY, back) follows it.
            conn.chat.attach(user, cast(IChatClient, conn))
            if away and user.away == away:  # away on the other devices: say so
                conn.send(line("AWAY", user.nick, text=away))
        after_login(conn, login.record)

    @staticmethod
    def quit_chat(conn: LineCarrier, reason: str) -> None:
        """Leave at the client's request: QUIT to the others, BYE, close."""
        nick = conn.user.nick if conn.user is not None else None
        conn.leave(reason or "quit", logged="/quit")
        # What the client asked before /quit is answered before BYE.
        conn.close_after_answers(f"Goodbye, {nick}." if nick else "Goodbye.")

    @staticmethod
    def refusal(reason: str) -> bytes:
        """What a connection the server cannot take is told before it is closed."""
        return line("ERR", ErrorCode.SERVER_FULL.value, text=reason) + line(
            "BYE", text="Please try again later."
        )

    @staticmethod
    def ban_refusal(banned: ServerBanned, server: str) -> bytes:
        """ERR banned with the reason, then BYE: a server ban refuses the
        connection (docs/protocol.md, Server bans)."""
        return line("ERR", banned.code.value, text=clean_text(banned.text)) + line(
            "BYE", text=banned.goodbye
        )


LINE_DOOR = LineDoor()


def after_login(conn: LineCarrier, record: AccountRecord) -> None:
    """The catch-up after a login at the prompt, fresh or attached
    (docs/protocol.md, Devices: READ lines, then what each room and
    conversation said since its marker), after the lines just sent."""
    send_catch_up(conn, record)


class SpeaksLine:
    """The line protocol's words as a connection's hooks: each hands it to LINE_DOOR.

    Both doors that carry the line protocol (chatd.protocol.LineConnection and
    chatd.web.door.WebConnection) list it before Connection in their bases;
    it keeps no state, and neither door is made from the other.
    """

    __slots__ = ()
    refusal = staticmethod(LINE_DOOR.refusal)
    ban_refusal = staticmethod(LINE_DOOR.ban_refusal)

    def handle_text(self: LineCarrier, text: str) -> None:
        """A command, a nickname, or a message to the current room."""
        LINE_DOOR.handle_text(self, text)

    def reply_error(self: LineCarrier, error: ChatError) -> None:
        """ERR code text; a refused nickname is asked for again."""
        LINE_DOOR.reply_error(self, error)

    def report_failure(self: LineCarrier) -> None:
        """Tell the client something failed on the server's side."""
        LINE_DOOR.report_failure(self)

    def goodbye(self, reason: str) -> bytes:
        """BYE with the reason (docs/protocol.md)."""
        return LINE_DOOR.goodbye(reason)

    def flood_notice(self: LineCarrier) -> bytes:
        """What a client is told when its input is throttled."""
        return LINE_DOOR.flood_notice(self)

    def is_registration_line(self, raw: bytes) -> bool:
        """A nickname (bare, `NICK alice`, `/nick alice`) or `/ids`, before one."""
        return LINE_DOOR.is_registration_line(raw)

    def register(self: LineCarrier, nick: str) -> None:
        """Take nick: WELCOME, the message of the day, then #lobby."""
        LINE_DOOR.register(self, nick)

    def log_in(self: LineCarrier, login: Login) -> None:
        """Take the nickname the prompt's /identify gave, or attach."""
        LINE_DOOR.log_in(self, login)

    def quit_chat(self: LineCarrier, reason: str) -> None:
        """Leave at the client's request: QUIT to the others, BYE, close."""
        LINE_DOOR.quit_chat(self, reason)

    def send_info(self: LineCarrier, text: str) -> None:
        """Send a human notice."""
        self.send(LINE_DOOR.info(text))
