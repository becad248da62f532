"""Accounts: registering, identifying, throttling, reserved nicknames.

The Accounts service over a Chat with recording clients, a fake clock and
cheap Argon2 run inline; a manual runner where a test needs a check to be
on its way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import pytest
from helpers import CHEAP, RecordingClient
from test_password_queue import FakePool, run_for
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from chatd.config import AccountSettings
from chatd.model.accounts import MAX_PENDING, Accounts, Hasher, run_inline
from chatd.model.chat import Chat, Renamed, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.events import AccountChanged, Notice
from chatd.model.password_queue import MAX_QUEUED
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


def pooled(
    settings: AccountSettings = CHEAP,
) -> tuple[Chat, Accounts, Clock]:
    """A world whose hashes take HASH_SECONDS each on two fake threads."""
    clock = Clock()
    chat = Chat(now=clock.seconds)
    pool = FakePool(clock)
    accounts = Accounts(chat, MemoryAccounts(), Hasher(settings, pool.run), clock)
    return chat, accounts, clock


def answers(answer: defer.Deferred[AccountRecord], into: list[str | ErrorCode]) -> None:
    """Collect the answer: the account's name, or the error's code."""

    def refused(failure: Failure) -> None:
        failure.trap(ChatError)
        into.append(failure.value.code)

    answer.addCallbacks(lambda record: into.append(record.name), refused)


@pytest.mark.parametrize(("count", "addresses"), [(6, 1), (6, 6), (30, 30)])
def test_guessers_never_keep_the_owner_out(count: int, addresses: int) -> None:
    """Six connections (or 30) guess alice's password every 0.5 s, from one
    address or one each; 130 s in, the owner takes the nickname alice from
    another address and identifies: it is in at its first try
    (docs/security.md), and is not renamed when the grace ends."""
    chat, accounts, clock = pooled()
    alice = enter(chat, accounts, "alice")[0]
    made = accounts.register(alice, PASSWORD, PASSWORD, "203.0.113.1")
    run_for(clock, 1)
    assert made.called
    chat.quit(alice, "bye")
    guessers = [enter(chat, accounts, f"guesser{n}")[0] for n in range(count)]
    told: list[str | ErrorCode] = []

    def guess() -> None:
        for n, guesser in enumerate(guessers):
            host = f"198.51.100.{n % addresses + 1}"
            answers(accounts.identify(guesser, "alice", "guess", host), told)

    for _ in range(130 * 2):
        guess()
        clock.advance(0.5)
    assert ErrorCode.THROTTLED in told and ErrorCode.AUTH_FAILED in told
    owner, _ = enter(chat, accounts, "alice")
    got: list[str | ErrorCode] = []
    answers(accounts.identify(owner, "alice", PASSWORD, "192.0.2.200"), got)
    for _ in range(4):  # the guessers go on
        guess()
        clock.advance(0.5)
    assert got == ["alice"] and owner.account == "alice"
    clock.advance(120)
    assert owner.nick == "alice"


def test_a_patient_crowd_of_new_addresses_waits_with_the_owner() -> None:
    """Past the newcomers' share (20 new addresses wrong at once), an owner on
    a new address waits its turn like them (one a minute), but an owner on
    an address it identified from before never waits."""
    chat, accounts, clock = world()
    registered(chat, accounts)  # from HOST
    bob, _ = enter(chat, accounts, "bob")
    for n in range(20):
        code(partial(accounts.identify, bob, "alice", "guess", f"10.0.0.{n}"))
    with pytest.raises(ChatError) as refused:
        result(accounts.identify(bob, "alice", PASSWORD, "192.0.2.200"))
    assert "too many wrong passwords for alice; try again in 60 seconds" in (
        refused.value.text
    )
    result(accounts.identify(bob, "alice", PASSWORD, HOST))
    clock.advance(60)  # back when told: still a newcomer, and in
    result(accounts.identify(bob, "alice", PASSWORD, "192.0.2.200"))


def test_the_grace_waits_for_a_check_on_its_way() -> None:
    """A check of the password sent just before the grace ends: no rename
    until its answer; a right one keeps the nickname, a wrong one renames."""
    for password, kept in ((PASSWORD, True), ("wrong password", False)):
        chat, accounts, clock = pooled()
        alice = enter(chat, accounts, "alice")[0]
        accounts.register(alice, PASSWORD, PASSWORD, "203.0.113.1")
        run_for(clock, 1)
        chat.quit(alice, "bye")
        again, _ = enter(chat, accounts, "alice")
        clock.advance(accounts.settings.grace - 0.1)
        answers(accounts.identify(again, "alice", password, "192.0.2.5"), [])
        clock.advance(0.15)  # the grace is over; the check is not
        assert again.nick == "alice"
        run_for(clock, 1)
        assert (again.nick == "alice") is kept


def test_renaming_does_not_restart_the_grace() -> None:
    """The grace belongs to the connection and the name: a change of case, or
    a rename away and back, goes on with what is left; after it, taking the
    name again renames at once."""
    chat, accounts, clock = world()
    alice, _ = registered(chat, accounts)
    chat.quit(alice, "bye")
    mallory, m = enter(chat, accounts, "alice")
    clock.advance(30)
    chat.rename(mallory, "ALICE")
    clock.advance(10)
    chat.rename(mallory, "mallory")
    clock.advance(10)
    chat.rename(mallory, "Alice")
    notices = [e for e in m.take() if isinstance(e, Notice)]
    assert "identify within 10 seconds (left)" in notices[-1].text
    clock.advance(9.9)
    assert mallory.nick == "Alice"
    clock.advance(0.1)  # 60 s after it first took the name
    assert mallory.nick.startswith("Guest")
    chat.rename(mallory, "alice")
    clock.advance(0)
    assert mallory.nick.startswith("Guest")


def test_identifying_to_another_account_does_not_restart_the_grace() -> None:
    """Holding alice, identifying to one's own account bob changes nothing for
    alice: renamed 60 s after first taking it, with no new notice."""
    chat, accounts, clock = world()
    alice, _ = registered(chat, accounts)
    chat.quit(alice, "bye")
    bob, _ = registered(chat, accounts, "bob")
    chat.rename(bob, "alice")
    clock.advance(50)
    bob_client = bob.client
    assert isinstance(bob_client, RecordingClient)
    bob_client.take()
    result(accounts.identify(bob, "bob", PASSWORD, HOST))
    assert not [e for e in bob_client.take() if isinstance(e, Notice)]
    clock.advance(10)
    assert bob.nick.startswith("Guest")


@pytest.mark.parametrize("changes", [3, 10_000])
@pytest.mark.parametrize("addresses", [1, 15])
def test_a_password_loop_never_starves_another_check(
    changes: int, addresses: int
) -> None:
    """15 connections of one account (from one address, or 15) send a new
    password every 0.5 s for 30 s; a victim identifies every 2.5 s: never
    refused as busy, each answered within a second. The loop gets its 3 new
    passwords a minute; even were it allowed many more, the queue's caps
    (PER_ACCOUNT) and turns keep the victim's check near the front."""
    chat, accounts, clock = pooled(replace(CHEAP, change_burst=changes))
    victim, _ = enter(chat, accounts, "bob")
    accounts.register(victim, PASSWORD, PASSWORD, "203.0.113.9")
    loopers = [enter(chat, accounts, f"m{n}" if n else "mallory")[0] for n in range(15)]
    accounts.register(loopers[0], PASSWORD, PASSWORD, "198.51.100.1")
    run_for(clock, 1)
    for user in loopers:
        chat.set_account(user, "mallory")
    theirs: list[str | ErrorCode] = []
    mine: list[str | ErrorCode] = []
    for step in range(60):
        for n, user in enumerate(loopers):
            host = f"198.51.100.{n % addresses + 1}"
            answers(accounts.set_password(user, "new password", None, host), theirs)
        if step % 5 == 0:
            before = len(mine)
            answers(accounts.identify(victim, "bob", PASSWORD, "192.0.2.99"), mine)
            run_for(clock, 1)
            assert len(mine) == before + 1
            clock.advance(1.5)
        else:
            clock.advance(0.5)
    assert mine == ["bob"] * 12
    assert set(theirs) == {"mallory", ErrorCode.THROTTLED}
    if changes == 3:
        assert theirs.count("mallory") == 3  # the next one only a minute on


def test_right_passwords_at_once_from_one_address_are_never_refused() -> None:
    """Six right passwords at once from one address all identify; eight
    wrong ones: five are checked, three throttled (no more checks on their
    way than tries left)."""
    chat, accounts, clock = pooled()
    alice = enter(chat, accounts, "alice")[0]
    accounts.register(alice, PASSWORD, PASSWORD, "203.0.113.1")
    run_for(clock, 1)
    users = [enter(chat, accounts, f"u{n}")[0] for n in range(6)]
    got: list[str | ErrorCode] = []
    for user in users:
        answers(accounts.identify(user, "alice", PASSWORD, "192.0.2.50"), got)
    run_for(clock, 3)
    assert got == ["alice"] * 6
    wrong: list[str | ErrorCode] = []
    for user in users + users[:2]:
        answers(accounts.identify(user, "alice", "guess", "192.0.2.60"), wrong)
    run_for(clock, 3)
    assert sorted(wrong) == [ErrorCode.AUTH_FAILED] * 5 + [ErrorCode.THROTTLED] * 3
