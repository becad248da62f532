"""Take docs/web-client.png and docs/web-phone.png: the page in use, in Chromium.

Run from the repository root:

    python tools/web_screenshot.py [OUTPUT.png [PHONE.png]]

It starts a real `twistd -n chatd --web ...` on loopback ports, two pages in
Debian's headless Chromium driven by Selenium (alice, whose page is
photographed, and bob) and a plain socket user (carol, as with telnet), lets
them chat in #lobby, #games (carol runs it: a topic, a voice) and privately, and
saves alice's page, then the same page at a phone's size (390x844). Needs
chromium and chromium-driver (apt-get install -y chromium chromium-driver)
and Selenium (pip install '.[test]').
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium  # noqa: E402
from daemon import LineClient, running_daemon  # noqa: E402
from test_web_browser import (  # noqa: E402
    register,
    say,
    sees,
    wait_until,
)

WIDTH, HEIGHT = 1100, 720
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
LOOPBACK = "tcp:0:interface=127.0.0.1"


def main(output: Path, phone: Path) -> None:
    """Stage a short conversation; save alice's page as output, then as phone."""
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as scratch:
        args = ["--listen", LOOPBACK, "--web", LOOPBACK, "--database", ":memory:"]
        with running_daemon(args, Path(scratch), listeners=2) as daemon:
            line_port, web_port = (
                daemon.ports[LOOPBACK],
                daemon.ports["web " + LOOPBACK],
            )
            carol = LineClient.tcp(line_port)
            carol.register("carol")
            carol.send("good morning, everyone!")
            carol.send("/join #games")
            carol.expect("JOIN #games carol")
            carol.send("/topic #games Go night: 8 pm, bring your own stones")
            carol.send("the board is set up, who's first?")
            alice = chromium(Path(scratch) / "alice", WIDTH, HEIGHT)
            bob = chromium(Path(scratch) / "bob", WIDTH, HEIGHT)
            try:
                register(bob, web_port, "bob")
                register(alice, web_port, "alice")
                sees(alice, "good morning, everyone!")  # the backfill
                say(bob, "/msg alice are you joining the go game tonight?")
                say(alice, "/join #games")
                wait_until(
                    alice, lambda: "#games" in alice.find_element(By.ID, "title").text
                )
                say(bob, "/join #games")
                sees(alice, "bob joined")
                carol.send("/voice #games bob")
                sees(alice, "carol gave bob a voice")
                carol.send("anyone up for a game of go tonight? https://example.org/go")
                sees(alice, "anyone up for a game of go tonight?")
                say(bob, "count me in! I'll bring the good board")
                sees(alice, "count me in!")
                say(alice, "/me brings tea <and> biscuits")
                sees(alice, "brings tea")
                carol.send("alice: black or white?")
                sees(alice, "black or white?")
                carol.send("/join #lobby")
                say(bob, "/join #lobby")
                say(bob, "anyone seen carol's new board?")
                wait_until(
                    alice,
                    lambda: alice.find_elements(By.CSS_SELECTOR, ".conv .badge"),
                )
                alice.find_element(By.ID, "say").send_keys("white, please")
                alice.save_screenshot(str(output))
                alice.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
                alice.save_screenshot(str(phone))
            finally:
                alice.quit()
                bob.quit()
    print(f"wrote {output} and {phone}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "web-client.png",
        Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "web-phone.png",
    )
