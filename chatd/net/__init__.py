"""The connection layer every door shares: what is not translation.

connection.py   Connection: framing, the flood gate, output, held answers, closing
output.py       output batching: one write per recipient per round, render once
limits.py       the flood gate (a token bucket, held input) and the send queue
bulk.py         bulk answers charged by their size and made in slices
stats.py        what is counted (plain ints), read by chatd.ops.metrics
http_limits.py  the HTTP side of the web and metrics listeners: no bodies,
                a header timeout, descriptors counted in the chat's caps
"""
