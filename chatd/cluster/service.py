"""ClusterService: a chatd node's place in a cluster, for twistd (docs/cluster.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.cluster.doors import cluster_door
from chatd.cluster.node import Node
from chatd.cluster.redis import NameInUse, RedisLog, new_node_id
from chatd.cluster.replica import ClusterChat
from chatd.factory import ChatFactory
from chatd.store.redis_accounts import RedisAccounts
from chatd.store.redis_history import RedisHistory


def cluster_node(factory: ChatFactory, node_name: str | None) -> Node:
    """Make factory a cluster node: its Node, and its doors' cluster subclasses."""
    from chatd.doors import DOORS

    chat = factory.chat
    if not isinstance(chat, ClusterChat):
        raise TypeError("a cluster node's factory needs chat_type=ClusterChat")
    node = Node(chat, node_name or new_node_id(), lambda entry: None, factory.output)
    for door in DOORS:
        factory.door_classes[door.connection] = cluster_door(door, node)
    # SASL registers a client when its check ends, after its line's turn: in
    # a turn of the node's own (Chat.changing; docs/cluster.md, Several
    # devices on a cluster), so it is offered as in one process.
    return node


class ClusterService(Service):
    """Joins the cluster at start (in the background); leaves cleanly at stop.

    Added before FarewellService, it stops after it: every user has had BYE
    and their quits are on their way to the log before this node says left.
    """

    log = Logger()

    def __init__(
        self,
        factory: ChatFactory,
        reactor: IReactorTCP,
        clock: IReactorTime,
        url: str,
        node_timeout: float,
        node_name: str | None = None,
        history: RedisHistory | None = None,
        accounts: RedisAccounts | None = None,
        failed: Callable[[], None] | None = None,
    ) -> None:
        self.node = cluster_node(factory, node_name)
        self.link = RedisLog(self.node, reactor, clock, url, node_timeout)
        if accounts is not None:
            # The node that starts the cluster brings its always-on users back
            # from Redis, in a turn of its own (docs/cluster.md).
            node = self.node
            self.link.started_alone = lambda: accounts.restore_always_on(
                node.restore_in_turn
            )
        self._reactor = reactor
        self.history = history
        self.accounts = accounts
        # Called when joining is refused for good, before the reactor stops:
        # twistd's plugin passes chatd.ops.exit.exit_code_at_end (exit 1).
        self.failed = failed

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "cluster: node {node} joining through {url}",
            node=self.node.node_id,
            url=self.link.url,
        )
        self.link.start().addErrback(self._refused)

    def _refused(self, failure: Failure) -> None:
        """Joining is refused for good (a live node has our name): stop, failed."""
        failure.trap(NameInUse)
        self.log.critical("cluster: {why}", why=failure.getErrorMessage())
        if self.failed is not None:
            self.failed()
        stop = getattr(self._reactor, "stop", None)  # IReactorCore's
        if stop is not None:
            stop()

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        super().stopService()
        yield self.link.stop()
        if self.history is not None:
            yield self.history.close()
        if self.accounts is not None:
            yield self.accounts.close()
