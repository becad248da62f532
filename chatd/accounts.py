"""Accounts: names that belong to someone.

A person registers their nickname with a password and identifies with it
later (on any door: /identify, IRC's SASL PLAIN or NickServ). The Accounts
service keeps the accounts (chatd.store.accounts), checks passwords, guards
registered nicknames and throttles guessing; the chat model only learns who
is identified as what (Chat.set_account).

- Passwords are hashed with Argon2id (argon2-cffi), never on the reactor's
  thread: a small pool of threads of its own does it, at most
  MAX_PENDING at once. A password is never logged, and the hash only goes
  to the database.
- Argon2's verify compares in constant time. An attempt on a name that has
  no account is verified against a hash of the same cost, and refused with
  the same words, so neither the answer nor its time says whether the
  account exists (the nickname's reservation notice does: that is public).
- Wrong passwords are throttled per address and per account: a few at
  once, then one every so often (Throttle); past that, refused at once,
  without hashing. A right password costs nothing.
- A registered nickname is reserved: whoever takes it without being
  identified to its account is told so, and renamed to a guest name after
  the grace period (60 seconds) unless they identify.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.chat import Chat, Notice, User
from chatd.config import AccountSettings
from chatd.errors import ChatError, ErrorCode
from chatd.limits import TokenBucket
from chatd.names import fold, normalize_name
from chatd.room_rules import RoomRecord
from chatd.store.accounts import AccountRecord, AccountStore

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], "defer.Deferred[T]"]

NICKSERV = "NickServ"
MAX_PENDING = 32  # password hashes waiting or running at once; more: "busy"
MAX_BUCKETS = 4096  # throttle entries kept per kind; the least recent go first
GUEST_PREFIX = "Guest"
LOG_EVERY = 60.0  # seconds between two log lines about one address's guesses
DEFAULT_SETTINGS = AccountSettings()


def run_inline(work: Callable[[], T]) -> defer.Deferred[T]:
    """A Runner that does the work at once (tests, with cheap Argon2 settings)."""
    return defer.maybeDeferred(work)


class Hasher:
    """Argon2id hashing and verifying, run off the reactor by run."""

    def __init__(self, settings: AccountSettings, run: Runner[object]) -> None:
        self.argon2 = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_cost,
            parallelism=settings.parallelism,
        )
        self.run = run
        self.pending = 0
        # What an attempt on a name without an account is checked against:
        # the same cost as a real one, and never a match. Made on first use.
        self._decoy: str | None = None

    def _counted(self, work: Callable[[], T]) -> defer.Deferred[T]:
        self.pending += 1

        def done(result: T) -> T:
            self.pending -= 1
            return result

        answer: defer.Deferred[T] = self.run(work)  # type: ignore[assignment]
        return answer.addBoth(done)

    def hash(self, password: str) -> defer.Deferred[str]:
        """The encoded Argon2id hash of password (salt and parameters in it)."""
        return self._counted(lambda: self.argon2.hash(password))

    def verify(self, encoded: str | None, password: str) -> defer.Deferred[bool]:
        """Whether password matches encoded (None: against the decoy, so False)."""
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

        return self._counted(check)

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

    def give_back(self, key: str) -> None:
        """Return the try taken for key (it was not a wrong password)."""
        bucket = self.buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(bucket.capacity, bucket.tokens + 1)

    def wait(self, key: str) -> float:
        """Seconds until key has a try again."""
        bucket = self.buckets.get(key)
        return 0.0 if bucket is None else bucket.wait()


def _seconds(wait: float) -> str:
    whole = max(1, int(wait + 0.999))
    return f"{whole} second{'s' if whole != 1 else ''}"


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
        self.by_address = Throttle(settings.address_burst, settings.address_rate, clock)
        self.by_account = Throttle(settings.account_burst, settings.account_rate, clock)
        self.registrations = Throttle(
            settings.register_burst, settings.register_rate, clock
        )
        self._reservations: dict[User, IDelayedCall] = {}
        self._throttle_noted: OrderedDict[str, float] = OrderedDict()
        chat.records = store.rooms  # registered rooms: the store's, kept in place
        chat.record_changed = self._room_changed
        chat.nick_watchers.append(self.nick_taken)

    # -- looking up -----------------------------------------------------------------

    def account(self, name: str) -> AccountRecord | None:
        """The account called name (ignoring case), if there is one."""
        return self.store.accounts.get(fold(name))

    def is_registered(self, nick: str) -> bool:
        """Whether nick is an account's name (and so reserved)."""
        return fold(nick) in self.store.accounts

    def _room_changed(self, record: RoomRecord | None, key: str) -> None:
        self.store.save_room(key, record)

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

    def _busy(self) -> None:
        if self.hasher.pending >= MAX_PENDING:
            self.log.warn("password checks are all busy; one was refused")
            raise ChatError(
                ErrorCode.THROTTLED,
                "the server is busy checking passwords; try again in a moment",
            )

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
            self._busy()
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
            self.log.info("account {account} registered", account=record.name)
            if self.chat.users.get(user.key) is user:
                self.identified(user, record)
            return record

        return self.hasher.hash(password).addCallback(made)

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
        try:
            self._busy()
            if not self.by_address.take(host):
                self._note_throttled(host)
                raise ChatError(
                    ErrorCode.THROTTLED,
                    "too many wrong passwords from your address; try again in "
                    + _seconds(self.by_address.wait(host)),
                )
            if not self.by_account.take(key):
                self.by_address.give_back(host)
                raise ChatError(
                    ErrorCode.THROTTLED,
                    f"too many wrong passwords for {name}; try again in "
                    + _seconds(self.by_account.wait(key)),
                )
        except ChatError as error:
            return defer.fail(error)
        encoded: str | None = None

        def verify(record: AccountRecord | None) -> defer.Deferred[bool]:
            nonlocal encoded
            encoded = record.hash if record is not None else None
            return self.hasher.verify(encoded, password)

        def again(right: bool) -> defer.Deferred[bool]:
            # The record may change while the hash runs (on a cluster, on
            # another node): asked again, so checked sees it as it is now.
            return self.store.fetch_account(key).addCallback(lambda _: right)

        def checked(right: bool) -> AccountRecord:
            found = self.store.accounts.get(key)
            if not right or found is None or found.hash != encoded:
                self.log.info("a wrong password for an account from {host}", host=host)
                raise ChatError(
                    ErrorCode.AUTH_FAILED,
                    "wrong password, or no account of that name",
                )
            self.by_address.give_back(host)
            self.by_account.give_back(key)
            if user is not None and self.chat.users.get(user.key) is user:
                self.identified(user, found)
            self._rehash_if_old(key, found, password)
            return found

        asked = self.store.fetch_account(key)  # the record, not a cache of it
        return asked.addCallback(verify).addCallback(again).addCallback(checked)

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
        """user proved they own record: the chat is told, a reservation ends."""
        self.chat.set_account(user, record.name)
        self.log.info(
            "{nick} identified as {account}", nick=user.nick, account=record.name
        )
        # A cluster applies the change from its log, later, and asks
        # nick_taken then: asked now, user would seem an impostor of their
        # own account (told to identify, right after /register).
        if user.account == record.name:
            self.nick_taken(user)

    def _rehash_if_old(self, key: str, record: AccountRecord, password: str) -> None:
        """A hash made with other parameters is made again with ours."""
        if not self.hasher.needs_rehash(record.hash):
            return

        def store(encoded: str) -> defer.Deferred[bool]:
            new = AccountRecord(record.name, encoded, record.created)
            return self.store.replace_account(key, record, new)

        self.hasher.hash(password).addCallback(store).addErrback(self._failed)

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
        self, user: User, password: str, again: str | None
    ) -> defer.Deferred[AccountRecord]:
        """Give the account user is identified to a new password."""
        try:
            key, record = self._own_account(user)
            self.check_password(password, again)
            self._busy()
        except ChatError as error:
            return defer.fail(error)

        def made(encoded: str) -> defer.Deferred[AccountRecord]:
            new = AccountRecord(record.name, encoded, record.created)
            return self.store.replace_account(key, record, new).addCallback(kept, new)

        def kept(replaced: bool, new: AccountRecord) -> AccountRecord:
            if not replaced:
                raise ChatError(
                    ErrorCode.NOT_IDENTIFIED,
                    "your account was dropped or changed meanwhile",
                )
            self.log.info("account {account} has a new password", account=new.name)
            return new

        return self.hasher.hash(password).addCallback(made)

    def unregister(
        self, user: User, password: str, host: str
    ) -> defer.Deferred[AccountRecord]:
        """Drop the account user is identified to, after checking its password."""
        try:
            key, record = self._own_account(user)
        except ChatError as error:
            return defer.fail(error)

        def drop(found: AccountRecord) -> defer.Deferred[AccountRecord]:
            dropping = self.store.replace_account(key, found, None)
            return dropping.addCallback(dropped, found)

        def dropped(done: bool, found: AccountRecord) -> AccountRecord:
            if not done:  # dropped or changed meanwhile
                return found
            self.chat.forget_account(found.name)
            self._forget_private(key)
            for other in list(self.chat.users.values()):
                if other.account and fold(other.account) == key:
                    self.chat.set_account(other, "")
            self.log.info("account {account} dropped", account=found.name)
            return found

        return self.identify(None, record.name, password, host).addCallback(drop)

    def _forget_private(self, key: str) -> None:
        """Delete account key's private conversations (docs/protocol.md, Private
        history): they must not pass to whoever registers the name next."""
        history = self.chat.history
        if history is not None:
            history.forget_private(key)

    # -- reserved nicknames ------------------------------------------------------------

    def nick_taken(self, user: User) -> None:
        """user took a nickname: if it is someone's account, the clock starts."""
        reserved = self.is_registered(user.nick) and not (
            user.account and fold(user.account) == user.key
        )
        call = self._reservations.pop(user, None)
        if call is not None and call.active():
            call.cancel()
        if not reserved:
            return
        grace = self.settings.grace
        self._reservations[user] = self.clock.callLater(grace, self._expired, user)
        # Each door's own way: IRC has no /identify (irssi sends IDENTIFY raw,
        # answered 421), and the line door has no NickServ to /msg.
        if getattr(user.client, "door", None) == "irc":
            how = "/msg NickServ IDENTIFY <password>"
        else:
            how = "/identify <password>"
        user.deliver(
            Notice(
                user.nick,
                f"{user.nick} is a registered nickname. If it is yours, identify "
                f"within {grace:g} seconds ({how}); otherwise you will be renamed.",
                NICKSERV,
            )
        )

    def _expired(self, user: User) -> None:
        self._reservations.pop(user, None)
        if self.chat.users.get(user.key) is not user:
            return  # gone, or renamed to something else meanwhile
        if not self.is_registered(user.nick) or (
            user.account and fold(user.account) == user.key
        ):
            return
        old = user.nick
        guest = self._guest_name()
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

    def _guest_name(self) -> str:
        """A free guest nickname: Guest and five digits."""
        for _ in range(1000):
            name = f"{GUEST_PREFIX}{secrets.randbelow(100_000):05d}"
            if fold(name) not in self.chat.users and not self.is_registered(name):
                return name
        raise RuntimeError("no free guest nickname")  # 100,000 names all taken
