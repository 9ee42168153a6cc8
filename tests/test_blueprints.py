"""The shipped blueprints load in Home Assistant and do what they say."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .peers.ha import call, holders, state

BLUEPRINTS = Path(__file__).parent.parent / "blueprints"


@pytest.fixture
def lab_with_blueprints(
    hass: HomeAssistant, tmp_path: Path, init_integration: MockConfigEntry
) -> None:
    """The lab, and the blueprints where Home Assistant looks for them."""
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints")
    hass.config.config_dir = str(tmp_path)


async def _automation(hass: HomeAssistant, path: str, inputs: dict[str, Any]) -> None:
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {"use_blueprint": {"path": f"labpower/{path}", "input": inputs}}
            ]
        },
    )
    await hass.async_block_till_done()
    automations = hass.states.async_entity_ids("automation")
    assert len(automations) == 1
    assert state(hass, automations[0]) == "on"


@pytest.mark.usefixtures("lab_with_blueprints")
async def test_ci_webhook(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "webhook", {})
    await _automation(hass, "ci_webhook.yaml", {"webhook_id": "ci-secret", "ttl": 600})
    client = await hass_client_no_auth()

    async def hook(body: dict[str, Any]) -> None:
        response = await client.post("/api/webhook/ci-secret", json=body)
        assert response.status == 200
        await hass.async_block_till_done()

    await hook({"action": "acquire", "resource": "builder-1", "holder": "jenkins #42"})
    await hook({"action": "acquire", "resource": "builder-1", "holder": "jenkins #43"})
    assert await holders(hass, "builder-1") == "2"
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    listed = await call(hass, "list", {"resource": "builder-1"})
    assert {t["holder"] for t in listed["resources"][0]["tokens"]} == {
        "jenkins #42",
        "jenkins #43",
    }
    await hook({"action": "release", "resource": "builder-1", "holder": "jenkins #42"})
    await hook({"action": "release", "resource": "builder-1", "holder": "jenkins #42"})
    await hook({"action": "reboot", "resource": "builder-1"})  # ignored
    listed = await call(hass, "list", {"resource": "builder-1"})
    assert [t["holder"] for t in listed["resources"][0]["tokens"]] == ["jenkins #43"]


@pytest.mark.usefixtures("lab_with_blueprints")
async def test_notify_fault(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "persistent_notification", {})
    await _automation(
        hass,
        "notify_fault.yaml",
        {"state_sensors": ["sensor.builder_1_state", "sensor.builder_2_state"]},
    )
    # builder-1's relay disappears: the resource goes to fault, and the notification says why
    hass.states.async_remove("input_boolean.builder_1_relay")
    await call(hass, "acquire", {"resource": "builder-1"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_state") == "fault"
    [notification] = persistent_notification._async_get_or_create_notifications(
        hass
    ).values()
    assert notification["title"] == "labpower: builder-1 is in fault"
    assert "input_boolean.builder_1_relay does not exist" in notification["message"]


@pytest.mark.usefixtures("lab_with_blueprints")
@pytest.mark.parametrize(
    "expected_lingering_timers", [True]
)  # tomorrow's time triggers
async def test_working_hours(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    # Monday 07:59
    freezer.move_to(
        datetime(2026, 11, 23, 7, 59, 0, tzinfo=dt_util.get_default_time_zone())
    )
    await _automation(
        hass,
        "working_hours.yaml",
        {"power_switches": ["switch.builder_1_power", "switch.builder_2_power"]},
    )
    freezer.move_to(
        datetime(2026, 11, 23, 8, 0, 1, tzinfo=dt_util.get_default_time_zone())
    )
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state(hass, "switch.builder_1_power") == "on"
    assert state(hass, "sensor.builder_2_holders") == "1"
    # someone still uses builder-2 in the evening
    await call(
        hass, "acquire", {"resource": "builder-2", "holder": "late job", "kind": "hold"}
    )
    freezer.move_to(
        datetime(2026, 11, 23, 18, 0, 1, tzinfo=dt_util.get_default_time_zone())
    )
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "0"
    listed = await call(hass, "list", {"resource": "builder-2"})
    assert [t["holder"] for t in listed["resources"][0]["tokens"]] == ["late job"]


@pytest.mark.usefixtures("lab_with_blueprints")
async def test_ups_on_battery(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "persistent_notification", {})
    hass.states.async_set("sensor.ups_status", "Online")
    await _automation(hass, "ups_on_battery.yaml", {"ups_status": "sensor.ups_status"})
    events = async_capture_events(hass, "labpower_ups_on_battery")
    await call(hass, "acquire", {"resource": "builder-2", "holder": "nightly build"})
    hass.states.async_set("sensor.ups_status", "Online Charging")
    await hass.async_block_till_done()
    assert events == []
    hass.states.async_set("sensor.ups_status", "On Battery")
    await hass.async_block_till_done()
    hass.states.async_set("sensor.ups_status", "On Battery Battery Discharging")
    await hass.async_block_till_done()
    [event] = events  # once, when it went on battery
    assert event.data == {
        "ups_status": "On Battery",
        "resources": ["builder-2"],
        "holders": ["nightly build"],
    }
    [notification] = persistent_notification._async_get_or_create_notifications(
        hass
    ).values()
    assert "builder-2" in notification["message"]
    assert "nightly build" in notification["message"]
