"""The SNMP PDU client against recorded walks of real units, replayed by snmpsim.

APC AP7902B, AP8641 and AP8932 (rPDU2 firmware 6.7.2) and a Tripp Lite PDUMH20ATNET
(PowerAlert 15.5.4) as they answered a walk (tests/data/snmprec), served on 127.0.0.1 by
snmpsim with their state columns pinned and their command columns writable (how: the peer's
docstring, tests/peers/snmpsim.py). What the units report is written out here as the
recordings hold it, so a profile that reads the wrong column, scale or index fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from custom_components.labpower.core.model import PowerState
from custom_components.labpower.drivers.pdu import PduProtocolError, UnitStatus
from custom_components.labpower.drivers.snmp import SnmpPduClient
from custom_components.labpower.drivers.snmp_profiles import PROFILES

from .peers.snmpsim import (  # noqa: F401 - fixtures
    SnmpsimAgent,
    recorded_units,
    snmpsim_agent,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOST = "127.0.0.1"


def pattern(status: UnitStatus) -> str:
    """Outlets 1..N as a string of 1 (on) and 0 (off); anything else shows as "?"."""
    return "".join(
        {PowerState.ON: "1", PowerState.OFF: "0"}.get(outlet.state, "?")
        for _, outlet in sorted(status.outlets.items())
    )


@pytest.fixture
async def connect(
    recorded_units: SnmpsimAgent,  # noqa: F811 - the imported fixture
) -> AsyncIterator[Callable[..., SnmpPduClient]]:
    """Clients of one recording (its name is the community), closed at the end."""
    made: list[SnmpPduClient] = []

    def factory(recording: str, **kwargs: Any) -> SnmpPduClient:
        client = SnmpPduClient(
            HOST,
            recorded_units.port,
            community=recording,
            timeout=3.0,
            retries=1,
            **kwargs,
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.close()


# As recorded: sysName, model, serial, outlet states (1 on), first and last outlet names.
RECORDED = {
    "apc-7902b": (
        "apc_rpdu2",
        "pwr-dc01-pdu-rack01-01",
        "AP7902B",
        "5A1551F39430",
        "1100000000000001",
        ("SW-CO-NY-3850-01", "SW-CO-XFER-RACK-01-PRI"),
    ),
    "apc-8641": (
        "apc_rpdu2",
        "pwr-dc01-pdu-rack1-01",
        "AP8641",
        "3F3452A52295",
        "111111101000000011111110",
        ("CP-CM-SAN-01", "Outlet 24"),
    ),
    "apc-8932": (
        "apc_rpdu2",
        "pwr-dc01-pdu-rack3-01",
        "AP8932",
        "3F503A169043",
        "100000000000100000000000",
        ("SW-DC01-WEST-01-B", "Outlet 24"),
    ),
    "tripplite-poweralert": (
        "tripplite_ats",
        "PWR-DC01-XFER-RACK1-01@example.com",
        "PDUMH20ATNET",
        "3569FG0LD527F11485",
        "0000000011111111",
        ("Load1", "Load16"),
    ),
}


@pytest.mark.parametrize("version", ["1", "2c"])
@pytest.mark.parametrize("recording", list(RECORDED))
async def test_recorded_unit_detected_and_read(
    recording: str, version: str, connect: Callable[..., SnmpPduClient]
) -> None:
    profile, name, model, serial, states, (first, last) = RECORDED[recording]
    client = connect(recording, version=version)
    # Automatic: the vendor from sysObjectID, the table from the probe.
    assert await client.detect() is PROFILES[profile]
    status = await client.read_status()
    assert (status.name, status.model, status.serial) == (name, model, serial)
    assert pattern(status) == states
    outlets = sorted(status.outlets)
    assert outlets == list(range(1, len(states) + 1))
    assert (status.outlets[1].name, status.outlets[outlets[-1]].name) == (first, last)
    # One unit, not a chain: plain outlet numbers.
    assert {outlet.label for outlet in status.outlets.values()} == {None}


async def test_recorded_meters(connect: Callable[..., SnmpPduClient]) -> None:
    # AP8641 meters every outlet: 0.1 A, W, 0.1 kWh; the unit in 0.01 kW and 0.1 kWh.
    metered = await connect("apc-8641").read_status()
    first = metered.outlets[1]
    assert (first.current_a, first.power_w, first.energy_kwh) == (0.9, 163, 304.6)
    assert (metered.power_w, metered.energy_kwh) == (1210, 1951.6)
    # AP8932 meters the unit only; AP7902B reports -1 (no reading) for the unit.
    switched = await connect("apc-8932").read_status()
    assert (switched.power_w, switched.energy_kwh) == (160, 642.6)
    assert switched.outlets[1].current_a is None
    unmetered = await connect("apc-7902b").read_status()
    assert (unmetered.power_w, unmetered.energy_kwh) == (None, None)
    # The Tripp Lite ATS measures no outlet.
    ats = await connect("tripplite-poweralert").read_status()
    assert {o.current_a for o in ats.outlets.values()} == {None}


@pytest.mark.parametrize("recording", ["apc-7902b", "apc-8641", "apc-8932"])
async def test_older_apc_tables_of_a_recording_agree(
    recording: str, connect: Callable[..., SnmpPduClient]
) -> None:
    # The recorded rPDU and MasterSwitch tables say what the pinned rPDU2 column says.
    states = RECORDED[recording][4]
    for profile in ("apc_rpdu", "apc_masterswitch"):
        status = await connect(recording, profile=profile).read_status()
        assert pattern(status) == states


@pytest.mark.parametrize(
    ("recording", "command", "reads"),
    [
        # rPDU2OutletSwitchedControlCommand reads the outlet state: 1 on, 2 off.
        ("apc-8641", "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5", {True: "1", False: "2"}),
        # tlpAtsOutletCommand (device 1) always reads 0.
        ("tripplite-poweralert", "1.3.6.1.4.1.850.1.1.3.4.3.3.1.1.6.1", {}),
    ],
)
async def test_recorded_unit_switches(
    recording: str,
    command: str,
    reads: dict[bool, str],
    connect: Callable[..., SnmpPduClient],
    recorded_units: SnmpsimAgent,  # noqa: F811
) -> None:
    client = connect(recording)
    before = pattern(await client.read_status())
    # Two outlets that are on and one that is off, switched the other way in one SET each.
    on = [n for n, s in enumerate(before, start=1) if s == "1"][:2]
    off = before.index("0") + 1
    await client.set_outlets(on, False)
    await client.set_outlets([off], True)
    after = pattern(await client.read_status())
    expected = list(before)
    for n in on:
        expected[n - 1] = "0"
    expected[off - 1] = "1"
    assert after == "".join(expected)
    assert recorded_units.value(recording, f"{command}.{on[0]}") == reads.get(
        False, "0"
    )
    assert recorded_units.value(recording, f"{command}.{off}") == reads.get(True, "0")
    # Switching back restores the recording.
    await client.set_outlets(on, True)
    await client.set_outlets([off], False)
    assert pattern(await client.read_status()) == before


async def test_recorded_unit_lacks_an_outlet(
    connect: Callable[..., SnmpPduClient],
    recorded_units: SnmpsimAgent,  # noqa: F811
) -> None:
    # snmpsim answers the SET with noSuchInstance and no error: still a refusal.
    with pytest.raises(PduProtocolError, match="no outlet 25"):
        await connect("apc-8641").set_outlets([25], True)
    assert (
        recorded_units.value("apc-8641", "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5.25") is None
    )
