"""The page on several devices (issue 26; chatd/web/static/devices.js).

Two browser windows log in as ivy with her password at the first screen: both
are the one user ivy (the second attaches); a message typed in one shows in
both, carol on a line connection sees one ivy; AWAY shows beside a name; ID
lines are kept as the message's data-id, never shown. Headless Chromium
(tests/browser.py) against the real daemon; skipped where it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import axe_violations, missing
from daemon import LineClient
from test_web_browser import (
    LOOPBACK,
    free_port,
    log_text,
    say,
    script_errors,
    sees,
    start,
    wait_until,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

PASSWORD = "horsebattery9"


@pytest.fixture
def laptop(page: WebDriver) -> WebDriver:
    """One device's window (conftest.py's page)."""
    return page


@pytest.fixture
def phone(second: WebDriver) -> WebDriver:
    """Another device's window, a profile of its own (conftest.py's second)."""
    return second


def log_in(driver: WebDriver, port: int, nick: str, password: str) -> None:
    """The first screen: the nickname and the password, then Join."""
    from selenium.webdriver.common.by import By

    driver.get(f"http://127.0.0.1:{port}/")
    driver.find_element(By.ID, "nick").send_keys(nick)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "nick-go").click()


def in_chat(driver: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    wait_until(driver, lambda: driver.find_element(By.ID, "chat").is_displayed())
    wait_until(driver, lambda: "#lobby" in driver.find_element(By.ID, "title").text)


def message_ids(driver: WebDriver, text: str) -> list[str]:
    """The data-id of each line on screen whose text holds text."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#log li.line')]"
        ".filter((li) => li.textContent.includes(arguments[0]))"
        ".map((li) => li.dataset.id || '')",
        text,
    )
    return [str(item) for item in found]


def test_two_windows_logged_in_with_a_password_are_one_user(
    tmp_path: Path, laptop: WebDriver, phone: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        setup = LineClient.tcp(daemon.ports[LOOPBACK])
        setup.register("ivy")
        setup.send(f"/register {PASSWORD} {PASSWORD}")
        setup.expect("INFO ")
        setup.send("/quit")
        setup.expect("BYE")
        setup.close()
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")

        # A wrong password: said on the first screen, nothing joined.
        log_in(laptop, web_port, "ivy", "not-my-password")
        wait_until(
            laptop,
            lambda: "Wrong password" in laptop.find_element(By.ID, "nick-error").text,
        )
        assert not laptop.find_element(By.ID, "chat").is_displayed()
        laptop.find_element(By.ID, "password").send_keys(PASSWORD)
        laptop.find_element(By.ID, "nick-go").click()
        in_chat(laptop)
        carol.expect("JOIN #lobby ivy")
        wait_until(
            laptop,
            lambda: laptop.find_elements(By.CSS_SELECTOR, '.member[data-nick="carol"]'),
        )

        log_in(phone, web_port, "ivy", PASSWORD)
        in_chat(phone)
        wait_until(
            phone,
            lambda: phone.find_elements(By.CSS_SELECTOR, '.member[data-nick="carol"]'),
        )
        assert not laptop.find_element(By.ID, "register").is_displayed()
        assert not phone.find_element(By.ID, "register").is_displayed()

        # carol sees one ivy, and nobody joined again.
        carol.send("/who #lobby")
        users = carol.expect("USERS #lobby").split()[2:]
        assert sorted(users) == ["carol", "ivy"]

        # Typed on the laptop: shown on both, once to carol.
        say(laptop, "from the laptop")
        assert carol.expect("MSG #lobby ivy") == "MSG #lobby ivy from the laptop"
        sees(phone, "from the laptop")
        sees(laptop, "from the laptop")
        # The ID line is kept with the message, never shown as text.
        wait_until(phone, lambda: message_ids(phone, "from the laptop") != [""])
        assert message_ids(phone, "from the laptop") == message_ids(
            laptop, "from the laptop"
        )
        assert "ID #lobby" not in log_text(phone)
        carol.send("hello ivy")
        sees(phone, "hello ivy")
        sees(laptop, "hello ivy")

        # carol goes away: her name is dimmed, with the reason as its title.
        carol.send("/away at lunch")
        selector = '.member.away[data-nick="carol"]'
        wait_until(laptop, lambda: laptop.find_elements(By.CSS_SELECTOR, selector))
        wait_until(phone, lambda: phone.find_elements(By.CSS_SELECTOR, selector))
        title = laptop.find_element(By.CSS_SELECTOR, selector).get_attribute("title")
        assert title == "carol is away: at lunch"
        assert "AWAY" not in log_text(laptop)
        # ivy's /away on the phone: both her windows say so; carol gets AWAY.
        say(phone, "/away on the train")
        assert carol.expect("AWAY ivy") == "AWAY ivy on the train"
        sees(laptop, "You are marked away: on the train")
        sees(phone, "You are marked away: on the train")
        carol.send("/away")
        wait_until(laptop, lambda: not laptop.find_elements(By.CSS_SELECTOR, selector))
        assert axe_violations(laptop) == []

        stored = laptop.execute_script("return JSON.stringify(localStorage)")
        assert PASSWORD not in stored
        # A reload asks for the password again (it is not kept).
        laptop.refresh()
        wait_until(
            laptop,
            lambda: "password" in laptop.find_element(By.ID, "login-status").text,
        )
        assert laptop.find_element(By.ID, "login").is_displayed()
        assert script_errors(laptop) == [] and script_errors(phone) == []
        carol.close()
    finally:
        daemon.kill()


def test_the_page_shows_who_is_already_away_from_its_join(
    tmp_path: Path, laptop: WebDriver
) -> None:
    """carol went away before the page came: her name is dimmed from the page's
    JOIN #lobby on (docs/protocol.md, Away on join), dave's is not. A new
    connection forgets what the last one heard: a stale away of dave's is gone
    after the page connects again, carol's is told again."""
    from selenium.webdriver.common.by import By

    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/away at lunch")
        carol.expect("AWAY carol")
        dave = LineClient.tcp(daemon.ports[LOOPBACK])
        dave.register("dave")
        log_in(laptop, web_port, "ivy", "")
        in_chat(laptop)
        away = '.member.away[data-nick="carol"]'
        wait_until(laptop, lambda: laptop.find_elements(By.CSS_SELECTOR, away))
        title = laptop.find_element(By.CSS_SELECTOR, away).get_attribute("title")
        assert title == "carol is away: at lunch"
        here = '.member[data-nick="dave"]'
        wait_until(laptop, lambda: laptop.find_elements(By.CSS_SELECTOR, here))
        stale = '.member.away[data-nick="dave"]'
        assert not laptop.find_elements(By.CSS_SELECTOR, stale)
        # What an earlier connection heard, then the connection drops.
        laptop.execute_script(
            "devices.away.set('dave', 'stale'); renderMembers(); state.socket.close();"
        )
        dave.expect("QUIT ivy")
        dave.expect("JOIN #lobby ivy")  # the page is back
        wait_until(laptop, lambda: laptop.find_elements(By.CSS_SELECTOR, here))
        wait_until(laptop, lambda: laptop.find_elements(By.CSS_SELECTOR, away))
        wait_until(laptop, lambda: not laptop.find_elements(By.CSS_SELECTOR, stale))
        assert script_errors(laptop) == []
        carol.close()
        dave.close()
    finally:
        daemon.kill()
