"""History on the IRC door: tags on live messages, the backfill, CHATHISTORY.

IrcConnection on StringTransport and a fake store (MemoryHistory) on a Clock,
beside line-protocol users, so that what IRC shows can be held against the
HISTORY lines of the same messages.
"""

from __future__ import annotations

import pytest
from helpers import NOW, connect, lines
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import HISTORY_MAX, ServerConfig
from chatd.factory import ChatFactory
from chatd.irc.history import parse_time
from chatd.irc.message import parse_message
from chatd.irc.protocol import IrcConnection, irc_server
from chatd.irc.render import MSGID, TIME
from chatd.line.wire import parse_server_line, utc_time
from chatd.model.chat import Joined
from chatd.store.interface import Entry
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
FULL = ("batch", "message-tags", "server-time", "draft/chathistory")


def make(clock: Clock, store: MemoryHistory | None, **settings: object) -> ChatFactory:
    settings.setdefault("flood_rate", 0.0)
    return ChatFactory(ServerConfig(**settings), clock, store)  # type: ignore[arg-type]


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    return make(clock, store)


def say_many(clock: Clock, factory: ChatFactory, room: str, count: int) -> None:
    """A line user, carol, says count numbered messages in room, 20 ms apart."""
    speaker, _ = connect(factory, "carol")
    speaker.dataReceived(f"/join {room}\r\n".encode())
    for n in range(count):
        clock.advance(0.02)
        speaker.dataReceived(f"message {n}\r\n".encode())


def tags_of(text: str) -> dict[str, str]:
    return parse_message(text).tags


def batch_of(received: list[str]) -> tuple[str, list[str]]:
    """Check one chathistory batch; return its target and the texts inside."""
    opening, *inside, closing = received
    start = parse_message(opening)
    assert start.command == "BATCH" and start.params[1] == "chathistory", opening
    reference = start.params[0][1:]
    assert parse_message(closing).params == (f"-{reference}",), closing
    texts = []
    for text in inside:
        message = parse_message(text)
        assert message.tags["batch"] == reference and message.command == "PRIVMSG"
        texts.append(message.params[1])
    return start.params[2], texts


# -- live messages -----------------------------------------------------------------


def test_live_message_tags_are_its_history_id_and_time(
    clock: Clock, factory: ChatFactory
) -> None:
    """@msgid is the message's history id, @time its history time: the same as
    the HISTORY line a line user gets for it later."""
    alice, a_out = irc_connect(factory, "alice", "server-time", "message-tags")
    alice.dataReceived(b"JOIN #lobby\r\n")
    carol, c_out = connect(factory, "carol")
    a_out.clear()
    clock.advance(0.0004)  # not a whole millisecond: both cut it the same way
    carol.dataReceived(b"hi there\r\n")
    (live,) = lines(a_out)
    carol.dataReceived(b"/history\r\n")
    history = parse_server_line(lines(c_out)[-2])
    assert history.verb == "HISTORY"
    target, msg_id, time, kind, nick = history.words
    source = f"carol!carol@{carol.host}"
    assert live == f"@msgid={msg_id};time={time} :{source} PRIVMSG #lobby :hi there"


def test_each_variant_is_rendered_once_and_shared(factory: ChatFactory) -> None:
    """One broadcast to IRC clients with every mix of server-time and
    message-tags is spelled once, and each gets the tags it asked for; a JOIN
    has no msgid, so message-tags alone gives it the very bytes of no tags."""
    caps = [(), ("server-time",), ("message-tags",), ("server-time", "message-tags")]
    clients = [irc_connect(factory, f"u{n}", *caps[n % 4]) for n in range(8)]
    for proto, _ in clients:
        proto.dataReceived(b"JOIN #lobby\r\n")
    carol, _ = connect(factory, "carol")
    for _, out in clients:
        out.clear()
    renderer = irc_server(factory).renderer
    before = renderer.renders
    carol.dataReceived(b"hello\r\n")
    assert renderer.renders == before + 1
    got = [lines(out) for _, out in clients]
    assert got[:4] == got[4:]
    plain = f":carol!carol@{carol.host} PRIVMSG #lobby :hello"
    assert got[0] == [plain]
    assert tags_of(got[1][0]).keys() == {"time"}
    assert tags_of(got[2][0]).keys() == {"msgid"}
    assert tags_of(got[3][0]) == {**tags_of(got[1][0]), **tags_of(got[2][0])}
    joined = Joined("#lobby", "dave")
    assert renderer.render(joined, MSGID) is renderer.render(joined, 0)
    assert renderer.render(joined, MSGID | TIME) is renderer.render(joined, TIME)


