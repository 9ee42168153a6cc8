"""The rack card: its websocket command, its JS served by Home Assistant, its registration."""

from __future__ import annotations

import json

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.labpower.frontend import CARD_PATH, CARD_URL

from .conftest import lab_entry, resource_data
from .peers.ha import call, setup_integration

VERSION = json.loads(
    (CARD_PATH.parent.parent / "manifest.json").read_text(encoding="utf-8")
)["version"]


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """builder-1 in rack A at slot 2, builder-2 unracked."""
    return lab_entry(
        resource_data("builder-1", labels=["rack:A", "position:A/2", "amd64"]),
        resource_data("builder-2"),
        title="Rack lab",
    )


@pytest.mark.usefixtures("init_integration")
async def test_websocket_resources(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci"})
    await hass.async_block_till_done()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "labpower/resources"})
    response = await client.receive_json()
    assert response["success"], response
    resources = {r["name"]: r for r in response["result"]["resources"]}
    assert set(resources) == {"builder-1", "builder-2"}
    builder_1 = resources["builder-1"]
    assert builder_1["labels"] == ["amd64", "position:A/2", "rack:A"]
    assert builder_1["lab"] == "Rack lab"
    assert builder_1["holders"] == 1
    assert builder_1["state"] in {"starting", "available"}
    assert builder_1["entities"] == {
        "power": "switch.builder_1_power",
        "state": "sensor.builder_1_state",
        "holders": "sensor.builder_1_holders",
        "energy": "sensor.builder_1_energy",
    }
    # The card reads the live values from these entities.
    assert hass.states.get("sensor.builder_1_holders").state == "1"
    assert resources["builder-2"]["holders"] == 0
    assert resources["builder-2"]["state"] == "off"
    # The lab's own: the cards' savings line reads its Cost avoided.
    assert response["result"]["labs"] == [
        {
            "name": "Rack lab",
            "entities": {"cost_avoided": "sensor.rack_lab_cost_avoided"},
        }
    ]


@pytest.mark.usefixtures("init_integration")
async def test_websocket_follows_renamed_entities(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """Entity ids come from the registry (by unique id), so a rename is followed."""
    registry = er.async_get(hass)
    registry.async_update_entity(
        "switch.builder_2_power", new_entity_id="switch.rack_b_slot_1"
    )
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "labpower/resources"})
    response = await client.receive_json()
    [builder_2] = [
        r for r in response["result"]["resources"] if r["name"] == "builder-2"
    ]
    assert builder_2["entities"]["power"] == "switch.rack_b_slot_1"


async def test_websocket_without_labs(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    assert await async_setup_component(hass, "labpower", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "labpower/resources"})
    response = await client.receive_json()
    assert response["success"]
    assert response["result"] == {"resources": [], "labs": []}


@pytest.mark.usefixtures("init_integration")
async def test_card_is_served(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    client = await hass_client()
    response = await client.get(f"{CARD_URL}?v={VERSION}")
    assert response.status == 200
    assert response.content_type in {"text/javascript", "application/javascript"}
    body = await response.text()
    assert body == CARD_PATH.read_text(encoding="utf-8")
    assert "customElements.define(CARD, LabpowerRackCard)" in body
    assert "window.customCards" in body


async def test_card_is_loaded_by_the_frontend(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """With the frontend, every page loads the card's module (with the version)."""
    assert await async_setup_component(hass, "frontend", {})
    await setup_integration(hass, mock_config_entry)
    urls = hass.data[DATA_EXTRA_MODULE_URL].urls
    assert f"{CARD_URL}?v={VERSION}" in urls
