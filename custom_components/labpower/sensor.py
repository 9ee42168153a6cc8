"""Sensors: a resource's state and holder count; the lab's totals."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, override

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
from .entity import LabEntity, PduEntity, ResourceEntity, add_resource_entities
from .operations import holder_entry
from .runtime import LabpowerConfigEntry, LabRuntime, Topic

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ResourceSensorDescription(SensorEntityDescription):
    """A sensor of one resource: off by default, enabled on the resource's device.

    Home Assistant enables at most 10,000 entities per config entry: a lab of 5,000 gets
    its Power switches and the lab's totals; the cards follow labpower/subscribe_resources.
    """

    entity_registry_enabled_default: bool = False
    value_fn: Callable[[LabRuntime, str], str | int | float | None]
    topic: Topic = Topic.ENERGY
    exists_fn: Callable[[LabRuntime, str], bool] = lambda runtime, name: True
    attributes_fn: Callable[[LabRuntime, str], dict[str, Any] | None] = (
        lambda runtime, name: None
    )


@dataclass(frozen=True, kw_only=True)
class LabSensorDescription(SensorEntityDescription):
    """A sensor of the whole lab."""

    value_fn: Callable[[LabRuntime], int | float]
    topic: Topic = Topic.ENERGY


def _reason(reason: str | None) -> dict[str, Any] | None:
    """Why a resource is in fault (or waits), where there is a reason."""
    return None if reason is None else {"reason": reason}


def holder_list(runtime: LabRuntime, name: str) -> list[dict[str, Any]]:
    """Who holds a resource, oldest first: holder, kind, since, expires.

    Entity attributes are shown to every user: token ids never go here.
    """
    return [holder_entry(token) for token in runtime.lab.ledger.tokens(name)]


def _energy_fields(key: str) -> dict[str, Any]:
    """What every energy sensor has: kWh, a counter HA's Energy dashboard accepts."""
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.ENERGY,
        "state_class": SensorStateClass.TOTAL_INCREASING,
        "native_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
        "suggested_display_precision": 3,
    }


def _resource_energy(
    key: str, value: Callable[[EnergyCounter], float]
) -> ResourceSensorDescription:
    return ResourceSensorDescription(
        **_energy_fields(key),
        value_fn=lambda runtime, name: round(value(runtime.energy.counter(name)), 5),
    )


def _lab_energy(
    key: str, value: Callable[[EnergyCounter], float]
) -> LabSensorDescription:
    return LabSensorDescription(
        **_energy_fields(key),
        value_fn=lambda runtime: round(value(runtime.energy.totals()), 5),
    )


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
        attributes_fn=lambda runtime, name: {"tokens": holder_list(runtime, name)},
    ),
    _resource_energy("energy", lambda counter: counter.energy_kwh),
    _resource_energy("energy_avoided", lambda counter: counter.avoided_kwh),
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
    _lab_energy("energy_avoided_total", lambda counter: counter.avoided_kwh),
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
            ResourceSensor(runtime, name, description)
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


class ResourceSensor(ResourceEntity, SensorEntity):
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


class LabSensor(LabEntity, SensorEntity):
    """A lab total."""

    entity_description: LabSensorDescription

    def __init__(self, runtime: LabRuntime, description: LabSensorDescription) -> None:
        """Follow the description's topic."""
        super().__init__(runtime, description)
        self.topics = frozenset({description.topic})

    @override
    def shown(self) -> int | float:
        return self.native_value

    @property
    @override
    def native_value(self) -> int | float:
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
