"""Reloading the configuration: SIGHUP, REHASH and /rehash, without a restart.

The Reloader reads the command line it was started with again: the --config
file first, the command line over it (the command line still wins), the
--motd and --operators files they name, and the key and certificate of every
TLS listener. Any problem anywhere, and nothing changes: the problems are
logged, and a server operator who asked is told them. Otherwise it applies
what can change while the daemon runs, each through its owner's function:

- the hub's limits and the chat's MOTD, operators and room limits
  (ChatFactory.reconfigure, Chat.reconfigure);
- each door's own settings (Door.reconfigure: the web door's --web-origin,
  IRC's ISUPPORT);
- history retention (SQLiteHistory.set_retention);
- each TLS listener's key and certificate (chatd.ops.tls.SwappableTLS).

What needs a restart (RESTART_OPTIONS: listeners, the database, the cluster,
the server's name, the password hashing) is left as it runs and reported
("needs a restart: --listen"). docs/running.md, "Reloading the
configuration", is the operator's page.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from twisted.application.service import Service
from twisted.internet.interfaces import IProtocolFactory, IReactorCore
from twisted.logger import Logger
from twisted.python import usage

from chatd.config import ReloadReport, ServerConfig
from chatd.doors import DOORS, Door
from chatd.factory import ChatFactory
from chatd.ops.tls import SwappableTLS, read_certificate
from chatd.store.interface import Bound

if TYPE_CHECKING:
    from twisted.internet.ssl import CertificateOptions

# Options a running daemon cannot take from a reload, besides each door's
# listeners (--listen, --irc, --web, ...): changed in the file, they are
# reported, and take effect at the next restart.
RESTART_OPTIONS = (
    "metrics",
    "database",
    "no-history",
    "redis",
    "node-timeout",
    "node-name",
    "name",
    "web-trust-proxy",
    "nick-grace",
    "min-password",
    "new-accounts-per-address",
    "argon2-time",
    "argon2-memory",
    "argon2-lanes",
)
RETENTION_OPTIONS = (
    "history-days",
    "history-room-max",
    "history-total-max",
    "history-account-max",
)
# ServerConfig's fields that are not the reload's: the name and the accounts'
# settings need a restart (above), the rest are no options.
_KEPT_FIELDS = frozenset({"name", "accounts", "flush_delay", "shutdown_grace"})


class Retention(Protocol):
    """A history whose retention can change while it runs (SQLiteHistory)."""

    def set_retention(self, keep_days: float, bound: Bound) -> None:
        """Keep messages keep_days (0: for ever) and within bound from now on."""


@dataclass(frozen=True, slots=True)
class Served:
    """One door a daemon listens for, and the factory its listeners listen with."""

    door: Door
    factory: IProtocolFactory


def restart_options() -> list[str]:
    """Every option only a restart changes: the doors' listeners, then the rest."""
    return [*DOORS.options, *RESTART_OPTIONS]


def _changed_settings(old: ServerConfig, new: ServerConfig) -> list[str]:
    """The options whose settings in ServerConfig differ, as --options."""
    return [
        "--" + field.name.replace("_", "-")
        for field in fields(ServerConfig)
        if field.name not in _KEPT_FIELDS
        and getattr(old, field.name) != getattr(new, field.name)
    ]


