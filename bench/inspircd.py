"""InspIRCd as a server under test: its config for one run, and starting it."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import shutil
import subprocess
from pathlib import Path

from bench.scenarios import Settings
from bench.servers import (
    Placement,
    Server,
    ServerError,
    _launch,
    _wait_for_log,
    free_port,
)

# InspIRCd registers a client only on its once-a-second tick (the user manager's
# background check), however soon NICK and USER arrived; a JOIN sent before that
# gets 451. So its clients JOIN after the welcome (001): up to
# Settings.welcome_window of them wait for it at once, and --reg-window of them
# have their JOIN in flight, as with the other servers (bench/loadgen.py).
# The largest <performance:netbuffersize> InspIRCd takes (a NUL ends the buffer);
# a value out of range (65536 too) silently becomes the default, 10240.
NETBUFFER_MAX = 65534
# InspIRCd waits for a client's input edge-triggered and reads one netbuffer per
# wake-up (and one more, tried after the wake-up's work): what a burst leaves
# unread in the kernel is read a netbuffer a second, on its loop's timeout,
# until the client sends again. A fanout sender whose window is full sends
# nothing more, so the default window holds at most one netbuffer of messages
# (1000 messages at N = 100 fit: the cap only binds below that, in --quick).
INSPIRCD_WINDOW_BYTES = NETBUFFER_MAX
INSPIRCD_READY = re.compile(
    r"InspIRCd is now running as|(?P<failed>listeners failed to bind)"
)
INSPIRCD_CONF = """\
# Written by chatd's benchmark (bench/inspircd.py) for one run; loopback only.
<server name="bench.localhost" description="chatd benchmark" network="bench">
<admin name="chatd benchmark" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
# One class for everybody, with every throttle lifted:
# - commandrate (millicommands a second forgiven) and threshold (penalty allowed,
#   in commands) so large that no client reaches the penalty limit, and fakelag
#   off, so none is held back either: the fanout sender's commands are all
#   handled in the read that brought them, as ngIRCd's +F sender's are not;
# - softsendq (a client's own output above which InspIRCd stops reading its
#   commands), hardsendq (output above which it is dropped) and recvq (unhandled
#   input above which it is dropped) of 64 MiB;
# - no cap on clients per address (localmax, globalmax) or in the class (limit);
# - resolvehostnames: no reverse DNS lookup per client (no ident module loaded);
# - pingfreq and timeout (registration) of an hour: idle clients are never pinged.
<connect name="bench" allow="*"
         commandrate="1000000000" threshold="1000000" fakelag="no"
         softsendq="67108864" hardsendq="67108864" recvq="67108864"
         localmax="1000000" globalmax="1000000" limit="1000000" maxchans="100"
         resolvehostnames="no" pingfreq="3600" timeout="3600">
# netbuffersize: bytes per read of a client, at most {netbuffer_max};
# somaxconn: the accept backlog (the kernel caps it at net.core.somaxconn);
# softlimit: clients it accepts, here the open-file limit it starts with;
# clonesonconnect: no clone count at accept (no limits to check it against).
<performance netbuffersize="{netbuffer_max}" somaxconn="4096"
             softlimit="{softlimit}" clonesonconnect="no" quietbursts="yes">
# The resolver of core_dns is never asked (resolvehostnames="no" above); should
# it be, it asks 127.0.0.1 rather than the machine's nameserver.
<dns server="127.0.0.1" timeout="1">
<files motd="{workdir}/motd.txt">
# Errors and notices, not a line per client; flush="1": each line at once.
<log method="file" type="* -USERINPUT -USEROUTPUT -CONNECT -QUIT"
     level="default" flush="1" target="{workdir}/ircd.log">
"""


def inspircd_settings(settings: Settings) -> Settings:
    """The settings of InspIRCd's runs: fanout's window of one netbuffer."""
    return dataclasses.replace(settings, window_bytes=INSPIRCD_WINDOW_BYTES)


def inspircd_conf(port: int, workdir: Path, softlimit: int) -> str:
    """The inspircd.conf of one run: listening on 127.0.0.1:port, unthrottled."""
    return INSPIRCD_CONF.format(
        port=port, workdir=workdir, softlimit=softlimit, netbuffer_max=NETBUFFER_MAX
    )


def inspircd_path() -> str | None:
    """Return the inspircd binary, or None if it is not installed."""
    return shutil.which("inspircd") or next(
        (
            p
            for p in ("/usr/sbin/inspircd", "/usr/local/sbin/inspircd")
            if Path(p).exists()
        ),
        None,
    )


def inspircd_version() -> str:
    """Return inspircd's version line, or '' if it is not installed."""
    binary = inspircd_path()
    if binary is None:
        return ""
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return (done.stdout.splitlines() or [""])[0]


def inspircd_command(binary: str, conf: Path) -> list[str]:
    """The command line: in the foreground, no pid file, as root only if we are."""
    root = ["--runasroot"] if os.geteuid() == 0 else []
    return [binary, "--nofork", "--nopid", *root, "--config", str(conf)]


def start_inspircd(workdir: Path, placement: Placement) -> Server:
    """Write a loopback-only inspircd.conf and run `inspircd --nofork` with it."""
    binary = inspircd_path()
    if binary is None:
        raise ServerError(
            "inspircd is not installed: on Debian, `apt-get install -y inspircd`; "
            "or run the benchmark without it (--server both)"
        )
    port = free_port()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    softlimit = min(placement.server_nofile or soft, hard)  # the limit it starts with
    conf = workdir / "inspircd.conf"
    conf.write_text(inspircd_conf(port, workdir, softlimit))
    (workdir / "motd.txt").write_text("bench\n")
    command = inspircd_command(binary, conf)
    process, log_path = _launch(
        "inspircd", command, workdir, placement, dict(os.environ)
    )
    found = _wait_for_log(process, log_path, INSPIRCD_READY)
    server = Server(
        "inspircd", process, port, log_path, command, more_logs=(workdir / "ircd.log",)
    )
    if found.group("failed"):
        server.stop()
        raise ServerError(
            f"inspircd could not listen on port {port}:\n{server.log_tail()}"
        )
    return server
