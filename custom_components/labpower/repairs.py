"""Repair fix flows: acknowledging a resource labpower stopped switching."""

from __future__ import annotations

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import probatio as vol

from .const import DOMAIN

ACKNOWLEDGED = "acknowledged in Repairs"


class ResumeSwitchingFlow(RepairsFlow):
    """Confirm that a person checked the resource: labpower switches it again."""

    def __init__(self, entry_id: str, resource: str) -> None:
        """The lab and the resource of the issue."""
        self._entry_id = entry_id
        self._resource = resource

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """The only step: confirm."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show what happened; on confirmation let labpower switch the resource again."""
        if user_input is not None:
            entry = self.hass.config_entries.async_get_entry(self._entry_id)
            if entry is None or entry.state is not ConfigEntryState.LOADED:
                return self.async_abort(reason="lab_not_loaded")
            entry.runtime_data.lab.resume(self._resource, ACKNOWLEDGED)
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=issue.translation_placeholders if issue else None,
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The fix flow of a labpower repair issue (only halted resources have one)."""
    assert data is not None
    return ResumeSwitchingFlow(str(data["entry_id"]), str(data["resource"]))
