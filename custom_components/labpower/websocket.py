"""Websocket commands of the frontend's cards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeassistant.auth.models import User
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import probatio as vol

from .const import DOMAIN
from .operations import resource_view, runtimes
from .runtime import LabRuntime, resource_watchers

# The entities the cards use: the card's name for each, its platform and unique id suffix.
_ENTITIES = {
    "power": (Platform.SWITCH, "power"),
    "state": (Platform.SENSOR, "state"),
    "holders": (Platform.SENSOR, "holders"),
    "energy": (Platform.SENSOR, "energy"),
}
# The lab's (savings in the cards' header).
_LAB_ENTITIES = {"cost_avoided": (Platform.SENSOR, "cost_avoided_total")}


@callback
def async_register_websocket(hass: HomeAssistant) -> None:
    """Register labpower/resources and labpower/subscribe_resources."""
    async_register_command(hass, websocket_resources)
    async_register_command(hass, websocket_subscribe_resources)


def _view(runtime: LabRuntime, name: str, user: User) -> dict[str, Any]:
    """One resource as the cards see it, with the user's token ids."""
    view = resource_view(
        runtime, name, tokens=True, shown_to=user.id, admin=user.is_admin
    )
    view["lab"] = runtime.entry.title
    return view


def _entity_ids(
    registry: er.EntityRegistry,
    owner_id: str,
    wanted: Mapping[str, tuple[Platform, str]],
) -> dict[str, str | None]:
    """The enabled entities of a resource's subentry or a lab's entry the cards use.

    None: disabled or not there.
    """
    found: dict[str, str | None] = {}
    for name, (platform, key) in wanted.items():
        entity_id = registry.async_get_entity_id(platform, DOMAIN, f"{owner_id}_{key}")
        entry = None if entity_id is None else registry.async_get(entity_id)
        found[name] = entity_id if entry is not None and not entry.disabled else None
    return found


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
    entities' attributes, which every user sees, carry none). Entities disabled (most are,
    by default) are None: the cards follow labpower/subscribe_resources instead.
    """
    registry = er.async_get(hass)
    resources: list[dict[str, Any]] = []
    labs: list[dict[str, Any]] = []
    for runtime in runtimes(hass):
        labs.append(
            {
                "name": runtime.entry.title,
                "entities": _entity_ids(
                    registry, runtime.entry.entry_id, _LAB_ENTITIES
                ),
            }
        )
        for name in runtime.lab.names:
            view = _view(runtime, name, connection.user)
            view["entities"] = _entity_ids(
                registry, runtime.subentry_of[name], _ENTITIES
            )
            resources.append(view)
    connection.send_result(msg["id"], {"resources": resources, "labs": labs})


@websocket_command({vol.Required("type"): "labpower/subscribe_resources"})
@callback
def websocket_subscribe_resources(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Live changes of the resources' state and tokens, as labpower/resources shows them.

    Events: `{"changed": [resource, ...]}` (what changed within one turn of the event
    loop, each resource once), `{"reload": true}` when a lab was set up or unloaded (fetch
    labpower/resources again).
    """
    pending: dict[tuple[str, str], LabRuntime] = {}
    scheduled = False

    @callback
    def flush() -> None:
        nonlocal scheduled
        scheduled = False
        changed = [
            _view(runtime, name, connection.user)
            for (_, name), runtime in pending.items()
            if name in runtime.lab.names
        ]
        pending.clear()
        if changed:
            connection.send_message(event_message(msg["id"], {"changed": changed}))

    @callback
    def watch(runtime: LabRuntime, names: Iterable[str] | None) -> None:
        nonlocal scheduled
        if names is None:
            pending.clear()
            connection.send_message(event_message(msg["id"], {"reload": True}))
            return
        entry_id = runtime.entry.entry_id
        for name in names:
            pending[entry_id, name] = runtime
        if pending and not scheduled:
            scheduled = True
            hass.loop.call_soon(flush)

    watchers = resource_watchers(hass)
    watchers.append(watch)

    @callback
    def unsubscribe() -> None:
        watchers.remove(watch)
        pending.clear()

    connection.subscriptions[msg["id"]] = unsubscribe
    connection.send_result(msg["id"])
