"""labpower: power lab machines on demand, with usage tokens."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .assist import async_refresh_assist, async_setup_assist
from .bookings import LabBookings, async_remove_bookings
from .const import DOMAIN, FILE_KEY_PREFIX
from .frontend import async_register_card
from .http import async_register_views
from .maas import MAAS_VIEWS
from .runtime import LabpowerConfigEntry, LabRuntime, lab_changed
from .services import async_setup_services
from .storage import async_remove_storage
from .websocket import async_register_websocket

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CALENDAR,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the labpower actions, the REST API (with MAAS's) and the rack card."""
    async_setup_services(hass)
    async_register_views(hass, *MAAS_VIEWS)
    async_register_websocket(hass)
    async_setup_assist(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LabpowerConfigEntry) -> bool:
    """Set up a Lab: restore tokens, read every resource's state, then reconcile."""
    # The lab's device first: every resource's device hangs off it.
    lab_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="labpower",
        model="Lab",
    )
    runtime = LabRuntime(hass, entry, lab_device_id=lab_device.id)
    await runtime.async_start()
    runtime.bookings = LabBookings(runtime)
    await runtime.bookings.async_start()
    entry.runtime_data = runtime
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    _remove_stale_file_devices(hass, entry)
    async_refresh_assist(hass)
    lab_changed(hass, runtime)
    return True


def _remove_stale_file_devices(hass: HomeAssistant, entry: LabpowerConfigEntry) -> None:
    """Drop the devices of resources and units the lab file no longer defines."""
    runtime = entry.runtime_data
    current = set(runtime.subentry_of.values()) | {
        unit.subentry_id for unit in runtime.units.values()
    }
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        keys = {key for domain, key in device.identifiers if domain == DOMAIN}
        if any(k.startswith(FILE_KEY_PREFIX) for k in keys) and not keys & current:
            registry.async_remove_device(device.id)


async def _async_reload(hass: HomeAssistant, entry: LabpowerConfigEntry) -> None:
    """Resources were added, changed or removed: reload (tokens are kept in storage)."""
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: LabpowerConfigEntry) -> bool:
    """Unload a Lab: stop its workers and write its ledger (power is left as it is)."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.bookings.async_stop()
        await entry.runtime_data.async_stop()
        async_refresh_assist(hass)
        lab_changed(hass, entry.runtime_data)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: LabpowerConfigEntry) -> None:
    """Forget a removed Lab's stored tokens and bookings."""
    await async_remove_storage(hass, entry.entry_id)
    await async_remove_bookings(hass, entry.entry_id)
