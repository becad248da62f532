"""The client's state: conversations, their members and scrollback.

ChatState applies the chat lines of docs/protocol.md (MSG, ACTION, PRIV, JOIN,
PART, QUIT, RENAME, USERS, ROOMS, INFO, ERR, and version 2's HISTORY and
ENDHISTORY with chatd's ID) to the conversations one user sees and tells a
ClientView what changed; what history adds is chatd/client/scrollback.py's. The
connection itself (HELLO, NICK, WELCOME, BYE, reconnecting) is
chatd/client/client.py's job. No tkinter here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IReactorTime

from chatd.client.conversation import (
    Conversation,
    ConversationKind,
    EntryKind,
    ScrollbackEntry,
)
from chatd.client.read_markers import ReadMarkers
from chatd.client.scrollback import HistoryKeeper
from chatd.client.tags import TAG_VERBS, TagKeeper
from chatd.line.wire import ServerLine
from chatd.model.names import LOBBY, fold, valid_nick, valid_room

__all__ = [
    "ScrollbackEntry",
    "EntryKind",
]  # kept here too: where the view looks for them

MAX_PRIVATE = 50  # private conversations that others' messages may open
SERVER_KEY = ""  # the server's own conversation; no nickname or room folds to ""
OTHERS_KEY = "*"  # private messages past MAX_PRIVATE; no nickname or room is "*"
LOBBY_KEY = fold(LOBBY)
MAX_COUNT_DIGITS = 9  # a room's size in ROOMS; longer numbers are not believed


@dataclass(frozen=True, slots=True)
class WhoRequest:
    """A /who sent and not yet answered."""

    shown: bool  # the user asked: show the answer, not only the member list
    after: int  # how many server lines had arrived when it was sent


class ClientView(TypingProtocol):
    """What the client tells the screen (chatd/tk_client.py, or a test).

    Each change is told as it happens, one row at a time, so that a screen
    can follow a room of thousands without redrawing it per JOIN; only
    selected() asks for the conversation on screen to be drawn whole.
    """

    def status(self, text: str) -> None:
        """Show text in the status line."""

    def entry_added(self, conversation: Conversation, entry: ScrollbackEntry) -> None:
        """Draw entry if conversation is the one on screen."""

    def entries_inserted(
        self, conversation: Conversation, at: int, entries: list[ScrollbackEntry]
    ) -> None:
        """entries now stand at index at of the scrollback (history, by id)."""

    def opened(self, conversation: Conversation) -> None:
        """A conversation was opened: it comes last in the list."""

    def closed(self, conversation: Conversation) -> None:
        """A conversation was closed (selected() follows if it was on screen)."""

    def changed(self, conversation: Conversation) -> None:
        """A conversation's name, unread count or joined state changed."""

    def selected(self, conversation: Conversation) -> None:
        """Show conversation: draw its messages and members whole."""

    def member_added(self, conversation: Conversation, nick: str) -> None:
        """nick joined conversation (or is listed again with another spelling)."""

    def member_removed(self, conversation: Conversation, nick: str) -> None:
        """nick left conversation."""

    def members_reset(self, conversation: Conversation) -> None:
        """conversation's members were replaced as a whole (or cleared)."""

    def ask_nick(self, reason: str) -> None:
        """The nickname was refused (reason is the server's): ask for another."""

    def connect_failed(self, reason: str) -> None:
        """The first connection failed: show reason and let the user try again."""

    def registered(self, nick: str) -> None:
        """The server accepted nick: show the conversations, focus the input."""

    def finished(self) -> None:
        """The user left (/quit or closing the window); nothing more will happen."""


