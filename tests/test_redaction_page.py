"""Deleting messages on the web page (docs/protocol.md, Deleting messages).

Headless Chromium (tests/browser.py) against the real daemon, beside a line
client; skipped, with the reason, where Chromium, its driver or Selenium is
missing.
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
    sees,
    start,
    wait_until,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def line_of(driver: WebDriver, text: str) -> str:
    """The data-id of the shown message whose text is text ("" if none)."""
    found = driver.execute_script(
        "const items = [...document.querySelectorAll('#log li[data-id]')];"
        "const item = items.find((li) => li.querySelector('.text')"
        "  && li.querySelector('.text').textContent === arguments[0]);"
        "return item ? item.dataset.id : '';",
        text,
    )
    return str(found)


def test_an_operator_deletes_from_the_page_and_sees_deletions(
    tmp_path: Path, page: WebDriver
) -> None:
    """ivy (web) runs #dev: carol's (nc) message gets a delete button; a click
    deletes it (carol, with /ids on, gets DELETED) and the page greys it;
    carol deleting her own message greys it on the page too."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(page, web_port, "ivy")
        say(page, "/join #dev")
        wait_until(page, lambda: page.find_element(By.ID, "title").text == "#dev")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/ids on")
        carol.send("/join #dev")
        carol.expect("JOIN #dev carol")
        carol.send("my address is 10.1.2.3")
        spam = carol.expect("ID #dev ").split()[2]
        carol.send("and a typo")
        typo = carol.expect("ID #dev ").split()[2]
        sees(page, "and a typo")
        assert line_of(page, "my address is 10.1.2.3") == spam
        item = page.find_element(By.CSS_SELECTOR, f'li[data-id="{spam}"]')
        ActionChains(page).move_to_element(item).perform()
        button = item.find_element(By.CSS_SELECTOR, "button.delete")
        wait_until(page, button.is_displayed)
        button.click()
        assert carol.expect("DELETED ") == f"DELETED #dev {spam} ivy "
        sees(page, "message deleted by you")
        assert "10.1.2.3" not in page.find_element(By.ID, "log").text
        carol.send(f"/delete #dev {typo} oops")
        carol.expect("INFO Deleted")
        sees(page, "message deleted by carol: oops")
        greyed = page.find_elements(By.CSS_SELECTOR, "li.deleted")
        assert len(greyed) == 2
        assert axe_violations(page) == []
        assert script_errors(page) == []
        carol.close()
    finally:
        daemon.kill()
