"""The UPS policy end to end: NUT's upsd and dummy-ups, HA's own nut integration, a lab.

Nothing here stands in for the UPS: Debian's upsd serves a dummy-ups UPS (tests/peers/nut.py)
whose `ups.status` the test switches OL -> OB -> LB -> OL; Home Assistant's `nut`
integration, set up through its config flow, polls it (every 60 s: the test moves HA's
clock on) and its Status sensor is the lab's UPS, chosen in the lab's options flow. What
README.md's "UPS policy" says is then checked on the lab's relays and actions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.labpower.schema import LAB_OPTION_DEFAULTS
from custom_components.labpower.ups import UpsLevel, ups_level

from .conftest import lab_entry, resource_data, setup_relays, until
from .peers.ha import SwitchLog, call, event_tokens, state
from .peers.nut import NutServer, nut_server  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def setup_nut(hass: HomeAssistant, server: NutServer) -> str:
    """Add the UPS through HA's nut config flow; return its Status sensor."""
    result = await hass.config_entries.flow.async_init(
        "nut", context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "host": server.host,
            "port": server.port,
            "username": server.username,
            "password": server.password,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    status = next(
        item.entity_id
        for item in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
        if item.unique_id.endswith("_ups.status.display")
    )
    assert state(hass, status) == "Online"
    return status


async def poll(hass: HomeAssistant) -> None:
    """Let a minute pass for HA's nut integration: it polls upsd."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()


async def switch_ups(
    hass: HomeAssistant, server: NutServer, ups: str, status: str, shown: str
) -> None:
    """Switch the dummy UPS; HA's nut integration polls it and its Status shows `shown`."""
    await hass.async_add_executor_job(server.set_status, status)
    await poll(hass)
    await until(hass, lambda: state(hass, ups) == shown)


async def set_lab_ups(
    hass: HomeAssistant, entry: Any, ups: str, **settings: Any
) -> None:
    """Name the UPS in the lab's options flow (the lab reloads)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **{
                key: value
                for key, value in LAB_OPTION_DEFAULTS.items()
                if key != "ups_entities"
            },
            **settings,
            "ups_entities": [ups],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_nut_ups_drives_the_policy(
    hass: HomeAssistant,
    nut_server: NutServer,  # noqa: F811
) -> None:
    """OL: normal; OB: refuse, tell, shed idle; LB: held off, children first; OL: accept."""
    ups = await setup_nut(hass, nut_server)
    await setup_relays(hass, "network-switch", "builder", "idle", "spare")
    entry = lab_entry(
        resource_data("network-switch", off_delay=600),
        resource_data("builder", depends_on=["network-switch"], off_delay=0),
        resource_data("idle", off_delay=600),
        resource_data("spare", off_delay=0),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await set_lab_ups(hass, entry, ups)
    steps = async_capture_events(hass, "labpower_ups_policy")
    revoked = async_capture_events(hass, "labpower_token_revoked")
    log = SwitchLog(hass)

    # OL: tokens are taken and machines come up as ever.
    await call(hass, "acquire", {"resource": "builder", "holder": "ci job 1"})
    idle = await call(hass, "acquire", {"resource": "idle", "holder": "ci job 2"})
    await until(
        hass,
        lambda: (
            state(hass, "input_boolean.builder_relay") == "on"
            and state(hass, "input_boolean.network_switch_relay") == "on"
            and state(hass, "input_boolean.idle_relay") == "on"
        ),
    )
    await call(hass, "release", {"token": idle["tokens"][0]["token"]})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.idle_relay") == "on"  # its off delay runs
    assert not steps

    # OB: refuse new tokens, tell the holders, power off at once what no token holds.
    await switch_ups(
        hass, nut_server, ups, "OB DISCHRG", "On Battery, Battery Discharging"
    )
    await until(hass, lambda: state(hass, "input_boolean.idle_relay") == "off")
    assert [event.data["step"] for event in steps] == [
        "refuse_acquire",
        "on_battery",
        "shed_idle",
    ]
    assert all(ups in event.data["cause"] for event in steps)
    assert steps[1].data["holders"] == ["ci job 1"]
    assert steps[2].data["resources"] == ["idle"]
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "acquire", {"resource": "spare", "holder": "ci job 3"})
    assert err.value.translation_key == "acquire_refused"
    assert state(hass, "input_boolean.spare_relay") == "off"
    # What a token holds stays on, and what it depends on.
    assert state(hass, "input_boolean.builder_relay") == "on"
    assert state(hass, "input_boolean.network_switch_relay") == "on"

    # NUT's server goes away during the outage: the sensor is unavailable, the policy stays.
    await hass.async_add_executor_job(nut_server.stop_upsd)
    await poll(hass)
    await until(hass, lambda: state(hass, ups) == "unavailable")
    with pytest.raises(HomeAssistantError):
        await call(hass, "acquire", {"resource": "spare", "holder": "ci job 3"})
    assert state(hass, "input_boolean.builder_relay") == "on"
    await hass.async_add_executor_job(nut_server.start_upsd)

    # LB: revoke the tokens, the held machines off, children before their parents, at once.
    await switch_ups(hass, nut_server, ups, "OB LB", "On Battery, Low Battery")
    await until(
        hass, lambda: state(hass, "input_boolean.network_switch_relay") == "off"
    )
    assert log.order("off") == ["idle", "builder", "network_switch"]
    assert steps[-1].data["step"] == "shutdown_held"
    assert steps[-1].data["resources"] == ["builder"]
    assert event_tokens(revoked) == ["ci job 1"]
    listed = await call(hass, "list", {"resource": ["builder"]})
    assert listed["resources"][0]["holders"] == 0

    # Mains back while the battery recharges: "OL CHRG LB" is not critical (upsmon(8): a UPS
    # is critical when on battery and low battery, or in forced shutdown): tokens are
    # accepted again, nothing comes back on by itself, and what is taken now stays on.
    await switch_ups(
        hass, nut_server, ups, "OL CHRG LB", "Online, Battery Charging, Low Battery"
    )
    assert steps[-1].data["step"] == "accept_acquire"
    assert state(hass, "input_boolean.builder_relay") == "off"
    spare = await call(hass, "acquire", {"resource": "spare", "holder": "ci job 3"})
    await until(hass, lambda: state(hass, "input_boolean.spare_relay") == "on")
    taken = await call(hass, "acquire", {"resource": "idle", "holder": "ci job 4"})
    await until(hass, lambda: state(hass, "input_boolean.idle_relay") == "on")
    await switch_ups(hass, nut_server, ups, "OL CHRG", "Online, Battery Charging")
    assert steps[-1].data["step"] == "accept_acquire"  # nothing new to do
    # Off delays apply again: a release is not shed at once.
    await call(hass, "release", {"token": taken["tokens"][0]["token"]})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.idle_relay") == "on"
    assert state(hass, "input_boolean.spare_relay") == "on"
    assert len(revoked) == 1
    await call(hass, "release", {"token": spare["tokens"][0]["token"]})


@pytest.mark.parametrize(
    ("shown", "level"),
    [
        ("OL", UpsLevel.ONLINE),
        ("Online, Battery Charging", UpsLevel.ONLINE),
        ("OL CHRG LB", UpsLevel.ONLINE),  # mains back, battery recharging
        ("Online, Battery Charging, Low Battery", UpsLevel.ONLINE),
        ("OB DISCHRG", UpsLevel.ON_BATTERY),
        ("On Battery, Battery Discharging", UpsLevel.ON_BATTERY),
        ("OB LB", UpsLevel.LOW_BATTERY),
        ("On Battery, Low Battery", UpsLevel.LOW_BATTERY),
        ("OL FSD", UpsLevel.LOW_BATTERY),  # the primary orders the shutdown
        ("Online, Forced Shutdown", UpsLevel.LOW_BATTERY),
        (
            "LB",
            UpsLevel.UNKNOWN,
        ),  # neither on line nor on battery: keep what is in force
        ("unavailable", UpsLevel.UNKNOWN),
    ],
)
def test_ups_level_reads_nut_status(shown: str, level: UpsLevel) -> None:
    """Flags as upsd reports them and HA nut's Status text (its STATE_TYPES)."""
    assert ups_level(State("sensor.ups1_status", shown)) is level
