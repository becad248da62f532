"""The three scenarios: fanout, chatter and idle, each against one running server.

Each returns the figures of one run as a flat dict of numbers (and a few notes),
which is what the report prints, takes medians of and writes to JSON.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import (
    COUNT,
    SAMPLE,
    Conn,
    Dialect,
    LoadLoop,
    Registration,
    barrier,
    register,
)
from bench.servers import Server, listen_overflows, self_cpu_seconds

Figures = dict[str, float | int | str | None]
FANOUT_ROOM = "#bench"
LOBBY = "#lobby"
WINDOW_DELIVERIES = 100_000
WINDOW_MIN = 256
# At most this many clients wait at once for a welcome sent on a tick (InspIRCd's,
# once a second). The welcomes of one tick are written together, and the memory
# they took stays with the server: at K = 1000, 1000 at once left InspIRCd 3.44 KiB
# per connection against 2.61 with 200 or 400, and 8 (registrations in flight at
# K = 400) 2.64. So at most 200 a second register; 10,000 take 50 s or more.
WELCOME_WINDOW = 200
FD_NOTE = re.compile(r"(?i)(open.file|nofile|file limit|too many open files|EMFILE)")


@dataclass
class Settings:
    """Knobs shared by the scenarios (the command line sets them)."""

    # fanout: messages in flight (not yet at every timed receiver); None: enough
    # for WINDOW_DELIVERIES deliveries, and at least WINDOW_MIN messages.
    window: int | None = None
    # fanout: at most this many bytes of messages in that default window (InspIRCd
    # reads a client's burst only as far as one read per wake-up: see
    # bench/inspircd.py); None: no cap.
    window_bytes: int | None = None
    fanout_seconds: float = 5.0
    fanout_max_messages: int = 1_000_000
    text_bytes: int = 48  # length of each message's text
    samplers: int = 16  # fanout: receivers that time every message (and ack)
    chatter_rooms: int = 100
    chatter_members: int = 10
    chatter_seconds: float = 10.0
    reg_window: int = 8  # registrations in flight at once (ngircd's backlog is 10)
    # Where a server takes a JOIN only after its welcome, which InspIRCd sends on
    # a once-a-second tick: clients connected and waiting at once (reg_window of
    # them with their JOIN sent).
    welcome_window: int = WELCOME_WINDOW
    setup_limit: float = 1800.0  # seconds for connecting and registering everyone
    stall: float = 30.0  # give up when no client registered for this long
    drain_limit: float = 30.0  # seconds to wait for the last deliveries
    profile: Path | None = None  # fanout on chatd (either door): py-spy output here


def percentile(ordered: list[int], fraction: float) -> float | None:
    """Nearest-rank percentile of a sorted list of ns, in ms; None when empty."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank] / 1e6


def stamped(seq: int, ns: int, sender: int, pad: str) -> str:
    """Text of one timed message: ~seq~send time~sender~ then padding."""
    return f"~{seq}~{ns}~{sender}~{pad}"


def padding(settings: Settings) -> str:
    # A stamp is about 30 characters; the rest of the text is x's.
    return "x" * max(1, settings.text_bytes - 30)


def spread(items: list[Conn], count: int) -> list[Conn]:
    """Pick count items evenly spread over items, always the first and the last."""
    if count >= len(items):
        return list(items)
    if count <= 1:
        return items[:1]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def _setup_failure(reg: Registration, wanted: int, loop: LoadLoop) -> Figures:
    why = reg.stalled or "connections lost"
    return {
        "error": f"only {reg.done} of {wanted} clients registered ({why})",
        "registered": reg.done,
        "errors": "; ".join(loop.errors[:5]),
    }


def _server_notes(server: Server) -> str:
    """Log lines of the server about its open-file limit, if any."""
    found = [text for text in server.log_text().splitlines() if FD_NOTE.search(text)]
    return " | ".join(text.strip()[-160:] for text in found[:3])


def _check_alive(server: Server, figures: Figures) -> Figures:
    if not server.alive():
        figures["error"] = f"server exited ({server.process.returncode})"
    return figures


# -- fanout ------------------------------------------------------------------------


