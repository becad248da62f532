"""Logs as JSON, one object a line, for log shippers: `twistd --logger ...`.

    twistd -n --logger chatd.ops.logs.json_to_stdout chatd ...

twistd's --logger takes the name of a function that makes a log observer;
twistd calls it with no arguments, so json_to_stdout writes to standard
output (the journal under systemd; docs/running.md). Each line is

    {"time": "2026-12-01T09:30:00.123Z", "level": "info",
     "namespace": "chatd.net.connection.Connection",
     "message": "127.0.0.1:40512 registered as alice",
     "peer": "127.0.0.1:40512", "nick": "alice"}

the formatted message and the event's own fields (chatd logs with named
fields, never pre-formatted text: STYLE.md, section 5), plus "traceback"
for a failure. Fields that are not plain JSON values are written as text.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO

from twisted.logger import FileLogObserver, LogEvent, formatEvent

# Keys of Twisted's own bookkeeping (and of legacy log.msg events) left out:
# what they say is in time, level, namespace and message already.
_SKIPPED = frozenset({"message", "format", "time", "isError", "why", "failure"})
_PLAIN = (str, int, float, bool, type(None))


def event_as_json(event: LogEvent) -> str:
    """One log event as one line of JSON (with its newline)."""
    stamp = event.get("log_time")
    when = datetime.fromtimestamp(stamp if stamp is not None else 0.0, UTC)
    level = event.get("log_level")
    record: dict[str, object] = {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", "-"),
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in _SKIPPED or key in record:
            continue
        record[key] = value if isinstance(value, _PLAIN) else str(value)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False) + "\n"


def json_file_observer(out: IO[str]) -> FileLogObserver:
    """A log observer writing each event to out as a line of JSON."""
    return FileLogObserver(out, event_as_json)


def json_to_stdout() -> FileLogObserver:
    """For twistd's --logger: events as JSON lines on standard output."""
    return json_file_observer(sys.stdout)
