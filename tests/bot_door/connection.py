"""BotConnection: a trivial line format for bots, on the shared connection layer.

NICK <name> registers (and joins #lobby, as the line door does); SAY <text>
says it in the current room; the bot hears HEARD <room> <nick> <text>
and NOTICE <text>.
Refusals are ERROR <code> <text>.
"""

from __future__ import annotations

from functools import lru_cache

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import Event, Message, Notice
from chatd.model.names import LOBBY, clean_text
from chatd.net.connection import Connection


@lru_cache(maxsize=256)
def render(event: Event) -> bytes:
    """A room message as HEARD, a notice as NOTICE; nothing for the rest."""
    if isinstance(event, Message):
        return f"HEARD {event.room} {event.nick} {event.text}\r\n".encode()
    if isinstance(event, Notice):
        return f"NOTICE {event.text}\r\n".encode()
    return b""


class BotConnection(Connection):
    """One bot's connection: translation only, the rest is Connection's."""

    door = "bot"
    identify_hint = "IDENTIFY <password>"
    render = staticmethod(render)

    def greet(self) -> None:
        self.send(b"READY\r\n")

    def handle_text(self, text: str) -> None:
        verb, _, rest = clean_text(text).strip().partition(" ")
        if verb == "NICK" and self.awaiting_nick:
            user = self.chat.register(rest, self, host=self.host)
            self.registered(user)
            self.send(f"WELCOME {user.nick}\r\n".encode())
            self.welcomed()
            self.chat.join(user, LOBBY)
        elif verb == "SAY" and not self.awaiting_nick:
            self.chat.say(self.registered_user(), rest)
        else:
            raise ChatError(ErrorCode.UNKNOWN_COMMAND, f"{verb} is not a bot command")

    def reply_error(self, error: ChatError) -> None:
        self.send(f"ERROR {error.code.value} {clean_text(error.text)}\r\n".encode())

    def goodbye(self, reason: str) -> bytes:
        return f"BYE {reason}\r\n".encode()

    def flood_notice(self) -> bytes:
        return b"ERROR flood slow down\r\n"

    @staticmethod
    def refusal(reason: str) -> bytes:
        return f"ERROR server-full {reason}\r\n".encode()
