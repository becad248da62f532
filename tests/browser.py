"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# As the machine's notes say: no GPU, no QUIC, and none of Chromium's own
# network traffic (the machine has no way out, and it would only be refused).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def missing() -> str | None:
    """Why a browser cannot be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            return f"{path} is missing (apt-get install {package}; .ci/run does)"
    return None


def chromium(profile: Path, width: int = 1200, height: int = 760) -> WebDriver:
    """Start a headless Chromium with its own empty profile; skip if there is none."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else "chromedriver"
    return webdriver.Chrome(service=Service(driver), options=options)


class Windows:
    """Headless Chromium windows kept for the whole run, one per name (a person:
    each has a profile of its own), made like new for each test that takes one.

    Starting Chromium costs about a second; a test gets a window that has
    left the last test's page: on about:blank, its storage and cookies cleared,
    its console log read away. A window that cannot be reset is quit and
    started again.
    """

    def __init__(self, profiles: Path) -> None:
        self.profiles = profiles
        self.open: dict[str, WebDriver] = {}

    def take(self, name: str) -> WebDriver:
        """The window called name, on about:blank with nothing kept; skip if
        there is no browser (chromium())."""
        driver = self.open.get(name)
        if driver is None:
            driver = self.open[name] = chromium(self.profiles / f"{name}-profile")
        driver.get_log("browser")  # type: ignore[attr-defined]  # what it said before
        return driver

    def give_back(self, name: str) -> None:
        """Leave the test's page and forget it; quit the window if that fails."""
        driver = self.open.get(name)
        if driver is None:
            return
        try:
            forget(driver)
        except Exception:
            del self.open[name]
            driver.quit()

    def close(self) -> None:
        """Quit every window."""
        while self.open:
            self.open.popitem()[1].quit()


def forget(driver: WebDriver) -> None:
    """Close every tab but the first and leave its page for about:blank, after
    clearing the page's storage (per origin: the next test's daemon listens on
    another port, another origin, but may get this one again) and the cookies."""
    handles = driver.window_handles
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])
    if driver.current_url.startswith("http"):
        driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get("about:blank")
    driver.delete_all_cookies()
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_violations(driver: WebDriver) -> list[str]:
    """Run axe-core on the page as it is now: its serious and critical violations.

    axe-core comes from npm (`npm install --prefix tests/axe`; .ci/run does).
    Without it this checks nothing, except where CI=true: there it fails.
    """
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{AXE} is missing: npm install --prefix tests/axe")
        return []
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then((r) => done(r.violations.map((v) => ["
        "  v.impact, v.id, v.nodes.map((n) => n.target.join(' ')).join(', ')])))"
        ".catch((e) => done([['critical', 'axe failed', String(e)]]));"
    )
    return [
        f"{impact} {rule}: {where}"
        for impact, rule, where in found
        if impact in SERIOUS
    ]