class ChatState:
    """The conversations of one user, kept up to date from the server's lines."""

    def __init__(
        self, view: ClientView, clock: IReactorTime, send: Callable[[str], None]
    ) -> None:
        self.view = view
        self.clock = clock
        self.send = send  # writes one line to the server, if connected
        self.nick = ""
        server = Conversation(SERVER_KEY, "server", ConversationKind.SERVER)
        self.conversations: dict[str, Conversation] = {SERVER_KEY: server}
        self.current = SERVER_KEY  # the key of the conversation on screen
        self._privates = 0  # how many conversations are PRIVATE
        self.room_sizes: dict[str, int] = {}  # the last ROOMS answer
        self.away: dict[str, str] = {}  # folded nick -> away text (AWAY lines)
        self._previous: ServerLine | None = None  # to join USERS/ROOMS lines
        self._lines = 0  # server lines applied on this connection
        self._who_asked: dict[str, deque[WhoRequest]] = {}  # per room key
        self._users_shown = False  # the USERS answer being read is shown
        self.asked_joins: set[str] = set()  # rooms the user typed /join for
        self.server_room = LOBBY_KEY  # the server's idea of our current room
        self._switching: deque[str] = deque()  # /join sent to move the server
        self.history = HistoryKeeper(self)
        self.markers = ReadMarkers(self)
        self.tags = TagKeeper(self, view.changed)  # typing, reactions, replies
        self._kicks: set[tuple[str, str]] = set()  # (room, nick) whose PART is due

    # -- the connection's turns -------------------------------------------------------

    def connected(self) -> None:
        """Forget what belonged to the previous connection."""
        self._previous = None
        self._lines = 0
        self._who_asked.clear()
        self._switching.clear()
        self.server_room = LOBBY_KEY
        # Who is away is told again after each JOIN (docs/protocol.md, Away on
        # join): what the last connection heard may be stale.
        self.away.clear()
        self.history.connected()
        self.tags.connected()

    def disconnected(self) -> None:
        """Rooms keep their scrollback but have no members until joined again."""
        self.history.disconnected()
        self.markers.stop()
        for conversation in self.conversations.values():
            if conversation.kind is ConversationKind.ROOM:
                conversation.joined = False
                conversation.members.clear()
                self.view.changed(conversation)
                self.view.members_reset(conversation)

    def rooms(self) -> list[Conversation]:
        """Return the rooms' conversations, in the order they were opened."""
        return [
            conversation
            for conversation in self.conversations.values()
            if conversation.kind is ConversationKind.ROOM
        ]

    # -- what the user does -----------------------------------------------------------

    def shown(self) -> Conversation:
        """Return the conversation on screen."""
        return self.conversations[self.current]

    def select(self, key: str) -> None:
        """Show the conversation key; its unread messages count as read."""
        conversation = self.conversations.get(key)
        if conversation is None:
            return
        self.current = key
        conversation.unread = 0
        self.view.selected(conversation)
        conversation.new_from = None  # the "new messages" line is drawn once
        self.markers.seen()

    def open_private(self, nick: str) -> None:
        """Open (or show) the private conversation with nick."""
        self.select(self.private(nick).key)

    def expect_users(self, room: str, shown: bool) -> None:
        """Note that /who room was sent; if shown, its answer is also a notice."""
        request = WhoRequest(shown, after=self._lines)
        self._who_asked.setdefault(fold(room), deque()).append(request)

    def make_server_current(self, room: Conversation) -> None:
        """Make room the server's current room, so that a plain line goes there."""
        if self.server_room == room.key and room.joined:
            return  # (a room not joined yet gets its /join: one may have failed)
        # docs/protocol.md: /join of a room you are in makes it current; chatd answers
        # with an INFO, which _on_info leaves out.
        self.send(f"/join {room.name}")
        self.joining(room)

    def joining(self, room: Conversation) -> None:
        """A /join for room was sent: once the server reads it, room is current."""
        self._switching.append(room.key)
        self.server_room = room.key

    def needs_rejoin(self, room: Conversation) -> bool:
        """Tell whether room is open, not joined, and no /join for it is on its way.

        A room the user was kicked from is not: they join it again if they want.
        """
        return (
            self.conversations.get(room.key) is room
            and not room.joined
            and not room.kicked
            and room.key not in self._switching
        )

    def remove(self, key: str) -> None:
        """Close a conversation; if it was on screen, show the one before it."""
        keys = list(self.conversations)
        conversation = self.conversations.pop(key)
        if conversation.kind is ConversationKind.PRIVATE:
            self._privates -= 1
        self.view.closed(conversation)
        if self.current == key:
            self.select(keys[keys.index(key) - 1])  # the server's is never removed

    # -- server lines -----------------------------------------------------------------

    def apply(self, line: ServerLine) -> None:
        """Apply one chat line (docs/protocol.md, Server to client) to the state."""
        previous, self._previous = self._previous, line
        self._lines += 1
        words, text = line.words, line.text or ""
        if line.verb in TAG_VERBS:  # they may come anywhere: no run is over
            self.tags.on_line(line.verb, words, text)
            return
        if line.verb not in ("ID", "HISTORY", "ENDHISTORY", "READ"):
            self.history.before_line(line.verb)
        match line.verb:
            case "MSG" | "ACTION":
                self._on_message(line.verb, words[0], words[1], text)
            case "ID":
                self.history.on_id(words[0], words[1], words[2])
            case "HISTORY":
                self.history.on_history(words, text)
            case "ENDHISTORY":
                self.history.on_end(words[0], words[1])
                ended = self.conversations.get(fold(words[0]))
                if ended is not None:  # the catch-up after the marker: unread
                    self.markers.recount(ended)
            case "READ":
                self.markers.on_read(words[0], words[1])
            case "PRIV":
                self._on_private(words[0], words[1], text)
            case "JOIN":
                self._on_join(words[0], words[1])
            case "PART":
                self._on_part(words[0], words[1], text)
            case "QUIT":
                self._on_quit(words[0], text)
            case "RENAME":
                self._on_rename(words[0], words[1])
            case "USERS":
                self._on_users(words[0], words[1:], _continues(previous, line))
            case "ROOMS":
                self._on_rooms(words, _continues(previous, line))
            case "INFO":
                self._on_info(text)
            case "DELETED":
                self._on_deleted(words[0], words[1], words[2], text or "")
            case "ERR" if self._answers_ids(words[0], text):
                pass
            case "ERR" if self.tags.answers(words[0], text):
                pass
            case "ERR":
                self.history.on_error(words[0], text)
                self.note_shown(EntryKind.ERROR, text)
            case (
                "TOPIC"
                | "OP"
                | "DEOP"
                | "VOICE"
                | "DEVOICE"
                | "BAN"
                | "UNBAN"
                | "MODE"
                | "KICK"
                | "INVITE"
                | "OPS"
                | "VOICES"
                | "BANS"
                | "MODES"
                | "ACCOUNT"
            ):
                self._rooms_people_run(line.verb, words, text)
            case "AWAY":  # docs/protocol.md, Devices (version 3)
                self._on_away(words[0], text, previous)
            case "KLINE":  # /klines (docs/protocol.md, Server bans)
                mask, by, _, expires = words
                until = "for good" if expires == "permanent" else f"until {expires}"
                self.note_shown(
                    EntryKind.INFO, f"Server ban {mask} by {by} {until}: {text}"
                )
            case "ENDKLINES":
                self.note_shown(EntryKind.INFO, f"{words[0]} server bans.")
            case "FOUND" | "ENDSEARCH":
                self._on_found(line.verb, words, text)
            case _:  # HELLO, NICK, WELCOME, BYE: the connection's, not ours
                pass

    def _on_found(self, verb: str, words: tuple[str, ...], text: str) -> None:
        """/search's answer (docs/protocol.md, Searching history), as notices in
        the conversation on screen: where, when (UTC) and who, newest first."""
        if verb == "ENDSEARCH":
            count = int(words[0]) if words[0].isdecimal() else 0
            found = "Nothing found." if not count else f"{count} found, newest first."
            self.note_shown(EntryKind.INFO, found)
            return
        target, _, when, kind, nick = words
        said = f"* {nick} {text}" if kind == "ACTION" else f"<{nick}> {text}"
        stamp = when[:16].replace("T", " ")
        self.note_shown(EntryKind.INFO, f"{target} {stamp} UTC {said}")

    def _on_message(self, verb: str, room: str, nick: str, text: str) -> None:
        kind = EntryKind.ACTION if verb == "ACTION" else EntryKind.MESSAGE
        conversation = self.room(room)
        if self.is_me(nick):  # our line went where we meant: no /join answer pending
            self._forget_switch(conversation.key)
        msg_id, when = self.history.take_id(conversation.key)
        if msg_id is not None:
            if msg_id in conversation.ids:
                return  # shown already (from history)
            conversation.ids.add(msg_id)
        self.tags.stopped(conversation, nick)
        self.tags.before_message(room, conversation)
        self.note(conversation, kind, text, nick=nick, msg_id=msg_id, when=when)

    def _on_private(self, sender: str, recipient: str, text: str) -> None:
        own = self.is_me(sender)
        other = recipient if own else sender
        if own or fold(other) in self.conversations or self._privates < MAX_PRIVATE:
            conversation = self.private(other)
        else:  # others' messages open at most MAX_PRIVATE tabs (issue 11)
            conversation = self._others()
        self.tags.stopped(conversation, sender)
        self.tags.before_message(recipient, conversation)
        # Version 3: a kept private message comes after ID <other> <id> <time>.
        msg_id, when = self.history.take_id(fold(other))
        self.note(
            conversation, EntryKind.MESSAGE, text, nick=sender, msg_id=msg_id, when=when
        )
        if own:  # the user just wrote to them: show that conversation
            self.select(conversation.key)

    def _on_deleted(self, target: str, word: str, by: str, reason: str) -> None:
        """A kept message was deleted: its line says so, greyed (docs/protocol.md,
        Deleting messages). A private one is filed under the other side."""
        other = by if not target.startswith("#") and self.is_me(target) else target
        conversation = self.conversations.get(fold(other))
        if conversation is None or not word.isdecimal():
            return
        msg_id = int(word)
        for at, entry in enumerate(conversation.scrollback):
            if entry.id == msg_id and not entry.deleted:
                who = "you" if self.is_me(by) else by
                text = f"message deleted by {who}" + (f": {reason}" if reason else "")
                conversation.scrollback[at] = replace(entry, text=text, deleted=True)
                if conversation.key == self.current:
                    self.view.selected(conversation)  # drawn again: a rare event
                return

    def _on_join(self, room: str, nick: str) -> None:
        if not self.is_me(nick):
            conversation = self.conversations.get(fold(room))
            if conversation is not None:
                self._add_member(conversation, nick)
                self.note(conversation, EntryKind.NOTICE, f"{nick} joined {room}")
            return
        conversation = self.room(room)
        conversation.joined, conversation.kicked = True, False
        conversation.topic_standing = True
        self.view.changed(conversation)
        self._add_member(conversation, nick)
        self._forget_switch(conversation.key)
        if not self._switching:  # else a later /join is on its way: that room wins
            # docs/protocol.md: /join makes the room current.
            self.server_room = conversation.key
        self.note(conversation, EntryKind.NOTICE, f"You joined {room}")
        self.history.joined(conversation, conversation.scrollback[-1])
        # The server sends USERS only when asked: ask, and fill the list quietly.
        self.expect_users(room, shown=False)
        self.send(f"/who {room}")
        if conversation.key in self.asked_joins or self.current == SERVER_KEY:
            self.asked_joins.discard(conversation.key)
            self.select(conversation.key)

    def _on_part(self, room: str, nick: str, reason: str) -> None:
        key = fold(room)
        conversation = self.conversations.get(key)
        if conversation is None:
            return
        said = f" ({reason})" if reason.strip() else ""
        kicked = (key, fold(nick)) in self._kicks
        self._kicks.discard((key, fold(nick)))
        if not self.is_me(nick):
            self._remove_member(conversation, nick)
            if not kicked:  # the KICK before it said why already
                self.note(conversation, EntryKind.NOTICE, f"{nick} left {room}{said}")
            return
        if kicked:  # the tab stays, with the reason in it; no rejoin by itself
            if self.server_room == key:
                self.server_room = LOBBY_KEY
            conversation.joined, conversation.kicked = False, True
            conversation.members.clear()
            conversation.ops.clear()
            conversation.voiced.clear()
            self.view.changed(conversation)
            self.view.members_reset(conversation)
            return
        if self.server_room == key:
            self.server_room = LOBBY_KEY  # docs/protocol.md: falls back to #lobby
        self.remove(key)
        self.note_shown(EntryKind.NOTICE, f"You left {room}{said}")

    def _on_quit(self, nick: str, reason: str) -> None:
        key = fold(nick)
        self.away.pop(key, None)
        for conversation in self.conversations.values():
            was_member = self._remove_member(conversation, nick)
            if was_member or (
                conversation.kind is ConversationKind.PRIVATE
                and conversation.key == key
            ):
                self.note(conversation, EntryKind.NOTICE, f"{nick} quit ({reason})")

    def _on_away(self, nick: str, text: str, previous: ServerLine | None) -> None:
        """AWAY: mark nick away (or back) beside its name; say so where expected.

        Our own change is said in the conversation on screen; someone else's
        in our private conversation with them, also when it answers our
        message to them (it comes right after our PRIV); the rooms' member
        lists show it without a line.
        """
        key = fold(nick)
        was = self.away.get(key, "")
        if text:
            self.away[key] = text
        else:
            self.away.pop(key, None)
        answered = (
            previous is not None
            and previous.verb == "PRIV"
            and bool(text)
            and not self.is_me(nick)
        )
        if text == was and not answered:
            return
        if self.is_me(nick):
            self.note_shown(
                EntryKind.INFO,
                f"You are marked away: {text}" if text else "You are back.",
            )
        else:
            chat = self.conversations.get(key)
            if chat is not None and chat.kind is ConversationKind.PRIVATE:
                said = f"{nick} is away: {text}" if text else f"{nick} is back."
                self.note(chat, EntryKind.NOTICE, said)
        for conversation in self.conversations.values():
            if key in conversation.members:
                self.view.members_reset(conversation)

    def _on_rename(self, old: str, new: str) -> None:
        old_key, new_key = fold(old), fold(new)
        if old_key in self.away:
            self.away[new_key] = self.away.pop(old_key)
        if self.is_me(old):
            self.nick = new
        notice = f"{old} is now known as {new}"
        renamed: dict[str, Conversation] = {}
        for key, conversation in self.conversations.items():
            if self._remove_member(conversation, old):
                self._add_member(conversation, new)
                self.note(conversation, EntryKind.NOTICE, notice)
            if conversation.kind is ConversationKind.PRIVATE and key == old_key:
                self.note(conversation, EntryKind.NOTICE, notice)
                if new_key == old_key or new_key not in self.conversations:
                    conversation.key, conversation.name = new_key, new
                    if self.current == old_key:
                        self.current = new_key
                    self.view.changed(conversation)
            renamed[conversation.key] = conversation
        self.conversations = renamed

    def _on_users(self, room: str, nicks: tuple[str, ...], follows: bool) -> None:
        """Read one USERS line; follows: the line before was USERS for this room.

        Lines in a row for one room are one answer, unless a /who for the room
        was sent after the line before arrived: then this starts its answer.
        (Two /who sent before either answer arrives cannot be told apart from
        one long answer.) For the member list the difference does not matter:
        two answers with no JOIN, PART, QUIT or RENAME between list the same
        people.
        """
        key = fold(room)
        asked = self._who_asked.get(key)
        if not follows or (asked and asked[0].after >= self._lines - 1):
            # A new answer: shown unless it is one we asked for ourselves.
            self._users_shown = asked.popleft().shown if asked else True
            lead = f"In {room}:"
        else:
            lead = "…"
        listed = [nick for nick in nicks if valid_nick(nick)]  # skip what is not
        conversation = self.conversations.get(key)
        if conversation is not None and conversation.kind is ConversationKind.ROOM:
            conversation.topic_standing = False
            if not follows:  # an answer after other lines replaces the list
                conversation.members.clear()
                conversation.ops.clear()  # OPS and VOICES follow, when any
                conversation.voiced.clear()
                self.view.members_reset(conversation)
            for nick in listed:
                self._add_member(conversation, nick)
        if self._users_shown:
            text = f"{lead} {', '.join(listed)}{_skipped(len(nicks) - len(listed))}"
            self.note_shown(EntryKind.INFO, text)

    def _on_rooms(self, items: tuple[str, ...], continued: bool) -> None:
        if not continued:
            self.room_sizes = {}
        shown = []
        for item in items:  # <room>:<count>; an item that is not is left out
            name, _, count = item.rpartition(":")
            if not (_is_count(count) and valid_room(name)):
                continue
            size = int(count)
            self.room_sizes[name] = size
            shown.append(f"{name} ({size})")
        lead = "…" if continued else "Rooms:"
        skipped = _skipped(len(items) - len(shown))
        self.note_shown(EntryKind.INFO, f"{lead} {', '.join(shown)}{skipped}")

    def _answers_ids(self, code: str, text: str) -> bool:
        """Whether an INFO or ERR is the answer to our own /ids on: not shown."""
        if not self.history.ids_pending:
            return False
        if code == "INFO" and text.startswith("Message ids are"):
            self.history.ids_pending = False
            return True
        if code == "unknown-command" and "/ids" in text:
            self.history.ids_pending = False
            return True
        return False

    # -- rooms people run and accounts (docs/protocol.md) -----------------------------

    def _rooms_people_run(self, verb: str, words: tuple[str, ...], text: str) -> None:
        """Apply one of the extension's lines: topics, status, bans, modes, kicks."""
        room = words[0] if words else ""
        conversation = self.conversations.get(fold(room))
        in_room = (
            conversation is not None and conversation.kind is ConversationKind.ROOM
        )
        match verb:
            case "TOPIC" if in_room and conversation is not None:
                # docs/protocol.md: right after a JOIN (or asked with /topic) it
                # is the topic as it stands; otherwise someone just set it.
                standing = conversation.topic_standing or (
                    text == conversation.topic and words[1] == conversation.topic_by
                )
                conversation.topic, conversation.topic_by = text, words[1]
                self.view.changed(conversation)
                if standing:
                    said = f"Topic: {text} (set by {words[1]})" if text else "No topic"
                    self.note(conversation, EntryKind.INFO, said)
                else:
                    said = f"set the topic: {text}" if text else "cleared the topic"
                    self.note(conversation, EntryKind.NOTICE, f"{words[1]} {said}")
            case "OP" | "DEOP" | "VOICE" | "DEVOICE" if in_room and conversation:
                nick, by = words[1], words[2]
                group = conversation.ops if "OP" in verb else conversation.voiced
                (group.discard if verb.startswith("DE") else group.add)(fold(nick))
                if fold(nick) in conversation.members:
                    self.view.member_added(
                        conversation, conversation.members[fold(nick)]
                    )
                what = {
                    "OP": "made {} an operator",
                    "DEOP": "took operator status from {}",
                    "VOICE": "gave {} a voice",
                    "DEVOICE": "took the voice from {}",
                }[verb].format("you" if self.is_me(nick) else nick)
                self.note(conversation, EntryKind.NOTICE, f"{by} {what}")
            case "OPS" | "VOICES" if in_room and conversation is not None:
                group = conversation.ops if verb == "OPS" else conversation.voiced
                group.update(fold(nick) for nick in words[1:])
                self.view.members_reset(conversation)
            case "BAN" | "UNBAN" if in_room and conversation is not None:
                done = "banned" if verb == "BAN" else "lifted the ban on"
                self.note(
                    conversation, EntryKind.NOTICE, f"{words[2]} {done} {words[1]}"
                )
            case "MODE" if in_room and conversation is not None:
                self.note(
                    conversation,
                    EntryKind.NOTICE,
                    f"{words[1]} {_mode_text(words[2], text)}",
                )
            case "KICK" if in_room and conversation is not None:
                nick, by = words[1], words[2]
                self._kicks.add((conversation.key, fold(nick)))
                if self.is_me(nick):
                    self.note(
                        conversation,
                        EntryKind.ERROR,
                        f"{by} put you out of {room}: {text}. /join {room} to go back "
                        "(if you may).",
                    )
                else:
                    self.note(
                        conversation, EntryKind.NOTICE, f"{by} put {nick} out: {text}"
                    )
            case "INVITE":
                self.note_shown(
                    EntryKind.INFO, f"{words[1]} invites you to {room}: /join {room}"
                )
            case "BANS":
                masks = ", ".join(words[1:]) or "nobody"
                self.note_shown(EntryKind.INFO, f"Banned from {room}: {masks}")
            case "MODES":
                self.note_shown(
                    EntryKind.INFO, f"{room} modes: {words[1]} {text}".strip()
                )
            case "ACCOUNT" if self.is_me(room):  # words[0] is the nick here
                account = words[1]
                self.markers.identified = account != "*"
                said = (
                    f"You are identified as {account}."
                    if account != "*"
                    else "You are not identified any more."
                )
                self.note_shown(EntryKind.INFO, said)
            case _:
                pass

    def _on_info(self, text: str) -> None:
        if self._answers_ids("INFO", text) or self.tags.answers("INFO", text):
            return
        if self._switching:
            room = self.conversations.get(self._switching[0])
            if room is None or room.name.casefold() in text.casefold():
                self._switching.popleft()  # the answer to our own /join: not shown
                return
        self.note_shown(EntryKind.INFO, text)

    def _forget_switch(self, key: str) -> None:
        self._switching = deque(k for k in self._switching if k != key)

    def _add_member(self, conversation: Conversation, nick: str) -> None:
        key = fold(nick)
        if conversation.members.get(key) != nick:
            conversation.members[key] = nick
            self.view.member_added(conversation, nick)

    def _remove_member(self, conversation: Conversation, nick: str) -> bool:
        """Take nick off conversation's members; tell whether it was there."""
        if conversation.members.pop(fold(nick), None) is None:
            return False
        self.view.member_removed(conversation, nick)
        return True

    # -- conversations ----------------------------------------------------------------

    def is_me(self, nick: str) -> bool:
        """Tell whether nick is this user's nickname."""
        return fold(nick) == fold(self.nick)

    def room(self, name: str) -> Conversation:
        """Return the room's conversation, opening it if needed."""
        return self._open(name, ConversationKind.ROOM)

    def private(self, nick: str) -> Conversation:
        """Return the private conversation with nick, opening it if needed."""
        return self._open(nick, ConversationKind.PRIVATE)

    def _others(self) -> Conversation:
        """Return the conversation collecting private messages past MAX_PRIVATE."""
        others = self.conversations.get(OTHERS_KEY)
        if others is None:
            others = self._open("other people", ConversationKind.OTHERS, OTHERS_KEY)
            self.note(
                others,
                EntryKind.INFO,
                f"{MAX_PRIVATE} private conversations are open, so messages from "
                "anyone else are collected here. Close a private conversation to "
                "give the next person a tab, or answer someone with /msg <nick> "
                "<text>, which opens theirs.",
            )
        return others

    def _open(
        self, name: str, kind: ConversationKind, key: str | None = None
    ) -> Conversation:
        key = fold(name) if key is None else key
        conversation = self.conversations.get(key)
        if conversation is None:
            conversation = Conversation(key, name, kind)
            self.markers.opened(conversation)
            self.conversations[key] = conversation
            if kind is ConversationKind.PRIVATE:
                self._privates += 1
            self.view.opened(conversation)
        return conversation

    def note(
        self,
        conversation: Conversation,
        kind: EntryKind,
        text: str,
        nick: str | None = None,
        msg_id: int | None = None,
        when: float | None = None,
    ) -> None:
        """Add an entry to conversation; a message from someone else may be unread."""
        own = nick is not None and self.is_me(nick)
        stamp = when if when is not None else self.clock.seconds()
        entry = ScrollbackEntry(stamp, kind, text, nick, own, msg_id)
        scrollback = conversation.scrollback
        scrollback.append(entry)
        if len(scrollback) > conversation.limit:
            gone = scrollback.pop(0)
            if gone.id is not None:
                conversation.ids.discard(gone.id)
        self.view.entry_added(conversation, entry)
        if conversation.key != self.current and nick is not None and not own:
            conversation.unread += 1
            if conversation.new_from is None and msg_id is not None:
                conversation.new_from = msg_id  # where the "new messages" line goes
            self.view.changed(conversation)
        elif msg_id is not None and conversation.key == self.current:
            self.markers.seen()

    def note_shown(self, kind: EntryKind, text: str) -> None:
        """Add a notice to the conversation on screen."""
        self.note(self.shown(), kind, text)

    def note_server(self, kind: EntryKind, text: str) -> None:
        """Add a notice to the server's conversation."""
        self.note(self.conversations[SERVER_KEY], kind, text)


