"""Logbook entries: who caused each power change and each token change, and halts.

Each entry has labpower's icon for what it is about (as icons.json gives its entities): the
Power switch's for a power change, the Holders sensor's for a token, the State sensor's
fault for a halt. Entries without an icon show an empty glyph in the Activity panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ICON,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import (
    DOMAIN,
    EVENT_HALTED,
    EVENT_POWER_CHANGED,
    EVENT_RESUMED,
    EVENT_TOKEN_ACQUIRED,
    EVENT_TOKEN_EXPIRED,
    EVENT_TOKEN_RELEASED,
    EVENT_TOKEN_REVOKED,
    EVENT_UPS_POLICY,
)

_POWER_MESSAGES = {
    "on": "was powered on",
    "graceful_off": "was asked to shut down",
    "off": "was powered off",
    "forced_off": "was forced off after its stop timeout",
    "cycle": "was power cycled",
    "reset": "was reset",
}
_POWERED_OFF = frozenset({"graceful_off", "off", "forced_off"})
ICON_POWER = "mdi:power"
ICON_POWER_OFF = "mdi:power-off"
ICON_TOKEN = "mdi:account-multiple"
ICON_HALT = "mdi:server-remove"
ICON_RESUMED = "mdi:server"
ICON_UPS = "mdi:battery-alert-variant-outline"
# An event's message for one token, and for several (a burst)
_TOKEN_MESSAGES = {
    EVENT_TOKEN_ACQUIRED: ("was acquired by {holders}",) * 2,
    EVENT_TOKEN_RELEASED: ("was released by {holders}",) * 2,
    EVENT_TOKEN_EXPIRED: ("token of {holders} expired", "tokens of {holders} expired"),
    EVENT_TOKEN_REVOKED: (
        "token of {holders} was revoked ({cause})",
        "tokens of {holders} were revoked ({cause})",
    ),
}
NAMED_HOLDERS = 3  # a burst names this many holders, then how many more (2 or more)

_UPS_MESSAGES = {
    "refuse_acquire": "refuses new tokens ({cause})",
    "accept_acquire": "accepts new tokens again ({cause})",
    "on_battery": "told the holders {holders} ({cause})",
    "shed_idle": "powered off idle {resources} ({cause})",
    "shutdown_held": "shuts down {resources}, tokens revoked ({cause})",
}


def holder_list(holders: list[str]) -> str:
    """Holders for a sentence: "a", "a and b", "a, b, c and d", "a, b, c and 2 more"."""
    if len(holders) > NAMED_HOLDERS + 1:
        named, more = holders[:NAMED_HOLDERS], f"{len(holders) - NAMED_HOLDERS} more"
        return f"{', '.join(named)} and {more}"
    if len(holders) == 1:
        return holders[0]
    return f"{', '.join(holders[:-1])} and {holders[-1]}"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe labpower's events for the logbook."""

    @callback
    def describe_power(event: Event) -> dict[str, Any]:
        data = event.data
        message = _POWER_MESSAGES.get(data["action"], data["action"])
        return {
            LOGBOOK_ENTRY_NAME: data["resource"],
            LOGBOOK_ENTRY_MESSAGE: f"{message} ({data['cause']})",
            LOGBOOK_ENTRY_ICON: ICON_POWER_OFF
            if data["action"] in _POWERED_OFF
            else ICON_POWER,
        }

    @callback
    def describe_token(event: Event) -> dict[str, Any]:
        data = event.data
        # one event per token before bursts were fired together (older rows)
        tokens = data.get("tokens", [data])
        causes = dict.fromkeys(token["cause"] for token in tokens)
        one, several = _TOKEN_MESSAGES[str(event.event_type)]
        message = (one if len(tokens) == 1 else several).format(
            holders=holder_list([token["holder"] for token in tokens]),
            cause=", ".join(str(cause) for cause in causes),
        )
        return {
            LOGBOOK_ENTRY_NAME: data["resource"],
            LOGBOOK_ENTRY_MESSAGE: message,
            LOGBOOK_ENTRY_ICON: ICON_TOKEN,
        }

    @callback
    def describe_ups(event: Event) -> dict[str, Any]:
        data = event.data
        message = _UPS_MESSAGES.get(data["step"], data["step"])
        return {
            LOGBOOK_ENTRY_NAME: "UPS policy",
            LOGBOOK_ENTRY_ICON: ICON_UPS,
            LOGBOOK_ENTRY_MESSAGE: message.format(
                cause=data["cause"],
                holders=", ".join(data.get("holders", ())) or "nobody",
                resources=", ".join(data.get("resources", ())) or "nothing",
            ),
        }

    @callback
    def describe_halt(event: Event) -> dict[str, Any]:
        data = event.data
        if event.event_type == EVENT_HALTED:
            message = f"is no longer switched by labpower: {data['reason']}"
            icon = ICON_HALT
        else:
            message = f"is switched by labpower again ({data['cause']})"
            icon = ICON_RESUMED
        return {
            LOGBOOK_ENTRY_NAME: data["resource"],
            LOGBOOK_ENTRY_MESSAGE: message,
            LOGBOOK_ENTRY_ICON: icon,
        }

    async_describe_event(DOMAIN, EVENT_POWER_CHANGED, describe_power)
    async_describe_event(DOMAIN, EVENT_HALTED, describe_halt)
    async_describe_event(DOMAIN, EVENT_RESUMED, describe_halt)
    async_describe_event(DOMAIN, EVENT_UPS_POLICY, describe_ups)
    for event_type in _TOKEN_MESSAGES:
        async_describe_event(DOMAIN, event_type, describe_token)
