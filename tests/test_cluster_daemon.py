"""Two and three real `twistd -n chatd --redis ...` nodes on one test Redis.

Each node listens on a free loopback port; the test waits for its
"cluster: node ... joined" log line before talking to it.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from daemon import ROOT, WAIT, Daemon, LineClient
from redis_server import RedisServer, free_port

JOINED = re.compile(r"cluster: node (\S+) joined")


def start_node(redis: RedisServer, cwd: Path, name: str, *extra: str) -> Daemon:
    """Start one node and wait until it listens and has joined the cluster."""
    daemon = Daemon(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--redis",
            redis.url,
            "--node-name",
            name,
            *extra,
        ],
        cwd,
    )
    try:
        daemon.wait_listening(1 + extra.count("--irc"))
        daemon.wait_for_log(JOINED)
    except BaseException:
        daemon.kill()
        raise
    return daemon


@contextmanager
def nodes(
    redis: RedisServer, tmp_path: Path, count: int, *extra: str
) -> Iterator[list[Daemon]]:
    with ExitStack() as stack:
        started = []
        for number in range(count):
            daemon = start_node(redis, tmp_path, f"n{number}", *extra)
            stack.callback(daemon.kill)
            started.append(daemon)
        yield started


def client(daemon: Daemon, nick: str) -> LineClient:
    line = LineClient.tcp(daemon.ports["tcp:0:interface=127.0.0.1"])
    line.register(nick)
    return line


def test_clients_on_two_nodes_chat_in_one_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Lines said on two nodes reach both sides in the same order."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        alice, bob = client(a, "alice"), client(b, "bob")
        alice.expect("JOIN #lobby bob")
        for number in range(20):
            (alice if number % 2 else bob).send(f"line {number}")
        seen = {}
        for name, who in (("alice", alice), ("bob", bob)):
            seen[name] = [who.expect("MSG #lobby ") for _ in range(20)]
        assert seen["alice"] == seen["bob"]
        assert sorted(seen["alice"]) == sorted(
            f"MSG #lobby {'alice' if n % 2 else 'bob'} line {n}" for n in range(20)
        )


def test_a_nickname_race_between_two_nodes_has_one_winner(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The same nick asked on two nodes at once: one WELCOME, one nick-taken."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        one = LineClient.tcp(a.ports["tcp:0:interface=127.0.0.1"])
        two = LineClient.tcp(b.ports["tcp:0:interface=127.0.0.1"])
        one.expect("NICK ")
        two.expect("NICK ")
        one.send("zoe")
        two.send("Zoe")
        answers = sorted(who.expect("") for who in (one, two))
        assert answers[0].startswith("ERR nick-taken") or answers[1].startswith(
            "ERR nick-taken"
        ), answers
        assert sum(text.startswith("WELCOME ") for text in answers) == 1, answers


def test_who_and_private_messages_across_three_nodes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """/who lists users of every node; /msg reaches a user on another node."""
    with nodes(redis_server, tmp_path, 3) as (a, b, c):
        alice, bob, carol = client(a, "alice"), client(b, "bob"), client(c, "carol")
        alice.expect("JOIN #lobby carol")
        alice.send("/who")
        assert alice.expect("USERS ") == "USERS #lobby alice bob carol"
        carol.send("/msg alice hello from c")
        assert alice.expect("PRIV ") == "PRIV carol alice hello from c"
        assert carol.expect("PRIV ") == "PRIV carol alice hello from c"
        bob.send("/who")
        assert bob.expect("USERS ") == "USERS #lobby alice bob carol"


def test_history_written_on_one_node_is_read_on_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A message said on a is in /history asked on b, with the same id."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        alice = client(a, "alice")
        alice.send("/ids on")
        alice.send("remember this")
        kept = alice.expect("ID #lobby ")
        alice.expect("MSG #lobby alice remember this")
        bob = client(b, "bob")
        bob.send("/history")
        line = bob.expect("HISTORY ")
        assert line.startswith(f"HISTORY #lobby {kept.split()[2]} ")
        assert line.endswith(" MSG alice remember this")


def test_a_killed_node_is_declared_lost_and_its_users_quit(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """kill -9 of a node: within --node-timeout the others see QUIT node lost."""
    with nodes(redis_server, tmp_path, 2, "--node-timeout", "2") as (a, b):
        alice = client(a, "alice")
        bob = client(b, "bob")  # kept open: only the kill may end it
        alice.expect("JOIN #lobby bob")
        started = time.monotonic()
        b.process.kill()
        assert alice.expect("QUIT ") == "QUIT bob node lost"
        assert time.monotonic() - started < 2 * 2 + 1
        bob.close()
        again = client(a, "bob")  # the nickname is free again
        again.send("/who")
        assert again.expect("USERS ") == "USERS #lobby alice bob"


def test_a_clean_stop_quits_its_users_on_the_other_nodes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGTERM: the node's users get BYE, the others see them QUIT at once."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        alice, bob = client(a, "alice"), client(b, "bob")
        alice.expect("JOIN #lobby bob")
        b.process.terminate()
        bob.expect("BYE ")
        assert alice.expect("QUIT ").startswith("QUIT bob ")


def test_redis_stopped_and_started_under_a_running_cluster(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis goes away and comes back empty: users stay connected, are told,
    and chat again across nodes once the nodes have rejoined."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        alice, bob = client(a, "alice"), client(b, "bob")
        alice.expect("JOIN #lobby bob")
        redis_server.stop()
        assert "lost its link" in alice.expect("INFO ")
        assert "lost its link" in bob.expect("INFO ")
        alice.send("anyone?")
        assert alice.expect("ERR ").startswith("ERR cluster-down ")
        redis_server.start()
        alice.expect("INFO This server is linked")
        bob.expect("INFO This server is linked")
        # Whichever node came back second adds its user again: each side sees
        # the other JOIN (docs/cluster.md, Redis trouble).
        alice.expect("JOIN #lobby bob")
        bob.expect("JOIN #lobby alice")
        alice.send("/who")
        assert alice.expect("USERS ") == "USERS #lobby alice bob"
        alice.send("back again")
        assert bob.expect("MSG ") == "MSG #lobby alice back again"


def test_a_node_paused_past_the_timeout_comes_back_as_a_new_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGSTOP past --node-timeout: its users quit elsewhere (node lost); on
    SIGCONT it reads that it was declared lost, rejoins, and its users are
    back (JOIN) where they were."""
    with nodes(redis_server, tmp_path, 2, "--node-timeout", "2") as (a, b):
        alice, bob = client(a, "alice"), client(b, "bob")
        alice.expect("JOIN #lobby bob")
        b.process.send_signal(signal.SIGSTOP)
        try:
            assert alice.expect("QUIT ") == "QUIT bob node lost"
        finally:
            b.process.send_signal(signal.SIGCONT)
        assert alice.expect("JOIN ") == "JOIN #lobby bob"
        bob.expect("INFO This server is linked")
        alice.send("welcome back")
        assert bob.expect("MSG ") == "MSG #lobby alice welcome back"


