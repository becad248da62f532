"""The web door with fakes: the site on StringTransports, a Clock, wsproto's client."""

from __future__ import annotations

import json

import pytest
from helpers import connect, lines, make_factory
from twisted.internet.task import Clock
from web_helpers import FakeBrowser, http_get, make_site, masked_frame
from zope.interface.verify import verifyObject

from chatd.config import ServerConfig
from chatd.factory import ChatFactory
from chatd.line.wire import RenderStats
from chatd.model.chat import IChatClient
from chatd.store.memory import MemoryHistory
from chatd.web.door import PING_INTERVAL, WebConnection
from chatd.web.frames import CLOSE_TOO_BIG, CLOSE_TRY_LATER, MAX_FRAGMENTS
from chatd.web.site import CONTENT_SECURITY_POLICY, load_assets


def web_connection(factory: ChatFactory) -> WebConnection:
    """The factory's one web connection."""
    (connection,) = [c for c in factory.connections if isinstance(c, WebConnection)]
    return connection


# -- the page and its files --------------------------------------------------


def test_page_is_served_with_its_security_headers(clock: Clock) -> None:
    """/ is the page, revalidated each load, under a CSP allowing only its own files."""
    site = make_site(make_factory(clock))
    status, headers, body = http_get(site, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-cache"
    assert b"<script" in body and b"{{" not in body
    assert b"<script>" not in body and b" style=" not in body  # nothing inline
    # The same page again: the browser's copy is current.
    status, _, body = http_get(site, "/", {"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")


def test_static_files_are_cached_for_a_year_at_their_version(clock: Clock) -> None:
    """The page names each file with ?v=<hash>; that address may be kept for a year."""
    site = make_site(make_factory(clock))
    _, _, page = http_get(site, "/")
    assets = load_assets()
    app = assets["app.js"]
    assert app.url.encode() in page
    status, headers, body = http_get(site, "/" + app.url)
    assert status == 200 and body == app.body
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # Another (old) version, or none, is asked again each time.
    _, headers, _ = http_get(site, "/static/app.js?v=0")
    assert headers["cache-control"] == "no-cache"
    assert http_get(site, "/static/style.css")[1]["content-type"].startswith("text/css")
    assert http_get(site, "/static/nothing.js")[0] == 404
    assert http_get(site, "/nothing")[0] == 404


def test_healthz_answers_with_the_counts(clock: Clock) -> None:
    """/healthz: 200 and JSON a supervisor can read, never cached."""
    factory = make_factory(clock)
    site = make_site(factory)
    FakeBrowser(site).register("alice")
    status, headers, body = http_get(site, "/healthz")
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {
        "status": "ok",
        "connections": 1,
        "http": 1,  # this request's own
        "users": 1,
        "rooms": 1,
        "history": "off",
    }


# -- the WebSocket -----------------------------------------------------------


def test_websocket_speaks_the_line_protocol_one_line_per_message(clock: Clock) -> None:
    """HELLO, NICK, then a nickname: each line is one text message, without CRLF."""
    factory = make_factory(clock)
    browser = FakeBrowser(make_site(factory))
    assert browser.accepted
    hello, nick = browser.lines()
    assert hello.startswith("HELLO chatd ") and nick.startswith("NICK ")
    browser.send("alice")
    assert browser.lines()[:2] == [
        "WELCOME alice Welcome to chatd, alice! Type /help for commands.",
        "JOIN #lobby alice",
    ]
    connection = web_connection(factory)
    assert verifyObject(IChatClient, connection)
    assert connection.door == "web"


def test_web_and_line_users_share_rooms(clock: Clock) -> None:
    """A web user and a telnet user see each other's lines, as each door spells them."""
    factory = make_factory(clock)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    bob, bob_out = connect(factory, "bob")
    assert browser.lines() == ["JOIN #lobby bob"]
    browser.send("hello <img src=x onerror=alert(1)>")
    assert lines(bob_out) == ["MSG #lobby alice hello <img src=x onerror=alert(1)>"]
    assert browser.lines() == ["MSG #lobby alice hello <img src=x onerror=alert(1)>"]
    bob.dataReceived(b"hi\r\n/msg alice psst\r\n")
    assert browser.lines() == ["MSG #lobby bob hi", "PRIV bob alice psst"]
    browser.send("/join #games")
    assert browser.lines() == ["JOIN #games alice"]
    bob.dataReceived(b"/join #games\r\n")
    assert browser.lines() == ["JOIN #games bob"]


def test_a_broadcast_is_rendered_and_framed_once(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message to web and line members is rendered once, and framed once for all."""
    from chatd.web import door

    framed: list[bytes] = []

    def counting(payload: bytes) -> bytes:
        framed.append(payload)
        return real(payload)

    real = door.text_frame
    monkeypatch.setattr(door, "text_frame", counting)
    factory = make_factory(clock)
    site = make_site(factory)
    browsers = [FakeBrowser(site, port=50100 + n) for n in range(5)]
    for n, browser in enumerate(browsers):
        browser.register(f"web{n}")
    talker, _ = connect(factory, "talker")
    for n in range(5):
        connect(factory, f"line{n}")
    for browser in browsers:
        browser.lines()
    before, framed[:] = RenderStats.renders, []
    talker.dataReceived(b"one line for everyone\r\n")
    assert RenderStats.renders == before + 1
    assert framed == [b"MSG #lobby talker one line for everyone"]
    for browser in browsers:
        assert browser.lines() == ["MSG #lobby talker one line for everyone"]


def test_history_answers_arrive_as_lines(clock: Clock) -> None:
    """/history on a server that keeps none: its ERR, one message."""
    browser = FakeBrowser(make_site(make_factory(clock)))
    browser.register("alice")
    browser.send("/history")
    assert browser.lines() == ["ERR no-history this server keeps no history"]


def test_a_page_from_another_origin_is_refused(clock: Clock) -> None:
    """Origin must be the page's own (this machine at the listener's port);
    else 403, no connection."""
    factory = make_factory(clock)
    site = make_site(factory)
    evil = FakeBrowser(site, origin="https://evil.example")
    assert evil.rejected == 403 and not evil.accepted
    assert not factory.connections
    assert FakeBrowser(site, origin="http://127.0.0.1:8081").rejected == 403
    assert FakeBrowser(site, origin="null").rejected == 403
    # The page's own, in any case; and a client that is no browser sends none.
    assert FakeBrowser(site, origin="HTTP://127.0.0.1:8080").accepted
    assert FakeBrowser(site, origin=None, port=50002).accepted


def test_a_rebound_name_is_refused(clock: Clock) -> None:
    """DNS rebinding: a page of evil.example:8080 whose name now resolves to
    this server sends Host evil.example:8080 and that Origin; 403 all the same."""
    factory = make_factory(clock)
    site = make_site(factory)
    rebound = FakeBrowser(
        site, origin="http://evil.example:8080", host_header="evil.example:8080"
    )
    assert rebound.rejected == 403 and not rebound.accepted
    assert not factory.connections
    # The machine's own names at the listener's port are its own page.
    assert FakeBrowser(site, origin="http://localhost:8080").accepted


def test_web_origin_allows_another_page(clock: Clock) -> None:
    """--web-origin names pages from elsewhere that may connect."""
    site = make_site(make_factory(clock), origins=("https://chat.example.com",))
    assert FakeBrowser(site, origin="https://chat.example.com").accepted
    assert FakeBrowser(site, origin="https://chat.example.com:443").accepted
    assert FakeBrowser(site, origin="https://other.example.com").rejected == 403


def test_binary_messages_are_answered_as_bad_encoding(clock: Clock) -> None:
    """A binary message is no line: ERR bad-encoding, and the connection carries on."""
    browser = FakeBrowser(make_site(make_factory(clock)))
    browser.register("alice")
    browser.send_raw(masked_frame(0x2, b"\x00\x01\x02"))
    assert browser.lines() == [
        "ERR bad-encoding binary messages are not part of the protocol; send text"
    ]
    browser.send("still here")
    assert browser.lines() == ["MSG #lobby alice still here"]


def test_a_long_message_is_refused_and_the_connection_stays(clock: Clock) -> None:
    """Past --max-line: ERR too-long, as on TCP; the next line is handled."""
    browser = FakeBrowser(make_site(make_factory(clock, max_line=100)))
    browser.register("alice")
    browser.send("x" * 101)
    assert [line.split(" ")[1] for line in browser.lines()] == ["too-long"]
    browser.send("short")
    assert browser.lines() == ["MSG #lobby alice short"]


def test_a_message_too_big_to_hold_closes_with_1009(clock: Clock) -> None:
    """A message past --recvq is refused as its header arrives: BYE, close 1009."""
    factory = make_factory(clock, recvq=4096)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    bob, bob_out = connect(factory, "bob")
    browser.lines()
    # Only the header and a little of a 1 GB message: it is never held.
    browser.send_raw(masked_frame(0x1, b"x" * 100, length=1 << 30))
    assert browser.lines() == ["BYE Message too big: more than 4096 bytes."]
    assert browser.closed == CLOSE_TOO_BIG
    assert browser.transport.disconnecting
    assert lines(bob_out) == ["QUIT alice Message too big: more than 4096 bytes."]


def test_a_fragmented_message_is_counted_whole(clock: Clock) -> None:
    """Fragments add up: many small frames of one message pass the limit too."""
    browser = FakeBrowser(make_site(make_factory(clock, recvq=4096)))
    browser.register("alice")
    browser.send_raw(masked_frame(0x1, b"a" * 2000, fin=False))
    browser.send_raw(masked_frame(0x9, b"ping"))  # control frames do not count
    browser.send_raw(masked_frame(0x0, b"b" * 2000, fin=False))
    browser.read()
    assert browser.closed is None
    browser.send_raw(masked_frame(0x0, b"c" * 200, fin=True))
    browser.read()
    assert browser.closed == CLOSE_TOO_BIG


def test_flooding_pages_wait_like_everyone(clock: Clock) -> None:
    """Past the burst a page's lines wait, ERR flood once, handled at the rate."""
    factory = make_factory(clock, flood_burst=5, flood_rate=2.0)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    for n in range(8):
        browser.send(f"line {n}")
    got = browser.lines()
    assert [line for line in got if line.startswith("ERR flood ")]
    handled = [line for line in got if line.startswith("MSG ")]
    assert len(handled) < 8
    for _ in range(10):
        clock.advance(0.5)
    assert [line for line in got + browser.lines() if line.startswith("MSG ")] == [
        f"MSG #lobby alice line {n}" for n in range(8)
    ]


def test_a_ping_flood_pauses_reading_until_paid_for(clock: Clock) -> None:
    """Each ping costs a line of the flood gate before it is read: past the
    burst the socket is not read (pauseProducing) and the pings wait, answered
    at the rate, in order with the lines sent after them."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")  # free: a registration line (chatd.net.limits)
    browser.lines()
    browser.send_raw(masked_frame(0x9, b"") * 1000 + masked_frame(0x1, b"after"))
    browser.read()
    assert browser.pongs == 10
    assert browser.transport.producerState == "paused"
    clock.advance(0.5)
    browser.read()
    assert browser.pongs == 11
    for _ in range(1000):
        clock.advance(0.5)
        if browser.transport.producerState == "producing":
            break
    clock.advance(1.0)  # the line after them waits for its own token
    browser.read()
    assert browser.pongs == 1000
    assert browser.lines()[-1] == "MSG #lobby alice after"
    assert factory.stats.limits["web", "flood"] > 0


def test_bytes_that_come_while_paused_wait_in_order_and_are_bounded(
    clock: Clock,
) -> None:
    """TLS may hand over bytes after the pause: they wait behind the rest, in
    order, up to --recvq; past it the page is closed as any full input queue."""
    factory = make_factory(clock, flood_burst=2, flood_rate=2.0, recvq=4096)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    browser.lines()
    browser.send_raw(masked_frame(0x9, b"") * 10)
    assert browser.transport.producerState == "paused"
    browser.send("later")  # arrives anyway
    for _ in range(20):
        clock.advance(0.5)
    browser.read()
    assert browser.pongs == 10
    assert browser.lines()[-1] == "MSG #lobby alice later"
    browser.send_raw(masked_frame(0x9, b"") * 10)
    browser.send_raw(masked_frame(0x9, b"") * 1000)  # 6,000 bytes more
    assert browser.lines() == ["BYE Input queue full: more than 4096 bytes waiting."]
    assert browser.transport.disconnecting


def test_fragments_are_charged_and_capped(clock: Clock) -> None:
    """A fragment costs a sixteenth of a line; a message in more than
    MAX_FRAGMENTS frames (empty continuations too) closes with 1009."""
    factory = make_factory(clock, flood_burst=10, flood_rate=2.0)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    browser.lines()
    pieces = masked_frame(0x1, b"hel", fin=False) + masked_frame(0x0, b"lo")
    browser.send_raw(pieces * 3)  # a few short fragmented messages are fine
    assert browser.lines() == ["MSG #lobby alice hello"] * 3
    empty = masked_frame(0x0, b"", fin=False)
    browser.send_raw(masked_frame(0x1, b"x", fin=False) + empty * MAX_FRAGMENTS)
    assert browser.lines() == ["BYE Message in too many pieces: more than 64."]
    assert browser.closed == CLOSE_TOO_BIG and browser.transport.disconnecting


def test_caps_refuse_a_page_with_server_full(clock: Clock) -> None:
    """Past --max-per-ip another connection from the address is answered 503
    before its request is read: the open WebSocket holds the address's slot."""
    factory = make_factory(clock, max_per_ip=1)
    site = make_site(factory)
    FakeBrowser(site, port=50010).register("alice")
    second = FakeBrowser(site, port=50011)
    assert second.rejected == 503 and not second.accepted
    assert second.transport.disconnecting
    assert len(factory.connections) == 1


def test_forwarded_for_is_believed_only_behind_a_trusted_proxy(clock: Clock) -> None:
    """X-Forwarded-For counts (its last address) only with --web-trust-proxy."""
    forwarded = {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}
    factory = make_factory(clock)
    FakeBrowser(make_site(factory), headers=forwarded)
    assert web_connection(factory).host == "127.0.0.1"

    factory = make_factory(clock, max_per_ip=1)
    site = make_site(factory, proxy=True)
    FakeBrowser(site, headers=forwarded, port=50020)
    connection = web_connection(factory)
    assert connection.host == "203.0.113.7"
    assert connection.peer == "203.0.113.7:0 via 127.0.0.1:50020"
    # Two people behind the same proxy are two addresses; one twice is capped.
    assert FakeBrowser(site, headers={"X-Forwarded-For": "198.51.100.1"}).accepted
    again = FakeBrowser(site, headers=forwarded, port=50021)
    assert again.lines()[0].startswith("ERR server-full ")
    assert again.closed == CLOSE_TRY_LATER


def test_register_timeout_says_bye_and_closes(clock: Clock) -> None:
    """No nickname in time: BYE, a close frame, the TCP close."""
    browser = FakeBrowser(make_site(make_factory(clock, register_timeout=5.0)))
    browser.lines()
    clock.advance(5)
    assert browser.lines() == ["BYE No nickname chosen within 5 seconds."]
    assert browser.closed == 1000 and browser.transport.disconnecting


def test_the_server_pings_a_quiet_page(clock: Clock) -> None:
    """Every 30 s a ping keeps proxies from closing a quiet WebSocket."""
    browser = FakeBrowser(make_site(make_factory(clock)))
    browser.register("alice")
    clock.advance(PING_INTERVAL)
    browser.read()
    assert browser.pings == 1
    clock.advance(PING_INTERVAL)
    browser.read()
    assert browser.pings == 2


def test_a_page_closing_leaves_the_chat(clock: Clock) -> None:
    """The page's close frame is answered; the others see QUIT when TCP closes."""
    factory = make_factory(clock)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    _, bob_out = connect(factory, "bob")
    from wsproto.events import CloseConnection

    browser.send_raw(browser.ws.send(CloseConnection(code=1001)))
    browser.read()
    assert browser.closed == 1001  # the answer to ours
    browser.drop()
    assert lines(bob_out) == ["QUIT alice connection closed"]
    assert not [c for c in factory.connections if isinstance(c, WebConnection)]


def test_shutdown_says_bye_to_pages(clock: Clock) -> None:
    """close_all reaches web connections too: BYE, then the close frame."""
    factory = make_factory(clock)
    browser = FakeBrowser(make_site(factory))
    browser.register("alice")
    factory.close_all("The server is shutting down. See you soon.")
    assert browser.lines() == ["BYE The server is shutting down. See you soon."]
    assert browser.closed == 1000


def test_healthz_answers_503_once_the_daemon_shuts_down(clock: Clock) -> None:
    """/healthz on the web listener too: 503 and "stopping" from close_all on."""
    factory = make_factory(clock)
    site = make_site(factory)
    factory.close_all("The server is shutting down.")
    status, _headers, body = http_get(site, "/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "stopping"


def test_ids_on_a_page_are_frames_of_their_own(clock: Clock) -> None:
    """/ids on over the WebSocket: the ID line and the MSG it leads are two text
    messages, as every line is; the page's other lines stay frames too."""
    factory = ChatFactory(ServerConfig(), clock, MemoryHistory(clock))
    browser = FakeBrowser(make_site(factory))
    browser.send("/ids on")
    browser.register("alice")
    bob, _ = connect(factory, "bob")
    browser.lines()
    bob.dataReceived(b"hello\r\n")
    got = browser.lines()
    assert [text.split(" ")[0] for text in got] == ["ID", "MSG"]
    assert got[0].startswith("ID #lobby ") and got[1] == "MSG #lobby bob hello"
    bob.dataReceived(b"/part\r\n")
    assert browser.lines() == ["PART #lobby bob "]
