"""The connection layer every door shares: what is not translation.

connection.py   Connection: one client connection composed of the parts below, and
                the broadcast hot path (deliver, output batching, direct sends)
framing.py      LineFramer: lines split, over-long ones refused whole; decode_line
answers.py      Answers: answers that come later, the goodbye and the end of input
                that wait for them
closing.py      Closing: goodbye, grace, abort; Refusal for a connection not taken
sockets.py      keepalive and NODELAY, the peer's name for the log
phase.py        Phase: where a connection is in its life
output.py       output batching: one write per recipient per round, render once
limits.py       the flood gate (a token bucket, held input) and the send queue
bulk.py         bulk answers charged by their size and made in slices
stats.py        what is counted (plain ints), read by chatd.ops.metrics
http_limits.py  the HTTP side of the web and metrics listeners: no bodies,
                a header timeout, descriptors counted in the chat's caps
"""