def test_a_split_message_carries_its_msgid_once(
    clock: Clock, factory: ChatFactory
) -> None:
    """A line user's message too long for one IRC line is several PRIVMSGs; only
    the first has the msgid, so a client that drops seen msgids keeps the rest."""
    alice, a_out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #lobby\r\n")
    carol, _ = connect(factory, "carol")
    a_out.clear()
    carol.dataReceived(b"word " * 250 + b"\r\n")
    received = lines(a_out)
    assert len(received) >= 3
    assert "msgid" in tags_of(received[0])
    assert all("msgid" not in tags_of(text) for text in received[1:])
    assert len({tags_of(text)["time"] for text in received}) == 1
    alice.dataReceived(b"CHATHISTORY LATEST #lobby * 1\r\n")
    replayed = lines(a_out)[1:-1]
    assert len(replayed) == len(received)
    assert [tags_of(text)["time"] for text in replayed] == [
        tags_of(text)["time"] for text in received
    ]
    assert tags_of(replayed[0])["msgid"] == tags_of(received[0])["msgid"]


# -- the backfill after JOIN -------------------------------------------------------


def test_backfill_is_a_batch_after_names(clock: Clock, factory: ChatFactory) -> None:
    """A batch client that did not ask for chathistory gets the room's latest
    messages after JOIN and NAMES, as a chathistory batch, tagged as it asked."""
    say_many(clock, factory, "#dev", 3)
    alice, a_out = irc_connect(factory, "alice", "batch", "server-time", "message-tags")
    alice.dataReceived(b"JOIN #dev\r\n")
    received = lines(a_out)
    assert [parse_message(text).command for text in received[:3]] == [
        "JOIN",
        "353",
        "366",
    ]
    target, texts = batch_of(received[3:])
    assert target == "#dev" and texts == ["message 0", "message 1", "message 2"]
    first = parse_message(received[4])
    assert first.source == "carol"  # the nickname it was said under, alone
    assert first.tags["time"] == utc_time(int((NOW + 0.02) * 1000))
    store = factory.chat.history
    assert isinstance(store, MemoryHistory)
    assert first.tags["msgid"] == str(store.rooms["#dev"][0].id)


def test_backfill_without_batch_is_notices(clock: Clock, factory: ChatFactory) -> None:
    """Without batch the history comes as NOTICEs from the server (nobody
    answers a NOTICE), led by one that says what follows; the time is a tag
    with server-time, else it leads each text."""
    say_many(clock, factory, "#dev", 2)
    plain, p_out = irc_connect(factory, "plain")
    timed, t_out = irc_connect(factory, "timed", "server-time")
    plain.dataReceived(b"JOIN #dev\r\n")
    got = lines(p_out)[3:]
    timed.dataReceived(b"JOIN #dev\r\n")
    assert got == [
        ":chatd NOTICE #dev :The last 2 messages in #dev, since 2026-11-30 23:50 UTC:",
        ":chatd NOTICE #dev :[2026-11-30 23:50 UTC] <carol> message 0",
        ":chatd NOTICE #dev :[2026-11-30 23:50 UTC] <carol> message 1",
    ]
    stamped = lines(t_out)[3:]
    assert (
        stamped[1]
        == "@time=2026-11-30T23:50:01.143Z :chatd NOTICE #dev :<carol> message 0"
    )


def test_no_backfill_for_chathistory_clients_or_rooms_without_history(
    clock: Clock, factory: ChatFactory
) -> None:
    """A draft/chathistory client asks for itself; a room never spoken in has
    no backfill at all."""
    say_many(clock, factory, "#dev", 2)
    alice, a_out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #dev\r\nJOIN #quiet\r\n")
    assert [parse_message(text).command for text in lines(a_out)] == [
        "JOIN",
        "353",
        "366",
        "JOIN",
        "353",
        "366",
    ]


