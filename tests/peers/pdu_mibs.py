"""Where each PDU vendor's MIB keeps its outlets, and what a write there does: the fakes' facts.

Transcribed from the vendors' MIB files (and, for the Tripp Lite PowerAlert 12.04 tree that no
published MIB describes, from fence-agents' fence_apc_snmp), never from the driver. The snmpd
simulator (bin/snmp-pdu-sim) and the recorded walks served by snmpsim (snmpsim.py) both act
on a SET by these rules. OIDs are written below .1.3.6.1.4.1; a column that names a table's
first index (Raritan's pduId, Tripp Lite's tlpDeviceIndex) has it at its end, so N, the last
component, is always the outlet's row.

- APC PowerNet-MIB: sPDUOutletCtl `318.1.1.4.4.2.1.3.N` (read and written: 1 on, 2 off,
  3 reboot, 4 unknown), sPDUOutletCtlName `.4`; rPDUOutletStatusOutletState
  `318.1.1.12.3.5.1.1.4.N` (1 on, 2 off), rPDUOutletControlOutletCommand `318.1.1.12.3.3.1.1.4.N`;
  rPDU2OutletSwitchedStatusEntry `318.1.1.26.9.2.3.1` (2 Module, 3 Name, 4 Number, 5 State
  read **1 off, 2 on**) and rPDU2OutletSwitchedControlCommand `318.1.1.26.9.2.4.1.5.N`
  (1 immediateOn, 2 immediateOff, 3 immediateReboot). The rPDU2 index runs across linked
  units: Module and Number tell which unit and which of its outlets. Both rPDU control
  columns read the outlet state in command terms (1 on, 2 off).
- CyberPower CPS-MIB: ePDUOutletStatusOutletState `3808.1.1.3.3.5.1.1.4.N` (1 on, 2 off),
  ePDUOutletControlOutletCommand `3808.1.1.3.3.3.1.1.4.N`; ePDU2 `{ hardware 6 }`:
  ePDU2OutletSwitchedStatusEntry `3808.1.1.6.6.1.4.1` (2 ModuleIndex, 3 Number, 4 Name,
  5 State 1 on, 2 off), ePDU2OutletSwitchedControlCommand `3808.1.1.6.6.1.5.1.5.N`
  (1 immediateOn, 2 immediateOff, 3 immediateReboot), its index across daisy-chained
  units. Both control columns read the outlet state (1 on, 2 off).
- Raritan PDU2-MIB (PX2/PX3, sysObjectID 13742.6): outletSwitchingState
  `13742.6.4.1.2.1.3.1.N` (7 on, 8 off), switchingOperation `13742.6.4.1.2.1.2.1.N`
  (0 off, 1 on, 2 cycle). PDU-MIB (PX, sysObjectID 13742.4): outletOperationalState
  `13742.4.1.2.2.1.3.N`, read and written (-1 error, 0 off, 1 on, 2 cycling), outletLabel `.2`.
- Eaton EATON-EPDU-MIB: outletControlStatus `534.6.6.7.6.6.1.2.0.N` (0 off, 1 on, 2 pending
  off, 3 pending on); outletControlOffCmd `.3.0.N` / OnCmd `.4.0.N` take a delay in seconds
  (0 now, -1 cancel) and read -1 when nothing is pending.
- Tripp Lite TRIPPLITE-PRODUCTS (PowerAlert >= 12.07, LX cards): tlpPduOutletEntry
  `850.1.1.3.2.3.3.1.1` and tlpAtsOutletEntry `850.1.1.3.4.3.3.1.1`, indexed by
  (tlpDeviceIndex, outlet): 2 Name, 4 State (0 unknown, 1 off, 2 on), 6 Command (0 idle,
  1 turnOff, 2 turnOn, 3 cycle; always reads 0). PowerAlert 12.04 (fence-agents):
  `850.10.2.3.5.1.2.1.N` state, `850.10.2.3.5.1.4.1.N` command (2 on, 1 off),
  `850.10.2.3.5.1.5.1.N` name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# A control object's value after a write: the written value (None), a constant (Tripp
# Lite's command reads 0), or "state": the outlet's state in the command's terms.
READS_STATE = "state"


@dataclass(frozen=True)
class Control:
    """A column whose write switches the outlet (OIDs below .1.3.6.1.4.1)."""

    column: str
    effects: Mapping[int, str]  # written value -> "on" / "off" (Eaton: see `delay`)
    reads: str | int | None = None
    delay: str | None = (
        None  # Eaton: the value is a delay, this command switches "on"/"off"
    )
    idle: int | None = None  # what it reads before any write, where constant


@dataclass(frozen=True)
class Vendor:
    """Where a vendor's unit keeps its outlets (OIDs below .1.3.6.1.4.1)."""

    enterprise: int
    sys_object_id: str
    status: str
    states: Mapping[str, int]  # "on" / "off" -> what the status column reads
    controls: tuple[Control, ...]
    names: str | None = None
    modules: str | None = None  # the unit of a row, where the index spans linked units
    numbers: str | None = None  # the outlet's number on its unit

    @property
    def on(self) -> int:
        """What the status column reads for an outlet that is on."""
        return self.states["on"]

    @property
    def off(self) -> int:
        """What the status column reads for an outlet that is off."""
        return self.states["off"]

    def control_value(self, control: Control, state: str) -> int:
        """What `control` reads while the outlet is in `state` ("on" / "off")."""
        if control.reads == READS_STATE:
            return next(v for v, effect in control.effects.items() if effect == state)
        return control.idle if control.idle is not None else 0


