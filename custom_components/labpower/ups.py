"""The UPS policy: what the lab does when a UPS feeding it runs on battery or runs low.

A UPS is an HA entity (the Network UPS Tools integration's status sensor) named on the PDU
units it feeds. Its state is read as NUT status flags ("OL", "OB DISCHRG", "OB LB") or as
the NUT integration's translated status text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers.event import async_track_state_change_event

from .const import (
    CONF_NOTIFY_ON_BATTERY,
    CONF_REFUSE_ON_BATTERY,
    CONF_SHED_ON_BATTERY,
    CONF_SHUTDOWN_ON_LOW_BATTERY,
    EVENT_UPS_POLICY,
    LOGGER,
)
from .core.lab import Lab
from .schema import LAB_OPTION_DEFAULTS


class UpsLevel(IntEnum):
    """How a UPS is doing, worst last."""

    UNKNOWN = 0
    ONLINE = 1
    ON_BATTERY = 2
    LOW_BATTERY = 3


def ups_level(state: State | None) -> UpsLevel:
    """Read a NUT status sensor: flags (OL, OB, LB, FSD) or the translated text.

    Low battery is NUT's "critical": on battery and low battery, or forced shutdown
    (upsmon(8)). A UPS back on line whose battery still recharges reports "OL CHRG LB":
    online, not critical.
    """
    if state is None:
        return UpsLevel.UNKNOWN
    value = state.state.casefold()
    flags = set(value.replace(",", " ").split())
    on_battery = "ob" in flags or "on battery" in value
    if "fsd" in flags or "forced shutdown" in value:
        return UpsLevel.LOW_BATTERY
    if on_battery and ("lb" in flags or "low battery" in value):
        return UpsLevel.LOW_BATTERY
    if on_battery:
        return UpsLevel.ON_BATTERY
    if "ol" in flags or "online" in value or "on line" in value:
        return UpsLevel.ONLINE
    return UpsLevel.UNKNOWN


class UpsPolicy:
    """Applies the lab's UPS policy once per change of the worst UPS level."""

    def __init__(
        self,
        hass: HomeAssistant,
        lab: Lab,
        ups_entities: Iterable[str],
        settings: Mapping[str, Any],
    ) -> None:
        """Watch these UPS entities with these policy settings (Lab options)."""
        self.hass = hass
        self.lab = lab
        self.entities = sorted(set(ups_entities))
        self.settings = {**LAB_OPTION_DEFAULTS, **settings}
        self.level = UpsLevel.UNKNOWN
        self._unsubscribe: CALLBACK_TYPE | None = None

    def start(self) -> None:
        """Apply the policy to the current states, then follow changes."""
        if not self.entities:
            return
        self._unsubscribe = async_track_state_change_event(
            self.hass, self.entities, self._changed
        )
        self._apply()

    def stop(self) -> None:
        """Stop following (a refusal in force ends with the lab)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def level_of(self, entity_id: str) -> UpsLevel:
        """One UPS's level now."""
        return ups_level(self.hass.states.get(entity_id))

    @callback
    def _changed(self, _event: Event[EventStateChangedData]) -> None:
        self._apply()

    def _apply(self) -> None:
        worst = max(
            ((self.level_of(entity), entity) for entity in self.entities),
            default=(UpsLevel.UNKNOWN, ""),
        )
        level, entity = worst
        if level is UpsLevel.UNKNOWN:
            return  # NUT unavailable (often so in an outage): keep what was in force
        previous, self.level = self.level, level
        if level == previous:
            return
        cause = f"UPS {entity} {level.name.lower().replace('_', ' ')}"
        on_battery = level >= UpsLevel.ON_BATTERY
        was_on_battery = previous >= UpsLevel.ON_BATTERY
        if self.settings[CONF_REFUSE_ON_BATTERY]:
            self.lab.refuse_acquire(cause if on_battery else None)
            if on_battery != was_on_battery:
                self._step("refuse_acquire" if on_battery else "accept_acquire", cause)
        if not on_battery:
            self.lab.shed_idle(None)  # off delays apply again
            return
        # Going from on battery to low battery adds the low-battery step only: the
        # on-battery steps were taken (and told) when the UPS went on battery.
        if not was_on_battery:
            self._on_battery(cause)
        if (
            level is UpsLevel.LOW_BATTERY
            and self.settings[CONF_SHUTDOWN_ON_LOW_BATTERY]
        ):
            held = [name for name in self.lab.names if self.lab.ledger.tokens(name)]
            for name in self.lab.shutdown_order(held):
                self.lab.force_off(name, cause)
            # What they depend on follows them at once, not after its off delay.
            self.lab.shed_idle(cause)
            self._step("shutdown_held", cause, resources=held)

    def _on_battery(self, cause: str) -> None:
        """The steps taken once when the lab's power goes on battery."""
        if self.settings[CONF_NOTIFY_ON_BATTERY]:
            holders = sorted(
                {
                    token.holder
                    for name in self.lab.names
                    for token in self.lab.ledger.tokens(name)
                }
            )
            self._step("on_battery", cause, holders=holders)
        if self.settings[CONF_SHED_ON_BATTERY]:
            shed = self.lab.shed_idle(cause)
            self._step("shed_idle", cause, resources=shed)

    def _step(self, step: str, cause: str, **details: Any) -> None:
        """Every step is logged and fired (the logbook shows the event) with its cause."""
        LOGGER.warning("UPS policy: %s (%s) %s", step, cause, details or "")
        self.hass.bus.async_fire(
            EVENT_UPS_POLICY, {"step": step, "cause": cause, **details}
        )
