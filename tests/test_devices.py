"""One person on several devices (docs/protocol.md, Devices (version 3)).

Each rule of the contract's Devices section on the line door, with
StringTransport and a fake Clock: logging in at the nickname prompt, a second
connection attaching to the same user, the guest rename, what each connection
gets, its own current room, /quit closing one connection, ID lines for room
and kept private messages, away, and always-on; and the model's fan-out
(chatd.model.devices) with recording clients.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, RecordingClient, connect, disconnect, lines, open_connection
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.door import NICK_PROMPT
from chatd.line.wire import utc_time
from chatd.model import devices
from chatd.model.chat import Away, Chat, Message
from chatd.model.devices import ALWAYS_ON_AWAY
from chatd.protocol import LineConnection
from chatd.store.interface import millis
from chatd.store.memory import MemoryHistory

pytestmark = pytest.mark.dated  # the clock fixture starts at NOW
PASSWORD = "s3cret-pw"
Conn = tuple[LineConnection, StringTransport]


CATCH_UP = ("READ ", "HISTORY ", "ENDHISTORY ")


def burst(said: list[str]) -> list[str]:
    """The attach's own lines (WELCOME, JOINs, AWAY): what comes before the
    catch-up (READ, HISTORY, ENDHISTORY), which must follow them."""
    for at, text in enumerate(said):
        if text.startswith(CATCH_UP):
            assert all(rest.startswith(CATCH_UP) for rest in said[at:]), said
            return said[:at]
    raise AssertionError(f"no catch-up after the attach: {said}")


@pytest.fixture
def factory(clock: Clock, store: MemoryHistory) -> ChatFactory:
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP, max_devices=3)
    return ChatFactory(config, clock, store)


def registered(factory: ChatFactory, nick: str) -> Conn:
    """Connect nick and register it as an account (identified at once)."""
    proto, out = connect(factory, nick)
    proto.dataReceived(f"/register {PASSWORD} {PASSWORD}\r\n".encode())
    out.clear()
    return proto, out


def log_in(factory: ChatFactory, nick: str, password: str = PASSWORD) -> Conn:
    """A new connection that answers the nickname prompt with /identify."""
    proto, out = open_connection(factory, port=41000 + len(factory.connections))
    out.clear()
    proto.dataReceived(f"/identify {nick} {password}\r\n".encode())
    return proto, out


def say(conn: Conn, text: str) -> None:
    conn[0].dataReceived(text.encode() + b"\r\n")


# -- logging in and attaching -------------------------------------------------------


def test_a_second_device_attaches_to_the_same_user(factory: ChatFactory) -> None:
    """The laptop is alice in #lobby and #dev; the phone logs in at the prompt:
    WELCOME, then JOIN #lobby and JOIN #dev to the phone only; bob sees nothing,
    and /who lists alice once."""
    laptop = registered(factory, "alice")
    bob = connect(factory, "bob")
    say(laptop, "/join #dev")
    say(bob, "/join #dev")
    lines(laptop[1]), lines(bob[1])
    phone = log_in(factory, "alice")
    welcome, *joins = burst(lines(phone[1]))
    assert welcome.startswith("WELCOME alice ")
    assert welcome.endswith("this connection is one of 2 of your account.")
    assert joins == ["JOIN #lobby alice", "JOIN #dev alice"]
    assert lines(bob[1]) == [] and lines(laptop[1]) == []
    assert phone[0].user is laptop[0].user
    say(bob, "/who #dev")
    assert lines(bob[1])[0] == "USERS #dev alice bob"
    assert len(factory.chat.users) == 2


def test_a_nickname_held_by_an_account_says_how_to_log_in(
    factory: ChatFactory,
) -> None:
    """Choosing alice's nickname at the prompt while her laptop holds it:
    nick-taken says how her own second device logs in; a nickname held by
    someone without an account says only that it is taken."""
    registered(factory, "alice")
    connect(factory, "bob")
    phone, out = open_connection(factory, port=42000)
    out.clear()
    say((phone, out), "alice")
    assert lines(out)[:2] == [
        "ERR nick-taken alice is taken; if it is yours, log in as one more "
        "device: /identify alice <password>",
        f"NICK {NICK_PROMPT}",
    ]
    say((phone, out), "bob")
    assert lines(out)[0] == "ERR nick-taken bob is taken"


def test_the_join_burst_puts_lobby_first(factory: ChatFactory) -> None:
    """A user who left #lobby and came back gets it first all the same."""
    laptop = registered(factory, "alice")
    say(laptop, "/join #dev")
    say(laptop, "/part #lobby")
    say(laptop, "/join #lobby")
    _, *joins = burst(lines(log_in(factory, "alice")[1]))
    assert joins == ["JOIN #lobby alice", "JOIN #dev alice"]


