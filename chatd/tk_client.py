"""The desktop client: a Tk window over chatd.client, run by the Twisted reactor.

`chatd-tk --host HOST --port PORT --nick NICK [--password-file PATH]` (or
`python -m chatd.tk_client`) connects at once; without a nickname it opens a
small connect form (a password there, or in the file, logs in to the account). Tk runs
inside the reactor through twisted.internet.tksupport: no threads and no
mainloop(), so the network never freezes the window and the window never
races the network. Closing the window sends /quit and stops the reactor.
"""

from __future__ import annotations

import argparse
import sys
import time
import tkinter as tk
import zlib
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from tkinter import font as tkfont
from tkinter import ttk
from types import TracebackType
from typing import cast

from twisted.internet import tksupport
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore, IReactorTCP, IReactorTime
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from zope.interface import provider

from chatd.client.client import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ClientSession,
    InputHistory,
    SessionPhase,
    tcp_connector,
)
from chatd.client.conversations import (
    Conversation,
    ConversationKind,
    EntryKind,
    ScrollbackEntry,
)
from chatd.model.names import fold


class IChatReactor(IReactorCore, IReactorTCP, IReactorTime):
    """What the window needs of the reactor: running, TCP and time."""


# Dark enough to read on white, far enough apart to tell nicknames apart.
NICK_COLOURS = (
    "#d32f2f",  # red
    "#1976d2",  # blue
    "#388e3c",  # green
    "#7b1fa2",  # purple
    "#e65100",  # orange
    "#00838f",  # cyan
    "#6d4c41",  # brown
    "#c2185b",  # pink
    "#303f9f",  # indigo
    "#827717",  # olive
)
OWN_BACKGROUND = "#e8f0fe"
AWAY_COLOUR = "#767676"  # an away member's row: grey, still 4.5:1 on white
MAX_VIEW_LINES = 2500  # lines kept in the message view before the oldest go


def nick_colour(nick: str) -> str:
    """Return nick's colour: the same on every run and for every spelling case."""
    return NICK_COLOURS[zlib.crc32(fold(nick).encode("utf-8")) % len(NICK_COLOURS)]


def time_stamp(when: float) -> str:
    """Format a time (seconds since the epoch) as local hours and minutes."""
    return time.strftime("%H:%M", time.localtime(when))


def conversation_label(conversation: Conversation) -> str:
    """Return the side list's text for a conversation, with its unread count."""
    match conversation.kind:
        case ConversationKind.SERVER:
            label = f"{conversation.name} (server)"
        case ConversationKind.PRIVATE | ConversationKind.OTHERS:
            label = f"{conversation.name} (private)"
        case _:
            label = conversation.name
    if conversation.unread:
        label += f"  ● {conversation.unread} new"
    return label


def conversation_title(conversation: Conversation) -> str:
    """Return the heading shown above a conversation's messages."""
    match conversation.kind:
        case ConversationKind.SERVER:
            return f"Notices from the server {conversation.name}"
        case ConversationKind.PRIVATE:
            return f"Private conversation with {conversation.name}"
        case ConversationKind.OTHERS:
            return "Private messages from people without a tab of their own"
        case _ if conversation.kicked:  # connected, but put out of the room
            name = conversation.name
            return f"{name} (put out: /join {name} to go back)"
        case _ if not conversation.joined:
            return f"{conversation.name} (not connected)"
        case _:
            count = len(conversation.members)
            people = "person" if count == 1 else "people"
            return f"{conversation.name}, {count} {people}"


