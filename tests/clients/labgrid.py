"""labgrid's Home Assistant power driver, re-implemented from its public source.

Source: tfcollins/labgrid-plugins, adi_lg_plugins/drivers/homeassistantdriver.py
(HomeAssistantClient and HomeAssistantPowerDriver, the driver in public use with labgrid;
labgrid itself has none), commit 54c1c562bb03bf7d3a779bf8b4b12409a83c03ea. Same requests:
GET /api/ when the driver is made, POST /api/services/<domain>/turn_on|turn_off with
{"entity_id"}, GET /api/states/<entity_id> read as state == "on"; any answer that is not
2xx raises with the status and the body; cycle and reset are off, the outlet's delay
(5 s by default), on. requests is aiohttp here and the delay's sleep is injected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

type Sleep = Callable[[float], Awaitable[None]]


class HomeAssistantException(Exception):  # noqa: N818 - the driver's own name
    """What the driver raises for a failed request."""


@dataclass
class HomeAssistantPowerDriver:
    """A labgrid target's power through a Home Assistant switch (a HomeAssistantOutlet)."""

    session: aiohttp.ClientSession
    url: str
    token: str
    entity_id: str
    sleep: Sleep
    delay: float = 5.0

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
        }

    async def check_api(self) -> None:
        """What the client does when it is made: the API must answer."""
        async with self.session.get(f"{self.url}/api/", headers=self._headers) as r:
            if not r.ok:
                raise HomeAssistantException(
                    f"Failed to connect to Home Assistant at {self.url}: {r.status}"
                )

    async def _turn(self, service: str) -> None:
        domain = self.entity_id.split(".", 1)[0]
        async with self.session.post(
            f"{self.url}/api/services/{domain}/{service}",
            headers=self._headers,
            json={"entity_id": self.entity_id},
        ) as answer:
            if not answer.ok:
                verb = service.replace("_", " ")
                raise HomeAssistantException(
                    f"Failed to {verb} {self.entity_id}: {answer.status} "
                    f"{await answer.text()}"
                )

    async def on(self) -> None:
        """Turn the switch on."""
        await self._turn("turn_on")

    async def off(self) -> None:
        """Turn the switch off."""
        await self._turn("turn_off")

    async def cycle(self) -> None:
        """Off, the delay, on (reset does the same)."""
        await self.off()
        await self.sleep(self.delay)
        await self.on()

    reset = cycle

    async def get(self) -> bool:
        """Whether the switch is on."""
        async with self.session.get(
            f"{self.url}/api/states/{self.entity_id}", headers=self._headers
        ) as answer:
            if not answer.ok:
                raise HomeAssistantException(
                    f"Failed to get state of {self.entity_id}: {answer.status} "
                    f"{await answer.text()}"
                )
            return bool((await answer.json()).get("state") == "on")
