"""One feed, one owner across every lab: who uses which feed target (core/feeds.py).

The config flows, the lab file and a lab at start all ask the same question here: the
resources of every lab's config entry (made in the UI) and of every loaded lab's lab file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant

from .const import CONF_RESOURCE_NAME, DOMAIN, SUBENTRY_BMC, SUBENTRY_RESOURCE
from .core.feeds import FeedTarget, FeedUse, feed_targets


def bmc_names(entry: ConfigEntry) -> dict[str, str]:
    """A lab's BMCs: subentry id -> name (resources made in the UI store the id)."""
    return {
        sub.subentry_id: sub.title
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_BMC
    }


def resource_uses(
    entry: ConfigEntry, data: Mapping[str, Any], *, in_file: bool = False
) -> list[FeedUse]:
    """The feed targets one resource of a lab uses."""
    return [
        FeedUse(target, data[CONF_RESOURCE_NAME], entry.entry_id, entry.title, in_file)
        for _, target in feed_targets(
            data, scope=entry.entry_id, bmc_names=bmc_names(entry)
        )
    ]


def feed_uses(
    hass: HomeAssistant,
    starting: tuple[ConfigEntry, Iterable[Mapping[str, Any]]] | None = None,
) -> list[FeedUse]:
    """Every use of a feed target: every lab's resources, and loaded labs' lab files.

    `starting` is a lab being set up (not loaded yet) with the resources its lab file
    defines.
    """
    uses: list[FeedUse] = []
    for entry in hass.config_entries.async_entries(DOMAIN):
        for sub in entry.subentries.values():
            if sub.subentry_type == SUBENTRY_RESOURCE:
                uses.extend(resource_uses(entry, sub.data))
        files: Iterable[Mapping[str, Any]] = ()
        if starting is not None and entry.entry_id == starting[0].entry_id:
            files = starting[1]
        elif entry.state is ConfigEntryState.LOADED:
            files = entry.runtime_data.file_resources
        for data in files:
            uses.extend(resource_uses(entry, data, in_file=True))
    return uses


def feed_owners(
    hass: HomeAssistant, *, lab: str, resource: str
) -> dict[FeedTarget, FeedUse]:
    """Who uses each feed target, leaving out the resource `resource` of lab `lab`."""
    return {use.target: use for use in feed_uses(hass) if use.owner != (lab, resource)}


def known_feeds(hass: HomeAssistant, entry: ConfigEntry) -> dict[FeedTarget, str]:
    """The feed targets a lab's lab file may not use, each with who uses it."""
    return {
        use.target: (
            f"{use.resource} (made in the UI)"
            if use.lab == entry.entry_id
            else f"{use.resource} (lab {use.title})"
        )
        for use in feed_uses(hass)
        if not (use.lab == entry.entry_id and use.in_file)
    }
