"""The SNMP PDU client against Debian's snmpd on 127.0.0.1 simulating each vendor's unit.

snmpd answers every vendor tree through tests/peers/bin/snmp-pdu-sim (outlets in a JSON
file, writes to a control object change the separate status object as the vendor's unit
does); its sysObjectID comes from the same file, so one agent plays every unit. Net-SNMP's
snmpget, the reference client, checks what the driver reports. No packet leaves 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import socket
import subprocess
import sys
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.proto import errind
import pytest

from custom_components.labpower.core.model import PowerState
from custom_components.labpower.core.switching import ConfigurationSwitchError
from custom_components.labpower.drivers import snmp as snmp_driver
from custom_components.labpower.drivers.pdu import (
    PDU_AUTH,
    PDU_READ_ONLY,
    PduAuthError,
    PduOutletSwitcher,
    PduProtocolError,
    PduReadOnlyError,
    PduUnit,
    PduUnreachableError,
)
from custom_components.labpower.drivers.snmp import (
    Executor,
    SnmpPduClient,
    SnmpSettingsError,
    SnmpVendorError,
)
from custom_components.labpower.drivers.snmp_profiles import (
    PROFILES,
    Command,
    Meter,
    candidates,
    dotted,
    enterprise,
)

from .peers.net import free_port, sockets_allowed
from .peers.snmpd import (  # noqa: F401 - fixtures
    HOST,
    SIM,
    SYS_NAME,
    SYS_OBJECT_ID,
    V3_ADMIN,
    V3_MD5,
    V3_READER,
    VENDORS,
    SnmpAgent,
    V3User,
    oid,
    snmp_agent,
    snmpd_agent,
    unit,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

ALL = list(PROFILES)


@dataclass
class Calls:
    """pysnmp requests the driver made: (command, number of varbinds)."""

    made: list[tuple[str, int]] = field(default_factory=list)

    def count(self, command: str) -> int:
        """Requests of one kind."""
        return sum(1 for name, _ in self.made if name == command)

    def varbinds(self, command: str) -> list[int]:
        """Varbinds per request of one kind."""
        return [size for name, size in self.made if name == command]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Count the driver's SNMP requests (they still go to the agent)."""
    seen = Calls()
    for command in ("get_cmd", "next_cmd", "bulk_cmd", "set_cmd"):
        real = getattr(snmp_driver, command)
        skip = (
            6 if command == "bulk_cmd" else 4
        )  # engine, auth, target, context (, n, r)

        def spy(
            *args: Any,
            _real: Any = real,
            _name: str = command,
            _skip: int = skip,
            **kw: Any,
        ) -> Awaitable[Any]:
            seen.made.append((_name, len(args) - _skip))
            return _real(*args, **kw)  # type: ignore[no-any-return]

        monkeypatch.setattr(snmp_driver, command, spy)
    return seen


@pytest.fixture
def executor() -> Iterator[Executor]:
    """A thread pool of the test's own, shut down (threads joined) at the end."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snmp-test")

    def run[T](func: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(pool, func)

    yield run
    pool.shutdown(wait=True)


@pytest.fixture
def agent(snmp_agent: SnmpAgent) -> SnmpAgent:  # noqa: F811 - the imported fixture
    """The session's snmpd as an empty unit."""
    return snmp_agent


