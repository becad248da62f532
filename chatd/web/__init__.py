"""The web door: a page for browsers and its WebSocket, in the same rooms.

frames.py  the few WebSocket frames the server writes itself, and the guard
           that reads arriving frame headers: a message's size and pieces
           bounded, frames that make no line paid for (no Twisted)
door.py    WebConnection: the line protocol over a WebSocket, one line per
           text message both ways, on the shared Connection machinery
origins.py which pages may use the WebSocket (this machine's, --web-origin)
site.py    the twisted.web site: the page, its static files, /ws (Origin
           checked), /healthz, and the headers browsers need; its HTTP
           connections are chatd.net.http_limits' (no bodies, counted)
entry.py   the door's declaration (chatd.doors): connection, site, commands
static/    the page: plain HTML, CSS and JavaScript, no build step
"""
