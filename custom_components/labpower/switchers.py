"""Switchers and checkers made of Home Assistant entities (Tasmota, Shelly, GPIO relays...)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from homeassistant.const import SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceNotFound

from .core.model import PowerState
from .core.switching import (
    ConfigurationSwitchError,
    ForeignSwitchError,
    SwitcherCapabilities,
    TransientSwitchError,
)

ENTITY_MISSING = "entity_missing"

_ENTITY_CAPABILITIES = SwitcherCapabilities(can_read_state=True, can_cycle=True)


def _entity_state(hass: HomeAssistant, entity_id: str) -> PowerState:
    state = hass.states.get(entity_id)
    if state is None:
        raise ConfigurationSwitchError(
            f"{entity_id} does not exist", issue=ENTITY_MISSING
        )
    if state.state == STATE_ON:
        return PowerState.ON
    if state.state == STATE_OFF:
        return PowerState.OFF
    # unavailable, unknown or anything else: never read as off
    return PowerState.UNKNOWN


async def _turn(hass: HomeAssistant, entity_id: str, service: str) -> None:
    if hass.states.get(entity_id) is None:
        raise ConfigurationSwitchError(
            f"{entity_id} does not exist", issue=ENTITY_MISSING
        )
    try:
        await hass.services.async_call(
            entity_id.partition(".")[0],
            service,
            {"entity_id": entity_id},
            blocking=True,
        )
    except ServiceNotFound as err:
        raise ConfigurationSwitchError(str(err)) from err
    except HomeAssistantError as err:
        raise TransientSwitchError(f"{entity_id}: {err}") from err


class EntitySwitcher:
    """A feed switched by an HA entity that turns on and off; its state is the entity's."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        """Switch through `entity_id` (switch, light, input_boolean, fan)."""
        self._hass = hass
        self.entity_id = entity_id

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """Readable, absolute on/off."""
        return _ENTITY_CAPABILITIES

    @property
    def description(self) -> str:
        """The entity id."""
        return self.entity_id

    @property
    def entities(self) -> tuple[str, ...]:
        """Entities whose changes concern this switcher."""
        return (self.entity_id,)

    async def read_state(self) -> PowerState:
        """The entity's state; unavailable is unknown."""
        return _entity_state(self._hass, self.entity_id)

    async def turn_on(self) -> None:
        """Turn the entity on."""
        await self._switch(SERVICE_TURN_ON, PowerState.ON)

    async def turn_off(self, *, graceful: bool) -> None:
        """Turn the entity off (an entity has no graceful off)."""
        await self._switch(SERVICE_TURN_OFF, PowerState.OFF)

    async def _switch(self, service: str, target: PowerState) -> None:
        """Call the service; ForeignSwitchError if something switched it back at once.

        An automation triggered by the change may undo it before the call returns,
        so reading back would find it as it was, as if the command had been lost. The
        entity's own record tells: it changed (twice) and is back where it was.
        """
        before = self._hass.states.get(self.entity_id)
        await _turn(self._hass, self.entity_id, service)
        after = self._hass.states.get(self.entity_id)
        if (
            before is not None
            and after is not None
            and after.state == before.state
            and after.state in (STATE_ON, STATE_OFF)
            and after.last_changed > before.last_changed
        ):
            raise ForeignSwitchError(self.entity_id, target)

    async def reset(self) -> None:
        """Not supported (can_reset is False)."""
        raise NotImplementedError


class ButtonSwitcher:
    """An ATX front panel pressed through a relay; power state from the power LED."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        relay_entity: str,
        led_entity: str,
        reset_entity: str | None,
        short_press: float,
        long_press: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Press `relay_entity`; read `led_entity` (a binary_sensor)."""
        self._hass = hass
        self.relay_entity = relay_entity
        self.led_entity = led_entity
        self.reset_entity = reset_entity
        self.short_press = short_press
        self.long_press = long_press
        self._sleep = sleep
        self._capabilities = SwitcherCapabilities(
            can_read_state=True,
            is_toggle=True,
            can_cycle=True,
            can_reset=reset_entity is not None,
            can_shutdown_gracefully=True,
        )

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """A toggle; graceful off is a short press; reset if a reset relay exists."""
        return self._capabilities

    @property
    def description(self) -> str:
        """The relay and the LED."""
        return f"{self.relay_entity} (LED {self.led_entity})"

    @property
    def entities(self) -> tuple[str, ...]:
        """Entities whose changes concern this switcher."""
        extra = (self.reset_entity,) if self.reset_entity else ()
        return (self.relay_entity, self.led_entity, *extra)

    async def read_state(self) -> PowerState:
        """The power LED's state; the relay must exist too."""
        if self._hass.states.get(self.relay_entity) is None:
            raise ConfigurationSwitchError(
                f"{self.relay_entity} does not exist", issue=ENTITY_MISSING
            )
        return _entity_state(self._hass, self.led_entity)

    async def _press(self, entity_id: str, seconds: float) -> None:
        await _turn(self._hass, entity_id, SERVICE_TURN_ON)
        try:
            await self._sleep(seconds)
        finally:
            await _turn(self._hass, entity_id, SERVICE_TURN_OFF)

    async def turn_on(self) -> None:
        """A short press."""
        await self._press(self.relay_entity, self.short_press)

    async def turn_off(self, *, graceful: bool) -> None:
        """A short press asks the OS to shut down; a long press forces power off."""
        await self._press(
            self.relay_entity, self.short_press if graceful else self.long_press
        )

    async def reset(self) -> None:
        """A short press on the reset relay."""
        assert self.reset_entity is not None
        await self._press(self.reset_entity, self.short_press)


class EntityChecker:
    """Available while a binary_sensor is on."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        """Follow `entity_id`."""
        self._hass = hass
        self.entity_id = entity_id

    @property
    def description(self) -> str:
        """The entity id."""
        return self.entity_id

    @property
    def entities(self) -> tuple[str, ...]:
        """Entities whose changes concern this checker."""
        return (self.entity_id,)

    async def is_available(self) -> bool | None:
        """On is reachable, off is not, anything else cannot tell."""
        state = _entity_state(self._hass, self.entity_id)
        return None if state is PowerState.UNKNOWN else state is PowerState.ON
