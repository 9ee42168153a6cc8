"""Entities: the Power switch's holds and refusals, buttons, the button switcher, snapshots."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.auth.models import User
from homeassistant.const import Platform
from homeassistant.core import (
    Context,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.labpower.const import DOMAIN

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import call, holders, state


@pytest.mark.parametrize(
    "init_integration",
    [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR, Platform.SWITCH],
    indirect=True,
)
async def test_entities_snapshot(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def _turn(hass: HomeAssistant, service: str, user: User) -> None:
    await hass.services.async_call(
        "switch",
        service,
        {"entity_id": "switch.builder_1_power"},
        blocking=True,
        context=Context(user_id=user.id),
    )


@pytest.mark.usefixtures("lab")
async def test_power_switch_holds_for_the_user(
    hass: HomeAssistant, hass_admin_user: User, hass_read_only_user: User
) -> None:
    await _turn(hass, "turn_on", hass_admin_user)
    await _turn(hass, "turn_on", hass_admin_user)  # one hold is enough
    await hass.async_block_till_done()
    assert state(hass, "switch.builder_1_power") == "on"
    assert state(hass, "sensor.builder_1_holders") == "1"
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    listed = await call(hass, "list", {"resource": "builder-1"})
    [token] = listed["resources"][0]["tokens"]
    assert token["kind"] == "hold"
    assert token["holder"] == hass_admin_user.name
    assert token["expires"] is not None  # a UI hold ends (see test_holders.py)

    other = await call(
        hass,
        "acquire",
        {"resource": "builder-1"},
        Context(user_id=hass_read_only_user.id),
    )
    with pytest.raises(ServiceValidationError) as err:
        await _turn(hass, "turn_off", hass_admin_user)
    assert err.value.translation_key == "holders_remain"
    assert err.value.translation_placeholders == {
        "resource": "builder-1",
        "count": "1",
        "holders": hass_read_only_user.name,
    }
    await hass.async_block_till_done()
    # the admin's hold is gone, the other holder keeps the resource on
    assert state(hass, "sensor.builder_1_holders") == "1"
    assert state(hass, "switch.builder_1_power") == "on"
    await call(hass, "release", {"token": other["tokens"][0]["token"]})
    await hass.async_block_till_done()
    # a CI-style release keeps it on for the off delay
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    await _turn(hass, "turn_off", hass_admin_user)
    await hass.async_block_till_done()
    # the switch is an off for a power client: off at once, no off delay
    assert await holders(hass, "builder-1") == "0"
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert state(hass, "switch.builder_1_power") == "off"


@pytest.mark.usefixtures("lab")
async def test_power_cycle_button(hass: HomeAssistant, hass_admin_user: User) -> None:
    async def press(user: User) -> None:
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": "button.builder_1_power_cycle"},
            blocking=True,
            context=Context(user_id=user.id),
        )

    with pytest.raises(ServiceValidationError) as err:
        await press(hass_admin_user)
    assert err.value.translation_key == "not_powered"
    await call(
        hass, "acquire", {"resource": "builder-1"}, Context(user_id=hass_admin_user.id)
    )
    await hass.async_block_till_done()
    bob = await hass.auth.async_create_user("Bob", group_ids=["system-users"])
    with pytest.raises(ServiceValidationError) as err:
        await press(bob)
    assert err.value.translation_key == "held_by_others"
    relay_changes: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == "input_boolean.builder_1_relay" and new:
            relay_changes.append(new.state)

    hass.bus.async_listen("state_changed", record)
    power = async_capture_events(hass, "labpower_power_changed")
    with patch("custom_components.labpower.core.reconciler.Timing.cycle_delay", 0):
        await press(hass_admin_user)
    await hass.async_block_till_done()
    assert relay_changes == ["off", "on"]
    assert power[-1].data["action"] == "cycle"
    assert power[-1].data["cause"] == f"pressed by {hass_admin_user.name}"
    assert state(hass, "sensor.builder_1_state") == "available"


async def _button_lab(hass: HomeAssistant, *, led: str = "off") -> MockConfigEntry:
    """A resource on a front-panel relay; a simulated motherboard toggles the LED on a press."""
    await setup_relays(hass, "atx", "atx-reset")
    hass.states.async_set("binary_sensor.power_led", led)

    @callback
    def motherboard(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is None or new.state != "on":
            return
        if event.data["entity_id"] == "input_boolean.atx_relay":
            current = hass.states.get("binary_sensor.power_led")
            assert current is not None
            hass.states.async_set(
                "binary_sensor.power_led", "off" if current.state == "on" else "on"
            )

    hass.bus.async_listen("state_changed", motherboard)
    entry = lab_entry(
        resource_data(
            "pi-1",
            switcher_type="button",
            relay_entity="input_boolean.atx_relay",
            led_entity="binary_sensor.power_led",
            reset_entity="input_boolean.atx_reset_relay",
            short_press=0.01,
            long_press=0.02,
            off_delay=0,
            graceful_off=True,
        )
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_button_switcher_presses_and_reads_the_led(hass: HomeAssistant) -> None:
    await _button_lab(hass)
    presses = async_capture_events(hass, "labpower_power_changed")
    token = (await call(hass, "acquire", {"resource": "pi-1"}))["tokens"][0]["token"]
    await hass.async_block_till_done()
    assert state(hass, "binary_sensor.power_led") == "on"
    assert state(hass, "input_boolean.atx_relay") == "off"  # released after the press
    assert state(hass, "sensor.pi_1_state") == "available"
    assert state(hass, "button.pi_1_reset") == "unknown"  # exists: a reset relay is set
    await call(hass, "release", {"token": token})
    await hass.async_block_till_done()
    # graceful: a short press, the (simulated) OS shuts down and the LED goes off
    assert state(hass, "binary_sensor.power_led") == "off"
    assert state(hass, "sensor.pi_1_state") == "off"
    assert [e.data["action"] for e in presses] == ["on", "graceful_off"]


async def test_button_never_pressed_on_unknown_led(hass: HomeAssistant) -> None:
    await _button_lab(hass, led="unavailable")
    await call(hass, "acquire", {"resource": "pi-1"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.pi_1_state") == "unknown"
    assert state(hass, "binary_sensor.power_led") == "unavailable"
    # the LED comes back: now the state is known and differs, one press
    hass.states.async_set("binary_sensor.power_led", "off")
    await hass.async_block_till_done()
    assert state(hass, "binary_sensor.power_led") == "on"
    assert state(hass, "sensor.pi_1_state") == "available"


async def test_reset_button(hass: HomeAssistant, hass_admin_user: User) -> None:
    await _button_lab(hass, led="on")
    power = async_capture_events(hass, "labpower_power_changed")
    resets: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == "input_boolean.atx_reset_relay" and new:
            resets.append(new.state)

    hass.bus.async_listen("state_changed", record)
    await call(
        hass, "acquire", {"resource": "pi-1"}, Context(user_id=hass_admin_user.id)
    )
    await hass.async_block_till_done()
    assert state(hass, "sensor.pi_1_state") == "available"
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.pi_1_reset"},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    await hass.async_block_till_done()
    assert resets == ["on", "off"]
    assert power[-1].data["action"] == "reset"
    assert state(hass, "binary_sensor.power_led") == "on"


async def test_lab_device_and_resource_devices(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    registry = dr.async_get(hass)
    devices = dr.async_entries_for_config_entry(registry, lab.entry_id)
    lab_device = next(d for d in devices if d.model == "Lab")
    resources = [d for d in devices if d.via_device_id == lab_device.id]
    assert sorted(d.name for d in resources) == ["builder-1", "builder-2"]
    assert all(
        d.model == f"input_boolean.{d.name.replace('-', '_')}_relay" for d in resources
    )
    assert DOMAIN in next(iter(lab_device.identifiers))
