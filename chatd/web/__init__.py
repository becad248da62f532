"""The web door: a page for browsers and its WebSocket, in the same rooms.

frames.py  the few WebSocket frames the server writes itself, and the guard
           that bounds a message still arriving (pure functions, no Twisted)
door.py    WebConnection: the line protocol over a WebSocket, one line per
           text message both ways, on the shared Connection machinery
site.py    the twisted.web site: the page, its static files, /ws (Origin
           checked), /healthz, and the headers browsers need
static/    the page: plain HTML, CSS and JavaScript, no build step
"""
