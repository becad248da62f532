"""Accounts: names that belong to someone.

A person registers their nickname with a password and identifies with it
later (on any door: /identify, IRC's SASL PLAIN or NickServ). The Accounts
service keeps the accounts (chatd.store.accounts), checks passwords, guards
registered nicknames and throttles guessing; the chat model only learns who
is identified as what (Chat.set_account).

- Passwords are hashed with Argon2id (argon2-cffi), never on the reactor's
  thread: a small pool of threads of its own does it, fed by a queue that
  is fair between addresses and capped per address and per account
  (chatd.model.password_queue). A password is never logged, and the hash only
  goes to the database.
- Argon2's verify compares in constant time. An attempt on a name that has
  no account is verified against a hash of the same cost, and refused with
  the same words, so neither the answer nor its time says whether the
  account exists (the nickname's reservation notice does: that is public).
- Wrong passwords are throttled per address and per account: a few at
  once, then one every so often; past that, refused at once, without
  hashing. Only a wrong password spends a try, and guessers spend a share
  of the account's tries that is not its owner's (chatd.model.password_limits).
- A registered nickname is reserved: whoever takes it without being
  identified to its account is told so, and renamed to a guest name after
  the grace period (60 seconds) unless they identify. The grace belongs to
  the connection and the name: taking the name again (in another case, or
  after a rename away) does not start it again.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.config import AccountSettings
from chatd.model.always_on import record_of, restore
from chatd.model.chat import Chat, Notice, User
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.names import fold, guest_name, normalize_name
from chatd.model.password_limits import ADDRESS, GuessLimits
from chatd.model.password_queue import (
    BUSY,
    MAX_PENDING,
    PER_ACCOUNT,
    PER_ADDRESS,
    THREADS,
    Admission,
    Budget,
    Claim,
    PasswordQueue,
    Runner,
)
from chatd.model.rates import TokenBucket
from chatd.model.room_rules import RoomRecord
from chatd.store.interface import AccountRecord, AccountStore

T = TypeVar("T")

NICKSERV = "NickServ"
__all__ = ["MAX_PENDING", "Accounts", "Hasher", "Runner", "run_inline"]
MAX_BUCKETS = 4096  # throttle entries kept per kind; the least recent go first
MAX_GRACES = 64  # registered names one connection may take, each with its grace
LOG_EVERY = 60.0  # seconds between two log lines about one address's guesses
DEFAULT_SETTINGS = AccountSettings()


def run_inline(work: Callable[[], T]) -> defer.Deferred[T]:
    """A Runner that does the work at once (tests, with cheap Argon2 settings)."""
    return defer.maybeDeferred(work)


class Hasher:
    """Argon2id hashing and verifying, run off the reactor by run, in turn."""

    def __init__(
        self, settings: AccountSettings, run: Runner[object], threads: int = THREADS
    ) -> None:
        self.argon2 = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_cost,
            parallelism=settings.parallelism,
        )
        self.queue = PasswordQueue(run, threads)
        # What an attempt on a name without an account is checked against:
        # the same cost as a real one, and never a match. Made on first use.
        self._decoy: str | None = None

    @property
    def pending(self) -> int:
        """Hashes and checks waiting or running."""
        return self.queue.pending

    def hash(self, password: str, claim: Claim) -> defer.Deferred[str]:
        """The encoded Argon2id hash of password (salt and parameters in it)."""
        return self.queue.submit(lambda: self.argon2.hash(password), claim)

    def verify(
        self, encoded: str | None, password: str, claim: Claim
    ) -> defer.Deferred[bool]:
        """Whether password matches encoded (None: against the decoy, so False).

        claim's budgets are spent if it does not match.
        """
        argon2 = self.argon2

        def check() -> bool:
            target = encoded
            if target is None:
                if self._decoy is None:
                    self._decoy = argon2.hash(secrets.token_urlsafe(16))
                target = self._decoy
            try:
                argon2.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
            return encoded is not None

        return self.queue.submit(check, claim)

    def needs_rehash(self, encoded: str) -> bool:
        """Whether encoded was made with other parameters than ours."""
        try:
            return self.argon2.check_needs_rehash(encoded)
        except InvalidHashError:
            return False


class Throttle:
    """Token buckets by key (an address or an account), a bounded number of them."""

    def __init__(self, burst: int, rate: float, clock: IReactorTime) -> None:
        self.burst = burst
        self.rate = rate
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> bool:
        """Spend one try for key, if it has one left."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.burst, self.rate, self.clock)
            while len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        return bucket.take()

    def wait(self, key: str) -> float:
        """Seconds until key has a try again."""
        bucket = self.buckets.get(key)
        return 0.0 if bucket is None else bucket.wait()


