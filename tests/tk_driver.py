"""Run the real Tk client under a test's control, on an X server the test starts.

Test side: `xvfb()` starts Xvfb on a free display; `Driver` starts this file
as a subprocess. Subprocess side (`python tests/tk_driver.py HOST PORT NICK`):
the real ChatWindow on the global reactor with tksupport, exactly as
`chatd-tk` runs it, which reports what the window shows as JSON lines on
stdout and obeys one-line commands on stdin (see Commands). Every wait on the
test side is bounded by WAIT.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0  # seconds: the bound on every wait
Event = dict[str, object]


class NoXServer(Exception):
    """Xvfb is not installed, or would not start."""


@contextmanager
def xvfb(width: int = 1280, height: int = 800) -> Iterator[str]:
    """Start Xvfb on a display number it picks itself; yield ":N"; stop it after."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise NoXServer("Xvfb is not installed (apt-get install -y xvfb)")
    read_end, write_end = os.pipe()
    screen = f"{width}x{height}x24"
    process = subprocess.Popen(
        [binary, "-displayfd", str(write_end), "-screen", "0", screen]
        + ["-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        # Xvfb writes the display number once it accepts clients: no sleeping.
        ready, _, _ = select.select([read_end], [], [], WAIT)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:
            process.kill()
            _, errors = process.communicate(timeout=WAIT)
            raise NoXServer(f"Xvfb did not start: {errors.decode(errors='replace')}")
        yield f":{number}"
    finally:
        os.close(read_end)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=WAIT)


class Driver:
    """The real client window in a subprocess: read its events, send commands."""

    def __init__(
        self,
        display: str,
        port: int,
        nick: str,
        log: Path,
        geometry: str = "",
        password_file: Path | None = None,
    ) -> None:
        env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(ROOT))
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = log
        self._stderr = log.open("wb")
        args = [sys.executable, __file__, "127.0.0.1", str(port), nick, geometry]
        if password_file is not None:  # as chatd-tk --password-file PATH
            args.append(str(password_file))
        self.process = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""
        self.seen: list[Event] = []

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def command(self, text: str) -> None:
        """Send one command line to the window (see Commands)."""
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def next_event(self, deadline: float) -> Event | None:
        """Return the next event, or None at the end of output; fail at deadline."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                raise AssertionError(f"the window said nothing more; saw {self.seen}")
            data = os.read(fd, 65536)
            if not data:
                return None
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\n", 1)
        event: Event = json.loads(raw)
        self.seen.append(event)
        return event

    def expect(self, kind: str, test: Callable[[Event], bool] = bool) -> Event:
        """Read events until one of kind passes test; return it. Bounded by WAIT."""
        deadline = time.monotonic() + WAIT
        while True:
            event = self.next_event(deadline)
            if event is None:
                raise AssertionError(
                    f"window exited before {kind}; saw {self.seen}\n{self.errors()}"
                )
            if event.get("event") == kind and test(event):
                return event

    def wait_exit(self) -> int:
        """Wait (bounded) for the window process to end; return its exit code."""
        return self.process.wait(timeout=WAIT)

    def errors(self) -> str:
        """Return what the window process wrote to stderr."""
        self._stderr.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=WAIT)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.close()


# -- the subprocess side ---------------------------------------------------------------


def _emit(event: str, **fields: object) -> None:
    """Write one event as a JSON line to stdout, whole.

    twisted.internet.stdio makes stdout non-blocking, so a long line (a dump
    of thousands of lines) may be written in parts: wait until it all went.
    """
    data = (json.dumps({"event": event, **fields}) + "\n").encode("utf-8")
    fd = sys.stdout.fileno()
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            select.select([], [fd], [], WAIT)


def run_window(
    host: str, port: int, nick: str, geometry: str, password_file: str | None = None
) -> int:
    """Build the real window, connect it, and obey commands until it closes."""
    import tkinter as tk

    from twisted.internet import reactor as global_reactor
    from twisted.internet import stdio
    from twisted.protocols.basic import LineReceiver

    from chatd.client.conversations import Conversation, ScrollbackEntry
    from chatd.model.names import fold
    from chatd.tk_client import (
        ChatWindow,
        IChatReactor,
        conversation_label,
        read_password,
        run,
        start_logging,
    )

    class DrivenWindow(ChatWindow):
        """The real window, telling the test what it shows."""

        def status(self, text: str) -> None:
            super().status(text)
            _emit("status", text=text)

        def entry_added(
            self, conversation: Conversation, entry: ScrollbackEntry
        ) -> None:
            super().entry_added(conversation, entry)
            _emit(
                "entry",
                conversation=conversation.name,
                kind=entry.kind.name,
                nick=entry.nick,
                text=entry.text,
                own=entry.own,
            )

        def ask_nick(self, reason: str) -> None:
            super().ask_nick(reason)
            _emit("ask_nick", reason=reason, form=self.form_message.cget("text"))

        def connect_failed(self, reason: str) -> None:
            super().connect_failed(reason)
            _emit("connect_failed", reason=reason)

        def registered(self, nick: str) -> None:
            super().registered(nick)
            root.update_idletasks()  # the new title reaches the X server now
            _emit("registered", nick=nick, title=root.title())

        def finished(self) -> None:
            _emit("finished")
            super().finished()

    class Commands(LineReceiver):
        """One command per stdin line; a closed stdin closes the window."""

        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            command, _, argument = line.decode("utf-8").partition(" ")
            match command:
                case "focus":  # give the input the X keyboard focus (for xdotool)
                    root.focus_force()
                    window.input.focus_force()
                    root.update()
                    _emit("focused", widget=str(root.focus_get()))
                case "type":  # fill the input and press its Send button
                    window.input.delete(0, "end")
                    window.input.insert(0, argument)
                    window.send_button.invoke()
                case "draft":  # leave text in the input without sending it
                    window.input.delete(0, "end")
                    window.input.insert(0, argument)
                case "sync":  # let Tk draw everything pending, then answer
                    root.update_idletasks()
                    root.update()
                    _emit("synced")
                case "nick":  # answer the connect form with another nickname
                    window.nick_text.set(argument)
                    window.connect_button.invoke()
                case "select":
                    window.session.select(fold(argument))
                case "scroll_top":  # what dragging the scrollbar to the top does
                    window.messages.yview_moveto(0.0)
                case "dump":
                    state = window.session.state
                    root.update_idletasks()
                    _emit(
                        "dump",
                        view=window.messages.get("1.0", "end-1c"),
                        yview=list(window.messages.yview()),
                        members=list(window.member_list.get(0, "end")),
                        conversations=[
                            conversation_label(c) for c in state.conversations.values()
                        ],
                        focus=str(root.focus_get()),
                        input=str(window.input),
                    )
                case "close":  # what the window manager's close button calls
                    window.close()

        def connectionLost(self, reason: object = None) -> None:
            window.close()

    root = tk.Tk(className="chatd")
    reactor = cast(IChatReactor, global_reactor)
    window = DrivenWindow(root, reactor)
    if geometry:
        root.geometry(geometry)
    start_logging(window)
    stdio.StandardIO(Commands())
    window.start(host, port, nick, read_password(password_file))
    run(root, window, reactor)
    _emit("exited")
    return 0


if __name__ == "__main__":
    host_, port_, nick_, geometry_ = sys.argv[1:5]
    password_file_ = sys.argv[5] if len(sys.argv) > 5 else None
    sys.exit(run_window(host_, int(port_), nick_, geometry_, password_file_))
