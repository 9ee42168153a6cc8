"""Energy sensors through Home Assistant: nominal and meter-linked, restarts, unavailable meters."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.energy.data import async_get_manager
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, state


def kwh(hass: HomeAssistant, entity_id: str) -> float:
    """A sensor's value."""
    return float(state(hass, entity_id))


async def _lab(
    hass: HomeAssistant, options: dict[str, Any] | None = None, **fields: Any
) -> MockConfigEntry:
    await setup_relays(hass, "builder-1")
    entry = lab_entry(
        resource_data("builder-1", off_delay=0, min_off_time=0, **fields),
        **(options or {}),
    )
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
    await _lab(hass, power_w=500, meter_entity=meter)
    token = await _hold(hass)
    await advance(hass, freezer, 1)
    assert float(state(hass, "sensor.builder_1_power")) == 300  # measured, not nominal
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_energy") == pytest.approx(0.3, abs=0.01)
    hass.states.async_set(meter, "120", {"unit_of_measurement": "W"})
    await advance(hass, freezer, 1)
    assert float(state(hass, "sensor.builder_1_power")) == 120
    await _release(hass, token)
    assert float(state(hass, "sensor.builder_1_power")) == 0


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


async def _hold(hass: HomeAssistant) -> str:
    """A hold on builder-1, once it is on: its token."""
    response = await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    token: str = response["tokens"][0]["token"]
    return token


async def _release(hass: HomeAssistant, token: str) -> None:
    await call(hass, "release", {"token": token})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"


@pytest.mark.entities_as_installed
async def test_money_at_the_lab_price_and_power(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    hass.config.currency = "CHF"
    await _lab(hass, {"energy_price": 0.25}, power_w=1000)
    cost = hass.states.get("sensor.lab_cost_avoided")
    assert cost is not None
    assert cost.state == "0"
    assert cost.attributes["device_class"] == "monetary"
    assert cost.attributes["state_class"] == "total"
    assert cost.attributes["unit_of_measurement"] == "CHF"
    power = hass.states.get("sensor.builder_1_power")
    assert power is not None
    assert power.attributes["device_class"] == "power"
    assert power.attributes["state_class"] == "measurement"
    assert power.attributes["unit_of_measurement"] == "W"
    assert power.state == "0.0"  # off
    token = await _hold(hass)
    await advance(hass, freezer, 1)
    assert float(state(hass, "sensor.builder_1_power")) == 1000  # nominal while on
    assert float(state(hass, "sensor.lab_power")) == 1000
    await _hours(hass, freezer, 2)
    await advance(hass, freezer, 1)  # lab totals follow within a second
    assert kwh(hass, "sensor.lab_cost") == pytest.approx(0.5, abs=0.01)
    await _release(hass, token)
    await _hours(hass, freezer, 4)
    await advance(hass, freezer, 1)
    assert kwh(hass, "sensor.lab_cost_avoided") == pytest.approx(1.0, abs=0.01)
    assert kwh(hass, "sensor.lab_cost") == pytest.approx(0.5, abs=0.01)
    assert float(state(hass, "sensor.lab_power")) == 0
    # per resource, the money is there to be enabled
    for key in ("cost", "cost_avoided"):
        entry = entity_registry.async_get(f"sensor.builder_1_{key}")
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_money_at_the_energy_dashboard_price(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab(hass, power_w=1000)
    assert state(hass, "sensor.lab_cost_avoided") == "unknown"  # no price anywhere
    await _hours(hass, freezer, 1)  # off, not priced
    assert state(hass, "sensor.builder_1_cost_avoided") == "unknown"
    prefs = await async_get_manager(hass)
    solar = {"type": "solar", "stat_energy_from": "sensor.solar"}
    await prefs.async_update({"energy_sources": [solar, _grid()]})  # no price there
    await _hours(hass, freezer, 1)
    assert state(hass, "sensor.builder_1_cost_avoided") == "unknown"
    await prefs.async_update(
        {"energy_sources": [solar, _grid(), _grid(number_energy_price=0.40)]}
    )
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_cost_avoided") == pytest.approx(0.4, abs=0.01)
    # a price entity in EUR/MWh: 250 EUR/MWh is 0.25 EUR/kWh
    hass.states.async_set("sensor.tariff", "250", {"unit_of_measurement": "EUR/MWh"})
    await prefs.async_update(
        {"energy_sources": [_grid(entity_energy_price="sensor.tariff")]}
    )
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.builder_1_cost_avoided") == pytest.approx(0.65, abs=0.01)
    hass.states.async_set("sensor.tariff", "unavailable")  # not priced while unknown
    await _hours(hass, freezer, 1)
    assert kwh(hass, "sensor.lab_cost_avoided") == pytest.approx(0.65, abs=0.01)
    hass.states.async_set("sensor.tariff", "0.5", {"unit_of_measurement": "EUR"})
    await _hours(hass, freezer, 1)  # no energy unit: per kWh, as HA's cost sensor
    assert kwh(hass, "sensor.builder_1_cost_avoided") == pytest.approx(1.15, abs=0.01)
    hass.states.async_remove("sensor.tariff")
    await _hours(hass, freezer, 1)
    await advance(hass, freezer, 1)  # lab totals follow within a second
    assert kwh(hass, "sensor.lab_cost_avoided") == pytest.approx(1.15, abs=0.01)


def _grid(**price: Any) -> dict[str, Any]:
    """A grid connection of the Energy dashboard with an import price."""
    return {
        "type": "grid",
        "stat_energy_from": "sensor.grid_import",
        "stat_energy_to": None,
        "stat_cost": None,
        "entity_energy_price": None,
        "number_energy_price": None,
        "stat_compensation": None,
        "entity_energy_price_export": None,
        "number_energy_price_export": None,
        "cost_adjustment_day": 0.0,
        **price,
    }
