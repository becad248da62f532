"""A replica as JSON: what a node joining the cluster loads instead of the whole log.

dump(chat) and load(chat, data, publisher) are each other's inverse for
everything the cluster shares: users (by uid, with their nickname, who they
are, away and account, current room, whether invisible), rooms in name order
with their members in join order and their rules (created, topic, flags,
key, limit, bans, invitations, operators, voiced), the registered rooms'
records, the history stamp and the known nodes; and (version 5) where the
connections of a user on several nodes are (Devices.places), and who is
always-on. (Every node applies the same
register_room ops from the log; a node that joins later learns the records
here, or it would let anyone register such a room again and make them its
operators.)
"""

from __future__ import annotations

from chatd.cluster.replica import ClusterChat, Publisher, RemoteClient, Wire, uid_of
from chatd.model.chat import Room, User
from chatd.model.moderation import DEFAULT_FLAGS, Ban
from chatd.model.names import LOBBY, fold
from chatd.model.server_bans import ServerBan
from chatd.model.state import NO_INVITATIONS
from chatd.store.accounts import room_from_json, room_to_json

# 2: invitations by uid, with their end; 3: "invisible", the uids of users with
# IRC's +i (a key of its own, which a node of version 2 ignores); 4: "klines",
# the server bans (a key of its own, which older nodes ignore); 5: "devices",
# each counted user's uid and [node, connections] in the log's order, and
# "always_on", uids (keys of their own, which older nodes ignore).
VERSION = 5


def dump(chat: ClusterChat, nodes: list[str]) -> dict[str, Wire]:
    """The replica's shared state as JSON-ready values."""
    users = [
        [
            uid_of(user),
            user.nick,
            user.username,
            user.realname,
            user.host,
            user.away,
            user.account,
            user.current,
        ]
        for user in chat.users.values()
    ]
    rooms = []
    for key in chat.room_keys:
        room = chat.rooms[key]
        rules = room.rules
        rooms.append(
            {
                "name": room.name,
                "members": [uid_of(member) for member in room.members.values()],
                "created": rules.created,
                "topic": [rules.topic, rules.topic_by, rules.topic_time],
                "flags": sorted(rules.flags),
                "key": rules.key,
                "limit": rules.limit,
                "bans": [[ban.mask, ban.by, ban.time] for ban in rules.bans],
                # Invitations are the invitees' (by uid), with when each ends.
                "invited": [
                    [uid_of(invitee), until]
                    for invitee, until in rules.invited.items()
                    if chat.users.get(invitee.key) is invitee
                ],
                "ops": sorted(uid_of(user) for user in rules.ops),
                "voiced": sorted(uid_of(user) for user in rules.voiced),
            }
        )
    return {
        "v": VERSION,
        "nodes": nodes,
        "stamp": chat.last_stamp,
        "most": chat.most_users,
        "users": users,
        "invisible": sorted(
            uid_of(user) for user in chat.users.values() if user.invisible
        ),
        "rooms": rooms,
        "records": [
            [key, record.founder, room_to_json(record)]
            for key, record in sorted(chat.records.items())
        ],
        "klines": [
            [ban.mask, ban.reason, ban.by, ban.time, ban.expires]
            for ban in chat.server_bans
        ],
        "devices": [
            [uid_of(user), [[node, count] for node, count in places.items()]]
            for user in chat.users.values()
            if user.devices is not None and (places := user.devices.places) is not None
        ],
        "always_on": sorted(uid_of(user) for user in chat.always_on),
    }


def load(chat: ClusterChat, data: dict[str, Wire], publisher: Publisher) -> list[str]:
    """Replace the replica's shared state with data (users all remote); return nodes."""
    # Kept in place: the dict is the account store's (chatd.model.accounts).
    chat.records.clear()
    for key, founder, text in data.get("records", []):
        chat.records[key] = room_from_json(founder, text)
    if "klines" in data:  # not before version 4
        chat.server_bans.replace(
            [
                ServerBan(mask, reason, by, time, expires)
                for mask, reason, by, time, expires in data["klines"]
            ]
        )
    users: dict[str, User] = {}
    by_uid: dict[str, User] = {}
    for uid, nick, username, realname, host, away, account, current in data["users"]:
        node = uid.split("/", 1)[0]
        user = User(
            nick,
            RemoteClient(uid, node, publisher),
            username=username,
            realname=realname,
            host=host,
            away=away,
            account=account,
        )
        user.current = current
        users[user.key] = by_uid[uid] = user
    for uid in data.get("invisible", []):  # not before version 3
        if uid in by_uid:
            by_uid[uid].invisible = True
    counted: list[tuple[User, dict[str, int]]] = [
        (by_uid[uid], {node: count for node, count in places})
        for uid, places in data.get("devices", [])  # not before version 5
        if uid in by_uid
    ]
    rooms: dict[str, Room] = {}
    secret: set[str] = set()
    for spec in data["rooms"]:
        room = Room(spec["name"])
        for uid in spec["members"]:
            member = by_uid[uid]
            room.members[member.key] = member
            member.rooms[room.key] = room
        rules = room.rules
        rules.created = spec["created"]
        rules.topic, rules.topic_by, rules.topic_time = spec["topic"]
        flags = frozenset(spec["flags"])
        rules.flags = DEFAULT_FLAGS if flags == DEFAULT_FLAGS else flags
        rules.key, rules.limit = spec["key"], spec["limit"]
        rules.bans = tuple(Ban(mask, by, time) for mask, by, time in spec["bans"])
        # Version 1 kept invitations by nickname: those are not taken over.
        invited = spec["invited"] if data["v"] != 1 else []
        rules.invited = {
            by_uid[uid]: until for uid, until in invited if uid in by_uid
        } or NO_INVITATIONS
        rules.ops = {by_uid[uid] for uid in spec["ops"]}
        rules.voiced = frozenset(by_uid[uid] for uid in spec["voiced"])
        record = chat.records.get(room.key)
        if record is not None:
            rules.record = record
        if "s" in rules.flags:
            secret.add(room.key)
        rooms[room.key] = room
    if fold(LOBBY) not in rooms:
        rooms[fold(LOBBY)] = Room(LOBBY)
    chat.users = users
    chat.by_uid = by_uid
    for user, places in counted:
        chat.devices_here(user).places = places
    chat.always_on = {by_uid[uid] for uid in data.get("always_on", []) if uid in by_uid}
    chat.rooms = rooms
    chat.room_keys = sorted(rooms)
    chat.secret_rooms = secret
    chat.last_stamp = max(chat.last_stamp, data["stamp"])
    chat.most_users = max(chat.most_users, data["most"])
    return list(data["nodes"])
