"""Safety no configuration breaks, through Home Assistant: one feed one owner, no fights."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentryDataWithId,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.const import (
    DOMAIN,
    SUBENTRY_BMC,
    SUBENTRY_RESOURCE,
)

from .conftest import lab_entry, resource_data, setup_relays, until
from .peers.flows import error_text, resource_form
from .peers.ha import advance, call, state

# The policy fields of a resource's details form, as resource_data has them.
POLICY = {
    key: value
    for key, value in resource_data("x").items()
    if key not in ("name", "switcher_type", "checker_type", "power_entity")
}
RELAY_1 = "input_boolean.builder_1_relay"


class RelayLog:
    """Every change of one relay's state."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        """Follow `entity_id`."""
        self.states: list[str] = []
        self._entity_id = entity_id
        hass.bus.async_listen("state_changed", self._changed)

    @callback
    def _changed(self, event: Event[EventStateChangedData]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        changed = new and old and new.state != old.state
        if event.data["entity_id"] == self._entity_id and changed:
            assert new is not None
            self.states.append(new.state)


# One feed, one owner: the config flows


async def test_a_second_resource_on_builder_1s_relay_is_refused(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    """The report: Add resource accepted builder-1's relay for a second resource."""
    result = await resource_form(hass, lab, "builder-3", "entity")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"power_entity": RELAY_1, **POLICY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"power_entity": "feed_in_use"}
    placeholders = result["description_placeholders"]
    assert (placeholders["feed"], placeholders["owner"]) == (RELAY_1, "builder-1")
    assert await error_text(hass, "feed_in_use", placeholders) == (
        "input_boolean.builder_1_relay already feeds builder-1. A feed powers one "
        "resource only: if several machines share it (a Pi stack's relay), add it "
        "as a resource of its own and let them depend on it."
    )
    # sharing is a dependency: builder-3 on its own relay, depending on builder-1
    hass.states.async_set("input_boolean.builder_3_relay", "off")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "power_entity": "input_boolean.builder_3_relay",
            "depends_on": ["builder-1"],
            **POLICY,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # the reload it causes, before teardown


async def test_reconfigure_refuses_anothers_feed_and_keeps_its_own(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    for relay, ok in ((RELAY_1, False), ("input_boolean.builder_2_relay", True)):
        result = await lab.start_subentry_reconfigure_flow(hass, "sub_builder-2")
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"switcher_type": "entity", "checker_type": "none"}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"power_entity": relay, **POLICY}
        )
        if ok:
            assert result["type"] is FlowResultType.ABORT
        else:
            assert result["errors"] == {"power_entity": "feed_in_use"}
            assert result["description_placeholders"]["owner"] == "builder-1"
    await hass.async_block_till_done()  # the reload it causes, before teardown


async def test_a_feed_of_another_lab_is_refused_naming_the_lab(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    other = lab_entry(title="Rack B")
    other.add_to_hass(hass)
    result = await resource_form(hass, other, "builder-9", "entity")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"power_entity": RELAY_1, **POLICY}
    )
    assert result["errors"] == {"power_entity": "feed_in_use_other_lab"}
    placeholders = result["description_placeholders"]
    assert await error_text(hass, "feed_in_use_other_lab", placeholders) == (
        "input_boolean.builder_1_relay already feeds builder-1 in lab Lab. A feed "
        "powers one resource only: if several machines share it (a Pi stack's "
        "relay), add it as a resource of its own and let them depend on it."
    )


