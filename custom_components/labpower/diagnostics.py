"""Diagnostics: the lab's configuration and state, token ids and users redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .runtime import LabpowerConfigEntry, iso_time
from .schema import REDACTED

# Token ids and users, and every field schema.py flags as a secret or a user name.
TO_REDACT = {"id", "token", "user_id", *REDACTED}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LabpowerConfigEntry
) -> dict[str, Any]:
    """Configuration, resource states, tokens, the queue and bookings (secrets redacted)."""
    runtime = entry.runtime_data
    lab = runtime.lab
    resources = {}
    for name in lab.names:
        reconciler = lab.reconciler(name)
        resources[name] = {
            "state": reconciler.state.value,
            "reason": reconciler.reason,
            "halted": reconciler.halted,  # labpower stopped switching it (why)
            "power": reconciler.power.value,
            "available": reconciler.available,
            "feeds": [feed.description for feed in reconciler.feeds],
            "checker": None
            if reconciler.checker is None
            else reconciler.checker.description,
            "desired_on": lab.desired_on(name),
            "depends_on": list(lab.parents(name)),
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
            "options": dict(entry.options),
            "settings": runtime.settings,
            "units": {
                name: {
                    "vendor": unit.vendor,
                    "answering": unit.last_update_success,
                    "requests": unit.unit.requests,
                    "status_reads": unit.unit.status_reads,
                    "fed": unit.fed,
                    "outlets": {
                        outlet: status.state.value
                        for outlet, status in (
                            unit.data.outlets.items() if unit.data else ()
                        )
                    },
                    "ups": unit.ups_entity,
                }
                for name, unit in runtime.units.items()
            },
            "resources": resources,
            # Bookings with how many tokens they hold (the ids are secrets).
            "bookings": [
                {**booking.as_dict(), "tokens": len(booking.tokens)}
                for booking in runtime.bookings.book.all()
            ],
            "boot_times": runtime.bookings.boot.to_dict(),
            # Who waits, in order (the tickets are redacted like token ids).
            "queue": [
                {**request.as_dict(), "position": position}
                for position, request in enumerate(lab.queue.requests(), start=1)
            ],
        },
        TO_REDACT,
    )
