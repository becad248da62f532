"""NickServ IDENTIFY after registration, to an account whose user is here: attach.

docs/irc.md, "NickServ IDENTIFY from a second device": a client registered
as alice_ that identifies to the account alice, while alice is connected and
identified to it, becomes one more connection of alice (as SASL at
registration does, chatd.irc.registration.attach):

1. to this client only: 900, a PART of each channel its old user was in, and
   NICK alice_ -> alice;
2. its old user leaves the chat (the others see it QUIT, "Logged in as
   alice"), unless it has other connections of its own;
3. the welcome's JOIN burst of alice's channels (topic, NAMES), to this
   client only; from then on it gets what alice gets.

Nobody sees alice join or change. Ergo refuses this instead (it logs the
client out and asks it to log in with SASL); chatd attaches, as the line
door does at the nickname prompt. Which user may be attached to is the
model's rule (chatd.model.logins.attachable).
"""

from __future__ import annotations

from typing import cast

from chatd.irc.message import irc_line
from chatd.irc.registration import join_burst
from chatd.irc.render import mask
from chatd.irc.session import IrcSession
from chatd.model.chat import IChatClient, Parted, User
from chatd.model.logins import attachable
from chatd.model.names import fold


def holder_to_attach(session: IrcSession, user: User, account: str) -> User | None:
    """The user identified to account that user's IDENTIFY would attach to.

    None when account's nickname is free, is user's own, or is held by
    someone not identified to it: IDENTIFY then identifies user as ever.
    """
    key = fold(account)
    holder = session.chat.users.get(key)
    if holder is None or holder is user or not holder.account:
        return None
    return holder if fold(holder.account) == key else None


def attach_identified(
    session: IrcSession, old: User, account: str, said: bytes
) -> User | None:
    """account's password was right: make this connection one of its user's.

    Returns the user attached to, or None if there is none to attach to any
    more (it left while the password was checked). Raises ChatError
    (too-many-devices, counted on every node of a cluster)
    from attachable, with nothing changed.
    """
    chat = session.chat
    holder = attachable(chat.users, account, session.server.config.max_devices)
    if holder is None or holder is old:
        return None

    session.send(said)  # 900, to the old nickname
    reason = f"Logged in as {holder.nick}"
    # Said while the old user is still registered: its mask is spelled.
    for room in list(old.rooms.values()):
        session.deliver(Parted(room.name, old.nick, reason))
    session.send(irc_line("NICK", text=holder.nick, source=mask(chat, old.nick)))
    session.switch_user(holder, reason)
    join_burst(session, holder)
    # Attached after its burst: what the user is sent from now on follows it.
    chat.attach(holder, cast(IChatClient, session))
    return holder
