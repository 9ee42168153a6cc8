"""Sensors: a resource's state, holder count, energy, power and money; the lab's totals.

Avoided energy has no state class: Home Assistant keeps no long-term statistics of it, so
the Energy dashboard, whose pickers list energy statistics, never offers it as consumption
(it would count savings as use). Its money, *Cost avoided*, has statistics (per day, week,
month); *Power* (W) is a measurement the Energy dashboard's power view takes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, cast, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.energy import EnergyCounter
from .core.model import ResourceState
from .drivers.pdu import OutletStatus, UnitStatus
from .entity import (
    DelayedWrites,
    LabEntity,
    PduEntity,
    ResourceEntity,
    add_resource_entities,
    large_lab,
)
from .operations import holder_entry, queue_list
from .runtime import LabpowerConfigEntry, LabRuntime, Topic

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ResourceSensorDescription(SensorEntityDescription):
    """A sensor of one resource (in a large lab off by default: see entity.LARGE_LAB)."""

    value_fn: Callable[[LabRuntime, str], str | int | float | None]
    topic: Topic = Topic.ENERGY
    exists_fn: Callable[[LabRuntime, str], bool] = lambda runtime, name: True
    attributes_fn: Callable[[LabRuntime, str], dict[str, Any] | None] = (
        lambda runtime, name: None
    )


@dataclass(frozen=True, kw_only=True)
class LabSensorDescription(SensorEntityDescription):
    """A sensor of the whole lab."""

    value_fn: Callable[[LabRuntime], int | float | None]
    topic: Topic = Topic.ENERGY


def _reason(reason: str | None) -> dict[str, Any] | None:
    """Why a resource is in fault (or waits), where there is a reason."""
    return None if reason is None else {"reason": reason}


def holder_list(runtime: LabRuntime, name: str) -> list[dict[str, Any]]:
    """Who holds a resource, oldest first: holder, kind, since, expires.

    Entity attributes are shown to every user: token ids never go here.
    """
    return [holder_entry(token) for token in runtime.lab.ledger.tokens(name)]


def _energy_fields(key: str, *, used: bool) -> dict[str, Any]:
    """What every energy sensor has: kWh.

    Energy used is a counter the Energy dashboard accepts; energy avoided has no state
    class, so no statistics: the dashboard's consumption pickers never offer it.
    """
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.ENERGY,
        "state_class": SensorStateClass.TOTAL_INCREASING if used else None,
        "native_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
        "suggested_display_precision": 3,
    }


def _resource_energy(
    key: str, value: Callable[[EnergyCounter], float], *, used: bool = True
) -> ResourceSensorDescription:
    return ResourceSensorDescription(
        **_energy_fields(key, used=used),
        value_fn=lambda runtime, name: round(value(runtime.energy.counter(name)), 5),
    )


def _lab_energy(
    key: str, value: Callable[[EnergyCounter], float], *, used: bool = True
) -> LabSensorDescription:
    return LabSensorDescription(
        **_energy_fields(key, used=used),
        value_fn=lambda runtime: round(value(runtime.energy.totals()), 5),
    )


def _money(runtime: LabRuntime, amount: float) -> float | None:
    """An amount of money; unknown while nothing is priced and no price is known."""
    if not amount and runtime.energy.price() is None:
        return None
    return round(amount, 4)


def _money_fields(key: str) -> dict[str, Any]:
    """What every money sensor has: a total in HA's currency (MoneySensor sets the unit)."""
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.MONETARY,
        "state_class": SensorStateClass.TOTAL,  # a price may be negative
        "suggested_display_precision": 2,
    }


def _resource_money(
    key: str, value: Callable[[EnergyCounter], float]
) -> ResourceSensorDescription:
    return ResourceSensorDescription(
        **_money_fields(key),
        # a lab's totals are on; each resource's money is there for those who want it,
        # in a lab of up to LARGE_LAB resources (each registered entity of a lab of
        # thousands costs Home Assistant's registries about 1.5 KiB)
        entity_registry_enabled_default=False,
        exists_fn=lambda runtime, name: not large_lab(runtime),
        value_fn=lambda runtime, name: _money(
            runtime, value(runtime.energy.counter(name))
        ),
    )


