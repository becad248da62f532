"""History in Redis streams, where every node of a cluster reads the same.

One stream per room, under `chatd:history:<folded room>`; each message is one
entry whose stream id spells its chatd id exactly: the id is a time in
microseconds (Stamps), so message id N is stream id `N // 1000`-`N % 1000`
and back, and Span's bounds and id_at become XRANGE/XREVRANGE bounds. An
entry's fields are kind, nick and text, and time (milliseconds) only when it
is not id // 1000. The set `chatd:history:rooms` names the rooms that have
had history. docs/cluster.md, "History in Redis", shows the layout.

Everything goes over one connection, in the order asked: a write is not
waited for, so a read sent after it sees it (Redis answers one connection's
commands in order). The messages kept in one reactor turn go out together,
as one script (WRITE) at the end of the turn or before any other command,
whichever is first: one command and one answer for a read of a cluster's log
rather than one per message. While Redis cannot be reached, messages are
dropped, reads fail with HistoryUnavailable and reason says why; txredisapi
reconnects by itself (with back-off) and history works again once it has.

Retention follows --history-days as the SQLite store does: each write trims
its room's stream to about the last days (XADD MINID ~, cheap), and once an
hour every room is trimmed exactly (XTRIM MINID), rooms nobody speaks in
included. The bound on a room's count (--history-room-max, Bound.room) is
kept the same way: each write trims to about it (XTRIM MAXLEN ~), the hour
exactly (XTRIM MAXLEN). There is no total bound here (Bound.total), nor one
per account (Bound.account): streams are not counted together (docs/running.md,
How much history).

Private conversations (docs/protocol.md, Private history) are streams too,
one per pair of parties, kept, read and trimmed as a room's: their "room" is
`@<low> <high>` (private_room), which no room name can be (rooms start with
#, and names have no spaces). The set `chatd:history:party:<party>` names the
other parties of each, for TARGETS and for forgetting a dropped account.

Deleting a message (docs/protocol.md, Deleting messages): a stream entry
cannot be changed, and XDEL only flags it (its bytes stay in the stream's
node, and so in an RDB file saved after), so the room's stream is written
again without it (DELETE: one script, as long as the room is) and its id
goes into the sorted set `chatd:history:deleted:<room>`, the tombstones, so
that it still pages as a `before`. An entry's author is its field "author".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.store.interface import (
    DEFAULT_BOUND,
    Bound,
    Entry,
    Found,
    HistoryUnavailable,
    IHistory,
    Kind,
    Search,
    Span,
    Stamps,
    UnknownId,
    conversation,
    millis,
)
from chatd.store.resp import LogLink
from chatd.store.scan import scan_search

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTCP

PREFIX = "chatd:history:"
ROOMS_KEY = PREFIX + "rooms"  # a set: every room that has had history
PRUNE_EVERY = 3600.0  # seconds between exact trims of every room
CONNECT_TIMEOUT = 5.0  # seconds for one connection attempt
REPLY_TIMEOUT = 10.0  # seconds Redis may take to answer before the link is dropped
CLOSE_WAIT = 10.0  # seconds close() waits for Redis to take the last writes
DAY = 86400.0
# On a cluster the node that keeps a message writes it when it reads it from
# the log, as the others deliver it: a deletion asked on another node right
# away can look before that write has landed. An id younger than this many
# seconds that is not there yet is looked for again, every FRESH_RETRY
# seconds, until it is this old (author).
FRESH_WINDOW = 2.0
FRESH_RETRY = 0.05
UNREACHABLE = "the history server (Redis) cannot be reached"
CONNECTING = "connecting to the history server (Redis)"

T = TypeVar("T")


def _execute(link: Any, *command: object) -> defer.Deferred[Any]:
    """Write one command on link now; a failure to write is the answer's."""
    try:
        return link.execute_command(*command)
    except Exception as error:  # not connected after all, say
        return defer.fail(error)


def room_key(room: str) -> str:
    """The key of a room's stream (room is folded)."""
    return PREFIX + "room:" + room


