"""The page in use (issue 24): rooms that are run, a reload, typing.

Headless Chromium (tests/browser.py) against the real daemon, beside a line
client; skipped, with the reason, where Chromium, its driver or Selenium is
missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import axe_violations, chromium, missing
from daemon import WAIT, Daemon, LineClient
from test_web_browser import (
    LOOPBACK,
    TYPING_SPEED,
    free_port,
    open_conversation,
    register,
    say,
    script_errors,
    sees,
    start,
    wait_until,
)
from tk_driver import Driver, NoXServer, xvfb

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def text_of(driver: WebDriver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return str(found[0].text) if found else ""


def click(driver: WebDriver, selector: str) -> None:
    from selenium.webdriver.common.by import By

    wait_until(
        driver,
        lambda: any(
            e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, selector)
        ),
    )
    driver.find_element(By.CSS_SELECTOR, selector).click()


def hidden(element: WebElement) -> Callable[[], bool]:
    """A check that element is not shown."""
    return lambda: not element.is_displayed()


def mark_of(driver: WebDriver, nick: str) -> str:
    return text_of(driver, f'.member[data-nick="{nick}"] .mark')


def joined(driver: WebDriver, room: str) -> None:
    say(driver, f"/join {room}")
    wait_until(driver, lambda: text_of(driver, "#title") == room)


def test_an_operator_runs_a_room_from_the_page(
    tmp_path: Path, page: WebDriver, second: WebDriver
) -> None:
    """ivy (web) opens #dev and runs it: her topic, voice, kick and ban reach
    carol (nc) as TOPIC, VOICE, KICK, BAN; wendy (web) sees them in words, the
    topic under the room's name and the marks beside the names; kicked, her
    #dev tab stays, greyed, with the reason."""
    from selenium.webdriver.common.by import By

    ivy, wendy = page, second
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(ivy, web_port, "ivy")
        register(wendy, web_port, "wendy")
        joined(ivy, "#dev")
        joined(wendy, "#dev")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/join #dev")
        carol.expect("JOIN #dev carol")
        wait_until(ivy, lambda: mark_of(ivy, "ivy") == "@")
        wait_until(wendy, lambda: "carol" in text_of(wendy, "#member-list"))
        assert mark_of(wendy, "ivy") == "@"
        assert mark_of(wendy, "wendy") == ""
        # Only those allowed may edit the topic: members, until it is +t.
        wait_until(ivy, lambda: ivy.find_element(By.ID, "topic-edit").is_displayed())
        wait_until(
            wendy, lambda: wendy.find_element(By.ID, "topic-edit").is_displayed()
        )
        say(ivy, "/mode +t")
        assert carol.expect("MODE ") == "MODE #dev ivy +t "
        sees(wendy, "ivy kept the topic to operators")
        assert not wendy.find_element(By.ID, "topic-edit").is_displayed()
        assert ivy.find_element(By.ID, "topic-edit").is_displayed()

        # The topic, set from the page.
        click(ivy, "#topic-edit")
        ivy.find_element(By.ID, "topic-input").send_keys("release on friday\n")
        assert carol.expect("TOPIC ") == "TOPIC #dev ivy release on friday"
        wait_until(wendy, lambda: text_of(wendy, "#topic") == "release on friday")
        sees(wendy, "ivy set the topic: release on friday")
        assert text_of(ivy, "#topic") == "release on friday"

        # A voice, from the member's actions.
        click(ivy, '.member[data-nick="carol"]')
        click(ivy, "#act-voice")
        assert carol.expect("VOICE ") == "VOICE #dev carol ivy"
        wait_until(wendy, lambda: mark_of(wendy, "carol") == "+")
        sees(wendy, "ivy gave carol a voice")
        # axe-core: nothing serious with a topic set and members marked.
        assert axe_violations(ivy) == []
        assert axe_violations(wendy) == []

        # A kick with a reason: wendy's tab stays, greyed, and says why.
        click(ivy, '.member[data-nick="wendy"]')
        ivy.find_element(By.ID, "act-reason").send_keys("too loud")
        click(ivy, "#act-kick")
        assert carol.expect("KICK ") == "KICK #dev wendy ivy too loud"
        sees(wendy, "ivy put you out of #dev: too loud")
        greyed = '.conv.kicked[data-key="#dev"]'
        wait_until(wendy, lambda: wendy.find_elements(By.CSS_SELECTOR, greyed))
        assert text_of(wendy, "#title") == "#dev"
        assert text_of(wendy, "#topic") == "ivy put you out: too loud"
        assert "wendy" not in text_of(wendy, "#member-list")
        sees(ivy, "ivy put wendy out: too loud")
        wait_until(ivy, lambda: "wendy" not in text_of(ivy, "#member-list"))
        # Typing there does not rejoin by itself.
        say(wendy, "am I still here?")
        sees(wendy, "You are not in #dev: /join #dev to go back.")
        assert axe_violations(wendy) == []  # kicked

        # A ban (and its kick), said in words.
        click(ivy, '.member[data-nick="carol"]')
        click(ivy, "#act-ban")
        assert carol.expect("BAN ") == "BAN #dev carol ivy"
        assert carol.expect("KICK ") == "KICK #dev carol ivy ivy"
        sees(ivy, "ivy banned carol")
        # No raw protocol lines in the server's tab.
        open_conversation(ivy, "*server")
        for raw in ("TOPIC #dev", "KICK #dev", "OPS #dev", "VOICE #dev"):
            assert raw not in text_of(ivy, "#log")
        for driver in (ivy, wendy):
            assert script_errors(driver) == []
        carol.close()
    finally:
        daemon.kill()


