"""A fake IRC session: the door's handlers and rendering, with no transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from weakref import WeakKeyDictionary

from helpers import CHEAP
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger
from zope.interface import implementer

from chatd.config import ReloadReport, ServerConfig, no_reload
from chatd.irc.caps import CapState
from chatd.irc.commands import dispatch
from chatd.irc.message import irc_line
from chatd.irc.server import IrcServer
from chatd.irc.session import Registration
from chatd.model.accounts import Accounts, Hasher, run_inline
from chatd.model.chat import Chat, Event, IChatClient, User
from chatd.model.server_bans import ServerBanned
from chatd.store.accounts import MemoryAccounts

# The accounts of each fake server (an IrcServer has none of its own: they are
# the hub's), on a fake clock with cheap Argon2 settings, hashing inline.
ACCOUNTS: WeakKeyDictionary[IrcServer, Accounts] = WeakKeyDictionary()


def make_server(chat: Chat | None = None, **settings: object) -> IrcServer:
    """An IrcServer named irc.test on a fixed clock, with accounts."""
    config = ServerConfig(name="irc.test", **settings)  # type: ignore[arg-type]
    now = lambda: 1_700_000_000.25  # noqa: E731
    chat = chat or Chat(server_name="irc.test", now=now)
    server = IrcServer(chat, config, now=now)
    clock = Clock()
    ACCOUNTS[server] = Accounts(
        chat, MemoryAccounts(), Hasher(CHEAP, run_inline), clock, CHEAP
    )
    return server


@implementer(IChatClient)
class FakeIrc:
    """An IrcSession and IChatClient that keeps its output as text lines."""

    log = Logger()
    identify_hint = "/msg NickServ IDENTIFY <password>"  # as IrcConnection's

    def __init__(self, server: IrcServer, host: str = "127.0.0.1") -> None:
        self.server = server
        self.chat = server.chat
        self.caps = CapState(offered=server.offered)
        self.user: User | None = None
        self.registration = Registration()
        self.host = host
        self.out: list[bytes] = []
        self.closed: str | None = None
        self.pongs = 0
        self.unregistered = 0
        self.batches = 0
        self.charged = 0  # lines of bulk answers charged (chatd.net.bulk)
        self.accounts = ACCOUNTS[server]
        # What REHASH runs (a hub's reloader): none unless a test gives one.
        self.reloader: Callable[[], ReloadReport] = no_reload

    @property
    def nick(self) -> str:
        if self.user is not None:
            return self.user.nick
        return self.registration.nick or "*"

    def send(self, data: bytes) -> None:
        self.out.append(data)

    def deliver(self, event: Event) -> None:
        caps = self.caps
        renderer = self.server.renderer
        data = renderer.lines_for(event, self.user, caps.enabled, caps.variant)
        if data:
            self.out.append(data)

    def close(self, reason: str) -> None:
        self.closed = reason

    def register_user(self, nick: str, username: str, realname: str) -> User:
        self.user = self.chat.register(
            nick,
            self,
            username=username,
            realname=realname,
            host=self.host,
            account=self.registration.account,
        )
        return self.user

    def attach_user(self, user: User) -> None:
        self.user = user

    def switch_user(self, user: User, reason: str) -> None:
        if self.user is not None:
            self.chat.drop_connection(self.user, self, reason)
        self.user = user

    def quit_chat(self, reason: str) -> None:
        if self.user is not None:
            self.chat.quit(self.user, reason)
            self.user = None
        self.send(irc_line("ERROR", text=f"Closing link: ({reason})"))
        self.closed = reason

    def refuse_banned(self, banned: ServerBanned) -> None:
        """A server ban refuses the session: closed with the ban's goodbye."""
        self.quit_chat(banned.goodbye)

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send the answer when it comes (the fakes' stores and checks: at once)."""
        answer.addCallbacks(self.out.append, lambda failure: self.out.append(fallback))

    def rehash(self) -> ReloadReport:
        return self.reloader()

    def charge_answer(self, lines: int) -> None:
        """Count what bulk answers are charged (IrcConnection charges its gate)."""
        self.charged += lines

    def send_in_slices(self, lines: Iterator[bytes], fallback: bytes) -> None:
        """The whole answer at once (IrcConnection makes it a slice per turn)."""
        self.out.append(b"".join(lines))

    def begin_label(self, label: str) -> None:
        """Labels are IrcConnection's (test_irc_labels.py): the fake ignores them."""

    def end_label(self) -> None:
        """Nothing to frame: see begin_label."""

    def unlabeled(self, run: Callable[[], object]) -> bytes:
        start = len(self.out)
        run()
        return b"".join(self.out[start:])

    def batch_id(self) -> str:
        self.batches += 1
        return f"h{self.batches}"

    def pong_received(self) -> None:
        self.pongs += 1

    def welcomed(self) -> None:
        if self.user is not None:
            self.accounts.nick_taken(self.user)

    def unregistered_count(self) -> int:
        return self.unregistered

    @property
    def awaiting_nick(self) -> bool:
        return self.user is None

    # -- test helpers ------------------------------------------------------

    def line(self, text: str) -> None:
        """Handle one line from the client."""
        dispatch(self, text)

    def lines(self) -> list[str]:
        """Return the lines sent so far (CRLF checked and removed), and forget them."""
        data = b"".join(self.out)
        self.out = []
        assert data == b"" or data.endswith(b"\r\n"), data
        return data.decode("utf-8").split("\r\n")[:-1] if data else []

    def commands(self) -> list[str]:
        """Return the command (or numeric) of each line sent so far, and forget them."""
        result = []
        for text in self.lines():
            words = text.split(" ")
            if words[0].startswith("@"):
                words = words[1:]
            result.append(words[1] if words[0].startswith(":") else words[0])
        return result


def registered(server: IrcServer, nick: str, *caps: str) -> FakeIrc:
    """A FakeIrc that registered as nick (with caps), its output cleared."""
    session = FakeIrc(server)
    if caps:
        session.line("CAP LS 302")
        session.line("CAP REQ :" + " ".join(caps))
    session.line(f"NICK {nick}")
    session.line(f"USER {nick} 0 * :{nick.title()} Example")
    if caps:
        session.line("CAP END")
    assert session.user is not None, session.lines()
    session.lines()
    return session
