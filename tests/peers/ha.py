"""Home Assistant as a test drives it: set a lab up, call an action, read a state, wait, ask."""

from __future__ import annotations

from datetime import datetime, timedelta
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import conversation
from homeassistant.core import (
    Context,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.labpower.const import DOMAIN
from custom_components.labpower.throttle import TOTALS_DELAY


async def setup_integration(
    hass: HomeAssistant, entry: MockConfigEntry
) -> MockConfigEntry:
    """Add a lab's entry and set it up (conftest's `init_integration` does it for most)."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def call(
    hass: HomeAssistant,
    service: str,
    data: dict[str, Any],
    context: Context | None = None,
) -> Any:
    """Call a labpower action and return its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, context=context
    )


def state(hass: HomeAssistant, entity_id: str) -> str:
    """An entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


async def throttled_done(hass: HomeAssistant) -> None:
    """Let what waits for the end of TOTALS_DELAY run (labpower/throttle.py)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=TOTALS_DELAY))
    await hass.async_block_till_done()


async def holders(hass: HomeAssistant, resource: str) -> str:
    """A resource's Holders count, once written.

    The sensor writes a new count at once unless it was written less than TOTALS_DELAY
    ago; then within TOTALS_DELAY: the timers due by then run first.
    """
    await throttled_done(hass)
    return state(hass, f"sensor.{resource.replace('-', '_')}_holders")


def event_tokens(events: list[Event[Any]], key: str = "holder") -> list[Any]:
    """One field of each token of these token events, in order.

    A resource's token changes within TOTALS_DELAY of its last event come in one event
    per kind (labpower/token_events.py): `throttled_done` lets them be fired.
    """
    return [token[key] for event in events for token in event.data["tokens"]]


async def advance(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let time pass for the lab."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def say(hass: HomeAssistant, text: str, context: Context | None = None) -> str:
    """What Assist answers."""
    result = await conversation.async_converse(
        hass, text, None, context or Context(), None
    )
    speech: str = result.response.speech["plain"]["speech"]
    return speech


class SwitchLog:
    """When each relay turned on or off (HA time)."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Follow every relay."""
        self.events: list[tuple[datetime, str, str]] = []
        self.real: list[tuple[float, str, str]] = []  # loop time
        hass.bus.async_listen("state_changed", self._changed)

    @callback
    def _changed(self, event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        new = event.data["new_state"]
        old = event.data["old_state"]
        if (
            entity_id.startswith("input_boolean.")
            and new is not None
            and old is not None
            and new.state != old.state
        ):
            name = entity_id.removeprefix("input_boolean.").removesuffix("_relay")
            self.events.append((dt_util.utcnow(), name, new.state))
            self.real.append((time.monotonic(), name, new.state))

    def order(self, state: str) -> list[str]:
        """The relays that turned to `state`, in order."""
        return [name for _, name, seen in self.events if seen == state]