def test_a_reload_brings_the_conversations_back(
    tmp_path: Path, page: WebDriver
) -> None:
    """ivy (web, registered) is in #dev, #ops and #games and talks with carol
    (nc) in private; after a reload the page rejoins the three rooms with their
    history, the private conversation is back, #ops is still on screen, and once
    ivy identifies the private conversation's history comes back too."""
    from selenium.webdriver.common.by import By

    ivy = page
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(ivy, web_port, "ivy")
        say(ivy, "/register horsebattery9 horsebattery9")
        sees(ivy, "You are identified as ivy.")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        for room in ("#dev", "#ops", "#games"):
            joined(ivy, room)
            carol.send(f"/join {room}")
            carol.expect(f"JOIN {room} carol")
            carol.send(f"said in {room}")
            sees(ivy, f"said in {room}")
        carol.send("/msg ivy just between us")
        wait_until(
            ivy, lambda: ivy.find_elements(By.CSS_SELECTOR, '.conv[data-key="carol"]')
        )
        open_conversation(ivy, "#ops")

        ivy.refresh()
        wait_until(ivy, lambda: ivy.find_element(By.ID, "chat").is_displayed())
        wait_until(ivy, lambda: text_of(ivy, "#title") == "#ops")
        sees(ivy, "said in #ops")
        for room in ("#dev", "#ops", "#games"):
            carol.send(f"/who {room}")
            assert "ivy" in carol.expect(f"USERS {room} ").split()
        for room in ("#dev", "#games"):
            open_conversation(ivy, room)
            sees(ivy, f"said in {room}")
        # The private conversation is back; its history needs the account.
        open_conversation(ivy, "carol")
        say(ivy, "/identify horsebattery9")
        sees(ivy, "just between us")
        assert axe_violations(ivy) == []  # restored
        assert script_errors(ivy) == []
        carol.close()
    finally:
        daemon.kill()


