"""Power cycle and Reset buttons, where the resource's switcher can."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.components.button.const import ButtonDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .core.lab import Lab
from .core.reconciler import Reconciler
from .entity import ResourceEntity, add_resource_entities
from .helpers import labpower_errors
from .operations import check_cycle
from .runtime import LabpowerConfigEntry
from .users import async_caller_name, async_is_admin

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PowerButtonDescription(ButtonEntityDescription):
    """A power action button."""

    supported_fn: Callable[[Reconciler], bool]
    press_fn: Callable[[Lab, str, str], Awaitable[None]]


BUTTONS = (
    PowerButtonDescription(
        key="power_cycle",
        translation_key="power_cycle",
        device_class=ButtonDeviceClass.RESTART,
        supported_fn=lambda reconciler: reconciler.can_cycle,
        press_fn=Lab.power_cycle,
    ),
    PowerButtonDescription(
        key="reset",
        translation_key="reset",
        device_class=ButtonDeviceClass.RESTART,
        supported_fn=lambda reconciler: reconciler.can_reset,
        press_fn=Lab.reset,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The buttons each resource's switcher supports."""
    runtime = entry.runtime_data
    add_resource_entities(
        runtime,
        async_add_entities,
        lambda name: [
            PowerButton(runtime, name, description)
            for description in BUTTONS
            if description.supported_fn(runtime.lab.reconciler(name))
        ],
    )


class PowerButton(ResourceEntity, ButtonEntity):
    """Power cycle or reset a powered resource."""

    entity_description: PowerButtonDescription

    @override
    def shown(self) -> None:
        return None

    @labpower_errors
    @override
    async def async_press(self) -> None:
        """Only on a powered resource; others' tokens need an administrator."""
        user_id = self._context.user_id if self._context else None
        check_cycle(
            self.runtime,
            self.resource,
            user_id,
            admin=await async_is_admin(self.hass, self._context),
        )
        cause = await async_caller_name(self.hass, self._context)
        await self.entity_description.press_fn(
            self.runtime.lab, self.resource, f"pressed by {cause}"
        )
