"""Digital Loggers Web Power Switch (Pro, LPC, EPC) through its REST API.

Status: `GET /restapi/relay/outlets/` -> a list (outlets 0-based) of objects with `name`,
`state` (what was asked for), `physical_state` (what the relay does) and `transient_state`
(the state during a delayed or cycling operation). The relay's physical state is reported
where the firmware gives it; `state` only where it does not. Switching: the form
`value=true|false` PUT to `/restapi/relay/outlets/{i}/state/` for one outlet (answered 204)
and to the matrix URI `/restapi/relay/outlets/=i,j,.../state/` for several at once, one
request (answered 207 Multi-Status, a JSON array with an entry per outlet: not read, the
caller reads the status again). With `X-CSRF: x` (the firmware refuses writes without it)
and `Accept: application/json`. Authentication: HTTP Digest (aiohttp's
DigestAuthMiddleware, one per client so its nonce count follows the unit's nonces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import DigestAuthMiddleware

from ..core.model import PowerState
from ..core.switching import ConfigurationSwitchError
from .http_pdu import DEFAULT_TIMEOUT, HttpPduClient
from .pdu import PduReadOnlyError, UnitStatus

VENDOR = "dli"
OUTLETS_PATH = "/restapi/relay/outlets/"
READ_HEADERS = {"Accept": "application/json"}
WRITE_HEADERS = {"Accept": "application/json", "X-CSRF": "x"}


class DliClient(HttpPduClient):
    """One Digital Loggers unit."""

    vendor = VENDOR

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str,
        password: str,
        https: bool = False,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the unit at `host`:`port`; factory account admin/1234."""
        super().__init__(
            session, host, port, https=https, verify_ssl=verify_ssl, timeout=timeout
        )
        try:
            self._digest = DigestAuthMiddleware(username, password)
        except ValueError as err:  # a ":" in the user name: Digest cannot carry it
            raise ConfigurationSwitchError(f"{self.description}: {err}") from err
        self._middlewares = (self._digest,)

    async def read_status(self) -> UnitStatus:
        """Every outlet's physical state and name."""
        answer = await self._request(
            "GET", OUTLETS_PATH, headers=READ_HEADERS, middlewares=self._middlewares
        )
        document = self._json("GET", OUTLETS_PATH, answer)
        outlets = self._outlet_list(document, OUTLETS_PATH, _state)
        return UnitStatus(outlets=outlets)

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """Switch these outlets (1-based) in one PUT: several through a matrix URI."""
        wanted = self._check_outlets(outlets)
        if not wanted:
            return
        indexes = ",".join(str(outlet - 1) for outlet in wanted)
        matrix = "=" if len(wanted) > 1 else ""
        path = f"{OUTLETS_PATH}{matrix}{indexes}/state/"
        answer = await self._request(
            "PUT",
            path,
            data={"value": "true" if on else "false"},
            headers=WRITE_HEADERS,
            middlewares=self._middlewares,
        )
        if answer.status == 403:
            named = ", ".join(map(str, wanted))
            raise PduReadOnlyError(
                f"{self.description}: the account may not switch outlet"
                f"{'s' if matrix else ''} {named} (HTTP 403); give it access to "
                "these outlets"
            )
        if not 200 <= answer.status < 300:
            raise self._unexpected("PUT", path, answer)


def _state(outlet: Mapping[str, Any]) -> PowerState:
    """The relay's physical state where reported, else the requested one; else UNKNOWN."""
    value = (
        outlet["physical_state"] if "physical_state" in outlet else outlet.get("state")
    )
    if value is True:
        return PowerState.ON
    if value is False:
        return PowerState.OFF
    return PowerState.UNKNOWN