async def test_every_kind_of_feed_has_one_owner(hass: HomeAssistant) -> None:
    """Button relays and LEDs, BMCs and MAC addresses (however written) alike."""
    for entity_id in (
        "switch.pc_button",
        "switch.pc_reset",
        "switch.other",
        "binary_sensor.pc_led",
    ):
        hass.states.async_set(entity_id, "off")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        data={"name": "Lab"},
        subentries_data=[
            ConfigSubentryDataWithId(
                data={"name": "bmc1", "protocol": "ipmi", "host": "10.0.0.9"},
                subentry_id="sub_bmc1",
                subentry_type=SUBENTRY_BMC,
                title="bmc1",
                unique_id=None,
            ),
            *(
                ConfigSubentryDataWithId(
                    data=data,
                    subentry_id=f"sub_{data['name']}",
                    subentry_type=SUBENTRY_RESOURCE,
                    title=data["name"],
                    unique_id=data["name"],
                )
                for data in (
                    resource_data(
                        "pc",
                        switcher_type="button",
                        relay_entity="switch.pc_button",
                        led_entity="binary_sensor.pc_led",
                        reset_entity="switch.pc_reset",
                    ),
                    resource_data("server", switcher_type="bmc", bmc="sub_bmc1"),
                    resource_data(
                        "desk",
                        switcher_type="wol",
                        mac="aa:bb:cc:dd:ee:ff",
                        checker_type="icmp",
                    ),
                )
            ),
        ],
    )
    entry.add_to_hass(hass)  # not set up: the rule reads the configuration
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("entity", {"power_entity": "switch.pc_reset"}, "power_entity", "pc"),
        (
            "button",
            {
                "relay_entity": "switch.other",
                "led_entity": "binary_sensor.pc_led",
                "short_press": 0.5,
                "long_press": 5,
            },
            "led_entity",
            "pc",
        ),
        ("bmc", {"bmc": "sub_bmc1"}, "bmc", "server"),
        (
            "wol",
            {
                "mac": "AA-BB-CC-DD-EE-FF",
                "wol_address": "255.255.255.255",
                "wol_port": 9,
                "ssh_host": "desk",
                "ssh_port": 22,
                "ssh_username": "root",
                "ssh_password": "x",
                "ssh_command": "poweroff",
            },
            "mac",
            "desk",
        ),
    ]
    for switcher, fields, key, owner in cases:
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
        )
        checker = "icmp" if switcher == "wol" else "none"
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {"name": "new", "switcher_type": switcher, "checker_type": checker},
        )
        host = {"host": "new"} if switcher == "wol" else {}
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**fields, **host, **POLICY}
        )
        assert result["errors"] == {key: "feed_in_use"}, switcher
        assert result["description_placeholders"]["owner"] == owner


async def test_a_power_change_limit_below_two_is_refused(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    hass.states.async_set("input_boolean.builder_3_relay", "off")
    result = await resource_form(hass, lab, "builder-3", "entity")
    fields = {"power_entity": "input_boolean.builder_3_relay", **POLICY}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**fields, "max_transitions": 1}
    )
    assert result["errors"] == {"max_transitions": "transitions_too_few"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**fields, "max_transitions": 12}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    runtime = lab.runtime_data
    assert runtime.lab.spec("builder-3").policy.max_transitions == 12


# One feed, one owner: what is stored already


