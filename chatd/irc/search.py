"""SEARCH for IRC clients: soju's `soju.im/search` extension.

`SEARCH text=...;in=...;from=...;before=...;after=...;limit=...`: the
attributes are key=value pairs split by `;`, each value escaped as a message
tag's. The answer is a `soju.im/search` batch of the messages found, each the
PRIVMSG it was first shown as (tagged time and msgid, as CHATHISTORY's), in
ascending order as the spec asks: the newest `limit` matches, oldest first.
What the asker may search is the model's (chatd.model.search), as for the
line door's /search; refusals are standard replies, `FAIL SEARCH <code>`.

docs/irc.md, Searching history (soju.im/search), says what is supported.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.python.failure import Failure

from chatd.irc.history import (
    HistorySession,
    Refused,
    entry_lines,
    parse_time,
    standard_fail,
)
from chatd.irc.message import IrcMessage, irc_line, unescape_tag_value
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.search import SEARCH_MAX, Request, Result
from chatd.model.search import search as search_history
from chatd.store.interface import Entry, HistoryUnavailable, SearchTooSlow, id_at

CAP = "soju.im/search"
BATCH_TYPE = "soju.im/search"
# ChatError codes answered as INVALID_PARAMS (the request itself); the rest
# by their own standard reply code below.
_CODES = {
    ErrorCode.THROTTLED: "TEMPORARILY_UNAVAILABLE",
    ErrorCode.NO_HISTORY: "INTERNAL_ERROR",
    ErrorCode.NOT_IDENTIFIED: "ACCOUNT_REQUIRED",
}


SearchRefused = Refused  # a SEARCH's


def fail(session: HistorySession, code: str, *params: str, text: str) -> bytes:
    """FAIL SEARCH code params :text."""
    return standard_fail(session, "SEARCH", code, *params, text=text)


def _invalid(session: HistorySession, attribute: str, why: str) -> SearchRefused:
    return SearchRefused(fail(session, "INVALID_PARAMS", attribute, text=why))


def attributes(text: str) -> dict[str, str]:
    """The attributes of SEARCH's parameter: key=value;... (values unescaped)."""
    found: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, _, value = part.partition("=")
        found[key.lower()] = unescape_tag_value(value)
    return found


def request_of(session: HistorySession, text: str) -> Request:
    """Read SEARCH's attributes as a search Request, or raise SearchRefused."""
    given = attributes(text)
    words = given.get("text", "")
    if not words.strip():
        raise _invalid(session, "text", "A text= attribute with words is needed")
    bounds: dict[str, int] = {}
    for key in ("before", "after"):
        if key in given:
            millis = parse_time(given[key])
            if millis is None:
                raise _invalid(session, key, f"Invalid {key}= timestamp")
            # The spec's bounds take the messages at that time too.
            bounds[key] = id_at(millis + 1) if key == "before" else id_at(millis) - 1
    limit = SEARCH_MAX
    if "limit" in given:
        value = given["limit"]
        if not (value.isascii() and value.isdecimal()) or not value.strip("0"):
            raise _invalid(session, "limit", "Invalid limit")
        limit = min(int(value) if len(value) <= 9 else SEARCH_MAX, SEARCH_MAX)
    return Request(
        words,
        target=given.get("in") or None,
        before=bounds.get("before"),
        after=bounds.get("after"),
        nick=given.get("from") or None,
        limit=limit,
    )


def search(session: HistorySession, msg: IrcMessage) -> None:
    """SEARCH <attributes>: a soju.im/search batch of what the asker may read."""
    try:
        if not session.caps.has(CAP):
            raise SearchRefused(
                fail(session, "INVALID_PARAMS", text=f"Negotiate {CAP} first")
            )
        user = session.user
        if user is None:  # the command table asks registration first
            return
        request = request_of(session, msg.params[0])
        try:
            answer = search_history(session.accounts, user, request)
        except ChatError as error:
            code = _CODES.get(error.code, "INVALID_PARAMS")
            raise SearchRefused(fail(session, code, text=error.text)) from None
    except SearchRefused as refusal:
        session.send(refusal.data)
        return
    session.charge_answer(request.limit)  # by the lines it may answer
    budget = session.server.config.sendq // 2  # as CHATHISTORY's answers
    spelled = answer.addCallback(lambda results: batch(session, results, budget))
    spelled.addErrback(_refused, session)
    late = fail(session, "INTERNAL_ERROR", text="The search did not answer in time")
    session.send_later(spelled, late)


def batch(session: HistorySession, results: list[Result], budget: int) -> bytes:
    """The soju.im/search batch (plain lines without batch) of results.

    results come newest first; the batch is oldest first. Past budget bytes
    the oldest are left out (the newest always goes).
    """
    caps = session.caps
    time, msgid = caps.has("server-time"), caps.has("message-tags")
    reference = session.batch_id() if caps.has("batch") else None
    me = session.user.nick if session.user is not None else "*"
    body: list[bytes] = []
    size = 0
    for result in results:
        entry = result.entry
        if not result.private:
            data = entry_lines(entry, result.target, time, msgid, reference)
        elif result.mine:
            data = entry_lines(
                _said_by(entry, me), result.target, time, msgid, reference
            )
        else:
            data = entry_lines(
                _said_by(entry, result.target), me, time, msgid, reference
            )
        size += len(data)
        if body and size > budget:
            break
        body.append(data)
    body.reverse()
    if reference is None:
        return b"".join(body)
    source = session.server.name
    return b"".join(
        [
            irc_line("BATCH", f"+{reference}", BATCH_TYPE, source=source),
            *body,
            irc_line("BATCH", f"-{reference}", source=source),
        ]
    )


def _said_by(entry: Entry, nick: str) -> Entry:
    """entry as said by nick: a private message replays from a side's name."""
    return replace(entry, nick=nick)


def _refused(failure: Failure, session: HistorySession) -> bytes:
    """The FAIL for a search the store could not answer."""
    if failure.check(SearchTooSlow):
        return fail(
            session,
            "TEMPORARILY_UNAVAILABLE",
            text="That search took too long: add words, or name a target with in=",
        )
    failure.trap(HistoryUnavailable)
    return fail(
        session,
        "INTERNAL_ERROR",
        text=f"The search could not be run: {failure.value.reason}",
    )
