"""PDU units: the coordinator of a unit's status, and the repair issues about its login."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .build import pdu_client
from .const import (
    CONF_OUTLET_COUNT,
    CONF_UNIT_NAME,
    CONF_UPS_ENTITY,
    CONF_VENDOR,
    DOMAIN,
    LOGGER,
    PDU_POLL_SECONDS,
)
from .core.model import PowerState
from .core.switching import ConfigurationSwitchError, SwitchError
from .drivers.pdu import (
    PDU_AUTH,
    PDU_LOGIN_PAGE,
    PDU_READ_ONLY,
    PduReadOnlyError,
    PduUnit,
    UnitStatus,
)
from .helpers import config_subentry_of, raise_repair

# Repair issues about a unit's credentials and login (raised and cleared by the unit
# itself); a unit whose settings its driver refuses gets PDU_INVALID (raised by the lab).
CREDENTIAL_ISSUES = (PDU_AUTH, PDU_READ_ONLY, PDU_LOGIN_PAGE)
PDU_INVALID = "pdu_invalid"


def unit_issue_id(issue: str, entry_id: str, key: str) -> str:
    """The id of a repair issue about one unit of a lab ("" as key: the ids' prefix)."""
    return f"{issue}_{entry_id}_{key}"


# A status this fresh serves every outlet of the unit (outlets poll on shared ticks).
STATUS_MAX_AGE = 1.5


class PduCoordinator(DataUpdateCoordinator[UnitStatus | None]):
    """A unit's status for its entities: fed by every read (the resources' polls too)."""

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        subentry_id: str,
        data: Mapping[str, Any],
    ) -> None:
        """Build the unit; it polls itself only when no resource read it lately.

        Settings the driver refuses raise (ConfigurationSwitchError) before anything
        is registered with Home Assistant.
        """
        self.name_of_unit: str = data[CONF_UNIT_NAME]
        client = pdu_client(hass, data)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"PDU {self.name_of_unit}",
            update_interval=timedelta(seconds=PDU_POLL_SECONDS),
        )
        self.subentry_id = subentry_id
        self.vendor: str = data[CONF_VENDOR]
        self.outlet_count = int(data.get(CONF_OUTLET_COUNT) or 0)
        self.ups_entity: str | None = data.get(CONF_UPS_ENTITY) or None
        self.unit = PduUnit(client, max_age=STATUS_MAX_AGE, listener=self._heard)
        self.fed: dict[int, str] = {}  # outlet -> the resource it feeds

    async def _async_update_data(self) -> UnitStatus:
        try:
            # A read by a resource within the poll interval counts as this poll.
            return await self.unit.status(max_age=PDU_POLL_SECONDS - 1)
        except SwitchError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="pdu_unreachable",
                translation_placeholders={
                    "unit": self.name_of_unit,
                    "error": str(err),
                },
            ) from err

    @callback
    def _heard(self, result: UnitStatus | Exception) -> None:
        """Every read or failed request of the unit, whoever made it."""
        if isinstance(result, UnitStatus):
            if not self.last_update_success:
                LOGGER.info("PDU unit %s answers again", self.name_of_unit)
            self._sync_issue(None)
            if result is not self.data:
                self.async_set_updated_data(result)
            return
        if (
            isinstance(result, ConfigurationSwitchError)
            and result.issue in CREDENTIAL_ISSUES
        ):
            self._sync_issue(result)
        if isinstance(result, SwitchError) and not isinstance(result, PduReadOnlyError):
            self.async_set_update_error(result)

    def _sync_issue(self, error: ConfigurationSwitchError | None) -> None:
        for issue in CREDENTIAL_ISSUES:
            issue_id = unit_issue_id(
                issue, self.config_entry.entry_id, self.subentry_id
            )
            if error is not None and error.issue == issue:
                raise_repair(
                    self.hass,
                    issue_id,
                    issue,
                    {"unit": self.name_of_unit, "detail": str(error)},
                )
            elif error is None and issue != PDU_READ_ONLY:
                # a read that works proves these fixed; switching is another matter
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    @property
    def config_subentry_id(self) -> str | None:
        """The unit's subentry (None: the lab file defines it)."""
        return config_subentry_of(self.subentry_id)

    def outlet_state(self, outlet: int) -> PowerState:
        """An outlet's last read state (UNKNOWN if the unit did not report it)."""
        return PowerState.UNKNOWN if self.data is None else self.data.state_of(outlet)

    def outlets(self) -> list[int]:
        """The unit's outlet numbers: as read, else as configured."""
        if self.data is not None and self.data.outlets:
            return sorted(self.data.outlets)
        return list(range(1, self.outlet_count + 1))

    async def async_shutdown(self) -> None:
        """Stop polling and close the client."""
        await super().async_shutdown()
        await self.unit.close()
