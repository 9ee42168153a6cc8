"""Home Assistant starting is not a fault: nothing is switched before it runs, nothing is "unknown".

While Home Assistant starts, the entities a resource is switched by may not exist yet and
template sensors have not evaluated: resources stay `unknown`, tokens can be taken, and the
first switch happens once Home Assistant has started. Until every lab has loaded, the actions
and the REST API wait for it (bounded), then answer "try again" (503 with Retry-After), never
"unknown resource", "unknown token" or an empty list.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower import operations
from custom_components.labpower.const import DOMAIN

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import call, state


async def test_nothing_switched_before_home_assistant_runs(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    hass.set_state(CoreState.starting)
    entry = lab_entry(resource_data("builder-1", off_delay=0))
    entry.add_to_hass(hass)
    switched: list[str] = []
    hass.bus.async_listen(
        "call_service",
        lambda event: switched.append(event.data["service"]),
    )
    # The lab loads before the relay's integration: the relay does not exist yet.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, "sensor.builder_1_state") == "unknown"
    # A CI job retrying right after an update: its acquire waits instead of failing.
    waiting = asyncio.create_task(
        call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 30},
        )
    )
    await setup_relays(hass, "builder-1")
    await hass.async_block_till_done()
    assert not waiting.done()
    assert state(hass, "sensor.builder_1_state") == "unknown"
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert "turn_on" not in switched
    assert not [
        record
        for record in caplog.records
        if record.name.startswith("custom_components.labpower")
        and record.levelno >= logging.WARNING
    ]

    hass.set_state(CoreState.running)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    answer = await asyncio.wait_for(waiting, 10)
    assert [t["resource"] for t in answer["tokens"]] == ["builder-1"]
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    assert state(hass, "sensor.builder_1_state") == "available"


async def _lab_not_loaded_yet(hass: HomeAssistant) -> Any:
    """Home Assistant starting: the actions and API registered, the lab not loaded yet."""
    await setup_relays(hass, "builder-1")
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, DOMAIN, {})
    hass.set_state(CoreState.starting)
    entry = lab_entry(resource_data("builder-1"))
    entry.add_to_hass(hass)
    assert entry.state is ConfigEntryState.NOT_LOADED
    return entry


async def test_actions_wait_for_labs_still_loading(hass: HomeAssistant) -> None:
    entry = await _lab_not_loaded_yet(hass)
    listing = asyncio.create_task(call(hass, "list", {}))
    acquiring = asyncio.create_task(call(hass, "acquire", {"resource": "builder-1"}))
    await asyncio.sleep(0.3)
    assert not listing.done()
    assert not acquiring.done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    listed = await asyncio.wait_for(listing, 10)
    assert [r["name"] for r in listed["resources"]] == ["builder-1"]
    [token] = (await asyncio.wait_for(acquiring, 10))["tokens"]
    # A release while the lab reloads finds the token once the lab is back.
    async with entry.setup_lock:
        assert await hass.config_entries.async_unload(entry.entry_id, _lock=False)
        releasing = asyncio.create_task(
            call(hass, "release", {"token": token["token"]})
        )
        await asyncio.sleep(0.3)
        assert not releasing.done()
        assert await hass.config_entries.async_setup(entry.entry_id, _lock=False)
    assert (await asyncio.wait_for(releasing, 10)) == {"released": 1}
    hass.set_state(CoreState.running)


async def test_labs_that_stay_loading_get_try_again(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _lab_not_loaded_yet(hass)
    monkeypatch.setattr(operations, "LOAD_WAIT", 0.3)
    with pytest.raises(HomeAssistantError) as raised:
        await call(hass, "acquire", {"resource": "builder-1"})
    assert raised.value.translation_key == "labs_loading"
    assert "Lab" in str(raised.value)
    with pytest.raises(HomeAssistantError) as raised:
        await call(hass, "list", {})
    assert raised.value.translation_key == "labs_loading"

    client = await hass_client()
    unknown = {"token": "0123456789abcdef0123456789abcdef"}
    for method, path, body in (
        ("get", "/api/labpower/resources", None),
        ("get", "/api/labpower/resources/builder-1", None),
        ("post", "/api/labpower/resources/builder-1/tokens", None),
        ("post", "/api/labpower/tokens/release", unknown),
        ("post", "/api/labpower/tokens/renew", unknown),
    ):
        response = await getattr(client, method)(path, json=body)
        assert response.status == HTTPStatus.SERVICE_UNAVAILABLE, path
        assert response.headers["Retry-After"] == "30"
        answer = await response.json()
        assert answer["error"]["code"] == "labs_loading"


async def test_unknown_stays_unknown_once_labs_loaded(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    entry = await _lab_not_loaded_yet(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    hass.set_state(CoreState.running)
    client = await hass_client()
    response = await client.get("/api/labpower/resources/nope")
    assert response.status == HTTPStatus.NOT_FOUND
    assert "Retry-After" not in response.headers
