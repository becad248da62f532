"""Socket tuning and naming for a connection's transport: keepalive, NODELAY, peer."""

from __future__ import annotations

import socket

from twisted.internet.interfaces import IConsumer, ISystemHandle, ITCPTransport

# Dead peers: probe after a minute of silence, every 15 s, give up after 4 misses.
KEEPALIVE_OPTIONS = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4))


class IChatTransport(ITCPTransport, IConsumer, ISystemHandle):
    """What a connection's transport offers: TCP (or TLS over TCP) and a consumer."""


def tune_socket(transport: IChatTransport) -> None:
    """Turn on TCP keepalive (tuned to find dead peers in minutes) and NODELAY."""
    if not hasattr(transport, "setTcpKeepAlive"):
        return  # not a TCP connection (a test transport, say)
    transport.setTcpKeepAlive(True)
    transport.setTcpNoDelay(True)  # chat lines are small; no 40 ms Nagle stalls
    handle = transport.getHandle()
    if not isinstance(handle, socket.socket):
        return
    for name, value in KEEPALIVE_OPTIONS:
        if hasattr(socket, name):
            handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def peer_name(transport: object) -> str:
    """Return host:port of a transport's peer, for the log."""
    get_peer = getattr(transport, "getPeer", None)
    peer = get_peer() if get_peer is not None else None
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    return f"{host}:{port}" if host is not None else str(peer)
