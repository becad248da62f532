"""IRCv3 labeled-response on the IRC door: IrcConnection on StringTransport.

A command tagged label=L by a client with labeled-response and batch gets
its response under L: an ACK, one labeled line, or a labeled-response batch,
also when (part of) the answer comes later from the store.
"""

from __future__ import annotations

import pytest
from helpers import lines
from test_irc_history import FULL, make, say_many
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.factory import ChatFactory
from chatd.irc.labels import MAX_LABEL, has_batch_tag, labeled
from chatd.irc.message import IrcMessage, parse_message
from chatd.irc.protocol import IrcConnection
from chatd.net.answers import ANSWER_WAIT
from chatd.store.memory import MemoryHistory

LABELS = ("batch", "labeled-response")
pytestmark = pytest.mark.dated  # the clock fixture starts at NOW


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return make(clock, store)


def said(proto: IrcConnection, out: StringTransport, text: str) -> list[IrcMessage]:
    """Send one line; return what the client got, parsed."""
    proto.dataReceived(text.encode() + b"\r\n")
    return [parse_message(line) for line in lines(out)]


def response(received: list[IrcMessage], label: str) -> tuple[str, list[IrcMessage]]:
    """Check one labeled-response batch; return its reference and its lines."""
    opening, *inside, closing = received
    assert opening.command == "BATCH", opening
    assert opening.params[1:] == ("labeled-response",), opening
    assert opening.tags == {"label": label}, opening
    reference = opening.params[0][1:]
    assert reference.isalnum()
    assert closing.command == "BATCH" and closing.params == (f"-{reference}",)
    assert "label" not in closing.tags and "batch" not in closing.tags
    assert all("label" not in message.tags for message in inside)
    return reference, inside


def test_one_reply_carries_the_label(factory: ChatFactory) -> None:
    """@label=a1 PING x: the PONG alone, tagged label=a1; no batch."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    (pong,) = said(alice, out, "@label=a1 PING :x")
    assert pong.command == "PONG" and pong.params == ("chatd", "x")
    assert pong.tags == {"label": "a1"}


def test_several_replies_are_a_labeled_batch(factory: ChatFactory) -> None:
    """@label=w WHOIS bob: a labeled-response batch, every line in it tagged
    batch=ref, the label on the BATCH + line only."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    irc_connect(factory, "bob")
    reference, inside = response(said(alice, out, "@label=w WHOIS bob"), "w")
    assert [message.command for message in inside] == ["311", "312", "318"]
    assert all(message.tags == {"batch": reference} for message in inside)


