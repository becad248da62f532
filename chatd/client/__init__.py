"""The desktop client's logic, without a window (chatd.tk_client is the window).

client.py         the client's line protocol, connection, reconnects, typed commands
conversations.py  the client's state: conversations, members, scrollback
conversation.py   one conversation's lines
scrollback.py     paging a conversation's history back, and catching up after a gap
"""
