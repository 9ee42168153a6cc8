"""The config flows as a test walks them: the first forms, the errors as the UI shows them."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.labpower.const import DOMAIN, SUBENTRY_PDU, SUBENTRY_RESOURCE

# The policy fields of a resource's details form, every one set.
POLICY = {
    "off_delay": 60,
    "min_off_time": 5,
    "start_timeout": 120,
    "stop_timeout": 60,
    "default_ttl": 600,
    "max_ttl": 3600,
    "graceful_off": True,
    "off_now": True,
}


async def error_text(
    hass: HomeAssistant, key: str, placeholders: dict[str, Any]
) -> str:
    """A resource form's error as the UI shows it (English)."""
    strings = await async_get_translations(hass, "en", "config_subentries", [DOMAIN])
    template = strings[f"component.{DOMAIN}.config_subentries.resource.error.{key}"]
    return template.format(**placeholders)


async def resource_form(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, switcher: str
) -> dict[str, Any]:
    """A new resource's details form."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": name, "switcher_type": switcher, "checker_type": "none"},
    )
    assert result["step_id"] == "details"
    return dict(result)


async def unit_flow(
    hass: HomeAssistant, entry: MockConfigEntry, first: dict[str, Any]
) -> Any:
    """Start adding a unit: its name, vendor and address (the first form)."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_PDU), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], first
    )
