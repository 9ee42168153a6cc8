"""Base entities: one device per resource, and a device for the lab."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import override

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PduCoordinator
from .runtime import LabRuntime, Topic
from .throttle import Throttle

# In a lab of more resources than this, each resource has its Power switch enabled by
# default and nothing else (the lab's totals are): Home Assistant enables at most 10,000
# entities per config entry, and the cards of a lab of thousands read the websocket. The
# others are one click away on the resource's device.
LARGE_LAB = 100


def large_lab(runtime: LabRuntime) -> bool:
    """Whether the lab has more than LARGE_LAB resources."""
    return len(runtime.lab.names) > LARGE_LAB


def add_resource_entities(
    runtime: LabRuntime,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_of: Callable[[str], Iterable[Entity]],
) -> None:
    """Add each resource's entities with its config subentry.

    A UI resource is a subentry of its own; the lab file's resources have none and are
    added in one call (one task and timeout for them all instead of one per resource).
    """
    from_file: list[Entity] = []
    for name in runtime.lab.names:
        subentry_id = runtime.config_subentry_id(name)
        if subentry_id is None:
            from_file.extend(entities_of(name))
        else:
            async_add_entities(entities_of(name), config_subentry_id=subentry_id)
    if from_file:
        async_add_entities(from_file)


class LabpowerEntity(Entity):
    """Pushed by the lab: written only when what it shows changed."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _resource: str | None = None
    topics: frozenset[Topic] = frozenset()

    def __init__(self, runtime: LabRuntime, description: EntityDescription) -> None:
        """Keep the runtime and the description."""
        self.runtime = runtime
        self.entity_description = description
        self._shown: Hashable = None

    def shown(self) -> Hashable:
        """What the entity shows; a change of it triggers a state write."""
        raise NotImplementedError

    async def async_added_to_hass(self) -> None:
        """Follow the lab's changes."""
        await super().async_added_to_hass()
        self._shown = self.shown()
        self.async_on_remove(
            self.runtime.async_add_listener(self._resource, self.topics, self._changed)
        )

    @callback
    def _changed(self) -> None:
        shown = self.shown()
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()


class ResourceEntity(LabpowerEntity):
    """An entity of one resource's device."""

    # Enabled by default in a large lab too (the Power switch).
    enabled_in_a_large_lab = False

    def __init__(
        self, runtime: LabRuntime, resource: str, description: EntityDescription
    ) -> None:
        """Attach to the resource's device."""
        super().__init__(runtime, description)
        self._resource = resource
        if not self.enabled_in_a_large_lab and large_lab(runtime):
            self._attr_entity_registry_enabled_default = False
        subentry_id = runtime.subentry_of[resource]
        self._attr_unique_id = f"{subentry_id}_{description.key}"
        spec = runtime.lab.spec(resource)
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry_id)},
            name=resource,
            manufacturer="labpower",
            model=", ".join(feed.description for feed in spec.feeds),
            via_device_id=runtime.lab_device_id,
        )

    @property
    def resource(self) -> str:
        """The resource's name."""
        assert self._resource is not None
        return self._resource


class DelayedWrites(LabpowerEntity):
    """An entity some of whose changes are written at most once per TOTALS_DELAY.

    A change `write_now` accepts is written at once (with whatever is pending); the
    others wait for one write at the end of the delay, however many came meanwhile
    (throttle.Throttle).
    """

    _throttle: Throttle | None = None

    def write_now(self) -> bool:
        """Whether the change just made is written at once."""
        raise NotImplementedError

    def written_within_delay(self) -> bool:
        """Whether the last write is less than TOTALS_DELAY ago."""
        return self._throttle is not None and self._throttle.ran_within_delay()

    @callback
    def _changed(self) -> None:
        if self._throttle is None:
            self._throttle = Throttle(self.hass, super()._changed)
        self._throttle.request(self.write_now())

    async def async_will_remove_from_hass(self) -> None:
        """Drop a pending write."""
        if self._throttle is not None:
            self._throttle.cancel()
        await super().async_will_remove_from_hass()


class LabEntity(DelayedWrites):
    """An entity of the lab's own device (totals).

    Totals change with every token anywhere in the lab: they are written at most once
    per TOTALS_DELAY, so a burst of CI jobs costs one state write, not one per job.
    The holder total follows the journal's commits instead (Topic.COMMITTED, already
    one per batch): once a request is answered, it shows what the request changed.
    """

    def __init__(self, runtime: LabRuntime, description: EntityDescription) -> None:
        """Attach to the lab's device."""
        super().__init__(runtime, description)
        entry = runtime.entry
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="labpower",
            model="Lab",
        )

    @override
    def write_now(self) -> bool:
        return Topic.COMMITTED in self.topics


class PduEntity(CoordinatorEntity[PduCoordinator]):
    """An entity of a PDU unit's device (the unit itself or one of its outlets)."""

    _attr_has_entity_name = True

    def __init__(
        self,
        unit: PduCoordinator,
        description: EntityDescription,
        lab_device_id: str,
        outlet: int | None = None,
    ) -> None:
        """Attach to the unit's device; `outlet` for an outlet's entity."""
        super().__init__(unit)
        self.entity_description = description
        self.outlet = outlet
        suffix = description.key if outlet is None else f"{description.key}_{outlet}"
        self._attr_unique_id = f"{unit.subentry_id}_{suffix}"
        status = unit.data
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, unit.subentry_id)},
            name=unit.name_of_unit,
            manufacturer=unit.vendor,
            model=status.model if status and status.model else None,
            serial_number=status.serial if status else None,
            via_device_id=lab_device_id,
        )
        if outlet is not None:
            self._attr_translation_placeholders = {"outlet": self.outlet_name}

    @property
    def outlet_name(self) -> str:
        """The outlet's number, with the name the unit stores for it ("3 (build-1)").

        On daisy-chained units the number is the unit's and the outlet's ("2:1").
        """
        assert self.outlet is not None
        status = self.coordinator.data
        found = status.outlets.get(self.outlet) if status else None
        number = (found.label if found else None) or str(self.outlet)
        name = (found.name or "").strip() if found else ""
        on_its_unit = number.rpartition(":")[2]  # a chained unit calls 2:1 "Outlet 1"
        if not name or name.casefold() in (
            number,
            f"outlet {number}",
            f"outlet {on_its_unit}",
        ):
            return number
        return f"{number} ({name})"
