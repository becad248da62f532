"""The bound on one account's private messages (Bound.account, --history-account-max).

docs/protocol.md, What an always-on user keeps: a conversation keeps at most
--history-room-max messages, but an always-on user whom many nicknames write to
has a conversation with each; its private messages in all are bounded too, the
oldest of all its conversations going first, and nobody else's are touched.
Each store holds it (the memory store, the SQLite database the writer thread
calls, and a daemon with the option); Redis bounds conversations only.
"""

from __future__ import annotations

import pytest
from helpers import CHEAP, NOW, connect, disconnect, lines
from test_devices import registered
from test_history_bound import count
from twisted.internet.task import Clock

from chatd.config import HISTORY_ACCOUNT_MAX, ServerConfig
from chatd.factory import ChatFactory
from chatd.store.interface import Bound, Kind
from chatd.store.memory import MemoryHistory
from chatd.store.sqlite import MEMORY, HistoryDatabase, PrivateRow

pytestmark = pytest.mark.dated
BASE = int(NOW * 1_000_000)


def test_the_default_is_the_documented_one() -> None:
    """50,000 private messages an account, within a hundredth (SLACK)."""
    assert Bound().account == HISTORY_ACCOUNT_MAX == 50_000
    assert Bound().over_account(50_500) == 0
    assert Bound().over_account(50_501) == 501
    assert Bound(account=0).over_account(10**9) == 0


def test_memory_store_keeps_an_accounts_newest_of_all_its_conversations(
    clock: Clock,
) -> None:
    """Five nicknames write 30 each to alice's account, bounded at 50: alice
    keeps her newest 50 across the five; bob and carol's conversation keeps all."""
    store = MemoryHistory(clock, bound=Bound(room=100, total=0, account=50))
    for n in range(20):
        store.record_private("bob", "carol", Kind.MESSAGE, "bob", f"b{n}")
    for who in range(5):
        for n in range(30):
            clock.advance(0.001)
            store.record_private(f"~s{who}", "alice", Kind.MESSAGE, f"s{who}", f"{n}")
    kept = [len(store.conversations[("alice", f"~s{who}")]) for who in range(5)]
    assert kept == [0, 0, 0, 20, 30]
    assert store.conversations[("alice", "~s3")][0].text == "10"
    assert len(store.conversations[("bob", "carol")]) == 20


def rows(first: int, count: int, low: str, high: str) -> list[PrivateRow]:
    """Private rows n of first..first+count-1 between low and high (in order)."""
    return [
        (BASE + n * 1000, low, high, BASE // 1000 + n, "MSG", low, f"{n}")
        for n in range(first, first + count)
    ]


def test_database_keeps_an_accounts_newest_of_all_its_conversations() -> None:
    """The same in SQLite, in batches as the writer hands them: alice keeps 100
    of the 300 written to her from three nicknames, the newest; bob and carol's
    conversation is untouched; counts learnt again after a dropped account."""
    database = HistoryDatabase.open(
        MEMORY, bound=Bound(room=1000, total=0, account=100)
    )
    database.append(rows(0, 40, "bob", "carol"))
    for first in range(40, 340, 25):
        nick = f"~s{(first - 40) // 100}"
        database.append(rows(first, 25, "alice", nick))
    assert count(database, "private_messages") == 140
    texts = [
        entry.text
        for nick in ("~s0", "~s1", "~s2")
        for entry in database.read_private("alice", nick, 1000)
    ]
    assert texts == [str(n) for n in range(240, 340)]
    assert len(database.read_private("carol", "bob", 1000)) == 40
    assert database.forget_private("~s2") == 100
    database.append(rows(340, 150, "alice", "~s3"))
    assert len(database.read_private("alice", "~s3", 1000)) == 100


def test_an_always_on_users_private_messages_are_bounded_through_the_door(
    clock: Clock,
) -> None:
    """alice is always-on with no device; four nicknames send her 10 each with
    --history-account-max 25 (a memory store): her catch-up then holds her
    newest 25, from the last conversations."""
    store = MemoryHistory(clock, bound=Bound(room=100, total=0, account=25))
    factory = ChatFactory(ServerConfig(flood_rate=0.0, accounts=CHEAP), clock, store)
    alice = registered(factory, "alice")
    alice[0].dataReceived(b"/always-on on\r\n")
    disconnect(alice[0])
    assert "alice" in factory.chat.users  # kept, with no device
    for who in range(4):
        sender = connect(factory, f"fan{who}")
        for n in range(10):
            clock.advance(0.01)
            sender[0].dataReceived(f"/msg alice {who}.{n}\r\n".encode())
        lines(sender[1])
    kept = [
        entry.text
        for pair, entries in store.conversations.items()
        if "alice" in pair
        for entry in entries
    ]
    assert sorted(kept) == sorted(
        [f"{who}.{n}" for who in (1,) for n in range(5, 10)]
        + [f"{who}.{n}" for who in (2, 3) for n in range(10)]
    )


def test_the_option_reaches_the_store_and_is_checked() -> None:
    """--history-account-max N becomes the SQLite store's Bound.account;
    a negative or a fraction is refused with a sentence."""
    from test_plugin import parse
    from twisted.python import usage

    from chatd.ops.service import HistoryService
    from twisted.plugins.chatd_plugin import chatd

    assert parse()["history-bound"].account == 50_000
    options = parse("--history-account-max", "500")
    history = next(
        c for c in chatd.makeService(options) if isinstance(c, HistoryService)
    )
    assert history.history.bound == Bound(account=500)
    for wrong in ("-1", "1.5"):
        with pytest.raises(usage.UsageError):
            parse("--history-account-max", wrong)
