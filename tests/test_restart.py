"""Restart: same storage, a new Home Assistant: tokens back, no power-off, expired ones released."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant import loader
from homeassistant.core import Event, HomeAssistant
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_test_home_assistant,
)

from custom_components.labpower.const import DOMAIN

from .conftest import lab_entry, lab_files, resource_data, setup_relays, stored_lab
from .peers.ha import call, event_tokens, state

RESOURCES = (
    resource_data("held", off_delay=0),
    resource_data("leased", off_delay=0),
    resource_data("idle", off_delay=0),
)


async def test_restart_keeps_tokens_and_power(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "held", "leased", "idle")
    entry = lab_entry(*RESOURCES)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hold = (await call(hass, "acquire", {"resource": "held", "kind": "hold"}))[
        "tokens"
    ][0]
    lease = (
        await call(hass, "acquire", {"resource": "leased", "ttl": 60, "holder": "ci"})
    )["tokens"][0]
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.held_relay") == "on"
    assert state(hass, "input_boolean.leased_relay") == "on"
    # Home Assistant stops: the entry unloads and writes its ledger.
    assert await hass.config_entries.async_unload(entry.entry_id)
    stored = stored_lab(hass, entry.entry_id)
    assert stored is not None
    assert stored["version"] == 1

    # Down for two minutes: the lease expires meanwhile. The relays keep their power.
    freezer.tick(timedelta(minutes=2))
    async with async_test_home_assistant(config_dir=hass.config.config_dir) as hass2:
        hass2.data.pop(
            loader.DATA_CUSTOM_COMPONENTS
        )  # load labpower from custom_components
        await setup_relays(hass2, "held", "leased", "idle", initial=True)
        switched: list[str] = []
        hass2.bus.async_listen(
            "call_service",
            lambda event: switched.append(
                f"{event.data['service']} {event.data['service_data']}"
            ),
        )
        expired: list[Event] = async_capture_events(hass2, "labpower_token_expired")
        entry2 = lab_entry(*RESOURCES)
        entry2.add_to_hass(hass2)
        assert await hass2.config_entries.async_setup(entry2.entry_id)
        await hass2.async_block_till_done()

        listed = await call(hass2, "list", {})
        tokens = {
            r["name"]: [t["token"] for t in r["tokens"]] for r in listed["resources"]
        }
        assert tokens == {"held": [hold["token"]], "leased": [], "idle": []}
        assert event_tokens(expired) == ["ci"]
        # the held resource was never switched off; the expired lease and the idle one were
        assert state(hass2, "input_boolean.held_relay") == "on"
        assert state(hass2, "sensor.held_state") == "available"
        assert state(hass2, "input_boolean.leased_relay") == "off"
        assert state(hass2, "input_boolean.idle_relay") == "off"
        assert not any("held_relay" in call_ for call_ in switched)
        # a released token can still be released again after the restart
        assert await call(hass2, "release", {"token": lease["token"]}) == {
            "released": 0
        }
        await hass2.config_entries.async_unload(entry2.entry_id)
        await hass2.async_stop(force=True)


async def test_remove_entry_forgets_storage(hass: HomeAssistant) -> None:
    await setup_relays(hass, "held")
    entry = lab_entry(resource_data("held"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await call(hass, "acquire", {"resource": "held"})
    await hass.async_block_till_done()
    key = f"{DOMAIN}.{entry.entry_id}"
    # the store, its good copy and the journal the acquire went to
    assert lab_files(hass, entry.entry_id) == {key, f"{key}.good", f"{key}.journal.2"}
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not lab_files(hass, entry.entry_id)


async def test_removed_resource_releases_its_tokens(hass: HomeAssistant) -> None:
    await setup_relays(hass, "a", "b")
    entry = lab_entry(resource_data("a"), resource_data("b"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    revoked = async_capture_events(hass, "labpower_token_revoked")
    token_b = (await call(hass, "acquire", {"resource": "b", "holder": "job"}))[
        "tokens"
    ][0]
    token_a = (await call(hass, "acquire", {"resource": "a"}))["tokens"][0]
    await hass.async_block_till_done()
    hass.config_entries.async_remove_subentry(entry, "sub_b")
    await hass.async_block_till_done()
    assert event_tokens(revoked, "cause") == ["resource removed"]
    assert await call(hass, "release", {"token": token_b["token"]}) == {"released": 0}
    listed = await call(hass, "list", {})
    assert [(r["name"], r["holders"]) for r in listed["resources"]] == [("a", 1)]
    assert listed["resources"][0]["tokens"][0]["token"] == token_a["token"]
    assert (
        hass.states.get("switch.b_power") is None
        or state(hass, "switch.b_power") == "unavailable"
    )
