"""Turning lab and device errors into translated Home Assistant errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
import functools
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, FILE_KEY_PREFIX
from .core.model import (
    AcquireRefusedError,
    LabError,
    LabsLoadingError,
    QueueInterruptedError,
    ResourceFaultError,
    ResourceHaltedError,
    TokenRevokedError,
)
from .core.switching import SwitchError

# Lab errors that are not the caller's mistake: the devices or the machines failed. A
# wait that ran out is the answer to the caller's own timeout (HA's REST API: 400, not 500).
_DEVICE_ERRORS = (
    AcquireRefusedError,
    LabsLoadingError,
    QueueInterruptedError,
    ResourceFaultError,
    ResourceHaltedError,
    TokenRevokedError,
)


def translate_error(err: LabError | SwitchError) -> HomeAssistantError:
    """The translated Home Assistant error for a lab or switcher error."""
    if isinstance(err, SwitchError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="switch_failed",
            translation_placeholders={"error": str(err)},
        )
    cls = (
        HomeAssistantError
        if isinstance(err, _DEVICE_ERRORS)
        else ServiceValidationError
    )
    return cls(
        translation_domain=DOMAIN,
        translation_key=err.key,
        translation_placeholders=err.placeholders,
    )


def labpower_errors[**P, R](
    func: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorate an action so lab and switcher errors become translated HA errors."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await func(*args, **kwargs)
        except (LabError, SwitchError) as err:
            raise translate_error(err) from err

    return wrapper


def config_subentry_of(key: str) -> str | None:
    """The config subentry behind a resource's or unit's key (None: the lab file's)."""
    return None if key.startswith(FILE_KEY_PREFIX) else key


def raise_repair(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str] | None = None,
    *,
    data: dict[str, str | int | float | None] | None = None,
) -> None:
    """A repair issue the user must act on; with `data`, repairs.py offers its fix."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=data is not None,
        data=data,
        severity=ir.IssueSeverity.ERROR,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )
