"""A fourth door, for the tests: a bot API of two words (docs/architecture.md).

It is what a new door needs and no more: its connection (connection.py) and
its declaration (entry.py). Registering "bot_door.entry:BOT" in chatd.doors.DOORS
is the one line that opens it (tests/test_doors.py does it for a test).
"""
