"""Take docs/web-tags.png: the page with typing, reactions and a reply, in Chromium.

Run from the repository root:

    python tools/web_tags_screenshot.py [OUTPUT.png]

It starts a real `twistd -n chatd --web ... --irc ...` on loopback ports, two
pages in Debian's headless Chromium driven by Selenium (alice, whose page is
photographed, and bob), a line user (carol, with /ids on and /tags on) and an
IRC user (dave, whose reaction is a TAGMSG), and stages #lobby: carol asks, bob
reacts from the page's picker, dave reacts from IRC, carol replies to bob, and
bob starts typing. Needs chromium, chromium-driver, Selenium, and an emoji font
(apt-get install -y fonts-noto-color-emoji) for the reactions to show.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium  # noqa: E402
from daemon import WAIT, LineClient, running_daemon  # noqa: E402
from test_web_browser import register, say, sees, wait_until  # noqa: E402

WIDTH, HEIGHT = 1100, 620
LOOPBACK = "tcp:0:interface=127.0.0.1"


def main(output: Path) -> None:
    """Stage typing, reactions and a reply in #lobby; save alice's page as output."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as scratch:
        args = ["--listen", LOOPBACK, "--web", LOOPBACK, "--irc", LOOPBACK]
        args += ["--database", ":memory:"]
        with running_daemon(args, Path(scratch), listeners=3) as daemon:
            carol = LineClient.tcp(daemon.ports[LOOPBACK])
            carol.send("/ids on")
            carol.send("/tags on")
            carol.register("carol")
            dave = socket.create_connection(
                ("127.0.0.1", daemon.ports["irc " + LOOPBACK]), timeout=WAIT
            )
            dave.sendall(
                b"CAP REQ :message-tags\r\nNICK dave\r\nUSER dave 0 * :dave\r\n"
                b"CAP END\r\nJOIN #lobby\r\n"
            )
            alice = chromium(Path(scratch) / "alice", WIDTH, HEIGHT)
            bob = chromium(Path(scratch) / "bob", WIDTH, HEIGHT)
            try:
                register(alice, daemon.ports["web " + LOOPBACK], "alice")
                register(bob, daemon.ports["web " + LOOPBACK], "bob")
                carol.expect("JOIN #lobby bob")
                carol.send("who is up for a game of go tonight? 8 pm at the club")
                asked = carol.expect("ID #lobby ").split(" ")[2]
                sees(bob, "who is up for a game of go tonight?")
                line = bob.find_elements(By.CSS_SELECTOR, "#log .line.msg")[-1]
                ActionChains(bob).move_to_element(line).perform()
                line.find_element(By.CSS_SELECTOR, ".tools button").click()
                bob.find_element(By.CSS_SELECTOR, "#react-picker button").click()
                carol.expect("REACT #lobby bob")
                dave.sendall(
                    f"@+draft/react=🎉;+draft/reply={asked} TAGMSG #lobby\r\n".encode()
                )
                carol.expect("REACT #lobby dave")
                say(bob, "count me in! I'll bring the good board")
                answered = ""  # the id of bob's line: the ID line just before it
                while not (text := carol.read_line()).startswith("MSG #lobby bob"):
                    if text.startswith("ID #lobby "):
                        answered = text.split(" ")[2]
                carol.send(f"/reply #lobby {answered} great, you take black then")
                sees(alice, "great, you take black then")
                bob.find_element(By.ID, "say").send_keys("on my way")
                wait_until(
                    alice,
                    lambda: "bob is typing" in alice.find_element(By.ID, "typing").text,
                )
                alice.save_screenshot(str(output))
            finally:
                alice.quit()
                bob.quit()
                dave.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "web-tags.png")
