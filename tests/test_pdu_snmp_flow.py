"""An SNMP PDU unit added through the config flow and switched through Home Assistant."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from .conftest import lab_entry
from .peers.flows import unit_flow
from .peers.ha import state
from .peers.net import free_port
from .peers.snmpd import (  # noqa: F401 - fixtures
    HOST,
    SnmpAgent,
    snmp_agent,
    snmpd_agent,
    unit,
)
from .peers.snmpsim import (  # noqa: F401 - fixtures
    SnmpsimAgent,
    recorded_units,
    snmpsim_agent,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _start(hass: HomeAssistant, agent: SnmpAgent) -> tuple[Any, dict[str, Any]]:
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await unit_flow(
        hass,
        entry,
        {"name": "apc-1", "vendor": "snmp", "host": HOST, "port": agent.port},
    )
    assert result["step_id"] == "connection"
    return entry, result


async def test_snmp_unit_flow_errors_then_saved(
    hass: HomeAssistant,
    snmp_agent: SnmpAgent,  # noqa: F811
) -> None:
    """Wrong community: no answer; a too-short v3 key: misconfigured; then saved."""
    snmp_agent.load(unit("apc_rpdu2", ["on", "off", "off", "on"]))
    entry, result = await _start(hass, snmp_agent)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"snmp_version": "2c", "community": "wrong", "snmp_profile": "automatic"},
    )
    assert result["errors"] == {"base": "snmp_no_answer"}
    # a wrong port (nothing listens there): the address, not the community
    wrong = await unit_flow(
        hass,
        entry,
        {
            "name": "apc-2",
            "vendor": "snmp",
            "host": HOST,
            "port": free_port(socket.SOCK_DGRAM),
        },
    )
    wrong = await hass.config_entries.subentries.async_configure(
        wrong["flow_id"],
        {"snmp_version": "2c", "community": "public", "snmp_profile": "automatic"},
    )
    assert wrong["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "snmp_version": "3",
            "username": "labadmin",
            "auth_protocol": "sha",
            "auth_key": "short",
            "snmp_profile": "automatic",
        },
    )
    assert result["errors"] == {"base": "pdu_misconfigured"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "snmp_version": "2c",
            "community": "public",
            "write_community": "private",
            "snmp_profile": "automatic",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    [pdu] = entry.subentries.values()
    assert pdu.data["outlet_count"] == 4
    assert pdu.data["community"] == "public"


@pytest.mark.parametrize(
    ("settings", "errors"),
    [
        ({"snmp_version": "2c"}, {"community": "snmp_community"}),
        (
            {"snmp_version": "2c", "community": "public", "auth_protocol": "sha"},
            {"auth_protocol": "snmp_v3_only"},
        ),
        ({"snmp_version": "3"}, {"username": "snmp_username"}),
        (
            {"snmp_version": "3", "username": "u", "auth_protocol": "sha"},
            {"auth_protocol": "snmp_pair"},
        ),
        (
            {"snmp_version": "3", "username": "u", "priv_protocol": "aes",
             "priv_key": "secret-key"},
            {"priv_protocol": "snmp_priv_needs_auth"},
        ),
    ],
)  # fmt: skip
async def test_snmp_settings_the_lab_file_refuses_are_refused(
    hass: HomeAssistant, settings: dict[str, Any], errors: dict[str, str]
) -> None:
    """The connection step applies the lab file's SNMP rules before asking the unit.

    Nothing listens on the unit's port: a setting that reached the unit would come
    back as cannot_connect, not as the field's error.
    """
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await unit_flow(
        hass,
        entry,
        {
            "name": "apc-9",
            "vendor": "snmp",
            "host": HOST,
            "port": free_port(socket.SOCK_DGRAM),
        },
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"snmp_profile": "automatic", **settings}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


async def test_snmp_outlet_switched_from_home_assistant(
    hass: HomeAssistant,
    snmp_agent: SnmpAgent,  # noqa: F811
) -> None:
    """The saved unit's outlet switch writes the vendor's control object."""
    snmp_agent.load(unit("cyberpower", ["off", "off"]))
    entry, result = await _start(hass, snmp_agent)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "snmp_version": "2c",
            "community": "public",
            "write_community": "private",
            "snmp_profile": "cyberpower",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "switch.apc_1_outlet_2") == "off"
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.apc_1_outlet_2"}, blocking=True
    )
    assert snmp_agent.status("cyberpower", 2) == "1"  # on, in CyberPower terms
    assert state(hass, "switch.apc_1_outlet_2") == "on"
    await hass.config_entries.async_unload(entry.entry_id)
    await asyncio.sleep(0)


async def _add_unit(
    hass: HomeAssistant, port: int, community: str, name: str = "apc-1"
) -> Any:
    """A lab with one SNMP unit (automatic profile) added through the flow, set up."""
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await unit_flow(
        hass, entry, {"name": name, "vendor": "snmp", "host": HOST, "port": port}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "snmp_version": "2c",
            "community": community,
            "write_community": community if community != "public" else "private",
            "snmp_profile": "automatic",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _friendly(hass: HomeAssistant, entity_id: str) -> str:
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return str(found.attributes["friendly_name"])


async def test_daisy_chained_rpdu2_outlets_are_named_per_unit(
    hass: HomeAssistant,
    snmp_agent: SnmpAgent,  # noqa: F811
) -> None:
    """Linked APC units: outlet 4 of the table is outlet 1 of the second unit."""
    snmp_agent.load(unit("apc_rpdu2", ["on", "off", "off", "on"], chain=[2, 2]))
    entry = await _add_unit(hass, snmp_agent.port, "public")
    [pdu] = entry.subentries.values()
    assert pdu.data["outlet_count"] == 4
    # Each unit calls its outlets "Outlet 1", "Outlet 2": the number says it all.
    assert _friendly(hass, "switch.apc_1_outlet_2_1") == "apc-1 Outlet 2:1"
    assert _friendly(hass, "switch.apc_1_outlet_1_2") == "apc-1 Outlet 1:2"
    assert state(hass, "switch.apc_1_outlet_2_1") == "off"
    assert state(hass, "switch.apc_1_outlet_2_2") == "on"
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.apc_1_outlet_2_1"}, blocking=True
    )
    assert snmp_agent.status("apc_rpdu2", 3) == "2"  # row 3, on in rPDU2 terms
    assert state(hass, "switch.apc_1_outlet_2_1") == "on"
    await hass.config_entries.async_unload(entry.entry_id)
    await asyncio.sleep(0)


async def test_first_generation_raritan_px_is_added(
    hass: HomeAssistant,
    snmp_agent: SnmpAgent,  # noqa: F811
) -> None:
    """A PX (sysObjectID 13742.4, PDU-MIB) is found and switched, not taken for a PX2."""
    snmp_agent.load(unit("raritan_px1", ["off", "on", "off"]))
    entry = await _add_unit(hass, snmp_agent.port, "public", name="px-1")
    [pdu] = entry.subentries.values()
    assert pdu.data["outlet_count"] == 3
    assert state(hass, "switch.px_1_outlet_2") == "on"
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.px_1_outlet_1"}, blocking=True
    )
    assert snmp_agent.status("raritan_px1", 1) == "1"
    assert state(hass, "switch.px_1_outlet_1") == "on"
    await hass.config_entries.async_unload(entry.entry_id)
    await asyncio.sleep(0)


async def test_recorded_ap8641_in_home_assistant(
    hass: HomeAssistant,
    recorded_units: SnmpsimAgent,  # noqa: F811
) -> None:
    """The recorded metered APC unit: its names, states and meters as entities."""
    entry = await _add_unit(hass, recorded_units.port, "apc-8641", name="rack1")
    [pdu] = entry.subentries.values()
    assert pdu.data["outlet_count"] == 24
    outlet_1 = "switch.rack1_outlet_1_cp_cm_san_01"
    assert _friendly(hass, outlet_1) == "rack1 Outlet 1 (CP-CM-SAN-01)"
    assert state(hass, outlet_1) == "on"
    assert state(hass, "switch.rack1_outlet_8") == "off"
    powers = {
        s.entity_id: s.state
        for s in hass.states.async_all("sensor")
        if s.entity_id.startswith("sensor.rack1")
    }
    assert powers["sensor.rack1_power"] == "1210.0"
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": outlet_1}, blocking=True
    )
    assert state(hass, outlet_1) == "off"
    await hass.config_entries.async_unload(entry.entry_id)
    await asyncio.sleep(0)
