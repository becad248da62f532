"""/search on the line door: FOUND lines, newest first, then ENDSEARCH.

docs/protocol.md, Searching history (extension). What the asker may search
is the model's (chatd.model.search); this module reads the command and
spells the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.python.failure import Failure

from chatd.line.session import Session
from chatd.line.wire import line
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import clean_text
from chatd.model.search import SEARCH_COUNT, Request, Result
from chatd.model.search import search as search_history
from chatd.model.times import utc_time
from chatd.store.interface import HistoryUnavailable, SearchTooSlow

USAGE = "/search <words> [in <#room> | <nick>] [before <id>]"


def search_args(text: str) -> Request:
    """Read <words> [in <target>] [before <id>], or raise ChatError(BAD_ARGS).

    The clauses are the last words, in either order; `in` and `before`
    elsewhere are words to search for.
    """
    words = text.split()
    target: str | None = None
    before: int | None = None
    for _ in range(2):
        if len(words) < 3:
            break
        clause, value = words[-2].lower(), words[-1]
        if clause == "before" and before is None:
            if not (value.isascii() and value.isdecimal() and len(value) <= 19):
                raise ChatError(ErrorCode.BAD_ARGS, f"{value} is not a message id")
            before = int(value)
        elif clause == "in" and target is None:
            target = value
        else:
            break
        del words[-2:]
    if not words:
        raise ChatError(ErrorCode.BAD_ARGS, f"usage: {USAGE}")
    return Request(" ".join(words), target=target, before=before, limit=SEARCH_COUNT)


def found_lines(results: Sequence[Result], budget: int) -> bytes:
    """FOUND lines for results (newest first) within budget bytes, then
    ENDSEARCH with how many were sent: past the budget the oldest are left
    out (the newest always goes), and the last id sent is where `before`
    goes on."""
    parts: list[bytes] = []
    size = 0
    for result in results:
        entry = result.entry
        data = line(
            "FOUND",
            result.target,
            str(entry.id),
            utc_time(entry.time),
            entry.kind.value,
            entry.nick,
            text=entry.text,
        )
        size += len(data)
        if parts and size > budget:
            break
        parts.append(data)
    parts.append(line("ENDSEARCH", str(len(parts))))
    return b"".join(parts)


def _error_line(code: ErrorCode, text: str) -> bytes:
    return line("ERR", code.value, text=clean_text(text))


def refused(failure: Failure) -> bytes:
    """The ERR line for a search the store could not answer."""
    if failure.check(SearchTooSlow):
        return _error_line(
            ErrorCode.BAD_ARGS,
            "that search took too long: add words, or name a room with in <#room>",
        )
    failure.trap(HistoryUnavailable)
    reason = failure.value.reason
    return _error_line(ErrorCode.NO_HISTORY, f"history is unavailable: {reason}")


_LATE = _error_line(
    ErrorCode.NO_HISTORY, "history is unavailable: it did not answer in time"
)


def search(session: Session, args: list[str]) -> None:
    """/search <words> [in <#room> | <nick>] [before <id>]: kept messages that
    have every word, newest first (FOUND lines, then ENDSEARCH)."""
    user = session.registered_user()
    request = search_args(args[0])
    answer = search_history(session.accounts, user, request)
    session.charge_answer(request.limit)  # by the lines it may answer
    budget = session.config.sendq // 2  # as /history: never fills the queue
    spelled = answer.addCallback(found_lines, budget).addErrback(refused)
    session.send_later(spelled, _LATE)