_SWITCHED = {1: "on", 2: "off", 3: "on"}  # immediateOn, immediateOff, immediateReboot
_ON_OFF = {"on": 1, "off": 2}
_TLP_COMMAND = {1: "off", 2: "on", 3: "on"}  # turnOff, turnOn, cycle (ends on)


def _tripp_lite(entry: str, sys_object_id: str = "850.1.1.1") -> Vendor:
    return Vendor(
        850, sys_object_id, f"{entry}.4.1", {"on": 2, "off": 1},
        (Control(f"{entry}.6.1", _TLP_COMMAND, reads=0),), names=f"{entry}.2.1",
    )  # fmt: skip


VENDORS: Mapping[str, Vendor] = {
    "apc_rpdu2": Vendor(
        318, "318.1.3.4.5", "318.1.1.26.9.2.3.1.5", {"on": 2, "off": 1},
        (Control("318.1.1.26.9.2.4.1.5", _SWITCHED, reads=READS_STATE),),
        names="318.1.1.26.9.2.3.1.3", modules="318.1.1.26.9.2.3.1.2",
        numbers="318.1.1.26.9.2.3.1.4",
    ),
    "apc_rpdu": Vendor(
        318, "318.1.3.4.5", "318.1.1.12.3.5.1.1.4", _ON_OFF,
        (Control("318.1.1.12.3.3.1.1.4", _SWITCHED, reads=READS_STATE),),
        names="318.1.1.12.3.5.1.1.2",
    ),
    "apc_masterswitch": Vendor(
        318, "318.1.3.4.5", "318.1.1.4.4.2.1.3", _ON_OFF,
        (Control("318.1.1.4.4.2.1.3", _SWITCHED),), names="318.1.1.4.4.2.1.4",
    ),
    "cyberpower_epdu2": Vendor(
        3808, "3808.1.1.6", "3808.1.1.6.6.1.4.1.5", _ON_OFF,
        (Control("3808.1.1.6.6.1.5.1.5", _SWITCHED, reads=READS_STATE),),
        names="3808.1.1.6.6.1.4.1.4", modules="3808.1.1.6.6.1.4.1.2",
        numbers="3808.1.1.6.6.1.4.1.3",
    ),
    "cyberpower": Vendor(
        3808, "3808.1.1.3", "3808.1.1.3.3.5.1.1.4", _ON_OFF,
        (Control("3808.1.1.3.3.3.1.1.4", _SWITCHED, reads=READS_STATE),),
        names="3808.1.1.3.3.5.1.1.2",
    ),
    "raritan_pdu2": Vendor(
        13742, "13742.6", "13742.6.4.1.2.1.3.1", {"on": 7, "off": 8},
        (Control("13742.6.4.1.2.1.2.1", {0: "off", 1: "on", 2: "on"}),),
        names="13742.6.3.5.3.1.3.1",
    ),
    "raritan_px1": Vendor(
        13742, "13742.4", "13742.4.1.2.2.1.3", {"on": 1, "off": 0},
        (Control("13742.4.1.2.2.1.3", {0: "off", 1: "on", 2: "on"}),),
        names="13742.4.1.2.2.1.2",
    ),
    "eaton_epdu": Vendor(
        534, "534.6.6.7", "534.6.6.7.6.6.1.2.0", {"on": 1, "off": 0},
        (
            Control("534.6.6.7.6.6.1.3.0", {}, delay="off", idle=-1),
            Control("534.6.6.7.6.6.1.4.0", {}, delay="on", idle=-1),
        ),
        names="534.6.6.7.6.1.1.3.0",
    ),
    "tripplite": _tripp_lite("850.1.1.3.2.3.3.1.1"),
    "tripplite_ats": _tripp_lite("850.1.1.3.4.3.3.1.1"),
    "tripplite_legacy": Vendor(
        850, "850.1", "850.10.2.3.5.1.2.1", {"on": 2, "off": 1},
        (Control("850.10.2.3.5.1.4.1", {1: "off", 2: "on"}),),
        names="850.10.2.3.5.1.5.1",
    ),
}  # fmt: skip

# Eaton's delayed commands leave the outlet pending.
EATON_PENDING = {"off": 2, "on": 3}


@dataclass(frozen=True)
class Written:
    """What a SET of a control object does: the objects it changes, or the refusal."""

    changes: dict[str, int] = field(default_factory=dict)  # column.N -> new value
    error: str | None = None  # snmpd's pass_persist error word


def control_of(column: str) -> tuple[Vendor, Control] | None:
    """The vendor and control whose column this is."""
    for vendor in VENDORS.values():
        for control in vendor.controls:
            if control.column == column:
                return vendor, control
    return None


def write(vendor: Vendor, control: Control, outlet: str, written: int) -> Written:
    """The objects a write of `written` to `control`.`outlet` changes (OIDs below 1.3.6.1.4.1)."""
    status = f"{vendor.status}.{outlet}"
    name = f"{control.column}.{outlet}"
    if control.delay is not None:
        if written == -1:
            return Written({name: -1})  # cancel: nothing changes
        if written < -1:
            return Written(error="wrong-value")
        now = vendor.states[control.delay] if written == 0 else None
        value = now if now is not None else EATON_PENDING[control.delay]
        return Written({status: value, name: -1 if written == 0 else written})
    state = control.effects.get(written)
    if state is None:
        return Written(error="wrong-value")
    changes = {status: vendor.states[state]}
    if name != status:
        changes[name] = (
            written
            if control.reads is None
            else vendor.control_value(control, state)
            if control.reads == READS_STATE
            else int(control.reads)
        )
    return Written(changes)
