"""BMCs (IPMI, Redfish) and Wake-on-LAN/SSH machines, built from their subentries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    BMC_IPMI,
    CONF_BMC_AUTH,
    CONF_CIPHER_SUITE,
    CONF_HOST,
    CONF_MAC,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROTOCOL,
    CONF_SSH_COMMAND,
    CONF_SSH_HOST,
    CONF_SSH_KEY,
    CONF_SSH_PASSWORD,
    CONF_SSH_PORT,
    CONF_SSH_USERNAME,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
    CONF_WOL_ADDRESS,
    CONF_WOL_PORT,
)
from .core.switching import AvailabilityChecker, ConfigurationSwitchError, SwitchError
from .drivers.bmc import BmcAuthError, BmcClient
from .drivers.ipmi import IpmiClient
from .drivers.redfish import RedfishClient
from .drivers.ssh import DEFAULT_COMMAND, SshShutdown
from .drivers.wol_ssh import WolSshSwitcher


def bmc_client(hass: HomeAssistant, data: Mapping[str, Any]) -> BmcClient:
    """The client of a BMC subentry (HA's shared HTTP session, HA's executor)."""
    port = data.get(CONF_PORT)
    if data[CONF_PROTOCOL] == BMC_IPMI:
        return IpmiClient(
            data[CONF_HOST],
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            port=int(port or 623),
            cipher_suite=int(data.get(CONF_CIPHER_SUITE, 3)),
            executor=hass.async_add_executor_job,
        )
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    return RedfishClient(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        data[CONF_HOST],
        None if port is None else int(port),
        username=data[CONF_USERNAME],
        password=data[CONF_PASSWORD],
        verify_ssl=verify_ssl,
        auth=data.get(CONF_BMC_AUTH, "basic"),
    )


async def async_check_bmc(hass: HomeAssistant, data: Mapping[str, Any]) -> str | None:
    """Connect and read the power state; the form's error key when that fails."""
    client = bmc_client(hass, data)
    try:
        await client.power_state()
    except BmcAuthError:
        return "invalid_auth"
    except ConfigurationSwitchError:
        return "bmc_misconfigured"
    except SwitchError:
        return "cannot_connect"
    finally:
        await client.close()
    return None


def wol_switcher(
    data: Mapping[str, Any],
    checker: AvailabilityChecker,
    *,
    known_host_key: str | None,
    on_first_key: Callable[[str], None],
) -> WolSshSwitcher:
    """A Wake-on-LAN/SSH switcher; its state comes from the resource's checker."""
    shutdown = SshShutdown(
        data[CONF_SSH_HOST],
        int(data.get(CONF_SSH_PORT, 22)),
        username=data[CONF_SSH_USERNAME],
        password=data.get(CONF_SSH_PASSWORD) or None,
        client_key=data.get(CONF_SSH_KEY) or None,
        command=data.get(CONF_SSH_COMMAND) or DEFAULT_COMMAND,
        known_host_key=known_host_key,
        on_first_key=on_first_key,
    )
    return WolSshSwitcher(
        data[CONF_MAC],
        data.get(CONF_WOL_ADDRESS, "255.255.255.255"),
        int(data.get(CONF_WOL_PORT, 9)),
        shutdown,
        checker,
    )