def test_backfill_comes_before_what_is_said_meanwhile(
    clock: Clock, store: MemoryHistory
) -> None:
    """While the store reads, a message said in the room waits behind the batch:
    never before it, never in it and after it."""
    factory = make(clock, store)
    say_many(clock, factory, "#dev", 2)
    store.manual = True
    alice, a_out = irc_connect(factory, "alice", "batch", "message-tags")
    alice.dataReceived(b"JOIN #dev\r\n")
    carol = factory.chat.users["carol"]
    factory.chat.say(carol, "said meanwhile", room="#dev")
    factory.output.flush_all()
    assert [parse_message(text).command for text in lines(a_out)] == [
        "JOIN",
        "353",
        "366",
    ]
    store.answer()
    received = lines(a_out)
    _, texts = batch_of(received[:-1])
    assert texts == ["message 0", "message 1"]
    assert parse_message(received[-1]).params[1] == "said meanwhile"


# -- CHATHISTORY -------------------------------------------------------------------


@pytest.fixture
def talked(
    clock: Clock, factory: ChatFactory
) -> tuple[IrcConnection, StringTransport, list[Entry]]:
    """alice (all history caps) in #dev, where carol said 10 messages."""
    say_many(clock, factory, "#dev", 10)
    alice, out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    store = factory.chat.history
    assert isinstance(store, MemoryHistory)
    return alice, out, store.rooms["#dev"]


def ask(
    talked: tuple[IrcConnection, StringTransport, list[Entry]], command: str
) -> list[str]:
    """Send a CHATHISTORY line; return the texts of the batch that answers it."""
    alice, out, _ = talked
    alice.dataReceived(command.encode() + b"\r\n")
    target, texts = batch_of(lines(out))
    assert target == "#dev"
    return texts


def msgs(numbers: range | list[int]) -> list[str]:
    return [f"message {n}" for n in numbers]


def test_chathistory_latest(
    talked: tuple[IrcConnection, StringTransport, list[Entry]],
) -> None:
    """LATEST * n: the newest n; LATEST msgid=/timestamp= n: the newest after it."""
    entries = talked[2]
    assert ask(talked, "CHATHISTORY LATEST #dev * 20") == msgs(range(10))
    assert ask(talked, "CHATHISTORY LATEST #DEV * 3") == msgs(range(7, 10))
    assert ask(talked, f"CHATHISTORY LATEST #dev msgid={entries[4].id} 20") == msgs(
        range(5, 10)
    )
    stamp = utc_time(entries[4].time)
    assert ask(talked, f"CHATHISTORY LATEST #dev timestamp={stamp} 20") == msgs(
        range(5, 10)
    )
    assert ask(talked, f"CHATHISTORY LATEST #dev msgid={entries[4].id} 2") == msgs(
        [8, 9]
    )


def test_chathistory_before_and_after(
    talked: tuple[IrcConnection, StringTransport, list[Entry]],
) -> None:
    """BEFORE and AFTER exclude the message (or millisecond) given; BEFORE takes
    the newest of what is before, AFTER the oldest of what is after."""
    entries = talked[2]
    six, three = entries[6], entries[3]
    assert ask(talked, f"CHATHISTORY BEFORE #dev msgid={six.id} 20") == msgs(range(6))
    assert ask(
        talked, f"CHATHISTORY BEFORE #dev timestamp={utc_time(six.time)} 2"
    ) == msgs([4, 5])
    assert ask(talked, f"CHATHISTORY AFTER #dev msgid={three.id} 20") == msgs(
        range(4, 10)
    )
    assert ask(
        talked, f"CHATHISTORY AFTER #dev timestamp={utc_time(three.time)} 3"
    ) == msgs([4, 5, 6])