def tombstones_key(room: str) -> str:
    """The key of a room's tombstones: the ids of its deleted messages."""
    return PREFIX + "deleted:" + room


def private_room(one: str, other: str) -> str:
    """The pseudo-room of the private conversation between two parties."""
    low, high = conversation(one, other)
    return f"@{low} {high}"


def party_key(party: str) -> str:
    """The key of the set of the parties party has a conversation with."""
    return PREFIX + "party:" + party


# Forget every conversation of a party in one command, so that it takes its
# turn among the link's commands: a read sent after it never sees them.
# KEYS[1]: the party's set; ARGV: prefix, party.
FORGET = """
local others = redis.call('SMEMBERS', KEYS[1])
local gone = 0
for _, other in ipairs(others) do
  local low, high = ARGV[2], other
  if high < low then low, high = high, low end
  local room = '@' .. low .. ' ' .. high
  gone = gone + redis.call('XLEN', ARGV[1] .. 'room:' .. room)
  redis.call('DEL', ARGV[1] .. 'room:' .. room)
  redis.call('DEL', ARGV[1] .. 'deleted:' .. room)
  redis.call('SREM', ARGV[1] .. 'rooms', room)
  redis.call('SREM', ARGV[1] .. 'party:' .. other, ARGV[2])
end
redis.call('DEL', KEYS[1])
return gone
"""

