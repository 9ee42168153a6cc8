"""Where each PDU vendor keeps its outlets in SNMP, and what the numbers there mean.

A profile is read-only data: the column that holds every outlet's state (walked once per
status read), the commands that switch an outlet, the vendor's enterprise number (the
prefix of the unit's sysObjectID) and, where known, the columns with outlet names and
measurements. A value a profile does not list is UNKNOWN, never off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..core.model import PowerState

type Oid = tuple[int, ...]

ENTERPRISES: Oid = (1, 3, 6, 1, 4, 1)
SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5, 0)
AUTOMATIC = "automatic"


def enterprise(dotted: str) -> Oid:
    """An OID below .1.3.6.1.4.1 ("318.1.1.4" -> 1.3.6.1.4.1.318.1.1.4)."""
    return ENTERPRISES + tuple(int(part) for part in dotted.split("."))


def dotted(oid: Oid) -> str:
    """An OID as people write it: 1.3.6.1.4.1.318..."""
    return ".".join(map(str, oid))


@dataclass(frozen=True, slots=True)
class Command:
    """Setting `column`.N to `value` (an INTEGER) switches outlet N."""

    column: Oid
    value: int


@dataclass(frozen=True, slots=True)
class Meter:
    """A reading and the factor that turns it into A, W or kWh; negative means none."""

    oid: Oid  # a column indexed by outlet, or one object (the unit's)
    scale: float = 1.0

    def convert(self, raw: int | None) -> float | None:
        """The reading in its unit, None where the unit reports none (-1)."""
        if raw is None or raw < 0:
            return None
        return round(raw * self.scale, 6)


@dataclass(frozen=True, slots=True)
class SnmpProfile:
    """One vendor MIB's outlet table."""

    key: str
    title: str
    enterprise: int  # sysObjectID starts with 1.3.6.1.4.1.<enterprise>
    state_column: Oid
    states: Mapping[int, PowerState]
    on: Command
    off: Command
    name_column: Oid | None = None
    model: Oid | None = None
    serial: Oid | None = None
    outlet_current: Meter | None = None
    outlet_power: Meter | None = None
    outlet_energy: Meter | None = None
    unit_power: Meter | None = None
    unit_energy: Meter | None = None

    def state(self, value: int | None) -> PowerState:
        """What a state value means; anything the vendor table does not list is UNKNOWN."""
        if value is None:
            return PowerState.UNKNOWN
        return self.states.get(value, PowerState.UNKNOWN)

    def command(self, on: bool) -> Command:
        """The command that switches an outlet on or off."""
        return self.on if on else self.off


def _states(on: int, off: int) -> Mapping[int, PowerState]:
    return MappingProxyType({on: PowerState.ON, off: PowerState.OFF})


APC = 318
CYBERPOWER = 3808
RARITAN = 13742
EATON = 534
TRIPP_LITE = 850

_MASTERSWITCH = enterprise("318.1.1.4.4.2.1.3")  # sPDUOutletCtl: read and write
_EATON_OFF = enterprise("534.6.6.7.6.6.1.3.0")  # outletControlOffCmd.0.N
_EATON_ON = enterprise("534.6.6.7.6.6.1.4.0")  # outletControlOnCmd.0.N

