"""Accounts in Redis: one record per name for every node of a cluster (--redis).

Every node of a cluster asks the same records, so that a name registered on
one node is registered on all, and a right granted on one node (identified
as an account, and so perhaps a server operator) is checked against the one
record every node sees. docs/cluster.md, "Accounts", shows the layout:

- chatd:accounts, a hash: folded name -> JSON {"name", "hash", "created"};
- chatd:accounts:changed:<db>, a channel: each change as "<key>\\n<JSON>"
  (an empty JSON: dropped), published by the script that makes it.

Adding is HSETNX (ADD), so of two nodes registering one name at once exactly
one gets it. A new password, a rehash and a drop (REPLACE) apply only to the
account as the node read it (its hash and creation time), so a change never
overwrites another node's newer one, nor brings back a dropped account.

Each node keeps every record in memory (accounts, read when it connects and
kept up to date from the channel) for the questions asked synchronously: is
this nickname registered (the reservation notice), whose conversation is
this. That cache never grants anything: chatd.model.accounts asks fetch_account
before checking a password and again after, and every write is one of the
conditional scripts.

Registered rooms and server bans stay in the node's memory (rooms,
server_bans): every node applies the same register_room and kline ops from
the cluster's log, and a joining node gets them in its snapshot
(chatd.cluster.snapshot).

Always-on users (docs/cluster.md, Several devices on a cluster) are kept in
chatd:always_on, a hash: folded account -> JSON (chatd.store.accounts,
always_on_to_json), read when the store connects, so that they outlive a
restart of every node. Bringing them back is the cluster's: the node that
starts it, alone, in a turn of its own (restore_always_on), not when read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import txredisapi
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.model.errors import ChatError, ErrorCode
from chatd.model.room_rules import RoomRecord
from chatd.model.server_bans import ServerBan
from chatd.store.accounts import (
    AccountRecord,
    always_on_from_json,
    always_on_to_json,
    keep_always_on,
)
from chatd.store.interface import AlwaysOnRecord, Marker, keep_marker
from chatd.store.redis_history import REPLY_TIMEOUT, endpoint_for, parse_url
from chatd.store.resp import LogLink

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTCP

ACCOUNTS_KEY = "chatd:accounts"
CHANGED = "chatd:accounts:changed:"  # + the database number: channels are global
UNREACHABLE = "the accounts (Redis) cannot be reached; try again in a moment"

# KEYS[1]: the hash; ARGV: key, JSON, channel. 1 if added, 0 if the name is taken.
ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. '\\n' .. ARGV[2])
return 1
"""

# Put ARGV[4] (JSON; '' drops it) in place of account ARGV[1] if it still has
# hash ARGV[2] and creation ARGV[3]; ARGV[5]: the channel. 1 if done, else 0.
REPLACE = """
local now = redis.call('HGET', KEYS[1], ARGV[1])
if not now then return 0 end
local record = cjson.decode(now)
if record['hash'] ~= ARGV[2] or record['created'] ~= tonumber(ARGV[3]) then
  return 0
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], ARGV[1] .. '\\n' .. ARGV[4])
return 1
"""

# Unconditional (save_account, delete_account: AccountStore's plain writes).
# ARGV: key, JSON ('' deletes), channel.
PUT = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. '\\n' .. ARGV[2])
return 1
"""


MARKERS_KEY = "chatd:markers"
ALWAYS_ON_KEY = "chatd:always_on"

# Read markers (docs/protocol.md, Read markers and catch-up): KEYS[1] the
# hash, one field per account: JSON {target: [id, time, name]}, the numbers
# as strings (cjson would round them). ARGV: account, target, id ('': forget
# the target), time, name. Forward only: an id at or below the kept one
# changes nothing (every node of a cluster applies the same move). 1 if done.
MARK = """
local text = redis.call('HGET', KEYS[1], ARGV[1])
local kept = {}
if text then kept = cjson.decode(text) end
if ARGV[3] == '' then
  if kept[ARGV[2]] == nil then return 0 end
  kept[ARGV[2]] = nil
else
  local old = kept[ARGV[2]]
  if old and tonumber(old[1]) >= tonumber(ARGV[3]) then return 0 end
  kept[ARGV[2]] = {ARGV[3], ARGV[4], ARGV[5]}
