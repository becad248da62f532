"""The line door: the line protocol's commands and its rendering.

chatd.protocol's LineConnection is the door itself on TCP; this package holds
what it translates with, and what the web door (chatd.web.door) speaks too:

door.py              LineDoor: the line protocol's words (HELLO, the nickname
                     prompt, slash commands, ERR/INFO/BYE) for either door
commands.py          the slash commands: one table with arity and help
room_commands.py     the commands of rooms people run (/topic, /mode, /kick, ...)
account_commands.py  /register, /identify, /password, /unregister
search.py            /search: FOUND lines, newest first, then ENDSEARCH
session.py           Session: what a command handler may use of its connection
wire.py              events rendered as lines (once per broadcast), and parsed back
telnet.py            telnet commands in the stream: taken out, options refused
kinds.py             the commands' kinds (read, talk, change) for the door contract
"""
