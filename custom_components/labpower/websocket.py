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
    "energy": Platform.SENSOR,
}
# The lab's entities the cards use (savings in their header), by the card's name for them.
_LAB_ENTITIES = {"cost_avoided": "cost_avoided_total"}


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
    """Every resource of every loaded lab and every lab, with their entity ids.

    A resource: labels, state, tokens and entity ids; a lab: its name and its own entities.
    Token ids only of the user's own tokens, or all of them for an administrator (the
    entities' attributes, which every user sees, carry none).
    """
    registry = er.async_get(hass)
    user = connection.user
    resources: list[dict[str, Any]] = []
    labs: list[dict[str, Any]] = []
    for runtime in runtimes(hass):
        entry_id = runtime.entry.entry_id
        labs.append(
            {
                "name": runtime.entry.title,
                "entities": {
                    name: registry.async_get_entity_id(
                        Platform.SENSOR, DOMAIN, f"{entry_id}_{key}"
                    )
                    for name, key in _LAB_ENTITIES.items()
                },
            }
        )
        for name in runtime.lab.names:
            subentry_id = runtime.subentry_of[name]
            view = resource_view(
                runtime, name, tokens=True, shown_to=user.id, admin=user.is_admin
            )
            view["lab"] = runtime.entry.title
            view["entities"] = {
                key: registry.async_get_entity_id(
                    platform, DOMAIN, f"{subentry_id}_{key}"
                )
                for key, platform in _ENTITIES.items()
            }
            resources.append(view)
    connection.send_result(msg["id"], {"resources": resources, "labs": labs})
