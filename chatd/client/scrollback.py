"""A room's history on the client side: backfill, older pages and missed messages.

chatd keeps what is said in rooms (docs/protocol.md version 2) and, after
`/ids on` (docs/protocol.md, Message ids), leads every live room message
with its id. So every message a client shows has an id, and a conversation
can merge what the server sends by id: nothing twice, nothing left out.

- The backfill after the user's own JOIN (HISTORY lines, ENDHISTORY) goes
  above that JOIN's notice, under a quiet "Earlier messages" marker.
- Scrolling to the top asks for the page before the oldest message shown
  (`/history #room 50 before <id>`); it goes to the top, under the marker.
- After a reconnect the backfill holds what was said meanwhile; if none of it
  reaches back to the last message seen before the drop, the pages before it
  are asked for until one does (at most MAX_GAP_PAGES), so the conversation
  shows everything that was missed, in order, and nothing it already had.

No tkinter here, and no sockets: ChatState hands the lines over, and the
view is told what was inserted where (ClientView.entries_inserted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto
from typing import TYPE_CHECKING, Protocol

from chatd.client.conversation import Conversation, EntryKind, ScrollbackEntry
from chatd.model.names import fold

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

PAGE = 50  # messages asked for when the user scrolls to the top
GAP_PAGE = 100  # messages per request when catching up after a reconnect
MAX_GAP_PAGES = 10  # requests per room and reconnect, at most
MAX_SCROLLBACK = 20_000  # entries a conversation may grow to by loading pages
EARLIER = "Earlier messages"
MISSED = "Said while you were away"


# The ERR codes that refuse a room's history to us (chatd.model.permissions).
REFUSALS = frozenset({"banned", "not-in-room"})


class Fetch(Enum):
    """Why a /history was sent, so that its answer goes where it belongs."""

    OLDER = auto()  # the user scrolled to the top
    GAP = auto()  # catching up after a reconnect


@dataclass(slots=True)
class Request:
    """A /history sent and not yet answered."""

    fetch: Fetch
    key: str  # the room's folded name
    count: int


def parse_utc(text: str) -> float | None:
    """Read docs/protocol.md's time (2026-11-30T23:50:01.123Z) as epoch seconds."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()


def insert_sorted(
    scrollback: list[ScrollbackEntry], new: list[ScrollbackEntry], tail: int
) -> list[tuple[int, list[ScrollbackEntry]]]:
    """Insert entries (ids ascending, none present) where their ids belong.

    Each goes right before the first entry with a larger id; one newer than
    everything before tail goes at tail. Returns the blocks inserted, as
    (index in the scrollback, entries), in order.
    """
    blocks: list[tuple[int, list[ScrollbackEntry]]] = []
    at = 0
    for entry in new:
        msg_id = entry.id if entry.id is not None else 0
        while at < tail:
            there = scrollback[at].id
            if there is not None and there > msg_id:
                break
            at += 1
        scrollback.insert(at, entry)
        if blocks and blocks[-1][0] + len(blocks[-1][1]) == at:
            blocks[-1][1].append(entry)
        else:
            blocks.append((at, [entry]))
        at += 1
        tail += 1
    return blocks


def index_of(
    scrollback: list[ScrollbackEntry], entry: ScrollbackEntry | None
) -> int | None:
    """The place of this very entry (not an equal one), searching from the end."""
    if entry is None:
        return None
    for at in range(len(scrollback) - 1, -1, -1):
        if scrollback[at] is entry:
            return at
    return None


class HistoryView(Protocol):
    """What the keeper tells the screen (conversations.ClientView has it)."""

    def entries_inserted(
        self, conversation: Conversation, at: int, entries: list[ScrollbackEntry]
    ) -> None:
        """entries now stand at index at of the scrollback (history, by id)."""


