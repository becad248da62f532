"""The JSON log lines (chatd.ops.logs): fields typed, the words in the message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogEvent, capturedLogs

from chatd.ops.logs import event_as_json
from chatd.ops.service import HistoryService
from chatd.store.interface import Bound
from chatd.store.writer import SQLiteHistory


class OpenedHistory:
    """What HistoryService asks of a history at start, and nothing more."""

    path = "chatd.sqlite3"

    def __init__(self, keep_days: float) -> None:
        self.keep_days = keep_days

    def open(self) -> None:
        pass


def as_json(events: Sequence[LogEvent]) -> list[dict[str, Any]]:
    """Each event as its JSON log line reads back."""
    return [json.loads(event_as_json(event)) for event in events]


@pytest.mark.parametrize(
    ("keep_days", "text"),
    [(30.0, "for 30 days"), (0.5, "for 0.5 days"), (0.0, "for ever")],
)
def test_history_days_are_a_number_and_the_words_are_in_the_message(
    keep_days: float, text: str
) -> None:
    """`"days": 30`, not `"days": "for 30 days"` (issue 25); 0 is for ever."""
    service = HistoryService(cast(SQLiteHistory, OpenedHistory(keep_days)))
    with capturedLogs() as events:
        service.startService()
    (record,) = [r for r in as_json(events) if "history kept" in r["message"]]
    assert record["message"] == f"history kept in chatd.sqlite3, {text}"
    assert record["days"] == keep_days
    assert isinstance(record["days"], float)
    assert record["path"] == "chatd.sqlite3"


@pytest.mark.parametrize(
    ("bound", "text"),
    [
        (Bound(10, 100), "(10 a room, 100 in all)"),
        (Bound(0, 100), "(no bound a room, 100 in all)"),
        (Bound(10, 0), "(10 a room, no bound in all)"),
    ],
)
def test_history_bounds_are_numbers_and_no_bound_is_zero(
    bound: Bound, text: str
) -> None:
    """The bound's fields are ints (0: no bound), never the words "no bound"."""
    history = SQLiteHistory("chatd.sqlite3", Clock(), Clock(), bound=bound)  # type: ignore[arg-type]
    with capturedLogs() as events:
        history._bounded(3)
    (record,) = as_json(events)
    assert record["message"] == f"history: deleted 3 messages past the bound {text}"
    assert (record["room"], record["total"], record["count"]) == (
        bound.room,
        bound.total,
        3,
    )
    assert all(isinstance(record[key], int) for key in ("room", "total", "count"))


def test_no_text_field_has_spaces_around_it() -> None:
    """Fields carry one spelling: no leading or trailing blanks in any string."""
    service = HistoryService(cast(SQLiteHistory, OpenedHistory(30.0)))
    with capturedLogs() as events:
        service.startService()
    for record in as_json(events):
        for key, value in record.items():
            if isinstance(value, str) and key != "message":
                assert value == value.strip(), (key, value)
