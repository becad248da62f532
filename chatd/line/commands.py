"""The slash commands of docs/protocol.md: one table with arity and help, and handlers.

A handler gets the connection as a Session (what it needs of it, no more) and
the arguments already split and counted.
"""

from __future__ import annotations

from functools import partial

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatd.config import HISTORY_COUNT, HISTORY_MAX
from chatd.line import (
    account_commands,
    catch_up,
    kline_commands,
    rehash,
    room_commands,
    search,
    tag_commands,
)
from chatd.line.session import Command, Session
from chatd.line.wire import (
    away_lines,
    history_lines,
    line,
    private_history_lines,
    word_lines,
)
from chatd.model.away import away_members
from chatd.model.chat import Room, User, usable_history
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import LOBBY, clean_text, fold, normalize_name
from chatd.model.private_history import conversation_of, visible
from chatd.model.redaction import DELETION_COST
from chatd.model.redaction import delete as delete_message
from chatd.net.bulk import newest_within
from chatd.store.interface import Entry, HistoryUnavailable, IHistory, UnknownId

AWAY_LENGTH = 200  # characters of an away message kept (IRC's AWAYLEN too)
# Lists (USERS, ROOMS) are split so that no line we send is longer than this.
LIST_LINE_BUDGET = 512
# /rooms answers this many rooms at a time: at most about 14 KB (a room name
# is at most 129 bytes), so the answer fits any send queue, however many
# rooms there are, and costs the server a slice, not the whole list.
ROOMS_PER_PAGE = 100


def _text(text: str, what: str) -> str:
    """Refuse free text that is nothing but spaces.

    Control characters are already gone: LineConnection cleans every line first.
    """
    if not text.strip():
        raise ChatError(ErrorCode.BAD_ARGS, f"{what} is empty")
    return text


def nick(session: Session, args: list[str]) -> None:
    """/nick <new>: choose a nickname, or change it."""
    if session.awaiting_nick:
        session.register(args[0])
        return
    user = session.registered_user()
    old = user.nick
    session.chat.rename(user, args[0])
    if user.nick == old:
        session.send_info(f"You are already called {old}.")
    else:
        session.log.info("{old} is now {new}", old=old, new=user.nick)


def me(session: Session, args: list[str]) -> None:
    """/me <text>: an action in the current room."""
    session.chat.act(session.registered_user(), _text(args[0], "the action"))


def msg(session: Session, args: list[str]) -> None:
    """/msg <nick> <text>: a private message.

    To an away user, the sender also gets AWAY once per conversation
    (docs/protocol.md, Away; Chat.away_reply decides).
    """
    user, chat = session.registered_user(), session.chat
    chat.tell(user, args[0], _text(args[1], "message"))
    recipient = chat.users.get(fold(args[0]))
    if recipient is not None:
        away = chat.away_reply(user, recipient)
        if away:
            session.send(line("AWAY", recipient.nick, text=away))


def away(session: Session, args: list[str]) -> None:
    """/away [text]: away with text, or back (docs/protocol.md, Away)."""
    text = args[0].strip() if args else ""
    session.chat.set_away(session.registered_user(), text[:AWAY_LENGTH])


def join(session: Session, args: list[str]) -> None:
    """/join <#room> [<key>]: join a room and make it current.

    Its history follows JOIN, then its topic, if it has one.
    """
    key = args[1] if len(args) > 1 else None
    if key is not None and key.startswith("#"):
        raise ChatError(
            ErrorCode.BAD_ARGS,
            "one room at a time: /join <#room> [<key>] (a key does not start with #)",
        )
    user = session.registered_user()
    room, added = session.chat.join(user, args[0], key)
    if added:
        send_away_members(session, room, user)
        backfill(session, room)
        if room.rules.topic:
            session.send(room_commands.topic_line(room))
    else:
        session.send_info(f"You are already in {room.name}; it is your current room.")


def send_away_members(session: Session, room: Room, user: User) -> None:
    """Right after user's own JOIN: AWAY for each member of room already away,
    to this connection only (docs/protocol.md, Away on join)."""
    away = away_members([room], user)
    if away:
        session.send(away_lines(away))


def part(session: Session, args: list[str]) -> None:
    """/part [<#room>] [reason]: leave a room (default: the current one)."""
    room_name: str | None = None
    if args and args[0].startswith("#"):
        room_name, args = args[0], args[1:]
    reason = " ".join(args)
    session.chat.part(session.registered_user(), room_name, reason)


