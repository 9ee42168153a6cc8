"""Repair fix flows: a resource labpower stopped switching, tokens lost with a store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers import issue_registry as ir
import probatio as vol

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .runtime import LabRuntime

ACKNOWLEDGED = "acknowledged in Repairs"


class _ConfirmFlow(RepairsFlow):
    """One step: show the issue, and on confirmation act on its loaded lab."""

    def __init__(self, entry_id: str) -> None:
        """The lab of the issue."""
        self._entry_id = entry_id

    def confirmed(self, runtime: LabRuntime) -> None:
        """What a confirmation does."""
        raise NotImplementedError

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """The only step: confirm."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show what happened; act once confirmed."""
        if user_input is not None:
            entry = self.hass.config_entries.async_get_entry(self._entry_id)
            if entry is None or entry.state is not ConfigEntryState.LOADED:
                return self.async_abort(reason="lab_not_loaded")
            self.confirmed(entry.runtime_data)
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=issue.translation_placeholders if issue else None,
        )


class ResumeSwitchingFlow(_ConfirmFlow):
    """Confirm that a person checked the resource: labpower switches it again."""

    def __init__(self, entry_id: str, resource: str) -> None:
        """The lab and the resource of the issue."""
        super().__init__(entry_id)
        self._resource = resource

    def confirmed(self, runtime: LabRuntime) -> None:
        """Let labpower switch the resource again."""
        runtime.lab.resume(self._resource, ACKNOWLEDGED)


class ConfirmLostFlow(_ConfirmFlow):
    """Confirm that a lab's lost tokens are gone: its kept resources are managed again."""

    def confirmed(self, runtime: LabRuntime) -> None:
        """Resources nobody holds go off after their off delay."""
        runtime.storage.confirm_lost()


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The fix flow of a labpower repair issue (halted resources, lost tokens)."""
    assert data is not None
    if "confirm" in data:
        return ConfirmLostFlow(str(data["entry_id"]))
    return ResumeSwitchingFlow(str(data["entry_id"]), str(data["resource"]))
