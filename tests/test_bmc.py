"""BMCs through Home Assistant: the BMC subentry flow, a BMC-switched resource end to end."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.labpower.const import DOMAIN, SUBENTRY_BMC, SUBENTRY_RESOURCE

from .conftest import lab_entry, resource_data
from .peers.ha import advance, call, setup_integration, state
from .peers.ipmi_sim import Sim

HOST = "127.0.0.1"


def bmc_data(sim: Sim, **overrides: Any) -> dict[str, Any]:
    """An IPMI BMC subentry for the simulator."""
    return {
        "name": "bmc-1",
        "protocol": "ipmi",
        "host": HOST,
        "port": sim.port,
        "username": "admin",
        "password": "password",
        "cipher_suite": 3,
        "verify_ssl": True,
        "bmc_auth": "basic",
        **overrides,
    }


def bmc_lab(sim: Sim, **bmc: Any) -> MockConfigEntry:
    """A lab of server-1, switched by bmc-1 (the simulator's BMC)."""
    return lab_entry(
        resource_data(
            "server-1",
            switcher_type="bmc",
            bmc="sub_bmc",
            off_delay=0,
            min_off_time=0,
            stop_timeout=30,
        ),
        subentries=(
            ConfigSubentryDataWithId(
                data=bmc_data(sim, **bmc),
                subentry_id="sub_bmc",
                subentry_type=SUBENTRY_BMC,
                title="bmc-1",
                unique_id=None,
            ),
        ),
    )


@pytest.mark.usefixtures("socket_enabled")
async def test_bmc_flow_tests_before_saving(hass: HomeAssistant, sim: Sim) -> None:
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_BMC), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    for data, error in (
        (bmc_data(sim, password="wrong"), {"base": "invalid_auth"}),
        (bmc_data(sim, port=1), {"base": "cannot_connect"}),
        (bmc_data(sim, name=" "), {"name": "name_empty"}),
        (bmc_data(sim, name="b\x00mc"), {"name": "name_invalid"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], data
        )
        assert result["errors"] == error
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], bmc_data(sim)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    [bmc] = entry.subentries.values()
    assert bmc.title == "bmc-1"
    assert bmc.data["host"] == HOST
    # a second BMC of the same name is refused; a reconfigure tests the new credentials
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_BMC), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], bmc_data(sim, name="BMC-1")
    )
    assert result["errors"] == {"name": "name_exists"}
    result = await entry.start_subentry_reconfigure_flow(hass, bmc.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], bmc_data(sim, password="wrong")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], bmc_data(sim, name="bmc-a")
    )
    assert result["type"] is FlowResultType.ABORT
    assert entry.subentries[bmc.subentry_id].title == "bmc-a"
    # a resource switched by that BMC
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "server-1", "switcher_type": "bmc", "checker_type": "none"},
    )
    assert result["step_id"] == "details"
    policy = resource_data("x")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "bmc": bmc.subentry_id,
            **{k: policy[k] for k in ("off_delay", "min_off_time", "start_timeout")},
            **{
                k: policy[k]
                for k in ("stop_timeout", "default_ttl", "max_ttl", "graceful_off")
            },
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["bmc"] == bmc.subentry_id


async def test_resource_flow_bmc_and_wol_choices(hass: HomeAssistant) -> None:
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "server-1", "switcher_type": "bmc", "checker_type": "none"},
    )
    assert result["errors"] == {"switcher_type": "no_bmc"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "pc-1", "switcher_type": "wol", "checker_type": "none"},
    )
    assert result["errors"] == {"checker_type": "wol_needs_check"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "pc-1", "switcher_type": "wol", "checker_type": "tcp"},
    )
    assert result["step_id"] == "details"
    wol = {
        "mac": "not-a-mac",
        "wol_address": "127.255.255.255",
        "wol_port": 9,
        "ssh_host": "pc-1.lab",
        "ssh_port": 22,
        "ssh_username": "lab",
        "ssh_command": "sudo systemctl poweroff",
        "host": "pc-1.lab",
        "port": 22,
        "off_delay": 60,
        "min_off_time": 5,
        "start_timeout": 120,
        "stop_timeout": 60,
        "default_ttl": 600,
        "max_ttl": 3600,
        "graceful_off": True,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], wol
    )
    assert result["errors"] == {"mac": "invalid_mac", "ssh_password": "ssh_credentials"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**wol, "mac": "AA-BB-CC-DD-EE-01", "ssh_password": "secret"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["switcher_type"] == "wol"


@pytest.mark.usefixtures("socket_enabled")
async def test_bmc_switched_resource(
    hass: HomeAssistant, sim: Sim, freezer: FrozenDateTimeFactory
) -> None:
    await setup_integration(hass, bmc_lab(sim))
    power = async_capture_events(hass, "labpower_power_changed")
    assert state(hass, "sensor.server_1_state") == "off"
    assert state(hass, "button.server_1_reset") == "unknown"  # a BMC can reset
    assert state(hass, "sensor.server_1_power_draw") == "unknown"  # no DCMI in ipmi_sim
    token = (await call(hass, "acquire", {"resource": "server-1", "kind": "hold"}))[
        "tokens"
    ][0]
    await hass.async_block_till_done()
    assert sim.power == "1"
    await advance(hass, freezer, 2)  # the next probe: powered, no checker: available
    assert state(hass, "sensor.server_1_state") == "available"
    await call(hass, "release", {"token": token["token"]})
    await hass.async_block_till_done()
    # graceful first: the simulated OS shuts down on the ACPI soft off
    for _ in range(5):
        await advance(hass, freezer, 2)
    assert sim.power == "0"
    assert "shutdown 1" in sim.calls
    assert state(hass, "sensor.server_1_state") == "off"
    assert [e.data["action"] for e in power] == ["on", "graceful_off"]


@pytest.mark.usefixtures("socket_enabled")
async def test_bmc_forced_off_when_the_os_ignores_it(
    hass: HomeAssistant, sim: Sim, freezer: FrozenDateTimeFactory
) -> None:
    sim.reset_chassis(power="1", soft_off="ignore")
    await setup_integration(hass, bmc_lab(sim))
    power = async_capture_events(hass, "labpower_power_changed")
    await hass.async_block_till_done()
    assert state(hass, "sensor.server_1_state") == "stopping"
    for _ in range(18):
        await advance(hass, freezer, 2)
    assert sim.power == "0"
    assert [e.data["action"] for e in power][-1] == "forced_off"
    assert state(hass, "sensor.server_1_state") == "off"


@pytest.mark.usefixtures("socket_enabled")
async def test_wrong_credentials_raise_a_repair_issue(
    hass: HomeAssistant, sim: Sim, issue_registry: ir.IssueRegistry
) -> None:
    entry = await setup_integration(hass, bmc_lab(sim, password="wrong"))
    assert state(hass, "sensor.server_1_state") == "fault"
    issue = issue_registry.async_get_issue(
        DOMAIN, f"bmc_auth_{entry.entry_id}_server-1"
    )
    assert issue is not None
    assert issue.translation_key == "bmc_auth"
