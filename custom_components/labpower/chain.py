"""The power chain of a resource: each feed up to the mains, and whether it is healthy."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .core.model import PowerState
from .drivers.pdu import PduOutletSwitcher, UnusableOutlet
from .runtime import LabRuntime
from .ups import UpsLevel, ups_level


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One feed: its chain as text ("psu1 -> pdu1:outlet1 -> ups1") and its health."""

    chain: str
    healthy: bool
    reason: str | None = None


def feed_health(runtime: LabRuntime, name: str) -> list[FeedHealth]:
    """Every feed of a resource with its chain and health.

    A feed is unhealthy when its outlet is off or unknown, its unit does not answer, or
    the UPS feeding its unit runs on battery.
    """
    feeds = runtime.lab.spec(name).feeds
    health: list[FeedHealth] = []
    for number, feed in enumerate(feeds, start=1):
        links = [f"psu{number}", feed.description]
        reason: str | None = None
        if isinstance(feed, UnusableOutlet):
            reason = feed.reason
        elif isinstance(feed, PduOutletSwitcher):
            unit = runtime.units.get(feed.unit_name)
            if unit is None or not unit.last_update_success:
                reason = "unit unreachable"
            elif unit.outlet_state(feed.outlet) is not PowerState.ON:
                reason = f"outlet {unit.outlet_state(feed.outlet).value}"
            if unit is not None and unit.ups_entity:
                links.append(ups_name(runtime.hass, unit.ups_entity))
                level = ups_level(runtime.hass.states.get(unit.ups_entity))
                if reason is None and level >= UpsLevel.ON_BATTERY:
                    reason = level.name.lower().replace("_", " ")
        elif runtime.lab.reconciler(name).power is not PowerState.ON:
            reason = f"feed {runtime.lab.reconciler(name).power.value}"
        health.append(FeedHealth(" -> ".join(links), reason is None, reason))
    return health


def ups_name(hass: HomeAssistant, entity_id: str) -> str:
    """A UPS as people call it: its device's name (NUT names it), else the entity's."""
    entry = er.async_get(hass).async_get(entity_id)
    if entry is not None and entry.device_id is not None:
        device = dr.async_get(hass).async_get(entry.device_id)
        if device is not None and (device.name_by_user or device.name):
            return str(device.name_by_user or device.name)
    state = hass.states.get(entity_id)
    return state.name if state is not None else entity_id


def ups_entities_of(runtime: LabRuntime, name: str) -> list[str]:
    """The UPS entities a resource's feeds hang on."""
    found: list[str] = []
    for feed in runtime.lab.spec(name).feeds:
        if isinstance(feed, PduOutletSwitcher):
            unit = runtime.units.get(feed.unit_name)
            if unit is not None and unit.ups_entity and unit.ups_entity not in found:
                found.append(unit.ups_entity)
    return found
