"""The demo lab of scripts/develop works with no hardware: acquire, start, available, off."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .test_safety import error_text, resource_form
from .test_services import call, state

CONFIG = Path(__file__).parent.parent / "config"


def _seed_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "demo_seed", CONFIG / "demo" / "seed.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_demo_lab(hass: HomeAssistant) -> None:
    configuration = load_yaml_dict(CONFIG / "configuration.yaml")
    seed = _seed_module()
    # As shipped: hosts boot within a minute, resources go off 30 s after the last release.
    sensors = configuration["template"][0]["binary_sensor"]
    assert all(sensor.get("delay_on", 0) <= 60 for sensor in sensors)
    assert seed.DEMO_POLICY["off_delay"] == 30
    # Here in fast motion: the same configuration with boot times and delays shrunk.
    for sensor in sensors:
        if "delay_on" in sensor:
            sensor["delay_on"] = {"milliseconds": 50}
    for domain in ("input_boolean", "template", "automation"):
        assert await async_setup_component(
            hass, domain, {domain: configuration[domain]}
        )
    await hass.async_block_till_done()
    demo = seed.demo_entry()
    entry = MockConfigEntry(
        domain=demo.domain,
        title=demo.title,
        data=dict(demo.data),
        subentries_data=[
            {
                "data": {**sub.data, "off_delay": 0.1, "min_off_time": 0},
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
    assert {r["name"] for r in (await call(hass, "list", {}))["resources"]} == {
        "builder-1",
        "builder-2",
        "ci-runner",
        "network-switch",
        "pi-maas",
    }

    response = await call(
        hass,
        "acquire",
        {"resource": ["builder-1", "pi-maas"], "wait": "available", "timeout": 10},
    )
    assert {t["state"] for t in response["tokens"]} == {"available"}
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    assert state(hass, "input_boolean.switch_relay") == "on"  # builder-1 needs it
    assert (
        state(hass, "input_boolean.atx_machine_power") == "on"
    )  # the front panel was pressed
    await asyncio.sleep(1.1)  # lab totals follow within a second
    assert state(hass, "sensor.demo_lab_resources_on") == "3"

    await call(hass, "release", {"token": [t["token"] for t in response["tokens"]]})
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert state(hass, "sensor.builder_1_state") == "off"
    # the pi was asked to shut down with a short press: the simulated board turned off
    assert state(hass, "input_boolean.atx_machine_power") == "off"
    assert state(hass, "sensor.pi_maas_state") == "off"

    # one feed, one owner: a new resource on builder-1's relay is refused, by name
    result = await resource_form(hass, entry, "builder-3", "entity")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"power_entity": "input_boolean.builder_1_relay", **seed.DEMO_POLICY},
    )
    assert result["errors"] == {"power_entity": "feed_in_use"}
    assert await error_text(
        hass, "feed_in_use", result["description_placeholders"]
    ) == (
        "input_boolean.builder_1_relay already feeds builder-1. A feed powers one "
        "resource only: if several machines share it (a Pi stack's relay), add it "
        "as a resource of its own and let them depend on it."
    )
