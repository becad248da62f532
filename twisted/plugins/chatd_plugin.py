"""twistd plugin: `twistd -n chatd` runs the chat daemon."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

if TYPE_CHECKING:  # imported when needed: twistd loads every plugin to list them
    from chatd.factory import ChatFactory
    from chatd.ops.config_file import Kind
    from chatd.ops.reload import Served
    from chatd.store.writer import SQLiteHistory

DEFAULT_LISTEN = "tcp:5501"


def _read_motd(path: str) -> tuple[str, ...]:
    """Read the message of the day, one INFO line per line of the file."""
    from chatd.model.names import clean_text

    try:
        with open(path, encoding="utf-8") as motd:
            lines = [clean_text(text.rstrip("\r\n")) for text in motd]
    except (OSError, UnicodeDecodeError) as error:
        raise usage.UsageError(f"--motd: cannot read {path}: {error}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(text or " " for text in lines)


def _read_operators(path: str) -> tuple[str, ...]:
    """Read --operators: one account name a line; blank lines and # comments skipped."""
    from chatd.model.names import nick_problem, normalize_name

    try:
        with open(path, encoding="utf-8") as listed:
            lines = [text.split("#", 1)[0].strip() for text in listed]
    except (OSError, UnicodeDecodeError) as error:
        raise usage.UsageError(f"--operators: cannot read {path}: {error}") from None
    names = []
    for number, name in enumerate(lines, start=1):
        if not name:
            continue
        name = normalize_name(name)
        problem = nick_problem(name)
        if problem is not None:
            raise usage.UsageError(
                f"--operators: {path}, line {number}: {name!r} is not an account "
                f"name ({problem})"
            )
        names.append(name)
    return tuple(names)


def _whole_number(value: str) -> int:
    """Coerce an option to a non-negative whole number, with a readable error."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a number of zero or more, not {value}")
    return number


def _seconds(value: str) -> float:
    """Coerce an option to a non-negative number of seconds (or a rate)."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, not {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"expected a finite number of zero or more, not {value}")
    return number


_whole_number.coerceDoc = "A whole number."  # type: ignore[attr-defined]
_seconds.coerceDoc = "A number; decimals allowed."  # type: ignore[attr-defined]


def _coercions(
    parameters: Sequence[object],
) -> dict[str, Callable[[str], object] | None]:
    """Each optParameters row's option name and its coerce function, if any."""
    rows = [cast(Sequence[object], row) for row in parameters]
    return {
        str(row[0]): cast(Callable[[str], object], row[4]) if len(row) > 4 else None
        for row in rows
    }


# The lowest value each numeric option accepts, checked in postOptions.
_LOWEST = {
    "max-line": 64,
    "flood-burst": 1,
    "recvq": 1,
    "sendq": 4096,
    "max-clients": 1,
    "max-per-ip": 1,
    "max-rooms": 1,  # #lobby alone
    "max-rooms-per-user": 1,  # #lobby counts
    "max-devices": 1,
    "max-always-on-per-ip": 0,  # 0: nobody from one address may be always-on
    "min-password": 1,
    "new-accounts-per-address": 1,
    "argon2-time": 1,
    "argon2-memory": 8,  # Argon2 needs 8 KiB per lane at least
    "argon2-lanes": 1,
}


