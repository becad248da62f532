"""The door contract (chatd.doors): each door declared once, read by all.

A fourth door (tests/bot_door: a connection and a declaration) opens with one
registration line and meets the line door's users in the same rooms; the
listeners' log, the cluster's line kinds and the model's identify hint all
come from the declarations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bot_door.connection import BotConnection
from helpers import lines, make_factory
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.usage import UsageError

from chatd.doors import DOORS, TEXT, CommandKind, Door, command_kinds
from chatd.factory import ChatFactory
from chatd.ops.service import ListenerService
from chatd.protocol import LineConnection
from chatd.store.accounts import AccountRecord
from twisted.plugins.chatd_plugin import Options, _listeners

BOT_ENTRY = "bot_door.entry:BOT"


@pytest.fixture
def bot_registered() -> Iterator[Door]:
    """The bot door registered in chatd's registry for one test (its one line)."""
    DOORS.register("bot", BOT_ENTRY)
    try:
        yield DOORS.opened_by("bot")
    finally:
        DOORS.unregister("bot")


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(["--no-history", *args])
    return options


def listener_factories(top: MultiService) -> dict[str, object]:
    """Each listener's factory, by the name of the door it listens for."""
    return {
        service.endpoint.name: service.factory
        for service in top
        if isinstance(service, StreamServerEndpointService)
    }


def test_a_fourth_door_is_its_package_and_one_registration_line(
    bot_registered: Door, clock: Clock
) -> None:
    """A bot registered through DOORS gets its option (--bot) and a listener
    from the plugin's own wiring, and its user and a line user meet in
    #lobby: HEARD and MSG."""
    options = parse("--listen", "tcp:0", "--bot", "tcp:0")
    factory = ChatFactory(options["config"], clock)
    top = _listeners(options, factory, MultiService(), None)
    factories = listener_factories(top)
    assert set(factories) == {"line", "bot"}  # irc and web: not listened for
    address = IPv4Address("TCP", "127.0.0.1", 40001)
    alice = factories["line"].buildProtocol(address)  # type: ignore[attr-defined]
    assert isinstance(alice, LineConnection)
    a_out = StringTransport(peerAddress=address)
    alice.makeConnection(a_out)
    assert factories["line"].hub is factory  # type: ignore[attr-defined]
    address = IPv4Address("TCP", "127.0.0.2", 40002)
    robot = factories["bot"].buildProtocol(address)  # type: ignore[attr-defined]
    assert isinstance(robot, BotConnection)
    r_out = StringTransport(peerAddress=address)
    robot.makeConnection(r_out)
    alice.dataReceived(b"alice\r\n")
    robot.dataReceived(b"NICK robo\r\n")
    assert lines(r_out) == ["READY", "WELCOME robo"]
    a_out.clear()
    robot.dataReceived(b"SAY beep, alice\r\n")
    alice.dataReceived(b"hello robo\r\n")
    assert "MSG #lobby robo beep, alice" in lines(a_out)
    assert lines(r_out) == [
        "HEARD #lobby robo beep, alice",
        "HEARD #lobby alice hello robo",
    ]
    assert factory.chat.rooms["#lobby"].members.keys() >= {"alice", "robo"}


def test_a_registered_door_has_its_option_in_the_help(bot_registered: Door) -> None:
    """--bot ENDPOINT is repeatable, off unless given, and in --help."""
    assert parse()["door_endpoints"]["bot"] == []
    options = parse("--bot", "tcp:7001", "--bot=tcp:7002")
    assert [d for d, _ in options["door_endpoints"]["bot"]] == ["tcp:7001", "tcp:7002"]
    assert "--bot=" in str(Options())
    with pytest.raises(UsageError, match="--bot carrier-pigeon"):
        parse("--bot", "carrier-pigeon:1")


def test_the_registry_opens_a_door_by_its_entry() -> None:
    """The registration line names the option and module:attribute; the door
    is loaded when it is asked for, and an option opens one door only."""
    DOORS.register("bot", BOT_ENTRY)
    try:
        assert DOORS.options[-1] == "bot"
        assert DOORS.opened_by("bot").connection is BotConnection
        assert [door.name for door in DOORS][-1] == "bot"
        with pytest.raises(ValueError, match="--bot already"):
            DOORS.register("bot", BOT_ENTRY)
    finally:
        DOORS.unregister("bot")
    assert "bot" not in DOORS.options


def test_parsing_the_command_line_loads_no_door() -> None:
    """A door's option is known from its registration line alone: a door
    whose module cannot even be imported only fails when it is opened."""
    DOORS.register("ghost", "no_such_module.entry:GHOST")
    try:
        options = parse("--ghost", "tcp:7003")
        assert [d for d, _ in options["door_endpoints"]["ghost"]] == ["tcp:7003"]
        with pytest.raises(ModuleNotFoundError):
            DOORS.opened_by("ghost")
    finally:
        DOORS.unregister("ghost")


def test_every_door_has_one_spelling_an_option_and_an_identify_hint() -> None:
    """line, irc, web: names without spaces, one option each, a hint for the model."""
    doors = list(DOORS)
    assert [door.name for door in doors] == ["line", "irc", "web"]
    assert DOORS.options == ["listen", "irc", "web"]
    for door in doors:
        assert door.name == door.name.strip() and " " not in door.name
        assert door.identify_hint  # IChatClient.identify_hint: what notices quote
    assert DOORS.named("irc").identify_hint == "/msg NickServ IDENTIFY <password>"
    assert DOORS.named("line").identify_hint == "/identify <password>"


