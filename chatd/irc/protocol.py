"""IrcConnection: one IRC client's connection, a second door to the same chat.

It only translates: lines in to chatd.irc.commands, chat events out through
chatd.irc.render. Framing, the flood gate, the send queue, output batching,
timeouts, caps and closing are the shared Connection's (chatd.net.connection).
What IRC adds of its own is the server's PING of a silent client, and
labeled responses (IRCv3 labeled-response): a labeled command's replies,
its answers that come later included, diverted and framed under its label
(chatd.irc.labels).
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from chatd.irc import numerics as n
from chatd.irc.caps import CapState
from chatd.irc.commands import dispatch
from chatd.irc.labels import Labeling, labeled
from chatd.irc.message import irc_line
from chatd.irc.registration import is_registration_line
from chatd.irc.render import PERSONAL_CAPS, mask
from chatd.irc.server import IrcServer
from chatd.irc.session import Registration, numeric_for, send_error, server_line
from chatd.model.chat import Event, User
from chatd.model.client_tags import MAX_CLIENT_TAG_BYTES
from chatd.model.errors import ChatError, ErrorCode
from chatd.model.server_bans import ServerBanned
from chatd.net.connection import Connection, ConnectionHub, Phase

_CLOSING = Phase.CLOSING
# The journal of each tag variant (render.TIME | render.MSGID), by variant.
CLIENT_TAG_SECTION = MAX_CLIENT_TAG_BYTES + 2  # with the '@' and the space
JOURNALS = ("irc", "irc+tags", "irc+msgid", "irc+tags+msgid")

# One IrcServer (renderer, ISUPPORT, creation time) per hub, made on first use.
_SERVERS: WeakKeyDictionary[ConnectionHub, IrcServer] = WeakKeyDictionary()


def irc_server(hub: ConnectionHub) -> IrcServer:
    """Return the IrcServer every IRC connection of hub shares."""
    server = _SERVERS.get(hub)
    if server is None:
        server = _SERVERS[hub] = IrcServer(hub.chat, hub.config, now=hub.clock.seconds)
    return server


class IrcConnection(Connection):
    """The IRC client protocol (Modern IRC, RFC 2812, IRCv3) for one connection."""

    door = "irc"
    identify_hint = "/msg NickServ IDENTIFY <password>"  # IRC has no /identify
    # IRCv3 message-tags: a client's tag section, '@' and space included, may
    # hold 4096 bytes beyond the line's own limit (handle_line checks both).
    tag_room = CLIENT_TAG_SECTION
    # Slots, as Connection's; the first two are read for each member of every
    # broadcast (render), and sit together, next to Connection's.
    __slots__ = (
        "renderer",
        "tags",
        "personal",
        "server",
        "caps",
        "registration",
        "_heard",
        "_pinged",
        "_ping_call",
        "_labeling",
        "_caps_seen",
    )

    def __init__(self, hub: ConnectionHub) -> None:
        super().__init__(hub)
        self.server = irc_server(hub)
        self.renderer = self.server.renderer  # one per server, shared (render)
        self.caps = CapState(offered=self.server.offered)
        # The tag variant the caps on ask for (render.TIME | render.MSGID): what
        # render asks and journal_key follows, kept here (see handle_text) so
        # that a broadcast does not read every member's caps.
        self.tags = 0
        self.personal = False  # extended-join or account-tag is on (see render)
        self.registration = Registration()
        self._heard = True  # a line came since the last ping check
        self._pinged = False  # a PING is out and unanswered
        self._ping_call: IDelayedCall | None = None
        self._batches = 0  # batch references handed out on this connection
        self._labeling: Labeling | None = None  # a labeled command being run
        self._render = self.render_plain  # no tags, no personal caps yet
        self._caps_seen = -1  # the caps' changes followed so far (_caps_changed)

    # -- the session interface (chatd.irc.commands.IrcSession) -------------------

    @property
    def nick(self) -> str:
        """The nickname numerics address ("*" before one is chosen)."""
        if self.user is not None:
            return self.user.nick
        return self.registration.nick or "*"

    def register_user(self, nick: str, username: str, realname: str) -> User:
        """Register in the chat; unlike the line door, join no room."""
        user = self.chat.register(
            nick,
            self,
            username=username,
            realname=realname,
            host=self.host,
            account=self.registration.account,  # proved by SASL, if it was
        )
        self.registered(user)
        self._ping_call = self.hub.clock.callLater(
            self.server.ping_interval, self._ping_check
        )
        return user

    def attach_user(self, user: User) -> None:
        """Become one more connection of user (SASL to its account: registration)."""
        self.registered(user)
        self._ping_call = self.hub.clock.callLater(
            self.server.ping_interval, self._ping_check
        )

    def switch_user(self, user: User, reason: str) -> None:
        """Leave this connection's user and become one more connection of user.

        NickServ IDENTIFY to a connected account (chatd.irc.reattach): the
        old user quits (QUIT to the others, with reason) unless it has other
        connections; the caller attaches this one to user (Chat.attach).
        """
        self.leave(reason, logged="attached to another user")
        self.user = user

    def quit_chat(self, reason: str) -> None:
        """QUIT: the others hear the reason, the client gets ERROR, then close.

        A registered client first gets its own QUIT back, as Ergo sends it:
        with several connections it is how this one learns that it alone
        went (the others see nothing; irctest's bouncer testQuit).
        """
        user = self.user
        if user is not None:
            self.send(irc_line("QUIT", text=reason, source=mask(self.chat, user.nick)))
        self.leave(reason, logged="QUIT")
        self.close_after_answers(reason)  # what it asked before QUIT is answered

    def batch_id(self) -> str:
        """A batch reference unique on this connection (IRCv3 batch)."""
        self._batches += 1
        return f"h{self._batches}"

    # -- labeled-response (chatd.irc.labels) ---------------------------------------

    def begin_label(self, label: str) -> None:
        """A labeled command starts: what this client is sent is its response."""
        labeling = Labeling(label, before=None)
        labeling.before = self.divert(labeling.replies)
        self._labeling = labeling

    def end_label(self) -> None:
        """The labeled command is done: send its response, framed under the label.

        The lines sent meanwhile that are not replies go first, unlabeled.
        If the command started answers that come later, the whole response
        waits for them (Connection.send_later), and so does what follows.
        """
        labeling, self._labeling = self._labeling, None
        if labeling is None or self.phase is _CLOSING:
            return
        self.divert(labeling.before)
        for data in labeling.apart:
            self.send(data)
        label, source, reference = labeling.label, self.server.name, self.batch_id
        if not labeling.later:
            self.send(labeled(label, b"".join(labeling.replies), source, reference))
            return
        replies = labeling.replies
        cuts = [at for at, _, _ in labeling.later]
        pieces = [
            b"".join(replies[start:end])
            for start, end in zip([0, *cuts], [*cuts, len(replies)], strict=True)
        ]

        def framed(answers: list[bytes]) -> bytes:
            parts = [pieces[0]]
            for answer, piece in zip(answers, pieces[1:], strict=True):
                parts += [answer, piece]
            return labeled(label, b"".join(parts), source, reference)

        answers = [
            answer.addErrback(self._answer_lost, fallback)
            for _, answer, fallback in labeling.later
        ]
        fallback = framed([fallback for _, _, fallback in labeling.later])
        super().send_later(gatherResults(answers).addCallback(framed), fallback)

    def _answer_lost(self, failure: Failure, fallback: bytes) -> bytes:
        self.log.failure("an answer for {peer} failed", failure, peer=self.peer)
        return fallback

    def send_later(self, answer: Deferred[bytes], fallback: bytes) -> None:
        """Send answer's bytes when they come (see Connection.send_later).

        Within a labeled command the answer is part of the response, which
        waits for it.
        """
        labeling = self._labeling
        if labeling is None:
            super().send_later(answer, fallback)
            return
        labeling.later.append((len(labeling.replies), answer, fallback))

    def unlabeled(self, run: Callable[[], object]) -> bytes:
        """Run run; what it sends this client is no reply (a message to oneself).

        It goes out unlabeled, before the response of a labeled command;
        the bytes are returned.
        """
        mine: list[bytes] = []
        before = self.divert(mine)
        try:
            run()
        finally:
            if self.phase is not _CLOSING:
                self.divert(before)
        data = b"".join(mine)
        if not data:
            return data
        if self._labeling is not None:
            self._labeling.apart.append(data)
        else:
            self.send(data)
        return data

    def close(self, reason: str, leave: bool = True) -> None:
        """Say goodbye and close; a labeled command's replies so far go first."""
        labeling, self._labeling = self._labeling, None
        if labeling is not None and self.phase is not _CLOSING:
            self.divert(labeling.before)
            for data in [*labeling.apart, *labeling.replies]:
                self.send(data)
        super().close(reason, leave)

    def pong_received(self) -> None:
        """A PONG came: the client is alive (any line counts, see handle_text)."""
        self._pinged = False

    def unregistered_count(self) -> int:
        """Connections on any door that have not registered yet.

        Counted, not taken from the number of users: one user may have
        several connections (chatd.model.devices), and a cluster's users
        include other nodes'.
        """
        connections = getattr(self.hub, "connections", ())
        return sum(1 for connection in connections if connection.user is None)

    # -- the door's words ----------------------------------------------------------

    def greet(self) -> None:
        """IRC clients speak first: nothing is said until they register."""

    def is_registration_line(self, raw: bytes) -> bool:
        """CAP, NICK, USER, PASS and AUTHENTICATE, before registering."""
        return is_registration_line(raw)

    def handle_line(self, raw: bytes) -> None:
        """Refuse a line whose tags or rest are over their limits (417), else run it.

        The framing lets a line through up to --max-line plus tag_room; the
        two parts' limits are checked here, only for a line that long.
        """
        max_line = self.config.max_line
        if len(raw) > max_line or len(raw) > CLIENT_TAG_SECTION:
            section = raw.find(b" ") + 1 if raw.startswith(b"@") else 0
            if section > CLIENT_TAG_SECTION or len(raw) - section > max_line:
                self.hub.stats.limit_hit(self.door, "too-long")
                self.reply_error(
                    ChatError(
                        ErrorCode.TOO_LONG,
                        f"lines are limited to {max_line} bytes, and their tags "
                        f"to {CLIENT_TAG_SECTION}; that one was dropped",
                    )
                )
                return
        super().handle_line(raw)

    def handle_text(self, text: str) -> None:
        """Parse one IRC line and run its command."""
        self._heard = True
        renderer = self.renderer
        renderer.typing = self  # this line's words are this connection's
        try:
            dispatch(self, text)
        finally:
            renderer.typing = None
            if self.caps.changes != self._caps_seen:  # CAP LS or REQ changed them
                self._caps_changed()

    def _caps_changed(self) -> None:
        """Follow the caps on: the tag variant, personal caps, journal, renderer."""
        self._caps_seen = self.caps.changes
        self.tags = self.caps.variant
        self.personal = not PERSONAL_CAPS.isdisjoint(self.caps.enabled)
        self.journal_key = JOURNALS[self.tags]  # one journal per tag variant
        if self.phase is not _CLOSING:  # (connectionLost drops the renderer)
            # Most clients ask for no tags and no personal caps: theirs is
            # the shorter renderer (some 300 instructions less a member).
            plain = not (self.tags or self.personal)
            self._render = self.render_plain if plain else self.render

    def reply_error(self, error: ChatError) -> None:
        """A refusal from below the door: a numeric, or FAIL for bad UTF-8."""
        if error.code is ErrorCode.BAD_ENCODING:
            # IRCv3 UTF8ONLY: FAIL <command> INVALID_UTF8 (the command is unread).
            server_line(
                self,
                "FAIL",
                "*",
                "INVALID_UTF8",
                text="Message rejected, your IRC software MUST use UTF-8",
            )
            return
        send_error(self, numeric_for(error, "*"))

    def report_failure(self) -> None:
        """Our bug: say so in a NOTICE; the connection carries on."""
        server_line(
            self, "NOTICE", self.nick, text="Sorry, that command failed in the server."
        )

    def goodbye(self, reason: str) -> bytes:
        """ERROR :Closing link: host (reason), as IRC servers say it."""
        return irc_line("ERROR", text=f"Closing link: {self.host} ({reason})")

    def flood_notice(self) -> bytes:
        """Lines now wait; IRC servers say nothing, chatd says it once."""
        return irc_line(
            "NOTICE",
            self.nick,
            text=f"You are sending too fast; your lines wait and are handled at "
            f"{self.config.flood_rate:g} per second",
            source=self.server.name,
        )

    @staticmethod
    def refusal(reason: str) -> bytes:
        """What a connection over --max-clients or --max-per-ip is told."""
        return irc_line("ERROR", text=f"Closing link: ({reason})")

    @staticmethod
    def ban_refusal(banned: ServerBanned, server: str) -> bytes:
        """465 ERR_YOUREBANNEDCREEP, then ERROR: an address a server ban holds for."""
        return _banned_numeric(banned, server, "*") + irc_line(
            "ERROR", text=f"Closing link: ({banned.goodbye})"
        )

    def refuse_banned(self, banned: ServerBanned) -> None:
        """465 with the reason, then ERROR :Closing link: host (K-lined: reason)."""
        self.send(_banned_numeric(banned, self.server.name, self.nick))
        self.close(banned.goodbye)

    # -- events ------------------------------------------------------------------

    def render(self, event: Event) -> bytes:
        """What this client is sent for event (b"": nothing), shared per variant.

        Connection.deliver writes it. This runs once per member of every
        broadcast, so the common case is spelled out here: a member other
        than the speaker, of an event everyone is sent as it is, gets the
        bytes of its variant; the rest (and extended-join and account-tag
        clients, for the events those change) is IrcRenderer.lines_for.
        """
        renderer = self.renderer
        if (
            event is renderer.common  # everyone is sent it as it is, and
            and self is not renderer.speaker_client  # this is not the speaker
            and not (self.personal and renderer.personal)
        ):
            data = renderer.variants[self.tags & renderer.mask]
            if data is not None:
                return data
            return renderer.lines(self.tags)
        data = renderer.lines_for(event, self.user, self.caps.enabled, self.tags)
        if (
            self is renderer.speaker_client  # (lines_for prepared the event)
            and renderer.speaker is None  # a user on several devices typed it here
            and not self.caps.has("echo-message")
        ):
            return b""
        return data

    def render_plain(self, event: Event) -> bytes:
        """render, for a client without tags or personal caps (most clients).

        Connection.deliver calls it (the _render slot, set in handle_text):
        the common case is two identity checks and one read.
        """
        renderer = self.renderer
        if event is renderer.common:
            if self is not renderer.speaker_client:
                return renderer.plain
            if renderer.speaker is not None and "echo-message" not in self.caps.enabled:
                return b""  # the speaker's own line: IRC echoes it only with the cap
        return self.render(event)

    # -- limits in IRC's words -----------------------------------------------------

    def timeoutConnection(self) -> None:
        """Registration timeout, or idle too long."""
        if self.phase is Phase.AWAITING_NICK:
            self.log.info("{peer} timed out registering", peer=self.peer)
            self.close("Registration timeout")
            return
        seconds = self.config.idle_timeout
        self.log.info(
            "{peer} timed out: idle {seconds:g}s", peer=self.peer, seconds=seconds
        )
        self.close(f"Idle for {seconds:g} seconds")

    def recvq_reason(self) -> str:
        """More than --recvq bytes held: IRC calls it Excess Flood."""
        return "Excess Flood"

    def sendq_reason(self) -> str:
        """The client stopped reading: IRC calls it SendQ exceeded."""
        return "SendQ exceeded"

    # -- the server's PING -------------------------------------------------------

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None
        super().connectionLost(reason)

    def _ping_check(self) -> None:
        """Every interval: PING a client that was silent; drop one that stays so."""
        self._ping_call = None
        if self.phase is _CLOSING:
            return
        if self._heard:
            self._heard = self._pinged = False
        elif not self._pinged:
            self._pinged = True
            self.send(irc_line("PING", text=self.server.name))
            self.flush()
        else:
            seconds = self.server.ping_interval
            self.log.info("{peer} did not answer PING", peer=self.peer)
            self.hub.stats.limit_hit(self.door, "ping-timeout")
            self.close(f"Ping timeout: {seconds:g} seconds")
            return
        self._ping_call = self.hub.clock.callLater(
            self.server.ping_interval, self._ping_check
        )


def _banned_numeric(banned: ServerBanned, server: str, nick: str) -> bytes:
    """465 ERR_YOUREBANNEDCREEP with the ban's reason (and how long it holds)."""
    text = banned.text[:1].upper() + banned.text[1:]
    return irc_line(n.ERR_YOUREBANNEDCREEP, nick, text=text, source=server)
