"""At most once a second: what a burst of token changes costs Home Assistant.

Every state write and every bus event is a row in the recorder's database, and under a
CI farm's load the recorder's writes are what makes answers wait (README, Benchmarks).
One rule for the Holders sensors, the lab's totals (entity.DelayedWrites) and the token
events (token_events.py): a change runs its action at once unless the action ran less
than TOTALS_DELAY ago; then the action runs once at the end of the delay, for every
change that came meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

TOTALS_DELAY = 1.0  # seconds


class Throttle:
    """Runs an action at once, or once at the end of TOTALS_DELAY for what came meanwhile."""

    __slots__ = ("_action", "_hass", "_pending", "_ran_at")

    def __init__(self, hass: HomeAssistant, action: Callable[[], None]) -> None:
        """Run `action` (a callback) for the changes asked for."""
        self._hass = hass
        self._action = action
        self._pending: CALLBACK_TYPE | None = None
        self._ran_at = 0.0  # a timestamp

    def ran_within_delay(self) -> bool:
        """Whether the action ran less than TOTALS_DELAY ago."""
        return dt_util.utcnow().timestamp() - self._ran_at < TOTALS_DELAY

    def request(self, at_once: bool) -> None:
        """A change: run now (with whatever is pending), or once at the delay's end."""
        if at_once:
            self.cancel()
            self._run()
        elif self._pending is None:
            self._pending = async_call_later(
                self._hass, TOTALS_DELAY, self._run_delayed
            )

    def flush(self) -> None:
        """Run a pending action now (the lab stops: nothing is lost)."""
        if self._pending is not None:
            self.request(at_once=True)

    def cancel(self) -> None:
        """Drop a pending run."""
        if self._pending is not None:
            self._pending()
            self._pending = None

    @callback
    def _run_delayed(self, _now: datetime) -> None:
        self._pending = None
        self._run()

    def _run(self) -> None:
        self._ran_at = dt_util.utcnow().timestamp()
        self._action()
