"""MAAS's webhook power driver: its endpoints under /api/labpower/maas/."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from homeassistant.auth.models import User
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .core.model import PowerState, TokenKind, UnknownResourceError
from .http import BadRequestError, error_response, json_errors, resource_lab
from .runtime import LabRuntime

MAAS_HOLDER = "MAAS"


def _maas_status(runtime_state: PowerState) -> str:
    if runtime_state is PowerState.ON:
        return "running"
    if runtime_state is PowerState.OFF:
        return "stopped"
    return "unknown"


async def _maas_located(hass: HomeAssistant, name: str) -> LabRuntime:
    """The resource's lab; an unknown one is a 400, which MAAS reports.

    MAAS's webhook driver takes a 404 for a missing trailing slash: it asks again with
    one, but then reads the first answer as a success (see tests/maas.py).
    """
    try:
        return await resource_lab(hass, name)
    except UnknownResourceError as err:
        raise BadRequestError(str(err)) from None


class MaasView(HomeAssistantView):
    """MAAS's webhook power driver: on takes MAAS's hold, off is a power client's off."""

    url = "/api/labpower/maas/{name}/{action}"
    name = "api:labpower:maas"

    @json_errors
    async def post(self, request: web.Request, name: str, action: str) -> web.Response:
        """On or off; idempotent, as MAAS re-sends until the query agrees.

        Off releases MAAS's hold and powers off at once; while others hold the machine
        it stays on and the answer is a 409 naming them.
        """
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        runtime = await _maas_located(hass, name)
        lab = runtime.lab
        holds = [
            t
            for t in lab.ledger.tokens(name)
            # MAAS's hold is its user's: another user's off does not drop it.
            if t.holder == MAAS_HOLDER
            and t.kind is TokenKind.HOLD
            and t.user_id == user.id
        ]
        if action == "on":
            if not holds:
                lab.acquire([name], MAAS_HOLDER, kind=TokenKind.HOLD, user_id=user.id)
        elif action == "off":
            try:
                lab.power_off(
                    name, [token.id for token in holds], f"turned off by {MAAS_HOLDER}"
                )
            finally:
                await runtime.storage.async_committed()
        else:
            return error_response(
                HTTPStatus.NOT_FOUND, "not_found", f"No MAAS action {action}"
            )
        await runtime.storage.async_committed()
        return self.json({"status": _maas_status(lab.reconciler(name).power)})

    @json_errors
    async def get(self, request: web.Request, name: str, action: str) -> web.Response:
        """Query: {"status": "running"} or {"status": "stopped"} (MAAS's default regexes)."""
        hass: HomeAssistant = request.app[KEY_HASS]
        if action != "query":
            return error_response(
                HTTPStatus.NOT_FOUND, "not_found", f"No MAAS query {action}"
            )
        runtime = await _maas_located(hass, name)
        return self.json({"status": _maas_status(runtime.lab.reconciler(name).power)})
