"""An irctest controller that runs chatd's IRC door (`twistd -n chatd --irc ...`).

irctest (https://github.com/progval/irctest) is not part of chatd; see
README.md beside this file for how to fetch it and run it with this
controller. This file imports irctest, so it runs only inside irctest's
environment, never in chatd's own tests.

Environment:
  CHATD_ROOT    the chatd checkout to run (default: two folders up from here)
  CHATD_TWISTD  a twistd whose Python has Twisted (default: twistd beside
                $CHATD_ROOT/.venv/bin/python, else the one on PATH)
"""

import os
import shutil
import socket
import time
from pathlib import Path

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities

ROOT = Path(os.environ.get("CHATD_ROOT", Path(__file__).resolve().parents[2]))


def twistd() -> str:
    """The twistd to run chatd with."""
    if "CHATD_TWISTD" in os.environ:
        return os.environ["CHATD_TWISTD"]
    beside = ROOT / ".venv" / "bin" / "twistd"
    if beside.exists():
        return str(beside)
    found = shutil.which("twistd")
    if found is None:
        raise RuntimeError("set CHATD_TWISTD to a twistd whose Python has Twisted")
    return found


class ChatdController(BaseServerController, DirectoryBasedController):
    """Starts chatd with one IRC listener on irctest's port, on loopback only."""

    software_name = "chatd"
    supported_sasl_mechanisms: set[str] = {"PLAIN"}
    supports_sts = False
    # Only what chatd's CAP LS offers and irctest knows by name.
    capabilities = frozenset(
        {
            Capabilities.ACCOUNT_NOTIFY,
            Capabilities.ACCOUNT_TAG,
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        }
    )
    # Offered and held to, but not in irctest's Capabilities enum: a test that
    # asks for one of these (and only for what chatd offers) fails on a NAK
    # instead of being skipped.
    more_capabilities = frozenset({"draft/chathistory"})

    def supports_cap(self, capability: str) -> bool:
        return capability in self.more_capabilities or super().supports_cap(capability)

    # chatd's NickServ is built in: the services tests run against chatd alone.
    nickserv = "NickServ"
    # irctest's OPER tests log in as this (chatd: an account of --operators).
    oper_name, oper_password = "operuser", "operpassword"

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None,
        websocket_port: int | None,
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if password is not None:
            raise NotImplementedByController("server password (PASS)")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory is not None
        if ssl:
            self.gen_ssl()
            irc = (
                f"ssl:{port}:interface=127.0.0.1"
                f":privateKey={self.key_path}:certKey={self.pem_path}"
            )
        else:
            irc = f"tcp:{port}:interface=127.0.0.1"
        # irctest talks fast from one address: the flood gate and the per-IP
        # cap are opened up, as the other controllers do for their servers.
        operators = Path(self.directory) / "operators"
        operators.write_text(f"{self.oper_name}\n")
        args = [
            twistd(),
            "-n",
            "--pidfile=",
            "chatd",
            "--name",
            "My.Little.Server",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--irc",
            irc,
            "--flood-rate",
            "0",
            "--max-per-ip",
            "1000",
            "--operators",
            str(operators),
            # irctest's passwords are short ("sesame"), and its accounts are
            # made and thrown away by the hundred: cheap Argon2, a test's
            # settings, never a real server's.
            "--min-password",
            "1",
            "--argon2-time",
            "1",
            "--argon2-memory",
            "1024",
            "--argon2-lanes",
            "1",
            "--database",
            ":memory:",
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = self.execute(args, cwd=self.directory, env=env)
        if not ssl:
            self._make_operator(port)

    def _make_operator(self, port: int) -> None:
        """Register irctest's operator account, as its OPER tests expect one."""
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    return  # irctest's own wait will report the failure
                time.sleep(0.05)
        with sock:
            name, password = self.oper_name, self.oper_password
            sock.sendall(
                f"NICK {name}\r\nUSER o 0 * :o\r\n"
                f"PRIVMSG NickServ :REGISTER {password} {password}\r\n".encode()
            )
            received = b""
            while b"registered to you" not in received and b"ERROR" not in received:
                if time.monotonic() > deadline:
                    break
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
            sock.sendall(b"QUIT\r\n")

    def wait_for_services(self) -> None:
        """chatd's NickServ is part of chatd: up as soon as its port is."""
        self.wait_for_port()

    def registerUser(
        self,
        case: object,
        username: str,
        password: str | None = None,
    ) -> None:
        """Register an account through chatd's own NickServ (no services run)."""
        assert password
        client = case.addClient(show_io=True)  # type: ignore[attr-defined]
        case.sendLine(client, "NICK " + username)  # type: ignore[attr-defined]
        case.sendLine(client, "USER r e g :user")  # type: ignore[attr-defined]
        while case.getRegistrationMessage(client).command != "001":  # type: ignore[attr-defined]
            pass
        case.getMessages(client)  # type: ignore[attr-defined]
        case.sendLine(  # type: ignore[attr-defined]
            client, f"PRIVMSG {self.nickserv} :REGISTER {password} foo@example.org"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            messages = case.getMessages(client)  # type: ignore[attr-defined]
            if any(message.command == "NOTICE" for message in messages):
                break
        case.sendLine(client, "QUIT")  # type: ignore[attr-defined]
        case.assertDisconnected(client)  # type: ignore[attr-defined]


def get_irctest_controller_class() -> type[ChatdController]:
    return ChatdController
