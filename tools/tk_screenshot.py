"""Take docs/tk-client.png: the desktop client in use, on a virtual X screen.

Run from the repository root:

    python tools/tk_screenshot.py [OUTPUT.png]

It starts Xvfb, a real `twistd -n chatd` on a loopback port, two real
`chatd-tk` windows (alice, whose window is photographed, and bob) and a plain
socket user (carol, as with telnet), lets them chat in #lobby and #games
(which carol runs: its topic beside its name, @carol and +bob among its
members), and saves the screen. Needs Xvfb (apt-get install -y xvfb) and Pillow
(pip install pillow), which grabs the X screen.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from daemon import LineClient, running_daemon  # noqa: E402
from PIL import ImageGrab  # noqa: E402
from tk_driver import Driver, Event, xvfb  # noqa: E402

WIDTH, HEIGHT = 960, 600


def main(output: Path) -> None:
    """Stage a short conversation and save alice's window as output."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        xvfb(WIDTH, HEIGHT) as display,
        running_daemon(["--listen", "tcp:0:interface=127.0.0.1"], Path(scratch)) as d,
    ):
        (port,) = d.ports.values()
        carol = LineClient.tcp(port)
        carol.register("carol")
        logs = Path(scratch)
        bob = Driver(display, port, "bob", logs / "bob.log", "+2000+0")
        size = f"{WIDTH}x{HEIGHT}+0+0"
        alice = Driver(display, port, "alice", logs / "alice.log", size)
        with bob, alice:
            bob.expect("registered")
            alice.expect("registered")

            def alice_sees(text: str) -> Event:
                return alice.expect("entry", lambda event: event.get("text") == text)

            carol.send("good morning, everyone!")
            alice_sees("good morning, everyone!")
            carol.send("/join #games")
            alice.command("type /join #games")
            alice_sees("You joined #games")
            bob.command("type /join #games")
            alice_sees("bob joined #games")
            # carol made #games, so she runs it: a topic, and bob voiced.
            carol.send("/topic go night: Friday, 8 pm")
            alice_sees("carol set the topic: go night: Friday, 8 pm")
            carol.send("/voice bob")
            alice_sees("carol gave bob a voice")
            carol.send("anyone up for a game of go tonight?")
            alice_sees("anyone up for a game of go tonight?")
            bob.command("type count me in! I'll bring the good board")
            alice_sees("count me in! I'll bring the good board")
            alice.command("type /me checks the calendar")
            alice_sees("checks the calendar")
            alice.command("type 19x19 at 8 pm, in the library?")
            alice_sees("19x19 at 8 pm, in the library?")
            carol.send("perfect, see you there")
            alice_sees("perfect, see you there")
            bob.command("select #lobby")
            bob.command("type has anyone seen my umbrella?")
            alice_sees("has anyone seen my umbrella?")
            bob.command("type /msg alice bring snacks? :)")
            alice_sees("bring snacks? :)")
            alice.command("draft sure, I'll bring tea")
            alice.command("sync")
            alice.expect("synced")
            ImageGrab.grab(xdisplay=display).crop((0, 0, WIDTH, HEIGHT)).save(output)
            for window in (alice, bob):
                window.command("close")
                window.expect("exited")
            for window in (alice, bob):
                if "Traceback" in window.errors():
                    raise SystemExit(window.errors())
    print(f"saved {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "tk-client.png")
