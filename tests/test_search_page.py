"""Searching from the page (docs/protocol.md, Searching history): the search
box in the top bar, the results above the log, a result shown in context.

Headless Chromium (tests/browser.py) against the real daemon, with a line
client that talks first; skipped, with the reason, where Chromium, its
driver or Selenium is missing.
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
    register,
    say,
    script_errors,
    start,
    wait_until,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def texts(driver: WebDriver, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [str(e.text) for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_the_page_searches_and_shows_a_result_in_context(
    tmp_path: Path, page: WebDriver
) -> None:
    """Words typed in the search box come back as results, newest first, from
    the rooms ivy is in and not from a secret room she is not in (not even
    with "in #hush"); "Show in context" puts the lines before a result above
    it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/join #dev")
        carol.expect("JOIN #dev carol")
        for text in (
            "before one",
            "before two",
            "the deploy link: https://x.example/d",
        ):
            carol.send(text)
        carol.send("/join #hush")
        carol.expect("JOIN #hush carol")
        carol.send("/mode #hush +s")
        carol.send("deploy in secret")
        carol.send("/history #hush 1")
        carol.expect("ENDHISTORY #hush ")
        register(page, web_port, "ivy")
        say(page, "/join #dev")
        wait_until(page, lambda: page.find_element(By.ID, "title").text == "#dev")
        say(page, "the deploy went fine")
        box = page.find_element(By.ID, "search-words")
        box.send_keys("deploy" + Keys.ENTER)
        wait_until(page, lambda: len(texts(page, "#search-list .result")) == 2)
        results = texts(page, "#search-list .result .text")
        assert results == [
            "the deploy went fine",
            "the deploy link: https://x.example/d",
        ]
        assert "2 messages" in page.find_element(By.ID, "search-status").text
        assert axe_violations(page) == []  # the results, as every screen
        page.find_elements(By.CSS_SELECTOR, "#search-list .result .context")[1].click()
        wait_until(page, lambda: texts(page, "#search-list .lines.context .text"))
        assert texts(page, "#search-list .lines.context .text") == [
            "before one",
            "before two",
            "the deploy link: https://x.example/d",
        ]
        box.clear()
        box.send_keys('" ( *' + Keys.ENTER)  # nothing to search for: refused
        status = page.find_element(By.ID, "search-status")
        wait_until(page, lambda: "nothing to search for" in status.text)
        box.clear()
        box.send_keys("deploy in #hush" + Keys.ENTER)  # a secret room of others
        wait_until(page, lambda: "Nothing found" in status.text)
        assert "in #hush" in status.text
        page.find_element(By.ID, "search-close").click()
        assert not page.find_element(By.ID, "search-results").is_displayed()
        assert script_errors(page) == []
        carol.close()
    finally:
        daemon.kill()
