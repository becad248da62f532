"""/rehash: a server operator has the server re-read its config file.

The model says who may (Chat.check_server_operator); the reload itself is
chatd.ops.reload's, reached through the connection (Session.rehash). The
answer is INFO lines: what changed and what needs a restart, or every
problem that made the reload change nothing (docs/protocol.md, "Reloading
the configuration").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatd.line.session import Session

DOING = "reload the configuration"


def rehash(session: Session, args: list[str]) -> None:
    """/rehash: re-read the config file and apply what may change (operators)."""
    user = session.registered_user()
    session.chat.check_server_operator(user, DOING)
    report = session.rehash()
    head = "Reloaded the configuration." if report.applied else "Reload refused."
    session.send_info(head)
    for text in report.lines:
        session.send_info(text)
