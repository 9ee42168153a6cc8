"""Websocket commands of the frontend's rack card."""

from __future__ import annotations

from typing import Any

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import probatio as vol

from .const import DOMAIN
from .operations import resource_view, runtimes

# The entities the card uses, by their description's key.
_ENTITIES = {
    "power": Platform.SWITCH,
    "state": Platform.SENSOR,
    "holders": Platform.SENSOR,
}


@callback
def async_register_websocket(hass: HomeAssistant) -> None:
    """Register labpower/resources."""
    async_register_command(hass, websocket_resources)


@websocket_command({vol.Required("type"): "labpower/resources"})
@callback
def websocket_resources(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Every resource of every loaded lab: labels, state, holders and its entity ids."""
    registry = er.async_get(hass)
    resources: list[dict[str, Any]] = []
    for runtime in runtimes(hass):
        for name in runtime.lab.names:
            subentry_id = runtime.subentry_of[name]
            view = resource_view(
                runtime, name, tokens=False, shown_to=None, admin=False
            )
            view["lab"] = runtime.entry.title
            view["entities"] = {
                key: registry.async_get_entity_id(
                    platform, DOMAIN, f"{subentry_id}_{key}"
                )
                for key, platform in _ENTITIES.items()
            }
            resources.append(view)
    connection.send_result(msg["id"], {"resources": resources})
