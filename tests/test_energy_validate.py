"""The Energy dashboard's own validation (energy/validate) of labpower's sensors.

With Home Assistant's recorder (its statistics are what the dashboard reads and checks).
"""

from __future__ import annotations

from homeassistant.components.energy.data import async_get_manager
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)
from pytest_homeassistant_custom_component.typing import (
    RecorderInstanceContextManager,
    WebSocketGenerator,
)

from .peers.demo import setup_demo
from .peers.ha import call
from .peers.hass_process import seed_module


@pytest.fixture
async def mock_recorder_before_hass(
    async_setup_recorder_instance: RecorderInstanceContextManager,
) -> None:
    """A recorder, set up before Home Assistant (in every test here)."""


@pytest.mark.entities_as_installed
async def test_energy_dashboard_validates_the_demo(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The demo's Energy configuration as seeded: HA's own validation finds no issue.

    Avoided energy has no statistics: the dashboard's pickers (statistics of the energy
    unit class) never list it, and set up as consumption it is an issue.
    """
    await setup_demo(hass)
    assert await async_setup_component(hass, "energy", {})
    prefs = await async_get_manager(hass)
    await prefs.async_update(seed_module().energy_prefs())
    await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await hass.async_block_till_done()
    # the recorder's five-minute statistics, as it compiles them every five minutes
    await async_wait_recording_done(hass)
    now = dt_util.utcnow()
    do_adhoc_statistics(
        hass,
        start=now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0),
    )
    await async_wait_recording_done(hass)
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "energy/validate"})
    validation = (await client.receive_json())["result"]
    assert validation == {
        "energy_sources": [[]],
        "device_consumption": [[]] * 5,
        "device_consumption_water": [],
    }
    await client.send_json_auto_id(
        {"type": "recorder/list_statistic_ids", "statistic_type": "sum"}
    )
    listed = {
        row["statistic_id"]: row["unit_class"]
        for row in (await client.receive_json())["result"]
    }
    assert listed["sensor.builder_1_energy"] == "energy"
    assert listed["sensor.demo_lab_energy"] == "energy"
    assert listed["sensor.demo_lab_cost_avoided"] is None  # money: no energy
    assert not {name for name in listed if "avoided" in name} - {
        "sensor.demo_lab_cost_avoided"
    }
    # Savings set up as consumption anyway: the validation says what is wrong.
    await prefs.async_update(
        {
            "device_consumption": [
                {"stat_consumption": "sensor.builder_1_energy_avoided"}
            ]
        }
    )
    await client.send_json_auto_id({"type": "energy/validate"})
    [issues] = (await client.receive_json())["result"]["device_consumption"]
    assert {issue["type"] for issue in issues} == {
        "statistics_not_defined",
        "entity_unexpected_state_class",
    }
