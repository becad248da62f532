"""A non-zero exit code for twistd, when chatd refuses to run after the reactor started.

A refusal found before the reactor runs raises SystemExit with its sentence
(twistd exits 1). One found later (a cluster node whose name a live node
holds learns it from Redis) can only stop the reactor, and twistd then exits
0, which systemd's Restart=on-failure takes for a clean stop. exit_code_at_end
sets the code the process ends with once twistd has finished its clean stop.
"""

from __future__ import annotations

import atexit
import os
import sys


def exit_code_at_end(code: int = 1) -> None:
    """Have the process exit with code after twistd returns (and stops cleanly)."""
    atexit.register(_exit, code)


def _exit(code: int) -> None:
    # atexit ignores SystemExit from a handler: only _exit sets the code. This
    # one was registered last, so it runs first; the rest of the interpreter's
    # clean-up is unneeded for a process that is ending (its threads are joined
    # before atexit runs), so only the buffered output is written.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
