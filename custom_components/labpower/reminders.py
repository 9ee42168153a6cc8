"""Before a token ends: the expiring event, and the reminder to the user of a UI hold.

A hold taken from the UI ends after the lab's UI hold maximum (see switch.py). Its user
is reminded `expiring_warning` before (at most half of its time): a persistent
notification, and on each of the user's phones with the Home Assistant app an
actionable notification, Keep 4 h more / Release now (the app answers with a
mobile_app_notification_action event). Every token with an expiry (leases too) fires a
labpower_token_expiring event then, for automations. With `notify_when_available`, the
user of a UI hold is also told when the resource becomes available.
"""

from __future__ import annotations

from collections.abc import Callable
import secrets
from typing import Any

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.translation import async_get_cached_translations
from homeassistant.util import dt as dt_util, slugify

from .const import (
    CONF_EXPIRING_WARNING,
    CONF_NOTIFY_AVAILABLE,
    DOMAIN,
    EVENT_TOKEN_EXPIRING,
    LOGGER,
)
from .core.events import EventKind, LabEvent
from .core.lab import Lab
from .core.model import ResourceState, TokenKind, UsageToken
from .schema import DEFAULT_EXPIRING_WARNING

MOBILE_APP = "mobile_app"
EVENT_MOBILE_ACTION = "mobile_app_notification_action"
ACTION_KEEP = "LABPOWER_KEEP_"
ACTION_RELEASE = "LABPOWER_RELEASE_"
KEEP_MORE = 4 * 3600.0
_ENDED = frozenset(
    {EventKind.TOKEN_RELEASED, EventKind.TOKEN_EXPIRED, EventKind.TOKEN_REVOKED}
)


def ui_hold(token: UsageToken) -> bool:
    """A hold a person took from the UI, one that ends."""
    return (
        token.kind is TokenKind.HOLD
        and token.limit is not None
        and token.user_id is not None
    )


def text(hass: HomeAssistant, key: str, **placeholders: object) -> str:
    """One of the notifications' texts, in HA's language (translations' `common`).

    HA loads an integration's translations when it sets up and again when the language
    changes; a key the language lacks is English (HA's fallback).
    """
    found = async_get_cached_translations(
        hass, hass.config.language, "common", DOMAIN
    ).get(f"component.{DOMAIN}.common.{key}")
    return key if found is None else found.format(**placeholders)


def mobile_notify_services(hass: HomeAssistant, user_id: str) -> list[str]:
    """The notify actions of the user's phones (the mobile app's registrations)."""
    services = []
    for entry in hass.config_entries.async_entries(MOBILE_APP):
        if entry.data.get("user_id") != user_id:
            continue
        service = f"{MOBILE_APP}_{slugify(entry.data.get('device_name', ''))}"
        if hass.services.has_service("notify", service):
            services.append(service)
    return services