def test_a_wrong_password_at_the_prompt_is_auth_failed_either_way(
    factory: ChatFactory,
) -> None:
    """A wrong password and a name with no account get the same ERR and the
    nickname prompt again; the connection may then choose a nickname."""
    registered(factory, "alice")
    wrong = lines(log_in(factory, "alice", "not-the-one")[1])
    nobody_proto, nobody_out = log_in(factory, "nobody", "not-the-one")
    assert wrong == lines(nobody_out)
    assert wrong[0] == "ERR auth-failed wrong password, or no account of that name"
    assert wrong[1].startswith("NICK ")
    nobody_proto.dataReceived(b"carol\r\n")
    assert lines(nobody_out)[0].startswith("WELCOME carol ")


def test_logging_in_takes_a_free_nickname_as_choosing_it_would(
    factory: ChatFactory,
) -> None:
    """alice's account, nobody connected: WELCOME, INFO, JOIN #lobby, identified."""
    first = registered(factory, "alice")
    first[0].dataReceived(b"/quit\r\n")
    disconnect(first[0])
    proto, out = log_in(factory, "alice")
    got = lines(out)
    assert got[0].startswith("WELCOME alice ")
    assert "INFO You are identified as alice." in got
    assert "JOIN #lobby alice" in got
    assert proto.user is not None and proto.user.account == "alice"
    assert proto.user.devices is None  # one device: no fan-out at all


def test_a_holder_not_identified_is_renamed_to_a_guest(factory: ChatFactory) -> None:
    """mallory holds alice's nickname without its account: RENAME to a guest and an
    INFO saying why, at once; the newcomer is alice."""
    first = registered(factory, "alice")
    first[0].dataReceived(b"/nick alice2\r\n")
    mallory = connect(factory, "alice")
    lines(mallory[1])
    proto, out = log_in(factory, "alice")
    renamed, why = lines(mallory[1])[:2]
    assert renamed.startswith("RENAME alice Guest")
    assert why.startswith("INFO alice is the nickname of an account that just")
    assert lines(out)[0].startswith("WELCOME alice ")
    assert proto.user is not None and proto.user.account == "alice"
    assert proto.user is not first[0].user  # not attached to alice2


def test_an_account_has_at_most_max_devices(factory: ChatFactory) -> None:
    """The fourth connection of an account on a server of --max-devices 3 is
    refused with too-many-devices and asked for a nickname again."""
    registered(factory, "alice")
    log_in(factory, "alice"), log_in(factory, "alice")
    proto, out = log_in(factory, "alice")
    refused, prompt = lines(out)
    assert refused.startswith("ERR too-many-devices alice is connected from 3 ")
    assert prompt.startswith("NICK ") and proto.user is None


def test_identify_at_the_prompt_needs_a_nick_and_a_password(
    factory: ChatFactory,
) -> None:
    proto, out = open_connection(factory)
    out.clear()
    proto.dataReceived(b"/identify s3cret-pw\r\n")
    assert lines(out)[0].startswith("ERR bad-args at the nickname prompt: ")


# -- one user, several connections ----------------------------------------------------


def test_every_connection_gets_what_the_user_gets(factory: ChatFactory) -> None:
    """A room MSG reaches both devices in the same order; bob's PRIV to alice
    reaches both; alice's PRIV from the phone is echoed to both."""
    laptop, bob = registered(factory, "alice"), connect(factory, "bob")
    phone = log_in(factory, "alice")
    lines(phone[1]), lines(laptop[1]), lines(bob[1])
    say(bob, "hi all")
    say(bob, "/msg alice psst")
    assert (
        lines(laptop[1])
        == lines(phone[1])
        == [
            "MSG #lobby bob hi all",
            "PRIV bob alice psst",
        ]
    )
    lines(bob[1])
    say(phone, "/msg bob hello")
    assert lines(laptop[1]) == lines(phone[1]) == ["PRIV alice bob hello"]
    assert lines(bob[1]) == ["PRIV alice bob hello"]


def test_a_join_on_one_device_shows_on_every_device(factory: ChatFactory) -> None:
    laptop, phone = registered(factory, "alice"), None
    phone = log_in(factory, "alice")
    lines(phone[1]), lines(laptop[1])
    say(phone, "/join #dev")
    assert lines(laptop[1]) == ["JOIN #dev alice"]
    assert lines(phone[1])[0] == "JOIN #dev alice"


