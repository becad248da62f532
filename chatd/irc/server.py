"""What every IRC connection of one server shares: names, ISUPPORT, the renderer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatd import __version__
from chatd.config import HISTORY_MAX, ServerConfig
from chatd.irc.caps import HISTORY_CAPS, SUPPORTED
from chatd.irc.render import MODES_PER_LINE, IrcRenderer
from chatd.model.chat import Chat
from chatd.model.client_tags import DENIED
from chatd.model.names import MAX_NICK_LENGTH, MAX_ROOM_LENGTH
from chatd.model.room_rules import KICK_REASON_LENGTH, MAX_BANS, TOPIC_LENGTH

AWAYLEN = 200
# How many targets one PRIVMSG/NOTICE/JOIN/PART may name (ISUPPORT TARGMAX).
MAX_TARGETS = 4
# 005 lines carry at most this many tokens (RFC 2812 caps a line at 15 params).
TOKENS_PER_LINE = 12


def isupport_tokens(config: ServerConfig, history: bool = False) -> list[str]:
    """The ISUPPORT (005) tokens, each true of chatd.

    CASEMAPPING: chatd folds names with NFKC and Unicode casefolding, which
    is what RFC 8265's PRECIS username profile (UsernameCaseMapped) does for
    the names chatd allows; ascii or rfc1459 would be untrue for é and É.
    CHATHISTORY and MSGREFTYPES (IRCv3 chathistory) only where history is kept.
    """
    network = config.name
    kept = [f"CHATHISTORY={HISTORY_MAX}", "MSGREFTYPES=msgid,timestamp"]
    return [
        f"AWAYLEN={AWAYLEN}",
        "CASEMAPPING=rfc8265",
        f"CHANLIMIT=#:{config.max_rooms_per_user}",
        "CHANMODES=b,k,l,imnst",
        f"CHANNELLEN={MAX_ROOM_LENGTH + 1}",
        "CHANTYPES=#",
        *(kept[:1] if history else []),
        "CLIENTTAGDENY=" + ",".join(sorted(name[1:] for name in DENIED)),
        "ELIST=",
        f"LINELEN={config.max_line + 2}",
        f"KICKLEN={KICK_REASON_LENGTH}",
        f"MAXLIST=b:{MAX_BANS}",
        f"MODES={MODES_PER_LINE}",
        *(kept[1:] if history else []),
        f"NETWORK={network}",
        f"NICKLEN={MAX_NICK_LENGTH}",
        "PREFIX=(ov)@+",
        "SAFELIST",
        f"TOPICLEN={TOPIC_LENGTH}",
        f"TARGMAX=JOIN:{MAX_TARGETS},PART:{MAX_TARGETS},PRIVMSG:{MAX_TARGETS},"
        f"NOTICE:{MAX_TARGETS},TAGMSG:{MAX_TARGETS},NAMES:{MAX_TARGETS},WHOIS:1,ISON:,"
        "USERHOST:5,"
        f"KICK:{MAX_TARGETS}",
        "UTF8ONLY",
    ]


def isupport_lines(config: ServerConfig, history: bool = False) -> list[list[str]]:
    """ISUPPORT tokens in groups, one group per 005 line."""
    tokens = isupport_tokens(config, history)
    return [
        tokens[start : start + TOKENS_PER_LINE]
        for start in range(0, len(tokens), TOKENS_PER_LINE)
    ]


@dataclass(eq=False)
class IrcServer:
    """The IRC side of one chatd server: one per Chat, shared by its IRC doors."""

    chat: Chat
    config: ServerConfig
    now: Callable[[], float] = time.time
    created: float = field(init=False)
    renderer: IrcRenderer = field(init=False)
    isupport: list[list[str]] = field(init=False)
    offered: dict[str, str] = field(init=False)  # the caps CAP LS lists
    version: str = f"chatd-{__version__}"
    ping_interval: float = 120.0  # silence before the server PINGs, and the wait

    def __post_init__(self) -> None:
        self.created = self.now()
        self.renderer = IrcRenderer(self.chat, self.now)
        history = self.chat.history is not None
        self.isupport = isupport_lines(self.config, history)
        self.offered = SUPPORTED | HISTORY_CAPS if history else SUPPORTED

    def reconfigure(self, config: ServerConfig) -> None:
        """Take a reloaded configuration: the next registration's ISUPPORT."""
        self.config = config
        self.isupport = isupport_lines(config, self.chat.history is not None)

    @property
    def name(self) -> str:
        """The server's name: the source of numerics, the NETWORK token."""
        return self.config.name
