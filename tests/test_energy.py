"""Energy sensors through Home Assistant: nominal and meter-linked, restarts, unavailable meters."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, state


def kwh(hass: HomeAssistant, entity_id: str) -> float:
    """A sensor's value."""
    return float(state(hass, entity_id))


async def _lab(hass: HomeAssistant, **fields: Any) -> MockConfigEntry:
    await setup_relays(hass, "builder-1")
    entry = lab_entry(resource_data("builder-1", off_delay=0, min_off_time=0, **fields))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _hours(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, hours: float
) -> None:
    for _ in range(int(hours * 4)):
        await advance(hass, freezer, 900)


async def test_nominal_energy_and_avoided(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab(hass, power_w=200)
    attributes = hass.states.get("sensor.builder_1_energy").attributes
    assert attributes["device_class"] == "energy"
    assert attributes["state_class"] == "total_increasing"
    assert attributes["unit_of_measurement"] == "kWh"
    token = (await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"}))[
        "tokens"
    ][0]
    await hass.async_block_till_done()
    await _hours(hass, freezer, 2)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.4, abs=0.01)
    assert kwh(hass, "sensor.builder_1_hours_on") == pytest.approx(2, abs=0.05)
    await call(hass, "release", {"token": token["token"]})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    await _hours(hass, freezer, 3)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.4, abs=0.01)
    assert kwh(hass, "sensor.builder_1_energy_avoided") == pytest.approx(0.6, abs=0.01)
    await advance(hass, freezer, 1)  # lab totals follow within a second
    assert kwh(hass, "sensor.lab_energy") == kwh(hass, "sensor.builder_1_energy")
    assert kwh(hass, "sensor.lab_energy_avoided") == kwh(
        hass, "sensor.builder_1_energy_avoided"
    )


async def test_energy_meter_with_gap(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    meter = "sensor.plug_energy"
    hass.states.async_set(meter, "100.0", {"unit_of_measurement": "kWh"})
    await _lab(hass, power_w=500, meter_entity=meter)
    await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await hass.async_block_till_done()
    hass.states.async_set(meter, "100.25", {"unit_of_measurement": "kWh"})
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(
        0.25
    )  # metered, not nominal
    hass.states.async_set(meter, "unavailable", {"unit_of_measurement": "kWh"})
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.25)
    hass.states.async_set(meter, "100.75", {"unit_of_measurement": "kWh"})
    await hass.async_block_till_done()
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.75)  # the gap, once


async def test_power_meter_in_watts(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    meter = "sensor.plug_power"
    hass.states.async_set(meter, "0.3", {"unit_of_measurement": "kW"})
    await _lab(hass, meter_entity=meter)
    await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await hass.async_block_till_done()
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.3, abs=0.01)


async def test_restart_neither_jumps_nor_double_counts(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    entry = await _lab(hass, power_w=100)
    await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await hass.async_block_till_done()
    await _hours(hass, freezer, 1)
    before = kwh(hass, "sensor.builder_1_energy")
    assert before == pytest.approx(0.1, abs=0.005)
    assert await hass.config_entries.async_unload(entry.entry_id)
    freezer.tick(5 * 3600)  # down for five hours: not counted
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(before, abs=0.001)
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(
        before + 0.1, abs=0.005
    )
