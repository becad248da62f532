"""The desktop client's typing, reactions and replies, as text (/tags on).

docs/protocol.md, Typing, reactions and replies: after /tags on the server
sends TYPING <target> <nick> <state>, REACT <target> <nick> <id> <reaction>
and, right before a message that answers another, REPLY <target> <id>.
TagKeeper keeps who is typing in each conversation (shown under the
messages: "alice is typing…"), notes a reaction as a quiet line naming the
message, and puts a quiet "↪ in reply to" line before a reply. No tkinter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatd.client.conversation import Conversation, EntryKind
from chatd.model.names import fold

# How long a notice stands without news (IRCv3 typing: active 6 s, paused 30 s).
TYPING_SHOWN = {"active": 6.0, "paused": 30.0}
QUOTE = 60  # characters of a message quoted by a reaction or a reply
TAG_VERBS = frozenset({"TYPING", "REACT", "REPLY"})


class TagHost(TypingProtocol):
    """What TagKeeper needs of the client's state (chatd.client.conversations)."""

    clock: IReactorTime
    conversations: dict[str, Conversation]

    def is_me(self, nick: str) -> bool:
        """Whether nick is this user's."""

    def room(self, name: str) -> Conversation:
        """The room's conversation, opened if need be."""

    def private(self, nick: str) -> Conversation:
        """The conversation with nick, opened if need be."""

    def note(
        self,
        conversation: Conversation,
        kind: EntryKind,
        text: str,
        nick: str | None = None,
        msg_id: int | None = None,
        when: float | None = None,
    ) -> None:
        """Add an entry to conversation."""


class TagKeeper:
    """Who is typing where, and the reply a message that follows answers."""

    def __init__(self, state: TagHost, changed: Callable[[Conversation], None]) -> None:
        self.state = state
        self.changed = changed  # the view's changed(): redraws the typing line
        # conversation key -> folded nick -> (nick, when the notice lapses)
        self.typing: dict[str, dict[str, tuple[str, IDelayedCall]]] = {}
        self._reply: tuple[str, str] | None = None  # (target, id) of a REPLY line
        self.sent = False  # /tags on was sent on this connection
        self.pending = False  # and its answer, not shown, has yet to come

    def connected(self) -> None:
        """A new connection: nobody is typing, nothing is pending."""
        for lapses in self.typing.values():
            for _, call in lapses.values():
                if call.active():
                    call.cancel()
        self.typing.clear()
        self._reply = None
        self.sent = self.pending = False

    def answers(self, code: str, text: str) -> bool:
        """Whether an INFO or ERR is the answer to our own /tags on: not shown."""
        if not self.pending:
            return False
        if code == "INFO" and text.startswith("Typing, reactions and replies are"):
            self.pending = False
            return True
        if code == "unknown-command" and "/tags" in text:
            self.pending = False
            return True
        return False

    # -- lines ------------------------------------------------------------------------

    def on_line(self, verb: str, words: tuple[str, ...], text: str) -> None:
        """TYPING, REACT or REPLY."""
        match verb:
            case "TYPING":
                self._on_typing(*words)
            case "REACT":
                self._on_react(words[0], words[1], words[2], text)
            case "REPLY":
                self._reply = (fold(words[0]), words[1])

    def _where(self, target: str, nick: str) -> Conversation:
        """A room, or for a private one the other person's conversation."""
        if target.startswith("#"):
            return self.state.room(target)
        return self.state.private(target if self.state.is_me(nick) else nick)

    def _on_typing(self, target: str, nick: str, typing: str) -> None:
        if self.state.is_me(nick):
            return  # our own, echoed
        conversation = self._where(target, nick)
        self.stopped(conversation, nick)
        lapse = TYPING_SHOWN.get(typing)
        if lapse is not None:
            call = self.state.clock.callLater(lapse, self.stopped, conversation, nick)
            self.typing.setdefault(conversation.key, {})[fold(nick)] = (nick, call)
        self.changed(conversation)

    def stopped(self, conversation: Conversation, nick: str) -> None:
        """nick stopped typing in conversation: said something, or it lapsed."""
        lapses = self.typing.get(conversation.key)
        found = lapses.pop(fold(nick), None) if lapses else None
        if found is None:
            return
        if found[1].active():
            found[1].cancel()
        self.changed(conversation)

    def typing_text(self, conversation: Conversation) -> str:
        """ "alice is typing…" for conversation, or ""."""
        nicks = [nick for nick, _ in self.typing.get(conversation.key, {}).values()]
        if not nicks:
            return ""
        if len(nicks) == 1:
            return f"{nicks[0]} is typing…"
        if len(nicks) <= 3:
            return f"{', '.join(nicks[:-1])} and {nicks[-1]} are typing…"
        return "Several people are typing…"

    def _on_react(self, target: str, nick: str, msg_id: str, reaction: str) -> None:
        conversation = self._where(target, nick)
        self.state.note(
            conversation,
            EntryKind.NOTICE,
            f"{nick} reacted {reaction} to {_quoted(conversation, msg_id)}",
        )

    def before_message(self, target: str, conversation: Conversation) -> None:
        """A message to target is being shown: its "in reply to" line first."""
        reply, self._reply = self._reply, None
        if reply is not None and reply[0] == fold(target):
            self.state.note(
                conversation,
                EntryKind.NOTICE,
                f"↪ in reply to {_quoted(conversation, reply[1])}",
            )


def _quoted(conversation: Conversation, msg_id: str) -> str:
    """How a message is named: its sender and words, if in the scrollback."""
    if msg_id.isascii() and msg_id.lstrip("-").isdecimal():
        wanted = int(msg_id)
        for entry in reversed(conversation.scrollback):
            if entry.id == wanted and entry.nick:
                words = entry.text if len(entry.text) <= QUOTE else entry.text[:QUOTE]
                return f"{entry.nick}: {words}"
    return "a message"
