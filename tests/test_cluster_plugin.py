"""The cluster's options (--redis, --node-timeout, --node-name) and its services."""

from __future__ import annotations

import pytest
from twisted.python import usage

from chatd.cluster.replica import ClusterChat
from chatd.cluster.service import ClusterService
from chatd.ops.service import FarewellService
from twisted.plugins.chatd_plugin import Options, chatd


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def test_the_cluster_is_off_by_default() -> None:
    """No --redis: no cluster, node timeout 15 s."""
    options = parse()
    assert options["redis"] is None
    assert options["node-timeout"] == 15.0
    assert options["node-name"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--redis", "http://localhost/"], "redis://HOST:PORT/DB"),
        (["--redis", "redis://localhost:x/0"], "are numbers"),
        (["--node-timeout", "0.5"], "at least 1 second"),
        (["--node-name", "a b"], "letters, digits"),
        (["--node-name", "x" * 33], "letters, digits"),
    ],
)
def test_bad_cluster_options_are_refused_with_a_sentence(
    args: list[str], words: str
) -> None:
    """Each bad value gets a UsageError a person can act on."""
    with pytest.raises(usage.UsageError, match=words):
        parse(*args)


def test_with_redis_the_service_is_a_cluster_node() -> None:
    """--redis: a ClusterChat, a ClusterService before the farewell (so it
    stops after every user had BYE), and the node name given."""
    options = parse(
        "--redis",
        "redis://127.0.0.1:1/0",
        "--node-name",
        "n7",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--no-history",  # nothing connects to Redis before startService
    )
    top = chatd.makeService(options)
    services = list(top)
    kinds = [type(service) for service in services]
    cluster = services[kinds.index(ClusterService)]
    assert kinds.index(ClusterService) < kinds.index(FarewellService)
    assert isinstance(cluster, ClusterService)
    assert cluster.node.node_id == "n7"
    assert isinstance(cluster.node.chat, ClusterChat)
