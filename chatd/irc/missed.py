"""What an identified IRC client missed, played back unasked (docs/irc.md, What a
SASL login or an attach replays).

One function for every way in: NickServ IDENTIFY (replay_after, with the
identify's answer), SASL at registration and an attach by SASL or IDENTIFY
(replay_on_login). What was missed is the model's (chatd.model.catch_up: after
each of the account's read markers); this spells it as the backfill is, a
chathistory batch to a client with batch, else NOTICEs from the server. A
client that asks with CHATHISTORY gets none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure

from chatd.config import HISTORY_MAX
from chatd.irc.caps import CHATHISTORY
from chatd.irc.history import HistorySession, PrivateConversation, replay
from chatd.irc.history import last_messages as _last
from chatd.model.catch_up import CatchUp, catch_up
from chatd.model.names import fold
from chatd.model.private_history import with_party
from chatd.net.bulk import newest_within
from chatd.store.interface import AccountRecord, Entry, HistoryUnavailable, Span

# The fewest bytes one target's playback may take, however many there are
# (as the line door's catch-up: chatd.line.catch_up).
SMALLEST_PART = 4096


def _missed(count: int) -> str:
    return f"Missed: {count} message{'' if count == 1 else 's'}"


def _missed_private(count: int) -> str:
    return f"Missed private: {count} message{'' if count == 1 else 's'}"


def _nothing_unavailable(failure: Failure) -> bytes:
    """History that cannot be read now: nothing played (the client did not ask)."""
    failure.trap(HistoryUnavailable)
    return b""


def replay_after(
    session: HistorySession,
    identified: Deferred[AccountRecord],
    every_room: bool = False,
) -> None:
    """After identifying, for a client that does not ask with CHATHISTORY:
    what came after each marker of the account, in each room it is in and in
    each private conversation, played back as the backfill is. Nothing if
    identify fails, nor to a connection not identified to it by then.

    NickServ IDENTIFY: rooms without a marker had their backfill at JOIN,
    nothing more for them. An attach's burst (every_room, replay_on_login)
    plays no backfill of its own: such a room, and one read to its end, get
    its latest --backfill messages here, so that none is played twice. All
    of it shares half the send queue, each target an equal part (at least
    SMALLEST_PART bytes), the newest kept, as the line door's catch-up.
    """
    if session.user is None or session.caps.has(CHATHISTORY):
        return
    fresh = min(session.server.config.backfill, HISTORY_MAX)
    budget = session.server.config.sendq // 2

    def fitted(
        share: int,
        name: str,
        entries: list[Entry],
        lead: Callable[[int], str],
        private: PrivateConversation | None = None,
    ) -> bytes:
        """entries as replayed, the newest that fit in share bytes."""

        def spell(kept: Sequence[Entry]) -> bytes:
            return replay(session, name, list(kept), lead, private)

        return newest_within(entries, share, spell) if entries else b""

    def latest(share: int, name: str) -> Deferred[bytes]:
        """A room's latest messages, as a JOIN's backfill plays them."""
        history = session.chat.history
        if history is None:
            return succeed(b"")
        read = history.select(fold(name), Span(fresh))
        spelled = read.addCallback(lambda found: fitted(share, name, found, _last))
        return spelled.addErrback(_nothing_unavailable)

    def spelled(found: CatchUp, record: AccountRecord) -> Deferred[bytes]:
        marked = session.chat.markers.get(fold(record.name), {})
        missed = [room for room in found.rooms if room.entries]
        missed = [room for room in missed if fold(room.name) in marked]
        # The rest of an attach's rooms: none had a backfill of its own.
        rest = [room for room in found.rooms if room not in missed]
        rest = rest if every_room and fresh else []
        targets = len(missed) + len(rest) + len(found.privates)
        share = max(SMALLEST_PART, budget // max(1, targets))
        parts: list[Deferred[bytes]] = []
        for room in found.rooms:
            if room in missed:
                parts.append(succeed(fitted(share, room.name, room.entries, _missed)))
            elif room not in rest:
                continue  # IDENTIFY: it had its backfill at JOIN
            elif fold(room.name) in marked:  # read to its end: its latest
                parts.append(latest(share, room.name))
            else:  # no marker: the catch-up's latest, as a JOIN's backfill
                parts.append(succeed(fitted(share, room.name, room.entries, _last)))
        for private in found.privates:
            party = with_party(session.accounts, record, private.name)
            said = fitted(share, private.name, private.entries, _missed_private, party)
            parts.append(succeed(said))
        joined = gatherResults(parts, consumeErrors=True)
        return joined.addCallback(b"".join)

    def then(record: AccountRecord) -> Deferred[bytes] | bytes:
        # The user now: an attach has made this connection another user's.
        user = session.user
        if user is None or fold(user.account) != fold(record.name):
            return b""  # not identified to it after all (too many devices)
        found = catch_up(session.accounts, user, record, HISTORY_MAX, fresh or 1)
        return found.addCallback(spelled, record)

    def failed(failure: Failure) -> bytes:
        return b""

    session.send_later(identified.addCallbacks(then, failed), b"")


def replay_on_login(session: HistorySession) -> None:
    """After a login with SASL, or an attach (SASL or NickServ IDENTIFY): the
    replay NickServ IDENTIFY gives (replay_after), every room of the user
    included (an attach's burst has no backfill of its own). Nothing for a
    client that asks with CHATHISTORY."""
    user = session.user
    if user is None or not user.account or session.caps.has(CHATHISTORY):
        return
    record = session.accounts.account(user.account)
    if record is not None:
        replay_after(session, succeed(record), every_room=True)
