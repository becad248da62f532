"""The IRC door: IRC clients in the same rooms as the line protocol's users.

Pure pieces (parsing, rendering, numerics, capabilities, the command table)
live in their own modules and are tested without a transport; the protocol
class that ties them to a connection is the only one that touches bytes.
"""
