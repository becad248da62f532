"""IRCv3 draft/message-redaction on the IRC door (docs/irc.md, Deleting messages).

REDACT from an IRC client: the spec's REDACT line to clients with the cap,
nothing to the others, FAIL REDACT for refusals, and CHATHISTORY leaving the
message out afterwards; a deletion on the line door reaches IRC the same way.
"""

from __future__ import annotations

import pytest
from helpers import connect, lines
from test_irc_history import FULL, batch_of
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.message import parse_message
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated
REDACTING = (*FULL, "draft/message-redaction")


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return ChatFactory(ServerConfig(flood_rate=0.0), clock, store)


def live_ids(store: MemoryHistory, room: str) -> list[int]:
    return [entry.id for entry in store.rooms[room] if entry.text]


def test_the_cap_is_offered_with_history_only(clock: Clock) -> None:
    """CAP LS lists draft/message-redaction when history is kept."""
    with_history = ChatFactory(ServerConfig(), clock, MemoryHistory(clock))
    proto, out = irc_connect(with_history, "alice")
    proto.dataReceived(b"CAP LS 302\r\n")
    assert "draft/message-redaction" in out.value().decode()
    without = ChatFactory(ServerConfig(), clock, None)
    proto, out = irc_connect(without, "bob")
    proto.dataReceived(b"CAP LS 302\r\n")
    assert "draft/message-redaction" not in out.value().decode()


def test_redact_own_message_reaches_cap_clients_and_chathistory_forgets(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """alice REDACTs her PRIVMSG: bob (cap) gets `:alice!... REDACT #dev <id>
    :reason`, carol (no cap) nothing, a line client with /ids on DELETED;
    CHATHISTORY LATEST no longer has it."""
    alice, a_out = irc_connect(factory, "alice", *REDACTING)
    bob, b_out = irc_connect(factory, "bob", *REDACTING)
    carol, c_out = irc_connect(factory, "carol", *FULL)
    dave, d_out = connect(factory, "dave")
    dave.dataReceived(b"/ids on\r\n/join #dev\r\n")
    for proto in (alice, bob, carol):
        proto.dataReceived(b"JOIN #dev\r\n")
    alice.dataReceived(b"PRIVMSG #dev :my phone is 555-0100\r\n")
    alice.dataReceived(b"PRIVMSG #dev :kept\r\n")
    first, _ = live_ids(store, "#dev")
    for out in (a_out, b_out, c_out, d_out):
        out.clear()
    alice.dataReceived(f"REDACT #dev {first} :oops\r\n".encode())
    (line,) = lines(b_out)
    message = parse_message(line)
    assert message.command == "REDACT"
    assert message.params == ("#dev", str(first), "oops")
    assert message.source is not None and message.source.startswith("alice!")
    assert lines(c_out) == []
    assert lines(d_out) == [f"DELETED #dev {first} alice oops"]
    assert [parse_message(text).command for text in lines(a_out)] == ["REDACT"]
    bob.dataReceived(b"CHATHISTORY LATEST #dev * 10\r\n")
    target, texts = batch_of(lines(b_out))
    assert (target, texts) == ("#dev", ["kept"])


def test_redact_refusals_are_fail_redact(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """Someone else's message: REDACT_FORBIDDEN; an unknown or malformed
    msgid: UNKNOWN_MSGID; a room that is not there: INVALID_TARGET."""
    alice, a_out = irc_connect(factory, "alice", *REDACTING)
    bob, b_out = irc_connect(factory, "bob", *REDACTING)
    alice.dataReceived(b"JOIN #dev\r\n")
    bob.dataReceived(b"JOIN #dev\r\n")  # alice made #dev: bob is no operator
    alice.dataReceived(b"PRIVMSG #dev :alice's words\r\n")
    (msg_id,) = live_ids(store, "#dev")
    b_out.clear()

    def fail(command: str) -> tuple[str, ...]:
        bob.dataReceived(command.encode() + b"\r\n")
        (line,) = lines(b_out)
        message = parse_message(line)
        assert message.command == "FAIL", line
        return message.params[:-1]

    assert fail(f"REDACT #dev {msg_id}") == (
        "REDACT",
        "REDACT_FORBIDDEN",
        "#dev",
        str(msg_id),
    )
    assert fail("REDACT #dev 12") == ("REDACT", "UNKNOWN_MSGID", "#dev", "12")
    assert fail("REDACT #dev abc") == ("REDACT", "UNKNOWN_MSGID", "#dev", "abc")
    assert fail(f"REDACT #nowhere {msg_id}") == ("REDACT", "INVALID_TARGET", "#nowhere")
    assert live_ids(store, "#dev") == [msg_id]
    # The room's operator (alice made it) may.
    alice.dataReceived(f"REDACT #dev {msg_id} spam\r\n".encode())
    assert live_ids(store, "#dev") == []


def test_a_line_deletion_reaches_irc_as_redact(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """/delete on the line door: IRC clients with the cap see REDACT."""
    bob, b_out = irc_connect(factory, "bob", *REDACTING)
    bob.dataReceived(b"JOIN #lobby\r\n")
    alice, a_out = connect(factory, "alice")
    alice.dataReceived(b"hello\r\n")
    (msg_id,) = live_ids(store, "#lobby")
    b_out.clear()
    alice.dataReceived(f"/delete #lobby {msg_id}\r\n".encode())
    (line,) = lines(b_out)
    assert parse_message(line).params == ("#lobby", str(msg_id))
