"""NETIO power sockets (4, 4All, PowerPDU, PowerBOX...) through the JSON "M2M" API.

Status: `GET /netio.json` -> `Agent` (Model, DeviceName, SerialNumber), `GlobalMeasure`
(TotalCurrent mA, TotalLoad W, TotalEnergy Wh) and `Outputs` (ID 1-based, Name, State 0|1,
Current mA, Load W, Energy Wh; the measurements only on metering models). Switching: one
`POST /netio.json {"Outputs": [{"ID": n, "Action": 0 off | 1 on}, ...]}` for every outlet
at once; the unit answers with the full status document. HTTP Basic with separate read and
write accounts: 401 refused credentials, 403 an account that may only read, 400 bad syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp

from .http_pdu import (
    DEFAULT_TIMEOUT,
    HttpAnswer,
    HttpPduClient,
    basic_auth,
    number,
    state_0_1,
)
from .pdu import (
    OutletStatus,
    PduAuthError,
    PduProtocolError,
    PduReadOnlyError,
    UnitStatus,
)

VENDOR = "netio"
PATH = "/netio.json"
ACTION_OFF, ACTION_ON = 0, 1  # 2/3 short off/on, 4 toggle: never used


class NetioClient(HttpPduClient):
    """One NETIO unit."""

    vendor = VENDOR

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str,
        password: str,
        write_username: str | None = None,
        write_password: str | None = None,
        https: bool = False,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Read with `username`, switch with `write_username` (the read account if None).

        `write_password` None: the read password.
        """
        super().__init__(
            session, host, port, https=https, verify_ssl=verify_ssl, timeout=timeout
        )
        self._read_auth = basic_auth(username, password)
        self._write_user = write_username or username
        self._write_auth = basic_auth(
            self._write_user, password if write_password is None else write_password
        )

    async def read_status(self) -> UnitStatus:
        """Every output's state and measurements, and the unit's totals."""
        answer = await self._request("GET", PATH, headers=self._read_auth)
        if answer.status == 403:
            raise PduAuthError(
                f"{self.description}: the read account may not read the JSON API "
                "(HTTP 403)"
            )
        self._check_syntax("GET", answer)
        document = self._json("GET", PATH, answer)
        status = self._parse(document)
        self._remember_outlets(status.outlets)
        return status

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """One POST with an action for each of these outputs (1-based IDs)."""
        wanted = self._check_outlets(outlets)
        if not wanted:
            return
        action = ACTION_ON if on else ACTION_OFF
        command = {"Outputs": [{"ID": outlet, "Action": action} for outlet in wanted]}
        answer = await self._request(
            "POST", PATH, payload=command, headers=self._write_auth
        )
        if answer.status == 403:
            raise PduReadOnlyError(
                f"{self.description}: the account {self._write_user!r} is read-only "
                "and may not switch outputs (HTTP 403); give an account with write "
                "access to the JSON API"
            )
        self._check_syntax("POST", answer)
        if not 200 <= answer.status < 300:
            raise self._unexpected("POST", PATH, answer)

    def _check_syntax(self, method: str, answer: HttpAnswer) -> None:
        """HTTP 400: the unit did not understand the request."""
        if answer.status == 400:
            raise PduProtocolError(
                f"{self.description}: {method} {PATH} refused as bad syntax (HTTP 400)"
            )

    def _parse(self, document: Any) -> UnitStatus:
        """The status document as a UnitStatus (1-based output IDs as outlet numbers)."""
        if not isinstance(document, dict):
            raise PduProtocolError(f"{self.description}: {PATH} is not a JSON object")
        outputs = document.get("Outputs")
        if not isinstance(outputs, list) or not outputs:
            raise PduProtocolError(f"{self.description}: {PATH} has no Outputs list")
        outlets: dict[int, OutletStatus] = {}
        for output in outputs:
            if not isinstance(output, dict):
                raise PduProtocolError(
                    f"{self.description}: an entry of Outputs is not an object"
                )
            identity = output.get("ID")
            if (
                isinstance(identity, bool)
                or not isinstance(identity, int)
                or identity < 1
            ):
                raise PduProtocolError(
                    f"{self.description}: an output has no valid ID: {identity!r}"
                )
            outlets[identity] = OutletStatus(
                state_0_1(output.get("State")),
                name=_text(output.get("Name")),
                current_a=_scaled(output.get("Current"), 1000),
                power_w=number(output.get("Load")),
                energy_kwh=_scaled(output.get("Energy"), 1000),
            )
        agent = _object(document.get("Agent"))
        totals = _object(document.get("GlobalMeasure"))
        return UnitStatus(
            outlets=dict(sorted(outlets.items())),
            current_a=_scaled(totals.get("TotalCurrent"), 1000),
            power_w=number(totals.get("TotalLoad")),
            energy_kwh=_scaled(totals.get("TotalEnergy"), 1000),
            name=_text(agent.get("DeviceName")),
            model=_text(agent.get("Model")),
            serial=_text(agent.get("SerialNumber")),
        )


def _scaled(value: Any, divisor: float) -> float | None:
    """MA as A, Wh as kWh; None when the unit does not measure it."""
    found = number(value)
    return None if found is None else found / divisor


def _text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when missing."""
    return value if isinstance(value, dict) else {}
