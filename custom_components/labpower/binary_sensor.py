"""The Available binary sensor of a resource."""

from __future__ import annotations

from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import LabpowerConfigEntry, Topic
from .core.model import ResourceState
from .entity import ResourceEntity

PARALLEL_UPDATES = 0

AVAILABLE = BinarySensorEntityDescription(
    key="available",
    translation_key="available",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One Available sensor per resource."""
    runtime = entry.runtime_data
    for name in runtime.lab.names:
        async_add_entities(
            [AvailableSensor(runtime, name, AVAILABLE)],
            config_subentry_id=runtime.subentry_of[name],
        )


class AvailableSensor(ResourceEntity, BinarySensorEntity):
    """On when the resource is available: powered and reachable."""

    topics = frozenset({Topic.STATE})

    @override
    def shown(self) -> bool:
        return self.is_on

    @property
    @override
    def is_on(self) -> bool:
        """Whether the resource is available."""
        return self.runtime.lab.state(self.resource) is ResourceState.AVAILABLE
