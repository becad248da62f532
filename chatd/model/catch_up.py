"""Checking a /read, and the catch-up a device is sent when it identifies.

docs/protocol.md, Read markers and catch-up. Every door asks these, in the
same words: what a read marker may name (a room the user may read, or the
other side of a private conversation of its account), whether an id is one
of that target's messages, and what an identified device is sent at once:
its account's markers, then what it missed in each room it is in and in
each private conversation. A door only spells the answer (the line door's
chatd.line.catch_up, IRC's chatd.irc.markers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from twisted.internet import defer
from twisted.python.failure import Failure

from chatd.config import CATCH_UP_CONVERSATIONS, HISTORY_COUNT, HISTORY_MAX
from chatd.model.accounts import Accounts
from chatd.model.chat import User, usable_history
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold, nick_problem, normalize_name
from chatd.model.private_history import conversation_of, visible
from chatd.store.interface import (
    NICK_PARTY,
    AccountRecord,
    Entry,
    HistoryUnavailable,
    IHistory,
    Marker,
    Span,
    id_at,
    nick_party,
)


@dataclass(frozen=True, slots=True)
class ReadTarget:
    """What a read marker names: its key, how it is shown, and whose it is.

    key: a room's folded name, or the other party of a private conversation;
    start: for a conversation, the time (ms) before which messages are an
    earlier owner's (chatd.model.private_history); None for a room.
    """

    key: str
    name: str
    account: AccountRecord | None  # None: a user not identified (IRC only)
    me: str = ""  # the reader's party, for a conversation
    start: int | None = None

    def select(self, history: IHistory, span: Span) -> defer.Deferred[list[Entry]]:
        """The target's messages in span, none of an earlier owner's."""
        if self.start is None:
            return history.select(self.key, span)
        start = self.start
        read = history.select_private(self.me, self.key, span)
        return read.addCallback(lambda entries: visible(entries, start))


def read_target(
    accounts: Accounts, user: User, name: str, session: bool = False
) -> ReadTarget:
    """What user's read marker for name (a room or a nickname) is of.

    not-identified: user has no account (unless session: IRC keeps markers
    for the connection of a user not identified, by the nickname; the line
    door does not); a room user may not read (or that does not exist now) is
    bad-args, as an id that is not its own would be.
    """
    chat = accounts.chat
    mine = accounts.account(user.account) if user.account else None
    if mine is None and not (session and not user.account):
        raise ChatError(
            ErrorCode.NOT_IDENTIFIED,
            "read markers are kept only for identified users; "
            "/identify [<nick>] <password> first",
        )
    if not name.startswith("#"):
        if mine is None:
            shown = normalize_name(name)
            problem = nick_problem(shown, frozenset())
            if problem is not None:
                raise ChatError(ErrorCode.NICK_INVALID, f"{shown}: {problem}")
            return ReadTarget(nick_party(fold(shown)), shown, None)
        found = conversation_of(accounts, user, name)
        return ReadTarget(found.other, found.name, mine, found.me, found.start)
    room = chat.may_read(user, name)
    if room is None:
        raise ChatError(ErrorCode.BAD_ARGS, f"{name}: no such room to read")
    return ReadTarget(room.key, room.name, mine)


def check_read(
    accounts: Accounts, user: User, name: str, msg_id: int
) -> defer.Deferred[tuple[ReadTarget, Entry]]:
    """The target of /read name msg_id and its message msg_id, or a ChatError.

    bad-args when msg_id is not one of the target's messages.
    """
    try:
        target = read_target(accounts, user, name)
        history = usable_history(accounts.chat)
    except ChatError as error:
        return defer.fail(error)
    span = Span(1, after=msg_id - 1, before=msg_id + 1)

    def found(entries: list[Entry]) -> tuple[ReadTarget, Entry]:
        if not entries or entries[0].id != msg_id:
            raise ChatError(
                ErrorCode.BAD_ARGS, f"{msg_id} is not a message id of {target.name}"
            )
        return target, entries[0]

    return target.select(history, span).addCallback(found).addErrback(_unavailable)


def position_at(millis: int) -> int:
    """The marker id of a time (ms): after every message received up to and
    including that millisecond, before any received later (id_at)."""
    return id_at(millis + 1) - 1


def _unavailable(failure: Failure) -> Failure:
    """A store that cannot answer now is no-history, as /history says."""
    if failure.check(HistoryUnavailable):
        reason = failure.value.reason
        raise ChatError(ErrorCode.NO_HISTORY, f"history is unavailable: {reason}")
    return failure


def mark(accounts: Accounts, user: User, target: ReadTarget, entry: Entry) -> None:
    """Move user's account's marker for target to entry (Chat.mark_read)."""
    accounts.chat.mark_read(user, target.key, target.name, entry.id, entry.time)


# -- the catch-up ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Missed:
    """What one target has after its marker: name as shown, entries oldest first."""

    name: str
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a device is sent right after it identifies, in this order."""

    markers: list[Marker] = field(default_factory=list)
    rooms: list[Missed] = field(default_factory=list)
    privates: list[Missed] = field(default_factory=list)


