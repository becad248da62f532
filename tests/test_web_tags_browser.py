"""The page in Chromium: typing, reactions and replies (docs/protocol.md, Typing,
reactions and replies), between two pages and a line client."""

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
    pages,
    register,
    say,
    script_errors,
    sees,
    start,
    wait_until,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")
__all__ = ["pages"]  # the fixture, used by name


def test_a_page_reacts_replies_and_shows_typing(
    tmp_path: Path, pages: tuple[WebDriver, WebDriver]
) -> None:
    """bob reacts from the picker and replies from a message's Reply button;
    alice sees the reaction under the message, the reply with its parent quoted,
    and "bob is typing…" while bob types; carol (/tags on) gets REACT and REPLY."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    alice, bob = pages
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(alice, web_port, "alice")
        register(bob, web_port, "bob")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.send("/tags on")
        carol.register("carol")
        say(alice, "go tonight at eight?")
        sees(bob, "go tonight at eight?")
        line = bob.find_elements(By.CSS_SELECTOR, "#log .line.msg")[-1]
        ActionChains(bob).move_to_element(line).perform()
        react, reply = line.find_elements(By.CSS_SELECTOR, ".tools button")
        react.click()
        bob.find_element(By.CSS_SELECTOR, "#react-picker button").click()
        assert carol.expect("REACT ").startswith("REACT #lobby bob ")
        wait_until(
            alice,
            lambda: alice.find_elements(By.CSS_SELECTOR, "#log .reaction"),
        )
        shown = alice.find_element(By.CSS_SELECTOR, "#log .reaction")
        assert shown.text == "👍 1" and shown.get_attribute("title") == "bob"
        ActionChains(bob).move_to_element(line).perform()
        reply.click()
        say(bob, "count me in")
        assert carol.expect("REPLY ").startswith("REPLY #lobby ")
        assert carol.expect("MSG ") == "MSG #lobby bob count me in"
        sees(alice, "count me in")
        quote = alice.find_elements(By.CSS_SELECTOR, "#log .quote")[-1]
        assert quote.text == "↪ alice: go tonight at eight?"
        bob.find_element(By.ID, "say").send_keys("on my way")
        wait_until(
            alice,
            lambda: alice.find_element(By.ID, "typing").text == "bob is typing…",
        )
        assert "TYPING" not in log_text(alice)
        # axe-core: nothing serious with reactions, a reply and typing shown,
        # and with the picker open.
        assert axe_violations(alice) == []
        line = bob.find_elements(By.CSS_SELECTOR, "#log .line.msg")[-1]
        ActionChains(bob).move_to_element(line).perform()
        line.find_element(By.CSS_SELECTOR, ".tools button").click()
        assert axe_violations(bob) == []
        assert script_errors(alice) == [] and script_errors(bob) == []
        carol.close()
    finally:
        daemon.kill()
