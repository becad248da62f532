"""The Lounge in headless Chromium against a running chatd, with a line-door user.

The Lounge must run already, set up as docs/clients.md says (private mode, a
user, its default network this chatd's IRC port, joining #lobby). This logs in
to it with Selenium, connects if The Lounge asks, then checks that a message
and a /me typed in The Lounge reach a line-door user (carol, on a socket), that
hers reach The Lounge, that her private message opens a query window and that
her /away shows there (The Lounge shows others' away only in a query window).
One line per check; exit 1 if any failed:

    /work/venv/bin/python -m bench.clients.thelounge_check \
        --lounge http://127.0.0.1:29000/ --line 25601 --user louuser --password ...
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from bench.clients.line_user import LineUser

WAIT = 20.0  # seconds a check waits


def browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1200,900")
    options.binary_location = "/usr/bin/chromium"
    # The driver named: Selenium Manager would look for one on the network.
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def check(what: str, seen: Callable[[], str], text: str) -> bool:
    """Wait for text in seen(); print the check's result."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if text in seen():
            print(f"ok    {what}")
            return True
        time.sleep(0.2)
    print(f"FAIL  {what}: no {text!r}")
    return False


def open_window(driver: WebDriver, name: str) -> None:
    """Click the sidebar's channel or query called name."""
    for item in driver.find_elements(By.CSS_SELECTOR, ".channel-list-item"):
        if item.text.strip().split("\n")[0] == name:
            item.click()
            return


def run(args: argparse.Namespace) -> bool:
    driver = browser()
    wait = WebDriverWait(driver, WAIT)
    page = lambda: driver.find_element(By.TAG_NAME, "body").text  # noqa: E731
    try:
        driver.get(args.lounge)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=username]"))
        time.sleep(1)  # the form is drawn before it takes keys
        driver.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys(
            args.user
        )
        password = driver.find_element(By.CSS_SELECTOR, "input[type=password]")
        password.send_keys(args.password + Keys.ENTER)
        time.sleep(2)
        if "/connect" in driver.current_url:  # a user with no network yet
            driver.find_element(By.CSS_SELECTOR, "#connect button[type=submit]").click()
        try:
            wait.until(lambda d: "#lobby" in page())
        except TimeoutException:
            print("FAIL  The Lounge shows no #lobby")
            return False
        print("ok    The Lounge logs in and is in #lobby")
        carol = LineUser(args.line, "carol")
        results = [check("carol joins", carol.read, "WELCOME carol")]
        open_window(driver, "#lobby")
        time.sleep(1)
        box = driver.find_element(By.ID, "input")
        box.send_keys("hello from the lounge" + Keys.ENTER)
        box.send_keys("/me waves from the lounge" + Keys.ENTER)
        results.append(check("Lounge -> line", carol.read, "hello from the lounge"))
        results.append(check("Lounge /me", carol.read, "waves from the lounge"))
        carol.send("hi lounge, carol on nc")
        carol.send("/me nods")
        results.append(check("line -> Lounge", page, "hi lounge, carol on nc"))
        results.append(check("line /me", page, "carol nods"))
        carol.send(f"/msg {args.nick} a private word")
        results.append(check("line /msg: a query", page, "carol"))
        open_window(driver, "carol")
        results.append(check("line /msg", page, "a private word"))
        carol.send("/away out for a walk")
        results.append(check("line /away in the query", page, "out for a walk"))
        driver.save_screenshot(args.screenshot)
        carol.send("/quit")
        return all(results)
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lounge", default="http://127.0.0.1:29000/")
    parser.add_argument("--line", type=int, default=25601, help="line door port")
    parser.add_argument("--user", default="louuser")
    parser.add_argument("--password", default="lounge-pass-1")
    parser.add_argument("--nick", default="lounge", help="The Lounge's IRC nick")
    parser.add_argument("--screenshot", default="/tmp/thelounge-check.png")
    sys.exit(0 if run(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
