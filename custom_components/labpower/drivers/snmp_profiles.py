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
    # Where the index runs across daisy-chained units: each row's unit and its outlet
    # number on that unit, for the outlet's label ("2:1").
    module_column: Oid | None = None
    number_column: Oid | None = None
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
_RARITAN_PX1 = enterprise("13742.4.1.2.2.1.3")  # outletOperationalState: read and write
_EATON_OFF = enterprise("534.6.6.7.6.6.1.3.0")  # outletControlOffCmd.0.N
_EATON_ON = enterprise("534.6.6.7.6.6.1.4.0")  # outletControlOnCmd.0.N
# TRIPPLITE-PRODUCTS tlpPduOutletEntry / tlpAtsOutletEntry, indexed by (tlpDeviceIndex,
# outlet): the columns below name device 1, the device a PowerAlert card (LX, WEBCARDLX)
# manages. State 0 unknown, 1 off, 2 on; the command column takes 1 turnOff, 2 turnOn,
# 3 cycle, and always reads 0.
_TLP_PDU_OUTLET = "850.1.1.3.2.3.3.1.1"
_TLP_ATS_OUTLET = "850.1.1.3.4.3.3.1.1"


def _tripp_lite(key: str, title: str, entry: str) -> SnmpProfile:
    return SnmpProfile(
        key=key,
        title=title,
        enterprise=TRIPP_LITE,
        state_column=enterprise(f"{entry}.4.1"),
        states=_states(on=2, off=1),
        on=Command(enterprise(f"{entry}.6.1"), 2),
        off=Command(enterprise(f"{entry}.6.1"), 1),
        name_column=enterprise(f"{entry}.2.1"),
        model=enterprise("850.1.1.1.2.1.5.1"),  # tlpDeviceModel.1
        serial=enterprise("850.1.1.2.1.1.5.1"),  # tlpDeviceIdentSerialNum.1
        outlet_current=Meter(enterprise(f"{entry}.8.1"), 0.01),
        outlet_power=Meter(enterprise(f"{entry}.9.1")),
    )