def test_chathistory_around_and_between(
    talked: tuple[IrcConnection, StringTransport, list[Entry]],
) -> None:
    """AROUND: half before, the message itself and after; BETWEEN: strictly
    between, forwards from the first or backwards from it, up to the limit."""
    entries = talked[2]
    seven = entries[7]
    assert ask(talked, f"CHATHISTORY AROUND #dev msgid={seven.id} 1") == msgs([7])
    assert ask(talked, f"CHATHISTORY AROUND #dev msgid={seven.id} 3") == msgs([6, 7, 8])
    assert "message 7" in ask(
        talked, f"CHATHISTORY AROUND #dev timestamp={utc_time(seven.time)} 3"
    )
    first, last = entries[0], entries[-1]
    for a, b in (
        (f"msgid={first.id}", f"msgid={last.id}"),
        (
            f"timestamp={utc_time(first.time)}",
            f"timestamp={utc_time(last.time)}",
        ),
    ):
        assert ask(talked, f"CHATHISTORY BETWEEN #dev {a} {b} 20") == msgs(range(1, 9))
        assert ask(talked, f"CHATHISTORY BETWEEN #dev {b} {a} 20") == msgs(range(1, 9))
        assert ask(talked, f"CHATHISTORY BETWEEN #dev {a} {b} 3") == msgs([1, 2, 3])
        assert ask(talked, f"CHATHISTORY BETWEEN #dev {b} {a} 3") == msgs([6, 7, 8])


def test_chathistory_limit_is_lowered_and_isupport_says_so(
    clock: Clock, factory: ChatFactory
) -> None:
    """A limit above CHATHISTORY=100 is lowered to it; 005 carries the token and
    MSGREFTYPES, and CAP LS offers draft/chathistory (with history only)."""
    proto, out = irc_connect(factory, "alice")
    proto.dataReceived(b"VERSION\r\nCAP LS 302\r\n")
    text = "\n".join(lines(out))
    assert (
        f"CHATHISTORY={HISTORY_MAX}" in text and "MSGREFTYPES=msgid,timestamp" in text
    )
    assert "draft/chathistory" in text and "draft/event-playback" not in text
    off = make(clock, None)
    proto, out = irc_connect(off, "bob")
    proto.dataReceived(b"VERSION\r\nCAP LS 302\r\n")
    text = "\n".join(lines(out))
    assert "CHATHISTORY" not in text and "draft/chathistory" not in text


def test_chathistory_refusals(
    talked: tuple[IrcConnection, StringTransport, list[Entry]], factory: ChatFactory
) -> None:
    """FAIL CHATHISTORY INVALID_PARAMS for what cannot be read, INVALID_TARGET
    for a room whose history one may not read (Chat.may_read: here invite-only,
    and one that does not exist); a nickname (private messages are not kept)
    answers an empty batch."""
    alice, out, _ = talked
    bob = connect(factory, "bob")[0]
    bob.dataReceived(b"/join #elsewhere\r\nhello\r\n/mode +i\r\n")
    lines(out)
    for command, code in [
        ("CHATHISTORY SIDEWAYS #dev * 10", "INVALID_PARAMS SIDEWAYS"),
        ("CHATHISTORY LATEST #dev *", "INVALID_PARAMS LATEST"),
        ("CHATHISTORY LATEST #dev * 10 20", "INVALID_PARAMS LATEST"),
        ("CHATHISTORY BEFORE #dev * 10", "INVALID_PARAMS BEFORE *"),
        ("CHATHISTORY BEFORE #dev timestamp=yesterday 10", "INVALID_PARAMS BEFORE"),
        ("CHATHISTORY BEFORE #dev msgid=abc 10", "INVALID_PARAMS BEFORE msgid=abc"),
        ("CHATHISTORY LATEST #dev * 0", "INVALID_PARAMS LATEST 0"),
        ("CHATHISTORY LATEST #dev * ten", "INVALID_PARAMS LATEST ten"),
        ("CHATHISTORY LATEST #elsewhere * 10", "INVALID_TARGET LATEST #elsewhere"),
        ("CHATHISTORY LATEST #nowhere * 10", "INVALID_TARGET LATEST #nowhere"),
        ("CHATHISTORY TARGETS msgid=1 msgid=2 10", "INVALID_PARAMS TARGETS msgid=1"),
    ]:
        alice.dataReceived(command.encode() + b"\r\n")
        (reply,) = lines(out)
        assert reply.startswith(f":chatd FAIL CHATHISTORY {code}"), (command, reply)
    alice.dataReceived(b"CHATHISTORY\r\n")
    assert lines(out)[0].split(" ")[1] == "461"
    alice.dataReceived(b"CHATHISTORY LATEST bob * 10\r\n")
    opening, closing = lines(out)
    assert opening.endswith(" chathistory bob") and closing.startswith(":chatd BATCH -")


