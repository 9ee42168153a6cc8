"""The config flow: Lab entries and resource subentries, with every refusal."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.labpower.const import DOMAIN, SUBENTRY_RESOURCE
from custom_components.labpower.labfile import LabFileError, parse_lab_file
from custom_components.labpower.schema import RESOURCE_SCHEMA, error_key

from .conftest import lab_entry, resource_data, setup_relays
from .peers.flows import POLICY


async def test_create_lab(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "  Rack A  "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Rack A"
    assert result["data"] == {"name": "Rack A"}


async def test_duplicate_and_empty_lab_name_refused(hass: HomeAssistant) -> None:
    MockConfigEntry(domain=DOMAIN, title="Rack A", data={"name": "Rack A"}).add_to_hass(
        hass
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "rack a"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"name": "name_exists"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "  "}
    )
    assert result["errors"] == {"name": "name_empty"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Rack B"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def _start_resource_flow(
    hass: HomeAssistant, entry: MockConfigEntry
) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


async def test_add_entity_resource_with_tcp_check(hass: HomeAssistant) -> None:
    await setup_relays(hass, "builder-1")
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await _start_resource_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": " builder-1 ", "switcher_type": "entity", "checker_type": "tcp"},
    )
    assert result["step_id"] == "details"
    details = {
        "power_entity": "input_boolean.builder_1_relay",
        "host": "10.0.0.5",
        "port": 22,
        **POLICY,
        "labels": ["amd64"],
        "power_w": 150,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], details
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(iter(entry.subentries.values()))
    assert subentry.title == "builder-1"
    assert subentry.data == {
        "name": "builder-1",
        "switcher_type": "entity",
        "checker_type": "tcp",
        **details,
        "max_transitions": 6,  # schema.py's default, stored as the others are
    }


async def test_add_button_resource_refuses_bad_input(hass: HomeAssistant) -> None:
    await setup_relays(hass, "atx")
    hass.states.async_set("binary_sensor.led", "off")
    entry = lab_entry(resource_data("builder-1"))
    entry.add_to_hass(hass)
    result = await _start_resource_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "BUILDER-1", "switcher_type": "button", "checker_type": "icmp"},
    )
    assert result["errors"] == {"name": "name_exists"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "", "switcher_type": "button", "checker_type": "icmp"},
    )
    assert result["errors"] == {"name": "name_empty"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "pi-1", "switcher_type": "button", "checker_type": "icmp"},
    )
    assert result["step_id"] == "details"
    bad = {
        "relay_entity": "input_boolean.missing",
        "led_entity": "binary_sensor.led",
        "reset_entity": "switch.nope",
        "short_press": -1,
        "long_press": 5,
        "host": " ",
        **POLICY,
        "off_delay": -5,
        "default_ttl": 0,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], bad
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {
        "relay_entity": "entity_not_found",
        "reset_entity": "entity_not_found",
        "short_press": "negative",
        "host": "host_empty",
        "off_delay": "negative",
        "default_ttl": "ttl_zero",
    }
    fixed = {
        **bad,
        "relay_entity": "input_boolean.atx_relay",
        "reset_entity": "input_boolean.atx_relay",
        "short_press": 0.5,
        "host": "pi-1.lab",
        "off_delay": 60,
        "default_ttl": 7200,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], fixed
    )
    assert result["errors"] == {"max_ttl": "max_ttl_below_default"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**fixed, "max_ttl": 7200}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["switcher_type"] == "button"
    assert result["data"]["checker_type"] == "icmp"


async def test_names_unique_across_labs(hass: HomeAssistant) -> None:
    lab_entry(resource_data("shared"), title="Lab A").add_to_hass(hass)
    entry = lab_entry(title="Lab B")
    entry.add_to_hass(hass)
    result = await _start_resource_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "Shared", "switcher_type": "entity", "checker_type": "none"},
    )
    assert result["errors"] == {"name": "name_exists"}


async def test_reconfigure_keeps_name_and_tokens(hass: HomeAssistant) -> None:
    await setup_relays(hass, "builder-1", "other")
    hass.states.async_set("binary_sensor.up", "on")
    entry = lab_entry(resource_data("builder-1"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    response = await hass.services.async_call(
        DOMAIN,
        "acquire",
        {"resource": "builder-1"},
        blocking=True,
        return_response=True,
    )
    token = response["tokens"][0]["token"]
    subentry = next(iter(entry.subentries.values()))
    entry.runtime_data.host_keys["builder-1"] = "SHA256:pinned-before"
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["step_id"] == "user"
    assert "name" not in result["data_schema"].schema
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"switcher_type": "entity", "checker_type": "entity"}
    )
    assert result["step_id"] == "details"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "power_entity": "input_boolean.other_relay",
            "check_entity": "binary_sensor.up",
            **POLICY,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert (
        entry.subentries[subentry.subentry_id].data["power_entity"]
        == "input_boolean.other_relay"
    )
    assert entry.subentries[subentry.subentry_id].data["name"] == "builder-1"
    assert "builder-1" not in entry.runtime_data.host_keys  # pinned afresh next time
    # The lab was reloaded with the new switcher and still holds the token.
    listed = await hass.services.async_call(
        DOMAIN, "list", {"resource": "builder-1"}, blocking=True, return_response=True
    )
    assert [t["token"] for t in listed["resources"][0]["tokens"]] == [token]
    assert hass.states.get("input_boolean.other_relay").state == "on"


async def test_rename_lab(hass: HomeAssistant) -> None:
    await setup_relays(hass, "builder-1")
    MockConfigEntry(domain=DOMAIN, title="Rack B", data={"name": "Rack B"}).add_to_hass(
        hass
    )
    entry = lab_entry(resource_data("builder-1"), title="Rack A")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    token = (
        await hass.services.async_call(
            DOMAIN,
            "acquire",
            {"resource": "builder-1"},
            blocking=True,
            return_response=True,
        )
    )["tokens"][0]["token"]
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "rack b"}
    )
    assert result["errors"] == {"name": "name_exists"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": " "}
    )
    assert result["errors"] == {"name": "name_empty"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Rack C"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.title == "Rack C"
    assert entry.data == {"name": "Rack C"}
    listed = await hass.services.async_call(
        DOMAIN, "list", {"resource": "builder-1"}, blocking=True, return_response=True
    )
    assert [t["token"] for t in listed["resources"][0]["tokens"]] == [token]


async def test_reconfigure_while_the_lab_is_not_loaded(hass: HomeAssistant) -> None:
    await setup_relays(hass, "builder-1")
    entry = lab_entry(resource_data("builder-1"))
    entry.add_to_hass(hass)
    result = await entry.start_subentry_reconfigure_flow(hass, "sub_builder-1")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"switcher_type": "entity", "checker_type": "none"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"power_entity": "input_boolean.builder_1_relay", **POLICY, "off_delay": 5},
    )
    assert result["type"] is FlowResultType.ABORT
    assert entry.subentries["sub_builder-1"].data["off_delay"] == 5


async def _details_form(
    hass: HomeAssistant, switcher: str, checker: str
) -> tuple[MockConfigEntry, str]:
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await _start_resource_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "box-1", "switcher_type": switcher, "checker_type": checker},
    )
    assert result["step_id"] == "details"
    return entry, result["flow_id"]


_WOL_DETAILS = {
    "mac": "aa:bb:cc:dd:ee:01",
    "wol_address": "255.255.255.255",
    "wol_port": 9,
    "ssh_host": "box-1.lab",
    "ssh_port": 22,
    "ssh_username": "root",
    "ssh_password": "pw",
    "ssh_command": "poweroff",
    "host": "box-1.lab",
    "port": 22,
    **POLICY,
}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"mac": "aa:bb"}, {"mac": "invalid_mac"}),
        ({"ssh_host": "  "}, {"ssh_host": "host_empty"}),
        ({"wol_address": ""}, {"wol_address": "host_empty"}),
        ({"host": "\t"}, {"host": "host_empty"}),
        ({"ssh_command": " "}, {"ssh_command": "empty"}),
        ({"ssh_password": ""}, {"ssh_password": "ssh_credentials"}),
        ({"ssh_key": "-----BEGIN nonsense"}, {"ssh_key": "invalid_ssh_key"}),
        ({"stop_timeout": -1}, {"stop_timeout": "negative"}),
        ({"off_delay": 400 * 86400}, {"off_delay": "too_long"}),
        ({"max_ttl": 0}, {"max_ttl": "ttl_zero"}),
        ({"max_ttl": 60}, {"max_ttl": "max_ttl_below_default"}),
        ({"max_transitions": 1}, {"max_transitions": "transitions_too_few"}),
        ({"max_transitions": 5000}, {"max_transitions": "transitions_too_few"}),
    ],
)
async def test_wol_details_refusals(
    hass: HomeAssistant, change: dict[str, Any], errors: dict[str, str]
) -> None:
    entry, flow_id = await _details_form(hass, "wol", "tcp")
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**_WOL_DETAILS, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    result = await hass.config_entries.subentries.async_configure(flow_id, _WOL_DETAILS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = next(iter(entry.subentries.values())).data
    assert (data["wol_port"], data["ssh_port"], data["port"]) == (9, 22, 22)


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    """The values a form is filled with, as the browser receives them."""
    return {
        str(marker): marker.description["suggested_value"]
        for marker in result["data_schema"].schema
        if (marker.description or {}).get("suggested_value") is not None
    }


async def test_changing_a_resource_never_shows_its_ssh_secrets(
    hass: HomeAssistant,
) -> None:
    """A stored SSH password is not sent back; left blank it is kept, typed it is changed."""
    entry, flow_id = await _details_form(hass, "wol", "tcp")
    await hass.config_entries.subentries.async_configure(flow_id, _WOL_DETAILS)
    subentry = next(iter(entry.subentries.values()))
    stored = dict(subentry.data)

    async def change(details: dict[str, Any]) -> dict[str, Any]:
        result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"switcher_type": "wol", "checker_type": "tcp"}
        )
        shown = _suggested(result)
        assert "ssh_password" not in shown
        assert shown["ssh_username"] == "root"
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], details
        )
        assert result["reason"] == "reconfigure_successful"
        return dict(entry.subentries[subentry.subentry_id].data)

    kept = {k: v for k, v in _WOL_DETAILS.items() if k != "ssh_password"}
    assert await change({**kept, "off_delay": 5}) == {**stored, "off_delay": 5}
    assert (await change({**kept, "ssh_password": "new"}))["ssh_password"] == "new"


# The same bad value, given to the resource flow and written in a lab file.
_ONE_RULE = [
    ("mac", "aa:bb", "invalid_mac"),
    ("ssh_host", "  ", "host_empty"),
    ("ssh_key", "not a key", "invalid_ssh_key"),
    ("host", "\t", "host_empty"),
    ("stop_timeout", -1, "negative"),
    ("off_delay", 400 * 86400, "too_long"),
    ("max_ttl", 0, "ttl_zero"),
    ("max_transitions", 1, "transitions_too_few"),
]


@pytest.mark.parametrize(("key", "bad", "error"), _ONE_RULE)
async def test_flow_and_lab_file_give_one_answer(
    hass: HomeAssistant, key: str, bad: Any, error: str
) -> None:
    """One rule per field: the flow's error and the lab file's message come from it.

    The flow refuses the value with the translation key of schema.py's refusal, the
    lab file with that refusal's text on the value's line; the flow then takes the
    corrected form.
    """
    _entry, flow_id = await _details_form(hass, "wol", "tcp")
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**_WOL_DETAILS, key: bad}
    )
    assert result["errors"] == {key: error}
    resource = {"name": "box-1", **_WOL_DETAILS, key: bad}
    text = "resources:\n" + "".join(
        f"  {'- ' if i == 0 else '  '}{k}: {json.dumps(v)}\n"
        for i, (k, v) in enumerate(resource.items())
    )
    with pytest.raises(LabFileError) as refused:
        parse_lab_file(text)
    line = 2 + list(resource).index(key)
    [problem] = str(refused.value).splitlines()[1:] or [str(refused.value)]
    assert f"line {line}: {key}: " in problem
    assert error_key(_refusal(key, bad)) == error
    assert problem.endswith(_refusal(key, bad).msg)


def _refusal(key: str, bad: Any) -> vol.Invalid:
    """schema.py's refusal of a value for a resource field."""
    try:
        RESOURCE_SCHEMA(
            {
                "name": "box-1",
                "switcher_type": "wol",
                "checker_type": "tcp",
                **_WOL_DETAILS,
                key: bad,
            }
        )
    except vol.MultipleInvalid as err:
        return err.errors[0]
    except vol.Invalid as err:
        return err
    raise AssertionError(f"{key}: {bad!r} was accepted")


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "name_empty"), (" \n ", "name_empty"), ("x" * 256, "name_invalid")],
)
@pytest.mark.parametrize("domain", [None, "resource"])
async def test_name_refusals(
    hass: HomeAssistant, domain: str | None, name: str, error: str
) -> None:
    if domain is None:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"name": name}
        )
    else:
        entry = lab_entry()
        entry.add_to_hass(hass)
        result = await _start_resource_flow(hass, entry)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {"name": name, "switcher_type": "entity", "checker_type": "none"},
        )
    assert result["errors"] == {"name": error}


async def test_wol_needs_a_checker(hass: HomeAssistant) -> None:
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await _start_resource_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "box-1", "switcher_type": "wol", "checker_type": "none"},
    )
    assert result["errors"] == {"checker_type": "wol_needs_check"}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"on_spacing": -1}, {"on_spacing": "negative"}),
        ({"energy_price": -0.1}, {"energy_price": "negative"}),
        ({"on_spacing": 400 * 86400}, {"on_spacing": "too_long"}),
        ({"max_parallel_on": 20000}, {"max_parallel_on": "out_of_range"}),
        ({"lab_file": "missing.yaml"}, {"lab_file": "lab_file_missing"}),
    ],
)
async def test_options_refusals(
    hass: HomeAssistant, change: dict[str, Any], errors: dict[str, str]
) -> None:
    entry = lab_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"max_parallel_on": 0, **change}
    )
    assert result["errors"] == errors
    # 0 is "no limit"; what is left out takes schema.py's defaults
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"max_parallel_on": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["max_parallel_on"] == 0
    assert entry.options["refuse_acquire_on_battery"] is True
    await hass.async_block_till_done()  # the reload the new options cause