def test_no_reply_is_an_ack(factory: ChatFactory) -> None:
    """@label=p PONG x (no reply) gets @label=p :chatd ACK; a failed PRIVMSG's
    numeric is its (labeled) reply."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    (ack,) = said(alice, out, "@label=p PONG :x")
    assert (ack.command, ack.params, ack.source) == ("ACK", (), "chatd")
    assert ack.tags == {"label": "p"}
    (refusal,) = said(alice, out, "@label=q PRIVMSG nobody :hi")
    assert refusal.command == "401" and refusal.tags == {"label": "q"}
    (unknown,) = said(alice, out, "@label=r FROBNICATE")
    assert unknown.command == "421" and unknown.tags == {"label": "r"}


def test_echo_is_labeled_and_the_others_see_no_label(factory: ChatFactory) -> None:
    """With echo-message, a labeled PRIVMSG's echo carries the label; bob's
    copy does not. To oneself: the delivery unlabeled, then the labeled echo
    (without echo-message: the unlabeled delivery, and an ACK)."""
    alice, a_out = irc_connect(factory, "alice", *LABELS, "echo-message")
    bob, b_out = irc_connect(factory, "bob", *LABELS)
    (echo,) = said(alice, a_out, "@label=m1 PRIVMSG bob :hi")
    assert echo.command == "PRIVMSG" and echo.tags == {"label": "m1"}
    assert [parse_message(text).tags for text in lines(b_out)] == [{}]
    delivery, echo = said(alice, a_out, "@label=m2 PRIVMSG alice :me")
    assert delivery.tags == {} and echo.tags == {"label": "m2"}
    assert (delivery.source, delivery.params) == (echo.source, echo.params)
    # Without a label both are plain; without echo-message there is only the
    # delivery, still unlabeled: the command itself gets an ACK.
    assert [m.tags for m in said(alice, a_out, "PRIVMSG alice :me")] == [{}, {}]
    delivery, ack = said(bob, b_out, "@label=m3 PRIVMSG bob :me")
    assert delivery.command == "PRIVMSG" and delivery.tags == {}
    assert ack.command == "ACK" and ack.tags == {"label": "m3"}


def test_others_lines_during_a_later_answer_are_not_labeled(
    clock: Clock, store: MemoryHistory
) -> None:
    """A labeled JOIN whose backfill comes later from the store: JOIN, NAMES
    and the backfill batch (nested) are one labeled response; what carol
    says meanwhile, and the reply to the next command, come after it, unlabeled."""
    factory = make(clock, store)
    say_many(clock, factory, "#dev", 2)
    store.manual = True
    alice, out = irc_connect(factory, "alice", *LABELS)
    alice.dataReceived(b"@label=j JOIN #dev\r\nPING :next\r\n")
    factory.chat.say(factory.chat.users["carol"], "said meanwhile", room="#dev")
    factory.output.flush_all()
    assert lines(out) == []  # everything waits behind the store's answer
    store.answer()
    received = [parse_message(text) for text in lines(out)]
    reference, inside = response(received[:-2], "j")
    assert [m.command for m in inside] == [
        "JOIN",
        "353",
        "366",
        "BATCH",
        "PRIVMSG",
        "PRIVMSG",
        "BATCH",
    ]
    inner = inside[3].params[0][1:]
    assert inside[3].params[1:] == ("chathistory", "#dev")
    assert inside[3].tags == inside[6].tags == {"batch": reference}
    assert inside[6].params == (f"-{inner}",)
    assert [m.tags["batch"] for m in inside[4:6]] == [inner, inner]
    pong, meanwhile = received[-2:]
    assert meanwhile.params == ("#dev", "said meanwhile") and meanwhile.tags == {}
    assert pong.command == "PONG" and pong.tags == {}


def test_a_labeled_reply_waits_behind_an_earlier_answer(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """An unlabeled CHATHISTORY still reading, then @label=x PING: the labeled
    PONG comes after the history batch, which carries no label."""
    say_many(clock, factory, "#dev", 2)
    alice, out = irc_connect(factory, "alice", *LABELS, *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    store.manual = True
    alice.dataReceived(b"CHATHISTORY LATEST #dev * 5\r\n@label=x PING :y\r\n")
    assert lines(out) == []
    store.answer()
    *history, pong = [parse_message(text) for text in lines(out)]
    assert history[0].params[1:] == ("chathistory", "#dev")
    assert all("label" not in message.tags for message in history)
    assert pong.command == "PONG" and pong.tags == {"label": "x"}


def test_labeled_chathistory_nests_its_batch(
    clock: Clock, factory: ChatFactory
) -> None:
    """@label=h CHATHISTORY LATEST: the chathistory batch inside the
    labeled-response batch, its BATCH lines tagged with the outer reference."""
    say_many(clock, factory, "#dev", 3)
    alice, out = irc_connect(factory, "alice", *LABELS, *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    received = said(alice, out, "@label=h CHATHISTORY LATEST #dev * 2")
    reference, inside = response(received, "h")
    opening, first, second, closing = inside
    inner = opening.params[0][1:]
    assert inner != reference
    assert opening.params[1:] == ("chathistory", "#dev")
    assert opening.tags == closing.tags == {"batch": reference}
    assert [first.params[1], second.params[1]] == ["message 1", "message 2"]
    assert first.tags["batch"] == second.tags["batch"] == inner
    # A refusal is one line: labeled, no batch.
    (refusal,) = said(alice, out, "@label=h2 CHATHISTORY LATEST #nowhere * 2")
    assert refusal.command == "FAIL" and refusal.tags == {"label": "h2"}


def test_a_labeled_answer_that_comes_late_is_its_labeled_fallback(
    clock: Clock, factory: ChatFactory, store: MemoryHistory
) -> None:
    """A store that does not answer within ANSWER_WAIT: the FAIL that replaces
    the answer carries the label; the answer that comes after is dropped."""
    say_many(clock, factory, "#dev", 2)
    alice, out = irc_connect(factory, "alice", *LABELS, *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    store.manual = True
    assert said(alice, out, "@label=slow CHATHISTORY LATEST #dev * 5") == []
    clock.advance(ANSWER_WAIT)
    (fail,) = [parse_message(text) for text in lines(out)]
    assert fail.command == "FAIL" and fail.tags == {"label": "slow"}
    store.answer()
    assert lines(out) == []


def test_escaped_label_comes_back_escaped_the_same(factory: ChatFactory) -> None:
    """A label with escaped characters (\\s \\: \\\\) is sent back escaped."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    alice.dataReceived(b"@label=a\\sb\\:c\\\\d PING :x\r\n")
    (text,) = lines(out)
    assert text.startswith("@label=a\\sb\\:c\\\\d :chatd PONG")
    assert parse_message(text).tags == {"label": "a b;c\\d"}


