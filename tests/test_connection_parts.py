"""The connection layer is composed, not inherited (issue 23).

Every door's protocol is a Connection of its own, made of the shared parts
(chatd.net: framing, flood gate, send queue, answers, closing); no door is
made from another door, and the line protocol's words (chatd.line.door) are
one part that the TCP line door and the web door both use.
"""

from __future__ import annotations

import itertools
from typing import cast

from helpers import connect, make_factory
from twisted.internet.task import Clock

from chatd.cluster.doors import cluster_door
from chatd.cluster.node import Node
from chatd.doors import DOORS as DECLARED
from chatd.irc.protocol import IrcConnection
from chatd.line.door import LINE_DOOR
from chatd.net.answers import Answers
from chatd.net.closing import Closing
from chatd.net.connection import Connection
from chatd.net.framing import LineFramer
from chatd.protocol import LineConnection
from chatd.web.door import WebConnection

DOORS: tuple[type[Connection], ...] = (LineConnection, IrcConnection, WebConnection)


def test_no_door_subclasses_another_door() -> None:
    """The line, IRC and web doors are each a Connection, none made of another."""
    for door, other in itertools.permutations(DOORS, 2):
        assert not issubclass(door, other), f"{door.__name__} is a {other.__name__}"
    for door in DOORS:
        assert Connection in door.__bases__, door.__mro__


def test_a_connection_is_made_of_its_parts() -> None:
    """A line-door connection's framing, answers and closing are parts of it."""
    proto, _ = connect(make_factory(Clock()), "alice")
    assert isinstance(proto.framer, LineFramer)
    assert isinstance(proto.answers, Answers)
    assert isinstance(proto.closing, Closing)


def test_the_web_door_speaks_the_line_doors_words() -> None:
    """Both doors that speak the line protocol hand their words to one LineDoor."""
    for door in (LineConnection, WebConnection):
        assert door.refusal("full") == LINE_DOOR.refusal("full")


def test_a_cluster_nodes_connection_is_its_door_with_a_part() -> None:
    """A cluster node's line, IRC and web connections are each their own door's
    class with a ClusterLines part: no mixin, no other door among their bases."""
    node = cast(Node, object())  # building the class asks nothing of the node
    for declared in DECLARED:
        door = declared.connection
        cluster = cluster_door(declared, node)
        assert cluster.__bases__ == (door,)
        for other in DOORS:
            assert other is door or not issubclass(cluster, other)
