"""One table of who may see a room and read its history, walked through every door.

The model decides (chatd.model.permissions: Chat.may_see, visible_room,
hidden_rooms, may_read); each door only asks and renders. PERMISSIONS below
is the table, as data: the same text stands in docs/security.md ("What every
door and node enforces"), and a test here fails when the two differ. Each
row is one asker (their state towards the room) and one room (its modes);
each column one question, asked through the line door (StringTransport on a
ChatFactory), the IRC door and the web door (a WebSocket speaking the line
protocol). A secret room that is refused is answered exactly as a room that
does not exist: the same reply, the name aside.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest
from helpers import CHEAP, connect, lines
from test_irc_protocol import irc_connect
from twisted.internet.task import Clock
from web_helpers import FakeBrowser, make_site

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.protocol import LineConnection
from chatd.store.memory import MemoryHistory

ROOM = "#room"  # the room asked about
NOWHERE = "#nowhere"  # a room that does not exist, for the secret room's answer
KEY = "sesame"
SECURITY_DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"

# The table (docs/security.md has the same text). yes: the door answers;
# no: it refuses (a secret room: exactly as one that does not exist).
# member: in the room; stranger: never was; banned: a ban of the room matches
# them; kicked: was in it and was kicked (not banned); invited: invited by an
# operator, not joined yet. public: no s, i or k; +s secret; +i invite-only;
# +k a key. read history: /history, CHATHISTORY; see members: /who, WHO,
# NAMES; see topic: /topic, TOPIC; see modes: /mode, MODE; listed: /rooms,
# LIST, the MOTD's rooms, WHOIS's channels.
PERMISSIONS = """\
| asker | room | read history | see members | see topic | see modes | listed |
|---|---|---|---|---|---|---|
| member | public | yes | yes | yes | yes | yes |
| member | +s | yes | yes | yes | yes | yes |
| member | +i | yes | yes | yes | yes | yes |
| member | +k | yes | yes | yes | yes | yes |
| stranger | public | yes | yes | yes | yes | yes |
| stranger | +s | no | no | no | no | no |
| stranger | +i | no | yes | yes | yes | yes |
| stranger | +k | no | yes | yes | yes | yes |
| banned | public | no | yes | yes | yes | yes |
| banned | +s | no | no | no | no | no |
| banned | +i | no | yes | yes | yes | yes |
| banned | +k | no | yes | yes | yes | yes |
| kicked | public | yes | yes | yes | yes | yes |
| kicked | +s | no | no | no | no | no |
| kicked | +i | no | yes | yes | yes | yes |
| kicked | +k | no | yes | yes | yes | yes |
| invited | public | yes | yes | yes | yes | yes |
| invited | +s | no | no | no | no | no |
| invited | +i | no | yes | yes | yes | yes |
| invited | +k | no | yes | yes | yes | yes |
"""


def table() -> tuple[list[str], list[tuple[str, str, dict[str, bool]]]]:
    """The questions, and each row of PERMISSIONS as (asker, room, answers)."""
    head, _, *rows = PERMISSIONS.splitlines()
    cells = [cell.strip() for cell in head.strip("|").split("|")]
    questions = cells[2:]
    found = []
    for row in rows:
        asker, room, *answers = (cell.strip() for cell in row.strip("|").split("|"))
        assert set(answers) <= {"yes", "no"}, row
        found.append(
            (
                asker,
                room,
                dict(zip(questions, [a == "yes" for a in answers], strict=True)),
            )
        )
    return questions, found


QUESTIONS, ROWS = table()
_hosts = count(1)


# -- the doors: each joins, and asks each question, in its own words ---------------


class LineAsker:
    """An asker on the line door (LineConnection on a StringTransport)."""

    def __init__(self, factory: ChatFactory, nick: str) -> None:
        self.nick = nick
        self.proto, self.out = connect(factory, nick)

    def send(self, text: str) -> None:
        self.proto.dataReceived(text.encode() + b"\r\n")

    def take(self) -> list[str]:
        return lines(self.out)

    def join(self, room: str, key: str) -> None:
        self.send(f"/join {room} {key}".strip())

    def ask(self, question: str, room: str) -> list[str]:
        """The reply to the line commands that ask question about room."""
        self.take()
        command = {
            "read history": f"/history {room}",
            "see members": f"/who {room}",
            "see topic": f"/topic {room}",
            "see modes": f"/mode {room}",
            "listed": "/rooms",
        }[question]
        self.send(command)
        return self.take()

    @staticmethod
    def allowed(question: str, room: str, reply: list[str]) -> bool:
        """Whether reply answers question (rather than refusing it)."""
        if question == "listed":
            return any(f" {room}:" in text for text in reply)
        first = {
            "read history": f"HISTORY {room} ",
            "see members": f"USERS {room} ",
            "see topic": f"TOPIC {room} ",
            "see modes": f"MODES {room} ",
        }[question]
        return any(text.startswith(first) for text in reply)


class WebAsker(LineAsker):
    """An asker on the web door: the line protocol over a (fake) WebSocket."""

    def __init__(self, factory: ChatFactory, nick: str) -> None:
        self.nick = nick
        host = next(_hosts)
        self.browser = FakeBrowser(
            make_site(factory), host=f"127.2.{host // 250}.{host % 250 + 1}"
        )
        self.browser.register(nick)

    def send(self, text: str) -> None:
        self.browser.send(text)

    def take(self) -> list[str]:
        return self.browser.lines()


class IrcAsker:
    """An asker on the IRC door, with the caps CHATHISTORY needs."""

    CAPS = ("batch", "message-tags", "server-time", "draft/chathistory")

    def __init__(self, factory: ChatFactory, nick: str) -> None:
        self.nick = nick
        self.proto, self.out = irc_connect(factory, nick, *self.CAPS)

    def send(self, text: str) -> None:
        self.proto.dataReceived(text.encode() + b"\r\n")

    def take(self) -> list[str]:
        return lines(self.out)

    def join(self, room: str, key: str) -> None:
        self.send(f"JOIN {room} {key}".strip())

    def ask(self, question: str, room: str) -> list[str]:
        """The replies of every IRC command that asks question about room."""
        self.take()
        commands = {
            "read history": [f"CHATHISTORY LATEST {room} * 10"],
            "see members": [f"WHO {room}", f"NAMES {room}"],
            "see topic": [f"TOPIC {room}"],
            "see modes": [f"MODE {room}"],
            "listed": ["LIST", "MOTD", "WHOIS owner"],
        }[question]
        reply: list[str] = []
        for command in commands:
            self.send(command)
            reply += self.take()
        return reply

    def allowed(self, question: str, room: str, reply: list[str]) -> bool:
        """Whether every command answered question (all must agree)."""
        checks: list[Callable[[str], bool]] = {
            "read history": [lambda text: f" PRIVMSG {room} :hello" in text],
            "see members": [
                lambda text: f" 352 {self.nick} {room} " in text,
                lambda text: f" 353 {self.nick} " in text and f" {room} :" in text,
            ],
            "see topic": [lambda text: f" 332 {self.nick} {room} " in text],
            "see modes": [lambda text: f" 324 {self.nick} {room} " in text],
            "listed": [
                lambda text: f" 322 {self.nick} {room} " in text,
                lambda text: (
                    f" 372 {self.nick} :- Rooms: " in text and f"{room} (" in text
                ),
                lambda text: f" 319 {self.nick} owner :" in text and room in text,
            ],
        }[question]
        answers = {any(check(text) for text in reply) for check in checks}
        assert len(answers) == 1, (question, reply)  # the door agrees with itself
        return answers.pop()


Asker = LineAsker | IrcAsker
DOORS: dict[str, Callable[[ChatFactory, str], Asker]] = {
    "line": LineAsker,
    "irc": IrcAsker,
    "web": WebAsker,
}


# -- the room and the asker's state, set up as the table says ---------------------


def make_factory(clock: Clock) -> ChatFactory:
    """A chat with history in memory, flood control off."""
    config = ServerConfig(flood_rate=0.0, accounts=CHEAP)
    return ChatFactory(config, clock, MemoryHistory(clock))


def owned_room(factory: ChatFactory, mode: str) -> LineConnection:
    """ROOM, run by a line user (owner), with a message, a topic and mode."""
    owner, _ = connect(factory, "owner")
    owner.dataReceived(f"/join {ROOM}\r\nhello\r\n/topic {ROOM} the topic\r\n".encode())
    if mode != "public":
        args = f" {KEY}" if mode == "+k" else ""
        owner.dataReceived(f"/mode {ROOM} {mode}{args}\r\n".encode())
    return owner


def put_in_state(owner: LineConnection, asker: Asker, state: str, mode: str) -> None:
    """Make the asker a member, banned, kicked or invited (a stranger: nothing)."""

    def tell(text: str) -> None:
        owner.dataReceived(text.encode() + b"\r\n")

    key = KEY if mode == "+k" else ""
    if state in ("member", "kicked"):
        if mode == "+i":
            tell(f"/invite {asker.nick} {ROOM}")
        asker.join(ROOM, key)
    if state == "kicked":
        tell(f"/kick {ROOM} {asker.nick}")
    elif state == "banned":
        tell(f"/ban {ROOM} {asker.nick}")
    elif state == "invited":
        tell(f"/invite {asker.nick} {ROOM}")
    assert owner.user is not None
    members = owner.user.rooms[ROOM.lower()].members
    assert (asker.nick in members) == (state == "member"), (state, mode)


# -- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize(
    ("state", "mode", "expected"),
    ROWS,
    ids=[f"{state}-{mode}" for state, mode, _ in ROWS],
)
def test_every_door_answers_as_the_table_says(
    clock: Clock, door: str, state: str, mode: str, expected: dict[str, bool]
) -> None:
    """Each question of the row, asked through door, is answered or refused as
    PERMISSIONS says; a refused secret room is answered exactly as a room
    that does not exist."""
    factory = make_factory(clock)
    owner = owned_room(factory, mode)
    asker = DOORS[door](factory, "asker")
    put_in_state(owner, asker, state, mode)
    for question in QUESTIONS:
        reply = asker.ask(question, ROOM)
        assert asker.allowed(question, ROOM, reply) == expected[question], (
            question,
            reply,
        )
        if mode == "+s" and not expected[question]:
            nowhere = asker.ask(question, NOWHERE)
            assert reply == [text.replace(NOWHERE, ROOM) for text in nowhere], (
                question,
                reply,
                nowhere,
            )


def test_the_security_doc_holds_the_same_table() -> None:
    """docs/security.md shows PERMISSIONS as it is here, so it cannot drift."""
    assert PERMISSIONS in SECURITY_DOC.read_text(encoding="utf-8")


def test_the_table_covers_every_asker_and_room() -> None:
    """Every asker state meets every room state, once."""
    pairs = [(state, mode) for state, mode, _ in ROWS]
    askers = {"member", "stranger", "banned", "kicked", "invited"}
    modes = {"public", "+s", "+i", "+k"}
    assert sorted(pairs) == sorted((a, m) for a in askers for m in modes)


def test_a_server_operator_sees_and_reads_a_secret_room(clock: Clock) -> None:
    """Server operators run every room: /who and /history of a +s+i room."""
    factory = ChatFactory(
        ServerConfig(flood_rate=0.0, accounts=CHEAP, operators=("boss",)),
        clock,
        MemoryHistory(clock),
    )
    owned_room(factory, "+s")
    boss, out = connect(factory, "boss")
    assert boss.user is not None
    factory.chat.set_account(boss.user, "boss")
    lines(out)
    boss.dataReceived(f"/who {ROOM}\r\n/history {ROOM}\r\n".encode())
    reply = lines(out)
    assert reply[0] == f"USERS {ROOM} owner" and reply[-1] == f"ENDHISTORY {ROOM} 1"


def test_kicked_and_banned_reads_no_history_on_any_door(clock: Clock) -> None:
    """Issue 22, item 2: kicked and banned from a room, one's /history (line,
    web) and CHATHISTORY (IRC) of it are refused; the room's members read."""
    factory = make_factory(clock)
    owner = owned_room(factory, "public")
    for door, make in DOORS.items():
        asker = make(factory, f"{door}er")
        asker.join(ROOM, "")
        owner.dataReceived(
            f"/kick {ROOM} {door}er\r\n/ban {ROOM} {door}er\r\n".encode()
        )
        reply = asker.ask("read history", ROOM)
        assert not asker.allowed("read history", ROOM, reply), (door, reply)
    line, out = connect(factory, "member")
    line.dataReceived(f"/join {ROOM}\r\n".encode())
    lines(out)
    line.dataReceived(f"/history {ROOM}\r\n".encode())
    assert lines(out)[-1] == f"ENDHISTORY {ROOM} 1"


