"""An SNMP PDU unit added through the config flow and switched through Home Assistant."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from .conftest import lab_entry
from .peers.net import free_port
from .peers.snmpd import (  # noqa: F401 - fixtures
    HOST,
    SnmpAgent,
    snmp_agent,
    snmpd_agent,
    unit,
)
from .test_pdu import unit_flow
from .test_services import state

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
