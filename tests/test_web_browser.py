"""A real browser: two headless Chromium pages and a line client in one chat.

Skipped, with the reason, where Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import missing
from daemon import WAIT, Daemon, LineClient

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

LOOPBACK = "tcp:0:interface=127.0.0.1"
XSS = '<img src=x onerror="window.xss=1"><script>window.xss=2</script>'
RECONNECT_WAIT = 40.0  # back-off: 1 + 2 + 4 + 8 s, and twistd's start
# How often wait_until asks (Selenium's default, 0.5 s, would add up to half a
# second to every wait for what the page shows within milliseconds).
POLL = 0.05
# The line clients beside the pages type faster than people: past the default
# burst of 10 lines, the flood limit (2 lines a second; test_limits.py tests it)
# would hold each later line half a second. Flood control stays on, and the page
# still paces itself under the default limits (app.js, the pacer).
TYPING_SPEED = ["--flood-burst", "100"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(tmp_path: Path, web_port: int) -> Daemon:
    """The daemon the page tests run: line and web listeners, a database."""
    args = ["--listen", LOOPBACK, "--web", f"tcp:{web_port}:interface=127.0.0.1"]
    args += ["--database", str(tmp_path / "chat.sqlite3"), *TYPING_SPEED]
    daemon = Daemon(args, tmp_path)
    daemon.wait_listening(2)
    return daemon


def wait_until(
    driver: WebDriver, check: Callable[[], object], timeout: float = WAIT
) -> None:
    """Wait until check() is true, asking every POLL seconds; fail after timeout."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=POLL).until(lambda _: check())


def status_is(driver: WebDriver, text: str) -> Callable[[], bool]:
    """A check that the page's status line reads text."""
    from selenium.webdriver.common.by import By

    return lambda: bool(driver.find_element(By.ID, "status").text == text)


def log_text(driver: WebDriver) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "log").text)


def sees(driver: WebDriver, text: str, timeout: float = WAIT) -> None:
    """Wait until the conversation on screen shows text."""
    wait_until(driver, lambda: text in log_text(driver), timeout)


def say(driver: WebDriver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.ID, "say").send_keys(text + Keys.ENTER)


def open_conversation(driver: WebDriver, key: str) -> None:
    from selenium.webdriver.common.by import By

    wait_until(
        driver,
        lambda: driver.find_elements(By.CSS_SELECTOR, f'.conv[data-key="{key}"]'),
    )
    driver.find_element(By.CSS_SELECTOR, f'.conv[data-key="{key}"]').click()


def register(driver: WebDriver, port: int, nick: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"http://127.0.0.1:{port}/")
    driver.find_element(By.ID, "nick").send_keys(nick + Keys.ENTER)
    wait_until(driver, lambda: driver.find_element(By.ID, "chat").is_displayed())
    wait_until(driver, lambda: "#lobby" in driver.find_element(By.ID, "title").text)


@pytest.fixture
def pages(page: WebDriver, second: WebDriver) -> tuple[WebDriver, WebDriver]:
    """Two windows, two people (conftest.py's page and second)."""
    return page, second


def script_errors(driver: WebDriver) -> list[str]:
    """What the page logged as errors, less the refused reconnects."""
    entries = driver.get_log("browser")  # type: ignore[attr-defined]
    return [
        entry["message"]
        for entry in entries
        if entry["level"] == "SEVERE"
        and "WebSocket connection to" not in entry["message"]
    ]


def test_two_pages_and_a_line_client_chat(
    tmp_path: Path, pages: tuple[WebDriver, WebDriver]
) -> None:
    """Pages and nc share #lobby, a private message, #games; markup stays text;
    a dropped server comes back and the pages reconnect and rejoin by themselves."""
    from selenium.webdriver.common.by import By

    alice, bob = pages
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(alice, web_port, "alice")
        register(bob, web_port, "bob")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")

        # #lobby: every one sees every one.
        say(alice, "hello from alice")
        sees(bob, "hello from alice")
        assert carol.expect("MSG ") == "MSG #lobby alice hello from alice"
        carol.send("hi pages, carol here")
        sees(alice, "hi pages, carol here")
        sees(bob, "hi pages, carol here")
        say(bob, "/me waves")
        sees(alice, "* bob waves")
        assert (
            alice.find_element(By.CSS_SELECTOR, ".line.action .text").text
            == "* bob waves"
        )

        # Markup from the wire is text: shown as typed, nothing made, nothing run.
        carol.send(XSS)
        sees(alice, XSS)
        sees(bob, XSS)
        for page in pages:
            assert not page.find_elements(By.CSS_SELECTOR, "#log img, #log script")
            assert page.execute_script("return window.xss === undefined")

        # A private message opens a conversation, with an unread count.
        say(bob, "/msg alice a secret for alice")
        wait_until(
            alice,
            lambda: alice.find_elements(
                By.CSS_SELECTOR, '.conv[data-key="bob"] .badge'
            ),
        )
        assert (
            alice.find_element(By.CSS_SELECTOR, '.conv[data-key="bob"] .badge').text
            == "1"
        )
        open_conversation(alice, "bob")
        sees(alice, "a secret for alice")
        say(alice, "got it")  # a plain line in a private conversation is /msg
        sees(bob, "got it")

        # #games: opened from the side form on one page, by command on the other.
        say(alice, "/join #games")
        wait_until(alice, lambda: alice.find_element(By.ID, "title").text == "#games")
        bob.find_element(By.ID, "join-room").send_keys("games\n")
        wait_until(bob, lambda: bob.find_element(By.ID, "title").text == "#games")
        carol.send("/join #games")
        carol.expect("JOIN #games carol")
        wait_until(
            alice, lambda: "carol" in alice.find_element(By.ID, "member-list").text
        )
        say(alice, "who plays chess?")
        sees(bob, "who plays chess?")
        assert carol.expect("MSG ") == "MSG #games alice who plays chess?"
        carol.send("me!")
        sees(alice, "me!")
        sees(bob, "me!")

        # The server drops; it comes back on the same port; the pages come back.
        daemon.kill()
        carol.close()
        wait_until(
            alice, lambda: "Reconnecting" in alice.find_element(By.ID, "status").text
        )
        daemon = start(tmp_path, web_port)
        for page, nick in ((alice, "alice"), (bob, "bob")):
            wait_until(page, status_is(page, f"Connected as {nick}"), RECONNECT_WAIT)
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/join #games")
        carol.expect("JOIN #games carol")
        # Both pages rejoined #games by themselves.
        carol.send("/who #games")
        members = carol.expect("USERS #games ")
        assert members == "USERS #games alice bob carol", members
        carol.send("welcome back")
        sees(alice, "welcome back")
        sees(bob, "welcome back")
        for page in pages:
            assert script_errors(page) == []
    finally:
        daemon.kill()
