"""chatd: a chat daemon on Twisted, spoken with telnet, nc or a desktop client."""

from __future__ import annotations

__version__ = "0.1.0"
