"""The Power switch of a resource: on takes a hold for the user, off releases it."""

from __future__ import annotations

import asyncio
from typing import Any, override

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.components.switch.const import SwitchDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import PduCoordinator
from .core.model import LabError, PowerState, ResourceState, TokenKind
from .entity import PduEntity, ResourceEntity, add_resource_entities
from .helpers import labpower_errors
from .runtime import POWERED_STATES, LabpowerConfigEntry, Topic
from .users import async_caller_name

PARALLEL_UPDATES = 0
VERIFY_BACKOFF = (0.5, 1.0, 2.0)

POWER = SwitchEntityDescription(key="power", translation_key="power")
OUTLET = SwitchEntityDescription(
    key="outlet", translation_key="outlet", device_class=SwitchDeviceClass.OUTLET
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One Power switch per resource."""
    runtime = entry.runtime_data
    add_resource_entities(
        runtime, async_add_entities, lambda name: [PowerSwitch(runtime, name, POWER)]
    )
    for unit in runtime.units.values():
        async_add_entities(
            [
                OutletSwitch(unit, OUTLET, runtime.lab_device_id, outlet)
                for outlet in unit.outlets()
            ],
            config_subentry_id=unit.config_subentry_id,
        )


class PowerSwitch(ResourceEntity, SwitchEntity):
    """On while the resource is wanted, powered or on its way up."""

    topics = frozenset({Topic.STATE, Topic.HOLDERS})
    enabled_in_a_large_lab = True

    @override
    def shown(self) -> tuple[bool, ResourceState]:
        return (self.is_on, self.runtime.lab.state(self.resource))

    @property
    @override
    def is_on(self) -> bool:
        """Wanted on, or powered."""
        lab = self.runtime.lab
        state = lab.state(self.resource)
        if state is ResourceState.STOPPING:
            return lab.desired_on(self.resource)
        return state in POWERED_STATES or lab.desired_on(self.resource)

    @labpower_errors
    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Take a hold for the calling user (one is enough; on again renews it).

        The hold ends after the lab's UI hold maximum unless renewed (see reminders.py);
        with the lab's ui_hold_exclusive option it is an exclusive token.
        """
        user_id = self._context.user_id if self._context else None
        holder = await async_caller_name(self.hass, self._context)
        lab = self.runtime.lab
        if held := lab.ledger.find_hold(self.resource, user_id, holder):
            for token in held:
                lab.renew(token.id)
            await self.runtime.storage.async_committed()
            return
        tokens = lab.acquire(
            [self.resource],
            holder,
            kind=TokenKind.HOLD,
            user_id=user_id,
            limit=self.runtime.ui_hold_limit(),
            exclusive=self.runtime.ui_hold_exclusive(),
        )
        try:
            await self.runtime.storage.async_committed()
        except LabError:
            # Not on disk, not acknowledged: the hold must not keep the machine on.
            lab.release([token.id for token in tokens])
            raise

    @labpower_errors
    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Release the user's hold: an off for a power client (see Lab.power_off).

        While others still hold the resource, it stays on and the error names them.
        """
        user_id = self._context.user_id if self._context else None
        holder = await async_caller_name(self.hass, self._context)
        lab = self.runtime.lab
        holds = lab.ledger.find_hold(self.resource, user_id, holder)
        try:
            lab.power_off(
                self.resource, [token.id for token in holds], f"turned off by {holder}"
            )
        finally:
            await self.runtime.storage.async_committed()


class OutletSwitch(PduEntity, SwitchEntity):
    """An outlet of a PDU unit, switchable on its own unless it feeds a resource."""

    @property
    @override
    def is_on(self) -> bool | None:
        """On or off as last read; unknown stays unknown."""
        assert self.outlet is not None
        state = self.coordinator.outlet_state(self.outlet)
        return None if state is PowerState.UNKNOWN else state is PowerState.ON

    @property
    @override
    def available(self) -> bool:
        """Available while the unit answers and reports this outlet."""
        return super().available and self.is_on is not None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, str] | None:
        """The resource this outlet feeds."""
        assert self.outlet is not None
        resource = self.coordinator.fed.get(self.outlet)
        return None if resource is None else {"feeds": resource}

    @labpower_errors
    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch the outlet on and read it back."""
        await self._switch(on=True)

    @labpower_errors
    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch the outlet off and read it back."""
        await self._switch(on=False)

    async def _switch(self, *, on: bool) -> None:
        assert self.outlet is not None
        unit: PduCoordinator = self.coordinator
        if (resource := unit.fed.get(self.outlet)) is not None:
            # Only the resource's reconciler switches a feed: tokens decide its power.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="outlet_feeds_resource",
                translation_placeholders={
                    "outlet": self.outlet_name,
                    "resource": resource,
                },
            )
        await unit.unit.switch(self.outlet, on=on)
        target = PowerState.ON if on else PowerState.OFF
        for delay in VERIFY_BACKOFF:  # some units show a switch a moment later
            if await unit.unit.outlet_state(self.outlet) is target:
                return
            await asyncio.sleep(delay)
        if await unit.unit.outlet_state(self.outlet) is not target:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="outlet_not_switched",
                translation_placeholders={
                    "outlet": self.outlet_name,
                    "state": target.value,
                },
            )