def test_tab_completes_commands_and_nicknames(tmp_path: Path, page: WebDriver) -> None:
    """In #lobby with carol and caspar (nc), Tab completes /jo to /join, ca to
    carol (then caspar on a second Tab), and #lo to #lobby; with nothing to
    complete, Tab moves on to the next control. Ctrl+K then "lob" shows #lobby,
    "games" joins #games."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ivy = page
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(ivy, web_port, "ivy")
        people = []
        for nick in ("carol", "caspar"):
            person = LineClient.tcp(daemon.ports[LOOPBACK])
            person.register(nick)
            people.append(person)
        wait_until(ivy, lambda: "caspar" in text_of(ivy, "#member-list"))
        box = ivy.find_element(By.ID, "say")
        box.send_keys("/jo" + Keys.TAB)
        assert box.get_attribute("value") == "/join "
        box.send_keys("#lo" + Keys.TAB)
        assert box.get_attribute("value") == "/join #lobby "
        box.clear()
        box.send_keys("ca" + Keys.TAB)
        assert box.get_attribute("value") == "carol: "
        box.send_keys(Keys.TAB)
        assert box.get_attribute("value") == "caspar: "
        box.send_keys("hi " + "c" + Keys.TAB)
        assert box.get_attribute("value") == "caspar: hi carol "
        box.send_keys(Keys.ENTER)
        assert people[0].expect("MSG ") == "MSG #lobby ivy caspar: hi carol "
        box.send_keys(Keys.TAB)
        assert ivy.switch_to.active_element.get_attribute("id") != "say"

        # Ctrl+K jumps: a name the page has is shown, another is a room to join.
        joined(ivy, "#dev")
        box.send_keys(Keys.CONTROL, "k")
        assert ivy.switch_to.active_element.get_attribute("id") == "join-room"
        ivy.switch_to.active_element.send_keys("lob" + Keys.ENTER)
        wait_until(ivy, lambda: text_of(ivy, "#title") == "#lobby")
        assert ivy.switch_to.active_element.get_attribute("id") == "say"
        box.send_keys(Keys.CONTROL, "k")
        ivy.switch_to.active_element.send_keys("games" + Keys.ENTER)
        wait_until(ivy, lambda: text_of(ivy, "#title") == "#games")
        for person in people:
            person.close()
    finally:
        daemon.kill()


def at_bottom(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "const log = document.getElementById('log');"
            "return log.scrollHeight - log.scrollTop - log.clientHeight <= 1;"
        )
    )


def test_older_messages_are_offered_only_when_there_are_some(
    tmp_path: Path, page: WebDriver
) -> None:
    """Joining #many (8 kept, the backfill 5) offers "Load older messages" and
    keeps the last line in view; joining #few (3 kept) does not offer it."""
    from selenium.webdriver.common.by import By

    ivy = page
    web_port = free_port()
    web = f"tcp:{web_port}:interface=127.0.0.1"
    database = str(tmp_path / "chat.sqlite3")
    args = ["--listen", LOOPBACK, "--web", web, "--database", database, *TYPING_SPEED]
    daemon = Daemon([*args, "--backfill", "5"], tmp_path)
    try:
        daemon.wait_listening(2)
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        for room, count in (("#many", 8), ("#few", 3)):
            carol.send(f"/join {room}")
            carol.expect(f"JOIN {room} carol")
            for number in range(count):
                carol.send(f"{room} line {number}")
            carol.send(f"/history {room} 1")  # all of them are kept by now
            carol.expect(f"ENDHISTORY {room} ")
        register(ivy, web_port, "ivy")
        older = ivy.find_element(By.ID, "older")
        joined(ivy, "#many")
        sees(ivy, "#many line 7")
        wait_until(ivy, older.is_displayed)
        wait_until(ivy, lambda: at_bottom(ivy))
        older.click()
        sees(ivy, "#many line 0")
        wait_until(ivy, lambda: not older.is_displayed())
        joined(ivy, "#few")
        sees(ivy, "#few line 2")
        probed = (
            "const c = state.conversations.get('#few'); return c.probed && !c.probing"
        )
        wait_until(ivy, lambda: ivy.execute_script(probed))
        assert not older.is_displayed()
        assert at_bottom(ivy)
        assert script_errors(ivy) == []
        carol.close()
    finally:
        daemon.kill()


