"""A resource's Available sensor, and Power redundancy where PDU outlets feed it."""

from __future__ import annotations

from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event

from .chain import feed_health, ups_entities_of
from .core.model import ResourceState
from .drivers.pdu import PduOutletSwitcher
from .entity import ResourceEntity, add_resource_entities
from .runtime import LabpowerConfigEntry, Topic

PARALLEL_UPDATES = 0

AVAILABLE = BinarySensorEntityDescription(
    key="available",
    translation_key="available",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)
REDUNDANCY = BinarySensorEntityDescription(
    key="power_redundancy",
    translation_key="power_redundancy",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One Available sensor per resource."""
    runtime = entry.runtime_data

    def entities_of(name: str) -> list[BinarySensorEntity]:
        entities: list[BinarySensorEntity] = [AvailableSensor(runtime, name, AVAILABLE)]
        if any(isinstance(f, PduOutletSwitcher) for f in runtime.lab.spec(name).feeds):
            entities.append(RedundancySensor(runtime, name, REDUNDANCY))
        return entities

    add_resource_entities(runtime, async_add_entities, entities_of)


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


class RedundancySensor(ResourceEntity, BinarySensorEntity):
    """A problem when fewer feeds are healthy than configured while the resource is used.

    The attributes show each feed's chain up to the mains (psu1 -> pdu1:outlet1 -> ups).
    """

    topics = frozenset({Topic.STATE, Topic.HOLDERS})

    async def async_added_to_hass(self) -> None:
        """Also follow the units and UPSes of the feeds."""
        await super().async_added_to_hass()
        units = {
            feed.unit_name
            for feed in self.runtime.lab.spec(self.resource).feeds
            if isinstance(feed, PduOutletSwitcher)
        }
        for unit_name in units:
            if (unit := self.runtime.units.get(unit_name)) is not None:
                self.async_on_remove(unit.async_add_listener(self._changed))
        if ups := ups_entities_of(self.runtime, self.resource):
            self.async_on_remove(
                async_track_state_change_event(self.hass, ups, self._ups_changed)
            )

    @callback
    def _ups_changed(self, _event: Event[EventStateChangedData]) -> None:
        self._changed()

    @override
    def shown(self) -> tuple[bool, tuple[str, ...]]:
        """Work out the feeds' health once; the state and attributes written show it."""
        health = feed_health(self.runtime, self.resource)
        healthy = sum(feed.healthy for feed in health)
        lab = self.runtime.lab
        in_use = lab.desired_on(self.resource) or lab.state(self.resource) not in (
            ResourceState.OFF,
            ResourceState.UNKNOWN,
        )
        # A problem when fewer feeds are healthy than configured while it is used.
        self._attr_is_on = in_use and healthy < len(health)
        self._attr_extra_state_attributes = {
            "power_chain": [feed.chain for feed in health],
            "feeds": len(health),
            "healthy_feeds": healthy,
            "problems": [
                f"{feed.chain}: {feed.reason}" for feed in health if not feed.healthy
            ],
        }
        return (
            self._attr_is_on,
            tuple(map(str, self._attr_extra_state_attributes.values())),
        )
