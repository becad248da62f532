"""Server operators change others' accounts through the running daemon.

The model's Accounts.reset_password and drop_account with by= a server
operator (chatd-admin's own path is tests/test_admin.py), then the line
door's /resetpass and /dropaccount and IRC's NickServ RESETPASS and FDROP.
"""

from __future__ import annotations

import pytest
from helpers import connect, lines, make_factory
from irc_helpers import ACCOUNTS, make_server, registered
from test_accounts import HOST, PASSWORD, code, result, world
from test_accounts import registered as with_account
from twisted.internet.task import Clock

from chatd.model.errors import ErrorCode


def test_only_a_server_operator_resets_or_drops_someone_elses_account() -> None:
    """by a user who is not a server operator: not-operator, nothing changed."""
    chat, accounts, _ = world()
    alice, _ = with_account(chat, accounts, "alice")
    bob, _ = with_account(chat, accounts, "bob")
    before = accounts.account("alice")
    assert code(lambda: accounts.reset_password("alice", "a new one!", by=bob)) == (
        ErrorCode.NOT_OPERATOR
    )
    assert code(lambda: accounts.drop_account("alice", by=bob)) == (
        ErrorCode.NOT_OPERATOR
    )
    assert accounts.account("alice") == before


def test_an_operator_resets_a_password_and_its_owner_stays_identified() -> None:
    """The new password identifies, the old one no more; whoever is identified
    to the account stays so."""
    chat, accounts, _ = world()
    chat.server_operators = frozenset({"root"})
    alice, _ = with_account(chat, accounts, "alice")
    root, _ = with_account(chat, accounts, "root")
    record = result(accounts.reset_password("ALICE", "brand new pw", by=root))
    assert record.name == "alice"
    assert alice.account == "alice"
    assert code(lambda: accounts.identify(None, "alice", PASSWORD, HOST)) == (
        ErrorCode.AUTH_FAILED
    )
    assert result(accounts.identify(None, "alice", "brand new pw", HOST)).name == (
        "alice"
    )
    assert code(lambda: accounts.reset_password("alice", "short", by=root)) == (
        ErrorCode.BAD_PASSWORD
    )
    assert code(lambda: accounts.reset_password("nobody", "long enough", by=root)) == (
        ErrorCode.NO_SUCH_NICK
    )


def test_an_operator_drops_an_account_as_unregister_would() -> None:
    """The account goes, its user is identified no more, its rooms are
    registered no more, and its name is free to register."""
    chat, accounts, _ = world()
    chat.server_operators = frozenset({"root"})
    alice, _ = with_account(chat, accounts, "alice")
    root, _ = with_account(chat, accounts, "root")
    chat.join(alice, "#alices")
    chat.register_room(alice, "#alices")
    assert "#alices" in chat.records
    assert result(accounts.drop_account("Alice", by=root)).name == "alice"
    assert accounts.account("alice") is None
    assert alice.account == ""
    assert "#alices" not in chat.records
    assert result(accounts.register(alice, PASSWORD, PASSWORD, HOST)).name == "alice"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_line_resetpass_and_dropaccount(clock: Clock) -> None:
    """/resetpass and /dropaccount: ERR not-operator for others; for a server
    operator INFO lines, and the account's owner sees the change."""
    factory = make_factory(clock, operators=("root",))
    (root, r), (alice, a) = connect(factory, "root"), connect(factory, "alice")
    root.dataReceived(b"/register s3cret-pw s3cret-pw\r\n")
    alice.dataReceived(b"/register old-password old-password\r\n")
    lines(r), lines(a)
    alice.dataReceived(b"/resetpass root gotcha-pw\r\n/dropaccount root\r\n")
    assert [text.split(" ", 2)[:2] for text in lines(a)] == [
        ["ERR", "not-operator"],
        ["ERR", "not-operator"],
    ]
    root.dataReceived(b"/resetpass ALICE new-password\r\n")
    assert lines(r) == ["INFO alice has its new password."]
    root.dataReceived(b"/resetpass alice short\r\n/resetpass bob long-enough\r\n")
    assert lines(r) == [
        "ERR bad-password a password has at least 8 characters",
        "ERR no-such-nick there is no account called bob",
    ]
    root.dataReceived(b"/dropaccount alice\r\n")
    assert lines(r) == [
        "ACCOUNT alice *",  # they share #lobby: alice is identified no more
        "INFO The account alice is gone; the nickname is free for anyone.",
    ]
    assert "ACCOUNT alice *" in lines(a)
    assert factory.accounts.account("alice") is None
    assert alice.user is not None and alice.user.account == ""
    root.dataReceived(b"/resetpass alice\r\n")
    assert lines(r)[0].startswith("ERR bad-args")


def test_irc_nickserv_resetpass_and_fdrop() -> None:
    """PRIVMSG NickServ :RESETPASS / FDROP: a NOTICE either way; the change
    only for a server operator."""
    server = make_server()
    server.chat.server_operators = frozenset({"root"})
    accounts = ACCOUNTS[server]
    root = registered(server, "root")
    root.line("PRIVMSG NickServ :REGISTER s3cret-pw")
    alice = registered(server, "alice")
    alice.line("PRIVMSG NickServ :REGISTER old-password")
    root.lines(), alice.lines()
    alice.line("PRIVMSG NickServ :FDROP root")
    assert alice.lines()[-1].endswith(
        ":You are not a server operator; only they change others' accounts."
    )
    root.line("PRIVMSG NickServ :RESETPASS alice new-password")
    assert root.lines()[-1].endswith(":alice has its new password.")
    assert result(accounts.identify(None, "alice", "new-password", HOST))
    root.line("NS FDROP alice")
    assert root.lines()[-1].endswith(":The account alice is gone.")
    assert accounts.account("alice") is None