class ChatWindow:
    """The main window: a connect form, then conversations, messages and members."""

    log = Logger()

    def __init__(self, root: tk.Tk, reactor: IChatReactor) -> None:
        self.root = root
        self.reactor = reactor
        self.session = ClientSession(self, reactor, tcp_connector(reactor))
        self.history = InputHistory()
        self._shown: Conversation | None = None  # the conversation being drawn
        self._rows: list[Conversation] = []  # the conversation of each side list row
        self._member_keys: list[str] = []  # each member row's folded nick, in order
        self._member_nicks: list[str] = []  # each member row's nickname
        self._unwritten: deque[ScrollbackEntry] = deque(
            maxlen=MAX_VIEW_LINES
        )  # not yet drawn
        self._write_call: str | None = None  # the Tk idle call that draws them
        # The entry of each line of the messages view, in order (the delete
        # menu finds a line's message here).
        self._drawn: list[ScrollbackEntry] = []
        self._menu: tk.Menu | None = None  # the messages' right-click menu
        self._nick_tags: set[str] = set()
        self._closing = False
        self._gone = False  # the Tk window was destroyed: nothing left to draw on
        root.title("chatd")
        root.geometry("960x600")
        root.minsize(640, 400)
        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind("<Destroy>", self._destroyed, add="+")
        # Read markers move only while the window has the focus (a conversation
        # on screen in a window behind others is not read).
        root.bind("<FocusIn>", lambda _: self._focus(True), add="+")
        root.bind("<FocusOut>", lambda _: self._focus(False), add="+")
        root.report_callback_exception = self._callback_failed
        self._style()
        self.status_text = tk.StringVar(value="Not connected")
        self.form = self._build_form()
        self.chat = self._build_chat()
        status = ttk.Label(root, textvariable=self.status_text, style="Status.TLabel")
        status.grid(row=1, column=0, sticky="ew")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        self._show(self.form)
        self._redraw_all()

    # -- building ---------------------------------------------------------------------

    def _style(self) -> None:
        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=11)
        tkfont.nametofont("TkTextFont").configure(size=11)
        self.bold = base.copy()
        self.bold.configure(weight="bold")
        self.italic = base.copy()
        self.italic.configure(slant="italic")
        self.heading = base.copy()
        self.heading.configure(size=14, weight="bold")
        self.small = base.copy()
        self.small.configure(size=9, slant="italic")
        style.configure("Status.TLabel", padding=(8, 3), foreground="#444444")
        style.configure("Heading.TLabel", font=self.heading)
        style.configure("Title.TLabel", font=self.bold, padding=(4, 4))
        style.configure("Error.TLabel", foreground="#b00020")
        style.configure("Topic.TLabel", foreground="#555555", padding=(8, 4))

    def _build_form(self) -> ttk.Frame:
        form = ttk.Frame(self.root, padding=40)
        ttk.Label(form, text="Join a chatd server", style="Heading.TLabel").grid(
            row=0, column=0, columnspan=2, sticky="w", pady=(0, 16)
        )
        self.host_text = tk.StringVar(value=DEFAULT_HOST)
        self.port_text = tk.StringVar(value=str(DEFAULT_PORT))
        self.nick_text = tk.StringVar()
        # Optional: with it, the window logs in to the nickname's account at the
        # prompt (docs/protocol.md, Devices). Kept in memory only, for reconnects.
        self.password_text = tk.StringVar()
        self.form_fields: list[ttk.Entry] = []
        for row, (label, variable) in enumerate(
            (
                ("Server", self.host_text),
                ("Port", self.port_text),
                ("Nickname", self.nick_text),
                ("Password (optional)", self.password_text),
            ),
            start=1,
        ):
            ttk.Label(form, text=label).grid(row=row, column=0, sticky="w", pady=4)
            secret = variable is self.password_text
            field = ttk.Entry(
                form, textvariable=variable, width=28, show="•" if secret else ""
            )
            field.grid(row=row, column=1, sticky="ew", pady=4, padx=(12, 0))
            field.bind("<Return>", self._form_submitted)
            self.form_fields.append(field)
        self.connect_button = ttk.Button(
            form, text="Connect", command=self._form_submitted
        )
        self.connect_button.grid(row=5, column=1, sticky="e", pady=(12, 0))
        self.form_message = ttk.Label(form, style="Error.TLabel", wraplength=420)
        self.form_message.grid(row=6, column=0, columnspan=2, sticky="w", pady=12)
        return form

    def _build_chat(self) -> ttk.Frame:
        chat = ttk.Frame(self.root, padding=(6, 6, 6, 0))
        panes = ttk.PanedWindow(chat, orient="horizontal")
        panes.grid(row=0, column=0, columnspan=2, sticky="nsew")

        side = ttk.Frame(panes)
        ttk.Label(side, text="Conversations", style="Title.TLabel").pack(anchor="w")
        self.conversation_list = _list_box(side, width=22)
        self.conversation_list.pack(fill="both", expand=True)
        self.conversation_list.bind("<<ListboxSelect>>", self._conversation_picked)
        panes.add(side, weight=0)

        middle = ttk.Frame(panes)
        heading = ttk.Frame(middle)
        heading.grid(row=0, column=0, columnspan=2, sticky="ew")
        self.title = ttk.Label(heading, style="Title.TLabel")
        self.title.pack(side="left")
        # The room's topic beside its name (rooms people run: TOPIC lines).
        self.topic_bar = ttk.Label(heading, style="Topic.TLabel", anchor="w")
        self.topic_bar.pack(side="left", fill="x", expand=True)
        self.messages = tk.Text(
            middle,
            wrap="word",
            state="disabled",
            width=60,
            padx=8,
            pady=6,
            spacing1=2,
            relief="flat",
            highlightthickness=1,
            highlightcolor="#cccccc",
            highlightbackground="#cccccc",
            cursor="arrow",
            font="TkDefaultFont",
        )
        scroll = ttk.Scrollbar(middle, command=self._scrollbar_moved)
        self.messages.configure(yscrollcommand=scroll.set)
        for wheel in ("<MouseWheel>", "<Button-4>"):  # Button-4: up, on X11
            self.messages.bind(wheel, self._wheel_up, add="+")
        self.messages.bind("<Button-3>", self._message_menu)
        self.messages.grid(row=1, column=0, sticky="nsew")
        scroll.grid(row=1, column=1, sticky="ns")
        # "alice is typing…" under the messages (/tags on: chatd.client.tags).
        self.typing_bar = ttk.Label(middle, style="Topic.TLabel", anchor="w")
        self.typing_bar.grid(row=2, column=0, columnspan=2, sticky="ew")
        middle.rowconfigure(1, weight=1)
        middle.columnconfigure(0, weight=1)
        panes.add(middle, weight=1)
        self._configure_tags()

        members = ttk.Frame(panes)
        self.members_title = ttk.Label(members, text="Members", style="Title.TLabel")
        self.members_title.pack(anchor="w")
        self.member_list = _list_box(members, width=18)
        self.member_list.pack(fill="both", expand=True)
        self.member_list.bind("<Double-Button-1>", self._member_picked)
        self.member_list.bind("<Return>", self._member_picked)
        panes.add(members, weight=0)

        self.input = ttk.Entry(chat)
        self.input.grid(row=1, column=0, sticky="ew", pady=6)
        self.send_button = ttk.Button(chat, text="Send", command=self._input_sent)
        self.send_button.grid(row=1, column=1, padx=(6, 0), pady=6)
        for sequence, handler in (
            ("<Return>", self._input_sent),
            ("<KP_Enter>", self._input_sent),
            ("<Up>", self._history_back),
            ("<Down>", self._history_forward),
            ("<Prior>", self._page_up),
            ("<Next>", lambda: self.messages.yview_scroll(1, "pages")),
            ("<Control-Prior>", lambda: self._step_conversation(-1)),
            ("<Control-Next>", lambda: self._step_conversation(1)),
        ):
            self.input.bind(sequence, _breaking(handler))
        chat.rowconfigure(0, weight=1)
        chat.columnconfigure(0, weight=1)
        return chat

    def _configure_tags(self) -> None:
        text = self.messages
        text.tag_configure("time", foreground="#8a8a8a")
        text.tag_configure("own", background=OWN_BACKGROUND)
        text.tag_configure("notice", foreground="#7a7a7a", font=self.italic)
        text.tag_configure("info", foreground="#2f5d7c")
        text.tag_configure("error", foreground="#b00020")
        text.tag_configure("action", font=self.italic)
        text.tag_configure(
            "marker", foreground="#9a9a9a", font=self.small, justify="center"
        )
        text.tag_raise("sel")

    def _nick_tag(self, nick: str) -> str:
        colour = nick_colour(nick)
        tag = f"nick{colour}"
        if tag not in self._nick_tags:
            self.messages.tag_configure(tag, foreground=colour, font=self.bold)
            self._nick_tags.add(tag)
        return tag

    # -- starting and stopping --------------------------------------------------------

    def start(
        self,
        host: str | None,
        port: int | None,
        nick: str | None,
        password: str = "",
    ) -> None:
        """Fill the form from the command line; with a nickname, connect at once.

        password (from --password-file, never the command line) logs in.
        """
        self.host_text.set(host or DEFAULT_HOST)
        self.port_text.set(str(port if port is not None else DEFAULT_PORT))
        self.nick_text.set(nick or "")
        self.password_text.set(password)
        if nick:
            self._form_submitted()
        else:
            self.form_fields[2].focus_set()

    def leave(self) -> Deferred[None]:
        """Send /quit if connected; fires once the connection is closed (bounded)."""
        return self.session.quit()

    def close(self) -> None:
        """Close the window: stopping the reactor leaves the chat first (run())."""
        if self._closing:
            return
        self._closing = True
        if not self._gone:
            self.root.withdraw()
        if self.reactor.running:
            self.reactor.stop()

    def _destroyed(self, event: tk.Event) -> None:
        """The window was destroyed without asking (a window manager can): leave."""
        if event.widget is self.root:
            self._gone = True
            self.close()

    # -- ClientView -------------------------------------------------------------------

    def status(self, text: str) -> None:
        """Show text in the status line."""
        if self._gone:
            return
        self.status_text.set(text)

    def entry_added(self, conversation: Conversation, entry: ScrollbackEntry) -> None:
        """Draw entry if its conversation is on screen."""
        if self._gone:
            return
        if conversation is not self._shown:
            return
        # Written when Tk is next idle, with the entries that came with it:
        # each configure(state=...) of a Text lays out all its lines again,
        # which per entry made a burst of lines quadratic.
        self._unwritten.append(entry)
        if self._write_call is None:
            self._write_call = self.root.after_idle(self._write_unwritten)

    def entries_inserted(
        self, conversation: Conversation, at: int, entries: list[ScrollbackEntry]
    ) -> None:
        """Draw entries from history where they now stand in the scrollback.

        Each entry is one line of the view, so while the view holds the whole
        scrollback the new lines go in at their place: above the lines shown
        (an older page) without moving what is on screen, or at the end. When
        it does not (the oldest lines were trimmed), it is drawn again.
        """
        if self._gone or conversation is not self._shown:
            return
        scrollback = conversation.scrollback
        if at + len(entries) == len(scrollback):
            for entry in entries:
                self.entry_added(conversation, entry)
            return
        text = self.messages
        drawn = int(text.index("end-1c").split(".")[0]) - 1  # each line ends in \n
        if drawn + len(self._unwritten) != len(scrollback) - len(entries):
            self._redraw_messages(conversation)
            return
        top_line = int(text.index("@0,0").split(".")[0])
        text.configure(state="normal")
        for entry in reversed(entries):
            self._write(entry, f"{at + 1}.0")
        text.configure(state="disabled")
        if at + 1 <= top_line:  # above the screen: the same lines stay in view
            text.yview(f"{top_line + len(entries)}.0")

    def opened(self, conversation: Conversation) -> None:
        """Add a row for conversation at the end of the side list."""
        if self._gone:
            return
        self._rows.append(conversation)
        self.conversation_list.insert("end", conversation_label(conversation))
        self._colour_row(len(self._rows) - 1, conversation)

    def closed(self, conversation: Conversation) -> None:
        """Take conversation's row out of the side list."""
        if self._gone:
            return
        row = self._rows.index(conversation)
        del self._rows[row]
        self.conversation_list.delete(row)

    def changed(self, conversation: Conversation) -> None:
        """Rewrite conversation's row, and the heading if it is on screen."""
        if self._gone:
            return
        self._write_row(self._rows.index(conversation), conversation)
        if conversation is self._shown:
            self.title.configure(text=conversation_title(conversation))
            self.topic_bar.configure(text=conversation.topic)
            self._show_typing(conversation)

    def _show_typing(self, conversation: Conversation) -> None:
        """Who is typing in conversation (on screen), under its messages."""
        self.typing_bar.configure(
            text=self.session.state.tags.typing_text(conversation)
        )

    def selected(self, conversation: Conversation) -> None:
        """Draw conversation whole: its messages, members, heading and row."""
        if self._gone:
            return
        self._shown = conversation
        self._redraw_messages(conversation)
        self._redraw_members(conversation)
        self.title.configure(text=conversation_title(conversation))
        self.topic_bar.configure(text=conversation.topic)
        self._show_typing(conversation)
        row = self._rows.index(conversation)
        self._write_row(row, conversation)
        listing = self.conversation_list
        listing.selection_clear(0, "end")
        listing.selection_set(row)
        listing.see(row)

    def member_added(self, conversation: Conversation, nick: str) -> None:
        """Insert one row in the member list, in its sorted place."""
        if self._gone or conversation is not self._shown:
            return
        key = fold(nick)
        row = bisect_left(self._member_keys, key)
        if row < len(self._member_keys) and self._member_keys[row] == key:
            self._member_nicks[row] = nick  # the same person, spelled anew
            self.member_list.delete(row)
        else:
            self._member_keys.insert(row, key)
            self._member_nicks.insert(row, nick)
        self._insert_member(row, nick)
        self._count_members(conversation)

    def member_removed(self, conversation: Conversation, nick: str) -> None:
        """Delete one row from the member list."""
        if self._gone or conversation is not self._shown:
            return
        key = fold(nick)
        row = bisect_left(self._member_keys, key)
        if row < len(self._member_keys) and self._member_keys[row] == key:
            del self._member_keys[row], self._member_nicks[row]
            self.member_list.delete(row)
        self._count_members(conversation)

    def members_reset(self, conversation: Conversation) -> None:
        """Draw the member list whole, if conversation is on screen."""
        if self._gone or conversation is not self._shown:
            return
        self._redraw_members(conversation)

    def ask_nick(self, reason: str) -> None:
        """Show the form again with the server's reason, the nickname selected."""
        if self._gone:
            return
        self._form_ready(f"That nickname was refused: {reason}\nPlease choose another.")
        nick_field = self.form_fields[2]
        nick_field.focus_set()
        nick_field.select_range(0, "end")

    def connect_failed(self, reason: str) -> None:
        """Show the form again with what went wrong."""
        if self._gone:
            return
        self._form_ready(reason)

    def registered(self, nick: str) -> None:
        """Show the chat and give the input the keyboard focus."""
        if self._gone:
            return
        self.root.title(f"chatd: {nick} on {self.session.host}:{self.session.port}")
        self._show(self.chat)
        self._redraw_all()
        self.input.focus_set()

    def finished(self) -> None:
        """The user left the chat: close the window."""
        if self._gone:
            return
        self.close()

    # -- drawing ----------------------------------------------------------------------

    def _show(self, frame: ttk.Frame) -> None:
        for other in (self.form, self.chat):
            if other is not frame:
                other.grid_forget()
        frame.grid(row=0, column=0, sticky="nsew")

    def _form_ready(self, message: str) -> None:
        self._show(self.form)
        self.form_message.configure(text=message)
        self._form_busy(False)

    def _form_busy(self, busy: bool) -> None:
        state = "disabled" if busy else "!disabled"
        for widget in (*self.form_fields, self.connect_button):
            widget.state([state])

    def _redraw_all(self) -> None:
        """Draw the side list and the conversation on screen from scratch."""
        state = self.session.state
        self._rows = list(state.conversations.values())
        self.conversation_list.delete(0, "end")
        for row, conversation in enumerate(self._rows):
            self.conversation_list.insert("end", conversation_label(conversation))
            self._colour_row(row, conversation)
        self.selected(state.shown())

    def _write_row(self, row: int, conversation: Conversation) -> None:
        listing = self.conversation_list
        listing.delete(row)
        listing.insert(row, conversation_label(conversation))
        self._colour_row(row, conversation)
        if conversation is self._shown:
            listing.selection_set(row)

    def _colour_row(self, row: int, conversation: Conversation) -> None:
        if conversation.unread:
            self.conversation_list.itemconfigure(row, foreground="#1565c0")
        elif conversation.kind is ConversationKind.ROOM and not conversation.joined:
            self.conversation_list.itemconfigure(row, foreground="#9a9a9a")

    def _write_unwritten(self) -> None:
        """Append the entries that arrived since the last time, in one go."""
        self._write_call = None
        if self._gone or not self._unwritten:
            return
        follow = self.messages.yview()[1] >= 0.999  # at the bottom: keep following
        self.messages.configure(state="normal")
        while self._unwritten:
            self._write(self._unwritten.popleft())
        kept = max(MAX_VIEW_LINES, self._shown.limit if self._shown else 0)
        excess = int(self.messages.index("end-1c").split(".")[0]) - kept
        if excess > 0:
            self.messages.delete("1.0", f"{excess + 1}.0")
            del self._drawn[:excess]
        self.messages.configure(state="disabled")
        if follow:
            self.messages.see("end")

    def _focus(self, focused: bool) -> None:
        """The window got or lost the keyboard focus: the read markers are told."""
        if not self._gone:
            self.session.state.markers.focus(focused)

    def _redraw_messages(self, conversation: Conversation) -> None:
        self._unwritten.clear()  # the scrollback holds them too
        self._drawn = []
        self.messages.configure(state="normal")
        self.messages.delete("1.0", "end")
        new_from = conversation.new_from  # where the unread messages begin
        for entry in conversation.scrollback:
            if new_from is not None and entry.id == new_from:
                line = ScrollbackEntry(entry.when, EntryKind.MARKER, "new messages")
                self._write(line)
            self._write(entry)
        self.messages.configure(state="disabled")
        self.messages.see("end")

    def _write(self, entry: ScrollbackEntry, where: str = "end") -> None:
        """Insert one entry as a line: time stamp, sender and text, styled.

        where is "end", or the start of a line to put it above that line
        (pieces are inserted in reverse there, so the line reads the same).
        """
        parts: list[tuple[str, tuple[str, ...] | str]] = []
        line: tuple[str, ...] = ("own",) if entry.own else ()
        if entry.kind is EntryKind.MARKER:
            parts.append((f"── {entry.text} ──\n", "marker"))
        else:
            parts.append((time_stamp(entry.when) + "  ", ("time", *line)))
        match entry.kind:
            case EntryKind.MARKER:
                pass
            case EntryKind.MESSAGE | EntryKind.ACTION if entry.deleted and entry.nick:
                # Deleted (docs/protocol.md, Deleting messages): greyed.
                parts.append((entry.nick, (self._nick_tag(entry.nick), *line)))
                parts.append((f": {entry.text}\n", ("notice", *line)))
            case EntryKind.MESSAGE if entry.nick is not None:
                parts.append((entry.nick, (self._nick_tag(entry.nick), *line)))
                parts.append((f": {entry.text}\n", line))
            case EntryKind.ACTION if entry.nick is not None:
                parts.append(("* ", ("action", *line)))
                parts.append((entry.nick, (self._nick_tag(entry.nick), *line)))
                parts.append((f" {entry.text}\n", ("action", *line)))
            case EntryKind.NOTICE:
                parts.append((f"— {entry.text}\n", "notice"))
            case EntryKind.ERROR:
                parts.append((f"! {entry.text}\n", "error"))
            case _:
                parts.append((f"{entry.text}\n", "info"))
        insert = self.messages.insert
        for text, tags in reversed(parts) if where != "end" else parts:
            insert(where, text, tags)
        if where == "end":
            self._drawn.append(entry)
        else:
            self._drawn.insert(int(where.split(".")[0]) - 1, entry)

    # -- deleting messages (docs/protocol.md, Deleting messages) ----------------------

    def entry_at(self, x: int, y: int) -> ScrollbackEntry | None:
        """The message on the line at x, y of the messages view, if any."""
        line = int(self.messages.index(f"@{x},{y}").split(".")[0])
        return self._drawn[line - 1] if 1 <= line <= len(self._drawn) else None

    def deletion_target(self, entry: ScrollbackEntry | None) -> str | None:
        """Where /delete names entry, if the menu offers it: one's own message,
        or any of a room one runs (the server decides; this spares a refusal)."""
        shown = self._shown
        if entry is None or shown is None or entry.id is None or entry.deleted:
            return None
        if entry.nick is None or entry.kind not in (
            EntryKind.MESSAGE,
            EntryKind.ACTION,
        ):
            return None
        state = self.session.state
        if entry.own or (
            shown.kind is ConversationKind.ROOM and any(map(state.is_me, shown.ops))
        ):
            return shown.name
        return None

    def delete_entry(self, entry: ScrollbackEntry) -> None:
        """Ask the server to delete entry's message (the menu's command)."""
        target = self.deletion_target(entry)
        if target is not None and entry.id is not None:
            self.session.submit(f"/delete {target} {entry.id}")

    def _message_menu(self, event: tk.Event) -> None:
        """Right-click on a message: a menu to delete it, where one may."""
        entry = self.entry_at(event.x, event.y)
        if entry is None or self.deletion_target(entry) is None:
            return
        if self._menu is None:
            self._menu = tk.Menu(self.root, tearoff=False)
        self._menu.delete(0, "end")
        self._menu.add_command(
            label="Delete message", command=lambda: self.delete_entry(entry)
        )
        self._menu.tk_popup(event.x_root, event.y_root)

    def _redraw_members(self, conversation: Conversation) -> None:
        members = (
            sorted(conversation.members.items())  # by folded nickname
            if conversation.kind is ConversationKind.ROOM
            else []
        )
        self._member_keys = [key for key, _ in members]
        self._member_nicks = [nick for _, nick in members]
        self.member_list.delete(0, "end")
        for row, nick in enumerate(self._member_nicks):
            self._insert_member(row, nick)
        self._count_members(conversation)

    def _insert_member(self, row: int, nick: str) -> None:
        own = self.session.state.is_me(nick)
        # @ before an operator, + before a voiced member (rooms people run).
        mark = self._shown.mark(nick) if self._shown is not None else ""
        label = f"{mark}{nick}"
        if own:
            label += " (you)"
        away = self.session.state.away.get(fold(nick))
        if away is not None:  # AWAY (docs/protocol.md, Devices): greyed, and why
            label += f" (away: {away})"
        self.member_list.insert(row, label)
        colour = AWAY_COLOUR if away is not None else nick_colour(nick)
        self.member_list.itemconfigure(row, foreground=colour)

    def _count_members(self, conversation: Conversation) -> None:
        count = len(self._member_keys)
        self.members_title.configure(text=f"Members ({count})" if count else "Members")
        self.title.configure(text=conversation_title(conversation))

    # -- what the user does -----------------------------------------------------------

    def _form_submitted(self, event: object = None) -> None:
        host = self.host_text.get().strip()
        nick = self.nick_text.get().strip()
        port_text = self.port_text.get().strip()
        port = int(port_text) if port_text.isdecimal() else 0
        if not host:
            problem = "Enter the server's address, such as 127.0.0.1."
        elif not 0 < port < 65536:
            problem = "The port is a number from 1 to 65535, such as 5501."
        elif not nick:
            problem = "Choose a nickname."
        else:
            self.form_message.configure(text="")
            self._form_busy(True)
            self.session.connect(host, port, nick, self.password_text.get())
            return
        self.form_message.configure(text=problem)

    def _input_sent(self) -> None:
        text = self.input.get()
        if not text.strip():
            return
        self.history.add(text)
        self.input.delete(0, "end")
        self.session.submit(text)
        self.messages.see("end")  # the user spoke: follow the conversation again

    def _scrollbar_moved(self, *args: str) -> None:
        """The user moved the scrollbar: scroll, and at the top load older messages."""
        self.messages.yview(*args)
        self._maybe_load_older()

    def _wheel_up(self, event: tk.Event) -> None:
        """The wheel turned (Tk scrolls the view itself): at the top, load more."""
        if getattr(event, "num", 0) == 4 or getattr(event, "delta", 0) > 0:
            self.root.after_idle(self._maybe_load_older)

    def _page_up(self) -> None:
        self.messages.yview_scroll(-1, "pages")
        self._maybe_load_older()

    def _maybe_load_older(self) -> None:
        """At the top of a room's messages: ask for the page before them."""
        shown = self._shown
        if self._gone or shown is None or shown.kind is not ConversationKind.ROOM:
            return
        if self.messages.yview()[0] <= 0.0:
            self.session.load_older(shown.key)

    def _history_back(self) -> None:
        self._put_input(self.history.previous(self.input.get()))

    def _history_forward(self) -> None:
        self._put_input(self.history.next())

    def _put_input(self, text: str | None) -> None:
        if text is not None:
            self.input.delete(0, "end")
            self.input.insert(0, text)
            self.input.icursor("end")

    def _conversation_picked(self, event: object = None) -> None:
        picked = self.conversation_list.curselection()
        if picked:
            self.session.select(self._rows[picked[0]].key)
        # The Listbox's own click binding takes the focus after this event:
        # give it to the input once that is done, so typing goes there.
        self.root.after_idle(self.input.focus_set)

    def _step_conversation(self, step: int) -> None:
        keys = list(self.session.state.conversations)
        here = keys.index(self.session.state.current)
        self.session.select(keys[(here + step) % len(keys)])

    def _member_picked(self, event: object = None) -> None:
        picked = self.member_list.curselection()
        if picked and self.session.phase is SessionPhase.REGISTERED:
            self.session.state.open_private(self._member_nicks[picked[0]])
            self.input.focus_set()

    # -- failures ---------------------------------------------------------------------

    def _callback_failed(
        self,
        kind: type[BaseException],
        value: BaseException,
        traceback: TracebackType | None,
    ) -> None:
        """A Tk callback raised: log it, tell the user, keep the window alive."""
        self.log.failure("in a window callback", Failure(value, kind, traceback))
        self.status(f"Sorry, something went wrong in the window: {value}")

    def observe_log(self, event: LogEvent) -> None:
        """A log observer: errors logged anywhere show up in the status line."""
        if "log_failure" in event or event.get("log_level") in (
            LogLevel.error,
            LogLevel.critical,
        ):
            failure = event.get("log_failure")
            what = failure.getErrorMessage() if failure is not None else "an error"
            self.status(f"Sorry, something went wrong: {what}")