def test_each_connection_keeps_its_own_current_room(factory: ChatFactory) -> None:
    """The phone /joins #dev; the laptop's plain line still goes to #lobby, the
    phone's to #dev; a /part of #dev on the laptop sends the phone back to #lobby."""
    laptop, bob = registered(factory, "alice"), connect(factory, "bob")
    phone = log_in(factory, "alice")
    say(phone, "/join #dev")
    lines(laptop[1]), lines(phone[1]), lines(bob[1])
    say(laptop, "from the laptop")
    say(phone, "from the phone")
    assert lines(laptop[1]) == [
        "MSG #lobby alice from the laptop",
        "MSG #dev alice from the phone",
    ]
    assert lines(bob[1]) == ["MSG #lobby alice from the laptop"]
    say(laptop, "/part #dev")
    lines(phone[1])
    say(phone, "back in the lobby")
    assert lines(bob[1]) == ["MSG #lobby alice back in the lobby"]


def test_quit_closes_one_connection_and_quit_shows_with_the_last(
    factory: ChatFactory,
) -> None:
    """/quit on the phone: BYE to the phone, nothing to bob; the laptop goes
    on; when it goes too, bob sees QUIT."""
    laptop, bob = registered(factory, "alice"), connect(factory, "bob")
    phone = log_in(factory, "alice")
    lines(laptop[1]), lines(bob[1]), lines(phone[1])
    say(phone, "/quit on the bus")
    assert lines(phone[1])[-1].startswith("BYE ")
    disconnect(phone[0])
    assert lines(bob[1]) == [] and lines(laptop[1]) == []
    say(laptop, "still here")
    assert lines(bob[1]) == ["MSG #lobby alice still here"]
    say(laptop, "/quit home")
    disconnect(laptop[0])
    assert lines(bob[1]) == ["QUIT alice home"]
    assert "alice" not in factory.chat.users


def test_one_device_left_delivers_straight_to_it(factory: ChatFactory) -> None:
    """Back to one connection, the user's deliver is that connection's own."""
    laptop = registered(factory, "alice")
    phone = log_in(factory, "alice")
    user = laptop[0].user
    assert user is not None and user.deliver == user.client.deliver
    disconnect(phone[0])
    assert user.deliver == laptop[0].deliver


# -- live ids ------------------------------------------------------------------------


