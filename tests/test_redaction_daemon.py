"""Deleting a message on a real `twistd -n chatd`: SQLite, and a Redis cluster.

A room operator deletes someone's message: /history and CHATHISTORY leave it
out, and the text is gone from the database file (and its WAL) or from the
room's stream in Redis.
"""

from __future__ import annotations

from pathlib import Path

from daemon import LineClient, running_daemon
from redis_server import RedisServer
from test_cluster_daemon import client, nodes
from test_redis_history import ask

from chatd.store.redis_history import room_key

LINE = "tcp:0:interface=127.0.0.1"
IRC = "irc tcp:0:interface=127.0.0.1"
SECRET = "my-card-is-4111-1111"


def test_an_operator_deletes_from_history_chathistory_and_the_file(
    tmp_path: Path,
) -> None:
    """bob runs #ops; alice's message there goes: DELETED to /ids clients,
    REDACT to IRC clients with the cap, gone from /history, from CHATHISTORY
    and from the SQLite file's bytes."""
    database = tmp_path / "history.sqlite3"
    args = ["--listen", LINE, "--irc", "tcp:0:interface=127.0.0.1"]
    args += ["--database", str(database)]
    with running_daemon(args, tmp_path, listeners=2) as daemon:
        bob = LineClient.tcp(daemon.ports[LINE])
        bob.register("bob")
        bob.send("/ids on")
        bob.send("/join #ops")  # the first in: bob runs #ops
        bob.expect("JOIN #ops bob")
        alice = LineClient.tcp(daemon.ports[LINE])
        alice.register("alice")
        alice.send("/join #ops")
        alice.expect("JOIN #ops alice")
        carol = LineClient.tcp(daemon.ports[IRC])
        carol.send("CAP LS 302")
        carol.send("CAP REQ :batch message-tags server-time draft/chathistory")
        carol.send("CAP REQ :draft/message-redaction")
        carol.send("NICK carol")
        carol.send("USER carol 0 * :Carol")
        carol.send("CAP END")
        carol.expect(":chatd 001 carol ")
        carol.send("JOIN #ops")
        carol.expect(":chatd 366 carol #ops ")
        alice.send(SECRET)
        alice.send("and this stays")
        msg_id = bob.expect("ID #ops ").split()[2]
        bob.expect(f"MSG #ops alice {SECRET}")
        bob.expect("MSG #ops alice and this stays")
        carol.expect("@")  # the two PRIVMSGs, tagged
        carol.expect("@")
        carol.send(f"REDACT #ops {msg_id}")  # neither its author nor an operator
        assert carol.expect(":chatd FAIL ").startswith(
            f":chatd FAIL REDACT REDACT_FORBIDDEN #ops {msg_id} :"
        )
        bob.send(f"/delete #ops {msg_id} card number")
        assert bob.read_line() == f"INFO Deleted message {msg_id} of #ops."
        assert bob.read_line() == f"DELETED #ops {msg_id} bob card number"
        redact = carol.expect("@")  # server-time: tagged
        assert " :bob!" in redact, redact
        assert redact.endswith(f" REDACT #ops {msg_id} :card number"), redact
        alice.send("/history #ops")
        assert alice.expect("HISTORY ").endswith(" MSG alice and this stays")
        assert alice.expect("ENDHISTORY ") == "ENDHISTORY #ops 1"
        carol.send("CHATHISTORY LATEST #ops * 10")
        batch = [carol.read_line()]
        while " BATCH -" not in batch[-1]:
            batch.append(carol.read_line())
        said = [text for text in batch if " PRIVMSG " in text]
        assert len(said) == 1 and said[0].endswith(" :and this stays"), batch
        # The /history answer came after the deletion was written: the files
        # hold the text no more.
        for path in tmp_path.glob("history.sqlite3*"):
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_deletion_on_one_node_reaches_the_other_and_redis_forgets(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """bob on node b runs #ops; alice's message said on node a is deleted
    by bob: alice on a sees DELETED, /history on a leaves it out, and the
    room's stream in Redis holds the text no more."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        bob = client(b, "bob")
        bob.send("/ids on")
        bob.send("/join #ops")
        bob.expect("JOIN #ops bob")
        alice = client(a, "alice")
        alice.send("/ids on")
        alice.send("/join #ops")
        bob.expect("JOIN #ops alice")
        alice.send(SECRET)
        msg_id = bob.expect("ID #ops ").split()[2]
        bob.expect(f"MSG #ops alice {SECRET}")
        alice.expect(f"MSG #ops alice {SECRET}")
        bob.send(f"/delete #ops {msg_id} spam")
        assert bob.expect("INFO Deleted") == f"INFO Deleted message {msg_id} of #ops."
        assert alice.expect("DELETED ") == f"DELETED #ops {msg_id} bob spam"
        alice.send("/history #ops")
        assert alice.expect("ENDHISTORY ") == "ENDHISTORY #ops 0"
        stream = ask(redis_server.port, "DUMP", room_key("#ops"))
        assert SECRET.encode() not in stream