def _list_box(parent: tk.Misc, width: int) -> tk.Listbox:
    """Make a flat list with a quiet selection colour."""
    return tk.Listbox(
        parent,
        width=width,
        activestyle="none",
        exportselection=False,
        selectbackground="#cfdcf0",
        selectforeground="#000000",
        relief="flat",
        highlightthickness=1,
        highlightcolor="#cccccc",
        highlightbackground="#cccccc",
    )


def _breaking(handler: Callable[[], object]) -> Callable[[object], str]:
    """Wrap a key handler so that Tk's default binding does not also run."""

    def bound(event: object) -> str:
        handler()
        return "break"

    return bound


def run(root: tk.Tk, window: ChatWindow, reactor: IChatReactor) -> None:
    """Run the reactor with Tk inside it until the window closes, then tidy up."""
    tksupport.install(root)
    # Whatever stops the reactor (closing the window, /quit, Ctrl-C in a
    # terminal), the user leaves the chat with /quit first.
    reactor.addSystemEventTrigger("before", "shutdown", window.leave)
    reactor.run()
    try:
        tksupport.uninstall()
        root.destroy()
    except (tk.TclError, AttributeError, AssertionError):
        pass  # the window or its update loop was already gone


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse chatd-tk's command line."""
    parser = argparse.ArgumentParser(
        prog="chatd-tk",
        # No --password as short for --password-file: a password is never an
        # argument (the process list shows arguments to everyone).
        allow_abbrev=False,
        description="The chatd desktop client. With --nick it connects at once; "
        "otherwise it asks for the server and a nickname.",
    )
    parser.add_argument("--host", help=f"server address (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"server port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--nick", help="your nickname")
    parser.add_argument(
        "--password-file",
        metavar="PATH",
        help="log in to your nickname's account with the password on this "
        "file's first line (a password is never given on the command line)",
    )
    return parser.parse_args(argv)


def read_password(path: str | None) -> str:
    """The password on path's first line ("" without a path); OSError if unreadable."""
    if not path:
        return ""
    with open(path, encoding="utf-8") as file:
        return file.readline().rstrip("\r\n")


def start_logging(window: ChatWindow) -> None:
    """Send warnings and errors to stderr, and show errors in the window."""
    to_stderr = FilteringLogObserver(
        textFileLogObserver(sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )

    @provider(ILogObserver)
    def to_window(event: LogEvent) -> None:
        window.observe_log(event)

    globalLogBeginner.beginLoggingTo([to_stderr, to_window], redirectStandardIO=False)


def main(argv: list[str] | None = None) -> int:
    """Run the desktop client: `chatd-tk [--host HOST] [--port PORT] [--nick NICK]`."""
    args = parse_args(argv)
    try:
        password = read_password(args.password_file)
    except OSError as error:
        print(f"chatd-tk: cannot read the password file: {error}", file=sys.stderr)
        return 2
    try:
        root = tk.Tk(className="chatd")
    except tk.TclError as error:
        print(f"chatd-tk: cannot open a window: {error}", file=sys.stderr)
        return 1
    from twisted.internet import reactor as global_reactor

    reactor = cast(IChatReactor, global_reactor)
    window = ChatWindow(root, reactor)
    start_logging(window)
    window.start(args.host, args.port, args.nick, password)
    run(root, window, reactor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