# Within a vendor, the newest MIB first: a unit that answers several (an APC Rack PDU 2G
# also has the older tables) is read through the first one it answers.
PROFILES: Mapping[str, SnmpProfile] = MappingProxyType(
    {
        profile.key: profile
        for profile in (
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
                # The table's index runs across linked units (Network Port Sharing);
                # rPDU2OutletSwitchedStatusModule/Number say which unit and outlet.
                module_column=enterprise("318.1.1.26.9.2.3.1.2"),
                number_column=enterprise("318.1.1.26.9.2.3.1.4"),
                model=enterprise("318.1.1.26.2.1.8.1"),  # rPDU2IdentModelNumber.1
                serial=enterprise("318.1.1.26.2.1.9.1"),  # rPDU2IdentSerialNumber.1
                # Metered-by-outlet models, joined by index; others answer -1 or lack
                # the table: no reading.
                outlet_current=Meter(enterprise("318.1.1.26.9.4.3.1.6"), 0.1),
                outlet_power=Meter(enterprise("318.1.1.26.9.4.3.1.7")),
                outlet_energy=Meter(enterprise("318.1.1.26.9.4.3.1.11"), 0.1),
                unit_power=Meter(enterprise("318.1.1.26.4.3.1.5.1"), 10.0),
                unit_energy=Meter(enterprise("318.1.1.26.4.3.1.9.1"), 0.1),
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
                key="cyberpower_epdu2",
                title="CyberPower ePDU2",
                enterprise=CYBERPOWER,
                # CPS-MIB ePDU2OutletSwitchedStatusEntry { hardware 6 }: 1 on, 2 off; the
                # index runs across daisy-chained units (ModuleIndex, Number say which).
                state_column=enterprise("3808.1.1.6.6.1.4.1.5"),
                states=_states(on=1, off=2),
                # ePDU2OutletSwitchedControlCommand: 1 immediateOn, 2 immediateOff.
                on=Command(enterprise("3808.1.1.6.6.1.5.1.5"), 1),
                off=Command(enterprise("3808.1.1.6.6.1.5.1.5"), 2),
                name_column=enterprise("3808.1.1.6.6.1.4.1.4"),
                module_column=enterprise("3808.1.1.6.6.1.4.1.2"),
                number_column=enterprise("3808.1.1.6.6.1.4.1.3"),
                model=enterprise("3808.1.1.6.2.2.1.9.1"),  # ePDU2IdentModelName.1
                serial=enterprise("3808.1.1.6.2.2.1.10.1"),  # ePDU2IdentSerialNumber.1
                outlet_current=Meter(enterprise("3808.1.1.6.6.2.4.1.6"), 0.1),
                outlet_power=Meter(enterprise("3808.1.1.6.6.2.4.1.7")),
                outlet_energy=Meter(enterprise("3808.1.1.6.6.2.4.1.11"), 0.1),
                # ePDU2DeviceStatusPowerLoad.1 (W), ePDU2DeviceStatusEnergy.1 (0.1 kWh).
                unit_power=Meter(enterprise("3808.1.1.6.3.4.1.18.1")),
                unit_energy=Meter(enterprise("3808.1.1.6.3.4.1.9.1"), 0.1),
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
                key="raritan_px1",
                title="Raritan PX (PDU-MIB)",
                enterprise=RARITAN,
                # outletOperationalState: -1 error, 0 off, 1 on, 2 cycling; written
                # with 0 (off) or 1 (on).
                state_column=_RARITAN_PX1,
                states=_states(on=1, off=0),
                on=Command(_RARITAN_PX1, 1),
                off=Command(_RARITAN_PX1, 0),
                name_column=enterprise("13742.4.1.2.2.1.2"),  # outletLabel
                serial=enterprise("13742.4.1.1.2.0"),  # serialNumber
                outlet_current=Meter(enterprise("13742.4.1.2.2.1.4"), 0.001),  # mA
                outlet_power=Meter(enterprise("13742.4.1.2.2.1.7")),  # W
                outlet_energy=Meter(enterprise("13742.4.1.2.2.1.31"), 0.001),  # Wh
                unit_power=Meter(enterprise("13742.4.1.3.1.3.0")),  # unitActivePower
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
            _tripp_lite(
                "tripplite", "Tripp Lite PDU (PowerAlert >= 12.07)", _TLP_PDU_OUTLET
            ),
            _tripp_lite(
                "tripplite_ats", "Tripp Lite ATS (PowerAlert >= 12.07)", _TLP_ATS_OUTLET
            ),
            SnmpProfile(
                key="tripplite_legacy",
                title="Tripp Lite PDU (PowerAlert 12.04)",
                enterprise=TRIPP_LITE,
                # The tree fence-agents' fence_apc_snmp drives (tested on a PDUMH20HVNET
                # with PowerAlert 12.04.0055); later firmware has TRIPPLITE-PRODUCTS.
                state_column=enterprise("850.10.2.3.5.1.2.1"),
                states=_states(on=2, off=1),
                on=Command(enterprise("850.10.2.3.5.1.4.1"), 2),
                off=Command(enterprise("850.10.2.3.5.1.4.1"), 1),
                name_column=enterprise("850.10.2.3.5.1.5.1"),
            ),
        )
    }
)

# The choices a user has: a profile key, or "automatic".
SNMP_PROFILES: list[str] = [AUTOMATIC, *PROFILES]


def candidates(sys_object_id: Oid) -> list[SnmpProfile]:
    """The profiles of the vendor whose enterprise number starts `sys_object_id`, best first."""
    if sys_object_id[: len(ENTERPRISES)] != ENTERPRISES or len(sys_object_id) <= len(
        ENTERPRISES
    ):
        return []
    number = sys_object_id[len(ENTERPRISES)]
    return [profile for profile in PROFILES.values() if profile.enterprise == number]