# Delete one message (RedisHistory.delete): the stream is copied without it,
# in pieces, and the copy takes its name and its last id; its id becomes a
# tombstone. KEYS[1]: the stream; KEYS[2]: a scratch key; KEYS[3]: the
# tombstones. ARGV[1]: the entry's stream id; ARGV[2]: the message id.
DELETE = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
if redis.call('XLEN', KEYS[1]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[1])  -- its node goes with it
  return 1
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last = nil
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
redis.call('DEL', KEYS[2])
local from = '-'
while true do
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
  if #chunk == 0 then break end
  for _, entry in ipairs(chunk) do
    if entry[1] ~= ARGV[1] then
      redis.call('XADD', KEYS[2], entry[1], unpack(entry[2]))
    end
  end
  from = '(' .. chunk[#chunk][1]
end
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('XSETID', KEYS[1], last)
return 1
"""

# Keep a turn's messages (RedisHistory._write_kept), in order; one refused
# (an id below its stream's last) does not stop the others.
# KEYS: the streams, one per message; ARGV[1]: the MINID to trim to, or "";
# ARGV[2]: the most entries a stream keeps (Bound.room), or ""; then per
# message its stream id, its count of field words, and those words. Each
# stream written is trimmed to about that many once, at the end (MAXLEN ~:
# whole nodes of the stream, so up to a node's worth, 100, more stay; the
# hourly prune trims exactly). Answers {refused, the last refusal's text}.
WRITE = """
local minid, maxlen = ARGV[1], ARGV[2]
local at = 3
local refused, why = 0, ''
local written = {}
for k = 1, #KEYS do
  written[KEYS[k]] = true
  local words = tonumber(ARGV[at + 1])
  local command = {'XADD', KEYS[k]}
  if minid ~= '' then
    command[3], command[4], command[5] = 'MINID', '~', minid
  end
  command[#command + 1] = ARGV[at]
  for w = at + 2, at + 1 + words do command[#command + 1] = ARGV[w] end
  local answer = redis.pcall(unpack(command))
  if type(answer) == 'table' and answer.err then
    refused, why = refused + 1, answer.err
  end
  at = at + 2 + words
end
if maxlen ~= '' then
  for key in pairs(written) do
    redis.call('XTRIM', key, 'MAXLEN', '~', maxlen)
  end
end
return {refused, why}
"""


def stream_id(msg_id: int) -> str:
    """The stream id that spells a message id: milliseconds, then the rest."""
    return f"{msg_id // 1000}-{msg_id % 1000}"


def message_id(entry_id: str) -> int:
    """The message id a stream id spells (the inverse of stream_id)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms) * 1000 + int(seq)


def parse_url(url: str) -> tuple[str, int, int]:
    """Host, port and database number of a redis://HOST:PORT/DB URL.

    ValueError, with a sentence a person can act on, for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"{url!r} is not a redis://HOST:PORT/DB URL")
    try:
        port = parts.port or 6379
        path = parts.path.strip("/")
        db = int(path) if path else 0
    except ValueError:
        raise ValueError(f"{url!r}: the port and the database are numbers") from None
    if db < 0:
        raise ValueError(f"{url!r}: the database is a number from 0")
    return parts.hostname, port, db


def endpoint_for(reactor: IReactorTCP, host: str, port: int) -> IStreamClientEndpoint:
    """A client endpoint for host: an address as it is, a name through DNS."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
    if address.version == 6:
        return TCP6ClientEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
    return TCP4ClientEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)


@implementer(IHistory)
class RedisHistory:
    """IHistory in Redis streams, one per room, over one txredisapi connection.

    Built around a txredisapi RedisFactory that connects (and reconnects) by
    itself: see connect() for the usual way in. shared=True (a cluster) makes
    has_history say True for any room, as another node may have written it.
    """

    log = Logger()

    def __init__(
        self,
        factory: Any,  # txredisapi.RedisFactory, connecting already
        clock: IReactorTime,
        keep_days: float = 30.0,
        shared: bool = True,
        where: str = "Redis",
        bound: Bound = DEFAULT_BOUND,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.keep_days = keep_days  # 0: keep for ever
        self.bound = bound  # per room and conversation; no total here
        self.shared = shared
        self.where = where  # for the log: the URL
        self.reason: str | None = CONNECTING
        self.stamps = Stamps()
        self.dropped = 0  # messages not kept: Redis away or refused them
        self._rooms: set[str] = set()
        self._link: Any = None  # the connected txredisapi protocol, or None
        self._closing = False
        self._ready: defer.Deferred[RedisHistory] = defer.Deferred()
        self._refused: str | None = None  # the last write error logged
        self._pruner: LoopingCall | None = None
        # This turn's messages, not sent yet: (stream key, stream id, fields).
        self._kept: list[tuple[str, str, list[object]]] = []
        self._write_call: Any = None
        if keep_days or bound.room:
            self._pruner = LoopingCall(self._prune_hourly)
            self._pruner.clock = clock
        self._wait_for_link()

    @classmethod
    def start(
        cls,
        reactor: IReactorTCP,
        url: str,
        clock: IReactorTime,
        keep_days: float = 30.0,
        shared: bool = True,
        bound: Bound = DEFAULT_BOUND,
    ) -> RedisHistory:
        """A RedisHistory for url at once; history works once Redis answers.

        ValueError for a URL that is not redis://HOST:PORT/DB.
        """
        host, port, db = parse_url(url)
        factory = txredisapi.RedisFactory(
            f"{host}:{port}",
            db,
            1,  # one connection: writes and reads in one order
            isLazy=True,
            replyTimeout=REPLY_TIMEOUT,
            convertNumbers=False,  # a text of digits stays a text
        )
        factory.protocol = LogLink  # whole replies at once, TCP_NODELAY
        factory.startConnecting(endpoint_for(reactor, host, port))
        return cls(
            factory, clock, keep_days=keep_days, shared=shared, where=url, bound=bound
        )

    @classmethod
    def connect(
        cls,
        reactor: IReactorTCP,
        url: str,
        clock: IReactorTime,
        keep_days: float = 30.0,
        shared: bool = True,
        bound: Bound = DEFAULT_BOUND,
    ) -> defer.Deferred[RedisHistory]:
        """Start a RedisHistory for url; fires with it once it works.

        It waits as long as Redis takes to answer (txredisapi keeps trying):
        add a timeout where a caller must not wait for ever.
        """
        return cls.start(reactor, url, clock, keep_days, shared, bound).ready()

    def ready(self) -> defer.Deferred[RedisHistory]:
        """Fires with this store once it has first reached Redis."""
        if self._ready.called:
            return defer.succeed(self)
        waiting: defer.Deferred[RedisHistory] = defer.Deferred()

        def chain(history: RedisHistory) -> RedisHistory:
            waiting.callback(history)
            return history

        self._ready.addCallback(chain)
        return waiting

    def close(self) -> defer.Deferred[None]:
        """Let Redis take every write sent so far, then close the connection."""
        if self._closing:
            return defer.succeed(None)
        self._closing = True
        if self._pruner is not None and self._pruner.running:
            self._pruner.stop()
        self._write_kept()
        link, self._link = self._link, None
        self.reason = "history is closed"
        flushed: defer.Deferred[object] = defer.succeed(None)
        if link is not None:
            # Its answer comes after those of every write before it.
            flushed = self._send(link, "PING")
            flushed.addErrback(lambda failure: None)
            timer = self.clock.callLater(CLOSE_WAIT, flushed.cancel)
            flushed.addBoth(lambda _: timer.cancel() if timer.active() else None)
        done: defer.Deferred[None] = flushed.addBoth(
            lambda _: self.factory.disconnect()
        )
        return done.addBoth(lambda _: None)

    # -- the link to Redis -------------------------------------------------------

    def _wait_for_link(self) -> None:
        waiting = self.factory.getConnection(peek=True)
        waiting.addCallbacks(self._linked, self._not_linked)

    def _not_linked(self, failure: Failure) -> None:
        if not self._closing:  # only a closed factory gives up
            self.log.failure(
                "history: no connection to {where}", failure, where=self.where
            )

    def _linked(self, link: Any) -> defer.Deferred[None] | None:
        """A connection is up: learn the rooms and the last id, then serve."""
        if self._closing:
            return None
        link.whenDisconnected().addCallback(self._unlinked)
        asking = self._send(link, "SMEMBERS", ROOMS_KEY)

        def rooms_known(members: list[str]) -> defer.Deferred[None]:
            self._rooms.update(members)
            lasts = [
                self._send(link, "XREVRANGE", room_key(r), "+", "-", "COUNT", 1)
                for r in members
            ]
            return defer.gatherResults(lasts, consumeErrors=True).addCallback(
                lasts_known
            )

        def lasts_known(lasts: list[list[Any]]) -> None:
            for found in lasts:
                if found:
                    last = message_id(found[0][0])
                    self.stamps.last = max(self.stamps.last, last)
            if link.connected and not self._closing:
                self._serve(link)

        def failed(failure: Failure) -> None:
            # The link broke while we asked; _unlinked waits for the next one.
            self.log.warn(
                "history: {where} did not answer at connection: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        return asking.addCallback(rooms_known).addErrback(failed)

    def _serve(self, link: Any) -> None:
        was = self.reason
        self._link = link
        self.reason = None
        if was == CONNECTING and not self._ready.called:
            self.log.info(
                "history kept in {where}, for {days:g} days"
                if self.keep_days
                else "history kept in {where}, for ever",
                where=self.where,
                days=self.keep_days,  # a number in the fields (0: for ever)
            )
            self._ready.callback(self)
        else:
            self.log.info("history is kept again in {where}", where=self.where)
        if self._pruner is not None and not self._pruner.running:
            self._pruner.start(PRUNE_EVERY, now=True)

    def _unlinked(self, link: Any) -> None:
        if self._link is link:
            self._link = None
        if self._closing:
            return
        if self.reason is None:
            self.reason = UNREACHABLE
            self.log.error(
                "history is off: {where} cannot be reached; the chat goes on "
                "without it, and chatd keeps trying",
                where=self.where,
            )
        if self._pruner is not None and self._pruner.running:
            self._pruner.stop()
        self._wait_for_link()

    def _send(self, link: Any, *command: object) -> defer.Deferred[Any]:
        """Write one command on link now; its answer comes in the link's order.

        The messages kept this turn go first, so that a read sees them.
        """
        if self._kept:
            self._write_kept()
        return _execute(link, *command)

    # -- IHistory ----------------------------------------------------------------

    def record(
        self, room: str, kind: Kind, nick: str, text: str, author: str = ""
    ) -> tuple[int, float]:
        now = self.clock.seconds()
        msg_id = self.stamps.next(now)
        self.record_at(room, kind, nick, text, msg_id, now, author)
        return msg_id, now

    def record_at(
        self,
        room: str,
        kind: Kind,
        nick: str,
        text: str,
        msg_id: int,
        time: float,
        author: str = "",
    ) -> None:
        """Keep a message under an id the caller chose (a cluster's event log).

        time is when it was received, in the clock's seconds. Ids must grow
        within a room (Redis refuses an entry below its stream's last); one
        that does not is dropped and logged. Never blocks and never raises.
        """
        if msg_id > self.stamps.last:
            self.stamps.last = msg_id  # record() carries on above it
        link = self._link
        if link is None:
            self.dropped += 1
            return
        fields: list[object] = ["kind", kind.value, "nick", nick, "text", text]
        kept_ms = millis(time)
        if kept_ms != msg_id // 1000:
            fields += ["time", kept_ms]
        if author:
            fields += ["author", author]
        self._kept.append((room_key(room), stream_id(msg_id), fields))
        if self._write_call is None:
            self._write_call = self.clock.callLater(0, self._write_kept)
        if room not in self._rooms:
            self._rooms.add(room)
            # Not through _send: the set's order against the turn's messages
            # does not matter, and the turn stays one script.
            _execute(link, "SADD", ROOMS_KEY, room).addErrback(self._refused_write)

    def _write_kept(self) -> None:
        """Send the messages kept since the last write, as one script."""
        call, self._write_call = self._write_call, None
        if call is not None and call.active():
            call.cancel()
        kept, self._kept = self._kept, []
        if not kept:
            return
        link = self._link
        if link is None:
            self.dropped += len(kept)
            return
        minid = stream_id(self._cutoff()) if self.keep_days else ""
        words: list[object] = [minid, self.bound.room or ""]
        for _, entry_id, fields in kept:
            words += [entry_id, len(fields), *fields]
        keys = [key for key, _, _ in kept]
        sent = _execute(link, "EVAL", WRITE, len(kept), *keys, *words)
        sent.addCallbacks(self._written, self._refused_writes, errbackArgs=(len(kept),))

    def _written(self, answer: object) -> None:
        if isinstance(answer, list) and answer and int(answer[0]):
            # Some refused (an id below its stream's last): dropped, logged once.
            self.dropped += int(answer[0])
            self._note_refusal(str(answer[1]))
            return
        if self._refused is not None:
            self._refused = None
            self.log.info("history: {where} keeps messages again", where=self.where)

    def _refused_write(self, failure: Failure) -> None:
        self._refused_writes(failure, 1)

    def _refused_writes(self, failure: Failure, count: int) -> None:
        self.dropped += count
        if failure.check(txredisapi.ConnectionError):
            return  # the link is gone: _unlinked says so once
        self._note_refusal(failure.getErrorMessage())

    def _note_refusal(self, error: str) -> None:
        if error != self._refused:  # once per kind of refusal, not per message
            self._refused = error
            self.log.warn(
                "history: {where} refused a message: {error}",
                where=self.where,
                error=error,
            )

    def has_history(self, room: str) -> bool:
        return self.shared or room in self._rooms

    # -- private conversations: streams of pseudo-rooms (private_room) ----------

    def record_private(
        self, sender: str, recipient: str, kind: Kind, name: str, text: str
    ) -> tuple[int, float]:
        room = private_room(sender, recipient)
        fresh = room not in self._rooms
        kept = self.record(room, kind, name, text, sender)
        link = self._link
        if fresh and link is not None:
            for one, other in ((sender, recipient), (recipient, sender)):
                self._send(link, "SADD", party_key(one), other).addErrback(
                    self._refused_write
                )
        return kept

    def record_private_at(
        self,
        sender: str,
        recipient: str,
        kind: Kind,
        name: str,
        text: str,
        msg_id: int,
        time: float,
    ) -> None:
        """Keep a private message under an id the caller chose (a cluster's log).

        As record_private, with the id and time given, as record_at is to
        record: every node of a cluster gives a message the same id.
        """
        room = private_room(sender, recipient)
        fresh = room not in self._rooms
        self.record_at(room, kind, name, text, msg_id, time, sender)
        link = self._link
        if fresh and link is not None:
            for one, other in ((sender, recipient), (recipient, sender)):
                self._send(link, "SADD", party_key(one), other).addErrback(
                    self._refused_write
                )

    def read_private(
        self, me: str, other: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        return self.read(private_room(me, other), count, before)

    def select_private(
        self, me: str, other: str, span: Span
    ) -> defer.Deferred[list[Entry]]:
        return self.select(private_room(me, other), span)

    def private_latest(self, me: str) -> defer.Deferred[dict[str, Entry]]:
        link = self._link
        if link is None:
            return self._unavailable()

        def of(others: list[str]) -> defer.Deferred[dict[str, Entry]]:
            rooms = {private_room(me, other): other for other in others}

            def by_party(latest: dict[str, Entry]) -> dict[str, Entry]:
                return {rooms[room]: entry for room, entry in latest.items()}

            return self.latest(list(rooms)).addCallback(by_party)

        asked = self._send(link, "SMEMBERS", party_key(me)).addCallback(of)
        return self._failing_as_unavailable(asked)

    def forget_private(self, account: str) -> None:
        link = self._link
        if link is None:
            self.log.error(
                "history: could not delete the private history of a dropped "
                "account: {where} cannot be reached",
                where=self.where,
            )
            return
        self._rooms = {
            room
            for room in self._rooms
            if not (room.startswith("@") and account in room[1:].split(" "))
        }

        def failed(failure: Failure) -> None:
            self.log.error(
                "history: could not delete the private history of a dropped "
                "account: {error}",
                error=failure.getErrorMessage(),
            )

        self._send(
            link, "EVAL", FORGET, 1, party_key(account), PREFIX, account
        ).addErrback(failed)

    def search(self, search: Search) -> defer.Deferred[list[Found]]:
        # docs/protocol.md, Searching history: Redis keeps no index of words,
        # so a search reads the latest messages of each target it is given
        # and looks (chatd.store.scan), a bounded number however long the
        # history; paging with `before` reaches older ones.
        if self._link is None:
            return self._unavailable()
        return scan_search(self, search)

    def read(
        self, room: str, count: int, before: int | None = None
    ) -> defer.Deferred[list[Entry]]:
        link = self._link
        if link is None:
            return self._unavailable()
        key = room_key(room)
        top = "+" if before is None else "(" + stream_id(before)

        def newest(exact: bool) -> defer.Deferred[list[Any]]:
            if count > 0 and (before is None or before > 0):
                asked = self._send(link, "XREVRANGE", key, top, "-", "COUNT", count)
            else:
                asked = defer.succeed([])
            return asked.addCallback(lambda entries: [exact, entries])

        if before is None:
            both = newest(True)
        else:
            # A deleted message's id pages on too (its tombstone); a fresh one
            # another node has not written yet is waited for, and what is
            # before it read once it is there.
            found = self._once_written(link, room, before)
            both = found.addCallback(lambda got: newest(bool(got[0]) or got[1]))

        def answer(replies: list[Any]) -> list[Entry]:
            exact, entries = replies
            if before is not None and (before < 0 or not exact):
                raise UnknownId(before)
            return _entries(reversed(entries))

        return self._failing_as_unavailable(both.addCallback(answer))

    def select(self, room: str, span: Span) -> defer.Deferred[list[Entry]]:
        link = self._link
        if link is None:
            return self._unavailable()
        after = -1 if span.after is None else span.after
        before = span.before
        if span.limit <= 0 or (
            before is not None and (before <= 0 or after >= before - 1)
        ):
            return defer.succeed([])
        low = "-" if after < 0 else "(" + stream_id(after)
        high = "+" if before is None else "(" + stream_id(before)
        key = room_key(room)
        if span.newest:
            asked = self._send(link, "XREVRANGE", key, high, low, "COUNT", span.limit)
            asked.addCallback(lambda entries: _entries(reversed(entries)))
        else:
            asked = self._send(link, "XRANGE", key, low, high, "COUNT", span.limit)
            asked.addCallback(_entries)
        return self._failing_as_unavailable(asked)

    def latest(self, rooms: Sequence[str]) -> defer.Deferred[dict[str, Entry]]:
        link = self._link
        if link is None:
            return self._unavailable()
        names = list(rooms)
        asks = [
            self._send(link, "XREVRANGE", room_key(room), "+", "-", "COUNT", 1)
            for room in names
        ]

        def answer(replies: list[Any]) -> dict[str, Entry]:
            return {
                room: _entries(found)[0]
                for room, found in zip(names, replies, strict=True)
                if found
            }

        both = defer.gatherResults(asks, consumeErrors=True)
        return self._failing_as_unavailable(both.addCallback(answer))

    # -- deleting one message ----------------------------------------------------

    def author(self, room: str, msg_id: int) -> defer.Deferred[str | None]:
        """The message's author, or None; a fresh id not there yet is waited for.

        Another node may not have written a message it keeps that this node
        has already delivered (FRESH_WINDOW): it is looked for again until it
        is there or that old, so a deletion right after the message finds it
        (and so does a read `before` it: read).
        """
        link = self._link
        if link is None:
            return self._unavailable()

        def of(found: tuple[list[Any], bool]) -> str | None:
            entry, _deleted = found
            if not entry:
                return None
            flat = entry[0][1]
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            return str(fields.get("author", ""))

        found = self._once_written(link, room, msg_id)
        return self._failing_as_unavailable(found.addCallback(of))

    @defer.inlineCallbacks
    def _once_written(
        self, link: Any, room: str, msg_id: int
    ) -> Generator[defer.Deferred[Any], Any, tuple[list[Any], bool]]:
        """room's entry of msg_id (XRANGE's reply, [] if none) and whether it
        is a tombstone; a fresh id that is neither is looked for again
        (FRESH_WINDOW: another node may not have written it yet)."""
        mark = stream_id(msg_id) if msg_id >= 0 else "0-0"
        looks = int(FRESH_WINDOW / FRESH_RETRY)  # at most, whatever the clock does
        while True:
            entry = yield self._send(link, "XRANGE", room_key(room), mark, mark)
            if entry:
                return entry, False
            deleted = yield self._send(link, "ZSCORE", tombstones_key(room), msg_id)
            if deleted is not None:
                return [], True  # written, then deleted: not to be waited for
            if looks <= 0 or not self._fresh(msg_id):
                return [], False
            looks -= 1
            yield deferLater(self.clock, FRESH_RETRY, lambda: None)

    def _fresh(self, msg_id: int) -> bool:
        """Whether msg_id was given out less than FRESH_WINDOW seconds ago
        (or as much ahead, for another node's clock; not a made-up later id)."""
        now = self.clock.seconds()
        return now - FRESH_WINDOW < msg_id / 1_000_000 <= now + FRESH_WINDOW

    def private_author(
        self, me: str, other: str, msg_id: int
    ) -> defer.Deferred[str | None]:
        return self.author(private_room(me, other), msg_id)

    def delete(self, room: str, msg_id: int) -> defer.Deferred[bool]:
        link = self._link
        if link is None or msg_id < 0:
            self.log.error(
                "history: could not delete a message: {where} cannot be reached",
                where=self.where,
            )
            return defer.succeed(False)
        keys = [room_key(room), PREFIX + "scratch:" + room, tombstones_key(room)]
        sent = self._send(
            link, "EVAL", DELETE, len(keys), *keys, stream_id(msg_id), msg_id
        )

        def failed(failure: Failure) -> bool:
            self.log.error(
                "history: could not delete a message: {error}",
                error=failure.getErrorMessage(),
            )
            return False

        return sent.addCallbacks(lambda deleted: bool(int(deleted)), failed)

    def delete_private(self, me: str, other: str, msg_id: int) -> defer.Deferred[bool]:
        return self.delete(private_room(me, other), msg_id)

    def _unavailable(self) -> defer.Deferred[T]:
        return defer.fail(HistoryUnavailable(self.reason or UNREACHABLE))

    def _failing_as_unavailable(self, asked: defer.Deferred[T]) -> defer.Deferred[T]:
        """Let UnknownId through; any other failure is HistoryUnavailable."""

        def explain(failure: Failure) -> Failure:
            if isinstance(failure.value, defer.FirstError):
                failure = failure.value.subFailure
            if failure.check(UnknownId, HistoryUnavailable):
                return failure
            if failure.check(txredisapi.ConnectionError):  # timeouts included
                return Failure(HistoryUnavailable(UNREACHABLE))
            self.log.failure(
                "history: {where} could not answer", failure, where=self.where
            )
            return Failure(HistoryUnavailable("the history server could not answer"))

        return asked.addErrback(explain)

    # -- retention ---------------------------------------------------------------

    def _cutoff(self) -> int:
        """The first id kept: that of the start of the day keep_days ago."""
        return millis(self.clock.seconds() - self.keep_days * DAY) * 1000

    def _prune_hourly(self) -> None:
        # Not waiting for the answer: the next hour trims again anyway, and a
        # Redis that does not answer must not stop the loop.
        self.prune()

    def prune(self) -> defer.Deferred[int]:
        """Trim every room to its last keep_days and to the bound's count,
        exactly; fires with how many went.

        The trims are sent at once, so a read asked after sees them. The rooms
        are those this store knows (read at connection, and written since);
        the set is read again for the next time, for rooms other nodes began.
        """
        link = self._link
        if link is None or not (self.keep_days or self.bound.room):
            return defer.succeed(0)
        rooms = sorted(self._rooms)
        trims: list[defer.Deferred[Any]] = []
        if self.keep_days:
            cutoff = stream_id(self._cutoff())
            trims += [
                self._send(link, "XTRIM", room_key(room), "MINID", cutoff)
                for room in rooms
            ]
            for room in rooms:  # tombstones go with their days
                self._send(
                    link,
                    "ZREMRANGEBYSCORE",
                    tombstones_key(room),
                    "-inf",
                    f"({self._cutoff()}",
                ).addErrback(lambda failure: None)
        aged = len(trims)
        if self.bound.room:
            trims += [
                self._send(link, "XTRIM", room_key(room), "MAXLEN", self.bound.room)
                for room in rooms
            ]
        self._send(link, "SMEMBERS", ROOMS_KEY).addCallbacks(
            self._rooms.update, lambda failure: None
        )
        trimmed = defer.gatherResults(trims, consumeErrors=True)

        def count(trimmed: list[Any]) -> int:
            old = sum(int(n) for n in trimmed[:aged])
            over = sum(int(n) for n in trimmed[aged:])
            if old:
                self.log.info(
                    "history: deleted {count} {messages} older than {days:g} days",
                    count=old,
                    messages="message" if old == 1 else "messages",
                    days=self.keep_days,
                )
            if over:
                self.log.info(
                    "history: deleted {count} {messages} past {most} a room",
                    count=over,
                    messages="message" if over == 1 else "messages",
                    most=self.bound.room,
                )
            return old + over

        def failed(failure: Failure) -> int:
            self.log.warn(
                "history: could not trim: {error}", error=failure.getErrorMessage()
            )
            return 0

        return trimmed.addCallback(count).addErrback(failed)


def _entries(found: Any) -> list[Entry]:
    """Entries from XRANGE's [[id, [field, value, ...]], ...], in that order."""
    entries = []
    for entry_id, flat in found:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        msg_id = message_id(entry_id)
        time = int(fields["time"]) if "time" in fields else msg_id // 1000
        entries.append(
            Entry(msg_id, time, Kind(fields["kind"]), fields["nick"], fields["text"])
        )
    return entries
