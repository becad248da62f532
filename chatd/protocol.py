"""The line door: chatd's own protocol (PROTOCOL.md) for telnet, nc and chatd-tk.

It only translates: HELLO and NICK negotiation, slash commands and plain
lines in, events as lines out. Framing, limits, output and closing are the
shared Connection's (chatd.net.connection).
"""

from __future__ import annotations

from twisted.conch.telnet import AYT, IP

from chatd import __version__
from chatd.line.commands import COMMANDS, backfill
from chatd.line.telnet import TelnetFilter
from chatd.line.wire import line, render, render_ids
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import LOBBY, clean_text
from chatd.net.connection import Connection, ConnectionHub, Phase

NICK_PROMPT = (
    "Choose a nickname: 1-20 letters, digits, _ or -, not starting with a digit or -"
)
NICK_REFUSALS = frozenset({ErrorCode.NICK_TAKEN, ErrorCode.NICK_INVALID})
_IP, _AYT = ord(IP), ord(AYT)


class ChatProtocol(Connection):
    """The chatd line protocol (PROTOCOL.md) for one connection."""

    door = "line"
    identify_hint = "/identify <password>"
    __slots__ = ("telnet",)
    render = staticmethod(render)  # one encoding per broadcast (wire.render)
    # After /ids on: the same, a room message led by its ID line (wire.render_ids).
    render_with_ids = staticmethod(render_ids)

    def __init__(self, hub: ConnectionHub) -> None:
        super().__init__(hub)
        self.telnet: TelnetFilter | None = None  # made once a telnet command comes

    # -- the door's words --------------------------------------------------------

    def greet(self) -> None:
        """HELLO with the banner, then ask for a nickname."""
        self.send(line("HELLO", self.config.name, text=self._banner()))
        self.send(line("NICK", text=NICK_PROMPT))

    def _banner(self) -> str:
        name = self.config.name
        server = (
            f"chatd {__version__}"
            if name == "chatd"
            else f"{name} (chatd {__version__})"
        )
        return f"Welcome to {server}. Pick a nickname; /help lists the commands."

    def goodbye(self, reason: str) -> bytes:
        """BYE with the reason (PROTOCOL.md)."""
        return line("BYE", text=reason)

    def flood_notice(self) -> bytes:
        rate = self.config.flood_rate
        return line(
            "ERR",
            ErrorCode.FLOOD.value,
            text=f"you are sending too fast; your lines wait and are handled "
            f"at {rate:g} per second",
        )

    def reply_error(self, error: ChatError) -> None:
        """ERR code text; a refused nickname is asked for again."""
        # The text may quote what the client sent: never echo control characters.
        self.send(line("ERR", error.code.value, text=clean_text(error.text)))
        if self.phase is Phase.AWAITING_NICK and error.code in NICK_REFUSALS:
            self.send(line("NICK", text=NICK_PROMPT))

    def report_failure(self) -> None:
        self.send_info("Sorry, that command failed inside the server.")

    def send_info(self, text: str) -> None:
        """Send a human notice."""
        self.send(line("INFO", text=text))

    def show_ids(self, on: bool) -> None:
        """Render room messages with their ID line (/ids on), or without."""
        door = type(self)
        if on:  # members with /ids on share a journal: their room messages differ
            self.use_renderer(door.render_with_ids, self.door + "+ids")
        else:
            self.use_renderer(door.render)

    def is_registration_line(self, raw: bytes) -> bool:
        """A nickname (bare, `NICK alice`, `/nick alice`) or `/ids`, before one."""
        lead = raw.strip()
        if not lead.startswith(b"/"):
            return bool(lead)  # an empty line is no attempt
        return lead[1:].split(b" ", 1)[0].lower() in (b"nick", b"ids")

    # -- telnet ------------------------------------------------------------------

    def filter_input(self, data: bytes) -> bytes:
        """Take telnet commands out of data, refusing options, noting Ctrl-C.

        Each telnet sequence costs a token, as a line does. Option requests
        are refused once per option and packet (telnet stops showing output
        until it hears back); Ctrl-C and are-you-there get an INFO once per
        packet, and none while the client's input waits.
        """
        if self.telnet is None:
            if b"\xff" not in data:
                return data  # the common case: no telnet at all
            self.telnet = TelnetFilter()
        data, reply = self.telnet.feed(data)
        if reply:
            self.send(reply)  # telnet discards our output until it hears back
        commands = self.telnet.take_commands()
        gate = self.gate
        if gate is None or gate.held is None:  # a throttled client waits for these
            if _IP in commands:
                self.send_info("Ctrl-C does not leave the chat; type /quit to leave.")
            if _AYT in commands:
                self.send_info(f"Yes, {self.config.name} is here.")
        if gate is not None and self.telnet.sequences:
            gate.charge(self.telnet.sequences)
        return data

    # -- parsing -----------------------------------------------------------------

    def handle_text(self, text: str) -> None:
        """A command, a nickname, or a message to the current room."""
        # Control characters go first (PROTOCOL.md, Limits), so that a stray
        # Ctrl-L or a leading blank cannot turn "/msg bob secret" into a room
        # message (docs/protocol.md, Messages).
        text = clean_text(text)
        lead = text.lstrip()
        if not lead:
            return  # PROTOCOL.md: empty lines are ignored
        if lead.startswith("/") and not lead.startswith("//"):
            self._run_command(lead[1:])
        elif self.phase is Phase.AWAITING_NICK:
            self.register(self._nick_from(text))
        else:
            self._say(lead[1:] if lead.startswith("//") else text)

    @staticmethod
    def _nick_from(text: str) -> str:
        """Take the nickname from a bare `alice` or a `NICK alice` line."""
        word, _, rest = text.strip().partition(" ")
        if word.upper() == "NICK" and rest.strip():
            return rest.strip()
        return text.strip()

    def _run_command(self, text: str) -> None:
        name, _, rest = text.partition(" ")
        command = COMMANDS.get(name.lower())
        if command is None:
            raise ChatError(
                ErrorCode.UNKNOWN_COMMAND, f"/{name} is not a command; try /help"
            )
        if self.phase is Phase.AWAITING_NICK and not command.before_nick:
            raise ChatError(
                ErrorCode.NOT_REGISTERED, "choose a nickname first (send just the name)"
            )
        command.handler(self, command.split(rest))

    def register(self, nick: str) -> None:
        """Take nick: WELCOME, the message of the day, then #lobby."""
        # The peer's address is the user's host, as on every door: a ban by
        # address (nick!user@host) catches the person whatever door they use.
        user = self.chat.register(nick, self, host=self.host)
        self.registered(user)
        self.send(
            line(
                "WELCOME",
                user.nick,
                text=f"Welcome to {self.config.name}, {user.nick}! "
                "Type /help for commands.",
            )
        )
        for motd_line in self.config.motd:
            self.send_info(motd_line)
        self.welcomed()
        room, _ = self.chat.join(user, LOBBY)
        backfill(self, room)  # PROTOCOL.md, History: #lobby's too, at registration

    def _say(self, text: str) -> None:
        self.chat.say(self.registered_user(), text)

    def quit_chat(self, reason: str) -> None:
        """Leave at the client's request: QUIT to the others, BYE, close."""
        nick = self.user.nick if self.user is not None else None
        self.leave(reason or "quit", logged="/quit")
        # What the client asked before /quit is answered before BYE.
        self.close_after_answers(f"Goodbye, {nick}." if nick else "Goodbye.")

    @staticmethod
    def refusal(reason: str) -> bytes:
        """What a connection the server cannot take is told before it is closed."""
        return line("ERR", ErrorCode.SERVER_FULL.value, text=reason) + line(
            "BYE", text="Please try again later."
        )
