"""Sensors: a resource's state and holder count; the lab's totals."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import LabpowerConfigEntry, LabRuntime
from .core.model import ResourceState
from .entity import LabEntity, ResourceEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ResourceSensorDescription(SensorEntityDescription):
    """A sensor of one resource."""

    value_fn: Callable[[LabRuntime, str], str | int]
    reason_fn: Callable[[LabRuntime, str], str | None] = lambda runtime, name: None


@dataclass(frozen=True, kw_only=True)
class LabSensorDescription(SensorEntityDescription):
    """A sensor of the whole lab."""

    value_fn: Callable[[LabRuntime], int]


RESOURCE_SENSORS = (
    ResourceSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in ResourceState],
        value_fn=lambda runtime, name: runtime.lab.state(name).value,
        reason_fn=lambda runtime, name: runtime.lab.reconciler(name).reason,
    ),
    ResourceSensorDescription(
        key="holders",
        translation_key="holders",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda runtime, name: runtime.lab.ledger.holder_count(name),
    ),
)

LAB_SENSORS = (
    LabSensorDescription(
        key="resources_on",
        translation_key="resources_on",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=LabRuntime.resources_on,
    ),
    LabSensorDescription(
        key="holders_total",
        translation_key="holders_total",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=LabRuntime.holders_total,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """State and Holders per resource; totals for the lab."""
    runtime = entry.runtime_data
    async_add_entities(LabSensor(runtime, description) for description in LAB_SENSORS)
    for name in runtime.lab.names:
        async_add_entities(
            [
                ResourceSensor(runtime, name, description)
                for description in RESOURCE_SENSORS
            ],
            config_subentry_id=runtime.subentry_of[name],
        )


class ResourceSensor(ResourceEntity, SensorEntity):
    """A resource's state (with the fault reason) or holder count."""

    entity_description: ResourceSensorDescription

    @override
    def shown(self) -> Hashable:
        return (self.native_value, self.extra_state_attributes)

    @property
    @override
    def native_value(self) -> str | int:
        """The value."""
        return self.entity_description.value_fn(self.runtime, self.resource)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, str] | None:
        """Why a resource is in fault (or waits), where there is a reason."""
        reason = self.entity_description.reason_fn(self.runtime, self.resource)
        return None if reason is None else {"reason": reason}


class LabSensor(LabEntity, SensorEntity):
    """A lab total."""

    entity_description: LabSensorDescription

    @override
    def shown(self) -> int:
        return self.native_value

    @property
    @override
    def native_value(self) -> int:
        """The total."""
        return self.entity_description.value_fn(self.runtime)
