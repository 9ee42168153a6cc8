"""Energy of a lab's resources: what the accountant is told, from lab states and meters.

Money: a kWh is priced at the lab's own price (its options or lab file, `energy_price`) or,
without one, at the Energy dashboard's grid import price (the first grid connection with a
fixed price or a price entity), in Home Assistant's currency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.energy.data import EnergyManager, async_get_manager
from homeassistant.const import UnitOfEnergy, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.util.unit_conversion import EnergyConverter

from .const import CONF_ENERGY_PRICE
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
        self,
        hass: HomeAssistant,
        lab: Lab,
        clock: Callable[[], float],
        settings: Mapping[str, Any],
    ) -> None:
        """Track the lab's resources; meters are added with link_meter.

        `settings`: the lab's settings (its own price), read at every tick.
        """
        self._hass = hass
        self._lab = lab
        self._settings = settings
        self._prefs: EnergyManager | None = None
        self.accountant = EnergyAccountant(clock)
        self.meter_of: dict[str, str] = {}
        self.power_readings: dict[str, float | None] = {}

    async def async_start(self) -> None:
        """Load the Energy dashboard's preferences (for its grid price)."""
        self._prefs = await async_get_manager(self._hass)

    def price(self) -> float | None:
        """A kWh's price now: the lab's own, else the Energy dashboard's grid price."""
        own = self._settings.get(CONF_ENERGY_PRICE)
        if own is not None:
            return float(own)
        if self._prefs is None or self._prefs.data is None:
            return None  # no Energy dashboard set up
        for source in self._prefs.data["energy_sources"]:
            if source["type"] == "grid":
                if (fixed := source.get("number_energy_price")) is not None:
                    return float(fixed)
                if (entity_id := source.get("entity_energy_price")) is not None:
                    return self._price_of(entity_id)
        return None

    def _price_of(self, entity_id: str) -> float | None:
        """A price entity's price per kWh (EUR/MWh, EUR/Wh... converted, as HA's does)."""
        state = self._hass.states.get(entity_id)
        if state is None:
            return None
        try:
            value = float(state.state)
        except ValueError:
            return None  # unavailable or unknown
        unit = str(state.attributes.get("unit_of_measurement", "")).partition("/")[2]
        if unit not in EnergyConverter.VALID_UNITS:
            return value  # as HA's cost sensor does: taken as per kWh
        return EnergyConverter.convert(value, UnitOfEnergy.KILO_WATT_HOUR, unit)

    def set_power_reading(self, resource: str, watts: float | None) -> None:
        """The draw a BMC reports (used where no meter entity is linked)."""
        self.power_readings[resource] = watts

    def link_meter(self, resource: str, entity_id: str) -> None:
        """Measure a resource with an energy (kWh) or power (W) sensor."""
        self.meter_of[resource] = entity_id

    def reading(self, name: str, price: float | None = None) -> Reading:
        """What is known about a resource now (and the price it is given)."""
        reconciler = self._lab.reconciler(name)
        nominal = self._lab.spec(name).power_w
        powered = _POWERED.get(reconciler.power)
        meter_id = self.meter_of.get(name)
        if meter_id is None:
            if name in self.power_readings:
                watts = self.power_readings[name]
                return Reading(powered, nominal, MeterKind.POWER, watts, price)
            return Reading(powered, nominal, price=price)
        kind, value = self._meter_value(meter_id)
        return Reading(powered, nominal, kind, value, price)

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
        return self.accountant.tick(name, self.reading(name, self.price()))

    def tick_all(self) -> None:
        """Account every resource up to now."""
        price = self.price()  # looked up once for all
        for name in self._lab.names:
            self.accountant.tick(name, self.reading(name, price))

    def power(self, name: str) -> float | None:
        """A resource's draw now in W (0 while off; None while its state is unknown)."""
        return self.accountant.power_now(self.counter(name), self.reading(name))

    def total_power(self) -> float:
        """The lab's draw now in W: what is known of every resource."""
        return sum(watts for name in self._lab.names if (watts := self.power(name)))

    def counter(self, name: str) -> EnergyCounter:
        """A resource's totals."""
        return self.accountant.counter(name)

    def totals(self) -> EnergyCounter:
        """The lab's totals (kept up to date by every tick)."""
        return self.accountant.total