def test_three_nodes_behind_haproxy_with_the_repos_config(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """deploy/haproxy.cfg, its ports moved to free ones: clients of one address
    land on different nodes and share #lobby in one order."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    ports = {
        port: free_port()
        for port in sorted(set(re.findall(r"127\.0\.0\.1:(\d+)|port (\d+)", config)))
    }
    moved = {old: str(new) for pair, new in ports.items() for old in pair if old}
    config = re.sub(
        r"(?<=127\.0\.0\.1:)(\d+)|(?<=port )(\d+)",
        lambda found: moved[found.group(0)],
        config,
    )
    (tmp_path / "haproxy.cfg").write_text(config)
    with ExitStack() as stack:
        for number in (1, 2, 3):
            daemon = Daemon(
                [
                    "--listen",
                    f"tcp:{moved[f'551{number}']}:interface=127.0.0.1",
                    "--irc",
                    f"tcp:{moved[f'667{number}']}:interface=127.0.0.1",
                    "--metrics",
                    f"tcp:{moved[f'911{number}']}:interface=127.0.0.1",
                    "--max-per-ip",
                    "1024",
                    "--redis",
                    redis_server.url,
                    "--node-name",
                    f"n{number}",
                ],
                tmp_path,
            )
            stack.callback(daemon.kill)
            daemon.wait_listening(2)
            daemon.wait_for_log(JOINED)
        balancer = subprocess.Popen(
            [haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(balancer.kill)
        front = int(moved["5501"])
        deadline = time.monotonic() + WAIT
        clients: list[LineClient] = []
        while len(clients) < 3:  # health checks rise after 2 x 2 s
            try:
                line = LineClient.tcp(front)
                line.register(f"user{len(clients)}")
            except (OSError, AssertionError):
                assert time.monotonic() < deadline, "haproxy never let a client in"
                time.sleep(0.2)
                continue
            clients.append(line)
        for number, line in enumerate(clients):
            line.send(f"hello from {number}")
        seen = [[line.expect("MSG #lobby ") for _ in range(3)] for line in clients]
        assert seen[0] == seen[1] == seen[2]
        clients[0].send("/who")
        assert clients[0].expect("USERS ") == "USERS #lobby user0 user1 user2"


def test_an_irc_client_and_a_line_client_on_two_nodes_share_a_room(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """IRC on one node, the line protocol on another: NAMES lists both, and
    each sees the other's messages."""
    irc = ("--irc", "tcp:0:interface=127.0.0.1")
    with nodes(redis_server, tmp_path, 2, *irc) as (a, b):
        alice = client(a, "alice")
        carol = LineClient.tcp(b.ports["irc tcp:0:interface=127.0.0.1"])
        carol.send("NICK carol")
        carol.send("USER carol 0 * :Carol")
        carol.expect(":chatd 001 carol ")
        carol.send("JOIN #lobby")
        names = carol.expect(":chatd 353 carol ")
        assert names.endswith(":alice carol") or names.endswith(":carol alice"), names
        alice.expect("JOIN #lobby carol")
        alice.send("hi carol")
        assert carol.expect(":alice!").endswith(" PRIVMSG #lobby :hi carol")
        carol.send("PRIVMSG #lobby :hi alice")
        assert alice.expect("MSG #lobby carol") == "MSG #lobby carol hi alice"


def test_lines_sent_then_half_closed_all_run_on_a_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """printf 'carol\\nhello\\n/quit bye\\n' | nc: each line runs, as in one process."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        bob = client(b, "bob")
        with socket.create_connection(
            ("127.0.0.1", a.ports["tcp:0:interface=127.0.0.1"]), timeout=WAIT
        ) as sock:
            sock.sendall(b"carol\nhello\n/nick caroline\n/quit bye\n")
            sock.shutdown(socket.SHUT_WR)
        assert bob.expect("JOIN #lobby ") == "JOIN #lobby carol"
        assert bob.expect("MSG #lobby ") == "MSG #lobby carol hello"
        assert bob.expect("RENAME ") == "RENAME carol caroline"
        assert bob.expect("QUIT ") == "QUIT caroline bye"


def test_a_script_half_closed_on_a_node_gets_every_answer(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """printf 'carol\nhello\n/history\n/quit\n' | nc -N into a node: the replies
    of every line (each waits for its turn in the log), then BYE and the close."""
    with nodes(redis_server, tmp_path, 2) as (a, b):
        bob = client(b, "bob")
        bob.send("said before")
        bob.expect("MSG #lobby bob said before")
        with socket.create_connection(
            ("127.0.0.1", a.ports["tcp:0:interface=127.0.0.1"]), timeout=WAIT
        ) as sock:
            sock.sendall(b"carol\nhello\n/history\n/quit\n")
            sock.shutdown(socket.SHUT_WR)
            answers = b""
            while chunk := sock.recv(65536):  # until the node closes
                answers += chunk
        got = answers.decode().splitlines()
        assert "WELCOME carol Welcome to chatd, carol! Type /help for commands." in got
        assert "MSG #lobby carol hello" in got
        # The join's backfill, then /history's answer (both read from Redis).
        ends = [at for at, g in enumerate(got) if g.startswith("ENDHISTORY #lobby ")]
        assert len(ends) == 2, got
        assert got[ends[0] - 1].endswith(" MSG bob said before"), got
        assert got[-1] == "BYE Goodbye, carol.", got
        assert bob.expect("QUIT ") == "QUIT carol quit"


def test_a_second_node_under_a_live_nodes_name_refuses_to_start(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two live nodes must not share a name: the second says so and exits 1.

    (Found trying docs/cluster.md: the second was taken for a restart of the
    first, whose users the others then dropped, splitting the cluster.)
    """
    with nodes(redis_server, tmp_path, 2, "--node-timeout", "1") as (a, b):
        alice, bob = client(a, "alice"), client(b, "bob")
        alice.expect("JOIN #lobby bob")
        twin = Daemon(
            ["--listen", "tcp:0:interface=127.0.0.1", "--redis", redis_server.url,
             "--node-name", "n0", "--node-timeout", "1"],
            tmp_path,
        )  # fmt: skip
        try:
            twin.wait_for_log(re.compile(r"another live node is named 'n0'"))
            # Non-zero, for systemd's Restart=on-failure (issue 25).
            assert twin.process.wait(timeout=WAIT) == 1
        finally:
            twin.kill()
        bob.send("still one chat?")
        assert alice.expect("MSG #lobby ") == "MSG #lobby bob still one chat?"
        assert bob.expect("MSG #lobby ") == "MSG #lobby bob still one chat?"
        alice.send("yes")
        assert bob.expect("MSG #lobby ") == "MSG #lobby alice yes"


def test_a_node_killed_and_started_at_once_under_its_name_joins(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """kill -9, then the same --node-name again before the timeout: a restart.

    Its old heartbeat key is still there but only ages, so the new run is no
    twin: it joins, and its old run's users are gone for the others.
    """
    with nodes(redis_server, tmp_path, 2, "--node-timeout", "3") as (a, b):
        bob = client(b, "bob")
        alice = client(a, "alice")
        bob.expect("JOIN #lobby alice")
        a.process.kill()
        a.process.wait(timeout=WAIT)
        again = start_node(redis_server, tmp_path, "n0", "--node-timeout", "3")
        try:
            assert bob.expect("QUIT ") == "QUIT alice node lost"
            carol = client(again, "carol")
            assert bob.expect("JOIN ") == "JOIN #lobby carol"
            carol.send("back")
            assert bob.expect("MSG #lobby ") == "MSG #lobby carol back"
        finally:
            again.kill()
        alice.close()
