"""Accounts: registering, identifying, throttling, reserved nicknames.

The Accounts service over a Chat with recording clients, a fake clock and
cheap Argon2 run inline; a manual runner where a test needs a check to be
on its way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from helpers import CHEAP, RecordingClient
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from chatd.accounts import MAX_PENDING, Accounts, Hasher, run_inline
from chatd.password_queue import MAX_QUEUED
from chatd.chat import Chat, Renamed, User
from chatd.config import AccountSettings
from chatd.errors import ChatError, ErrorCode
from chatd.events import AccountChanged, Notice
from chatd.store.accounts import AccountRecord, MemoryAccounts

HOST = "192.0.2.1"
PASSWORD = "correct horse"


def world(
    settings: AccountSettings = CHEAP,
) -> tuple[Chat, Accounts, Clock]:
    clock = Clock()
    chat = Chat(now=clock.seconds)
    accounts = Accounts(
        chat, MemoryAccounts(), Hasher(settings, run_inline), clock, settings
    )
    return chat, accounts, clock


def enter(chat: Chat, accounts: Accounts, nick: str) -> tuple[User, RecordingClient]:
    """Register nick in the chat, as a door does (with its welcome's notice)."""
    client = RecordingClient()
    user = chat.register(nick, client)
    accounts.nick_taken(user)
    return user, client


def result(answer: defer.Deferred[AccountRecord]) -> AccountRecord:
    """The record an inline check gave (or the ChatError it failed with)."""
    got: list[AccountRecord | Failure] = []
    answer.addBoth(got.append)
    (value,) = got
    if isinstance(value, Failure):
        value.raiseException()
    assert isinstance(value, AccountRecord)
    return value


def code(action: Callable[[], defer.Deferred[AccountRecord]]) -> ErrorCode:
    with pytest.raises(ChatError) as refused:
        result(action())
    return refused.value.code


def registered(
    chat: Chat, accounts: Accounts, nick: str = "alice"
) -> tuple[User, RecordingClient]:
    user, client = enter(chat, accounts, nick)
    result(accounts.register(user, PASSWORD, PASSWORD, HOST))
    client.take()
    return user, client


def test_register_hashes_with_argon2id_and_identifies() -> None:
    """The account keeps an Argon2id hash, never the password; the user is
    identified at once and those around see ACCOUNT."""
    chat, accounts, _ = world()
    alice, a = enter(chat, accounts, "Alice")
    record = result(accounts.register(alice, PASSWORD, PASSWORD, HOST))
    assert record.name == "Alice" and record.hash.startswith("$argon2id$")
    assert PASSWORD not in record.hash
    assert accounts.store.accounts == {"alice": record}
    assert alice.account == "Alice"
    assert a.take() == [AccountChanged("Alice", "Alice")]


def test_register_refusals() -> None:
    """Passwords that differ, too short, a nickname registered already."""
    chat, accounts, _ = world(
        AccountSettings(min_password=8, time_cost=1, memory_cost=8, parallelism=1)
    )
    alice, _ = enter(chat, accounts, "alice")
    assert code(lambda: accounts.register(alice, PASSWORD, "correct hose", HOST)) is (
        ErrorCode.BAD_PASSWORD
    )
    assert code(lambda: accounts.register(alice, "short", "short", HOST)) is (
        ErrorCode.BAD_PASSWORD
    )
    result(accounts.register(alice, PASSWORD, PASSWORD, HOST))
    assert code(lambda: accounts.register(alice, PASSWORD, PASSWORD, HOST)) is (
        ErrorCode.ALREADY_REGISTERED
    )


def test_identify_with_the_right_password_only() -> None:
    """A wrong password is auth-failed; the right one identifies (any nick)."""
    chat, accounts, _ = world()
    registered(chat, accounts)
    bob, b = enter(chat, accounts, "bob")
    assert code(lambda: accounts.identify(bob, "alice", "wrong", HOST)) is (
        ErrorCode.AUTH_FAILED
    )
    assert bob.account == ""
    result(accounts.identify(bob, "ALICE", PASSWORD, HOST))
    assert bob.account == "alice"


def test_a_wrong_password_never_says_whether_the_account_exists() -> None:
    """The same code and words for an account and for a name without one, and
    a verify (against the decoy) in both cases."""
    chat, accounts, _ = world()
    registered(chat, accounts)
    bob, _ = enter(chat, accounts, "bob")
    texts = []
    for name in ("alice", "nobody"):
        with pytest.raises(ChatError) as refused:
            result(accounts.identify(bob, name, "wrong password", HOST))
        texts.append((refused.value.code, refused.value.text))
    assert (
        texts[0]
        == texts[1]
        == (
            ErrorCode.AUTH_FAILED,
            "wrong password, or no account of that name",
        )
    )
    assert accounts.hasher._decoy is not None  # the name without one was hashed too


def test_wrong_passwords_are_throttled_per_address() -> None:
    """5 wrong at once, then one per 12 s; past that throttled without a hash.
    1000 wrong passwords in 500 s (the line flood rate) check 46 of them."""
    chat, accounts, clock = world()
    registered(chat, accounts)
    mallory, _ = enter(chat, accounts, "mallory")
    checked = throttled = 0
    for _ in range(1000):
        try:
            result(accounts.identify(mallory, f"user{checked % 7}", "guess", HOST))
        except ChatError as error:
            if error.code is ErrorCode.THROTTLED:
                throttled += 1
            else:
                checked += 1
        clock.advance(0.5)  # 2 lines a second: the daemon's --flood-rate
    assert checked == 5 + 500 // 12 and throttled == 1000 - checked
    # Another address is not slowed down by it.
    result(accounts.identify(mallory, "alice", PASSWORD, "198.51.100.7"))


def test_wrong_passwords_are_throttled_per_account() -> None:
    """Many addresses guessing one account: 20 new addresses at once, then one a
    minute; those that guessed wrong share 10 more, then one per 30 s. The
    owner, from the address that knew the password, is never held back."""
    chat, accounts, clock = world()
    registered(chat, accounts)  # from HOST
    bob, _ = enter(chat, accounts, "bob")

    def guess(n: int) -> ErrorCode:
        return code(partial(accounts.identify, bob, "alice", "guess", f"10.0.0.{n}"))

    assert [guess(n) for n in range(21)] == [ErrorCode.AUTH_FAILED] * 20 + [
        ErrorCode.THROTTLED
    ]
    assert [guess(n) for n in range(12)] == [ErrorCode.AUTH_FAILED] * 10 + [
        ErrorCode.THROTTLED
    ] * 2
    result(accounts.identify(bob, "alice", PASSWORD, HOST))
    assert code(lambda: accounts.identify(bob, "alice", "x", "10.0.1.1")) is (
        ErrorCode.THROTTLED
    )
    clock.advance(60)
    result(accounts.identify(bob, "alice", PASSWORD, "10.0.1.1"))


def test_a_right_password_costs_no_try() -> None:
    """Identifying often with the right password is never throttled."""
    chat, accounts, _ = world()
    registered(chat, accounts)
    bob, _ = enter(chat, accounts, "bob")
    for _ in range(50):
        result(accounts.identify(bob, "alice", PASSWORD, HOST))


def test_checks_past_the_pending_limit_are_refused_as_busy() -> None:
    """With MAX_PENDING checks on their way, the next from an address that has
    one waiting is refused as busy at once; an address with nothing waiting
    still gets in, up to MAX_QUEUED."""
    waiting: list[defer.Deferred[object]] = []

    def manual(work: Callable[[], object]) -> defer.Deferred[object]:
        answer: defer.Deferred[object] = defer.Deferred()
        waiting.append(answer)
        return answer

    clock = Clock()
    chat = Chat(now=clock.seconds)
    accounts = Accounts(chat, MemoryAccounts(), Hasher(CHEAP, manual), clock, CHEAP)
    bob, _ = enter(chat, accounts, "bob")
    for n in range(MAX_PENDING):
        accounts.identify(bob, f"user{n}", "x", f"10.0.{n}.1")
    assert len(waiting) == 2  # the two threads' worth; the rest wait in turn
    with pytest.raises(ChatError) as refused:
        result(accounts.identify(bob, "alice", "x", "10.0.31.1"))
    assert "busy" in refused.value.text
    for n in range(MAX_QUEUED - MAX_PENDING):
        accounts.identify(bob, f"other{n}", "x", f"10.1.{n}.1")
    assert code(lambda: accounts.identify(bob, "alice", "x", "10.9.9.9")) is (
        ErrorCode.THROTTLED
    )


def test_a_registered_nickname_is_reserved() -> None:
    """Taking it unidentified: a NickServ notice; after the grace, a guest name."""
    chat, accounts, clock = world()
    alice, _ = registered(chat, accounts)
    chat.quit(alice, "bye")
    mallory, m = enter(chat, accounts, "alice")
    (notice,) = m.take()
    assert isinstance(notice, Notice) and notice.service == "NickServ"
    assert "alice is a registered nickname" in notice.text and "60" in notice.text
    clock.advance(59)
    assert mallory.nick == "alice"
    clock.advance(1)
    renamed, told = m.take()
    assert isinstance(renamed, Renamed) and renamed.old == "alice"
    assert mallory.nick.startswith("Guest") and mallory.nick == renamed.new
    assert isinstance(told, Notice) and "did not identify" in told.text


def test_identifying_in_time_keeps_the_nickname() -> None:
    """Identify within the grace: no rename; a rename away stops the clock too."""
    chat, accounts, clock = world()
    alice, _ = registered(chat, accounts)
    chat.quit(alice, "bye")
    again, _ = enter(chat, accounts, "alice")
    result(accounts.identify(again, "alice", PASSWORD, HOST))
    clock.advance(120)
    assert again.nick == "alice"
    bob, _ = enter(chat, accounts, "bob")
    chat.quit(again, "bye")
    chat.rename(bob, "alice")
    chat.rename(bob, "bobby")
    clock.advance(120)
    assert bob.nick == "bobby"


def test_set_password_and_unregister() -> None:
    """/password needs an identified user; /unregister checks the password and
    frees the nickname, and everyone identified to it stops being so."""
    chat, accounts, _ = world()
    alice, _ = registered(chat, accounts)
    bob, _ = enter(chat, accounts, "bob")
    assert code(lambda: accounts.set_password(bob, "new password", None, HOST)) is (
        ErrorCode.NOT_IDENTIFIED
    )
    result(accounts.set_password(alice, "new password", "new password", HOST))
    assert code(lambda: accounts.identify(bob, "alice", PASSWORD, HOST)) is (
        ErrorCode.AUTH_FAILED
    )
    result(accounts.identify(bob, "alice", "new password", HOST))
    assert code(lambda: accounts.unregister(alice, "wrong", HOST)) is (
        ErrorCode.AUTH_FAILED
    )
    result(accounts.unregister(alice, "new password", HOST))
    assert accounts.store.accounts == {}
    assert alice.account == bob.account == ""


def test_passwords_are_never_logged() -> None:
    """Registering, identifying right and wrong, changing, dropping: the log
    holds neither the passwords nor the hash."""
    chat, accounts, _ = world()
    with capturedLogs() as events:
        alice, _ = registered(chat, accounts)
        code(lambda: accounts.identify(alice, "alice", "wrong-guess-xyz", HOST))
        result(accounts.set_password(alice, "second secret", None, HOST))
        result(accounts.unregister(alice, "second secret", HOST))
    text = repr(events)
    assert events
    for secret in (PASSWORD, "wrong-guess-xyz", "second secret", "$argon2"):
        assert secret not in text


def test_a_hash_made_with_other_settings_is_made_again() -> None:
    """Identify with an account hashed at other costs: its hash is renewed."""
    chat, accounts, _ = world()
    alice, _ = registered(chat, accounts)
    old = accounts.store.accounts["alice"].hash
    stronger = AccountSettings(time_cost=2, memory_cost=16, parallelism=1)
    accounts.hasher = Hasher(stronger, run_inline)
    result(accounts.identify(alice, "alice", PASSWORD, HOST))
    new = accounts.store.accounts["alice"].hash
    assert new != old and "t=2" in new


def test_throttled_guessing_is_logged_once_a_minute() -> None:
    """A hundred throttled tries from one address make one warning, not 100."""
    chat, accounts, clock = world()
    mallory, _ = enter(chat, accounts, "mallory")
    with capturedLogs() as events:
        for _ in range(100):
            try:
                result(accounts.identify(mallory, "alice", "guess", HOST))
            except ChatError:
                pass
        clock.advance(61)
        for _ in range(10):  # 5 checked (61 s refilled them), then throttled
            try:
                result(accounts.identify(mallory, "alice", "guess", HOST))
            except ChatError:
                pass
    throttled = [e for e in events if "attempts throttled" in e["log_format"]]
    assert len(throttled) == 2 and throttled[0]["host"] == HOST
