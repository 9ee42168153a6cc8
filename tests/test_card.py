"""The rack card: its websocket command, its JS served by Home Assistant, its registration."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.auth.models import User
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.labpower import entity
from custom_components.labpower.frontend import CARD_PATH, CARD_URL
from custom_components.labpower.runtime import resource_watchers

from .conftest import lab_entry, resource_data, setup_relays
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


@pytest.mark.entities_as_installed
@pytest.mark.usefixtures("init_integration")
async def test_a_small_lab_enables_its_resources_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Up to LARGE_LAB resources: all but each resource's money (the lab's is on)."""
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, init_integration.entry_id)
    disabled = {e.entity_id for e in entries if e.disabled_by}
    assert disabled == {
        f"sensor.{name}_{key}"
        for name in ("builder_1", "builder_2")
        for key in ("cost", "cost_avoided")
    }
    assert hass.states.get("sensor.builder_1_state").state == "off"
    assert hass.states.get("button.builder_1_power_cycle") is not None


@pytest.mark.entities_as_installed
async def test_a_large_lab_enables_its_power_switches_and_totals(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    mock_config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per resource only the Power switch is enabled (HA's 10,000 entities per entry).

    A resource's money sensors are not even registered.
    """
    monkeypatch.setattr(entity, "LARGE_LAB", 1)  # the two resources are a large lab
    await setup_relays(hass, "builder-1", "builder-2")
    await setup_integration(hass, mock_config_entry)
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, mock_config_entry.entry_id)
    enabled = {e.entity_id for e in entries if e.disabled_by is None}
    assert enabled == {
        "switch.builder_1_power",
        "switch.builder_2_power",
        "calendar.rack_lab_bookings",
        *(
            f"sensor.rack_lab_{key}"
            for key in (
                "resources_on",
                "holders",
                "energy",
                "energy_avoided",
                "power",
                "cost",
                "cost_avoided",
            )
        ),
    }
    disabled = {e.entity_id: e.disabled_by for e in entries if e.disabled_by}
    assert "sensor.builder_1_state" in disabled
    assert "binary_sensor.builder_1_available" in disabled
    assert "button.builder_1_power_cycle" in disabled
    assert set(disabled.values()) == {er.RegistryEntryDisabler.INTEGRATION}
    # no money per resource in a large lab (the lab's totals have it): each registered
    # entity costs a lab of thousands memory (benchmarks/test_scale.py)
    registered = {e.entity_id for e in entries}
    assert "sensor.builder_1_energy" in registered
    assert not registered & {"sensor.builder_1_cost", "sensor.builder_1_cost_avoided"}
    assert hass.states.get("sensor.builder_1_state") is None
    # The cards get no disabled entity: they take state and tokens from the websocket.
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "labpower/resources"})
    response = await client.receive_json()
    [builder_1] = [
        r for r in response["result"]["resources"] if r["name"] == "builder-1"
    ]
    assert builder_1["entities"] == {
        "power": "switch.builder_1_power",
        "state": None,
        "holders": None,
        "energy": None,
    }
    # One enabled on its device is theirs again (after the reload HA does for it).
    registry.async_update_entity("sensor.builder_1_state", disabled_by=None)
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.builder_1_state").state == "off"
    await client.send_json_auto_id({"type": "labpower/resources"})
    response = await client.receive_json()
    [builder_1] = [
        r for r in response["result"]["resources"] if r["name"] == "builder-1"
    ]
    assert builder_1["entities"]["state"] == "sensor.builder_1_state"


@pytest.mark.usefixtures("init_integration")
async def test_subscribe_resources_follows_state_and_tokens(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    init_integration: MockConfigEntry,
    hass_admin_user: User,
) -> None:
    """Changes of state and tokens come as events, each resource once per loop turn."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "labpower/subscribe_resources"})
    subscribed = await client.receive_json()
    assert subscribed["success"], subscribed
    response = await call(
        hass,
        "acquire",
        {"resource": "builder-1", "holder": "ci"},
        Context(user_id=hass_admin_user.id),
    )
    [token] = response["tokens"]
    seen: dict[str, Any] = {}
    while seen.get("state") != "available" or seen.get("holders") != 1:
        event = await client.receive_json()
        assert event["id"] == subscribed["id"]
        for changed in event["event"]["changed"]:
            assert changed["name"] == "builder-1"  # builder-2 did not change
            assert changed["lab"] == "Rack lab"
            seen = changed
    assert seen["tokens"] == [
        {
            "token": token["token"],  # the user's own (an administrator sees every id)
            "holder": "ci",
            "kind": "lease",
            "since": seen["tokens"][0]["since"],
            "expires": token["expires"],
            "exclusive": False,
            "mine": True,
        }
    ]
    await call(hass, "release", {"token": token["token"]})
    event = await client.receive_json()
    [changed] = event["event"]["changed"]
    assert (changed["holders"], changed["tokens"]) == (0, [])
    # A lab set up or unloaded: fetch everything again.
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    reloads = 0  # unloaded, then set up
    while reloads < 2:
        reloads += (await client.receive_json())["event"] == {"reload": True}
    # Unsubscribed: no more events, and the lab has no watcher left.
    await client.send_json_auto_id(
        {"type": "unsubscribe_events", "subscription": subscribed["id"]}
    )
    while (message := await client.receive_json())["type"] == "event":
        pass
    assert message["success"]
    assert resource_watchers(hass) == []
