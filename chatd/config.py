"""The settings one chatd server runs with: the contract's defaults and the limits."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = (
    5501  # docs/protocol.md's usual port: tcp:5501 for the daemon, the client's default
)
SERVER_NAME = "chatd"  # the default --name, sent in HELLO
# Rooms one user may be in at once, #lobby included: IRC's usual CHANLIMIT.
MAX_ROOMS_PER_USER = 50
# Rooms on the server at once, #lobby included. Ten for each of the default
# 1024 connections: more than chat needs, while /rooms stays 100 pages and the
# room table a few MB. Without it 1024 connections could hold 1024 * 49 rooms,
# and one address (--max-per-ip 16) can still make 16 * 49 = 784.
MAX_ROOMS = 10_000
# docs/protocol.md, History: HISTORY lines sent after a join (--backfill; 0: none),
# and by /history without a count.
BACKFILL = 20
HISTORY_COUNT = 20
# The most HISTORY lines one answer holds: a larger count is lowered to it.
# 100 lines of at most about 2.2 KB stay far inside the default --sendq.
HISTORY_MAX = 100
# The most messages history keeps (docs/running.md, "How much history"): per
# room, and per private conversation (--history-room-max), and in all
# (--history-total-max); the oldest go first, a hundredth of the bound at a
# time (chatd.store.interface.Bound). 0: no bound. A message of the longest
# line (--max-line 2048) takes a 4 KiB page of SQLite's, so the total's worst
# case is about 4.2 GB, a room's about 42 MB (bench/history_bound.py).
HISTORY_ROOM_MAX = 10_000
HISTORY_TOTAL_MAX = 1_000_000
# And per account (--history-account-max): its private messages in all its
# conversations, so that an always-on user whom many nicknames write to (each a
# conversation of its own) keeps a bounded share, not the whole total's
# (docs/protocol.md, What an always-on user keeps). Per nickname too, for a
# side that was not identified.
HISTORY_ACCOUNT_MAX = 50_000
# docs/protocol.md, Read markers and catch-up: the targets (rooms and private
# conversations) whose read marker one account keeps; past it, the marker read
# longest ago goes. About 100 bytes each: 50 KB an account at most.
MAX_READ_MARKERS = 500
# Private conversations without a marker that a catch-up replays at most.
CATCH_UP_CONVERSATIONS = 20


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """How accounts behave (chatd.model.accounts); the daemon's options set them."""

    grace: float = 60.0  # seconds to identify for a registered nickname
    min_password: int = 8  # characters
    max_password: int = 1024  # bytes of UTF-8
    # Wrong passwords: a burst, then one per 1/rate seconds (docs/security.md).
    address_burst: int = 5
    address_rate: float = 1 / 12
    # An account's, from the addresses that gave it a wrong password ...
    account_burst: int = 10
    account_rate: float = 1 / 30
    # ... and from addresses new to it (chatd.model.password_limits).
    newcomer_burst: int = 20
    newcomer_rate: float = 1 / 60
    # New passwords per account: each costs a hash.
    change_burst: int = 3
    change_rate: float = 1 / 60
    # New accounts per address: each costs a hash.
    register_burst: int = 3
    register_rate: float = 1 / 60
    # Argon2id's cost: argon2-cffi's defaults (RFC 9106's second
    # recommendation: 64 MiB, 3 passes, 4 lanes).
    time_cost: int = 3
    memory_cost: int = 65536  # KiB
    parallelism: int = 4


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the daemon was told on the command line, already checked."""

    name: str = SERVER_NAME  # one word: the server name in HELLO
    motd: tuple[str, ...] = ()  # message of the day, one INFO line each
    max_line: int = 2048  # docs/protocol.md, Limits: longest line accepted, in bytes
    flood_burst: int = 10  # lines a client may send at once before throttling
    flood_rate: float = 2.0  # lines per second handled past the burst; 0: no limit
    recvq: int = 65536  # bytes of throttled input kept per client before BYE
    sendq: int = 1048576  # bytes waiting to be written to a client before cut-off
    max_clients: int = 1024  # connections at once
    max_per_ip: int = 16  # connections at once from one address
    max_rooms: int = MAX_ROOMS  # rooms on the server at once
    max_rooms_per_user: int = MAX_ROOMS_PER_USER  # rooms one user may be in
    max_devices: int = 10  # connections one account may have at once
    max_always_on_per_ip: int = 4  # always-on users one address may make
    backfill: int = BACKFILL  # HISTORY lines after a join; 0: none
    register_timeout: float = 60.0  # seconds to choose a nickname
    idle_timeout: float = 0.0  # seconds of silence before BYE; 0: never
    shutdown_grace: float = 5.0  # seconds a closing connection gets to flush BYE
    # When collected output is written (chatd.net.output.OutputBatch): None, as
    # soon as the input that caused it is handled; 0, on the next reactor turn,
    # so that one write per recipient carries everything a turn produced.
    flush_delay: float | None = None
    accounts: AccountSettings = AccountSettings()
    # Accounts whose users are server operators (--operators FILE).
    operators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What re-reading the config file did (chatd.ops.reload): applied or not, why.

    lines: one sentence each, for the log and for the server operator who
    asked (REHASH, /rehash): what changed, what needs a restart, or every
    problem that made the reload change nothing.
    """

    applied: bool
    lines: tuple[str, ...]
    path: str = ""  # the config file read ("": none, the command line only)


def no_reload() -> ReloadReport:
    """The answer where nothing can be reloaded (a hub built without a reloader)."""
    return ReloadReport(False, ("this server cannot reload its configuration",))
