"""The cluster's log over Redis, and one node's life in it (docs/cluster.md).

In Redis (database of --redis):

- chatd:log, a stream: every entry of the log (chatd.cluster.node), one
  field "e" holding its JSON; XADD with MAXLEN ~ LOG_LENGTH, read with
  XREAD BLOCK from the last id applied, on a connection of its own;
- chatd:node:<id>, a key per live node, set with a time to live of
  --node-timeout and refreshed every third of it: a node whose key is gone
  is declared lost (a lost entry) by any node that notices, each asking
  again just after a key would expire (its PTTL): --node-timeout after the
  node's last heartbeat;
- chatd:snapshot:<id>, a list: the replica a joining node loads, pushed by
  the nodes that were there when they applied its hello.

Two connections (txredisapi's RedisProtocol, Twisted-native): one writes
(XADD, SET, ...: one order for everything this node appends), one reads.
What a node appends in one reactor turn goes out together at the end of it:
one XADD, or one APPEND script for several entries, in their order.
If either goes, the node is down: it says so to its users and in the log,
refuses what needs the cluster, and reconnects with back-off. Back, it goes
on reading where it was if the log still holds that place, or else rejoins
(a new node id, a snapshot, its users added again).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from txredisapi import RedisProtocol

from chatd.cluster import snapshot
from chatd.cluster.entries import KEPT_WHILE_DOWN, Entry, Hello, Left, Lost, entry_text
from chatd.cluster.node import Node
from chatd.store.redis_history import endpoint_for, parse_url
from chatd.store.resp import LogLink

LOG_KEY = "chatd:log"
NODE_PREFIX = "chatd:node:"
SNAPSHOT_PREFIX = "chatd:snapshot:"
LOG_LENGTH = 200_000  # entries kept in the stream (about; MAXLEN ~)
READ_COUNT = 1000  # entries per XREAD at most
READ_BLOCK_MS = 2000
BACKLOG = 10_000  # changes kept while Redis is away (quits of dropped users)
FIRST_DELAY, MAX_DELAY = 0.5, 8.0  # reconnection back-off, seconds
SNAPSHOT_TTL = 60  # seconds a snapshot waits for its reader
# Seconds after a heartbeat key's expiry that it is asked about again (Redis
# counts a key gone only once its time has passed).
EXPIRY_MARGIN = 0.005
DOWN_TEXT = (
    "This server lost its link to the rest of the chat (Redis). You stay "
    "connected; what needs the others waits until it is back."
)
UP_TEXT = "This server is linked to the rest of the chat again."

# Atomic: append hello, refresh our key, and count the live nodes (ours included),
# so that of two nodes starting at once exactly one finds itself first.
HELLO_SCRIPT = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[2])
local nodes = redis.call('KEYS', ARGV[4] .. '*')
return {id, #nodes}
"""

# Append a turn's entries in order (RedisLog._send_appended).
# KEYS[1]: the log; ARGV[1]: MAXLEN; ARGV[2..]: the entries' JSON.
APPEND = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
"""


def new_node_id() -> str:
    """A fresh node id: short, random, safe in keys and uids."""
    return secrets.token_hex(4)


class NameInUse(Exception):
    """Another live node runs under this node's --node-name."""