def test_label_without_the_caps_is_ignored(factory: ChatFactory) -> None:
    """Without labeled-response (or without batch) a label changes nothing:
    no tag on the reply, no ACK."""
    plain, p_out = irc_connect(factory, "plain", "batch")
    assert lines_of(plain, p_out, "@label=x PING :y") == [":chatd PONG chatd :y"]
    assert lines_of(plain, p_out, "@label=x PONG :y") == []
    nobatch, n_out = irc_connect(factory, "nobatch", "labeled-response")
    assert lines_of(nobatch, n_out, "@label=x PING :y") == [":chatd PONG chatd :y"]


def lines_of(proto: IrcConnection, out: StringTransport, text: str) -> list[str]:
    proto.dataReceived(text.encode() + b"\r\n")
    return lines(out)


def test_over_long_label_is_refused_with_its_command(factory: ChatFactory) -> None:
    """A label over 64 bytes: FAIL <command> INVALID_LABEL, and the command is
    not run; 64 bytes is fine."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    long = "x" * (MAX_LABEL + 1)
    (fail,) = said(alice, out, f"@label={long} JOIN #dev")
    assert fail.command == "FAIL" and fail.params[:2] == ("JOIN", "INVALID_LABEL")
    assert "label" not in fail.tags
    assert "#dev" not in factory.chat.rooms
    (pong,) = said(alice, out, f"@label={'é' * (MAX_LABEL // 2)} PING :x")
    assert pong.tags == {"label": "é" * (MAX_LABEL // 2)}


def test_labeled_quit_says_error_and_closes(factory: ChatFactory) -> None:
    """A labeled QUIT closes as an unlabeled one does: its own QUIT back,
    ERROR, then the close."""
    alice, out = irc_connect(factory, "alice", *LABELS)
    quit_, error = said(alice, out, "@label=bye QUIT :night")
    assert quit_.command == "QUIT" and quit_.params == ("Quit: night",)
    assert (quit_.source or "").startswith("alice!")
    assert error.command == "ERROR"
    assert out.disconnecting


def test_framing_keeps_inner_batch_tags() -> None:
    """labeled(): ACK for nothing, the tag added after a line's own tags for
    one line, and batch= only on lines not already in a batch."""
    assert labeled("a", b"", "s", lambda: "r") == b"@label=a :s ACK\r\n"
    assert labeled("a", b"@time=t :s PONG s x\r\n", "s", lambda: "r") == (
        b"@time=t;label=a :s PONG s x\r\n"
    )
    replies = b":s 1 n\r\n@batch=in :s 2 n\r\n"
    framed = labeled("a", replies, "s", lambda: "r").split(b"\r\n")
    assert framed[1:3] == [b"@batch=r :s 1 n", b"@batch=in :s 2 n"]
    assert has_batch_tag(b"@x=1;batch=b :s X") and not has_batch_tag(b":s X b=1")
