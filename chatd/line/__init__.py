"""The line door: the line protocol's commands and its rendering.

chatd.protocol's ChatProtocol is the door itself (HELLO, the nickname
prompt, slash commands); this package holds what it translates with:

commands.py          the slash commands: one table with arity and help
room_commands.py     the commands of rooms people run (/topic, /mode, /kick, ...)
account_commands.py  /register, /identify, /password, /unregister
session.py           Session: what a command handler may use of its connection
wire.py              events rendered as lines (once per broadcast), and parsed back
telnet.py            telnet commands in the stream: taken out, options refused
"""