class Options(usage.Options):
    """Command line of `twistd chatd`."""

    synopsis = (
        "[--listen ENDPOINT]... [--irc ENDPOINT]... [--web ENDPOINT]... "
        "[--metrics ENDPOINT] "
        "[--name NAME] [--motd FILE] [history] [accounts] [limits] "
        "[--redis redis://HOST:PORT/DB [cluster]]"
    )
    longdesc = (
        "A chat server that people reach with telnet, nc, the chatd-tk client, "
        "an IRC client or a web browser (--web). "
        "Listening addresses are Twisted endpoint strings, for example "
        "tcp:5501:interface=127.0.0.1 or ssl:5502:privateKey=key.pem:certKey=cert.pem."
    )
    optFlags = [
        [
            "check-config",
            None,
            "check the options (and --config's file) and exit: 0 and ok, or 1 "
            "and every problem",
        ],
        ["no-history", None, "keep no history: /history answers ERR no-history"],
        [
            "web-trust-proxy",
            None,
            "believe X-Forwarded-For on --web (chatd is behind a reverse proxy)",
        ],
    ]
    # fmt: off
    optParameters = [
        ["config", None, None,
         "TOML file of options, each a key named as its long option "
         "(deploy/chatd.toml); the command line wins over it"],
        ["name", None, "chatd", "server name sent in HELLO (one word)"],
        ["motd", None, None, "file whose lines are sent as INFO after WELCOME"],
        ["metrics", None, None,
         "serve Prometheus metrics at /metrics and a health check at /healthz "
         "over HTTP on this endpoint (off unless given), for example "
         "tcp:9101:interface=127.0.0.1"],
        ["database", None, "chatd.sqlite3",
         "SQLite file the history is kept in, created if missing (:memory: keeps "
         "it only while the daemon runs)"],
        ["history-days", None, 30.0,
         "days a message is kept; older ones are deleted (0: kept for ever)",
         _seconds],
        ["history-room-max", None, 10000,
         "messages kept per room and per private conversation; past it the "
         "oldest are deleted (0: no bound)", _whole_number],
        ["history-total-max", None, 1000000,
         "messages kept in all, rooms' and private (the SQLite history); past it "
         "the oldest are deleted (0: no bound)", _whole_number],
        ["history-account-max", None, 50000,
         "private messages kept per account, in all its conversations (the SQLite "
         "history); past it its oldest are deleted (0: no bound)", _whole_number],
        ["backfill", None, 20,
         "messages a joiner gets from the room's history (0: none; at most 100)",
         _whole_number],
        ["operators", None, None,
         "file of account names (one a line) whose users are server operators"],
        ["nick-grace", None, 60.0,
         "seconds to identify for a registered nickname before being renamed",
         _seconds],
        ["min-password", None, 8, "characters a password has at least",
         _whole_number],
        ["new-accounts-per-address", None, 3,
         "accounts one address may register at once, then one a minute "
         "(raise it for a classroom behind one NAT address)",
         _whole_number],
        ["argon2-time", None, 3, "Argon2id passes per password hash",
         _whole_number],
        ["argon2-memory", None, 65536, "KiB of memory per password hash",
         _whole_number],
        ["argon2-lanes", None, 4, "Argon2id lanes (parallelism) per hash",
         _whole_number],
        ["max-line", None, 2048, "longest line accepted from a client, in bytes",
         _whole_number],
        ["flood-burst", None, 10, "lines a client may send at once before throttling",
         _whole_number],
        ["flood-rate", None, 2.0,
         "lines per second handled past the burst (0 turns flood control off)",
         _seconds],
        ["recvq", None, 65536,
         "bytes of throttled input kept per client before it is disconnected",
         _whole_number],
        ["sendq", None, 1048576,
         "bytes waiting to be sent to a client before it is disconnected",
         _whole_number],
        ["max-clients", None, 1024, "connections at once", _whole_number],
        ["max-per-ip", None, 16, "connections at once from one address",
         _whole_number],
        ["max-rooms", None, 10000, "rooms on the server at once, #lobby included",
         _whole_number],
        ["max-rooms-per-user", None, 50,
         "rooms one user may be in at once, #lobby included", _whole_number],
        ["max-devices", None, 10,
         "connections one account may have at once (several devices)",
         _whole_number],
        ["max-always-on-per-ip", None, 4,
         "always-on users one address may make", _whole_number],
        ["register-timeout", None, 60.0,
         "seconds a new connection has to choose a nickname", _seconds],
        ["idle-timeout", None, 0.0,
         "seconds of silence before a client is disconnected (0: never)", _seconds],
        ["redis", None, None,
         "run as one node of a cluster sharing rooms, nicknames and history "
         "through Redis at redis://HOST:PORT/DB (docs/cluster.md; off unless given)"],
        ["node-timeout", None, 15.0,
         "seconds after which a silent cluster node is declared lost (--redis)",
         _seconds],
        ["node-name", None, None,
         "this node's id in the cluster (default: random; --redis)"],
    ]
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        # An opt_ method's docstring keeps its indentation inside the help
        # text (textwrap turns each newline and indent into spaces): one space.
        self.docs = {
            name: " ".join((doc or "").split()) for name, doc in self.docs.items()
        }
        self["listen"] = []
        self["irc"] = []
        self["web"] = []
        self["web-origin"] = []
        self._door_options()
        # Repeatable options the config file gave, used unless the command
        # line gives the same option (which then replaces, not adds to, them).
        self._file_lists: dict[str, list[str]] = {}
        self.argv: list[str] = []  # the command line parsed (parseOptions)

    def _door_options(self) -> None:
        """Add the option of each registered door that has no opt_ method here.

        A new door is its package and one line in chatd.doors.DOORS, which
        names its option (repeatable, off unless given); no door is loaded.
        """
        from chatd.doors import DOORS

        for option in DOORS.options:
            if option in self._dispatch:  # --listen, --irc, --web: written out above
                continue
            self[option] = []
            self.longOpt.append(f"{option}=")
            self.synonyms[option] = option
            self.docs[option] = (
                f"Listen for the {option} door's clients on an endpoint "
                "(repeatable; off unless given)."
            )
            self._dispatch[option] = lambda _name, value, key=option: self[key].append(
                value
            )

    def opt_listen(self, description: str) -> None:
        """Listen on an endpoint (repeatable; default tcp:5501)."""
        self["listen"].append(description)

    def opt_irc(self, description: str) -> None:
        """Listen for IRC clients on an endpoint (repeatable; off unless given)."""
        self["irc"].append(description)

    def opt_web(self, description: str) -> None:
        """Serve the web page and its WebSocket on an endpoint (repeatable; off)."""
        self["web"].append(description)

    def opt_web_origin(self, origin: str) -> None:
        """Let pages from another origin (https://host[:port], or *) use the
        WebSocket (repeatable; by default only the page's own, served from this
        machine's names at the listener's port; behind a reverse proxy, name
        its public origin)."""
        from chatd.web.origins import normalize_origin

        spelled = normalize_origin(origin)
        if spelled is None:
            raise usage.UsageError(
                f"--web-origin {origin}: not an origin; write it as a browser "
                "sends it, like https://chat.example.com or http://localhost:8080"
            )
        self["web-origin"].append(spelled)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """Parse --config's file, then the command line over it.

        With --check-config, exit 0 printing ok, or 1 printing every problem.
        """
        argv = list(sys.argv[1:] if options is None else options)
        self.argv = argv  # read again on a reload (chatd.ops.reload)
        check = "--check-config" in argv
        try:
            from chatd.ops.config_file import config_path

            path = config_path(argv)
            if path is not None:
                self._apply_config_file(path)
            super().parseOptions(argv)
        except usage.UsageError as error:
            if not check:
                raise
            print(error, file=sys.stderr)
            raise SystemExit(1) from None
        if check:
            print("ok")
            raise SystemExit(0)

    def _config_kinds(self) -> dict[str, Kind]:
        """What each config file key takes: every option but --config's own."""
        from chatd.doors import DOORS

        kinds: dict[str, Kind] = {str(flag[0]): "flag" for flag in self.optFlags}
        for name, coerce in _coercions(self.optParameters).items():
            kinds[name] = (
                "int"
                if coerce is _whole_number
                else "number"
                if coerce is _seconds
                else "str"
            )
        for name in ("listen", "irc", "web", "web-origin", *DOORS.options):
            kinds[name] = "list"
        del kinds["config"], kinds["check-config"]
        return kinds

    def _apply_config_file(self, path: str) -> None:
        """Take the options of a config file as defaults; every problem at once."""
        from chatd.ops.config_file import ConfigFileError, read_config

        kinds = self._config_kinds()
        try:
            table = read_config(path, kinds)
        except ConfigFileError as error:
            raise usage.UsageError(str(error)) from None
        problems = []
        coercions = _coercions(self.optParameters)
        for key, value in table.items():
            kind = kinds[key]
            try:
                if kind == "flag":
                    self[key] = int(bool(value))
                elif kind == "list":
                    self[key] = []
                    for item in cast(list[str], value):
                        self._dispatch[key](key, item)
                    self._file_lists[key] = self[key]
                    self[key] = []
                elif (coerce := coercions[key]) is not None:
                    self[key] = coerce(str(value))
                else:
                    self[key] = value
            except (ValueError, usage.UsageError) as error:
                problems.append(f"{path}: {key}: {error}")
        if problems:
            raise usage.UsageError("\n".join(problems))

    def postOptions(self) -> None:
        from chatd.config import HISTORY_MAX, AccountSettings, ServerConfig
        from chatd.model.names import clean_text
        from chatd.store.interface import Bound

        for key, values in self._file_lists.items():
            if not self[key]:  # not given on the command line
                self[key] = values
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        problems: list[str] = []
        name = self["name"]
        if not name or name != clean_text(name) or any(ch.isspace() for ch in name):
            problems.append("--name must be one word, without spaces")
        for option, lowest in _LOWEST.items():
            if self[option] < lowest:
                problems.append(f"--{option} must be at least {lowest}")
        if self["max-line"] > 1_048_576:
            problems.append("--max-line must be at most 1048576 bytes")
        if self["recvq"] < self["max-line"]:
            problems.append("--recvq must be at least --max-line")
        if self["backfill"] > HISTORY_MAX:
            problems.append(f"--backfill must be at most {HISTORY_MAX}")
        if not self["database"]:
            problems.append("--database needs a file name (or :memory:)")
        if self["redis"] is not None:
            from chatd.store.redis_history import parse_url

            try:
                parse_url(self["redis"])
            except ValueError as error:
                problems.append(f"--redis: {error}")
        if self["node-timeout"] < 1:
            problems.append("--node-timeout must be at least 1 second")
        node_name = self["node-name"]
        if node_name is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,32}", node_name
        ):
            problems.append(
                "--node-name: 1 to 32 letters, digits, _ or - (it names Redis keys)"
            )
        if self["register-timeout"] <= 0:
            problems.append("--register-timeout must be more than 0 seconds")
        motd: tuple[str, ...] = ()
        operators: tuple[str, ...] = ()
        try:
            motd = _read_motd(self["motd"]) if self["motd"] else ()
        except usage.UsageError as error:
            problems.append(str(error))
        if self["argon2-memory"] < 8 * self["argon2-lanes"]:
            problems.append(
                "--argon2-memory must be at least 8 KiB for each of --argon2-lanes"
            )
        try:
            operators = _read_operators(self["operators"]) if self["operators"] else ()
        except usage.UsageError as error:
            problems.append(str(error))
        if problems:  # all of them at once, one a line
            raise usage.UsageError("\n".join(problems))
        self["history-bound"] = Bound(
            room=self["history-room-max"],
            total=self["history-total-max"],
            account=self["history-account-max"],
        )
        self["config"] = ServerConfig(
            name=name,
            motd=motd,
            max_line=self["max-line"],
            flood_burst=self["flood-burst"],
            flood_rate=self["flood-rate"],
            recvq=self["recvq"],
            sendq=self["sendq"],
            max_clients=self["max-clients"],
            max_per_ip=self["max-per-ip"],
            max_rooms=self["max-rooms"],
            max_rooms_per_user=self["max-rooms-per-user"],
            max_devices=self["max-devices"],
            max_always_on_per_ip=self["max-always-on-per-ip"],
            backfill=self["backfill"],
            register_timeout=self["register-timeout"],
            idle_timeout=self["idle-timeout"],
            flush_delay=0.0,  # one write per recipient per reactor turn
            accounts=AccountSettings(
                grace=self["nick-grace"],
                min_password=self["min-password"],
                register_burst=self["new-accounts-per-address"],
                time_cost=self["argon2-time"],
                memory_cost=self["argon2-memory"],
                parallelism=self["argon2-lanes"],
            ),
            operators=operators,
        )
        from chatd.doors import DOORS

        # Each registered door's listeners, by the option that opens it
        # (--listen, --irc, --web), in the order given.
        self["door_endpoints"] = {
            option: [
                _endpoint(description, f"--{option}")
                for description in self.get(option, [])
            ]
            for option in DOORS.options
        }
        self["metrics_endpoint"] = (
            _endpoint(self["metrics"], "--metrics") if self["metrics"] else None
        )