async def test_a_stored_conflict_loads_switches_neither_and_raises_a_repair(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Made before the check (or by editing storage): a repair, no switching at all."""
    await setup_relays(hass, "builder-1", "second")
    entry = lab_entry(
        resource_data("builder-1"), resource_data("second", power_entity=RELAY_1)
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    relay = RelayLog(hass, RELAY_1)
    issue_id = f"feed_shared_{entry.entry_id}_entity_{RELAY_1}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "feed": RELAY_1,
        "resources": "builder-1, second",
    }
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.builder_1_power"}, blocking=True
    )
    for _ in range(9):
        await advance(hass, freezer, 5)
    assert relay.states == []
    for name, other in (("builder-1", "second"), ("second", "builder-1")):
        assert state(hass, f"sensor.{name.replace('-', '_')}_state") == "fault"
        sensor = hass.states.get(f"sensor.{name.replace('-', '_')}_state")
        assert sensor.attributes["reason"] == (
            f"{RELAY_1}: also feeds {other}: labpower switches none of them"
        )
    # the fix: the second resource gets a relay of its own; builder-1 comes up, held
    result = await entry.start_subentry_reconfigure_flow(hass, "sub_second")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"switcher_type": "entity", "checker_type": "none"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"power_entity": "input_boolean.second_relay", **POLICY}
    )
    assert result["type"] is FlowResultType.ABORT
    for _ in range(4):  # the lab reloads (HA schedules it) and switches
        await advance(hass, freezer, 1)
    assert state(hass, "sensor.builder_1_state") == "available"
    assert relay.states == ["on"]
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_a_stored_conflict_across_labs(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """Both labs leave it alone; fixing one lab lets the other switch again."""
    await setup_relays(hass, "builder-1")
    first = lab_entry(resource_data("builder-1"))
    second = lab_entry(resource_data("copy", power_entity=RELAY_1), title="Rack B")
    for entry in (first, second):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "fault")
    assert state(hass, "sensor.copy_state") == "fault"
    issue = issue_registry.async_get_issue(
        DOMAIN, f"feed_shared_{first.entry_id}_entity_{RELAY_1}"
    )
    assert issue is not None
    assert issue.translation_placeholders["resources"] == "builder-1, copy (Rack B)"
    hass.config_entries.async_remove_subentry(second, "sub_copy")
    await until(
        hass,
        lambda: (
            first.state is ConfigEntryState.LOADED
            and not first.runtime_data.blocked
            and state(hass, "sensor.builder_1_state") == "off"
        ),
    )
    await call(hass, "acquire", {"resource": "builder-1"})
    await until(hass, lambda: state(hass, RELAY_1) == "on")


async def test_a_lab_file_may_not_take_another_labs_feed(
    hass: HomeAssistant, lab: MockConfigEntry, tmp_path: Any
) -> None:
    previous = hass.config.config_dir
    hass.config.config_dir = str(tmp_path)
    try:
        (tmp_path / "labpower.yaml").write_text(
            "resources:\n"
            "  - name: file-1\n"
            "    power_entity: input_boolean.file_1_relay\n"
            "  - name: sneaky\n"
            f"    power_entity: {RELAY_1}\n"
        )
        other = lab_entry(title="Rack B", lab_file="labpower.yaml")
        other.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(other.entry_id)
        issue = ir.async_get(hass).async_get_issue(
            DOMAIN, "lab_file_invalid_entry_rack_b"
        )
        assert issue is not None
        assert issue.translation_placeholders["detail"].startswith(
            f"labpower.yaml line 5: power_entity '{RELAY_1}' of sneaky already "
            "feeds builder-1 (lab Lab)"
        )
        # without it the file loads, and its resources own their feeds in the UI too
        (tmp_path / "labpower.yaml").write_text(
            "resources:\n"
            "  - name: file-1\n"
            "    power_entity: input_boolean.file_1_relay\n"
        )
        await hass.config_entries.async_reload(other.entry_id)
        await hass.async_block_till_done()
        assert other.state is ConfigEntryState.LOADED
        hass.states.async_set("input_boolean.file_1_relay", "off")
        result = await resource_form(hass, lab, "builder-3", "entity")
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"power_entity": "input_boolean.file_1_relay", **POLICY}
        )
        assert result["errors"] == {"power_entity": "feed_in_use_other_lab"}
        assert result["description_placeholders"]["owner"] == "file-1"
        await hass.config_entries.async_unload(other.entry_id)
    finally:
        hass.config.config_dir = previous


# Never fight another actor


@pytest.fixture
async def fighting(hass: HomeAssistant, lab: MockConfigEntry) -> MockConfigEntry:
    """The lab, and an automation that switches builder-1's relay off when it goes on."""
    assert await async_setup_component(hass, "repairs", {})
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "fight",
                "alias": "fight",
                "mode": "queued",
                "triggers": [{"trigger": "state", "entity_id": RELAY_1, "to": "on"}],
                "actions": [
                    {
                        "action": "input_boolean.turn_off",
                        "target": {"entity_id": RELAY_1},
                    }
                ],
            }
        },
    )
    return lab


