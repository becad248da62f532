"""IRCv3 capability negotiation (CAP LS/LIST/REQ/END) as a pure state machine.

Only what the door really does is offered; see SUPPORTED.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatd.irc.render import MSGID, REDACTION, TIME

# name -> value shown in CAP LS 302 ("" for none). Each one is implemented by
# the door: tags on the lines it sends, echoes, NAMES/WHO forms, AWAY relays,
# history batches, labeled responses (chatd.irc.labels).
SUPPORTED: dict[str, str] = {
    "account-notify": "",
    "account-tag": "",
    "away-notify": "",
    "batch": "",
    "cap-notify": "",
    "echo-message": "",
    "extended-join": "",
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": "PLAIN",
    "server-time": "",
    "userhost-in-names": "",
}
# Offered only by a server that keeps history (not with --no-history): reading
# it, deleting from it (chatd.irc.redaction), and soju's search (chatd.irc.search).
CHATHISTORY = "draft/chathistory"
# Read markers (chatd.irc.markers) need ids, so history too.
READ_MARKER = "draft/read-marker"
HISTORY_CAPS: dict[str, str] = {
    CHATHISTORY: "",
    REDACTION: "",
    READ_MARKER: "",
    "soju.im/search": "",
}

# A CAP LS reply is split so that each line stays well inside 512 bytes.
LS_BUDGET = 400


@dataclass(slots=True)
class CapReply:
    """One CAP reply: subcommand and its argument (the caller adds the nick)."""

    subcommand: str
    text: str
    more: bool = False  # a multi-line LS or LIST: '*' goes before the text


@dataclass(slots=True)
class CapState:
    """What one connection negotiated: the version, the caps on, whether it waits."""

    version: int = 0  # 0: never asked; 301 for plain CAP LS, 302 and up otherwise
    enabled: set[str] = field(default_factory=set)
    negotiating: bool = False  # registration waits for CAP END
    offered: dict[str, str] = field(default_factory=lambda: SUPPORTED)
    variant: int = 0  # the tags the caps on ask for (render.TIME | render.MSGID)
    changes: int = 0  # counts changes to enabled, so a reader tells it changed

    def has(self, name: str) -> bool:
        """Tell whether cap name is on."""
        return name in self.enabled

    def ls(self, version_arg: str | None, registered: bool) -> list[CapReply]:
        """Answer CAP LS [version]: every supported cap, over several lines if long."""
        version = 301
        if version_arg is not None and version_arg.isdigit():
            version = max(301, int(version_arg))
        self.version = max(self.version, version)
        if not registered:
            self.negotiating = True
        if self.version >= 302:
            # CAP LS 302 turns cap-notify on implicitly (IRCv3 cap-notify).
            self.enabled.add("cap-notify")
            self.changes += 1
        words = [
            f"{name}={value}" if value and self.version >= 302 else name
            for name, value in sorted(self.offered.items())
        ]
        return _chunks("LS", words, multiline=self.version >= 302)

    def list(self) -> list[CapReply]:
        """Answer CAP LIST: the caps that are on."""
        return _chunks("LIST", sorted(self.enabled), multiline=self.version >= 302)

    def req(self, text: str, registered: bool) -> CapReply:
        """Answer CAP REQ :caps: all of them change (ACK) or none does (NAK)."""
        if not registered:
            self.negotiating = True
        changes: list[tuple[str, bool]] = []
        for word in text.split():
            on = not word.startswith("-")
            name = word.lstrip("-")
            if name not in self.offered or (
                name == "cap-notify" and not on and self.version >= 302
            ):
                return CapReply("NAK", text)
            changes.append((name, on))
        if not changes:
            return CapReply("NAK", text)
        for name, on in changes:
            if on:
                self.enabled.add(name)
            else:
                self.enabled.discard(name)
        self.variant = (TIME if "server-time" in self.enabled else 0) | (
            MSGID if "message-tags" in self.enabled else 0
        )
        self.changes += 1
        return CapReply("ACK", text)

    def end(self) -> None:
        """CAP END: negotiation is over; registration may go on."""
        self.negotiating = False


def _chunks(subcommand: str, words: list[str], multiline: bool) -> list[CapReply]:
    """Split words over as many replies as keep each under LS_BUDGET bytes."""
    if not multiline:
        return [CapReply(subcommand, " ".join(words))]
    replies: list[CapReply] = []
    chunk: list[str] = []
    size = 0
    for word in words:
        if chunk and size + len(word) + 1 > LS_BUDGET:
            replies.append(CapReply(subcommand, " ".join(chunk), more=True))
            chunk, size = [], 0
        chunk.append(word)
        size += len(word) + 1
    replies.append(CapReply(subcommand, " ".join(chunk)))
    return replies
