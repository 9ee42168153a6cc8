"""The Power switch of a resource: on takes a hold for the user, off releases it."""

from __future__ import annotations

from typing import Any, override

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import POWERED_STATES, LabpowerConfigEntry, Topic
from .core.model import ResourceState, TokenKind
from .entity import ResourceEntity
from .helpers import labpower_errors
from .users import async_caller_name

PARALLEL_UPDATES = 0

POWER = SwitchEntityDescription(key="power", translation_key="power")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One Power switch per resource."""
    runtime = entry.runtime_data
    for name in runtime.lab.names:
        async_add_entities(
            [PowerSwitch(runtime, name, POWER)],
            config_subentry_id=runtime.subentry_of[name],
        )


class PowerSwitch(ResourceEntity, SwitchEntity):
    """On while the resource is wanted, powered or on its way up."""

    topics = frozenset({Topic.STATE, Topic.HOLDERS})

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
        """Take a hold for the calling user (one is enough)."""
        user_id = self._context.user_id if self._context else None
        holder = await async_caller_name(self.hass, self._context)
        lab = self.runtime.lab
        if lab.ledger.find_hold(self.resource, user_id, holder):
            return
        lab.acquire([self.resource], holder, kind=TokenKind.HOLD, user_id=user_id)

    @labpower_errors
    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Release the hold this switch took for the user; refuse while others remain."""
        user_id = self._context.user_id if self._context else None
        holder = await async_caller_name(self.hass, self._context)
        lab = self.runtime.lab
        lab.release(
            token.id for token in lab.ledger.find_hold(self.resource, user_id, holder)
        )
        remaining = lab.ledger.holder_count(self.resource)
        if remaining:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="holders_remain",
                translation_placeholders={
                    "resource": self.resource,
                    "count": str(remaining),
                },
            )