@pytest.fixture
async def make(
    agent: SnmpAgent, executor: Executor
) -> AsyncIterator[Callable[..., SnmpPduClient]]:
    """Clients of the agent (v2c, public/private, 1 s, no retries unless told), closed."""
    made: list[SnmpPduClient] = []

    def factory(**kwargs: Any) -> SnmpPduClient:
        options: dict[str, Any] = {
            "port": agent.port,
            "community": "public",
            "write_community": "private",
            "timeout": 1.0,
            "retries": 0,
            "executor": executor,
        } | kwargs
        client = SnmpPduClient(HOST, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.close()


def v3(user: V3User, **overrides: Any) -> dict[str, Any]:
    """Client options for a v3 user of the agent."""
    return {
        "version": "3",
        "username": user.name,
        "auth_protocol": user.auth_protocol,
        "auth_key": user.auth_key,
        "priv_protocol": user.priv_protocol,
        "priv_key": user.priv_key,
    } | overrides


def states(status: Any) -> dict[int, PowerState]:
    """Outlet number -> state of a UnitStatus."""
    return {number: outlet.state for number, outlet in status.outlets.items()}


ON, OFF, UNKNOWN = PowerState.ON, PowerState.OFF, PowerState.UNKNOWN


# Every profile: one walk reads all outlets, one SET switches several


@pytest.mark.parametrize("vendor", ALL)
async def test_profile_reads_in_one_walk_and_switches_in_one_set(
    vendor: str, agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    agent.load(unit(vendor, ["on", "off", "on", "off", "off"]))
    client = make(profile=vendor)
    assert client.profile is PROFILES[vendor]

    status = await client.read_status()
    assert states(status) == {1: ON, 2: OFF, 3: ON, 4: OFF, 5: OFF}
    assert status.name == SYS_NAME
    named = VENDORS[vendor].names is not None
    assert status.outlets[2].name == ("outlet 2" if named else None)
    # One walk in one request (the poll's status read); no detection: the profile was given.
    assert [name for name, _ in calls.made] == ["bulk_cmd"]

    await client.set_outlets([4, 2, 5], True)
    assert calls.varbinds("set_cmd") == [3]  # one SET carrying all three outlets
    assert states(await client.read_status()) == dict.fromkeys(range(1, 6), ON)
    assert [agent.status(vendor, n) for n in (2, 4, 5)] == [str(VENDORS[vendor].on)] * 3

    await client.set_outlets([1, 3], False)
    assert calls.varbinds("set_cmd") == [3, 2]
    assert states(await client.read_status()) == {1: OFF, 2: ON, 3: OFF, 4: ON, 5: ON}
    # The reference client reads what the driver reads.
    spec = VENDORS[vendor]
    assert agent.snmpget(*(f".{oid(spec.status)}.{n}" for n in (1, 2))) == [
        str(spec.off),
        str(spec.on),
    ]


async def test_write_semantics_of_the_vendors(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # APC rPDU2: write 1 (on) -> reads 2; write 2 (off) -> reads 1.
    agent.load(unit("apc_rpdu2", ["off", "on"]))
    rpdu2 = make(profile="apc_rpdu2")
    await rpdu2.set_outlets([1], True)
    await rpdu2.set_outlets([2], False)
    assert agent.writes == [
        f"{oid('318.1.1.26.9.2.4.1.5.1')} 1",
        f"{oid('318.1.1.26.9.2.4.1.5.2')} 2",
    ]
    assert [agent.status("apc_rpdu2", n) for n in (1, 2)] == ["2", "1"]
    # Eaton: a separate command column for on and off, the value a delay (0 = now).
    agent.load(unit("eaton_epdu", ["off", "on"]))
    eaton = make(profile="eaton_epdu")
    await eaton.set_outlets([1], True)
    await eaton.set_outlets([2], False)
    assert agent.writes == [
        f"{oid('534.6.6.7.6.6.1.4.0.1')} 0",
        f"{oid('534.6.6.7.6.6.1.3.0.2')} 0",
    ]
    assert states(await eaton.read_status()) == {1: ON, 2: OFF}
    # Raritan: write 1 on, 0 off; reads 7 on, 8 off.
    agent.load(unit("raritan_pdu2", ["off", "on"]))
    raritan = make(profile="raritan_pdu2")
    await raritan.set_outlets([1], True)
    await raritan.set_outlets([2], False)
    assert [line.split()[1] for line in agent.writes] == ["1", "0"]
    assert [agent.status("raritan_pdu2", n) for n in (1, 2)] == ["7", "8"]


async def test_write_semantics_of_the_newer_trees(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # Tripp Lite TRIPPLITE-PRODUCTS: turnOn(2) / turnOff(1) on device 1's row; state
    # reads 2 on, 1 off; the command column always reads 0 (idle).
    agent.load(unit("tripplite", ["off", "on"]))
    tripp_lite = make(profile="tripplite")
    await tripp_lite.set_outlets([1], True)
    await tripp_lite.set_outlets([2], False)
    assert agent.writes == [
        f"{oid('850.1.1.3.2.3.3.1.1.6.1.1')} 2",
        f"{oid('850.1.1.3.2.3.3.1.1.6.1.2')} 1",
    ]
    assert [agent.status("tripplite", n) for n in (1, 2)] == ["2", "1"]
    assert agent.value(oid("850.1.1.3.2.3.3.1.1.6.1.1")) == "0"
    # The PowerAlert 12.04 tree: the same values, another place.
    agent.load(unit("tripplite_legacy", ["off"]))
    await make(profile="tripplite_legacy").set_outlets([1], True)
    assert agent.writes == [f"{oid('850.10.2.3.5.1.4.1.1')} 2"]
    assert agent.status("tripplite_legacy", 1) == "2"
    # CyberPower ePDU2: immediateOn(1) / immediateOff(2); the control column reads
    # the outlet state in the same terms.
    agent.load(unit("cyberpower_epdu2", ["off", "on"]))
    epdu2 = make(profile="cyberpower_epdu2")
    await epdu2.set_outlets([1], True)
    await epdu2.set_outlets([2], False)
    assert [line.split()[1] for line in agent.writes] == ["1", "2"]
    assert states(await epdu2.read_status()) == {1: ON, 2: OFF}
    assert agent.value(oid("3808.1.1.6.6.1.5.1.5.2")) == "2"
    # Raritan PX (PDU-MIB): outletOperationalState is read and written, 1 on, 0 off.
    agent.load(unit("raritan_px1", ["off", "on"]))
    px1 = make(profile="raritan_px1")
    await px1.set_outlets([1], True)
    await px1.set_outlets([2], False)
    assert agent.writes == [
        f"{oid('13742.4.1.2.2.1.3.1')} 1",
        f"{oid('13742.4.1.2.2.1.3.2')} 0",
    ]
    assert states(await px1.read_status()) == {1: ON, 2: OFF}


@pytest.mark.parametrize("vendor", ["apc_rpdu2", "cyberpower_epdu2"])
async def test_daisy_chained_units_name_outlets_per_unit(
    vendor: str, agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # Two linked units of 3 and 2 outlets: one table, indexed 1..5 across both.
    agent.load(unit(vendor, ["on", "off", "on", "off", "on"], chain=[3, 2]))
    client = make(profile=vendor)
    status = await client.read_status()
    assert {n: o.label for n, o in status.outlets.items()} == {
        1: "1:1",
        2: "1:2",
        3: "1:3",
        4: "2:1",
        5: "2:2",
    }
    # Switching keeps the table's index: 2:1 is row 4.
    await client.set_outlets([4], True)
    assert agent.status(vendor, 4) == str(VENDORS[vendor].on)
    assert states(await client.read_status())[4] is ON
    # A single unit keeps its plain outlet numbers.
    agent.load(unit(vendor, ["on", "off"]))
    single = await make(profile=vendor).read_status()
    assert [o.label for o in single.outlets.values()] == [None, None]


async def test_px1_and_epdu2_meters(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    px1_meters = {
        "13742.4.1.2.2.1.4.1": ("integer", 1250),  # outletCurrent: mA
        "13742.4.1.2.2.1.7.1": ("integer", 140),  # outletActivePower: W
        "13742.4.1.2.2.1.31.1": ("gauge", 123456),  # outletWattHours: Wh
        "13742.4.1.3.1.3.0": ("integer", 600),  # unitActivePower: W
        "13742.4.1.1.2.0": ("string", "PX1-SERIAL"),  # serialNumber
    }
    agent.load(unit("raritan_px1", ["on"], extra=px1_meters))
    status = await make(profile="raritan_px1").read_status()
    outlet = status.outlets[1]
    assert (outlet.current_a, outlet.power_w, outlet.energy_kwh) == (1.25, 140, 123.456)
    assert (status.power_w, status.serial) == (600, "PX1-SERIAL")
    epdu2_meters = {
        "3808.1.1.6.6.2.4.1.6.1": ("gauge", 7),  # ePDU2OutletMeteredStatusLoad: 0.1 A
        "3808.1.1.6.6.2.4.1.7.1": ("gauge", 80),  # ActivePower: W
        "3808.1.1.6.6.2.4.1.11.1": ("gauge", 52),  # Energy: 0.1 kWh
        "3808.1.1.6.3.4.1.18.1": ("gauge", 95),  # ePDU2DeviceStatusPowerLoad: W
        "3808.1.1.6.3.4.1.9.1": ("gauge", 1234),  # ePDU2DeviceStatusEnergy: 0.1 kWh
        "3808.1.1.6.2.2.1.9.1": ("string", "PDU81005"),  # ePDU2IdentModelName
    }
    agent.load(unit("cyberpower_epdu2", ["on"], extra=epdu2_meters))
    status = await make(profile="cyberpower_epdu2").read_status()
    outlet = status.outlets[1]
    assert (outlet.current_a, outlet.power_w, outlet.energy_kwh) == (0.7, 80, 5.2)
    assert (status.power_w, status.energy_kwh, status.model) == (95, 123.4, "PDU81005")


# Values no profile lists: unknown, never off


@pytest.mark.parametrize(
    ("vendor", "raw"),
    [
        ("apc_masterswitch", 4),  # outletUnknown
        ("apc_masterswitch", 3),  # rebooting
        ("eaton_epdu", 2),  # pending off: not off yet
        ("eaton_epdu", 3),  # pending on: not on yet
        ("apc_rpdu2", 0),
        ("raritan_pdu2", 1),
        ("tripplite", 0),  # tlpPduOutletState unknown(0)
        ("tripplite_ats", 0),
        ("tripplite_legacy", 0),
        ("cyberpower", 99),
        ("cyberpower_epdu2", 3),
        ("raritan_px1", -1),  # outletOperationalState error(-1)
        ("raritan_px1", 2),  # cycling(2): not yet on
    ],
)
async def test_values_a_profile_does_not_list_are_unknown(
    vendor: str, raw: int, agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit(vendor, ["on", raw, "off"]))
    status = await make(profile=vendor).read_status()
    assert states(status) == {1: ON, 2: UNKNOWN, 3: OFF}


async def test_eaton_delayed_command_reads_pending_then_done(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("eaton_epdu", ["off"]))
    client = make(profile="eaton_epdu")
    agent.put(oid("534.6.6.7.6.6.1.2.0.1"), "integer", 3)  # switched on with a delay
    assert states(await client.read_status()) == {1: UNKNOWN}
    await client.set_outlets([1], True)  # now
    assert states(await client.read_status()) == {1: ON}


async def test_outlet_without_object_is_unknown(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # Outlets 2 and 4 have no status object (noSuchObject/noSuchInstance for a GET).
    agent.load(unit("apc_rpdu2", ["on", None, "off", None]))
    assert agent.snmpget(f".{oid('318.1.1.26.9.2.3.1.5.2')}") == [
        "No Such Instance currently exists at this OID"
    ]
    client = make(profile="apc_rpdu2", outlets=4)
    assert states(await client.read_status()) == {1: ON, 2: UNKNOWN, 3: OFF, 4: UNKNOWN}
    # An outlet the unit reported once and then no longer does is unknown, not gone.
    agent.load(unit("apc_rpdu2", [None, "on", "off"]))
    unsized = make(profile="apc_rpdu2")
    assert states(await unsized.read_status()) == {2: ON, 3: OFF}
    agent.load(unit("apc_rpdu2", [None, None, "off"]))
    assert states(await unsized.read_status()) == {2: UNKNOWN, 3: OFF}


async def test_status_of_another_type_is_unknown(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("cyberpower", ["on", "off"]))
    agent.put(oid("3808.1.1.3.3.5.1.1.4.2"), "string", "off")
    agent.put(oid("3808.1.1.3.3.5.1.1.2.1"), "integer", 5)  # a name that is no text
    status = await make(profile="cyberpower").read_status()
    assert states(status) == {1: ON, 2: UNKNOWN}
    assert status.outlets[1].name is None


# Automatic: the profile from sysObjectID


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        (("apc_rpdu2",), "apc_rpdu2"),
        (("apc_rpdu",), "apc_rpdu"),
        (("apc_masterswitch",), "apc_masterswitch"),
        # A Rack PDU 2G answers the older tables too: the newest wins.
        (("apc_masterswitch", "apc_rpdu", "apc_rpdu2"), "apc_rpdu2"),
        (("apc_masterswitch", "apc_rpdu"), "apc_rpdu"),
        (("cyberpower",), "cyberpower"),
        (("raritan_pdu2",), "raritan_pdu2"),
        (("eaton_epdu",), "eaton_epdu"),
        (("cyberpower_epdu2",), "cyberpower_epdu2"),
        # A unit with both CyberPower trees: ePDU2 sees its daisy-chained units too.
        (("cyberpower", "cyberpower_epdu2"), "cyberpower_epdu2"),
        # A first-generation Raritan PX (sysObjectID 13742.4) has PDU-MIB only.
        (("raritan_px1",), "raritan_px1"),
        (("tripplite",), "tripplite"),
        (("tripplite_ats",), "tripplite_ats"),
        (("tripplite_legacy",), "tripplite_legacy"),
    ],
)
@pytest.mark.parametrize("version", ["1", "2c"])
async def test_automatic_detection(
    tables: tuple[str, ...],
    expected: str,
    version: str,
    agent: SnmpAgent,
    make: Callable[..., SnmpPduClient],
) -> None:
    values: dict[str, list[str]] = {}
    for table in tables:
        values |= unit(table, ["off", "on"])
    agent.load(values)
    client = make(version=version)
    assert client.profile is None
    assert await client.detect() is PROFILES[expected]
    assert client.profile is PROFILES[expected]
    assert states(await client.read_status()) == {1: OFF, 2: ON}
    await client.set_outlets([1], True)
    assert agent.status(expected, 1) == str(VENDORS[expected].on)


async def test_detection_happens_once(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    agent.load(unit("apc_rpdu2", ["on"]))
    client = make()
    await client.read_status()
    await client.set_outlets([1], False)
    await client.read_status()
    # sysObjectID, the APC table probe, then only status reads and the SET.
    assert [name for name, _ in calls.made] == [
        "get_cmd",
        "next_cmd",
        "bulk_cmd",
        "set_cmd",
        "bulk_cmd",
    ]
    assert calls.varbinds("next_cmd") == [3]  # the three APC tables in one request


async def test_unknown_vendor(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # The agent is a plain Net-SNMP host: enterprise 8072.
    with pytest.raises(
        SnmpVendorError, match=r"1\.3\.6\.1\.4\.1\.8072\.3\.2\.10"
    ) as caught:
        await make().read_status()
    assert isinstance(caught.value, ConfigurationSwitchError)
    assert "apc_rpdu2" in str(caught.value)  # the profiles to choose from


async def test_no_sys_object_id(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("apc_rpdu2", ["on"], sys_object_id=None))
    with pytest.raises(SnmpVendorError, match="no sysObjectID"):
        await make().set_outlets([1], True)
    with pytest.raises(SnmpVendorError, match="no sysObjectID"):
        await make(version="1").read_status()
    assert agent.writes == []


async def test_apc_without_outlet_tables(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load({SYS_OBJECT_ID: ["objectid", "." + oid("318.1.3.4.5")]})
    with pytest.raises(SnmpVendorError, match="none of the outlet tables"):
        await make().detect()


async def test_profile_that_is_not_the_units(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("apc_rpdu2", ["on"]))
    with pytest.raises(SnmpVendorError, match="no outlets in Eaton ePDU's table"):
        await make(profile="eaton_epdu").read_status()


def test_candidates() -> None:
    # Newest MIB first within a vendor: the probe takes the first table a unit answers.
    assert candidates(enterprise("318.1.3.4.5")) == [
        PROFILES["apc_rpdu2"],
        PROFILES["apc_rpdu"],
        PROFILES["apc_masterswitch"],
    ]
    assert candidates(enterprise("13742.4")) == [
        PROFILES["raritan_pdu2"],
        PROFILES["raritan_px1"],
    ]
    assert [p.key for p in candidates(enterprise("850.1.1.1"))] == [
        "tripplite",
        "tripplite_ats",
        "tripplite_legacy",
    ]
    assert [p.key for p in candidates(enterprise("3808.1.1.6"))] == [
        "cyberpower_epdu2",
        "cyberpower",
    ]
    assert candidates((1, 3, 6, 1, 4, 1)) == []
    assert candidates((1, 3, 6, 1, 2, 1)) == []
    assert dotted(enterprise("534.6")) == "1.3.6.1.4.1.534.6"
    assert Meter((1,), 0.1).convert(-1) is None
    assert Meter((1,), 0.1).convert(None) is None
    assert Meter((1,), 0.1).convert(15) == 1.5
    assert PROFILES["eaton_epdu"].state(None) is UNKNOWN


# SNMP versions and credentials


@pytest.mark.parametrize(
    "options",
    [
        {"version": "1"},
        {"version": "2c"},
        v3(V3_ADMIN),  # SHA + AES
        v3(V3_MD5),  # MD5 + DES
    ],
    ids=["v1", "v2c", "v3-sha-aes", "v3-md5-des"],
)
async def test_versions_read_and_switch(
    options: dict[str, Any], agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("raritan_pdu2", ["off", "off", "on"]))
    client = make(**options)
    assert states(await client.read_status()) == {1: OFF, 2: OFF, 3: ON}
    await client.set_outlets([1, 2], True)
    assert states(await client.read_status()) == {1: ON, 2: ON, 3: ON}
    assert len(agent.writes) == 2


async def test_v1_walks_row_by_row(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    # SNMP v1 has no GETBULK: one GETNEXT per row (state and name side by side).
    agent.load(unit("apc_rpdu", ["on", "off", "on"]))
    client = make(version="1", profile="apc_rpdu")
    assert states(await client.read_status()) == {1: ON, 2: OFF, 3: ON}
    assert calls.count("bulk_cmd") == 0
    assert calls.count("next_cmd") == 4  # three rows and the step past the end
    assert calls.varbinds("next_cmd")[0] == 5  # sysName, model, serial, state, name


async def test_v3_auth_only_user_reads(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("tripplite", ["on"]))
    assert states(await make(**v3(V3_READER)).read_status()) == {1: ON}


@pytest.mark.parametrize(
    "options",
    [
        {"version": "2c", "write_community": "public"},  # noAccess
        {"version": "1", "write_community": "public"},  # v1 says noSuchName
        v3(V3_READER),  # a read-only user
    ],
    ids=["v2c", "v1", "v3"],
)
async def test_read_only_credentials_cannot_switch(
    options: dict[str, Any], agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("apc_rpdu2", ["off", "off"]))
    client = make(profile="apc_rpdu2", **options)
    assert states(await client.read_status()) == {1: OFF, 2: OFF}
    with pytest.raises(PduReadOnlyError, match="may read but not switch") as caught:
        await client.set_outlets([1, 2], True)
    assert caught.value.issue == PDU_READ_ONLY
    assert agent.writes == []


@pytest.mark.parametrize(
    "options",
    [
        v3(V3_ADMIN, auth_key="Zq9x-wrong-pass"),  # usmStatsWrongDigests
        v3(V3_ADMIN, username="nobody"),  # usmStatsUnknownUserNames
        v3(
            V3_READER, priv_protocol="aes", priv_key="Zq9x-any-priv"
        ),  # no privacy: level
        v3(
            V3_MD5, priv_protocol="none", priv_key=None
        ),  # needs privacy: not authorized
    ],
    ids=["wrong-password", "unknown-user", "unsupported-level", "not-authorized"],
)
async def test_v3_refused_credentials_fail_fast(
    options: dict[str, Any], agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("apc_rpdu2", ["off"]))
    client = make(profile="apc_rpdu2", **options)
    # Refused (an authentication report), not a timeout: PduAuthError, not unreachable.
    with pytest.raises(PduAuthError) as caught:
        await client.read_status()
    assert caught.value.issue == PDU_AUTH
    assert "Zq9x" not in str(caught.value)  # never a secret


async def test_v3_wrong_privacy_key_looks_like_silence(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    client = make(
        profile="apc_rpdu2", timeout=0.3, **v3(V3_ADMIN, priv_key="Zq9x-wrong-priv")
    )
    with pytest.raises(PduUnreachableError, match="privacy key") as caught:
        await client.read_status()
    assert "Zq9x" not in str(caught.value)


async def test_wrong_community_looks_like_silence(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    client = make(community="Zq9x-wrong", timeout=0.3)
    # Silence, as from a unit that is not there: no answer within the timeout.
    with pytest.raises(
        PduUnreachableError, match=r"no answer within 0\.3 s .*wrong community"
    ) as caught:
        await client.read_status()
    assert f"{HOST}:{agent.port}" in str(caught.value)


async def test_nothing_listening_is_unreachable(executor: Executor) -> None:
    with sockets_allowed():
        port = free_port(socket.SOCK_DGRAM)
    client = SnmpPduClient(HOST, port=port, timeout=0.3, retries=0, executor=executor)
    with pytest.raises(PduUnreachableError, match=r"no answer within 0\.3 s"):
        await client.read_status()
    with pytest.raises(PduUnreachableError):
        await client.set_outlets([1], True)
    await client.close()


async def test_switching_an_outlet_the_unit_lacks(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("apc_rpdu2", ["off", "off"]))
    for version in ("2c", "1"):
        client = make(profile="apc_rpdu2", version=version)
        with pytest.raises(PduProtocolError, match="no outlet 7") as caught:
            await client.set_outlets([1, 7], True)
        assert not isinstance(caught.value, PduReadOnlyError)
    assert agent.writes == []  # nothing switched: SET is all or nothing


async def test_set_refused_with_another_error(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("tripplite", ["off"]))
    client = make(profile="tripplite")
    tripplite = PROFILES["tripplite"]
    # A command value the unit does not take.
    client._profile = replace(tripplite, on=Command(tripplite.on.column, 7))
    with pytest.raises(PduProtocolError, match=r"refused to set .*wrongValue"):
        await client.set_outlets([1], True)


# Measurements, names, the unit


async def test_rpdu2_meters(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    metered = {
        "318.1.1.26.9.4.3.1.6.1": ("integer", 12),  # 1.2 A
        "318.1.1.26.9.4.3.1.7.1": ("integer", 230),  # W
        "318.1.1.26.9.4.3.1.11.1": ("integer", 456),  # 45.6 kWh
        "318.1.1.26.9.4.3.1.6.2": ("integer", -1),  # not metered
        "318.1.1.26.9.4.3.1.7.2": ("integer", -1),
        "318.1.1.26.9.4.3.1.11.2": ("integer", -1),
        "318.1.1.26.4.3.1.5.1": ("integer", 25),  # hundredths of kW: 250 W
        "318.1.1.26.4.3.1.9.1": ("integer", 1234),  # tenths of kWh
    }
    agent.load(unit("apc_rpdu2", ["on", "off"], extra=metered))
    status = await make(profile="apc_rpdu2").read_status()
    first, second = status.outlets[1], status.outlets[2]
    assert (first.current_a, first.power_w, first.energy_kwh) == (1.2, 230, 45.6)
    assert (second.current_a, second.power_w, second.energy_kwh) == (None, None, None)
    assert (status.power_w, status.energy_kwh) == (250, 123.4)


async def test_unit_identity(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    identity = {
        "3808.1.1.3.1.5.0": ("string", "PDU41004"),
        "3808.1.1.3.1.6.0": ("string", "ABC1234567"),
    }
    agent.load(unit("cyberpower", ["on"], extra=identity))
    for version in ("1", "2c"):
        status = await make(profile="cyberpower", version=version).read_status()
        assert (status.name, status.model, status.serial) == (
            SYS_NAME,
            "PDU41004",
            "ABC1234567",
        )
        assert status.power_w is None


async def test_many_outlets(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    agent.load(unit("cyberpower", ["on", "off"] * 20))
    client = make(profile="cyberpower")
    first = await client.read_status()
    assert len(first.outlets) == 40
    assert first.outlets[40].state is OFF
    assert calls.count("bulk_cmd") == 2  # more rows than one answer was asked for
    second = await client.read_status()
    assert second == first
    assert calls.count("bulk_cmd") == 3  # the outlet count is known now: one request


async def test_missing_optional_objects_are_not_asked_again(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    # An rPDU2 without meters: the meter columns and totals are asked once.
    agent.load(unit("apc_rpdu2", ["on", "off"]))
    client = make(profile="apc_rpdu2")
    assert states(await client.read_status()) == {1: ON, 2: OFF}
    assert states(await client.read_status()) == {1: ON, 2: OFF}
    # sysName, model, serial, power, energy + state, name, module, number, current,
    # power, energy; then sysName and the four columns the unit has.
    assert calls.varbinds("bulk_cmd") == [12, 5]


async def test_walk_that_does_not_end(
    agent: SnmpAgent,
    make: Callable[..., SnmpPduClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent.load(unit("apc_rpdu2", ["on"] * 30))
    monkeypatch.setattr(snmp_driver, "MAX_WALK_REQUESTS", 1)
    with pytest.raises(PduProtocolError, match="did not end after 1 requests"):
        await make(profile="apc_rpdu2").read_status()


async def test_get_next_past_the_end_of_the_mib(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    # v1 answers noSuchName for the whole request: asked again without that one.
    for version in ("1", "2c"):
        client = make(version=version)
        past, name = await client._get_next(
            [(1, 3, 6, 1, 7), (1, 3, 6, 1, 2, 1, 1, 5)], "x"
        )
        assert past is None
        assert name is not None
        assert name[0] == (1, 3, 6, 1, 2, 1, 1, 5, 0)
        assert await client._get_next([(1, 3, 6, 1, 7)], "x") == [None]


async def test_get_next_refused(
    make: Callable[..., SnmpPduClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gen_err(*args: Any, **kwargs: Any) -> Any:
        return None, 5, 1, ()

    monkeypatch.setattr(snmp_driver, "next_cmd", gen_err)
    with pytest.raises(
        PduProtocolError, match="probe the outlet tables: the unit answered genErr"
    ):
        await make(version="1")._probe([PROFILES["apc_rpdu"]])


# The unit interface over SNMP


async def test_pdu_unit_batches_commands_into_one_set(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient], calls: Calls
) -> None:
    agent.load(unit("eaton_epdu", ["off", "off", "off"]))
    pdu = PduUnit(make(profile="eaton_epdu"), max_age=0.0)
    outlets = [PduOutletSwitcher(pdu, n, "pdu1") for n in (1, 2, 3)]
    assert [await o.read_state() for o in outlets] == [OFF, OFF, OFF]
    await asyncio.gather(outlets[0].turn_on(), outlets[2].turn_on())
    assert calls.varbinds("set_cmd") == [2]
    assert [await o.read_state() for o in outlets] == [ON, OFF, ON]
    assert outlets[1].description == "pdu1:outlet2"


# Client settings and life cycle


async def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="version"):
        SnmpPduClient(HOST, version="2")
    with pytest.raises(ValueError, match="vendor profile 'apc'"):
        SnmpPduClient(HOST, profile="apc")
    with pytest.raises(ValueError, match="timeout"):
        SnmpPduClient(HOST, timeout=0)
    with pytest.raises(ValueError, match="outlets"):
        SnmpPduClient(HOST, outlets=-1)
    with pytest.raises(ValueError, match="user name"):
        SnmpPduClient(HOST, version="3")
    with pytest.raises(ValueError, match="auth protocol"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, auth_protocol="sha3"))
    with pytest.raises(ValueError, match="privacy protocol"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, priv_protocol="rc4"))
    with pytest.raises(ValueError, match="auth key needs at least 8"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, auth_key="short"))
    with pytest.raises(ValueError, match="privacy key needs at least 8"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, priv_key=None))
    with pytest.raises(ValueError, match="privacy needs authentication"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, auth_protocol="none", auth_key=None))
    # A key without its protocol (None is "none"): a form left half filled in.
    with pytest.raises(SnmpSettingsError, match="auth key needs an auth protocol"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, auth_protocol=None))
    with pytest.raises(ConfigurationSwitchError, match="privacy key needs a privacy"):
        SnmpPduClient(HOST, **v3(V3_ADMIN, priv_protocol=None))
    # No authentication, no privacy: noAuthNoPriv is a valid v3 setting.
    assert SnmpPduClient(HOST, version="3", username="guest").version == "3"
    client = SnmpPduClient(HOST, port=1161)
    assert client.description == f"snmp {HOST}:1161"
    with pytest.raises(ValueError, match="start at 1"):
        await client.set_outlets([0, 1], True)
    await client.set_outlets([], True)  # nothing to do: no request, no engine
    assert client._engine is None
    await client.close()


async def test_close_and_use_again(
    agent: SnmpAgent, make: Callable[..., SnmpPduClient]
) -> None:
    agent.load(unit("cyberpower", ["on"]))
    client = make(profile="cyberpower")
    assert states(await client.read_status()) == {1: ON}
    engine = client._engine
    await client.close()
    assert client._engine is None
    assert states(await client.read_status()) == {1: ON}
    assert client._engine is not engine
    await client.close()
    await client.close()


async def test_default_executor(agent: SnmpAgent) -> None:
    # Without an executor the engine is made in asyncio's default thread pool.
    agent.load(unit("tripplite", ["off"]))
    client = SnmpPduClient(HOST, port=agent.port, profile="tripplite", retries=0)
    try:
        assert states(await client.read_status()) == {1: OFF}
    finally:
        await client.close()


# Errors pysnmp reports without the agent's help


async def test_engine_that_never_answers(
    agent: SnmpAgent,
    make: Callable[..., SnmpPduClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(snmp_driver, "get_cmd", hang)
    client = make(timeout=0.1)
    with pytest.raises(PduUnreachableError, match=r"no answer within 0\.1 s"):
        await client.detect()


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        ((errind.emptyResponse, 0, 0, ()), PduProtocolError, "Empty SNMP response"),
        ((None, 5, 1, ()), PduProtocolError, "answered genErr"),
        ((None, 16, 1, ()), PduAuthError, "may not read"),
        ((None, 99, 1, ()), PduProtocolError, "answered 99"),
    ],
)
async def test_other_read_answers(
    answer: tuple[Any, ...],
    error: type[Exception],
    match: str,
    make: Callable[..., SnmpPduClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake(*args: Any, **kwargs: Any) -> Any:
        return answer

    monkeypatch.setattr(snmp_driver, "bulk_cmd", fake)
    with pytest.raises(error, match=match):
        await make(profile="apc_rpdu2").read_status()


async def test_other_set_answers(
    agent: SnmpAgent,
    make: Callable[..., SnmpPduClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def gen_err(*args: Any, **kwargs: Any) -> Any:
        return None, 5, 0, ()

    monkeypatch.setattr(snmp_driver, "set_cmd", gen_err)
    with pytest.raises(PduProtocolError, match=r"refused to set: genErr"):
        await make(profile="apc_rpdu2").set_outlets([1], True)


async def test_pysnmp_errors(
    make: Callable[..., SnmpPduClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise PySnmpError("cannot encode")

    monkeypatch.setattr(snmp_driver, "get_cmd", broken)
    with pytest.raises(PduProtocolError, match="cannot encode"):
        await make().detect()

    async def unresolvable(*args: Any, **kwargs: Any) -> Any:
        raise PySnmpError("Bad IPv4/UDP transport address pdu.invalid@161")

    monkeypatch.setattr(snmp_driver.UdpTransportTarget, "create", unresolvable)
    with pytest.raises(PduUnreachableError, match="transport address"):
        await make().detect()


# The simulator as snmpd's plain `pass` program (the fixture uses pass_persist)


def test_simulator_pass_mode(agent: SnmpAgent) -> None:
    agent.load(unit("apc_rpdu2", ["off", "on"]))

    def sim(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 - the test's own script
            [sys.executable, str(SIM), str(agent.state), *args],
            capture_output=True, check=False, text=True, timeout=10,
        )  # fmt: skip
        return done.stdout

    status = oid("318.1.1.26.9.2.3.1.5")
    control = oid("318.1.1.26.9.2.4.1.5")
    assert sim("-g", f".{status}.2") == f".{status}.2\ninteger\n2\n"
    assert sim("-g", f".{status}.9") == ""
    # GETNEXT goes by OID, not by text: .5.2 comes before .5.10.
    agent.put(f"{status}.10", "integer", 1)
    assert sim("-n", f".{status}.2").splitlines()[0] == f".{status}.10"
    assert sim("-n", f".{control}.2") == ""  # the last object of the unit
    assert sim("-s", f".{control}.1", "integer", "1") == ""
    assert agent.status("apc_rpdu2", 1) == "2"
    assert sim("-s", f".{control}.1", "string", "x") == "wrong-type\n"
    assert sim("-s", f".{control}.1", "integer", "9") == "wrong-value\n"
    assert sim("-s", f".{status}.1", "integer", "1") == "not-writable\n"
    assert sim("-s", f".{control}.7", "integer", "1") == "no-creation\n"
    assert sim("-x") == ""
