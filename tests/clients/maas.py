"""MAAS's webhook power driver, re-implemented from its public source for the tests.

Source: canonical/maas, src/provisioningserver/drivers/power/webhook.py (WebhookPowerDriver)
and src/provisioningserver/drivers/power/__init__.py (PowerDriver: perform_power, cycle,
query, DEFAULT_WAITING_POLICY), commit 9e51f33ce6f7f19bd91ecddfd97baf5495db4eba. The same
requests (method, headers, no body), the same reading of answers and the same retries;
Twisted's Agent is aiohttp here and MAAS's pause is injected (the tests move Home
Assistant's clock instead of waiting).

Quirks kept as MAAS has them:
- a status of 400 or more is a PowerActionError, except a 404 on a URI without a trailing
  slash: MAAS sends the request again with a slash, drops that answer, and reads the first
  (404) answer's body as a success;
- the query matches power_on_regex, then power_off_regex, on the raw body; neither is
  "unknown";
- on and off are sent again before every query until the query says the state wanted,
  pausing 1, 2, 2, 4, 6, 8 and 12 s (35 s), then "BMC never transitioned from X to Y";
- cycle queries first, powers off (as above) only a machine that is on, then powers on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
import re

import aiohttp

DEFAULT_WAITING_POLICY = (1, 2, 2, 4, 6, 8, 12)
POWER_ON_REGEX = r"status.*\:.*running"
POWER_OFF_REGEX = r"status.*\:.*stopped"

type Pause = Callable[[float], Awaitable[None]]


class PowerError(Exception):
    """MAAS's base power error: retried."""


class PowerActionError(PowerError):
    """The BMC refused the action (MAAS: "Failed to complete power action")."""


@dataclass
class WebhookPowerDriver:
    """One machine's webhook power settings, as MAAS stores them."""

    session: aiohttp.ClientSession
    power_on_uri: str
    power_off_uri: str
    power_query_uri: str
    power_token: str
    pause: Pause
    system_id: str = "abc123"
    power_on_regex: str = POWER_ON_REGEX
    power_off_regex: str = POWER_OFF_REGEX
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def _headers(self) -> dict[str, str]:
        # No Content-Type: MAAS sends none (some services refuse one without a body).
        return {
            "User-Agent": "MAAS 3.6.0",
            "Accept": "application/json",
            "System_Id": self.system_id,
            "Authorization": f"Bearer {self.power_token}",
        }

    async def _webhook_request(self, method: str, uri: str) -> str:
        async with self.session.request(method, uri, headers=self._headers()) as answer:
            body = await answer.text()
            self.requests.append((method, uri, answer.status))
            if answer.status >= HTTPStatus.BAD_REQUEST:
                if answer.status == HTTPStatus.NOT_FOUND and not uri.endswith("/"):
                    async with self.session.request(
                        method, uri + "/", headers=self._headers()
                    ) as again:
                        self.requests.append((method, uri + "/", again.status))
                    return body  # MAAS reads the first answer
                raise PowerActionError(
                    f"Request failed with response status code: {answer.status}."
                )
            return body

    async def power_on(self) -> None:
        """POST the power on URI."""
        await self._webhook_request("POST", self.power_on_uri)

    async def power_off(self) -> None:
        """POST the power off URI."""
        await self._webhook_request("POST", self.power_off_uri)

    async def power_query(self) -> str:
        """GET the query URI: "on", "off" or "unknown"."""
        body = await self._webhook_request("GET", self.power_query_uri)
        if self.power_on_regex and re.search(self.power_on_regex, body):
            return "on"
        if self.power_off_regex and re.search(self.power_off_regex, body):
            return "off"
        return "unknown"

    async def perform_power(
        self, power_func: Callable[[], Awaitable[None]], state_desired: str
    ) -> None:
        """Send, pause, query; again with the next pause until the state is wanted."""
        state = "unknown"
        error: PowerError | None = None
        for waiting_time in DEFAULT_WAITING_POLICY:
            try:
                await power_func()
            except PowerError as err:
                error = err
                await self.pause(waiting_time)
                continue
            await self.pause(waiting_time)
            try:
                state = await self.power_query()
            except PowerError as err:
                error = err
            else:
                if state == state_desired:
                    return
        if error is None:
            raise PowerError(
                f"Failed to power {self.system_id}. "
                f"BMC never transitioned from {state} to {state_desired}."
            )
        raise error

    async def on(self) -> None:
        """MAAS's power on."""
        await self.perform_power(self.power_on, "on")

    async def off(self) -> None:
        """MAAS's power off."""
        await self.perform_power(self.power_off, "off")

    async def query(self) -> str:
        """MAAS's power query, retried on errors with the same pauses."""
        error: PowerError | None = None
        for waiting_time in DEFAULT_WAITING_POLICY:
            try:
                return await self.power_query()
            except PowerError as err:
                error = err
                await self.pause(waiting_time)
        assert error is not None
        raise error

    async def cycle(self) -> None:
        """MAAS's power cycle: off first only when on, then on."""
        if await self.query() == "on":
            await self.perform_power(self.power_off, "off")
        await self.perform_power(self.power_on, "on")