def test_the_listener_log_names_each_door_in_one_spelling() -> None:
    """The JSON field is door=irc (not "IRC "); the text still reads
    "chatd IRC listening on", and the web door's page address is logged."""

    class Port:
        def getHost(self) -> IPv4Address:
            return IPv4Address("TCP", "127.0.0.1", 6667)

    class Endpoint:
        def listen(self, factory: object) -> object:
            return succeed(Port())

    logged: list[dict[str, object]] = []
    for door in DOORS:
        service = ListenerService.of_door(door, "x", "tcp:0", Endpoint(), object())  # type: ignore[arg-type]
        with capturedLogs() as events:
            service.endpoint.listen(object())
        logged.extend(events)
    texts = [str(event["log_format"]).format(**event) for event in logged]
    assert texts == [
        "chatd listening on tcp:0: 127.0.0.1 port 6667",
        "chatd IRC listening on tcp:0: 127.0.0.1 port 6667",
        "chatd web listening on tcp:0: 127.0.0.1 port 6667",
        "chatd web page at http://127.0.0.1:6667/",
    ]
    assert [event["door"] for event in logged] == ["line", "irc", "web", "web"]


# Lines and the kind the cluster gave them before the declarations
# (chatd.cluster.doors' LINE_READ, IRC_READ... of 8782096): (line, registered).
LINE_KINDS = [
    ("", True, CommandKind.READ),
    ("   ", False, CommandKind.READ),
    ("/who", True, CommandKind.READ),
    ("/HELP", False, CommandKind.READ),
    ("/ids on", False, CommandKind.READ),
    ("/me waves", True, CommandKind.TALK),
    ("/me waves", False, CommandKind.CHANGE),
    ("/msg bob hi", True, CommandKind.TALK),
    ("hello", True, CommandKind.TALK),
    ("alice", False, CommandKind.CHANGE),
    ("//join", True, CommandKind.TALK),
    ("\x0c/msg bob secret", True, CommandKind.TALK),
    ("/join #a", True, CommandKind.CHANGE),
    ("/nick bob", False, CommandKind.CHANGE),
    ("/frobnicate", True, CommandKind.CHANGE),
    ("/", True, CommandKind.CHANGE),
    ("/(plain", True, CommandKind.CHANGE),
]
IRC_KINDS = [
    ("", False, CommandKind.READ),
    ("PING x", False, CommandKind.READ),
    ("@label=1 :me!u@h WHO #a", True, CommandKind.READ),
    ("PRIVMSG #a :hi", True, CommandKind.TALK),
    ("privmsg #a :hi", False, CommandKind.CHANGE),
    ("CAP LS 302", True, CommandKind.READ),
    ("CAP END", False, CommandKind.CHANGE),
    ("JOIN #a", True, CommandKind.CHANGE),
    ("NICK zed", False, CommandKind.CHANGE),
    ("FROB", True, CommandKind.CHANGE),
]


@pytest.mark.parametrize(("text", "registered", "kind"), LINE_KINDS)
def test_line_and_web_kinds_are_those_the_cluster_had(
    text: str, registered: bool, kind: CommandKind
) -> None:
    """The line door's declaration classifies lines as the cluster's table did;
    the web door, which speaks the line protocol, the same."""
    assert DOORS.named("line").kind_of(text, registered) is kind
    assert DOORS.named("web").kind_of(text, registered) is kind


@pytest.mark.parametrize(("text", "registered", "kind"), IRC_KINDS)
def test_irc_kinds_are_those_the_cluster_had(
    text: str, registered: bool, kind: CommandKind
) -> None:
    """The IRC door's declaration classifies lines as the cluster's table did."""
    assert DOORS.named("irc").kind_of(text, registered) is kind


def test_a_door_command_table_lists_every_command_with_its_kind() -> None:
    """Every command of a door has a kind (a change unless declared otherwise),
    and a kind for a command the door does not have is refused."""
    from chatd.irc.commands import COMMANDS as IRC_COMMANDS
    from chatd.line.commands import COMMANDS as LINE_COMMANDS

    assert set(DOORS.named("line").commands) == {*LINE_COMMANDS, TEXT}
    assert set(DOORS.named("irc").commands) == set(IRC_COMMANDS)
    assert DOORS.named("irc").commands["KICK"] is CommandKind.CHANGE
    with pytest.raises(ValueError, match="whom"):
        command_kinds({"who": None}, {"whom": CommandKind.READ})


def test_the_identify_hint_is_the_doors_own(clock: Clock, bot_registered: Door) -> None:
    """A registered nickname taken on the bot door is told the bot's words
    (IDENTIFY <password>): the model quotes the door's declaration, not a
    door it knows by name."""
    factory = make_factory(clock)
    factory.accounts.store.save_account("zed", AccountRecord("zed", "x", 0))
    address = IPv4Address("TCP", "127.0.0.3", 40003)
    robot = factory.door(BotConnection).buildProtocol(address)
    out = StringTransport(peerAddress=address)
    robot.makeConnection(out)
    robot.dataReceived(b"NICK zed\r\n")
    clock.advance(1)
    (notice,) = [line for line in lines(out) if "registered nickname" in line]
    assert "(IDENTIFY <password>);" in notice
    assert bot_registered.identify_hint == "IDENTIFY <password>"