class Reminders:
    """Timers before each token's end, the notifications and the phones' answers."""

    def __init__(
        self,
        hass: HomeAssistant,
        lab: Lab,
        settings: dict[str, Any],
        clock: Callable[[], float],
    ) -> None:
        """Nothing scheduled until start()."""
        self.hass = hass
        self.lab = lab
        self.settings = settings
        self.clock = clock
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._keys: dict[str, str] = {}  # action key -> token id (ids stay private)
        self._key_of: dict[str, str] = {}  # token id -> its reminder's key
        self._told_available: set[str] = set()
        self._running = False

    @callback
    def start(self) -> CALLBACK_TYPE:
        """Schedule every live token (after a restart too); the stop callback."""
        self._running = True
        for token in self.lab.ledger.all_tokens():
            self._schedule(token)
            if self.lab.state(token.resource) is ResourceState.AVAILABLE:
                self._told_available.add(token.id)
        unlisten = self.hass.bus.async_listen(EVENT_MOBILE_ACTION, self._answered)

        def stop() -> None:
            self._running = False
            unlisten()
            for cancel in self._timers.values():
                cancel()
            self._timers.clear()

        return stop

    @callback
    def on_event(self, event: LabEvent) -> None:
        """Follow the lab's token and state changes."""
        token = event.token
        if event.kind in (EventKind.TOKEN_ACQUIRED, EventKind.TOKEN_RENEWED):
            assert token is not None
            self._schedule(token)
            self._dismiss(token.id)
            if (
                event.kind is EventKind.TOKEN_ACQUIRED
                and self.lab.state(token.resource) is ResourceState.AVAILABLE
            ):
                self._told_available.add(token.id)  # nothing to wait for
        elif event.kind in _ENDED:
            assert token is not None
            if (cancel := self._timers.pop(token.id, None)) is not None:
                cancel()
            self._dismiss(token.id)
            self._told_available.discard(token.id)
        elif (
            event.kind is EventKind.STATE_CHANGED
            and event.resource is not None
            and self.lab.state(event.resource) is ResourceState.AVAILABLE
        ):
            self._available(event.resource)

    def _lead(self) -> tuple[float, bool]:
        """How long before the end to remind, and whether the expiring event fires."""
        warning = float(
            self.settings.get(CONF_EXPIRING_WARNING, DEFAULT_EXPIRING_WARNING)
        )
        return (warning or DEFAULT_EXPIRING_WARNING), warning > 0

    def _schedule(self, token: UsageToken) -> None:
        if (cancel := self._timers.pop(token.id, None)) is not None:
            cancel()
        if not self._running or token.expires is None:
            return
        lead, event = self._lead()
        if not event and not ui_hold(token):
            return
        left = token.expires - self.clock()
        when = token.expires - min(lead, max(left, 0.0) / 2)
        expires = token.expires

        @callback
        def due(_now: Any) -> None:
            self._timers.pop(token.id, None)
            if self.lab.ledger.is_live(token.id) and token.expires == expires:
                self._remind(token, fire_event=event)

        self._timers[token.id] = async_track_point_in_utc_time(
            self.hass, due, dt_util.utc_from_timestamp(when)
        )

    def _remind(self, token: UsageToken, *, fire_event: bool) -> None:
        assert token.expires is not None
        if fire_event:
            self.hass.bus.async_fire(
                EVENT_TOKEN_EXPIRING,
                {
                    "resource": token.resource,
                    "holder": token.holder,
                    "kind": token.kind.value,
                    "expires": dt_util.utc_from_timestamp(token.expires).isoformat(),
                    "user_id": token.user_id,
                },
            )
        if not ui_hold(token):
            return
        key = self._key_of.get(token.id) or secrets.token_urlsafe(12)
        self._keys[key] = token.id
        self._key_of[token.id] = key
        ends = dt_util.as_local(dt_util.utc_from_timestamp(token.expires))
        minutes = max(1, round((token.expires - self.clock()) / 60))
        words = {"resource": token.resource, "holder": token.holder}
        title = text(self.hass, "hold_ending_title", **words)
        message = text(
            self.hass,
            "hold_ending_message",
            **words,
            time=ends.strftime("%H:%M"),
            minutes=minutes,
        )
        persistent_notification.async_create(
            self.hass, message, title, _notification_id(key)
        )
        self._to_phones(
            token.user_id,
            title,
            message,
            {
                "tag": _notification_id(key),
                "actions": [
                    {
                        "action": f"{ACTION_KEEP}{key}",
                        "title": text(self.hass, "action_keep"),
                    },
                    {
                        "action": f"{ACTION_RELEASE}{key}",
                        "title": text(self.hass, "action_release"),
                    },
                ],
            },
        )

    def _available(self, resource: str) -> None:
        if not self.settings.get(CONF_NOTIFY_AVAILABLE):
            return
        for token in self.lab.ledger.tokens(resource):
            if token.user_id is None or token.kind is not TokenKind.HOLD:
                continue
            if token.id in self._told_available:
                continue
            self._told_available.add(token.id)
            words = {"resource": resource, "holder": token.holder}
            title = text(self.hass, "available_title", **words)
            message = text(self.hass, "available_message", **words)
            persistent_notification.async_create(
                self.hass, message, title, f"labpower_available_{resource}"
            )
            self._to_phones(token.user_id, title, message, None)

    def _to_phones(
        self,
        user_id: str | None,
        title: str,
        message: str,
        data: dict[str, Any] | None,
    ) -> None:
        if user_id is None:
            return
        for service in mobile_notify_services(self.hass, user_id):
            payload: dict[str, Any] = {"title": title, "message": message}
            if data is not None:
                payload["data"] = data
            self.hass.async_create_task(
                self._send(service, payload), f"labpower notify {service}"
            )

    async def _send(self, service: str, payload: dict[str, Any]) -> None:
        try:
            await self.hass.services.async_call("notify", service, payload)
        except Exception as err:  # noqa: BLE001 - a phone away must not break the lab
            LOGGER.warning("Could not notify %s: %s", service, err)

    def _dismiss(self, token_id: str) -> None:
        if (key := self._key_of.pop(token_id, None)) is not None:
            self._keys.pop(key, None)
            persistent_notification.async_dismiss(self.hass, _notification_id(key))

    @callback
    def _answered(self, event: Event) -> None:
        """Keep 4 h more / Release now, from the user's phone (their own hold only)."""
        action = str(event.data.get("action", ""))
        for prefix in (ACTION_KEEP, ACTION_RELEASE):
            if action.startswith(prefix):
                key = action.removeprefix(prefix)
                break
        else:
            return
        token_id = self._keys.get(key)
        if token_id is None or not self.lab.ledger.is_live(token_id):
            return
        token = self.lab.ledger.get(token_id)
        if event.context.user_id != token.user_id:
            LOGGER.warning(
                "Ignored %s on %s: not from its holder's phone",
                prefix.strip("_").lower(),
                token.resource,
            )
            return
        if prefix == ACTION_RELEASE:
            self.lab.release([token_id])
            return
        left = 0.0 if token.expires is None else token.expires - self.clock()
        self.lab.renew(token_id, max(left, 0.0) + KEEP_MORE)


def _notification_id(key: str) -> str:
    return f"labpower_hold_{key}"