# Kinds of endpoint that take a listen backlog, and the one chatd asks for
# unless told otherwise: Twisted's default of 50 makes a storm of 1,000
# connections wait seconds for SYN retransmits.
_BACKLOG_KINDS = frozenset({"tcp", "tcp6", "ssl", "unix"})
LISTEN_BACKLOG = 1024


def with_backlog(description: str) -> str:
    """Add backlog=LISTEN_BACKLOG to an endpoint string that takes one and has none."""
    kind = description.split(":", 1)[0].lower()
    if kind in _BACKLOG_KINDS and "backlog=" not in description:
        return f"{description}:backlog={LISTEN_BACKLOG}"
    return description


def _endpoint(
    description: str, option: str = "--listen"
) -> tuple[str, IStreamServerEndpoint]:
    """Parse one door's endpoint string (--listen, --irc...), or explain why not."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        return description, serverFromString(reactor, with_backlog(description))
    except Exception as error:  # each endpoint parser raises its own kinds
        hint = f"; did you mean tcp:{description}?" if description.isdigit() else ""
        raise usage.UsageError(
            f"{option} {description}: not a usable endpoint ({error}){hint}"
        ) from None


@implementer(IServiceMaker, IPlugin)
class ChatServiceMaker:
    """Makes the chatd service for twistd."""

    tapname = "chatd"
    description = (
        "A chat server for telnet, nc, the chatd-tk client, IRC clients and browsers."
    )
    options = Options

    def makeService(self, options: Options) -> MultiService:
        """One ChatFactory for a listener per --listen; history; a clean shutdown.

        With --metrics, all of that is wrapped in the metrics listener's
        service, which starts after it and stops after it.
        """
        from twisted.internet import reactor
        from twisted.internet.interfaces import IReactorFromThreads
        from twisted.logger import Logger

        from chatd.factory import ChatFactory
        from chatd.ops.service import (
            FileLimitService,
            HashingService,
            HistoryService,
        )
        from chatd.store.accounts import MemoryAccounts, SQLiteAccounts
        from chatd.store.interface import AccountStore
        from chatd.store.writer import SQLiteHistory

        history = None
        store: AccountStore = MemoryAccounts()
        if options["redis"] is not None:
            return self._cluster_service(options)
        if options["no-history"]:
            Logger(namespace="chatd").warn(
                "--no-history: accounts and registered rooms are kept in memory "
                "only, and a restart forgets them"
            )
        else:
            threads = cast(IReactorFromThreads, reactor)
            history = SQLiteHistory(
                options["database"],
                reactor,
                threads,
                options["history-days"],
                options["history-bound"],
            )
            store = SQLiteAccounts(history)  # the same file (schema v2)
        hashing = HashingService(cast(IReactorFromThreads, reactor))
        factory = ChatFactory(options["config"], reactor, history, store, hashing.run)
        top = MultiService()
        FileLimitService(options["config"].max_clients).setServiceParent(top)
        hashing.setServiceParent(top)  # stops after the listeners (added before)
        if history is not None:
            # Stops after FarewellService: everything said is written, then closed.
            HistoryService(history, hashing.idle).setServiceParent(top)
        return _listeners(options, factory, top, history)

    def _cluster_service(self, options: Options) -> MultiService:
        """A cluster node: the chat, history and node life through Redis."""
        from twisted.internet import reactor
        from twisted.internet.interfaces import (
            IReactorFromThreads,
            IReactorTCP,
            IReactorTime,
        )
        from twisted.logger import Logger

        from chatd.cluster.replica import ClusterChat
        from chatd.cluster.service import ClusterService
        from chatd.factory import ChatFactory
        from chatd.ops.exit import exit_code_at_end
        from chatd.ops.service import (
            FileLimitService,
            HashingService,
        )
        from chatd.store.redis_accounts import RedisAccounts
        from chatd.store.redis_history import RedisHistory

        url = options["redis"]
        tcp, clock = cast(IReactorTCP, reactor), cast(IReactorTime, reactor)
        history = None
        if options["no-history"]:
            Logger(namespace="chatd").warn("--no-history: no history in the cluster")
        else:
            history = RedisHistory.start(
                tcp, url, clock, options["history-days"], bound=options["history-bound"]
            )
        # One record per account for the whole cluster (docs/cluster.md, Accounts).
        accounts = RedisAccounts.start(tcp, url)
        hashing = HashingService(cast(IReactorFromThreads, reactor))
        factory = ChatFactory(
            options["config"],
            clock,
            history,
            accounts,
            hashing.run,
            chat_type=ClusterChat,
        )
        top = MultiService()
        FileLimitService(options["config"].max_clients).setServiceParent(top)
        hashing.setServiceParent(top)
        ClusterService(
            factory,
            tcp,
            clock,
            url,
            options["node-timeout"],
            options["node-name"],
            history,
            accounts,
            failed=exit_code_at_end,
        ).setServiceParent(top)
        # Metrics of history are SQLite's (docs/running.md): none for Redis.
        return _listeners(options, factory, top, None)


def _listeners(
    options: Options,
    factory: ChatFactory,
    top: MultiService,
    history: SQLiteHistory | None,
) -> MultiService:
    """Add the goodbye and a listener per door's endpoint to top; metrics around.

    FarewellService goes in before the listeners so that it stops after them:
    no new connections, then every client hears BYE. With --metrics, all of
    it is wrapped in the metrics listener's service (it starts after it and
    stops after it); history: the SQLite store its figures come from.
    """
    from chatd.doors import DOORS
    from chatd.ops.reload import Served
    from chatd.ops.service import FarewellService, ListenerService

    FarewellService(factory).setServiceParent(top)
    doors = []
    served: dict[str, Served] = {}  # by the option that opens the door
    for option in DOORS.options:
        if options["door_endpoints"].get(option):  # else the door is not loaded
            door = DOORS.opened_by(option)
            doors.append(door.name)
            # One factory for all its listeners.
            served[option] = Served(door, door.serve(factory, options))
    # Before the listeners: SIGHUP is handled by the time anyone can connect.
    _reloading(options, factory, top, list(served.values()), history)
    for option, door_served in served.items():
        for description, endpoint in options["door_endpoints"][option]:
            ListenerService.of_door(
                door_served.door, option, description, endpoint, door_served.factory
            ).setServiceParent(top)
    if options["metrics_endpoint"] is not None:
        from chatd.ops.metrics_http import metrics_service

        description, endpoint = options["metrics_endpoint"]
        return metrics_service(top, factory, history, description, endpoint, doors)
    return top


def _reloading(
    options: Options,
    factory: ChatFactory,
    top: MultiService,
    served: list[Served],
    history: SQLiteHistory | None,
) -> None:
    """Make SIGHUP, REHASH and /rehash re-read the command line's config file.

    Every TLS listener (--metrics's too) gets options a reload can replace,
    before it listens (chatd.ops.tls); history: the SQLite store whose
    retention a reload changes (None: a cluster's, set at start).
    """
    from twisted.internet import reactor

    from chatd.ops.config_file import config_path
    from chatd.ops.reload import Reloader, ReloadOnSignal
    from chatd.ops.tls import make_swappable

    listeners = [
        endpoint
        for endpoints in options["door_endpoints"].values()
        for endpoint in endpoints
    ]
    if options["metrics_endpoint"] is not None:
        listeners.append(options["metrics_endpoint"])
    tls = [
        swappable
        for description, endpoint in listeners
        if (swappable := make_swappable(description, endpoint)) is not None
    ]
    argv = options.argv

    def read_again() -> Options:
        fresh = Options()
        fresh.parseOptions(argv)
        return fresh

    reloader = Reloader(
        read_again,
        options,
        config_path(argv),
        factory,
        served,
        tls,
        history,
        reactor,
    )
    factory.reloader = reloader.reload
    ReloadOnSignal(reloader, reactor).setServiceParent(top)


chatd = ChatServiceMaker()