def test_ids_lead_room_and_kept_private_messages(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """After /ids on: ID <room> before MSG, and ID <other side> before a kept
    PRIV, for each side as it sees it; the ids and times are HISTORY's."""
    alice, bob = registered(factory, "alice"), registered(factory, "bob")
    for conn in (alice, bob):
        say(conn, "/ids on")
        lines(conn[1])
    say(bob, "hello")
    (entry,) = store.rooms["#lobby"]
    stamp = utc_time(entry.time)
    assert lines(alice[1]) == [f"ID #lobby {entry.id} {stamp}", "MSG #lobby bob hello"]
    say(bob, "/msg alice psst")
    id_line, priv = lines(alice[1])
    assert priv == "PRIV bob alice psst"
    assert id_line.startswith("ID bob ")
    bob_id, bob_priv = lines(bob[1])[-2:]
    assert bob_id == "ID alice " + id_line.split(" ", 2)[2] and bob_priv == priv
    assert id_line.split()[3] == utc_time(millis(factory.clock.seconds()))


def test_a_private_message_not_kept_has_no_id(factory: ChatFactory) -> None:
    """Neither side identified: the PRIV is not kept, so no ID line leads it."""
    alice, bob = connect(factory, "alice"), connect(factory, "bob")
    say(alice, "/ids on")
    lines(alice[1])
    say(bob, "/msg alice psst")
    assert lines(alice[1]) == ["PRIV bob alice psst"]


# -- away ----------------------------------------------------------------------------


def test_away_goes_to_room_sharers_and_own_connections(factory: ChatFactory) -> None:
    """/away text: AWAY to bob (who shares #lobby) and both of alice's
    connections, not to carol in no room with her; /away alone: back."""
    laptop, bob = registered(factory, "alice"), connect(factory, "bob")
    phone = log_in(factory, "alice")
    carol = connect(factory, "carol")
    say(carol, "/part #lobby")
    for conn in (laptop, phone, bob, carol):
        lines(conn[1])
    say(phone, "/away at lunch")
    for conn in (laptop, phone, bob):
        assert lines(conn[1]) == ["AWAY alice at lunch"]
    assert lines(carol[1]) == []
    say(laptop, "/away")
    assert lines(bob[1]) == ["AWAY alice "]
    say(laptop, "/away in a meeting")
    tablet = log_in(factory, "alice")
    assert burst(lines(tablet[1]))[-1] == "AWAY alice in a meeting"  # before catch-up


def test_a_sender_is_told_of_away_once_per_conversation(factory: ChatFactory) -> None:
    """bob's first PRIV to away alice: PRIV, then AWAY; the second: PRIV only;
    a new away text is told again."""
    alice, bob = connect(factory, "alice"), connect(factory, "bob")
    say(alice, "/away gone fishing")
    lines(bob[1])
    say(bob, "/msg alice one")
    assert lines(bob[1]) == ["PRIV bob alice one", "AWAY alice gone fishing"]
    say(bob, "/msg alice two")
    assert lines(bob[1]) == ["PRIV bob alice two"]
    say(alice, "/away gone home")
    lines(bob[1])
    say(bob, "/msg alice three")
    assert lines(bob[1]) == ["PRIV bob alice three", "AWAY alice gone home"]


# -- always-on -----------------------------------------------------------------------


def test_always_on_needs_an_account(factory: ChatFactory) -> None:
    alice = connect(factory, "alice")
    say(alice, "/always-on on")
    assert lines(alice[1])[0].startswith("ERR not-identified ")


def test_always_on_keeps_the_user_with_no_device(
    factory: ChatFactory, store: MemoryHistory
) -> None:
    """alice always-on closes her only connection: no QUIT, AWAY with the
    server's text, /who still lists her, bob's room and private messages are
    kept; she logs in again: back (AWAY alice with empty text), attached."""
    alice, bob = registered(factory, "alice"), connect(factory, "bob")
    lines(alice[1])
    say(alice, "/always-on on")
    assert lines(alice[1])[0].startswith("INFO Always-on is on")
    lines(bob[1])
    disconnect(alice[0])
    assert lines(bob[1]) == [f"AWAY alice {ALWAYS_ON_AWAY}"]
    say(bob, "/who")
    assert lines(bob[1]) == ["USERS #lobby alice bob", f"AWAY alice {ALWAYS_ON_AWAY}"]
    say(bob, "while you were out")
    say(bob, "/msg alice ping")
    assert lines(bob[1])[-1] == f"AWAY alice {ALWAYS_ON_AWAY}"
    assert [e.text for e in store.rooms["#lobby"]] == ["while you were out"]
    assert sum(map(len, store.conversations.values())) == 1
    proto, out = log_in(factory, "alice")
    welcome, join = lines(out)[:2]
    assert welcome.startswith("WELCOME alice ") and join == "JOIN #lobby alice"
    assert lines(bob[1]) == ["AWAY alice "]
    assert proto.user is not None and proto.user.away == ""


def test_always_on_off_with_no_device_quits(factory: ChatFactory) -> None:
    """The model: always-on ended while no device is connected: the user quits."""
    alice, bob = registered(factory, "alice"), connect(factory, "bob")
    say(alice, "/always-on on")
    user = alice[0].user
    assert user is not None
    disconnect(alice[0])
    lines(bob[1])
    factory.chat.set_always_on(user, False)
    assert lines(bob[1])[0].startswith("QUIT alice ")


def test_always_on_is_capped_per_address(clock: Clock, store: MemoryHistory) -> None:
    factory = ChatFactory(
        ServerConfig(flood_rate=0.0, accounts=CHEAP, max_always_on_per_ip=1),
        clock,
        store,
    )
    alice, bob = registered(factory, "alice"), registered(factory, "bob")
    assert alice[0].user is not None and bob[0].user is not None
    bob[0].user.host = alice[0].user.host
    say(alice, "/always-on on")
    say(bob, "/always-on on")
    assert lines(bob[1])[0].startswith("ERR too-many-devices your address has 1 ")


# -- the model's fan-out ---------------------------------------------------------------


def test_the_fan_out_delivers_to_each_in_order() -> None:
    """attach, detach and the user's deliver, with recording clients."""
    chat = Chat()
    first, second = RecordingClient(), RecordingClient()
    user = chat.register("alice", first, account="alice")
    chat.join(user, "#lobby")
    first.take()
    assert user.deliver == first.deliver
    chat.attach(user, second)
    assert devices.count(user) == 2
    bob = chat.register("bob", RecordingClient())
    chat.join(bob, "#lobby")
    chat.say(bob, "hi")
    assert first.take()[-1] == second.take()[-1] == Message("#lobby", "bob", "hi")
    assert not chat.drop_connection(user, first, "gone")
    assert user.deliver == second.deliver and devices.count(user) == 1
    chat.set_away(bob, "brb")
    assert second.take() == [Away("bob", "brb")] and first.take() == []
    assert chat.drop_connection(user, second, "gone")
    assert "alice" not in chat.users


def test_dropping_the_account_ends_always_on(factory: ChatFactory) -> None:
    """/always-on on keeps a record in the store; /unregister drops it, and
    the user's last connection closing is a QUIT again."""
    alice, bob = registered(factory, "alice"), connect(factory, "bob")
    say(alice, "/join #dev")
    say(alice, "/always-on on")
    store = factory.accounts.store
    assert store.always_on["alice"].rooms == ["#lobby", "#dev"]
    say(alice, f"/unregister {PASSWORD}")
    assert "alice" not in store.always_on and not factory.chat.always_on
    lines(bob[1])
    disconnect(alice[0])
    assert lines(bob[1])[0].startswith("QUIT alice ")
