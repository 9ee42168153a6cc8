"""Energy of a lab's resources: what the accountant is told, from lab states and meters."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.const import UnitOfEnergy, UnitOfPower
from homeassistant.core import HomeAssistant

from .core.energy import EnergyAccountant, EnergyCounter, MeterKind, Reading
from .core.lab import Lab
from .core.model import PowerState

_TO_KWH = {
    UnitOfEnergy.WATT_HOUR: 0.001,
    UnitOfEnergy.KILO_WATT_HOUR: 1.0,
    UnitOfEnergy.MEGA_WATT_HOUR: 1000.0,
}
_TO_W = {UnitOfPower.WATT: 1.0, UnitOfPower.KILO_WATT: 1000.0}
_POWERED = {PowerState.ON: True, PowerState.MIXED: True, PowerState.OFF: False}


class EnergyTracker:
    """Ticks each resource's counter with its power state and its meter, if it has one."""

    def __init__(
        self, hass: HomeAssistant, lab: Lab, clock: Callable[[], float]
    ) -> None:
        """Track the lab's resources; meters are added with link_meter."""
        self._hass = hass
        self._lab = lab
        self.accountant = EnergyAccountant(clock)
        self.meter_of: dict[str, str] = {}
        self.power_readings: dict[str, float | None] = {}

    def set_power_reading(self, resource: str, watts: float | None) -> None:
        """The draw a BMC reports (used where no meter entity is linked)."""
        self.power_readings[resource] = watts

    def link_meter(self, resource: str, entity_id: str) -> None:
        """Measure a resource with an energy (kWh) or power (W) sensor."""
        self.meter_of[resource] = entity_id

    def reading(self, name: str) -> Reading:
        """What is known about a resource now."""
        reconciler = self._lab.reconciler(name)
        nominal = self._lab.spec(name).power_w
        powered = _POWERED.get(reconciler.power)
        meter_id = self.meter_of.get(name)
        if meter_id is None:
            if name in self.power_readings:
                watts = self.power_readings[name]
                return Reading(powered, nominal, MeterKind.POWER, watts)
            return Reading(powered, nominal)
        kind, value = self._meter_value(meter_id)
        return Reading(powered, nominal, kind, value)

    def _meter_value(self, entity_id: str) -> tuple[MeterKind | None, float | None]:
        state = self._hass.states.get(entity_id)
        if state is None:
            return None, None
        unit = state.attributes.get("unit_of_measurement")
        try:
            value = float(state.state)
        except ValueError:
            value = None  # unavailable or unknown
        if unit in _TO_KWH:
            return MeterKind.ENERGY, None if value is None else value * _TO_KWH[unit]
        if unit in _TO_W:
            return MeterKind.POWER, None if value is None else value * _TO_W[unit]
        return None, None

    def tick(self, name: str) -> EnergyCounter:
        """Account a resource up to now."""
        return self.accountant.tick(name, self.reading(name))

    def tick_all(self) -> None:
        """Account every resource up to now."""
        for name in self._lab.names:
            self.tick(name)

    def counter(self, name: str) -> EnergyCounter:
        """A resource's totals."""
        return self.accountant.counter(name)

    def totals(self) -> EnergyCounter:
        """The lab's totals (kept up to date by every tick)."""
        return self.accountant.total