end
if next(kept) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(kept))
end
return 1
"""


def markers_from_json(text: str) -> dict[str, Marker]:
    """One account's markers as kept in chatd:markers (see MARK)."""
    data = json.loads(text)
    if not isinstance(data, dict):  # cjson spells an empty table as {}
        return {}
    return {
        str(target): Marker(int(msg_id), int(time), str(name))
        for target, (msg_id, time, name) in data.items()
    }


def record_to_json(record: AccountRecord) -> str:
    """An account as the JSON kept in chatd:accounts."""
    return json.dumps(
        {"name": record.name, "hash": record.hash, "created": record.created},
        ensure_ascii=False,
        sort_keys=True,
    )


def record_from_json(text: str) -> AccountRecord:
    """The AccountRecord kept as text (record_to_json)."""
    data = json.loads(text)
    return AccountRecord(str(data["name"]), str(data["hash"]), int(data["created"]))


class _Feed(txredisapi.SubscriberProtocol):
    """The subscription to the channel of changes: each one to the store."""

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        store = getattr(self.factory, "store", None)
        if store is not None:
            store.changed(str(message))


class RedisAccounts:
    """An AccountStore in Redis, shared by a cluster's nodes; a cache in memory.

    Built around two txredisapi factories that connect (and reconnect) by
    themselves: one for commands (LogLink), one subscribed to the changes.
    """

    durable = True
    log = Logger()

    def __init__(self, commands: Any, feed: Any, db: int, where: str) -> None:
        self.commands = commands
        self.feed = feed
        feed.store = self
        self.channel = CHANGED + str(db)
        self.where = where
        self.accounts: dict[str, AccountRecord] = {}
        self.rooms: dict[str, RoomRecord] = {}
        self.server_bans: dict[str, ServerBan] = {}
        # Always-on users, as chatd:always_on holds them (read at connect).
        self.always_on: dict[str, AlwaysOnRecord] = {}
        # What brings the kept always-on users back (chatd.model.accounts
        # gives it: when_loaded); the cluster calls it (restore_always_on).
        self._restore: Callable[[], None] | None = None
        self._always_on_read: defer.Deferred[None] = defer.Deferred()
        self.markers: dict[str, dict[str, Marker]] = {}
        self._link: Any = None  # the connected command protocol, or None
        self._subscribed: Any = None  # the feed's protocol once subscribed
        self._loading: list[str] | None = None  # changes come while reading all
        self._changes = 0  # changes read from the feed (a fetch older is not kept)
        self._closing = False
        self._ready: defer.Deferred[None] = defer.Deferred()
        self._wait_for_link()
        self._wait_for_feed()

    def save_always_on(self, key: str, record: AlwaysOnRecord | None) -> None:
        """Keep account key's always-on user in chatd:always_on (None: delete)."""
        keep_always_on(self.always_on, key, record)

        def failed(failure: Failure) -> None:
            self.log.error(
                "accounts: could not keep an always-on user in {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        if record is None:
            asked = self._execute("HDEL", ALWAYS_ON_KEY, key)
        else:
            asked = self._execute("HSET", ALWAYS_ON_KEY, key, always_on_to_json(record))
        asked.addErrback(failed)

    def when_loaded(self, call: Callable[[], None]) -> None:
        """Keep call, which brings the always-on users back: the cluster calls
        it (restore_always_on), only on the node that starts the cluster."""
        self._restore = call

    def restore_always_on(self, run: Callable[[Callable[[], None]], None]) -> None:
        """Once the always-on users are read, have run call what brings them back."""

        def read(_: object) -> None:
            if self._restore is not None:
                run(self._restore)

        self._always_on_read.addCallback(read)

    @classmethod
    def start(cls, reactor: IReactorTCP, url: str) -> RedisAccounts:
        """A RedisAccounts for url at once; it reads the accounts once Redis answers.

        ValueError for a URL that is not redis://HOST:PORT/DB.
        """
        host, port, db = parse_url(url)
        commands = txredisapi.RedisFactory(
            f"{host}:{port}",
            db,
            1,
            isLazy=True,
            replyTimeout=REPLY_TIMEOUT,
            convertNumbers=False,
        )
        commands.protocol = LogLink
        commands.startConnecting(endpoint_for(reactor, host, port))
        feed = txredisapi.SubscriberFactory(isLazy=True)
        feed.protocol = _Feed
        feed.convertNumbers = False  # a message is text, whatever it looks like
        feed.startConnecting(endpoint_for(reactor, host, port))
        return cls(commands, feed, db, url)

    def ready(self) -> defer.Deferred[None]:
        """Fires once every account has first been read."""
        if self._ready.called:
            return defer.succeed(None)
        waiting: defer.Deferred[None] = defer.Deferred()
        self._ready.addCallback(lambda _: waiting.callback(None))
        return waiting

    def close(self) -> defer.Deferred[None]:
        """Close both connections."""
        self._closing = True
        self._link = self._subscribed = None
        closed = defer.gatherResults(
            [self.commands.disconnect(), self.feed.disconnect()], consumeErrors=True
        )
        return closed.addBoth(lambda _: None)

    # -- the links -----------------------------------------------------------------

    def _wait_for_link(self) -> None:
        self.commands.getConnection(peek=True).addCallbacks(
            self._linked, self._not_linked
        )

    def _wait_for_feed(self) -> None:
        self.feed.getConnection(peek=True).addCallbacks(self._fed, self._not_linked)

    def _not_linked(self, failure: Failure) -> None:
        if not self._closing:  # only a closed factory gives up
            self.log.failure(
                "accounts: no connection to {where}", failure, where=self.where
            )

    def _linked(self, link: Any) -> None:
        if self._closing:
            return
        self._link = link
        link.whenDisconnected().addCallback(self._unlinked)
        self._read_all()

    def _unlinked(self, link: Any) -> None:
        if self._link is link:
            self._link = None
        if not self._closing:
            self._wait_for_link()

    def _fed(self, feed: Any) -> None:
        if self._closing:
            return
        feed.whenDisconnected().addCallback(self._unfed)

        def subscribed(_: object) -> None:
            self._subscribed = feed
            self._read_all()

        feed.subscribe(self.channel).addCallbacks(subscribed, self._not_linked)

    def _unfed(self, feed: Any) -> None:
        # Changes may be missed until the feed is back: then all is read again.
        if self._subscribed is feed:
            self._subscribed = None
        if not self._closing:
            self._wait_for_feed()

    def _read_all(self) -> None:
        """Both links up: read every account; changes meanwhile apply after."""
        link = self._link
        if link is None or self._subscribed is None or self._loading is not None:
            return
        self._loading = []

        def read(found: list[str]) -> None:
            fresh = {
                found[i]: record_from_json(found[i + 1])
                for i in range(0, len(found), 2)
            }
            self.accounts.clear()
            self.accounts.update(fresh)
            changes, self._loading = self._loading or [], None
            for change in changes:
                self.changed(change)
            self.log.info(
                "accounts: {count} read from {where}",
                count=len(fresh),
                where=self.where,
            )
            if not self._ready.called:
                self._ready.callback(None)
            self._read_markers()
            self._read_always_on()

        def failed(failure: Failure) -> None:
            self._loading = None
            self.log.warn(
                "accounts: could not read them from {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute("HGETALL", ACCOUNTS_KEY).addCallbacks(read, failed)

    def _read_markers(self) -> None:
        """Read every account's read markers (a node applies moves meanwhile)."""

        def read(found: list[str]) -> None:
            for i in range(0, len(found), 2):
                for target, marker in markers_from_json(found[i + 1]).items():
                    keep_marker(self.markers, found[i], target, marker)

        def failed(failure: Failure) -> None:
            self.log.warn(
                "accounts: could not read the read markers from {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute("HGETALL", MARKERS_KEY).addCallbacks(read, failed)

    def _read_always_on(self) -> None:
        """Read the kept always-on users (the first time: restore_always_on waits)."""

        def read(found: list[str]) -> None:
            for i in range(0, len(found), 2):
                keep_always_on(
                    self.always_on, found[i], always_on_from_json(found[i + 1])
                )
            if not self._always_on_read.called:
                self._always_on_read.callback(None)

        def failed(failure: Failure) -> None:
            self.log.warn(
                "accounts: could not read the always-on users from {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute("HGETALL", ALWAYS_ON_KEY).addCallbacks(read, failed)

    def changed(self, message: str) -> None:
        """A change published by a node (this one included): the cache follows."""
        if self._loading is not None:
            self._loading.append(message)
            return
        self._changes += 1
        key, _, text = message.partition("\n")
        if text:
            self.accounts[key] = record_from_json(text)
        else:
            self.accounts.pop(key, None)

    def _execute(self, *command: object) -> defer.Deferred[Any]:
        link = self._link
        if link is None:
            return defer.fail(ChatError(ErrorCode.CLUSTER_DOWN, UNREACHABLE))
        try:
            asked = link.execute_command(*command)
        except Exception as error:  # not connected after all, say
            asked = defer.fail(error)

        def unreachable(failure: Failure) -> Failure:
            if failure.check(txredisapi.ConnectionError):  # timeouts included
                return Failure(ChatError(ErrorCode.CLUSTER_DOWN, UNREACHABLE))
            return failure

        return asked.addErrback(unreachable)

    # -- AccountStore --------------------------------------------------------------

    def fetch_account(self, key: str) -> defer.Deferred[AccountRecord | None]:
        before = self._changes

        def read(text: str | None) -> AccountRecord | None:
            record = record_from_json(text) if text else None
            if self._changes == before:  # else the feed has told a newer state
                if record is None:
                    self.accounts.pop(key, None)
                else:
                    self.accounts[key] = record
            return record

        return self._execute("HGET", ACCOUNTS_KEY, key).addCallback(read)

    def add_account(self, key: str, record: AccountRecord) -> defer.Deferred[bool]:
        text = record_to_json(record)

        def added(answer: Any) -> bool:
            if int(answer):
                self.accounts[key] = record
                return True
            return False

        return self._execute(
            "EVAL", ADD, 1, ACCOUNTS_KEY, key, text, self.channel
        ).addCallback(added)

    def replace_account(
        self, key: str, old: AccountRecord, new: AccountRecord | None
    ) -> defer.Deferred[bool]:
        text = "" if new is None else record_to_json(new)

        def replaced(answer: Any) -> bool:
            if not int(answer):
                return False
            if new is None:
                self.accounts.pop(key, None)
            else:
                self.accounts[key] = new
            return True

        return self._execute(
            "EVAL",
            REPLACE,
            1,
            ACCOUNTS_KEY,
            key,
            old.hash,
            old.created,
            text,
            self.channel,
        ).addCallback(replaced)

    def _put(self, key: str, text: str) -> None:
        def failed(failure: Failure) -> None:
            # Never the record: it holds a password hash.
            self.log.error(
                "accounts: could not keep a change in {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute("EVAL", PUT, 1, ACCOUNTS_KEY, key, text, self.channel).addErrback(
            failed
        )

    def save_account(self, key: str, record: AccountRecord) -> None:
        self.accounts[key] = record
        self._put(key, record_to_json(record))

    def delete_account(self, key: str) -> None:
        self.accounts.pop(key, None)
        self._put(key, "")

    def save_room(self, key: str, record: RoomRecord | None) -> None:
        if record is None:
            self.rooms.pop(key, None)
        else:
            self.rooms[key] = record

    def save_server_ban(self, key: str, ban: ServerBan | None) -> None:
        """Nothing to do: the model's dictionary is this node's copy."""

    def save_marker(self, account: str, target: str, marker: Marker | None) -> None:
        if not keep_marker(self.markers, account, target, marker):
            return
        spelled = (
            ("", "", "")
            if marker is None
            else (
                str(marker.id),
                str(marker.time),
                marker.name,
            )
        )

        def failed(failure: Failure) -> None:
            self.log.error(
                "accounts: could not keep a read marker in {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute(
            "EVAL", MARK, 1, MARKERS_KEY, account, target, *spelled
        ).addErrback(failed)

    def forget_markers(self, account: str) -> None:
        self.markers.pop(account, None)

        def failed(failure: Failure) -> None:
            self.log.error(
                "accounts: could not forget read markers in {where}: {error}",
                where=self.where,
                error=failure.getErrorMessage(),
            )

        self._execute("HDEL", MARKERS_KEY, account).addErrback(failed)
