"""Energy accounting: used, avoided against an always-on baseline, and hours on; and money.

Pure and clock-driven. Each resource's counter is advanced ("ticked") with what is known at
that moment: whether it is powered, and a meter reading where one exists. Time whose power
state is unknown (including while Home Assistant was down) is never counted, so a restart
neither jumps nor counts twice.

Money: the energy a tick adds (used and avoided) is priced at the price the tick is given
(currency per kWh), so a changing price (a tariff, a price entity) prices each interval at
the price known at its end; energy counted while no price is known costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SECONDS_PER_HOUR = 3600.0


class MeterKind(StrEnum):
    """What a linked meter reports."""

    ENERGY = "energy"  # a cumulative counter in kWh
    POWER = "power"  # an instantaneous draw in W


@dataclass(slots=True)
class EnergyCounter:
    """One resource's totals and what the next tick needs."""

    energy_kwh: float = 0.0
    avoided_kwh: float = 0.0
    hours_on: float = 0.0
    cost: float = 0.0  # what the energy used cost, in the price's currency
    cost_avoided: float = 0.0  # what the energy avoided would have cost
    last_tick: float | None = None
    last_powered: bool | None = None
    last_reading: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What is known about a resource at a tick."""

    powered: bool | None  # None: the power state is unknown
    nominal_w: float | None = None
    meter: MeterKind | None = None
    value: float | None = None  # the meter's reading (kWh or W), None while unavailable
    price: float | None = None  # currency per kWh, None: not known


class EnergyAccountant:
    """Counters of every resource."""

    def __init__(self, clock: Callable[[], float]) -> None:
        """Start with no counters; `clock` returns epoch seconds."""
        self._clock = clock
        self.counters: dict[str, EnergyCounter] = {}
        # The sum of every counter, kept up to date by tick (read on every change).
        self.total = EnergyCounter()

    def counter(self, name: str) -> EnergyCounter:
        """A resource's counter (created empty)."""
        return self.counters.setdefault(name, EnergyCounter())

    def tick(self, name: str, reading: Reading) -> EnergyCounter:
        """Account the time since the last tick at the state seen then; remember this one."""
        counter = self.counter(name)
        before = (counter.energy_kwh, counter.avoided_kwh, counter.hours_on)
        self._account(counter, reading)
        used = counter.energy_kwh - before[0]
        avoided = counter.avoided_kwh - before[1]
        total = self.total
        total.energy_kwh += used
        total.avoided_kwh += avoided
        total.hours_on += counter.hours_on - before[2]
        if reading.price is not None and (used or avoided):
            counter.cost += used * reading.price
            counter.cost_avoided += avoided * reading.price
            total.cost += used * reading.price
            total.cost_avoided += avoided * reading.price
        return counter

    def _account(self, counter: EnergyCounter, reading: Reading) -> None:
        now = self._clock()
        last = counter.last_tick
        hours = 0.0 if last is None else max(0.0, now - last) / SECONDS_PER_HOUR
        if reading.meter is MeterKind.ENERGY:
            self._count_energy_meter(counter, reading)
        if counter.last_powered is True:
            counter.hours_on += hours
            if reading.meter is not MeterKind.ENERGY:
                counter.energy_kwh += self._draw(counter, reading) * hours / 1000
        elif counter.last_powered is False:
            counter.avoided_kwh += self._baseline(counter, reading) * hours / 1000
        if reading.meter is MeterKind.POWER:
            counter.last_reading = reading.value
        counter.last_powered = reading.powered
        counter.last_tick = None if reading.powered is None else now

    @staticmethod
    def _count_energy_meter(counter: EnergyCounter, reading: Reading) -> None:
        if reading.value is None:
            return  # unavailable: keep the last reading, count the gap when it is back
        if counter.last_reading is not None and reading.value >= counter.last_reading:
            counter.energy_kwh += reading.value - counter.last_reading
        # a first reading, or a meter that was reset: start counting from here
        counter.last_reading = reading.value

    @staticmethod
    def _draw(counter: EnergyCounter, reading: Reading) -> float:
        # Left Riemann sum: the draw measured at the start of the interval.
        if reading.meter is MeterKind.POWER and counter.last_reading is not None:
            return counter.last_reading
        return reading.nominal_w or 0.0

    @staticmethod
    def _baseline(counter: EnergyCounter, reading: Reading) -> float:
        """The always-on draw: nominal watts, else the average measured while on."""
        if reading.nominal_w:
            return reading.nominal_w
        if counter.hours_on > 0:
            return counter.energy_kwh * 1000 / counter.hours_on
        return 0.0

    @staticmethod
    def power_now(counter: EnergyCounter, reading: Reading) -> float | None:
        """The draw now in W: 0 while off; measured, else nominal, else the average on.

        None while the power state is unknown, or on without anything to go by.
        """
        if reading.powered is None:
            return None
        if not reading.powered:
            return 0.0
        if reading.meter is MeterKind.POWER and reading.value is not None:
            return reading.value
        if reading.nominal_w:
            return reading.nominal_w
        if counter.hours_on > 0:
            return counter.energy_kwh * 1000 / counter.hours_on
        return None

    def forget(self, name: str) -> None:
        """Drop a removed resource's counter."""
        counter = self.counters.pop(name, None)
        if counter is not None:
            self.total.energy_kwh -= counter.energy_kwh
            self.total.avoided_kwh -= counter.avoided_kwh
            self.total.hours_on -= counter.hours_on
            self.total.cost -= counter.cost
            self.total.cost_avoided -= counter.cost_avoided

    def to_dict(self) -> dict[str, Any]:
        """Totals for storage (the tick times are not kept: downtime is not counted)."""
        # Written out rather than dataclasses.asdict, which deep-copies field by field:
        # this runs in the event loop on every storage write.
        return {
            name: {
                "energy_kwh": counter.energy_kwh,
                "avoided_kwh": counter.avoided_kwh,
                "hours_on": counter.hours_on,
                "cost": counter.cost,
                "cost_avoided": counter.cost_avoided,
                "last_tick": None,
                "last_powered": None,
                "last_reading": counter.last_reading,
            }
            for name, counter in self.counters.items()
        }

    def load(self, data: dict[str, Any] | None) -> None:
        """Restore what to_dict wrote."""
        for name, raw in (data or {}).items():
            self.counters[name] = EnergyCounter(
                energy_kwh=float(raw["energy_kwh"]),
                avoided_kwh=float(raw["avoided_kwh"]),
                hours_on=float(raw["hours_on"]),
                # stores written before money was counted have none
                cost=float(raw.get("cost", 0.0)),
                cost_avoided=float(raw.get("cost_avoided", 0.0)),
                last_reading=raw.get("last_reading"),
            )
        counters = self.counters.values()
        self.total = EnergyCounter(
            energy_kwh=sum(c.energy_kwh for c in counters),
            avoided_kwh=sum(c.avoided_kwh for c in counters),
            hours_on=sum(c.hours_on for c in counters),
            cost=sum(c.cost for c in counters),
            cost_avoided=sum(c.cost_avoided for c in counters),
        )
