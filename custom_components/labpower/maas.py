"""MAAS's webhook power driver: its endpoints under /api/labpower/maas/."""

from __future__ import annotations

from aiohttp import web
from homeassistant.auth.models import User
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .core.model import PowerState, TokenKind, UnknownResourceError, UsageToken
from .http import BadRequestError, json_errors, resource_lab
from .runtime import LabRuntime

MAAS_HOLDER = "MAAS"


def _status(runtime: LabRuntime, name: str) -> dict[str, str]:
    """The answer MAAS's regexes read: running, stopped or unknown."""
    power = runtime.lab.reconciler(name).power
    if power is PowerState.ON:
        return {"status": "running"}
    if power is PowerState.OFF:
        return {"status": "stopped"}
    return {"status": "unknown"}


async def _maas_located(hass: HomeAssistant, name: str) -> LabRuntime:
    """The resource's lab; an unknown one is a 400, which MAAS reports.

    MAAS's webhook driver takes a 404 for a missing trailing slash: it asks again with
    one, but then reads the first answer as a success (see tests/maas.py).
    """
    try:
        return await resource_lab(hass, name)
    except UnknownResourceError as err:
        raise BadRequestError(str(err)) from None


class MaasOnView(HomeAssistantView):
    """MAAS's power_on_uri: takes the MAAS user's hold (idempotent: MAAS re-sends)."""

    url = "/api/labpower/maas/{name}/on"
    name = "api:labpower:maas:on"

    @json_errors
    async def post(self, request: web.Request, name: str) -> web.Response:
        """One hold of the calling MAAS user's; a second on takes no other."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        runtime = await _maas_located(hass, name)
        if not _maas_holds(runtime, name, user):
            runtime.lab.acquire(
                [name], MAAS_HOLDER, kind=TokenKind.HOLD, user_id=user.id
            )
        await runtime.storage.async_committed()
        return self.json(_status(runtime, name))


class MaasOffView(HomeAssistantView):
    """MAAS's power_off_uri: a power client's off (idempotent)."""

    url = "/api/labpower/maas/{name}/off"
    name = "api:labpower:maas:off"

    @json_errors
    async def post(self, request: web.Request, name: str) -> web.Response:
        """Releases the calling MAAS user's hold and powers off at once.

        While others hold the machine (another user's MAAS hold too) it stays on and
        the answer is a 409 naming them.
        """
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        runtime = await _maas_located(hass, name)
        holds = [token.id for token in _maas_holds(runtime, name, user)]
        try:
            runtime.lab.power_off(name, holds, f"turned off by {MAAS_HOLDER}")
        finally:
            await runtime.storage.async_committed()
        return self.json(_status(runtime, name))


class MaasQueryView(HomeAssistantView):
    """MAAS's power_query_uri."""

    url = "/api/labpower/maas/{name}/query"
    name = "api:labpower:maas:query"

    @json_errors
    async def get(self, request: web.Request, name: str) -> web.Response:
        """{"status": "running"} or {"status": "stopped"} (MAAS's default regexes)."""
        hass: HomeAssistant = request.app[KEY_HASS]
        runtime = await _maas_located(hass, name)
        return self.json(_status(runtime, name))


def _maas_holds(runtime: LabRuntime, name: str, user: User) -> list[UsageToken]:
    """MAAS's holds on a resource taken by this user: another user's are not its own."""
    return [
        token
        for token in runtime.lab.ledger.tokens(name)
        if token.holder == MAAS_HOLDER
        and token.kind is TokenKind.HOLD
        and token.user_id == user.id
    ]


MAAS_VIEWS: tuple[type[HomeAssistantView], ...] = (
    MaasOnView,
    MaasOffView,
    MaasQueryView,
)
