"""A pytest plugin for irctest that leaves out of CAP REQ what chatd does not offer.

Not part of the conformance figures. irctest's chathistory tests ask for
`sasl` and `labeled-response` in the same CAP REQ as `draft/chathistory`,
and a server that NAKs it is skipped: every chathistory test needs SASL (or
an account) before it looks at history. chatd has no accounts, so those
tests can never run against it as they are. With this plugin
(`-p drop_caps`, see README.md) the two caps are taken out of the request
when the test gives no password (then it uses neither), so that what the
tests check of history itself is checked. Tests that register accounts are
still skipped.
"""

from __future__ import annotations

import os
from typing import Any

from irctest import cases

DROPPED = frozenset(os.environ.get("CHATD_DROP_CAPS", "sasl labeled-response").split())
_request = cases.BaseServerTestCase.requestCapabilities
_connect = cases.BaseServerTestCase.connectClient


def _without(capabilities: list[str] | None) -> list[str] | None:
    if capabilities is None:
        return None
    return [cap for cap in capabilities if cap not in DROPPED]


def request_capabilities(
    self: Any, client: Any, capabilities: list[str], skip_if_cap_nak: bool = False
) -> None:
    if not getattr(self, "_chatd_password", False):
        capabilities = _without(capabilities) or capabilities
    _request(self, client, capabilities, skip_if_cap_nak)


def connect_client(self: Any, *args: Any, **kwargs: Any) -> Any:
    self._chatd_password = kwargs.get("password") is not None
    try:
        return _connect(self, *args, **kwargs)
    finally:
        self._chatd_password = False


cases.BaseServerTestCase.requestCapabilities = request_capabilities
cases.BaseServerTestCase.connectClient = connect_client