def fanout(server: Server, dialect: Dialect, size: int, settings: Settings) -> Figures:
    """One sender, size-1 other members in one room; the sender as fast as it goes.

    The window: the sender never has more than `window` messages that some timed
    receiver (they are spread over the join order) has not received yet; the same
    rule for every server, so no echo is needed. By default the window holds
    WINDOW_DELIVERIES deliveries (at least WINDOW_MIN messages), enough to keep
    any server busy through a delayed-ACK stall at any N; and, for InspIRCd, at
    most settings.window_bytes bytes (default_window).
    """
    loop = LoadLoop(server.port, dialect)
    try:
        return _fanout(loop, server, dialect, size, settings)
    finally:
        loop.close_all()


def _fanout(
    loop: LoadLoop, server: Server, dialect: Dialect, size: int, settings: Settings
) -> Figures:
    setup_started = time.perf_counter()
    deadline = time.monotonic() + settings.setup_limit
    clients = [("s0", FANOUT_ROOM, True)]
    clients += [(f"b{i}", FANOUT_ROOM, False) for i in range(1, size)]
    reg = register(
        loop,
        clients,
        settings.reg_window,
        deadline,
        settings.stall,
        welcome_window=settings.welcome_window,
    )
    if reg.done < size:
        return _setup_failure(reg, size, loop)
    conns = reg.conns
    sender, receivers = conns[0], conns[1:]
    if barrier(loop, [(sender, conns)], "~sync~fanout~", deadline) is None:
        return {"error": "setup: the sync message did not reach every member"}
    timed = spread(receivers, settings.samplers)
    for conn in timed:
        conn.mode = SAMPLE
    counted = conns if dialect.echoes else receivers  # whose lines are deliveries
    setup_s = time.perf_counter() - setup_started

    say, pad = dialect.say, padding(settings)
    limit = settings.fanout_max_messages
    window = settings.window or default_window(
        size,
        settings,
        len(say(FANOUT_ROOM, stamped(limit, time.perf_counter_ns(), 0, pad))),
    )
    sent = 0
    profiler = _start_profiler(server, settings)
    cpu0, gen0 = server.cpu_seconds(), self_cpu_seconds()
    started = time.perf_counter()
    stop_at = started + settings.fanout_seconds
    drain_until = float("inf")
    while True:
        if stop_at:
            now = time.perf_counter()
            if now >= stop_at or sent >= limit:
                stop_at = 0.0
                drain_until = now + settings.drain_limit
            elif not sender.out:
                room = window - (sent - min(conn.lines for conn in timed))
                if room > 0:
                    ns = time.perf_counter_ns()
                    batch = b"".join(
                        [
                            say(FANOUT_ROOM, stamped(seq, ns, 0, pad))
                            for seq in range(sent, sent + room)
                        ]
                    )
                    loop.write(sender, batch)
                    sent += room
        else:
            if all(conn.lines >= sent for conn in counted):
                break
            if time.perf_counter() > drain_until:
                break
        if sender.closed is not None:
            break
        loop.poll(0.05 if stop_at else 0.002)
    finished = time.perf_counter()
    cpu = server.cpu_seconds() - cpu0
    gen = self_cpu_seconds() - gen0
    _stop_profiler(profiler, settings)

    wall = finished - started
    deliveries = sum(conn.lines for conn in counted)
    latencies = sorted(itertools.chain.from_iterable(c.latencies for c in timed))
    figures: Figures = {
        "members": size,
        "window": window,
        "messages": sent,
        "deliveries": deliveries,
        "per_message": len(counted),
        "wall_s": round(wall, 3),
        "msgs_per_s": round(sent / wall, 1),
        "deliveries_per_s": round(deliveries / wall),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "deliveries_per_cpu_s": round(deliveries / cpu) if cpu > 0 else None,
        "gen_cpu_pct": round(100 * gen / wall, 1),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": percentile(latencies, 1.0),
        "lost": sum(max(0, sent - conn.lines) for conn in counted),
        "extra": sum(max(0, conn.lines - sent) for conn in counted),
        "conns_lost": loop.lost,
        "setup_s": round(setup_s, 2),
        "rss_kib": server.rss_kib(),
    }
    if loop.errors:
        figures["errors"] = "; ".join(loop.errors[:5])
    return _check_alive(server, figures)


