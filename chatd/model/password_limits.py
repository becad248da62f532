"""Which wrong-password budgets a password check spends (docs/security.md).

A check spends, if the password is wrong (chatd.model.password_queue.Budget):

- its address's budget: a few tries at once, then one every so often,
  whatever the account;
- a share of its account's budget, chosen by what the account knows of the
  address, so that guessers never spend the owner's share:
  - an address that gave the account a wrong password (and not the right
    one since) spends the guessers' share;
  - an address new to the account spends the newcomers' share, which only
    an address's first wrong passwords spend: to keep it spent, guessers
    must keep coming from new addresses. One the share refused, and that
    comes back before the time it was told, counts as a guesser from then
    on (it is hammering), so that whoever waits as told is not crowded out;
  - an address that gave the account its right password spends neither
    (its address's budget still holds).

This is kept in memory: a bounded number of accounts (the least recently
tried forgotten first) and of addresses for each; a restart forgets it.
Names without an account are kept the same way, so that nothing here says
whether an account exists.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime

from chatd.config import AccountSettings
from chatd.model.password_queue import Budget

MAX_KEYS = 4096  # addresses, and accounts, kept; the least recent go first
MAX_KNOWN = 64  # addresses remembered for one account
ADDRESS = "address"
ACCOUNT = "account"
V = TypeVar("V")


class AccountWatch:
    """One account's budgets and the addresses it knows."""

    __slots__ = ("guessers", "newcomers", "known")

    def __init__(self, settings: AccountSettings, clock: IReactorTime) -> None:
        self.guessers = Budget(
            ACCOUNT, settings.account_burst, settings.account_rate, clock
        )
        self.newcomers = Budget(
            ACCOUNT, settings.newcomer_burst, settings.newcomer_rate, clock
        )
        # Address -> whether its last answered check was right; or, for a
        # newcomer the newcomers' share refused, when it was told to come back.
        self.known: OrderedDict[str, bool | float] = OrderedDict()


class GuessLimits:
    """The wrong-password budgets of addresses and accounts."""

    def __init__(self, settings: AccountSettings, clock: IReactorTime) -> None:
        self.settings = settings
        self.clock = clock
        self.addresses: OrderedDict[str, Budget] = OrderedDict()
        self.accounts: OrderedDict[str, AccountWatch] = OrderedDict()

    def address(self, host: str) -> Budget:
        """host's budget (made full on first use)."""
        budget = self.addresses.get(host)
        if budget is None:
            settings = self.settings
            budget = Budget(
                ADDRESS, settings.address_burst, settings.address_rate, self.clock
            )
            self.addresses[host] = budget
            _bound(self.addresses)
        else:
            self.addresses.move_to_end(host)
        return budget

    def watch(self, account: str) -> AccountWatch:
        """The folded account name's budgets and known addresses."""
        watch = self.accounts.get(account)
        if watch is None:
            watch = self.accounts[account] = AccountWatch(self.settings, self.clock)
            _bound(self.accounts)
        else:
            self.accounts.move_to_end(account)
        return watch

    def budgets(self, account: str, host: str) -> tuple[Budget, ...]:
        """What a check of a password for account from host spends if wrong."""
        watch = self.watch(account)
        known = watch.known.get(host)
        if isinstance(known, float):  # a bool is an int, never a float
            if self.clock.seconds() < known:
                known = watch.known[host] = False  # back too early: hammering
            else:
                known = None
        if known is None:
            return (self.address(host), watch.newcomers)
        if known:
            return (self.address(host),)
        return (self.address(host), watch.guessers)

    def refused(self, account: str, host: str, spent: Budget) -> None:
        """spent had no try for a check for account from host: if it was the
        newcomers' share, host is to come back only when told."""
        watch = self.watch(account)
        if spent is watch.newcomers:
            self._remember(watch, host, self.clock.seconds() + spent.wait())

    def answered(self, account: str, host: str, right: bool) -> None:
        """A check for account from host was answered: host is remembered so."""
        self._remember(self.watch(account), host, right)

    def _remember(self, watch: AccountWatch, host: str, what: bool | float) -> None:
        known = watch.known
        known[host] = what
        known.move_to_end(host)
        while len(known) > MAX_KNOWN:
            known.popitem(last=False)

    def forget(self, account: str) -> None:
        """The account was dropped: what it knew goes with it."""
        self.accounts.pop(account, None)


def _bound(table: OrderedDict[str, V]) -> None:
    while len(table) > MAX_KEYS:
        table.popitem(last=False)