def who(session: Session, args: list[str]) -> None:
    """/who [<#room>]: the members of a room, in USERS lines.

    Charged by the lines answered (chatd.net.bulk).
    """
    user = session.registered_user()
    chat = session.chat
    # A secret room of others is none (chatd.model.permissions).
    room = chat.visible_room(user, args[0]) if args else chat.rooms[user.current]
    answer = word_lines("USERS", [room.name], room.nicks(), LIST_LINE_BUDGET)
    # The extension (docs/protocol.md): who runs the room and who is voiced,
    # when anyone is (a client resets both with each USERS answer).
    for verb, group in (("OPS", room.rules.ops), ("VOICES", room.rules.voiced)):
        if group:
            nicks = sorted((member.nick for member in group), key=fold)
            answer += word_lines(verb, [room.name], nicks, LIST_LINE_BUDGET)
    # And who of them is away (docs/protocol.md, Away on join), in join order.
    answer += [away_lines([member]) for member in away_members([room])]
    for data in answer:
        session.send(data)
    session.charge_answer(len(answer))


def _page_number(word: str, pages: int, total: int) -> int:
    """Read the page asked for by /rooms, or raise ChatError(BAD_ARGS)."""
    if not (word.isascii() and word.isdecimal()):
        raise ChatError(ErrorCode.BAD_ARGS, f"usage: {COMMANDS['rooms'].usage}")
    # A long run of digits is past the end anyway; int() need not read it.
    page = int(word) if len(word) <= 9 else 0
    if not 1 <= page <= pages:
        shown = word if len(word) <= 9 else word[:9] + "..."
        span = "page 1" if pages == 1 else f"pages 1 to {pages}"
        raise ChatError(
            ErrorCode.BAD_ARGS,
            f"there is no page {shown}: the {total} rooms fill {span}",
        )
    return page