def default_window(size: int, settings: Settings, message_bytes: int) -> int:
    """Messages in flight at fanout to size members, unless --window said:
    WINDOW_DELIVERIES deliveries, at least WINDOW_MIN messages, at most
    settings.window_bytes bytes of them (when set)."""
    window = max(WINDOW_MIN, -(-WINDOW_DELIVERIES // size))
    if settings.window_bytes is not None:
        window = min(window, max(1, settings.window_bytes // message_bytes))
    return window


def _start_profiler(
    server: Server, settings: Settings
) -> subprocess.Popen[bytes] | None:
    if settings.profile is None or not server.kind.startswith("chatd"):
        return None
    beside = Path(sys.executable).with_name("py-spy")
    binary = str(beside) if beside.exists() else shutil.which("py-spy")
    if binary is None:
        print("py-spy is not installed (pip install py-spy); no profile taken")
        return None
    command = [
        binary,
        "record",
        "--pid",
        str(server.pid),
        "--duration",
        str(max(1, int(settings.fanout_seconds))),
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(settings.profile),
    ]
    # Started from the generator's core, it stays there: the server's core is
    # left to the server.
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop_profiler(
    profiler: subprocess.Popen[bytes] | None, settings: Settings
) -> None:
    if profiler is None:
        return
    try:
        profiler.wait(timeout=settings.fanout_seconds + 30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


# -- chatter -----------------------------------------------------------------------


def chatter(server: Server, dialect: Dialect, size: int, settings: Settings) -> Figures:
    """Rooms of a few members each; every member says one line a second, staggered."""
    loop = LoadLoop(server.port, dialect)
    try:
        return _chatter(loop, server, dialect, settings)
    finally:
        loop.close_all()


def _chatter(
    loop: LoadLoop, server: Server, dialect: Dialect, settings: Settings
) -> Figures:
    rooms, members = settings.chatter_rooms, settings.chatter_members
    total = rooms * members
    setup_started = time.perf_counter()
    deadline = time.monotonic() + settings.setup_limit
    clients = [(f"c{i}", f"#r{i // members}", False) for i in range(total)]
    reg = register(
        loop,
        clients,
        settings.reg_window,
        deadline,
        settings.stall,
        welcome_window=settings.welcome_window,
    )
    if reg.done < total:
        return _setup_failure(reg, total, loop)
    conns = reg.conns
    groups = [
        (conns[r * members], conns[r * members : (r + 1) * members])
        for r in range(rooms)
    ]
    if barrier(loop, groups, "~sync~chatter~", deadline, then=SAMPLE) is None:
        return {"error": "setup: the sync message did not reach every member"}
    setup_s = time.perf_counter() - setup_started

    # Consecutive sends go to different rooms: member 0 of every room, then 1...
    order = sorted(range(total), key=lambda i: (i % members, i // members))
    events = int(settings.chatter_seconds * total)
    step = 1.0 / total  # each member once a second
    sent_by = [0] * total
    say, pad = dialect.say, padding(settings)
    cpu0, gen0 = server.cpu_seconds(), self_cpu_seconds()
    started = time.perf_counter() + 0.01
    done = 0
    while done < events:
        now = time.perf_counter()
        while done < events and started + done * step <= now:
            who = order[done % total]
            conn = conns[who]
            text = stamped(done, time.perf_counter_ns(), conn.index, pad)
            loop.write(conn, say(conn.room, text))
            sent_by[who] += 1
            done += 1
        wait = started + done * step - time.perf_counter()
        loop.poll(min(max(wait, 0.0), 0.05))
    room_sent = [sum(sent_by[r * members : (r + 1) * members]) for r in range(rooms)]
    expected = [
        room_sent[i // members] - (0 if dialect.echoes else sent_by[i])
        for i in range(total)
    ]
    want = sum(expected)
    loop.run_until(
        lambda: sum(conn.lines for conn in conns) >= want,
        time.monotonic() + settings.drain_limit,
    )
    finished = time.perf_counter()
    cpu = server.cpu_seconds() - cpu0
    gen = self_cpu_seconds() - gen0

    wall = finished - started
    latencies = sorted(itertools.chain.from_iterable(c.latencies for c in conns))
    deliveries = sum(conn.lines for conn in conns)
    figures: Figures = {
        "members": total,
        "rooms": rooms,
        "messages": done,
        "deliveries": deliveries,
        "wall_s": round(wall, 3),
        "deliveries_per_s": round(deliveries / wall),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "gen_cpu_pct": round(100 * gen / wall, 1),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": percentile(latencies, 1.0),
        "samples": len(latencies),
        "lost": sum(max(0, e - c.lines) for e, c in zip(expected, conns, strict=True)),
        "extra": sum(max(0, c.lines - e) for e, c in zip(expected, conns, strict=True)),
        "conns_lost": loop.lost,
        "setup_s": round(setup_s, 2),
        "rss_kib": server.rss_kib(),
    }
    if loop.errors:
        figures["errors"] = "; ".join(loop.errors[:5])
    return _check_alive(server, figures)


# -- idle --------------------------------------------------------------------------


def idle(server: Server, dialect: Dialect, size: int, settings: Settings) -> Figures:
    """size clients register and join #lobby, then sit idle; memory and speed."""
    loop = LoadLoop(server.port, dialect)
    try:
        return _idle(loop, server, dialect, size, settings)
    finally:
        loop.close_all()


def _idle(
    loop: LoadLoop, server: Server, dialect: Dialect, size: int, settings: Settings
) -> Figures:
    rss0 = server.rss_kib()
    cpu0, gen0 = server.cpu_seconds(), self_cpu_seconds()
    overflows0 = listen_overflows()
    deadline = time.monotonic() + settings.setup_limit
    clients = [(f"i{k}", LOBBY, False) for k in range(size)]
    reg = register(
        loop,
        clients,
        settings.reg_window,
        deadline,
        settings.stall,
        welcome_window=settings.welcome_window,
    )
    figures: Figures = {"members": size, "registered": reg.done}
    registered_at = reg.finished
    all_delivered: float | None = None
    if reg.done == size:
        # A line from the last one in: once everybody has it, everybody also has
        # every JOIN notice that was sent before it.
        all_delivered = barrier(
            loop, [(reg.conns[-1], reg.conns)], "~sync~idle~", deadline
        )
    finished = all_delivered or time.perf_counter()
    cpu = server.cpu_seconds() - cpu0
    gen = self_cpu_seconds() - gen0
    loop.run_until(lambda: False, time.monotonic() + 0.5)  # settle, keep draining
    rss1 = server.rss_kib()
    held = sum(1 for conn in reg.conns if conn.closed is None)
    wall = finished - reg.started
    figures.update(
        {
            "held": held,
            "wall_s": round(wall, 3),
            "regs_per_s": round(reg.done / wall, 1) if all_delivered else None,
            "regs_per_s_no_drain": round(reg.done / (registered_at - reg.started), 1)
            if reg.done
            else None,
            "rss_before_kib": rss0,
            "rss_after_kib": rss1,
            "rss_per_conn_kib": round((rss1 - rss0) / max(1, held), 3),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_pct": round(100 * cpu / wall, 1) if wall > 0 else None,
            "gen_cpu_pct": round(100 * gen / wall, 1) if wall > 0 else None,
            "listen_overflows": listen_overflows() - overflows0,
            "conns_lost": loop.lost,
        }
    )
    problems = []
    if reg.done < size:
        problems.append(
            f"held only {reg.done} of {size} registered ({reg.stalled or 'lost'})"
        )
    elif all_delivered is None:
        problems.append("the JOIN notices did not all arrive in time")
    if held < reg.done:
        problems.append(f"{reg.done - held} connections dropped after registering")
    if problems:
        figures["error"] = "; ".join(problems)
    notes = _server_notes(server)
    if notes:
        figures["server_notes"] = notes
    if loop.errors:
        figures["errors"] = "; ".join(loop.errors[:5])
    return _check_alive(server, figures)


Scenario = Callable[[Server, Dialect, int, Settings], Figures]
SCENARIOS: dict[str, Scenario] = {"fanout": fanout, "chatter": chatter, "idle": idle}
__all__ = ["COUNT", "SCENARIOS", "Figures", "Settings"]