def test_register_and_sign_in_from_the_page(tmp_path: Path, page: WebDriver) -> None:
    """ivy registers from the page (two passwords, no command typed); after a
    reload the server asks for the password and the page's bar identifies her;
    a new visit signs in with the password on the first screen. The password is
    never in the page's storage nor in the recalled lines."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ivy = page
    password = "horsebattery9"
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(ivy, web_port, "ivy")
        click(ivy, "#register")
        ivy.find_element(By.ID, "account-password").send_keys(password)
        ivy.find_element(By.ID, "account-again").send_keys(password + Keys.ENTER)
        sees(ivy, "You are identified as ivy.")
        wait_until(ivy, lambda: not ivy.find_element(By.ID, "register").is_displayed())
        assert not ivy.find_element(By.ID, "account-form").is_displayed()

        ivy.refresh()  # the nickname comes back, the identification does not
        wait_until(ivy, lambda: ivy.find_element(By.ID, "account-form").is_displayed())
        assert "ivy is registered" in text_of(ivy, "#account-label")
        box = ivy.find_element(By.ID, "account-password")
        box.send_keys("wrongpassword" + Keys.ENTER)
        wait_until(ivy, lambda: "wrong" in text_of(ivy, "#account-label").lower())
        box.send_keys(password + Keys.ENTER)
        sees(ivy, "You are identified as ivy.")
        wait_until(
            ivy, lambda: not ivy.find_element(By.ID, "account-form").is_displayed()
        )

        say(ivy, "/quit")  # forgets the session: the first screen again
        wait_until(ivy, lambda: ivy.find_element(By.ID, "login").is_displayed())
        ivy.find_element(By.ID, "password").send_keys(password)
        ivy.find_element(By.ID, "nick-go").click()
        sees(ivy, "You are identified as ivy.")
        stored = ivy.execute_script("return JSON.stringify(localStorage)")
        assert password not in stored
        box = ivy.find_element(By.ID, "say")
        for _ in range(5):
            box.send_keys(Keys.ARROW_UP)
            assert password not in str(box.get_attribute("value"))
        assert script_errors(ivy) == []
    finally:
        daemon.kill()


def test_a_phone_shows_the_conversation_and_opens_both_drawers(
    tmp_path: Path,
) -> None:
    """At 390x844 the conversation fills the width, the conversations and the
    members open as drawers (and close with Escape), nothing overflows
    sideways, and every control is at least 44 px high."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    phone = chromium(tmp_path / "phone-profile", width=390, height=844)
    # Headless Chromium keeps windows 500 px wide at least: a phone's viewport.
    metrics = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(phone, web_port, "ivy")
        joined(phone, "#dev")
        say(phone, "/topic a topic long enough to need the whole width of a phone")
        sees(phone, "ivy set the topic")
        width = phone.execute_script("return document.documentElement.clientWidth")
        log = phone.find_element(By.ID, "log")
        assert log.size["width"] >= width - 2
        side = phone.find_element(By.ID, "side")
        members = phone.find_element(By.ID, "members")
        assert not side.is_displayed() and not members.is_displayed()
        overflow = "return document.documentElement.scrollWidth"
        for toggle, drawer in (("#toggle-side", side), ("#toggle-members", members)):
            click(phone, toggle)
            wait_until(phone, drawer.is_displayed)
            assert phone.execute_script(overflow) <= width
            small = phone.execute_script(
                "return [...document.querySelectorAll('button, input')]"
                ".filter((e) => e.offsetParent !== null)"
                ".filter((e) => e.getBoundingClientRect().height < 44)"
                ".map((e) => e.id || e.className || e.textContent)"
            )
            assert small == []
            assert axe_violations(phone) == []
            phone.switch_to.active_element.send_keys(Keys.ESCAPE)
            wait_until(phone, hidden(drawer))
        assert phone.execute_script(overflow) <= width
        dark = {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
        phone.execute_cdp_cmd("Emulation.setEmulatedMedia", dark)
        assert axe_violations(phone) == []  # the dark colours too
        assert script_errors(phone) == []
    finally:
        phone.quit()
        daemon.kill()


def test_new_messages_are_marked_where_they_begin(
    tmp_path: Path, page: WebDriver
) -> None:
    """carol (nc) says two lines in #dev while ivy reads #lobby: #dev's tab counts
    2, and opening it shows "New messages" right above the first of them."""
    from selenium.webdriver.common.by import By

    ivy = page
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        register(ivy, web_port, "ivy")
        joined(ivy, "#dev")
        carol = LineClient.tcp(daemon.ports[LOOPBACK])
        carol.register("carol")
        carol.send("/join #dev")
        carol.expect("JOIN #dev carol")
        carol.send("read before")
        sees(ivy, "read before")
        open_conversation(ivy, "#lobby")
        carol.send("/join #dev")  # back to #dev as carol's current room
        carol.send("first unread")
        carol.send("second unread")
        badge = '.conv[data-key="#dev"] .badge'
        wait_until(ivy, lambda: text_of(ivy, badge) == "2")
        open_conversation(ivy, "#dev")
        sees(ivy, "second unread")
        lines = ivy.find_elements(By.CSS_SELECTOR, "#log li")
        texts = [line.text for line in lines]
        mark = texts.index("New messages")
        assert "first unread" in texts[mark + 1]
        assert "read before" in texts[mark - 1]
        assert axe_violations(ivy) == []
        carol.close()
    finally:
        daemon.kill()


def test_a_message_read_in_one_tab_is_read_in_the_other_and_in_the_tk_window(
    tmp_path: Path, page: WebDriver, second: WebDriver
) -> None:
    """ivy's laptop tab, phone tab and desktop window (chatd-tk), all identified
    to the account ivy, are in #dev and look at #lobby; carol (nc) says a line
    in #dev: each counts 1 unread. The laptop opens #dev: the page moves the
    account's marker (/read), the server sends READ to all three, and neither
    the phone's #dev nor the window's counts anything unread any more."""
    laptop, phone = page, second
    password = "horsebattery9"
    web_port = free_port()
    daemon = start(tmp_path, web_port)
    try:
        with xvfb() as display:
            register(laptop, web_port, "ivy")
            say(laptop, f"/register {password} {password}")
            sees(laptop, "You are identified as ivy.")
            register(phone, web_port, "ivyphone")
            say(phone, f"/identify ivy {password}")
            sees(phone, "You are identified as ivy.")
            for tab in (laptop, phone):
                joined(tab, "#dev")
                open_conversation(tab, "#lobby")
            port = daemon.ports[LOOPBACK]
            log = tmp_path / "desk.log"
            with Driver(display, port, "ivydesk", log, geometry="720x420") as desk:
                desk.expect("registered")
                desk.command(f"type /identify ivy {password}")
                desk.expect(
                    "entry", lambda e: e["text"] == "You are identified as ivy."
                )
                desk.command("type /join #dev")
                desk.expect("entry", lambda e: e["conversation"] == "#dev")
                desk.command("select #lobby")
                # Selected before carol speaks: a line that came while #dev was
                # still on screen would be read at once (no count to see).
                desk.command("sync")
                desk.expect("synced")
                carol = LineClient.tcp(port)
                carol.register("carol")
                carol.send("/join #dev")
                carol.expect("JOIN #dev carol")
                carol.send("read me once")
                badge = '.conv[data-key="#dev"] .badge'
                wait_until(laptop, lambda: text_of(laptop, badge) == "1")
                wait_until(phone, lambda: text_of(phone, badge) == "1")
                desk.expect("entry", lambda e: e["text"] == "read me once")
                # The list is redrawn after the entry is reported: ask again
                # until it shows the count (bounded by WAIT).
                deadline = time.monotonic() + WAIT
                while "#dev  ● 1 new" not in desk_rows(desk):
                    assert time.monotonic() < deadline, desk_rows(desk)
                open_conversation(laptop, "#dev")
                sees(laptop, "read me once")
                wait_until(phone, lambda: text_of(phone, badge) == "")
                deadline = time.monotonic() + WAIT
                while "#dev  ● 1 new" in desk_rows(desk):
                    assert time.monotonic() < deadline, desk_rows(desk)
                    time.sleep(0.05)
                assert "#dev" in desk_rows(desk)
                open_conversation(phone, "#dev")  # nothing new there
                sees(phone, "read me once")
                assert "New messages" not in text_of(phone, "#log")
                assert script_errors(laptop) == [] and script_errors(phone) == []
                desk.command("close")
                desk.expect("exited")
                carol.close()
    except NoXServer as error:
        pytest.skip(str(error))
    finally:
        daemon.kill()


def desk_rows(desk: Driver) -> list[str]:
    """The desktop window's conversation list, as it reads on screen."""
    desk.command("dump")
    shown = desk.expect("dump")
    rows = shown["conversations"]
    assert isinstance(rows, list)
    return [str(row) for row in rows]
