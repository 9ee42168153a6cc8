"""Gude Expert Power Control units (newer firmware) through their JSON HTTP interface.

Status: `GET /status.json?components=1` -> `{"outputs": [{"name", "state": 0|1, ...}]}`, the
list 0-indexed. Switching: `GET /status.json?components=0&cmd=1&p=N&s=0|1`, N 1-based, one
request per outlet (the interface has no batch). HTTP Basic where the unit asks for it (the
"basic compatible" mode; session login is not supported). Gude units block an address that
talks too fast: the unit's requests go one at a time (PduUnit), never in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from .http_pdu import DEFAULT_TIMEOUT, HttpPduClient, basic_auth, state_0_1
from .pdu import UnitStatus

VENDOR = "gude"
PATH = "/status.json"
COMPONENT_OUTPUTS = "1"  # the `components` bit of the outputs' states
COMMAND_SWITCH = "1"


class GudeClient(HttpPduClient):
    """One Gude Expert Power Control unit."""

    vendor = VENDOR

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        https: bool = False,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the unit at `host`:`port`; no credentials (None or "") sends none."""
        super().__init__(
            session, host, port, https=https, verify_ssl=verify_ssl, timeout=timeout
        )
        self._auth = basic_auth(username, password or "") if username else {}

    async def read_status(self) -> UnitStatus:
        """Every output's state (and name, where the firmware sends it)."""
        answer = await self._request(
            "GET", PATH, params=[("components", COMPONENT_OUTPUTS)], headers=self._auth
        )
        document = self._json("GET", PATH, answer)
        outputs = document.get("outputs") if isinstance(document, dict) else None
        outlets = self._outlet_list(
            outputs, f"{PATH} outputs", lambda output: state_0_1(output.get("state"))
        )
        return UnitStatus(outlets=outlets)

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """Switch these outlets (1-based), one request each, in order."""
        for outlet in self._check_outlets(outlets):
            params = [
                ("components", "0"),  # nothing back but `{}`: the command is enough
                ("cmd", COMMAND_SWITCH),
                ("p", str(outlet)),
                ("s", "1" if on else "0"),
            ]
            answer = await self._request("GET", PATH, params=params, headers=self._auth)
            if not 200 <= answer.status < 300:
                raise self._unexpected("GET", PATH, answer)
