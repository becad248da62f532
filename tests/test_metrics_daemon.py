"""End to end: the real `twistd -n chatd --metrics ...`, read through its /metrics.

Every figure is read with prometheus-client's own text parser, never by
matching strings.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from daemon import WAIT, Daemon, LineClient, running_daemon
from prometheus_client.parser import text_string_to_metric_families
from test_daemon import LOOPBACK, make_certificate

METRICS = "tcp:0:interface=127.0.0.1"
METRICS_LISTENING = re.compile(r"chatd metrics listening on \S+: \S+ port (\d+)")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_port(daemon: Daemon) -> int:
    """The --metrics listener's port, from its log line."""
    return int(daemon.wait_for_log(METRICS_LISTENING).group(1))


def get(port: int, path: str) -> tuple[int, bytes, str]:
    """GET path from the listener: (status, body, content type)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as answer:
            return answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def scrape(port: int) -> Samples:
    """Every sample of /metrics, parsed by prometheus-client's own parser."""
    status, body, content_type = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def hits(samples: Samples, kind: str) -> float:
    return value(samples, "chatd_limit_hits_total", door="line", limit=kind)


def test_registrations_and_a_message_to_n_members_move_their_metrics(
    tmp_path: Path,
) -> None:
    """N register: N registrations, users, connections; one MSG: N events, 1 write."""
    members = 6
    args = ["--listen", LOOPBACK, "--metrics", METRICS, "--irc", LOOPBACK]
    args += ["--web", LOOPBACK]
    with running_daemon(args, tmp_path, listeners=3) as daemon:
        port = daemon.ports[LOOPBACK]
        web = metrics_port(daemon)
        start = scrape(web)
        for door in ("irc", "web"):  # every door's series, from the start
            assert value(start, "chatd_connections", door=door) == 0
        status, body, _ = get(daemon.ports[f"web {LOOPBACK}"], "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert value(start, "chatd_history_up") == 1
        clients = [LineClient.tcp(port) for _ in range(members)]
        for number, client in enumerate(clients):
            client.register(f"m{number}")
        for client in clients[:-1]:  # each has seen everyone's JOIN
            client.expect(f"JOIN #lobby m{members - 1}")
        registered = scrape(web)
        assert value(registered, "chatd_registrations_total", door="line") == members
        assert value(registered, "chatd_connections", door="line") == members
        assert value(registered, "chatd_users") == members
        assert value(registered, "chatd_rooms") == 1

        text = "hello everyone"
        clients[0].send(text)
        line = f"MSG #lobby m0 {text}"
        for client in clients:
            client.expect(line)
        # /history is answered by the history thread after the batch before it
        # is written: then the write is counted too.
        clients[0].send("/history")
        clients[0].expect("ENDHISTORY #lobby")
        after = scrape(web)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(registered, name, **labels)

        assert moved("chatd_events_delivered_total", door="line") == members
        assert moved("chatd_lines_received_total", door="line") == 2
        sent = moved("chatd_sent_bytes_total", door="line")
        assert sent >= members * len(line + "\r\n")
        assert moved("chatd_history_messages_written_total") == 1
        assert moved("chatd_history_batch_seconds_count") >= 1
        assert value(after, "process_cpu_seconds_total") > 0
        assert value(after, "process_open_fds") >= members
        assert value(after, "process_resident_memory_bytes") > 0
        assert value(after, "chatd_reactor_lag_seconds_count") >= 0


def test_flood_recvq_too_long_per_ip_and_timeouts_are_counted(tmp_path: Path) -> None:
    """Each limit a client hits moves chatd_limit_hits_total{limit=...} by one."""
    args = [
        "--listen",
        LOOPBACK,
        "--metrics",
        METRICS,
        "--flood-burst",
        "3",
        "--flood-rate",
        "50",
        "--recvq",
        "4096",
        "--max-line",
        "512",
        "--max-per-ip",
        "2",
        "--register-timeout",
        "1",
    ]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        web = metrics_port(daemon)
        paster = LineClient.tcp(port)
        paster.register("paster")
        paster.send("x" * 600)
        assert paster.expect("ERR ").startswith("ERR too-long ")
        paster.sock.sendall(b"".join(b"line %d\n" % i for i in range(20)))
        assert paster.expect("ERR ").startswith("ERR flood ")
        paster.expect("MSG #lobby paster line 19")
        silent = LineClient.tcp(port)
        assert silent.expect("BYE ").startswith("BYE No nickname chosen")
        daemon.wait_for_log(re.compile(r"disconnected: No nickname chosen"))
        second, third = LineClient.tcp(port), LineClient.tcp(port)
        second.expect("NICK ")
        assert third.read_line().startswith("ERR server-full ")  # 3rd from 127.0.0.1
        # 10 kB at once: a second throttling episode, and past --recvq.
        paster.sock.sendall((b"x" * 99 + b"\n") * 100)
        assert paster.expect("BYE ").startswith("BYE Input queue full")
        samples = scrape(web)
        assert hits(samples, "too-long") == 1
        assert hits(samples, "flood") == 2
        assert hits(samples, "recvq") == 1
        assert hits(samples, "per-ip") == 1
        assert hits(samples, "register-timeout") == 1
        assert hits(samples, "sendq") == hits(samples, "server-full") == 0


def test_a_cut_off_reader_shows_in_send_queue_bytes_then_in_sendq_hits(
    tmp_path: Path,
) -> None:
    """A client that stops reading: its bytes wait (gauge), then it is cut off."""
    sendq = 262144
    args = ["--listen", LOOPBACK, "--metrics", METRICS, "--flood-rate", "0"]
    args += ["--sendq", str(sendq)]
    with running_daemon(args, tmp_path) as daemon:
        port = daemon.ports[LOOPBACK]
        web = metrics_port(daemon)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port))
        stuck = LineClient(raw)
        stuck.register("stuck")  # from here on it never reads again
        talker = LineClient.tcp(port)
        talker.register("talker")
        most_waiting = 0.0
        cut_off = False
        sent = 0
        deadline = time.monotonic() + 60
        while not cut_off:
            assert time.monotonic() < deadline and sent < 20000, f"{sent} sent"
            for _ in range(50):
                talker.send(f"{sent} {'p' * 1000}")
                sent += 1
            last = f"MSG #lobby talker {sent - 1} "
            while not (text := talker.read_line()).startswith(last):
                assert text, "talker was disconnected"
                cut_off = cut_off or text.startswith("QUIT stuck ")
            samples = scrape(web)
            most_waiting = max(
                most_waiting, value(samples, "chatd_send_queue_bytes", door="line")
            )
        assert most_waiting > 0
        samples = scrape(web)
        assert hits(samples, "sendq") == 1
        assert value(samples, "chatd_connections", door="line") == 1
        assert value(samples, "chatd_send_queue_bytes", door="line") < sendq
        raw.close()


def test_healthz_says_503_while_the_daemon_shuts_down(tmp_path: Path) -> None:
    """/healthz: 200 while serving; 503 from SIGTERM until the last client is gone.

    A TLS peer that never finishes its handshake holds the shutdown open (up
    to the grace), long enough to ask.
    """
    key, cert = make_certificate(tmp_path)
    tls = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    args = ["--listen", tls, "--metrics", METRICS]
    with running_daemon(args, tmp_path) as daemon:
        web = metrics_port(daemon)
        status, body, content_type = get(web, "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert content_type == "application/json"
        assert get(web, "/nothing-here")[0] == 404
        holder = socket.create_connection(("127.0.0.1", daemon.ports[tls]), WAIT)
        daemon.wait_for_log(re.compile(r"127\.0\.0\.1:\d+ connected \(line\)"))

        daemon.process.send_signal(15)
        daemon.wait_for_log(re.compile(r"closing 1 connections"))
        status, body, _ = get(web, "/healthz")
        assert status == 503
        assert json.loads(body)["status"] == "stopping"
        assert value(scrape(web), "chatd_stopping") == 1

        holder.close()  # the last client gone: the daemon finishes stopping
        assert daemon.process.wait(timeout=WAIT) == -15
