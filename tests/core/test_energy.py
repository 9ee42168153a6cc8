"""Energy accounting: nominal, power and energy meters, unknown time, persistence."""

from __future__ import annotations

import pytest

from custom_components.labpower.core.energy import EnergyAccountant, MeterKind, Reading

from .fakes import FakeClock

HOUR = 3600.0


@pytest.fixture
def clock() -> FakeClock:
    """A frozen clock."""
    return FakeClock()


def test_nominal_on_and_off(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(powered=True, nominal_w=100))
    clock.advance(2 * HOUR)
    # the interval is accounted at the state seen at its start: on
    counter = energy.tick("r", Reading(powered=False, nominal_w=100))
    assert counter.energy_kwh == pytest.approx(0.2)
    assert counter.hours_on == pytest.approx(2)
    clock.advance(3 * HOUR)
    counter = energy.tick("r", Reading(powered=False, nominal_w=100))
    assert counter.avoided_kwh == pytest.approx(0.3)
    assert counter.energy_kwh == pytest.approx(0.2)


def test_unknown_time_is_not_counted(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(powered=None, nominal_w=100))
    clock.advance(HOUR)
    energy.tick("r", Reading(powered=True, nominal_w=100))
    clock.advance(HOUR)
    energy.tick("r", Reading(powered=None, nominal_w=100))
    clock.advance(10 * HOUR)
    counter = energy.tick("r", Reading(powered=True, nominal_w=100))
    assert counter.energy_kwh == pytest.approx(0.1)
    assert counter.avoided_kwh == 0
    assert counter.hours_on == pytest.approx(1)


def test_power_meter_integrated(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(True, 50, MeterKind.POWER, 200))
    clock.advance(HOUR)
    energy.tick("r", Reading(True, 50, MeterKind.POWER, 400))
    clock.advance(HOUR)
    # unavailable: the interval that started with a reading still counts it
    counter = energy.tick("r", Reading(True, 50, MeterKind.POWER, None))
    assert counter.energy_kwh == pytest.approx(0.6)
    clock.advance(HOUR)
    # no reading at the start of this one: the nominal draw stands in
    counter = energy.tick("r", Reading(False, 50, MeterKind.POWER, 0))
    assert counter.energy_kwh == pytest.approx(0.65)
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(False, 50, MeterKind.POWER, 0))
    assert counter.avoided_kwh == pytest.approx(0.05)


def test_energy_meter_deltas_resets_and_gaps(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(True, None, MeterKind.ENERGY, 10.0))
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(True, None, MeterKind.ENERGY, 10.5))
    assert counter.energy_kwh == pytest.approx(0.5)
    counter = energy.tick(
        "r", Reading(True, None, MeterKind.ENERGY, None)
    )  # unavailable
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(True, None, MeterKind.ENERGY, 11.0))
    assert counter.energy_kwh == pytest.approx(1.0)  # the gap's use, once
    counter = energy.tick(
        "r", Reading(True, None, MeterKind.ENERGY, 0.2)
    )  # meter reset
    assert counter.energy_kwh == pytest.approx(1.0)
    counter = energy.tick("r", Reading(False, None, MeterKind.ENERGY, 0.3))
    assert counter.energy_kwh == pytest.approx(1.1)
    assert counter.hours_on == pytest.approx(2)
    # off: the baseline is the average draw measured while on (1.1 kWh over 2 h)
    clock.advance(2 * HOUR)
    counter = energy.tick("r", Reading(False, None, MeterKind.ENERGY, 0.3))
    assert counter.avoided_kwh == pytest.approx(1.1)


def test_persistence_does_not_count_downtime(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(True, 100))
    clock.advance(HOUR)
    energy.tick("r", Reading(True, 100))
    data = energy.to_dict()
    clock.advance(5 * HOUR)  # Home Assistant is down
    restored = EnergyAccountant(clock)
    restored.load(data)
    counter = restored.tick("r", Reading(True, 100))
    assert counter.energy_kwh == pytest.approx(0.1)
    clock.advance(HOUR)
    counter = restored.tick("r", Reading(True, 100))
    assert counter.energy_kwh == pytest.approx(0.2)
    restored.forget("r")
    assert restored.counters == {}


def test_totals_follow_every_counter(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    for name, watts in (("a", 100), ("b", 300)):
        energy.tick(name, Reading(True, watts))
    clock.advance(HOUR)
    for name, watts in (("a", 100), ("b", 300)):
        energy.tick(name, Reading(False, watts))
    clock.advance(HOUR)
    for name, watts in (("a", 100), ("b", 300)):
        energy.tick(name, Reading(False, watts))
    assert energy.total.energy_kwh == pytest.approx(0.4)
    assert energy.total.avoided_kwh == pytest.approx(0.4)
    assert energy.total.hours_on == pytest.approx(2)
    restored = EnergyAccountant(clock)
    restored.load(energy.to_dict())
    assert restored.total.energy_kwh == pytest.approx(0.4)
    restored.forget("b")
    assert restored.total.energy_kwh == pytest.approx(0.1)
    assert restored.total.hours_on == pytest.approx(1)


def test_money_at_the_price_of_each_tick(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    energy.tick("r", Reading(True, 1000, price=0.30))
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(False, 1000, price=0.30))
    assert counter.cost == pytest.approx(0.30)
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(False, 1000, price=0.50))  # a new tariff
    assert counter.cost_avoided == pytest.approx(0.50)
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(False, 1000))  # no price known: not priced
    assert counter.avoided_kwh == pytest.approx(2)
    assert counter.cost_avoided == pytest.approx(0.50)
    clock.advance(HOUR)
    counter = energy.tick("r", Reading(False, 1000, price=-0.10))  # paid to use
    assert counter.cost_avoided == pytest.approx(0.40)
    assert (energy.total.cost, energy.total.cost_avoided) == pytest.approx((0.3, 0.4))
    restored = EnergyAccountant(clock)
    restored.load(energy.to_dict())
    assert restored.counter("r").cost_avoided == pytest.approx(0.40)
    assert restored.total.cost == pytest.approx(0.30)
    restored.forget("r")
    assert (restored.total.cost, restored.total.cost_avoided) == pytest.approx((0, 0))
    # a store written before money was counted
    old = {"r": {"energy_kwh": 1.0, "avoided_kwh": 2.0, "hours_on": 3.0}}
    restored.load(old)
    assert restored.counter("r").cost == 0.0


def test_power_now(clock: FakeClock) -> None:
    energy = EnergyAccountant(clock)
    counter = energy.counter("r")
    assert energy.power_now(counter, Reading(None, 100)) is None
    assert energy.power_now(counter, Reading(False, 100)) == 0.0
    assert energy.power_now(counter, Reading(True, 100)) == 100
    measured = Reading(True, 100, MeterKind.POWER, 72.5)
    assert energy.power_now(counter, measured) == 72.5
    unavailable = Reading(True, 100, MeterKind.POWER, None)
    assert energy.power_now(counter, unavailable) == 100
    assert energy.power_now(counter, Reading(True, None, MeterKind.ENERGY, 5)) is None
    energy.tick("r", Reading(True, None, MeterKind.ENERGY, 5.0))
    clock.advance(2 * HOUR)
    counter = energy.tick("r", Reading(True, None, MeterKind.ENERGY, 5.5))
    # a kWh meter: the average draw while on
    assert energy.power_now(counter, Reading(True, None, MeterKind.ENERGY, 5.5)) == (
        pytest.approx(250)
    )
