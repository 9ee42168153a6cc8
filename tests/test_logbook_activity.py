"""The logbook of a resource's device page (its Activity card) has labpower's entries.

A module of its own: the recorder must be set up before the hass fixture (HA's rule for
recorder tests), so every test here has it.
"""

from __future__ import annotations

from collections.abc import Generator

from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import call, state


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> Generator[None]:
    """The recorder first, then labpower from custom_components."""
    return


async def test_device_activity_has_labpowers_entries(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """A resource's device page Activity (the logbook by device) shows labpower's entries.

    Asked as the device page asks it (logbook/get_events with its device id): who caused
    each change, the child a dependency was powered on for, labpower's icons; nothing of
    another device.
    """
    assert await async_setup_component(hass, "logbook", {})
    await setup_relays(hass, "switch-1", "host-1")
    entry = lab_entry(
        resource_data("switch-1"), resource_data("host-1", depends_on=["switch-1"])
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    start = dt_util.utcnow()
    await call(hass, "acquire", {"resource": "host-1", "holder": "alice"})
    for _ in range(5):
        await hass.async_block_till_done()
    assert state(hass, "input_boolean.host_1_relay") == "on"
    await async_wait_recording_done(hass)
    devices = dr.async_get(hass)
    client = await hass_ws_client(hass)

    async def activity(name: str) -> list[tuple[str, str, str]]:
        device = devices.async_get_device_by_identifier(
            ("labpower", f"sub_{name}"), entry.entry_id
        )
        assert device is not None
        await client.send_json_auto_id(
            {
                "type": "logbook/get_events",
                "start_time": start.isoformat(),
                "device_ids": [device.id],
            }
        )
        response = await client.receive_json()
        assert response["success"], response
        return [
            (e["name"], e["message"], e["icon"])
            for e in response["result"]
            if e.get("domain") == "labpower"
        ]

    assert await activity("host-1") == [
        ("host-1", "was acquired by alice", "mdi:account-multiple"),
        ("host-1", "was powered on (acquired by alice)", "mdi:power"),
    ]
    assert await activity("switch-1") == [
        (
            "switch-1",
            "was powered on (needed by host-1 (acquired by alice))",
            "mdi:power",
        ),
    ]
