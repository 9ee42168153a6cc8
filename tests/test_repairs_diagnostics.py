"""Repair issues, diagnostics and logbook descriptions."""

from __future__ import annotations

from collections.abc import Callable
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.labpower import logbook
from custom_components.labpower.const import DOMAIN
from custom_components.labpower.drivers.icmp import IcmpUnavailableError
from custom_components.labpower.schema import REDACTED

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, state


async def _setup(hass: HomeAssistant, *resources: dict[str, Any]) -> MockConfigEntry:
    entry = lab_entry(*resources)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_missing_entity_repair(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    entry = await _setup(hass, resource_data("ghost"))
    issue_id = f"entity_missing_{entry.entry_id}_ghost"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "resource": "ghost",
        "detail": "input_boolean.ghost_relay does not exist",
    }
    assert state(hass, "sensor.ghost_state") == "fault"
    assert hass.states.get("sensor.ghost_state").attributes["reason"] == (
        "configuration error: input_boolean.ghost_relay does not exist"
    )
    # the relay appears: the resource recovers at once, without a restart
    await setup_relays(hass, "ghost")
    await call(hass, "acquire", {"resource": "ghost"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.ghost_state") == "available"
    assert state(hass, "input_boolean.ghost_relay") == "on"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_start_failures_repair(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_relays(hass, "flaky")
    hass.states.async_set("binary_sensor.flaky_up", "off")
    entry = await _setup(
        hass,
        resource_data(
            "flaky",
            checker_type="entity",
            check_entity="binary_sensor.flaky_up",
            start_timeout=10,
            off_delay=0,
            min_off_time=0,
            max_transitions=20,  # four starts and three stops in a minute, on purpose
        ),
    )
    issue_id = f"start_failures_{entry.entry_id}_flaky"
    for attempt in range(3):
        token = (await call(hass, "acquire", {"resource": "flaky"}))["tokens"][0][
            "token"
        ]
        await hass.async_block_till_done()
        await advance(hass, freezer, 11)
        await advance(hass, freezer, 2)
        assert state(hass, "sensor.flaky_state") == "fault"
        assert (
            hass.states.get("sensor.flaky_state").attributes["reason"]
            == "start_timeout"
        )
        assert (issue_registry.async_get_issue(DOMAIN, issue_id) is not None) == (
            attempt == 2
        )
        await call(hass, "release", {"token": token})
        await advance(hass, freezer, 1)
        assert state(hass, "sensor.flaky_state") == "off"
    # it finally comes up: the issue goes away
    hass.states.async_set("binary_sensor.flaky_up", "on")
    await call(hass, "acquire", {"resource": "flaky"})
    await hass.async_block_till_done()
    await advance(hass, freezer, 3)
    assert state(hass, "sensor.flaky_state") == "available"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_icmp_unavailable_repair(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    await setup_relays(hass, "pinged")
    with patch(
        "custom_components.labpower.runtime.detect_privileged",
        side_effect=IcmpUnavailableError,
    ):
        await _setup(
            hass, resource_data("pinged", checker_type="icmp", host="127.0.0.1")
        )
    assert issue_registry.async_get_issue(DOMAIN, "icmp_unavailable") is not None
    await call(hass, "acquire", {"resource": "pinged"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.pinged_state") == "fault"


@pytest.mark.usefixtures("socket_enabled")
async def test_icmp_and_tcp_checks_end_to_end(hass: HomeAssistant) -> None:
    await setup_relays(hass, "pinged", "ported")
    await _setup(
        hass,
        resource_data("pinged", checker_type="icmp", host="127.0.0.1"),
        resource_data("ported", checker_type="tcp", host="127.0.0.1", port=1),
    )
    await call(
        hass, "acquire", {"resource": "pinged", "wait": "available", "timeout": 10}
    )
    assert state(hass, "sensor.pinged_state") == "available"
    await call(hass, "acquire", {"resource": "ported"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.ported_state") == "starting"  # nothing listens on port 1


@pytest.mark.freeze_time("2026-11-21T12:00:00+00:00")
async def test_diagnostics(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
) -> None:
    await setup_relays(hass, "builder-1")
    entry = await _setup(hass, resource_data("builder-1"))
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci", "ttl": 600})
    await hass.async_block_till_done()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    tokens = diagnostics["resources"]["builder-1"]["tokens"]
    assert tokens[0]["id"] == "**REDACTED**"
    assert diagnostics == snapshot


def test_logbook_descriptions(hass: HomeAssistant) -> None:
    described: dict[str, Callable[[Event], dict[str, Any]]] = {}
    logbook.async_describe_events(
        hass,
        lambda domain, event_type, describe: described.__setitem__(
            event_type, describe
        ),
    )
    power = described["labpower_power_changed"](
        Event(
            "labpower_power_changed",
            {
                "resource": "builder-1",
                "action": "on",
                "cause": "acquired by jenkins #7",
            },
        )
    )
    assert power == {
        "name": "builder-1",
        "message": "was powered on (acquired by jenkins #7)",
        "icon": "mdi:power",
    }
    revoked = described["labpower_token_revoked"](
        Event(
            "labpower_token_revoked",
            {"resource": "b", "holder": "job", "cause": "forced off by admin"},
        )
    )
    # an event recorded before a resource's bursts came in one event (one token)
    assert revoked["message"] == "token of job was revoked (forced off by admin)"

    def tokens(event_type: str, *holders: str, cause: str = "c") -> str:
        data = {
            "resource": "b",
            "tokens": [{"holder": holder, "cause": cause} for holder in holders],
        }
        return str(described[event_type](Event(event_type, data))["message"])

    assert tokens("labpower_token_acquired", "ci 1") == "was acquired by ci 1"
    assert (
        tokens("labpower_token_acquired", *(f"ci {n}" for n in range(1, 6)))
        == "was acquired by ci 1, ci 2, ci 3 and 2 more"
    )
    assert (
        tokens("labpower_token_released", "a", "b", "c") == "was released by a, b and c"
    )
    assert (
        tokens("labpower_token_released", "a", "b", "c", "d")
        == "was released by a, b, c and d"
    )
    assert tokens("labpower_token_expired", "a") == "token of a expired"
    assert tokens("labpower_token_expired", "a", "b") == "tokens of a and b expired"
    assert (
        tokens("labpower_token_revoked", "a", "b", cause="UPS on battery")
        == "tokens of a and b were revoked (UPS on battery)"
    )
    shed = described["labpower_ups_policy"](
        Event(
            "labpower_ups_policy",
            {
                "step": "shed_idle",
                "cause": "UPS sensor.ups1_status on battery",
                "resources": ["pi01", "pi02"],
            },
        )
    )
    assert shed == {
        "name": "UPS policy",
        "message": "powered off idle pi01, pi02 (UPS sensor.ups1_status on battery)",
        "icon": "mdi:battery-alert-variant-outline",
    }
    told = described["labpower_ups_policy"](
        Event(
            "labpower_ups_policy", {"step": "on_battery", "cause": "c", "holders": []}
        )
    )
    assert told["message"] == "told the holders nobody (c)"
    halted = described["labpower_halted"](
        Event(
            "labpower_halted",
            {
                "resource": "builder-1",
                "reason": "switched by something else: input_boolean.builder_1_relay",
            },
        )
    )
    assert halted == {
        "name": "builder-1",
        "message": "is no longer switched by labpower: switched by something else: "
        "input_boolean.builder_1_relay",
        "icon": "mdi:server-remove",
    }
    resumed = described["labpower_resumed"](
        Event(
            "labpower_resumed",
            {"resource": "builder-1", "cause": "acknowledged in Repairs"},
        )
    )
    assert resumed["message"] == (
        "is switched by labpower again (acknowledged in Repairs)"
    )
    assert resumed["icon"] == "mdi:server"
    assert revoked["icon"] == "mdi:account-multiple"
    off = described["labpower_power_changed"](
        Event(
            "labpower_power_changed",
            {"resource": "b", "action": "forced_off", "cause": "stop timeout"},
        )
    )
    assert off["icon"] == "mdi:power-off"
    assert set(described) == {
        "labpower_halted",
        "labpower_resumed",
        "labpower_power_changed",
        "labpower_token_acquired",
        "labpower_token_released",
        "labpower_token_expired",
        "labpower_token_revoked",
        "labpower_ups_policy",
    }


async def test_unload(hass: HomeAssistant, lab: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(lab.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "switch.builder_1_power") == "unavailable"
    # actions still answer, with a clear error
    with pytest.raises(Exception, match="builder-1"):
        await call(hass, "acquire", {"resource": "builder-1"})


async def test_diagnostics_redacts_every_secret_field(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    # The secret and user-name flags of schema.py decide what diagnostics hides.
    secrets = {key: f"value of {key}" for key in sorted(REDACTED)}
    await setup_relays(hass, "wol-1")
    hass.states.async_set("binary_sensor.wol_up", "off")
    # (an ssh_key must be a usable key: that one goes with the others)
    ssh = {k: v for k, v in secrets.items() if k in ("ssh_username", "ssh_password")}
    wol = resource_data(
        "wol-1",
        switcher_type="wol",
        checker_type="entity",
        check_entity="binary_sensor.wol_up",
        mac="aa:bb:cc:dd:ee:01",
        ssh_host="10.0.0.1",
        **ssh,
    )
    # The others where a unit's or a BMC's would be: in stored data.
    entry = lab_entry(wol, **{k: v for k, v in secrets.items() if k not in ssh})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    text = json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, entry))
    assert not [value for value in secrets.values() if value in text]
    assert "**REDACTED**" in text
