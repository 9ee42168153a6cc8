"""PDU units, built from their subentries: the client, the unit and its coordinator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_AUTH_KEY,
    CONF_AUTH_PROTOCOL,
    CONF_COMMUNITY,
    CONF_HOST,
    CONF_OUTLET_COUNT,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PRIV_KEY,
    CONF_PRIV_PROTOCOL,
    CONF_SNMP_PROFILE,
    CONF_SNMP_VERSION,
    CONF_UNIT_NAME,
    CONF_UPS_ENTITY,
    CONF_USERNAME,
    CONF_VENDOR,
    CONF_WRITE_COMMUNITY,
    CONF_WRITE_PASSWORD,
    CONF_WRITE_USERNAME,
    DOMAIN,
    LOGGER,
    PDU_POLL_SECONDS,
    SNMP_AUTOMATIC,
    VENDOR_DLI,
    VENDOR_GUDE,
    VENDOR_INTELLINET,
    VENDOR_NETIO,
)
from .core.model import PowerState
from .core.switching import ConfigurationSwitchError, SwitchError
from .drivers.dli import DliClient
from .drivers.gude import GudeClient
from .drivers.intellinet import IntellinetClient
from .drivers.netio import NetioClient
from .drivers.pdu import (
    PDU_AUTH,
    PDU_LOGIN_PAGE,
    PDU_READ_ONLY,
    PduAuthError,
    PduClient,
    PduLoginPageError,
    PduReadOnlyError,
    PduUnit,
    UnitStatus,
)
from .drivers.snmp import SnmpPduClient, udp_port_refuses
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


def pdu_client(hass: HomeAssistant, data: Mapping[str, Any]) -> PduClient:
    """The protocol client of a PDU unit subentry (HA's shared HTTP session)."""
    vendor = data[CONF_VENDOR]
    host = data[CONF_HOST]
    port = data.get(CONF_PORT)
    port = None if port is None else int(port)
    if vendor in _HTTP_CLIENTS:
        session = async_get_clientsession(hass)
        username = data.get(CONF_USERNAME) or ""
        password = data.get(CONF_PASSWORD) or ""
        if vendor == VENDOR_NETIO:
            return NetioClient(
                session,
                host,
                port,
                username=username,
                password=password,
                write_username=data.get(CONF_WRITE_USERNAME) or None,
                write_password=data.get(CONF_WRITE_PASSWORD) or None,
            )
        return _HTTP_CLIENTS[vendor](
            session, host, port, username=username, password=password
        )
    return SnmpPduClient(
        host,
        port or 161,
        version=data.get(CONF_SNMP_VERSION, "2c"),
        community=data.get(CONF_COMMUNITY) or "public",
        write_community=data.get(CONF_WRITE_COMMUNITY) or None,
        username=data.get(CONF_USERNAME) or None,
        auth_protocol=data.get(CONF_AUTH_PROTOCOL) or None,
        auth_key=data.get(CONF_AUTH_KEY) or None,
        priv_protocol=data.get(CONF_PRIV_PROTOCOL) or None,
        priv_key=data.get(CONF_PRIV_KEY) or None,
        profile=data.get(CONF_SNMP_PROFILE) or SNMP_AUTOMATIC,
        executor=hass.async_add_executor_job,
    )


_HTTP_CLIENTS: dict[str, Callable[..., PduClient]] = {
    VENDOR_INTELLINET: IntellinetClient,
    VENDOR_NETIO: NetioClient,
    VENDOR_GUDE: GudeClient,
    VENDOR_DLI: DliClient,
}


async def async_check_pdu(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[str | None, UnitStatus | None]:
    """Connect and read the unit's status; the form's error key when that fails."""
    try:
        client = pdu_client(hass, data)
    except ConfigurationSwitchError:
        return "pdu_misconfigured", None
    try:
        return None, await client.read_status()
    except PduAuthError:
        return "invalid_auth", None
    except PduLoginPageError:
        return "login_page", None
    except ConfigurationSwitchError:
        return "pdu_misconfigured", None
    except SwitchError as err:
        if getattr(err, "no_answer", False) and not await udp_port_refuses(
            data[CONF_HOST], int(data.get(CONF_PORT) or 161)
        ):
            return "snmp_no_answer", None
        return "cannot_connect", None
    finally:
        await client.close()


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