async def fix(client: Any, issue_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open a repair issue's fix flow and confirm it: its form, then its result."""
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    form = await response.json()
    response = await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    return form, await response.json()


async def test_a_foreign_actor_is_corrected_once_then_a_repair_lets_it_go(
    hass: HomeAssistant,
    fighting: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    issue_registry: ir.IssueRegistry,
) -> None:
    lab = fighting
    halted = async_capture_events(hass, "labpower_halted")
    resumed = async_capture_events(hass, "labpower_resumed")
    relay = RelayLog(hass, RELAY_1)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.builder_1_power"}, blocking=True
    )
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "fault")
    await hass.async_block_till_done()
    # labpower switched it on, and once more after the automation: one power cycle
    assert relay.states == ["on", "off", "on", "off"]
    reason = f"switched by something else: {RELAY_1}"
    assert hass.states.get("sensor.builder_1_state").attributes["reason"] == reason
    builder_1 = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, "sub_builder-1"), lab.entry_id
    )
    assert builder_1 is not None
    # on the resource's device page Activity too
    assert [event.data for event in halted] == [
        {"resource": "builder-1", "reason": reason, "device_id": builder_1.id}
    ]
    assert state(hass, "switch.builder_1_power") == "on"  # the hold is kept
    issue_id = f"halted_{lab.entry_id}_builder-1"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {"resource": "builder-1", "reason": reason}
    # a restart (a reload) keeps it stopped and raises the issue again
    issue_registry.async_delete(DOMAIN, issue_id)
    await hass.config_entries.async_reload(lab.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_state") == "fault"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert relay.states == ["on", "off", "on", "off"]
    # the person stops the automation and acknowledges in Repairs
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.fight"}, blocking=True
    )
    form, result = await fix(await hass_client(), issue_id)
    assert form["step_id"] == "confirm"
    assert form["description_placeholders"]["reason"] == reason
    assert result["type"] == "create_entry"
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "available")
    assert relay.states == ["on", "off", "on", "off", "on"]
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert [event.data for event in resumed] == [
        {
            "resource": "builder-1",
            "cause": "acknowledged in Repairs",
            "device_id": builder_1.id,
        }
    ]


async def test_reconfiguring_acknowledges_and_an_unloaded_lab_cannot(
    hass: HomeAssistant,
    fighting: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    issue_registry: ir.IssueRegistry,
) -> None:
    lab = fighting
    await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"})
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "fault")
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.fight"}, blocking=True
    )
    issue_id = f"halted_{lab.entry_id}_builder-1"
    result = await lab.start_subentry_reconfigure_flow(hass, "sub_builder-1")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"switcher_type": "entity", "checker_type": "none"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"power_entity": RELAY_1, **POLICY}
    )
    assert result["type"] is FlowResultType.ABORT
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "available")
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    # the fix flow of an issue whose lab is gone aborts
    ir.async_create_issue(
        hass,
        DOMAIN,
        "halted_gone_x",
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key="halted",
        translation_placeholders={"resource": "x", "reason": "r"},
        data={"entry_id": "gone", "resource": "x"},
    )
    _, result = await fix(await hass_client(), "halted_gone_x")
    assert result["reason"] == "lab_not_loaded"


async def test_the_power_change_limit_through_home_assistant(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "busy")
    entry = lab_entry(resource_data("busy", off_delay=0, max_transitions=2))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await call(hass, "acquire", {"resource": "busy", "kind": "hold"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.busy_state") == "available"
    # a power cycle would be the second and third change
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            "button", "press", {"entity_id": "button.busy_power_cycle"}, blocking=True
        )
    assert caught.value.translation_key == "resource_halted"
    assert state(hass, "input_boolean.busy_relay") == "on"
    await advance(hass, freezer, 1)
    assert state(hass, "sensor.busy_state") == "fault"
    assert hass.states.get("sensor.busy_state").attributes["reason"] == (
        "more than 2 power changes within 10 minutes: stopped to protect the hardware"
    )