def rooms(session: Session, args: list[str]) -> None:
    """/rooms [<page>]: rooms and their sizes in ROOMS lines, a page at a time.

    When every room fits on one page the answer is ROOMS lines only, as in
    docs/protocol.md; otherwise an INFO line follows, saying how to get the rest.
    """
    chat = session.chat
    # The secret rooms the asker may not see (chatd.model.permissions) are left out.
    hidden = chat.hidden_rooms(session.registered_user())
    total = len(chat.rooms) - len(hidden)
    pages = -(-total // ROOMS_PER_PAGE)
    page = _page_number(args[0], pages, total) if args else 1
    start = (page - 1) * ROOMS_PER_PAGE
    if hidden:  # rare: a slice of the rooms one may see, built for this answer
        keys = [key for key in chat.room_keys if key not in hidden]
        picked = [chat.rooms[key] for key in keys[start : start + ROOMS_PER_PAGE]]
        sizes = [(room.name, len(room.members)) for room in picked]
    else:
        sizes = chat.room_sizes(start, ROOMS_PER_PAGE)
    counts = [f"{name}:{size}" for name, size in sizes]
    for data in word_lines("ROOMS", [], counts, LIST_LINE_BUDGET):
        session.send(data)
    session.charge_answer(len(counts))  # a line's worth a room (chatd.net.bulk)
    if pages == 1:
        return
    end = start + len(counts)
    shown = f"Rooms {start + 1}-{end} of {total} (page {page} of {pages})"
    if page < pages:
        session.send_info(
            f"{shown}; {total - end} more: /rooms {page + 1} for the next page."
        )
    else:
        session.send_info(f"{shown}; that is the last page.")


# -- history (docs/protocol.md version 2) ---------------------------------------------


def _error_line(code: ErrorCode, text: str) -> bytes:
    return line("ERR", code.value, text=clean_text(text))


def _answer(entries: list[Entry], target: str, budget: int) -> bytes:
    """HISTORY lines and ENDHISTORY, the oldest left out past budget bytes.

    However many lines fit, the newest always goes; the count in ENDHISTORY
    says how many were sent, and the first id is where `before` goes on.
    """
    return newest_within(entries, budget, partial(history_lines, target))


def _read(
    history: IHistory,
    key: str,
    target: str,
    count: int,
    before: int | None,
    budget: int,
) -> Deferred[bytes]:
    """Read from history and render the answer as this door spells it."""
    return history.read(key, count, before).addCallback(_answer, target, budget)


def backfill(session: Session, room: Room) -> None:
    """After a newly made JOIN: the room's latest messages, to the joiner only.

    docs/protocol.md, History: right after the joiner's own JOIN line, oldest
    first, then ENDHISTORY; nothing at all for a room without history (or
    while history cannot be read: the joiner did not ask).
    """
    history = session.chat.history
    count = min(session.config.backfill, HISTORY_MAX)
    if (
        history is None
        or not count
        or history.reason is not None
        or not history.has_history(room.key)
    ):
        return
    answer = _read(history, room.key, room.name, count, None, _budget(session))

    def nothing_when_empty(data: bytes) -> bytes:
        return b"" if data.startswith(b"ENDHISTORY ") else data

    def nothing_when_unavailable(failure: Failure) -> bytes:
        failure.trap(HistoryUnavailable)
        return b""

    answer.addCallbacks(nothing_when_empty, nothing_when_unavailable)
    session.send_later(answer, b"")


def _budget(session: Session) -> int:
    """Bytes one history answer may take: half the send queue, so it never fills it."""
    return session.config.sendq // 2


def _is_target(word: str) -> bool:
    """Whether the first of /history's arguments says what to read.

    A room, or (docs/protocol.md, Private history) a nickname or account:
    anything but a count or the word `before`, which starts the `before <id>`
    clause as it always did.
    """
    return not (word.isascii() and word.isdecimal()) and word.lower() != "before"


def _history_args(args: list[str]) -> tuple[str | None, int, int | None]:
    """Read [<#room> | <nick>] [<count>] [before <id>], or raise ChatError(BAD_ARGS)."""
    usage = f"usage: {COMMANDS['history'].usage}"
    target = args.pop(0) if args and _is_target(args[0]) else None
    count = HISTORY_COUNT
    if args and args[0].isascii() and args[0].isdecimal():
        word = args.pop(0)
        # A long run of digits is past the maximum anyway; int() need not read it.
        count = min(int(word) if len(word) <= 9 else HISTORY_MAX, HISTORY_MAX)
        if count < 1:
            raise ChatError(ErrorCode.BAD_ARGS, "the count must be at least 1")
    before: int | None = None
    if args and args[0].lower() == "before":
        if len(args) != 2:
            raise ChatError(ErrorCode.BAD_ARGS, usage)
        word = args[1]
        if not (word.isascii() and word.isdecimal() and len(word) <= 19):
            raise ChatError(ErrorCode.BAD_ARGS, f"{word} is not a message id")
        before, args = int(word), []
    if args:
        raise ChatError(ErrorCode.BAD_ARGS, usage)
    return target, count, before


def history(session: Session, args: list[str]) -> None:
    """/history [<#room> | <nick>] [<count>] [before <id>]: a room's kept messages.

    Who may read a room's is the model's to say (Chat.may_read): its
    members, and others in a public room that does not ban them; a room that
    does not exist now, or a secret room of others, has nothing to read. A
    nickname or account asks for one's private conversation with it instead
    (private_history).
    """
    user = session.registered_user()
    chat = session.chat
    room_name, count, before = _history_args(args)
    session.charge_answer(count)  # by the lines asked for, before the work
    if room_name is not None and not room_name.startswith("#"):
        private_history(session, room_name, count, before)
        return
    if room_name is None:
        current = chat.rooms.get(user.current)
        room_name = current.name if current is not None else LOBBY
    room = chat.may_read(user, room_name)
    # None: no such room now, or a secret room of others: nothing to read,
    # as for a room that never had history (docs/protocol.md: ENDHISTORY 0).
    key = room.key if room is not None else ""
    target = room.name if room is not None else normalize_name(room_name)
    store = usable_history(chat)
    if room is None or not store.has_history(key):
        if before is not None:
            raise ChatError(
                ErrorCode.BAD_ARGS, f"{before} is not a message id of {target}"
            )
        session.send(history_lines(target, []))  # never had any: no trip
        return
    answer = _read(store, key, target, count, before, _budget(session))

    def refused(failure: Failure) -> bytes:
        if failure.check(UnknownId):
            return _error_line(
                ErrorCode.BAD_ARGS, f"{before} is not a message id of {target}"
            )
        failure.trap(HistoryUnavailable)
        reason = failure.value.reason
        return _error_line(ErrorCode.NO_HISTORY, f"history is unavailable: {reason}")

    answer.addErrback(refused)
    session.send_later(answer, _LATE)


_LATE = _error_line(
    ErrorCode.NO_HISTORY, "history is unavailable: it did not answer in time"
)


def private_history(
    session: Session, name: str, count: int, before: int | None
) -> None:
    """/history <nick-or-account> [<count>] [before <id>]: a private conversation.

    docs/protocol.md, Private history: only the account the asker is
    identified to reads, its conversation with the party name means
    (chatd.model.private_history).
    """
    user = session.registered_user()
    store = usable_history(session.chat)
    found = conversation_of(session.accounts, user, name)
    target, budget = normalize_name(name), _budget(session)
    read = store.read_private(found.me, found.other, count, before)
    answer = read.addCallback(
        lambda entries: newest_within(
            visible(entries, found.start),
            budget,
            partial(private_history_lines, target),
        )
    )

    def refused(failure: Failure) -> bytes:
        if failure.check(UnknownId):
            return _error_line(
                ErrorCode.BAD_ARGS,
                f"{before} is not a message id of your conversation with {target}",
            )
        failure.trap(HistoryUnavailable)
        reason = failure.value.reason
        return _error_line(ErrorCode.NO_HISTORY, f"history is unavailable: {reason}")

    answer.addErrback(refused)
    session.send_later(answer, _LATE)


def ids(session: Session, args: list[str]) -> None:
    """/ids [on|off]: an ID line before each room message (an opt-in extension).

    docs/protocol.md, Message ids: a client that keeps a conversation across
    reconnects needs the id of every message it saw, to ask for what it
    missed; version 1 clients never send /ids and never see ID.
    """
    word = args[0].lower() if args else "on"
    if word not in ("on", "off"):
        raise ChatError(ErrorCode.BAD_ARGS, f"usage: {COMMANDS['ids'].usage}")
    on = word == "on"
    session.show_ids(on)
    if on:
        session.send_info(
            "Message ids are on: ID <room> <id> <time> comes before each MSG "
            "and ACTION in a room, and ID <nick> <id> <time> before each kept PRIV."
        )
    else:
        session.send_info("Message ids are off.")


def delete(session: Session, args: list[str]) -> None:
    """/delete <#room | nick> <id> [reason]: delete a kept message.

    docs/protocol.md, Deleting messages: one's own, or any of a room one
    runs; who may is the model's (chatd.model.redaction). The answer is an
    INFO once it is done; clients with /ids on also get the DELETED line
    everyone there gets.
    """
    user = session.registered_user()
    target, word = args[0], args[1]
    reason = args[2].strip() if len(args) > 2 else ""
    session.charge_answer(DELETION_COST)  # before the work, as /history
    # Held first, so that the INFO comes before the DELETED line whether the
    # store answers at once or later.
    answer: Deferred[bytes] = Deferred()
    session.send_later(answer, _LATE)

    def said(shown: str) -> bytes:
        return line("INFO", text=f"Deleted message {word} of {shown}.")

    def refused(failure: Failure) -> bytes:
        failure.trap(ChatError)
        error = failure.value
        return _error_line(error.code, error.text)

    try:
        done = delete_message(
            session.chat, session.accounts, user, target, word, reason
        )
    except ChatError as error:
        answer.callback(_error_line(error.code, error.text))
        return
    done.addCallbacks(said, refused).chainDeferred(answer)


def help_(session: Session, args: list[str]) -> None:
    """/help: INFO lines describing the commands."""
    session.send_info("Type a line to talk in your current room. Commands:")
    for command in COMMANDS.values():
        session.send_info(f"  {command.usage:<24} {command.summary}")
    session.send_info("Start a message with // to send a line that begins with /.")


def quit_(session: Session, args: list[str]) -> None:
    """/quit [reason]: leave the chat."""
    session.quit_chat(args[0].strip() if args else "")


# fmt: off
COMMANDS: dict[str, Command] = {
    "nick": Command(nick, "/nick <new>", "change your nickname", 1, 1,
                    before_nick=True),
    "me": Command(me, "/me <text>", "act in your current room", 1, 1, text=True),
    "msg": Command(msg, "/msg <nick> <text>", "send a private message", 2, 2,
                   text=True),
    "join": Command(join, "/join <#room> [<key>]",
                    "join a room (created if new) and make it current", 1, 2),
    "part": Command(part, "/part [<#room>] [reason]",
                    "leave a room (default: the current one)", 0, 2, text=True),
    "who": Command(who, "/who [<#room>]",
                   "list a room's members (default: the current one)", 0, 1),
    "rooms": Command(rooms, "/rooms [<page>]",
                     f"list rooms and their sizes, {ROOMS_PER_PAGE} a page", 0, 1),
    "history": Command(history,
                       "/history [<#room> | <nick>] [<count>] [before <id>]",
                       f"a room's latest messages (default: the current room, "
                       f"{HISTORY_COUNT}; at most {HISTORY_MAX}), or your private "
                       "ones with someone's account", 0, 4),
    "search": Command(search.search, search.USAGE,
                      "find kept messages with every word, newest first", 1, 1,
                      text=True),
    "ids": Command(ids, "/ids [on|off]",
                   "put an ID line before each room message (for clients)", 0, 1,
                   before_nick=True),
    "delete": Command(delete, "/delete <#room | nick> <id> [reason]",
                      "delete a kept message: yours, or any in a room you run",
                      2, 3, text=True),
    "read": Command(catch_up.read, "/read <#room | nick> <id>",
                    "mark a room or private conversation read up to <id> "
                    "(identified users)", 2, 2),
    # Typing, reactions and replies (chatd.line.tag_commands).
    "tags": Command(tag_commands.tags, "/tags [on|off]",
                    "show typing, reactions and replies (for clients)", 0, 1,
                    before_nick=True),
    "typing": Command(tag_commands.typing, "/typing <#room|nick> <state>",
                      "say you are typing: active, paused or done", 2, 2),
    "react": Command(tag_commands.react, "/react <#room|nick> <id> <reaction>",
                     "react to a message (an emoji or a short text)", 3, 3,
                     text=True),
    "reply": Command(tag_commands.reply, "/reply <#room|nick> <id> <text>",
                     "answer a message, naming its id", 3, 3, text=True),
    # Rooms people run (chatd.line.room_commands).
    "topic": Command(room_commands.topic, "/topic [<#room>] [<text> | -]",
                     "show or set the topic (- clears it)", 0, 2, text=True),
    "op": Command(room_commands.op, "/op [<#room>] <nick>",
                  "make someone an operator of the room", 1, 2),
    "deop": Command(room_commands.deop, "/deop [<#room>] <nick>",
                    "take operator status away (yours too)", 1, 2),
    "voice": Command(room_commands.voice, "/voice [<#room>] <nick>",
                     "let someone speak in a moderated room", 1, 2),
    "devoice": Command(room_commands.devoice, "/devoice [<#room>] <nick>",
                       "take the voice away", 1, 2),
    "kick": Command(room_commands.kick, "/kick [<#room>] <nick> [reason]",
                    "put someone out of the room", 1, 3, text=True),
    "ban": Command(room_commands.ban, "/ban [<#room>] <nick|mask|account:name>",
                   "keep someone out of the room, and quiet in it", 1, 2),
    "unban": Command(room_commands.unban, "/unban [<#room>] <nick|mask>",
                     "lift a ban", 1, 2),
    "bans": Command(room_commands.bans, "/bans [<#room>]",
                    "list the room's bans", 0, 1),
    "invite": Command(room_commands.invite, "/invite <nick> [<#room>]",
                      "invite someone (into an invite-only room too)", 1, 2),
    "mode": Command(room_commands.mode, "/mode [<#room>] [<+-modes> [args]]",
                    "show or change the room's modes: i k l m n s t o v b",
                    0, 8),
    "kill": Command(room_commands.kill, "/kill <nick> [reason]",
                    "disconnect someone (server operators)", 1, 2, text=True),
    "rehash": Command(rehash.rehash, "/rehash",
                      "reload the server's configuration (server operators)"),
    # Server bans (chatd.line.kline_commands).
    "kline": Command(kline_commands.kline, "/kline [<duration>] <mask> [reason]",
                     "ban from the server (server operators)", 1, 3, text=True),
    "unkline": Command(kline_commands.unkline, "/unkline <mask>",
                       "lift a server ban", 1, 1),
    "klines": Command(kline_commands.klines, "/klines", "list the server bans"),
    # Accounts (chatd.line.account_commands).
    "register": Command(account_commands.register,
                        "/register <password> <password> | /register [<#room>]",
                        "register your nickname (password twice), or a room you "
                        "run", 0, 2),
    "identify": Command(account_commands.identify, "/identify [<nick>] <password>",
                        "prove a registered nickname is yours (at the nickname "
                        "prompt: log in, from any device)", 1, 2, before_nick=True),
    # Several devices (docs/protocol.md, Devices (version 3)).
    "away": Command(away, "/away [text]", "mark yourself away (no text: back)",
                    0, 1, text=True),
    "always-on": Command(account_commands.always_on, "/always-on on|off",
                         "stay in your rooms while no device is connected", 1, 1),
    "password": Command(account_commands.password, "/password <new> <new>",
                        "give your account a new password", 2, 2),
    "unregister": Command(account_commands.unregister,
                          "/unregister <password> | /unregister <#room>",
                          "drop your account, or a room's registration", 1, 1),
    "resetpass": Command(account_commands.resetpass,
                         "/resetpass <account> <password>",
                         "give an account a new password (server operators)", 2, 2),
    "dropaccount": Command(account_commands.dropaccount, "/dropaccount <account>",
                           "drop someone's account (server operators)", 1, 1),
    "help": Command(help_, "/help", "show this help", before_nick=True),
    "quit": Command(quit_, "/quit [reason]", "leave the chat", 0, 1, text=True,
                    before_nick=True),
}
# fmt: on
