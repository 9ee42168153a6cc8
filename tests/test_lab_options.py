"""Lab settings (options flow) and dependencies chosen in the resource flow."""

from __future__ import annotations

from pathlib import Path

from homeassistant.auth.models import User
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.labpower.const import DOMAIN, SUBENTRY_RESOURCE

from .conftest import lab_entry, resource_data, setup_relays, until
from .peers.flows import POLICY
from .peers.ha import call, state


async def test_options_set_lab_file_and_policies(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A missing lab file is refused; settings are saved and reload the lab."""
    hass.config.config_dir = str(tmp_path)
    entry = lab_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    settings = {
        "lab_file": "labpower.yaml",
        "max_parallel_on": 4,
        "per_unit_parallel_on": 2,
        "on_spacing": 1.5,
        "refuse_acquire_on_battery": True,
        "shed_idle_on_battery": False,
        "notify_holders_on_battery": True,
        "shutdown_held_on_low_battery": True,
        "ui_hold_max": 7200,
        "expiring_warning": 300,
        "notify_when_available": True,
        "energy_price": 0.28,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], settings
    )
    assert result["errors"] == {"lab_file": "lab_file_missing"}
    (tmp_path / "labpower.yaml").write_text("resources: []\n")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**settings, "lab_file": " labpower.yaml "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["lab_file"] == "labpower.yaml"
    await hass.async_block_till_done()
    assert entry.runtime_data.energy.price() == 0.28  # the lab's own price
    stagger = entry.runtime_data.lab.stagger
    assert stagger.max_parallel == 4
    assert stagger.per_group == 2
    assert stagger.spacing == 1.5
    assert entry.runtime_data.settings["shed_idle_on_battery"] is False
    assert entry.runtime_data.ui_hold_limit() == 7200
    assert entry.runtime_data.settings["notify_when_available"] is True


async def switch_and_host(hass: HomeAssistant) -> MockConfigEntry:
    """A loaded lab: host-1 depends on switch-1 (both input_boolean relays)."""
    await setup_relays(hass, "switch-1", "host-1")
    entry = lab_entry(
        resource_data("switch-1"),
        resource_data("host-1", depends_on=["switch-1"]),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_dependency_cycle_refused_in_flow(hass: HomeAssistant) -> None:
    """A resource may depend on others; a choice that closes a cycle is refused."""
    entry = await switch_and_host(hass)
    runtime = entry.runtime_data
    assert runtime.lab.parents("host-1") == ("switch-1",)
    result = await entry.start_subentry_reconfigure_flow(hass, "sub_switch-1")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"switcher_type": "entity", "checker_type": "none"}
    )
    assert result["step_id"] == "details"
    details = {"power_entity": "input_boolean.switch_1_relay", **POLICY}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**details, "depends_on": ["host-1"]}
    )
    assert result["errors"] == {"depends_on": "dependency_cycle"}
    assert result["description_placeholders"]["cycle"] == (
        "host-1 -> switch-1 -> host-1"
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], details
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()  # the reconfigured lab reloads
    # a new resource may depend on both
    hass.states.async_set("input_boolean.vm_1_relay", "off")
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "vm-1", "switcher_type": "entity", "checker_type": "none"},
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "power_entity": "input_boolean.vm_1_relay",
            "depends_on": ["host-1"],
            **POLICY,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["depends_on"] == ["host-1"]
    # the new subentry reloads the lab (HA schedules the reload)
    await until(
        hass,
        lambda: (
            entry.state is ConfigEntryState.LOADED
            and "vm-1" in entry.runtime_data.lab.names
        ),
    )
    assert entry.runtime_data.lab.parents("vm-1") == ("host-1",)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_dependency_on_removed_resource(hass: HomeAssistant) -> None:
    """A parent removed in the UI: the lab starts, the child runs alone, a repair says so."""
    await setup_relays(hass, "host-1")
    entry = lab_entry(resource_data("host-1", depends_on=["gone-1"]))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.lab.parents("host-1") == ()
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, "dependency_missing_entry_lab_host-1"
    )
    assert issue is not None
    assert issue.translation_placeholders == {"resource": "host-1", "detail": "gone-1"}


async def test_cycling_a_parent_counts_its_childrens_holders(
    hass: HomeAssistant, hass_admin_user: User
) -> None:
    """A power cycle of the network switch cuts the hosts on it: their holders count."""
    await switch_and_host(hass)
    await call(
        hass, "acquire", {"resource": "host-1"}, Context(user_id=hass_admin_user.id)
    )
    await until(hass, lambda: state(hass, "sensor.host_1_state") == "available")
    bob = await hass.auth.async_create_user("Bob", group_ids=["system-users"])
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": "button.switch_1_power_cycle"},
            blocking=True,
            context=Context(user_id=bob.id),
        )
    assert err.value.translation_key == "held_by_others"
    assert err.value.translation_placeholders["count"] == "1"


async def test_refusing_lab_takes_nothing_anywhere(hass: HomeAssistant) -> None:
    """One acquire across two labs, one on battery: refused, and no token in either."""
    hass.states.async_set("sensor.ups_b_status", "OB DISCHRG")
    await setup_relays(hass, "a-1", "b-1")
    first = lab_entry(resource_data("a-1"), title="Lab A")
    second = lab_entry(resource_data("b-1"), title="Lab B")
    second.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        second, options={"ups_entities": ["sensor.ups_b_status"]}
    )
    first.add_to_hass(hass)
    assert await hass.config_entries.async_setup(first.entry_id)  # both labs load
    await hass.async_block_till_done()
    assert second.state is ConfigEntryState.LOADED
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "acquire", {"resource": ["a-1", "b-1"], "holder": "ci"})
    assert err.value.translation_key == "acquire_refused"
    assert first.runtime_data.lab.ledger.holder_count("a-1") == 0
    assert state(hass, "input_boolean.a_1_relay") == "off"