def test_an_empty_registered_room_keeps_its_rules_for_whoever_remakes_it(
    clock: Clock,
) -> None:
    """A registered +i room with a ban, left empty: the banned user's /join (which
    would make it again, its history in the backfill) is refused by its kept
    rules, a stranger's by its +i; its founder comes back in."""
    factory = make_factory(clock)
    chat = factory.chat
    owner = owned_room(factory, "+i")
    assert owner.user is not None
    chat.set_account(owner.user, "owner")
    owner.dataReceived(f"/register {ROOM}\r\n/ban {ROOM} mallory\r\n".encode())
    owner.dataReceived(f"/part {ROOM}\r\n".encode())
    assert ROOM not in chat.rooms
    mallory, m_out = connect(factory, "mallory")
    stranger, s_out = connect(factory, "stranger")
    lines(m_out)
    mallory.dataReceived(f"/join {ROOM}\r\n".encode())
    stranger.dataReceived(f"/join {ROOM}\r\n".encode())
    assert lines(m_out) == [f"ERR banned you are banned from {ROOM} (mallory)"]
    (refused,) = lines(s_out)
    assert refused.startswith("ERR invite-only ")
    owner.dataReceived(f"/join {ROOM}\r\n".encode())
    assert ROOM in chat.rooms and owner.user.is_member(chat.rooms[ROOM])