PROFILES: Mapping[str, SnmpProfile] = MappingProxyType(
    {
        profile.key: profile
        for profile in (
            SnmpProfile(
                key="apc_masterswitch",
                title="APC MasterSwitch (sPDUOutletCtl)",
                enterprise=APC,
                state_column=_MASTERSWITCH,
                # 3 = rebooting, 4 = outletUnknown: neither is a state to act on.
                states=_states(on=1, off=2),
                on=Command(_MASTERSWITCH, 1),
                off=Command(_MASTERSWITCH, 2),
                name_column=enterprise("318.1.1.4.4.2.1.4"),
                model=enterprise("318.1.1.4.1.4.0"),
                serial=enterprise("318.1.1.4.1.5.0"),
            ),
            SnmpProfile(
                key="apc_rpdu",
                title="APC Rack PDU (rPDU)",
                enterprise=APC,
                state_column=enterprise("318.1.1.12.3.5.1.1.4"),
                states=_states(on=1, off=2),
                on=Command(enterprise("318.1.1.12.3.3.1.1.4"), 1),
                off=Command(enterprise("318.1.1.12.3.3.1.1.4"), 2),
                name_column=enterprise("318.1.1.12.3.5.1.1.2"),
                model=enterprise("318.1.1.12.1.5.0"),
                serial=enterprise("318.1.1.12.1.6.0"),
            ),
            SnmpProfile(
                key="apc_rpdu2",
                title="APC Rack PDU 2G (rPDU2)",
                enterprise=APC,
                state_column=enterprise("318.1.1.26.9.2.3.1.5"),
                # The reverse of what the command column takes: read 1 off, 2 on.
                states=_states(on=2, off=1),
                on=Command(enterprise("318.1.1.26.9.2.4.1.5"), 1),
                off=Command(enterprise("318.1.1.26.9.2.4.1.5"), 2),
                name_column=enterprise("318.1.1.26.9.2.3.1.3"),
                # Metered-by-outlet models; the table's index is the outlet number on a
                # single unit. Others answer -1 or lack the table: no reading.
                outlet_current=Meter(enterprise("318.1.1.26.9.4.3.1.6"), 0.1),
                outlet_power=Meter(enterprise("318.1.1.26.9.4.3.1.7")),
                outlet_energy=Meter(enterprise("318.1.1.26.9.4.3.1.11"), 0.1),
                unit_power=Meter(enterprise("318.1.1.26.4.3.1.5.1"), 10.0),
                unit_energy=Meter(enterprise("318.1.1.26.4.3.1.9.1"), 0.1),
            ),
            SnmpProfile(
                key="cyberpower",
                title="CyberPower ePDU",
                enterprise=CYBERPOWER,
                state_column=enterprise("3808.1.1.3.3.5.1.1.4"),
                states=_states(on=1, off=2),
                on=Command(enterprise("3808.1.1.3.3.3.1.1.4"), 1),
                off=Command(enterprise("3808.1.1.3.3.3.1.1.4"), 2),
                name_column=enterprise("3808.1.1.3.3.5.1.1.2"),
                model=enterprise("3808.1.1.3.1.5.0"),
                serial=enterprise("3808.1.1.3.1.6.0"),
            ),
            SnmpProfile(
                key="raritan_pdu2",
                title="Raritan PX2/PX3 (PDU2-MIB)",
                enterprise=RARITAN,
                state_column=enterprise("13742.6.4.1.2.1.3.1"),
                states=_states(on=7, off=8),
                on=Command(enterprise("13742.6.4.1.2.1.2.1"), 1),
                off=Command(enterprise("13742.6.4.1.2.1.2.1"), 0),
                name_column=enterprise("13742.6.3.5.3.1.3.1"),
                model=enterprise("13742.6.3.2.1.1.3.1"),
                serial=enterprise("13742.6.3.2.1.1.4.1"),
            ),
            SnmpProfile(
                key="eaton_epdu",
                title="Eaton ePDU",
                enterprise=EATON,
                state_column=enterprise("534.6.6.7.6.6.1.2.0"),
                # 2 pending off, 3 pending on: not yet the target state.
                states=_states(on=1, off=0),
                # The value is a delay in seconds: 0 switches now.
                on=Command(_EATON_ON, 0),
                off=Command(_EATON_OFF, 0),
                name_column=enterprise("534.6.6.7.6.1.1.3.0"),
            ),
            SnmpProfile(
                key="tripplite",
                title="Tripp Lite PDU",
                enterprise=TRIPP_LITE,
                state_column=enterprise("850.10.2.3.5.1.2.1"),
                states=_states(on=2, off=1),
                on=Command(enterprise("850.10.2.3.5.1.4.1"), 2),
                off=Command(enterprise("850.10.2.3.5.1.4.1"), 1),
            ),
        )
    }
)

# The choices a user has: a profile key, or "automatic".
SNMP_PROFILES: list[str] = [AUTOMATIC, *PROFILES]

# APC units answer several MIBs (a Rack PDU 2G also has the older tables): the newest wins.
_PREFERENCE = ("apc_rpdu2", "apc_rpdu", "apc_masterswitch")


def candidates(sys_object_id: Oid) -> list[SnmpProfile]:
    """The profiles of the vendor whose enterprise number starts `sys_object_id`, best first."""
    if sys_object_id[: len(ENTERPRISES)] != ENTERPRISES or len(sys_object_id) <= len(
        ENTERPRISES
    ):
        return []
    number = sys_object_id[len(ENTERPRISES)]
    found = [profile for profile in PROFILES.values() if profile.enterprise == number]
    return sorted(
        found,
        key=lambda p: _PREFERENCE.index(p.key) if p.key in _PREFERENCE else 0,
    )
