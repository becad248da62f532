"""An irctest controller that runs chatd's IRC door (`twistd -n chatd --irc ...`).

irctest (https://github.com/progval/irctest) is not part of chatd; see
README.md beside this file for how to fetch it and run it with this
controller. This file imports irctest, so it runs only inside irctest's
environment, never in chatd's own tests.

Environment:
  CHATD_ROOT    the chatd checkout to run (default: two folders up from here)
  CHATD_TWISTD  a twistd whose Python has Twisted (default: twistd beside
                $CHATD_ROOT/.venv/bin/python, else the one on PATH)
  CHATD_WITHOUT_SERVICES=1
                run tests marked `services` without services instead of
                skipping them: those that register an account are skipped
                when they try (chatd has no accounts), the others run. The
                chathistory tests are all marked `services`.
"""

import os
import shutil
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
    supported_sasl_mechanisms: set[str] = set()
    supports_sts = False
    # Only what chatd's CAP LS offers and irctest knows by name.
    capabilities = frozenset(
        {
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
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

    def wait_for_services(self) -> None:
        """No services run beside chatd (see CHATD_WITHOUT_SERVICES)."""

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
        if run_services and os.environ.get("CHATD_WITHOUT_SERVICES") != "1":
            raise NotImplementedByController("services")
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
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = self.execute(args, cwd=self.directory, env=env)


def get_irctest_controller_class() -> type[ChatdController]:
    return ChatdController
