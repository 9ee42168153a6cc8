"""Who is calling: names for holders and the logbook, and the admin check."""

from __future__ import annotations

from homeassistant.core import Context, HomeAssistant

DEFAULT_HOLDER = "Home Assistant"


async def async_caller_name(hass: HomeAssistant, context: Context | None) -> str:
    """The calling user's name, or a neutral name for automations and the system."""
    if context is None or context.user_id is None:
        return DEFAULT_HOLDER
    user = await hass.auth.async_get_user(context.user_id)
    if user is None or not user.name:
        return DEFAULT_HOLDER
    return user.name


async def async_is_admin(hass: HomeAssistant, context: Context | None) -> bool:
    """Administrators and calls without a user (automations, the system) count as admin."""
    if context is None or context.user_id is None:
        return True
    user = await hass.auth.async_get_user(context.user_id)
    return user is not None and user.is_admin
