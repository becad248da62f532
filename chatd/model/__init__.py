"""The model: who is in the chat, what they may do and see, and what happened.

Users, rooms and their rules, accounts, and the events every door renders;
every rule of who may read, see, speak, join or run what is decided here,
once, and every door only asks and translates. Nothing here knows sockets,
bytes or how a door spells a line, and nothing imports a door, the
connection layer, a store's implementation, the cluster or operations.

chat.py          Chat: users, rooms, talk and the rules (takes in the two below)
moderation.py    rooms people run: topics, operators, bans, modes, kicks, invitations
permissions.py   who may see a room and read its history
state.py         User, Room, RoomRules, Ban: the state as plain data
room_rules.py    mode letters, ban masks and their bounds, registered rooms' records
events.py        the immutable events (Message, Joined, ...) and IChatClient
names.py         folding and validating nicknames and rooms, cleaning text
errors.py        the protocol's error codes and ChatError
globs.py         glob masks matched in linear time
accounts.py      accounts: registering, identifying, the nickname grace
password_limits.py, password_queue.py  who may spend password work, and its turn
private_history.py  who reads which private conversation
read_markers.py  how far an account has read each room and conversation (Chat's)
catch_up.py      checking a /read, and what a device is sent when it identifies
search.py        where a user may search, with what words, how often
whowas.py        who recently left, for IRC's WHOWAS
rates.py         TokenBucket: a rate with a burst, on an injected clock
times.py         message times as every door spells them: UTC, to the millisecond
"""
