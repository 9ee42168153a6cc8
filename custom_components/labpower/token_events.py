"""Token events on Home Assistant's bus: a resource's bursts in one event per kind.

Each event is a row in the recorder's database, and each token's data a row of its own
(new data costs the recorder a lookup and an insert): a CI farm taking hundreds of
tokens a second made the recorder's batches the REST API's slowest answers (README,
Benchmarks). A resource's token changes follow throttle.Throttle: fired at once when
it fired none in the last TOTALS_DELAY, else together at the end of it, one event per
kind, acquisitions first (a token's acquire comes before its end). Each event lists its
tokens in `tokens`, in the order they changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import functools
from typing import Any

from homeassistant.core import HomeAssistant

from .const import (
    EVENT_TOKEN_ACQUIRED,
    EVENT_TOKEN_EXPIRED,
    EVENT_TOKEN_RELEASED,
    EVENT_TOKEN_REVOKED,
)
from .throttle import Throttle

# The order of a burst's events: a token's acquire before its end.
FIRE_ORDER = (
    EVENT_TOKEN_ACQUIRED,
    EVENT_TOKEN_RELEASED,
    EVENT_TOKEN_EXPIRED,
    EVENT_TOKEN_REVOKED,
)


@dataclass(slots=True)
class _Burst:
    """A resource's token changes not fired yet, and when it last fired."""

    throttle: Throttle
    tokens: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class TokenEvents:
    """Fires a lab's token events, a resource's bursts together."""

    __slots__ = ("_bursts", "_device_id_of", "_hass")

    def __init__(
        self, hass: HomeAssistant, device_id_of: Callable[[str], str | None]
    ) -> None:
        """Fire on `hass`'s bus; each event names its resource's device."""
        self._hass = hass
        self._device_id_of = device_id_of
        self._bursts: dict[str, _Burst] = {}

    def add(self, event_type: str, resource: str, token: dict[str, Any]) -> None:
        """A token changed: its event now, or with the resource's burst."""
        burst = self._bursts.get(resource)
        if burst is None:
            action = functools.partial(self._fire, resource)
            burst = self._bursts[resource] = _Burst(Throttle(self._hass, action))
        burst.tokens.setdefault(event_type, []).append(token)
        burst.throttle.request(not burst.throttle.ran_within_delay())

    def flush(self) -> None:
        """Fire every burst now (the lab stops)."""
        for burst in self._bursts.values():
            burst.throttle.flush()

    def _fire(self, resource: str) -> None:
        burst = self._bursts[resource]
        tokens, burst.tokens = burst.tokens, {}
        device_id = self._device_id_of(resource)
        for event_type in FIRE_ORDER:
            if changed := tokens.get(event_type):
                self._hass.bus.async_fire(
                    event_type,
                    {"resource": resource, "tokens": changed, "device_id": device_id},
                )