class RedisLog:
    """A node's link to the cluster through one Redis server."""

    log = Logger()

    def __init__(
        self,
        node: Node,
        reactor: IReactorTCP,
        clock: IReactorTime,
        url: str,
        node_timeout: float,
        log_length: int = LOG_LENGTH,
    ) -> None:
        self.node = node
        self.chat = node.chat
        self.reactor = reactor
        self.clock = clock
        self.url = url
        self.host, self.port, self.db = parse_url(url)
        self.node_timeout = node_timeout
        self.log_length = log_length
        node.send = self.publish
        node.on_hello = self._answer_hello
        node.on_lost_self = self._declared_lost
        self.writer: RedisProtocol | None = None
        self.reader: RedisProtocol | None = None
        self.up = False
        self.stopping = False
        self.backlog: list[str] = []
        # This turn's entries, not sent yet: (JSON, kept if the link fails).
        self.appended: list[tuple[str, bool]] = []
        self._append_call: IDelayedCall | None = None
        self.delay = FIRST_DELAY
        self._retry: IDelayedCall | None = None
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._declared: set[str] = set()  # nodes we declared lost already
        # Nodes whose key expires before our next heartbeat: asked again then.
        self._expiry_checks: dict[str, IDelayedCall] = {}
        self._reading = False
        self._joined = False  # joined once: a later join is a rejoin
        self._joined_once = False  # (_joined is cleared for a rejoin; this not)
        # Called when this node's first join found no other live node: it
        # starts the cluster (the service brings the always-on users back).
        self.started_alone: Callable[[], None] = lambda: None
        self.loaded = False  # the last join loaded a snapshot
        self._must_rejoin = False  # declared lost: the next join is a rejoin
        self.ready: defer.Deferred[None] = defer.Deferred()  # first join done
        # This run's mark in its heartbeat key: another value there, kept
        # fresh, is another live node under the same name.
        self.run_token = secrets.token_hex(8)
        self._name_checked = False

    # -- connecting --------------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Connect, join the cluster, start reading; fires once joined."""
        self._connect()
        return self.ready

    @defer.inlineCallbacks
    def _connect(self) -> Any:
        self._retry = None
        try:
            writer = yield self._open()
            reader = yield self._open()
        except Exception as error:
            self.log.warn(
                "cluster: cannot reach Redis at {url}: {error}",
                url=self.url,
                error=error,
            )
            self._schedule_retry()
            return
        if self.stopping:
            writer.transport.loseConnection()
            reader.transport.loseConnection()
            return
        self.writer, self.reader = writer, reader
        for link in (writer, reader):
            link.whenDisconnected().addCallback(self._link_lost)
        try:
            if not self._name_checked:
                yield self._check_name_free(writer)
                self._name_checked = True
            yield self._join()
        except NameInUse as error:
            self.stopping = True
            self._drop_links()
            if not self.ready.called:
                self.ready.errback(error)
        except Exception as error:
            self.log.warn("cluster: joining failed: {error}", error=error)
            self._drop_links()
            self._schedule_retry()

    @defer.inlineCallbacks
    def _check_name_free(self, writer: RedisProtocol) -> Any:
        """Raise NameInUse if a live node already runs under our name.

        Its heartbeat key is there, with another run's mark, and is
        refreshed while we watch it for a heartbeat and a half. A key that
        only ages is a previous run of ours that died (kill -9): that is a
        restart, which joining handles (docs/cluster.md, Node life).
        """
        key = NODE_PREFIX + self.node.node_id
        held = yield writer.execute_command("GET", key)
        if held is None or held == self.run_token:
            return
        before = int((yield writer.execute_command("PTTL", key)))
        wait = max(0.2, self.node_timeout / 3 * 1.5)
        yield task.deferLater(self.clock, wait, lambda: None)
        if (yield writer.execute_command("GET", key)) != held:
            return  # expired (or replaced): nobody keeps it
        after = int((yield writer.execute_command("PTTL", key)))
        if after > before - wait * 1000 / 2:  # refreshed meanwhile
            raise NameInUse(
                f"another live node is named {self.node.node_id!r} in this "
                f"cluster (its heartbeat key {key} is kept fresh); give this "
                "one another --node-name"
            )

    def _open(self) -> defer.Deferred[RedisProtocol]:
        endpoint = endpoint_for(self.reactor, self.host, self.port)
        protocol = LogLink(convertNumbers=False, dbid=self.db or None)
        connected = endpoint.connect(_LinkFactory(protocol))
        connected.addCallback(lambda _: protocol.whenConnected())
        return cast("defer.Deferred[RedisProtocol]", connected)

    def _schedule_retry(self) -> None:
        if self.stopping or self._retry is not None:
            return
        self._retry = self.clock.callLater(self.delay, self._connect)
        self.delay = min(self.delay * 2, MAX_DELAY)

    def _drop_links(self) -> None:
        writer, reader, self.writer, self.reader = self.writer, self.reader, None, None
        for link in (writer, reader):
            if link is not None and link.transport is not None:
                link.transport.loseConnection()

    def _link_lost(self, link: object) -> None:
        if link is not self.writer and link is not self.reader:
            return  # an old link, already given up
        self._drop_links()
        self._reading = False
        if self.stopping:
            return
        if self.up:
            self.up = False
            self.chat.up = False
            if self._beat.running:
                self._beat.stop()
            self._cancel_expiry_checks()
            self.log.warn(
                "cluster: lost Redis at {url}; local users stay, reconnecting",
                url=self.url,
            )
            self.node.notify_all(DOWN_TEXT)
        self._schedule_retry()

    # -- joining -----------------------------------------------------------------

    @defer.inlineCallbacks
    def _join(self) -> Any:
        writer, reader = self.writer, self.reader
        assert writer is not None and reader is not None
        if self._joined:
            kept = not self._must_rejoin and (yield self._place_kept(writer))
            self._must_rejoin = False
            if kept:
                yield self._resume()
                return
            yield self._rejoin()
            return
        node_id = self.node.node_id
        answer = yield writer.execute_command(
            "EVAL",
            HELLO_SCRIPT,
            2,
            LOG_KEY,
            NODE_PREFIX + node_id,
            entry_text(Hello(node_id)),
            int(self.node_timeout * 1000),
            self.log_length,
            NODE_PREFIX,
            self.run_token,
        )
        hello_id, live = answer[0], int(answer[1])
        self.loaded = False
        if live > 1:
            self.loaded = yield self._load_snapshot(reader, node_id)
            if not self.loaded:
                self.log.warn(
                    "cluster: no snapshot came from the {count} other nodes; "
                    "starting from an empty chat",
                    count=live - 1,
                )
        self.node.last_id = hello_id
        first = not self._joined_once and live == 1
        self._joined = self._joined_once = True
        self._went_up()
        self.log.info(
            "cluster: node {node} joined through {url} ({live} live nodes)",
            node=node_id,
            url=self.url,
            live=live,
        )
        if first:  # this node starts the cluster: what it keeps comes back
            self.started_alone()
        if not self.ready.called:
            self.ready.callback(None)

    @defer.inlineCallbacks
    def _load_snapshot(self, reader: RedisProtocol, node_id: str) -> Any:
        key = SNAPSHOT_PREFIX + node_id
        wait = max(1, int(self.node_timeout + 1))
        found = yield reader.execute_command("BLPOP", key, wait)
        if not found:
            return False
        yield reader.execute_command("DEL", key)
        nodes = snapshot.load(self.chat, json.loads(found[1]), self.node)
        for node in nodes:
            if node != node_id:
                self.node.nodes[node] = None
        return True

    def _answer_hello(self, node: str, entry_id: str) -> None:
        """Another node joined: push it our replica as of its hello."""
        writer = self.writer
        if writer is None:
            return
        nodes = [self.node.node_id, *self.node.nodes]
        data = _encode(snapshot.dump(self.chat, nodes))
        key = SNAPSHOT_PREFIX + node
        writer.execute_command("RPUSH", key, data).addErrback(self._failed, "snapshot")
        writer.execute_command("EXPIRE", key, SNAPSHOT_TTL).addErrback(
            self._failed, "snapshot"
        )

    def _went_up(self) -> None:
        self.up = True
        self.chat.up = True
        self.delay = FIRST_DELAY
        if not self._beat.running:
            self._beat.start(self._beat_interval, now=True)
        backlog, self.backlog = self.backlog, []
        writer = self.writer
        if writer is not None:
            for data in backlog:
                self._xadd(writer, data)
        self._read()

    @defer.inlineCallbacks
    def _place_kept(self, writer: RedisProtocol) -> Any:
        """Whether the log still holds the last entry this node read."""
        last = self.node.last_id
        found = yield writer.execute_command("XRANGE", LOG_KEY, last, last)
        return bool(found)

    @defer.inlineCallbacks
    def _resume(self) -> Any:
        writer = self.writer
        assert writer is not None
        yield writer.execute_command(
            "SET",
            NODE_PREFIX + self.node.node_id,
            self.run_token,
            "PX",
            int(self.node_timeout * 1000),
        )
        self.log.info(
            "cluster: Redis is back; reading on from {id}", id=self.node.last_id
        )
        self._went_up()
        self.node.notify_all(UP_TEXT)

    @defer.inlineCallbacks
    def _rejoin(self) -> Any:
        """The log lost our place (Redis restarted, or we were declared lost).

        A new node id; the others' users are dropped here (local users see
        them quit); then join as a new node, and add our users again
        through the log (a turn of their own).
        """
        writer = self.writer
        assert writer is not None
        old = self.node.node_id
        yield writer.execute_command("DEL", NODE_PREFIX + old)
        self.node.reset(new_node_id())
        # Turns and fx of the old log mean nothing in the new one; the
        # changes (a dropped user's quit) still apply.
        self.backlog = [data for data in self.backlog if data.startswith('{"k":"op"')]
        self._declared.clear()
        saved = self.node.save_locals()
        self._joined = False
        self.log.info(
            "cluster: rejoining as node {node} (was {old})",
            node=self.node.node_id,
            old=old,
        )
        yield self._join()
        self.node.readd_locals(saved, self.loaded)
        self.node.notify_all(UP_TEXT)

    def _declared_lost(self) -> None:
        """The others declared us lost while we were away: rejoin."""
        if self.writer is None:
            return
        self.up = False
        self.chat.up = False
        self._reading = False
        if self._beat.running:
            self._beat.stop()
        self._cancel_expiry_checks()
        # The read in flight is dropped with the links; the rejoin reads anew.
        # Reading on would keep users the others have dropped: rejoin instead.
        self._must_rejoin = True
        self._drop_links()
        self._joined = True
        self.node.notify_all(DOWN_TEXT)
        self._schedule_retry()

    # -- reading -----------------------------------------------------------------

    def _read(self) -> None:
        reader = self.reader
        if reader is None or self._reading or not self.up:
            return
        self._reading = True
        asked = reader.execute_command(
            "XREAD",
            "COUNT",
            READ_COUNT,
            "BLOCK",
            READ_BLOCK_MS,
            "STREAMS",
            LOG_KEY,
            self.node.last_id,
        )
        asked.addCallbacks(self._got, self._read_failed, callbackArgs=(reader,))

    def _got(self, found: Any, reader: RedisProtocol) -> None:
        self._reading = False
        if reader is not self.reader:
            return
        if found:
            entries = [
                (entry_id, json.loads(fields[1])) for entry_id, fields in found[0][1]
            ]
            self.node.receive(entries)
        self._read()

    def _read_failed(self, failure: Failure) -> None:
        self._reading = False
        if self.stopping:
            return  # our own stop closed the link under the blocked XREAD
        self.log.warn(
            "cluster: reading the log failed: {error}", error=failure.getErrorMessage()
        )

    # -- writing -----------------------------------------------------------------

    def publish(self, entry: Entry) -> None:
        """Append entry to the log; while Redis is away, keep changes for later.

        Sent at the end of this reactor turn, with the turn's other entries.
        """
        data = entry_text(entry)
        keep = type(entry) in KEPT_WHILE_DOWN
        if self.writer is None or not self.up:
            # Changes that happened (a dropped user's quit) and a turn's fx,
            # which the others wait for, go out once Redis is back; talk and
            # turns are refused while it is away (ERR cluster-down).
            if keep:
                self._keep(data)
            return
        self.appended.append((data, keep))
        if self._append_call is None:
            self._append_call = self.clock.callLater(0, self._send_appended)

    def _send_appended(self) -> None:
        """Send this turn's entries: one XADD, or one script for several."""
        call, self._append_call = self._append_call, None
        if call is not None and call.active():
            call.cancel()
        appended, self.appended = self.appended, []
        if not appended:
            return
        writer = self.writer
        if writer is None or not self.up:
            for data, keep in appended:
                if keep:
                    self._keep(data)
            return
        if len(appended) == 1:
            self._xadd(writer, *appended[0])
            return
        sent = writer.execute_command(
            "EVAL",
            APPEND,
            1,
            LOG_KEY,
            self.log_length,
            *[data for data, _ in appended],
        )
        kept = [data for data, keep in appended if keep]
        if kept:  # lost with the link: sent again once back
            sent.addErrback(self._keep_all, kept)
        sent.addErrback(self._failed, "XADD")

    def _keep_all(self, failure: Failure, kept: list[str]) -> Failure:
        for data in kept:
            self._keep(data)
        return failure

    def _keep(self, data: str) -> None:
        if len(self.backlog) < BACKLOG:
            self.backlog.append(data)

    def _xadd(self, writer: RedisProtocol, data: str, keep: bool = False) -> None:
        sent = writer.execute_command(
            "XADD", LOG_KEY, "MAXLEN", "~", self.log_length, "*", "e", data
        )
        if keep:  # lost with the link: sent again once back (a duplicate is harmless)
            sent.addErrback(lambda failure: self._keep(data))
        sent.addErrback(self._failed, "XADD")

    def _failed(self, failure: Failure, what: str) -> None:
        self.log.warn(
            "cluster: {what} failed: {error}",
            what=what,
            error=failure.getErrorMessage(),
        )

    # -- node life -----------------------------------------------------------------

    def _heartbeat(self) -> None:
        writer = self.writer
        if writer is None:
            return
        ttl = int(self.node_timeout * 1000)
        writer.execute_command(
            "SET", NODE_PREFIX + self.node.node_id, self.run_token, "PX", ttl
        ).addErrback(self._failed, "heartbeat")
        for node in list(self.node.nodes):
            self._check(node)

    def _check(self, node: str) -> None:
        """Ask how long node's heartbeat key has to live (PTTL)."""
        self._expiry_checks.pop(node, None)
        writer = self.writer
        if writer is None or not self.up or node in self._declared:
            return
        asked = writer.execute_command("PTTL", NODE_PREFIX + node)
        asked.addCallbacks(
            self._checked,
            self._failed,
            callbackArgs=(node,),
            errbackArgs=("heartbeat",),
        )

    def _checked(self, left: Any, node: str) -> None:
        """node's key has left milliseconds to live (-2: it is gone).

        A key that will expire before our next heartbeat is asked about
        again just after it would: a node dies --node-timeout after its last
        heartbeat, not up to a heartbeat later (docs/cluster.md, Node life).
        """
        if node not in self.node.nodes or node in self._declared:
            return
        remaining = int(left)
        if remaining == -2:
            self._declared.add(node)
            self.log.warn(
                "cluster: node {node} stopped answering; declaring it lost", node=node
            )
            self.publish(Lost(node))
        elif 0 <= remaining < self._beat_interval * 1000:
            earlier = self._expiry_checks.pop(node, None)
            if earlier is not None and earlier.active():
                earlier.cancel()
            self._expiry_checks[node] = self.clock.callLater(
                remaining / 1000 + EXPIRY_MARGIN, self._check, node
            )

    @property
    def _beat_interval(self) -> float:
        """Seconds between two heartbeats: a third of --node-timeout."""
        return max(0.1, self.node_timeout / 3)

    def _cancel_expiry_checks(self) -> None:
        checks, self._expiry_checks = self._expiry_checks, {}
        for call in checks.values():
            if call.active():
                call.cancel()

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Leave cleanly: say left, drop our key, close the links."""
        self.stopping = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._beat.running:
            self._beat.stop()
        self._cancel_expiry_checks()
        self._send_appended()  # this turn's entries before our "left"
        writer = self.writer
        if writer is not None and self.up:
            try:
                yield writer.execute_command(
                    "XADD",
                    LOG_KEY,
                    "MAXLEN",
                    "~",
                    self.log_length,
                    "*",
                    "e",
                    entry_text(Left(self.node.node_id)),
                )
                yield writer.execute_command("DEL", NODE_PREFIX + self.node.node_id)
            except Exception as error:
                self.log.warn("cluster: leaving failed: {error}", error=error)
        self.up = False
        self.chat.up = False
        self._drop_links()


class _LinkFactory(ClientFactory):
    """Hands one prepared RedisProtocol to the endpoint; quiet in the log."""

    noisy = False

    def __init__(self, protocol: RedisProtocol) -> None:
        self.protocol_ = protocol

    def buildProtocol(self, addr: object) -> RedisProtocol:
        return self.protocol_


# One encoder for snapshots: json.dumps with options builds a new one a call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