def catch_up(
    accounts: Accounts,
    user: User,
    account: AccountRecord,
    most: int = HISTORY_MAX,
    fresh: int = HISTORY_COUNT,
) -> defer.Deferred[CatchUp]:
    """The catch-up of user, identified to account (docs/protocol.md).

    The account's markers (oldest read first); then, for each room user is
    in (in the order joined), its messages after the marker: the latest most
    of them, the latest fresh where there is no marker; then each private
    conversation with messages after its marker (without a marker: with a
    last message the account did not send itself; the CATCH_UP_CONVERSATIONS
    latest of those), latest message last. History that cannot be read now
    leaves the rooms and conversations out: the markers still come.
    """
    chat = accounts.chat
    key = fold(account.name)
    kept = dict(chat.markers.get(key, {}))
    markers = sorted(kept.values(), key=lambda marker: marker.id)
    history = chat.history
    if history is None or history.reason is not None:
        return defer.succeed(CatchUp(markers))
    rooms = list(user.rooms.values())
    reads: list[defer.Deferred[list[Entry]]] = []
    for room in rooms:
        marker = kept.get(room.key)
        span = Span(fresh) if marker is None else Span(most, after=marker.id)
        reads.append(history.select(room.key, span))

    def privates(latest: dict[str, Entry]) -> defer.Deferred[list[Missed]]:
        wanted: list[tuple[Entry, ReadTarget, Span]] = []
        unmarked = 0
        for other, last in sorted(
            latest.items(), key=lambda item: item[1].id, reverse=True
        ):
            marker = kept.get(other)
            if marker is None:
                if last.nick == account.name or unmarked >= CATCH_UP_CONVERSATIONS:
                    continue
                unmarked += 1
                span = Span(fresh)
            elif last.id > marker.id:
                span = Span(most, after=marker.id)
            else:
                continue
            wanted.append((last, _party(accounts, account, key, other, marker), span))
        wanted.reverse()  # the latest conversation last
        asked = [target.select(history, span) for _, target, span in wanted]

        def named(found: list[list[Entry]]) -> list[Missed]:
            return [
                Missed(target.name, entries)
                for (_, target, _), entries in zip(wanted, found, strict=True)
                if entries
            ]

        return defer.gatherResults(asked, consumeErrors=True).addCallback(named)

    read_rooms: defer.Deferred[list[list[Entry]]] = defer.gatherResults(
        reads, consumeErrors=True
    )

    def then_privates(entries: list[list[Entry]]) -> defer.Deferred[CatchUp]:
        def done(missed: list[Missed]) -> CatchUp:
            got = zip(rooms, entries, strict=True)
            return CatchUp(markers, [Missed(room.name, e) for room, e in got], missed)

        return history.private_latest(key).addCallback(privates).addCallback(done)

    def unread(failure: Failure) -> CatchUp:
        if failure.check(defer.FirstError):
            failure = cast(defer.FirstError, failure.value).subFailure
        failure.trap(HistoryUnavailable)
        return CatchUp(markers)

    return read_rooms.addCallback(then_privates).addErrback(unread)


def _party(
    accounts: Accounts,
    account: AccountRecord,
    me: str,
    other: str,
    marker: Marker | None,
) -> ReadTarget:
    """The conversation of account (party me) with party other, as a target."""
    if other.startswith(NICK_PARTY):
        name = marker.name if marker is not None else other[len(NICK_PARTY) :]
        return ReadTarget(other, name, account, me, account.created)
    theirs = accounts.store.accounts.get(other)
    if theirs is None:  # dropped: only what was said with it after we both began
        name = marker.name if marker is not None else other
        return ReadTarget(other, name, account, me, account.created)
    start = max(account.created, theirs.created)
    return ReadTarget(other, theirs.name, account, me, start)


def fork(answer: defer.Deferred[AccountRecord]) -> defer.Deferred[AccountRecord]:
    """Another Deferred that fires as answer does (an identify's, for its
    catch-up after the answer); answer goes on unchanged."""
    forked: defer.Deferred[AccountRecord] = defer.Deferred()

    def pass_on(result: AccountRecord | Failure) -> AccountRecord | Failure:
        if isinstance(result, Failure):
            forked.errback(result)
        else:
            forked.callback(result)
        return result

    answer.addBoth(pass_on)
    return forked