def _lab_money(
    key: str, value: Callable[[EnergyCounter], float]
) -> LabSensorDescription:
    return LabSensorDescription(
        **_money_fields(key),
        value_fn=lambda runtime: _money(runtime, value(runtime.energy.totals())),
    )


def _power_fields(key: str) -> dict[str, Any]:
    """A draw in W: a measurement, as the Energy dashboard's power view takes it."""
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.POWER,
        "state_class": SensorStateClass.MEASUREMENT,
        "native_unit_of_measurement": UnitOfPower.WATT,
        "suggested_display_precision": 0,
    }


RESOURCE_SENSORS = (
    ResourceSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in ResourceState],
        value_fn=lambda runtime, name: runtime.lab.state(name).value,
        topic=Topic.STATE,
        attributes_fn=lambda runtime, name: _reason(
            runtime.lab.reconciler(name).reason
        ),
    ),
    ResourceSensorDescription(
        key="holders",
        translation_key="holders",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda runtime, name: runtime.lab.ledger.holder_count(name),
        topic=Topic.HOLDERS,
        attributes_fn=lambda runtime, name: {
            "tokens": holder_list(runtime, name),
            "queue": queue_list(runtime, name),
        },
    ),
    _resource_energy("energy", lambda counter: counter.energy_kwh),
    _resource_energy("energy_avoided", lambda counter: counter.avoided_kwh, used=False),
    # "power" is the Power switch's key: the sensor is "watts", named Power
    ResourceSensorDescription(
        **{**_power_fields("watts"), "translation_key": "power"},
        value_fn=lambda runtime, name: runtime.energy.power(name),
    ),
    _resource_money("cost", lambda counter: counter.cost),
    _resource_money("cost_avoided", lambda counter: counter.cost_avoided),
    ResourceSensorDescription(
        key="hours_on",
        translation_key="hours_on",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfTime.HOURS,
        suggested_display_precision=2,
        value_fn=lambda runtime, name: round(runtime.energy.counter(name).hours_on, 5),
    ),
)

POWER_DRAW = ResourceSensorDescription(
    key="power_draw",
    translation_key="power_draw",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
    value_fn=lambda runtime, name: runtime.energy.power_readings.get(name),
    exists_fn=lambda runtime, name: name in runtime.energy.power_readings,
)


@dataclass(frozen=True, kw_only=True)
class PduSensorDescription(SensorEntityDescription):
    """A measurement of a PDU unit (outlet None) or of one outlet."""

    value_fn: Callable[[OutletStatus | UnitStatus], float | None]


PDU_SENSORS = (
    PduSensorDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        value_fn=lambda status: status.current_a,
    ),
    PduSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        value_fn=lambda status: status.power_w,
    ),
    PduSensorDescription(
        key="energy",
        translation_key="energy",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        value_fn=lambda status: status.energy_kwh,
    ),
)

