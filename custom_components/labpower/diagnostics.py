"""Diagnostics: the lab's configuration and state, token ids and users redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .coordinator import LabpowerConfigEntry, iso_time

TO_REDACT = {"id", "token", "user_id", "password", "username"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LabpowerConfigEntry
) -> dict[str, Any]:
    """Configuration, resource states and tokens (secrets redacted)."""
    lab = entry.runtime_data.lab
    resources = {}
    for name in lab.names:
        reconciler = lab.reconciler(name)
        resources[name] = {
            "state": reconciler.state.value,
            "reason": reconciler.reason,
            "power": reconciler.power.value,
            "available": reconciler.available,
            "feeds": [feed.description for feed in reconciler.feeds],
            "checker": None
            if reconciler.checker is None
            else reconciler.checker.description,
            "desired_on": lab.desired_on(name),
            "off_deadline": iso_time(lab.ledger.off_deadline(name)),
            "tokens": [token.as_dict() for token in lab.ledger.tokens(name)],
        }
    return async_redact_data(
        {
            "entry": {"title": entry.title, "data": dict(entry.data)},
            "subentries": [
                {"title": sub.title, "data": dict(sub.data)}
                for sub in entry.subentries.values()
            ],
            "resources": resources,
        },
        TO_REDACT,
    )