class Reloader:
    """Re-reads the command line's config file and applies what may change.

    read: parses the command line the daemon was started with again (the
    plugin's Options); it raises usage.UsageError naming every problem.
    path: the --config file, or None (then only the files the command line
    names are read again).
    """

    log = Logger()

    def __init__(
        self,
        read: Callable[[], Mapping[str, Any]],
        options: Mapping[str, Any],
        path: str | None,
        hub: ChatFactory,
        served: Sequence[Served],
        tls: Sequence[SwappableTLS],
        history: Retention | None,
        reactor: IReactorCore,
    ) -> None:
        self.read = read
        self.started = options  # what runs: restart options are compared to it
        self.options = options  # the last options applied
        self.path = path
        self.hub = hub
        self.served = tuple(served)
        self.tls = tuple(tls)
        self.history = history
        self.reactor = reactor

    def reload(self, source: str) -> ReloadReport:
        """Read everything again and apply it, or nothing; say what happened.

        source: who asked, for the log ("SIGHUP", "rehash by alice").
        """
        where = self.path if self.path is not None else "the command line"
        try:
            new = self.read()
        except usage.UsageError as error:
            return self._refused(source, where, str(error).splitlines())
        except Exception as error:  # a parser's own kind of error: still a refusal
            return self._refused(source, where, [f"{type(error).__name__}: {error}"])
        certificates: list[tuple[SwappableTLS, CertificateOptions]] = []
        problems = []
        for listener in self.tls:
            try:
                certificates.append(
                    (listener, read_certificate(listener.description, self.reactor))
                )
            except Exception as error:  # OSError, ValueError, OpenSSL's Error
                problems.append(
                    f"TLS listener {listener.description}: cannot use its key and "
                    f"certificate ({error or type(error).__name__})"
                )
        if problems:
            return self._refused(source, where, problems)
        lines = self._apply(new, certificates)
        if self.path is None:
            lines.insert(
                0,
                "no config file: chatd was started without --config, so only the "
                "files its command line names (--motd, --operators, TLS keys and "
                "certificates) were read again",
            )
        for text in lines:
            self.log.info(
                "reload ({source}): {text}", source=source, text=text, path=where
            )
        return ReloadReport(True, tuple(lines), self.path or "")

    def _refused(
        self, source: str, where: str, problems: Sequence[str]
    ) -> ReloadReport:
        """Change nothing; log every problem and return them."""
        self.log.error(
            "reload ({source}) refused, nothing changed: {problems}",
            source=source,
            path=where,
            problems="; ".join(problems),
        )
        head = f"{where} was not applied, nothing changed:"
        return ReloadReport(False, (head, *problems), self.path or "")

    def _apply(
        self,
        new: Mapping[str, Any],
        certificates: Sequence[tuple[SwappableTLS, CertificateOptions]],
    ) -> list[str]:
        """Apply new's changeable settings; the lines that say what changed."""
        old = self.options
        old_config: ServerConfig = self.hub.config
        config: ServerConfig = replace(
            new["config"],
            **{name: getattr(old_config, name) for name in _KEPT_FIELDS},
        )
        changed = _changed_settings(old_config, config)
        self.hub.reconfigure(config)
        if old["web-origin"] != new["web-origin"]:
            changed.append("--web-origin")
        for served in self.served:
            if served.door.reconfigure is not None:
                served.door.reconfigure(self.hub, served.factory, new)
        restart = [
            f"--{option}"
            for option in restart_options()
            if self.started.get(option) != new.get(option)
        ]
        if self.history is not None:
            retention = [
                f"--{key}" for key in RETENTION_OPTIONS if old[key] != new[key]
            ]
            if retention:
                self.history.set_retention(new["history-days"], new["history-bound"])
                changed.extend(retention)
        elif not new["no-history"]:  # a cluster's Redis history: set at its start
            restart.extend(
                f"--{key}" for key in RETENTION_OPTIONS if self.started[key] != new[key]
            )
        lines = ["changed: " + ", ".join(changed) if changed else "no setting changed"]
        for listener, options in certificates:
            before = listener.fingerprint
            listener.swap(options)
            after = listener.fingerprint
            if after != before:
                lines.append(
                    f"TLS listener {listener.description}: new certificate "
                    f"(SHA-256 {after}) for new connections"
                )
        if restart:
            lines.append("needs a restart: " + ", ".join(restart))
        self.options = new
        return lines


class ReloadOnSignal(Service):
    """Reloads on SIGHUP, on the reactor's thread (systemctl reload chatd).

    The handler only schedules the reload (reactor.callFromThread is what may
    be called from a signal handler); the previous handler comes back when
    the service stops. twistd itself uses SIGUSR1 (log rotation with
    --logfile), never SIGHUP.
    """

    def __init__(self, reloader: Reloader, reactor: Any) -> None:
        self.reloader = reloader
        self.reactor = reactor  # IReactorFromThreads
        self._previous: Any = None

    def privilegedStartService(self) -> None:
        # twistd binds the listeners here: the handler goes in first (this
        # service is added before them), so that a SIGHUP sent as soon as a
        # port is open reloads rather than ends the process (SIGHUP's default).
        super().privilegedStartService()
        self._install()

    def startService(self) -> None:
        super().startService()
        self._install()

    def _install(self) -> None:
        if self._previous is None:
            self._previous = signal.signal(signal.SIGHUP, self._on_signal)

    def stopService(self) -> None:
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.reactor.callFromThread(self.reloader.reload, "SIGHUP")