def test_chathistory_when_history_fails_or_is_off(
    clock: Clock, store: MemoryHistory
) -> None:
    """A store that cannot answer: FAIL ... MESSAGE_ERROR with the reason; a
    server with --no-history says it keeps none."""
    factory = make(clock, store)
    say_many(clock, factory, "#dev", 1)
    alice, out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    store.reason = "the disk is full"
    alice.dataReceived(b"CHATHISTORY LATEST #dev * 10\r\n")
    assert lines(out) == [
        ":chatd FAIL CHATHISTORY MESSAGE_ERROR LATEST #dev :Messages could not be "
        "retrieved: history is unavailable: the disk is full"
    ]
    off = make(clock, None)
    bob, b_out = irc_connect(off, "bob")
    bob.dataReceived(b"JOIN #dev\r\nCHATHISTORY LATEST #dev * 10\r\n")
    assert lines(b_out)[-1].endswith(
        ":Messages could not be retrieved: this server keeps no history"
    )


def test_chathistory_answer_waits_for_the_store_and_keeps_order(
    clock: Clock, store: MemoryHistory
) -> None:
    """The answer comes from the store's thread; a line said meanwhile and the
    answer to a later PING come after the batch."""
    factory = make(clock, store)
    say_many(clock, factory, "#dev", 2)
    alice, out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #dev\r\n")
    out.clear()
    store.manual = True
    alice.dataReceived(b"CHATHISTORY LATEST #dev * 10\r\nPING :after\r\n")
    assert lines(out) == []
    store.answer()
    received = lines(out)
    assert batch_of(received[:-1])[1] == msgs([0, 1])
    assert received[-1] == ":chatd PONG chatd :after"


def test_chathistory_targets(clock: Clock, factory: ChatFactory) -> None:
    """TARGETS lists the rooms one is in whose latest message lies strictly
    between the two times, oldest first, in a draft/chathistory-targets batch."""
    alice, out = irc_connect(factory, "alice", *FULL)
    alice.dataReceived(b"JOIN #a\r\nJOIN #b\r\nJOIN #c\r\n")
    times = {}
    for room in ("#a", "#b", "#c", "#a"):
        clock.advance(0.01)
        alice.dataReceived(f"PRIVMSG {room} :hi\r\n".encode())
        times[room] = utc_time(int(clock.seconds() * 1000))
    out.clear()
    alice.dataReceived(
        b"CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z "
        b"timestamp=2262-01-01T00:00:00.000Z 100\r\n"
    )
    received = lines(out)
    opening = parse_message(received[0])
    assert opening.params[1:] == ("draft/chathistory-targets",)
    listed = [parse_message(text).params for text in received[1:-1]]
    assert listed == [
        ("TARGETS", "#b", times["#b"]),
        ("TARGETS", "#c", times["#c"]),
        ("TARGETS", "#a", times["#a"]),
    ]
    window = f"timestamp={times['#b']} timestamp={times['#a']}"
    alice.dataReceived(f"CHATHISTORY TARGETS {window} 10\r\n".encode())
    assert [parse_message(t).params[1] for t in lines(out)[1:-1]] == ["#c"]


def test_parse_time_reads_server_time() -> None:
    """Timestamps are server-time's: milliseconds, or whole seconds; else None."""
    assert parse_time("2026-11-30T23:50:01.123Z") == 1_796_082_601_123
    assert parse_time("2026-11-30T23:50:01Z") == 1_796_082_601_000
    assert parse_time("2026-11-30 23:50:01.123Z") is None
    assert parse_time("2026-13-30T23:50:01.123Z") is None