class KeeperHost(Protocol):
    """What the keeper needs of the client's state (conversations.ChatState)."""

    conversations: dict[str, Conversation]

    @property
    def clock(self) -> IReactorTime:
        """The reactor's clock: when a line without a time arrived."""

    @property
    def view(self) -> HistoryView:
        """The screen."""

    def rooms(self) -> list[Conversation]:
        """The room conversations."""

    def is_me(self, nick: str) -> bool:
        """Tell whether nick is this client's user."""

    def send(self, text: str) -> None:
        """Send a line to the server."""

    def note_shown(self, kind: EntryKind, text: str) -> None:
        """Add a notice to the conversation on screen."""


class HistoryKeeper:
    """The history side of ChatState: ID, HISTORY and ENDHISTORY lines, requests."""

    def __init__(self, state: KeeperHost) -> None:
        self.state = state
        self._next_id: tuple[str, int, float | None] | None = None  # from an ID line
        self._backfill: str | None = None  # a room whose backfill may come next
        self._run: list[ScrollbackEntry] = []  # HISTORY lines not yet ended
        self._run_target = ""
        self._asked: deque[Request] = deque()
        self.ids_sent = False  # /ids on was sent on this connection
        self.ids_pending = False  # and its answer, not shown, has yet to come

    # -- the connection ---------------------------------------------------------------

    def connected(self) -> None:
        """A new connection: nothing is pending on it."""
        self._next_id = None
        self._backfill = None
        self._run = []
        self._asked.clear()
        self.ids_sent = self.ids_pending = False
        for conversation in self.state.rooms():
            conversation.loading = False

    def disconnected(self) -> None:
        """Remember, per room, the last message seen: the reconnect catches up."""
        for conversation in self.state.rooms():
            if conversation.ids:
                conversation.last_seen = max(conversation.ids)

    # -- lines ------------------------------------------------------------------------

    def before_line(self, verb: str) -> None:
        """Any line but ID, HISTORY and ENDHISTORY: a run or a wait is over."""
        if verb not in ("MSG", "ACTION", "PRIV"):  # PRIV: version 3 kept ones
            self._next_id = None
        backfill, self._backfill = self._backfill, None
        if backfill is not None:
            conversation = self.state.conversations.get(backfill)
            if conversation is not None and conversation.last_seen is not None:
                # Rejoined, and no backfill: ask what was said meanwhile.
                self._ask(conversation, Fetch.GAP, GAP_PAGE, None)

    def on_id(self, room: str, msg_id: str, time: str) -> None:
        """ID <room> <id> <time>: the MSG or ACTION that follows is that message."""
        if msg_id.isascii() and msg_id.isdecimal():
            self._next_id = (fold(room), int(msg_id), parse_utc(time))

    def take_id(self, key: str) -> tuple[int | None, float | None]:
        """The id and time of the room message being read, if an ID line led it."""
        found, self._next_id = self._next_id, None
        if found is None or found[0] != key:
            return None, None
        return found[1], found[2]

    def joined(self, conversation: Conversation, notice: ScrollbackEntry) -> None:
        """The user's own JOIN: the backfill, if the room has history, is next."""
        conversation.join_entry = notice
        self._backfill = conversation.key

    def on_history(self, words: tuple[str, ...], text: str) -> None:
        """HISTORY <target> <id> <time> <kind> <nick> <text>: one line of a run."""
        target, msg_id, time, kind, nick = words
        if fold(target) != fold(self._run_target):
            self._run = []
            self._run_target = target
        if not (msg_id.isascii() and msg_id.isdecimal()):
            return
        when = parse_utc(time)
        # Version 3: a private message's kind is PRIV, an action "* sender text".
        action = kind == "ACTION" or (kind == "PRIV" and text.startswith(f"* {nick} "))
        if kind == "PRIV" and action:
            text = text[len(nick) + 3 :]
        entry = ScrollbackEntry(
            when if when is not None else self.state.clock.seconds(),
            EntryKind.ACTION if action else EntryKind.MESSAGE,
            text,
            nick,
            self.state.is_me(nick),
            int(msg_id),
        )
        self._run.append(entry)

    def on_end(self, target: str, count_text: str) -> None:
        """ENDHISTORY <target> <count>: the run is whole; put it where it goes."""
        key = fold(target)
        run = [e for e in self._run if fold(self._run_target) == key]
        self._run, self._run_target = [], ""
        count = int(count_text) if count_text.isdecimal() else len(run)
        conversation = self.state.conversations.get(key)
        backfill = self._backfill == key
        self._backfill = None
        if backfill and conversation is not None:
            self._backfilled(conversation, run)
            return
        request = self._asked.popleft() if self._asked else None
        if request is not None and request.key != key:
            self._asked.appendleft(request)  # not ours: typed by the user
            request = None
        if conversation is None or request is None:
            self._typed(target, conversation, run)
            return
        conversation.loading = False
        if request.fetch is Fetch.OLDER:
            self._older(conversation, run, count < request.count)
        else:
            self._gap(conversation, run, count == request.count)

    def on_error(self, code: str, text: str) -> None:
        """An ERR that answers the oldest /history we sent: no history, or no id.

        ERR no-history: the server keeps none, or cannot read it now.
        ERR bad-args "... is not a message id ...": the oldest message shown
        has expired (history is deleted oldest first), so nothing before it
        is left either.
        ERR banned or not-in-room naming the room: the server
        lets us read its history no more (docs/protocol.md, History).
        """
        if not self._asked:
            return
        expired = code == "bad-args" and "is not a message id" in text
        request = self._asked[0]
        conversation = self.state.conversations.get(request.key)
        refused = (
            code in REFUSALS
            and conversation is not None
            and request.key in {fold(word) for word in text.replace(":", " ").split()}
        )
        if not (code == "no-history" or expired or refused):
            return
        self._asked.popleft()
        if conversation is not None:
            conversation.loading = False
            conversation.last_seen = None
            if (expired and request.fetch is Fetch.OLDER) or refused:
                conversation.history_done = True

    # -- what the user does -----------------------------------------------------------

    def load_older(self, conversation: Conversation) -> str | None:
        """Ask for the page before the oldest message shown; say why not, if not."""
        if conversation.history_done:
            return f"This is the start of {conversation.name}'s history."
        if conversation.loading:
            return None
        messages = [entry for entry in conversation.scrollback if entry.nick]
        if conversation.ids:
            before: int | None = min(conversation.ids)
        elif messages:
            return None  # messages without ids (a server without /ids): no paging
        else:
            before = None
        self._ask(conversation, Fetch.OLDER, PAGE, before)
        return f"Loading earlier messages of {conversation.name}…"

    # -- where a run goes -------------------------------------------------------------

    def _ask(
        self, conversation: Conversation, fetch: Fetch, count: int, before: int | None
    ) -> None:
        conversation.loading = True
        self._asked.append(Request(fetch, conversation.key, count))
        after = f" before {before}" if before is not None else ""
        self.state.send(f"/history {conversation.name} {count}{after}")

    def _new(
        self, conversation: Conversation, run: list[ScrollbackEntry]
    ) -> list[ScrollbackEntry]:
        """The entries of run this conversation does not have yet."""
        seen = conversation.ids
        fresh: list[ScrollbackEntry] = []
        for entry in run:
            if entry.id is not None and entry.id not in seen:
                seen.add(entry.id)
                fresh.append(entry)
        return fresh

    def _marker(self, text: str) -> ScrollbackEntry:
        return ScrollbackEntry(self.state.clock.seconds(), EntryKind.MARKER, text)

    def _backfilled(
        self, conversation: Conversation, run: list[ScrollbackEntry]
    ) -> None:
        """The backfill: above the JOIN notice, under a marker; then any gap."""
        last_seen = conversation.last_seen
        known = max(conversation.ids) if conversation.ids else None
        fresh = self._new(conversation, run)
        scrollback = conversation.scrollback
        anchor = index_of(scrollback, conversation.join_entry)
        tail = anchor if anchor is not None else len(scrollback)
        newer = [e for e in fresh if known is None or (e.id or 0) > known]
        older = [e for e in fresh if known is not None and (e.id or 0) <= known]
        if older:
            self._show(conversation, insert_sorted(scrollback, older, tail))
            tail += len(older)
        if newer:
            marker = self._marker(MISSED if last_seen is not None else EARLIER)
            block = [marker, *newer]
            scrollback[tail:tail] = block
            self._show(conversation, [(tail, block)])
        if last_seen is None:
            return
        oldest = min((e.id for e in run if e.id is not None), default=None)
        if oldest is not None and oldest > last_seen:
            conversation.gap_pages = 0
            self._ask(conversation, Fetch.GAP, GAP_PAGE, oldest)
        else:
            conversation.last_seen = None

    def _gap(
        self, conversation: Conversation, run: list[ScrollbackEntry], full: bool
    ) -> None:
        """A page of what was missed: merged by id; the next page if still short."""
        fresh = self._new(conversation, run)
        scrollback = conversation.scrollback
        anchor = index_of(scrollback, conversation.join_entry)
        tail = anchor if anchor is not None else len(scrollback)
        self._show(conversation, insert_sorted(scrollback, fresh, tail))
        last_seen = conversation.last_seen
        oldest = min((e.id for e in run if e.id is not None), default=None)
        conversation.gap_pages += 1
        if last_seen is None or oldest is None or not full or oldest <= last_seen:
            conversation.last_seen = None
            return
        if conversation.gap_pages >= MAX_GAP_PAGES:
            conversation.last_seen = None
            fetched = conversation.gap_pages * GAP_PAGE
            self._show(
                conversation,
                insert_sorted(
                    scrollback,
                    [self._marker(f"More than {fetched} messages were missed")],
                    0,
                ),
            )
            return
        self._ask(conversation, Fetch.GAP, GAP_PAGE, oldest)

    def _older(
        self, conversation: Conversation, run: list[ScrollbackEntry], last: bool
    ) -> None:
        """A page before everything shown: at the top, under the marker."""
        fresh = self._new(conversation, run)
        if last:
            conversation.history_done = True
        if not fresh:
            return
        scrollback = conversation.scrollback
        conversation.limit = min(
            MAX_SCROLLBACK, max(conversation.limit, len(scrollback) + len(fresh))
        )
        top = scrollback[0] if scrollback else None
        if top is not None and top.kind is EntryKind.MARKER and top.text == EARLIER:
            scrollback[1:1] = fresh
            self._show(conversation, [(1, fresh)])
        else:
            block = [self._marker(EARLIER), *fresh]
            scrollback[0:0] = block
            self._show(conversation, [(0, block)])

    def _typed(
        self, target: str, conversation: Conversation | None, run: list[ScrollbackEntry]
    ) -> None:
        """A /history the user typed: merged into the room, or shown as notices."""
        state = self.state
        if conversation is None:
            if not run:
                state.note_shown(EntryKind.INFO, f"No history for {target}.")
            for entry in run:
                said = f"* {entry.nick} {entry.text}"
                if entry.kind is EntryKind.MESSAGE:
                    said = f"<{entry.nick}> {entry.text}"
                stamp = datetime.fromtimestamp(entry.when).strftime("%Y-%m-%d %H:%M")
                state.note_shown(EntryKind.INFO, f"{target} [{stamp}] {said}")
            return
        fresh = self._new(conversation, run)
        scrollback = conversation.scrollback
        self._show(conversation, insert_sorted(scrollback, fresh, len(scrollback)))
        if not run:
            said = f"No history for {conversation.name}."
        elif fresh:
            count = len(fresh)
            said = (
                "1 message of the history put in its place."
                if count == 1
                else f"{count} messages of the history put in their place."
            )
        else:
            said = f"Those {len(run)} messages are all shown already."
        state.note_shown(EntryKind.INFO, said)

    def _show(
        self,
        conversation: Conversation,
        blocks: list[tuple[int, list[ScrollbackEntry]]],
    ) -> None:
        tell: Callable[[Conversation, int, list[ScrollbackEntry]], None]
        tell = self.state.view.entries_inserted
        for at, entries in blocks:
            tell(conversation, at, entries)
