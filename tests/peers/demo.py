"""The demo lab of scripts/develop in a test's Home Assistant, in fast motion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .hass_process import seed_module

CONFIG = Path(__file__).parent.parent.parent / "config"
# The lab's policy in fast motion: off a moment after the last release.
FAST = {"off_delay": 0.1, "min_off_time": 0}


def demo_configuration() -> dict[str, Any]:
    """config/configuration.yaml as shipped."""
    return load_yaml_dict(CONFIG / "configuration.yaml")


async def setup_demo(hass: HomeAssistant, *, shipped: bool = False) -> MockConfigEntry:
    """The demo's simulated devices and its lab, boot times shrunk.

    The lab's off delays too, unless `shipped` (its policy as the seed writes it).
    """
    configuration = demo_configuration()
    for sensor in configuration["template"][0]["binary_sensor"]:
        if "delay_on" in sensor:
            sensor["delay_on"] = {"milliseconds": 50}
    for domain in ("input_boolean", "template", "automation"):
        assert await async_setup_component(
            hass, domain, {domain: configuration[domain]}
        )
    await hass.async_block_till_done()
    demo = seed_module().demo_entry()
    entry = MockConfigEntry(
        domain=demo.domain,
        title=demo.title,
        data=dict(demo.data),
        subentries_data=[
            {
                "data": {**sub.data, **({} if shipped else FAST)},
                "subentry_type": sub.subentry_type,
                "title": sub.title,
                "unique_id": sub.unique_id,
            }
            for sub in demo.subentries.values()
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