MODE_TEXT = {
    "i": ("made the room invite-only", "opened the room to everyone"),
    "k": ("set a key: {}", "took the key away"),
    "l": ("limited the room to {} members", "lifted the member limit"),
    "m": ("made the room moderated", "let everyone speak again"),
    "n": ("closed the room to messages from outside", "let outsiders speak to it"),
    "s": ("made the room secret", "made the room public"),
    "t": ("kept the topic to operators", "let everyone set the topic"),
}


def _mode_text(change: str, argument: str) -> str:
    """Say a MODE change in words: "+m" is "made the room moderated"."""
    texts = MODE_TEXT.get(change[1:2])
    if texts is None:
        return f"set {change} {argument}".rstrip()
    return (texts[0] if change.startswith("+") else texts[1]).format(argument)


def _is_count(text: str) -> bool:
    """Tell whether text is a number of people as ROOMS gives it (a few digits)."""
    return 0 < len(text) <= MAX_COUNT_DIGITS and text.isascii() and text.isdigit()


def _skipped(count: int) -> str:
    """Say how many items of a USERS or ROOMS line were left out, if any."""
    return f" ({count} unreadable left out)" if count else ""


def _continues(previous: ServerLine | None, line: ServerLine) -> bool:
    """Tell whether line continues the USERS or ROOMS answer that previous began.

    chatd writes the lines of one answer back to back, so a USERS line right
    after a USERS line for the same room (or ROOMS after ROOMS) is more of it.
    """
    if previous is None or previous.verb != line.verb:
        return False
    return line.verb == "ROOMS" or fold(previous.words[0]) == fold(line.words[0])