LAB_SENSORS = (
    LabSensorDescription(
        key="resources_on",
        translation_key="resources_on",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=LabRuntime.resources_on,
        topic=Topic.STATE,
    ),
    LabSensorDescription(
        key="holders_total",
        translation_key="holders_total",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=LabRuntime.holders_total,
        topic=Topic.COMMITTED,
    ),
    _lab_energy("energy_total", lambda counter: counter.energy_kwh),
    _lab_energy(
        "energy_avoided_total", lambda counter: counter.avoided_kwh, used=False
    ),
    LabSensorDescription(
        **_power_fields("power_total"),
        value_fn=lambda runtime: runtime.energy.total_power(),
    ),
    _lab_money("cost_total", lambda counter: counter.cost),
    _lab_money("cost_avoided_total", lambda counter: counter.cost_avoided),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """State and Holders per resource; totals for the lab."""
    runtime = entry.runtime_data
    async_add_entities(LabSensor(runtime, description) for description in LAB_SENSORS)
    add_resource_entities(
        runtime,
        async_add_entities,
        lambda name: [
            (HoldersSensor if description.key == "holders" else ResourceSensor)(
                runtime, name, description
            )
            for description in (*RESOURCE_SENSORS, POWER_DRAW)
            if description.exists_fn(runtime, name)
        ],
    )
    for unit in runtime.units.values():
        status = unit.data
        if status is None:
            continue  # unreachable at start: its measurements come with a reload
        entities: list[PduSensor] = [
            PduSensor(unit, description, runtime.lab_device_id)
            for description in PDU_SENSORS
            if description.value_fn(status) is not None
        ]
        entities.extend(
            PduSensor(unit, _outlet_description(description), runtime.lab_device_id, n)
            for n, outlet in status.outlets.items()
            for description in PDU_SENSORS
            if description.value_fn(outlet) is not None
        )
        async_add_entities(entities, config_subentry_id=unit.config_subentry_id)


def _outlet_description(description: PduSensorDescription) -> PduSensorDescription:
    return replace(description, translation_key=f"outlet_{description.key}")


class MoneySensor(SensorEntity):
    """A sensor whose money is in Home Assistant's currency (the others: their unit)."""

    @property
    @override
    def native_unit_of_measurement(self) -> str | None:
        """The currency for money, else the description's unit."""
        if self.entity_description.device_class is SensorDeviceClass.MONETARY:
            return self.hass.config.currency
        return super().native_unit_of_measurement


class ResourceSensor(ResourceEntity, MoneySensor):
    """A resource's state (with the fault reason) or holder count."""

    entity_description: ResourceSensorDescription

    def __init__(
        self, runtime: LabRuntime, resource: str, description: ResourceSensorDescription
    ) -> None:
        """Follow the description's topic."""
        super().__init__(runtime, resource, description)
        self.topics = frozenset({description.topic})

    @override
    def shown(self) -> Hashable:
        return (self.native_value, repr(self.extra_state_attributes))

    @property
    @override
    def native_value(self) -> str | int | float | None:
        """The value."""
        return self.entity_description.value_fn(self.runtime, self.resource)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The state's reason; the holders' tokens."""
        return self.entity_description.attributes_fn(self.runtime, self.resource)


class HoldersSensor(DelayedWrites, ResourceSensor):
    """A resource's holder count; its holders and queue are attributes not recorded.

    Every acquire, renew and release rewrites the holder list (new token ids and expiry
    times): recorded, each write would be a new attributes row in the database, the
    recorder's heaviest work under load, its thread holding the interpreter while the
    event loop waits. The count keeps its history and statistics; who held a machine
    when is in the logbook (the token events).

    The recorder writes a row for each state write, even when nothing it records
    changed: a new count is written at once, unless the sensor was written less than
    TOTALS_DELAY ago (a resource whose holders change many times a second is written
    once a second, with the latest); a change of the lists alone (a renewal's expiry, a
    queue's positions) within TOTALS_DELAY. The lab's Holders total and labpower.list
    show each answered request at once.
    """

    _unrecorded_attributes = frozenset({"tokens", "queue"})

    @override
    def write_now(self) -> bool:
        written = cast("tuple[Hashable, str] | None", self._shown)
        return (
            written is None or written[0] != self.native_value
        ) and not self.written_within_delay()


class LabSensor(LabEntity, MoneySensor):
    """A lab total."""

    entity_description: LabSensorDescription

    def __init__(self, runtime: LabRuntime, description: LabSensorDescription) -> None:
        """Follow the description's topic."""
        super().__init__(runtime, description)
        self.topics = frozenset({description.topic})

    @override
    def shown(self) -> int | float | None:
        return self.native_value

    @property
    @override
    def native_value(self) -> int | float | None:
        """The total."""
        return self.entity_description.value_fn(self.runtime)


class PduSensor(PduEntity, SensorEntity):
    """A measurement of a PDU unit or one of its outlets."""

    entity_description: PduSensorDescription

    @property
    @override
    def native_value(self) -> float | None:
        """The last reading."""
        status = self.coordinator.data
        if status is None:
            return None
        if self.outlet is None:
            return self.entity_description.value_fn(status)
        outlet = status.outlets.get(self.outlet)
        return None if outlet is None else self.entity_description.value_fn(outlet)