def _seconds(wait: float) -> str:
    whole = max(1, int(wait + 0.999))
    return f"{whole} second{'s' if whole != 1 else ''}"


def _not_now(failure: Failure) -> None:
    """A rehash the queue had no room for: it is done another time."""
    failure.trap(ChatError)


def _existing(name: str, record: AccountRecord | None) -> AccountRecord:
    """record, the account called name; refused if there is none."""
    if record is None:
        raise ChatError(ErrorCode.NO_SUCH_NICK, f"there is no account called {name}")
    return record


def _who(by: User | None) -> str:
    """Who made an operator's change, for the log."""
    return by.nick if by is not None else "chatd-admin"


def _address(host: str) -> str:
    """The password queue's key for an address's work."""
    return f"address {host}"


def _account(key: str) -> str:
    """The password queue's key for an account's work."""
    return f"account {key}"


class Accounts:
    """Registering, identifying, reserved nicknames and throttling, for every door."""

    log = Logger()

    def __init__(
        self,
        chat: Chat,
        store: AccountStore,
        hasher: Hasher,
        clock: IReactorTime,
        settings: AccountSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.chat = chat
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.settings = settings
        self.limits = GuessLimits(settings, clock)
        self.registrations = Throttle(
            settings.register_burst, settings.register_rate, clock
        )
        self.changes = Throttle(settings.change_burst, settings.change_rate, clock)
        self._reservations: dict[User, IDelayedCall] = {}
        # When each connection's grace for each registered name it took ends
        # (folded name -> the clock's time): taking it again does not restart it.
        self._graces: dict[User, dict[str, float]] = {}
        self._sweep_at = 64  # how many connections' graces before a sweep
        self._checking: dict[User, int] = {}  # identify checks on their way
        self._overdue: set[User] = set()  # grace over while a check was on its way
        self._throttle_noted: OrderedDict[str, float] = OrderedDict()
        chat.records = store.rooms  # registered rooms: the store's, kept in place
        chat.server_bans.attach(store.server_bans, store.save_server_ban)
        chat.record_changed = self._room_changed
        chat.markers = store.markers  # read markers, the same way
        chat.marker_changed = store.save_marker
        chat.nick_watchers.append(self.nick_taken)
        # Always-on users are the account's, kept in its store across restarts.
        chat.always_on_changed = self._always_on_changed
        store.when_loaded(self._restore_always_on)

    # -- looking up -----------------------------------------------------------------

    def account(self, name: str) -> AccountRecord | None:
        """The account called name (ignoring case), if there is one."""
        return self.store.accounts.get(fold(name))

    def is_registered(self, nick: str) -> bool:
        """Whether nick is an account's name (and so reserved)."""
        return fold(nick) in self.store.accounts

    def _room_changed(self, record: RoomRecord | None, key: str) -> None:
        self.store.save_room(key, record)

    def _always_on_changed(self, user: User, on: bool) -> None:
        if user.account:
            self.store.save_always_on(
                fold(user.account), record_of(user) if on else None
            )

    def _restore_always_on(self) -> None:
        """The store is read: its always-on users come back (chatd.model.always_on)."""
        kept = self.store.always_on
        for key in [key for key in kept if key not in self.store.accounts]:
            self.store.save_always_on(key, None)  # an account dropped meanwhile
        restored = restore(self.chat, dict(kept))
        if restored:
            self.log.info("{count} always-on users are back", count=len(restored))

    # -- passwords ------------------------------------------------------------------

    def check_password(self, password: str, again: str | None = None) -> None:
        """Refuse a password that is too short or long, or not typed the same twice."""
        settings = self.settings
        if again is not None and again != password:
            raise ChatError(
                ErrorCode.BAD_PASSWORD,
                "the two passwords differ; type the same one twice",
            )
        if len(password) < settings.min_password:
            raise ChatError(
                ErrorCode.BAD_PASSWORD,
                f"a password has at least {settings.min_password} characters",
            )
        if len(password.encode("utf-8")) > settings.max_password:
            raise ChatError(
                ErrorCode.BAD_PASSWORD,
                f"a password has at most {settings.max_password} bytes",
            )

    def _queue_refusal(self, claim: Claim) -> None:
        """Refuse work the password queue would not take now (ChatError)."""
        refused = self.hasher.queue.refusal(claim)
        if refused is not None:
            if refused.text == BUSY:
                self.log.warn("password checks are all busy; one was refused")
            raise refused

    # -- registering ------------------------------------------------------------------

    def register(
        self, user: User, password: str, again: str | None, host: str
    ) -> defer.Deferred[AccountRecord]:
        """Register user's nickname as an account with password; they are identified.

        again: the password typed a second time (None where a door has no
        room for it: IRC's NickServ REGISTER).
        """
        try:
            name = user.nick
            if self.is_registered(name):
                raise ChatError(
                    ErrorCode.ALREADY_REGISTERED,
                    f"{name} is registered already; /identify if it is yours",
                )
            self.check_password(password, again)
            claim = Claim(host, ((_address(host), PER_ADDRESS),))
            self._queue_refusal(claim)
            if not self.registrations.take(host):
                raise ChatError(
                    ErrorCode.THROTTLED,
                    "too many new accounts from your address; try again in "
                    + _seconds(self.registrations.wait(host)),
                )
        except ChatError as error:
            return defer.fail(error)

        key = fold(name)

        def made(encoded: str) -> defer.Deferred[AccountRecord]:
            record = AccountRecord(
                normalize_name(name), encoded, int(self.clock.seconds() * 1000)
            )
            # The store decides, at once for every node of a cluster (Redis).
            return self.store.add_account(key, record).addCallback(added, record)

        def added(fresh: bool, record: AccountRecord) -> AccountRecord:
            if not fresh:  # two asked at once, maybe on two nodes: the first has it
                raise ChatError(
                    ErrorCode.ALREADY_REGISTERED, f"{name} was registered meanwhile"
                )
            self._forget_private(key)  # a dropped account's, should any be left
            self.limits.answered(key, host, right=True)  # it knows the password
            self.log.info("account {account} registered", account=record.name)
            if self.chat.users.get(user.key) is user:
                self.identified(user, record)
            return record

        return self.hasher.hash(password, claim).addCallback(made)

    # -- identifying ------------------------------------------------------------------

    def identify(
        self, user: User | None, name: str, password: str, host: str
    ) -> defer.Deferred[AccountRecord]:
        """Check password for account name; if right, user (if any) is identified.

        Fails with AUTH_FAILED (never saying whether the account exists) or
        THROTTLED. user None: IRC's SASL before registration; the door
        identifies the user it makes.
        """
        key = fold(name)
        limits = self.limits
        budgets = limits.budgets(key, host)
        refusal = partial(self._throttled, name, host)
        claim = Claim(host, ((_address(host), PER_ADDRESS),), budgets, refusal)
        try:
            for budget in budgets:  # only wrong passwords spent them
                if budget.admission() is Admission.SPENT:
                    raise refusal(budget)
            self._queue_refusal(claim)
        except ChatError as error:
            return defer.fail(error)
        encoded: str | None = None

        def verify(record: AccountRecord | None) -> defer.Deferred[bool]:
            nonlocal encoded
            encoded = record.hash if record is not None else None
            return self.hasher.verify(encoded, password, claim)

        def again(right: bool) -> defer.Deferred[bool]:
            # The record may change while the hash runs (on a cluster, on
            # another node): asked again, so checked sees it as it is now.
            return self.store.fetch_account(key).addCallback(lambda _: right)

        def checked(right: bool) -> AccountRecord:
            found = self.store.accounts.get(key)
            if not right or found is None or found.hash != encoded:
                limits.answered(key, host, right=False)
                self.log.info("a wrong password for an account from {host}", host=host)
                raise ChatError(
                    ErrorCode.AUTH_FAILED,
                    "wrong password, or no account of that name",
                )
            limits.answered(key, host, right=True)
            if user is not None and self.chat.users.get(user.key) is user:
                self.identified(user, found)
            self._rehash_if_old(key, found, password)
            return found

        asked = self.store.fetch_account(key)  # the record, not a cache of it
        answer = asked.addCallback(verify).addCallback(again).addCallback(checked)
        # answer.called is true as soon as the store answered, though the hash
        # is still on its way: whether it is answered is known from its chain.
        answered: list[bool] = []

        def note(result: T) -> T:
            answered.append(True)
            return result

        answer.addBoth(note)
        if user is not None and not answered:
            self._checking[user] = self._checking.get(user, 0) + 1
            answer.addBoth(self._check_answered, user)
        return answer

    def _throttled(self, name: str, host: str, budget: Budget) -> ChatError:
        """The refusal when budget (host's, or account name's) has no try left."""
        self.limits.refused(fold(name), host, budget)
        wait = _seconds(budget.wait())
        if budget.kind == ADDRESS:
            self._note_throttled(host)
            return ChatError(
                ErrorCode.THROTTLED,
                f"too many wrong passwords from your address; try again in {wait}",
            )
        return ChatError(
            ErrorCode.THROTTLED,
            f"too many wrong passwords for {name}; try again in {wait}",
        )

    def _check_answered(self, result: T, user: User) -> T:
        """user's identify check is answered: a grace that ended meanwhile ends."""
        left = self._checking.pop(user, 1) - 1
        if left:
            self._checking[user] = left
        if user in self._overdue:
            self._overdue.discard(user)
            self._expired(user, waited=True)
        return result

    def _note_throttled(self, host: str) -> None:
        """Log that host's guesses are throttled: once a minute at most."""
        now = self.clock.seconds()
        noted = self._throttle_noted
        if now - noted.get(host, -LOG_EVERY) < LOG_EVERY:
            return
        noted[host] = now
        noted.move_to_end(host)
        while len(noted) > MAX_BUCKETS:
            noted.popitem(last=False)
        self.log.warn(
            "wrong passwords from {host}: attempts throttled (noted once a minute)",
            host=host,
        )

    def identified(self, user: User, record: AccountRecord) -> None:
        """user proved they own record: the chat is told, a reservation ends.

        An account a server ban names is refused (ServerBanned) and its
        connection closed with the ban's reason.
        """
        banned = self.chat.server_ban_for_account(record.name)
        if banned is not None:
            self.log.info(
                "{nick} identified as {account}, which is banned from the server",
                nick=user.nick,
                account=record.name,
            )
            user.client.close(banned.goodbye)
            raise banned
        self.chat.set_account(user, record.name)
        self.log.info(
            "{nick} identified as {account}", nick=user.nick, account=record.name
        )
        if fold(record.name) == user.key:
            # Ended here, not by user.account: on a cluster the chat learns
            # of the account a moment later, through the log.
            self._end_reservation(user)

    def _end_reservation(self, user: User) -> None:
        """user's clock for its nickname stops (it identified to it)."""
        call = self._reservations.pop(user, None)
        if call is not None and call.active():
            call.cancel()
        self._overdue.discard(user)

    def _rehash_if_old(self, key: str, record: AccountRecord, password: str) -> None:
        """A hash made with other parameters is made again with ours."""
        if not self.hasher.needs_rehash(record.hash):
            return

        def store(encoded: str) -> defer.Deferred[bool]:
            new = AccountRecord(record.name, encoded, record.created)
            return self.store.replace_account(key, record, new)

        claim = Claim(_account(key), ((_account(key), PER_ACCOUNT),))
        rehash = self.hasher.hash(password, claim).addCallback(store)
        rehash.addErrback(_not_now).addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        self.log.failure("an account change failed", failure)

    # -- changing and dropping --------------------------------------------------------

    def _own_account(self, user: User) -> tuple[str, AccountRecord]:
        key = fold(user.account)
        record = self.store.accounts.get(key) if user.account else None
        if record is None:
            raise ChatError(
                ErrorCode.NOT_IDENTIFIED,
                "you are not identified: /identify [<nick>] <password> first",
            )
        return key, record

    def set_password(
        self, user: User, password: str, again: str | None, host: str
    ) -> defer.Deferred[AccountRecord]:
        """Give the account user is identified to a new password (from host)."""
        try:
            key, record = self._own_account(user)
            self.check_password(password, again)
            caps = ((_address(host), PER_ADDRESS), (_account(key), PER_ACCOUNT))
            claim = Claim(host, caps)
            self._queue_refusal(claim)
            if not self.changes.take(key):
                raise ChatError(
                    ErrorCode.THROTTLED,
                    f"too many new passwords for {record.name}; try again in "
                    + _seconds(self.changes.wait(key)),
                )
        except ChatError as error:
            return defer.fail(error)

        def made(encoded: str) -> defer.Deferred[AccountRecord]:
            # The last new password wins, but only over the same account: one
            # dropped (and perhaps made again) meanwhile keeps what it has.
            asked = self.store.fetch_account(key)
            return asked.addCallback(replace, encoded)

        def replace(
            now: AccountRecord | None, encoded: str
        ) -> defer.Deferred[AccountRecord]:
            if now is None or now.created != record.created:
                raise ChatError(
                    ErrorCode.NOT_IDENTIFIED, "your account was dropped meanwhile"
                )
            new = AccountRecord(record.name, encoded, record.created)
            return self.store.replace_account(key, now, new).addCallback(kept, new)

        def kept(replaced: bool, new: AccountRecord) -> AccountRecord:
            if not replaced:
                raise ChatError(
                    ErrorCode.NOT_IDENTIFIED,
                    "your account was dropped or changed meanwhile",
                )
            self.log.info("account {account} has a new password", account=new.name)
            return new

        return self.hasher.hash(password, claim).addCallback(made)

    def unregister(
        self, user: User, password: str, host: str
    ) -> defer.Deferred[AccountRecord]:
        """Drop the account user is identified to, after checking its password."""
        try:
            key, record = self._own_account(user)
        except ChatError as error:
            return defer.fail(error)

        def drop(found: AccountRecord) -> defer.Deferred[AccountRecord]:
            return self._drop(key, found, "its owner")

        return self.identify(None, record.name, password, host).addCallback(drop)

    def _drop(
        self, key: str, found: AccountRecord, by: str
    ) -> defer.Deferred[AccountRecord]:
        """Drop account key as found: its rooms, its conversations, its users."""

        def dropped(done: bool) -> AccountRecord:
            if not done:  # dropped or changed meanwhile
                return found
            self.chat.forget_account(found.name)
            self._forget_private(key)
            self.store.save_always_on(key, None)  # always-on ends with the account
            for other in list(self.chat.users.values()):
                if other.account and fold(other.account) == key:
                    self.chat.set_account(other, "")
            self.log.info(
                "account {account} dropped by {by}", account=found.name, by=by
            )
            return found

        return self.store.replace_account(key, found, None).addCallback(dropped)

    # -- an operator's changes to anyone's account ------------------------------------
    # by: the server operator asking through a door; None: chatd-admin, run by
    # whoever may write the stopped daemon's database.

    def _named(self, name: str) -> tuple[str, defer.Deferred[AccountRecord | None]]:
        key = fold(name)
        return key, self.store.fetch_account(key)

    def _check_operator(self, by: User | None) -> None:
        if by is not None and not self.chat.is_server_operator(by):
            raise ChatError(
                ErrorCode.NOT_OPERATOR,
                "you are not a server operator; only they change others' accounts",
            )

    def reset_password(
        self, name: str, password: str, by: User | None = None
    ) -> defer.Deferred[AccountRecord]:
        """Give account name a new password without its old one (an operator's).

        The password is checked as any new one (check_password) and hashed as
        every other; the account keeps its name and creation time, and whoever
        is identified to it stays so.
        """
        try:
            self._check_operator(by)
            self.check_password(password)
        except ChatError as error:
            return defer.fail(error)
        key, asked = self._named(name)
        claim = Claim(_account(key), ((_account(key), PER_ACCOUNT),))

        def found(record: AccountRecord | None) -> defer.Deferred[AccountRecord]:
            record = _existing(name, record)
            hashed = self.hasher.hash(password, claim)
            return hashed.addCallback(replace, record)

        def replace(
            encoded: str, record: AccountRecord
        ) -> defer.Deferred[AccountRecord]:
            new = AccountRecord(record.name, encoded, record.created)
            return self.store.replace_account(key, record, new).addCallback(kept, new)

        def kept(replaced: bool, new: AccountRecord) -> AccountRecord:
            if not replaced:
                raise ChatError(
                    ErrorCode.NO_SUCH_NICK,
                    f"the account {name} was dropped or changed meanwhile",
                )
            self.log.info(
                "account {account} was given a new password by {by}",
                account=new.name,
                by=_who(by),
            )
            return new

        return asked.addCallback(found)

    def drop_account(
        self, name: str, by: User | None = None
    ) -> defer.Deferred[AccountRecord]:
        """Drop account name without its password (an operator's), as unregister
        drops one: out of every registered room, its conversations forgotten,
        its users identified no more."""
        try:
            self._check_operator(by)
        except ChatError as error:
            return defer.fail(error)
        key, asked = self._named(name)
        return asked.addCallback(
            lambda record: self._drop(key, _existing(name, record), _who(by))
        )

    def _forget_private(self, key: str) -> None:
        """Delete account key's private conversations (docs/protocol.md, Private
        history) and read markers: they must not pass to whoever registers the
        name next."""
        self.store.forget_markers(key)
        history = self.chat.history
        if history is not None:
            history.forget_private(key)

    # -- reserved nicknames ------------------------------------------------------------

    def _reserved(self, user: User) -> bool:
        """Whether user holds a registered nickname it is not identified to."""
        return self.is_registered(user.nick) and not (
            user.account and fold(user.account) == user.key
        )

    def nick_taken(self, user: User) -> None:
        """user took a nickname: if it is someone's account, the clock runs.

        The grace is the connection's for that name: it starts the first time
        the connection takes the name, and taking it again (in another case,
        or after a rename away) goes on with what is left of it.
        """
        self._end_reservation(user)
        if not self._reserved(user):
            return
        grace = self.settings.grace
        now = self.clock.seconds()
        deadline = self._deadline(user, now)
        left = max(0.0, deadline - now)
        self._reservations[user] = self.clock.callLater(left, self._expired, user)
        if left <= 0:
            return  # its grace was used up: renamed at once, and told why
        # Each door's own words (IRC has no /identify, the line door no
        # NickServ): the door declares them, the client interface carries them.
        how = user.client.identify_hint
        within = f"{grace:g} seconds" if left >= grace else f"{_seconds(left)} (left)"
        user.deliver(
            Notice(
                user.nick,
                f"{user.nick} is a registered nickname. If it is yours, identify "
                f"within {within} ({how}); otherwise you will be renamed.",
                NICKSERV,
            )
        )

    def _deadline(self, user: User, now: float) -> float:
        """When user's grace for the name it holds ends (set the first time)."""
        graces = self._graces.get(user)
        if graces is None:
            graces = self._graces[user] = {}
            if len(self._graces) > self._sweep_at:
                self._sweep_graces()
        deadline = graces.get(user.key)
        if deadline is None:
            # Past MAX_GRACES names, a connection gets no grace for another:
            # forgetting one would give it back.
            deadline = now + self.settings.grace if len(graces) < MAX_GRACES else now
            graces[user.key] = deadline
        return deadline

    def _sweep_graces(self) -> None:
        """Forget the graces of connections that are gone."""
        users = self.chat.users
        for user in [u for u in self._graces if users.get(u.key) is not u]:
            del self._graces[user]
        self._sweep_at = max(64, 2 * len(self._graces))

    def _expired(self, user: User, waited: bool = False) -> None:
        """user's grace for its nickname is over: renamed, unless identified.

        While a check of a password user sent is on its way, the rename
        waits for its answer (waited: this is that answer).
        """
        self._reservations.pop(user, None)
        if self.chat.users.get(user.key) is not user:
            self._graces.pop(user, None)
            return  # gone
        if not self._reserved(user):
            return  # identified, or renamed to something else meanwhile
        if self._checking.get(user) and not waited:
            self._overdue.add(user)
            return
        old = user.nick
        guest = self.guest_name()
        self.chat.rename(user, guest)
        self.log.info("{old} did not identify; renamed {new}", old=old, new=guest)
        user.deliver(
            Notice(
                user.nick,
                f"You did not identify for {old} within {self.settings.grace:g} "
                f"seconds, so you are now {guest}. Choose another nickname with "
                "/nick.",
                NICKSERV,
            )
        )

    def guest_name(self) -> str:
        """A free guest nickname: Guest and five digits."""
        users = self.chat.users
        return guest_name(lambda name: fold(name) in users or self.is_registered(name))
