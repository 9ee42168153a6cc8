"""Stored data -> what a lab runs: resource specs, device clients, policies.

The config flows and the lab file store plain data (subentry data, lab file entries);
everything here turns that data into the core's objects and the drivers' clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    BMC_IPMI,
    CHECKER_ENTITY,
    CHECKER_ICMP,
    CHECKER_TCP,
    CONF_BMC,
    CONF_BMC_AUTH,
    CONF_CHECK_ENTITY,
    CONF_CHECKER,
    CONF_CIPHER_SUITE,
    CONF_COMMUNITY,
    CONF_DEPENDS_ON,
    CONF_HOST,
    CONF_LABELS,
    CONF_LED_ENTITY,
    CONF_LONG_PRESS,
    CONF_MAC,
    CONF_MAX_PARALLEL_ON,
    CONF_ON_SPACING,
    CONF_OUTLETS,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_POWER_ENTITY,
    CONF_POWER_W,
    CONF_PROTOCOL,
    CONF_RELAY_ENTITY,
    CONF_RESET_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SHORT_PRESS,
    CONF_SNMP_PROFILE,
    CONF_SNMP_VERSION,
    CONF_SSH_COMMAND,
    CONF_SSH_HOST,
    CONF_SSH_KEY,
    CONF_SSH_PASSWORD,
    CONF_SSH_PORT,
    CONF_SSH_USERNAME,
    CONF_SWITCHER,
    CONF_UNIT_PARALLEL_ON,
    CONF_USERNAME,
    CONF_VENDOR,
    CONF_VERIFY_SSL,
    CONF_WOL_ADDRESS,
    CONF_WOL_PORT,
    FILE_KEY_PREFIX,
    SWITCHER_BMC,
    SWITCHER_BUTTON,
    SWITCHER_PDU,
    SWITCHER_WOL,
    VENDOR_DLI,
    VENDOR_GUDE,
    VENDOR_INTELLINET,
    VENDOR_NETIO,
)
from .core.feeds import SharedFeed
from .core.lab import ResourceSpec
from .core.model import ResourcePolicy
from .core.stagger import StaggerPolicy
from .core.switching import (
    AvailabilityChecker,
    ConfigurationSwitchError,
    Switcher,
    SwitchError,
)
from .drivers.bmc import BmcAuthError, BmcClient, BmcSwitcher
from .drivers.dli import DliClient
from .drivers.gude import GudeClient
from .drivers.icmp import IcmpSweeper
from .drivers.intellinet import IntellinetClient
from .drivers.ipmi import IpmiClient
from .drivers.netio import NetioClient
from .drivers.pdu import (
    PduAuthError,
    PduClient,
    PduLoginPageError,
    PduOutletSwitcher,
    UnitStatus,
    UnusableOutlet,
)
from .drivers.redfish import RedfishClient
from .drivers.snmp import SnmpPduClient, udp_port_refuses
from .drivers.ssh import SshShutdown
from .drivers.tcp import TcpChecker
from .drivers.wol_ssh import WolSshSwitcher
from .schema import FIELD_DEFAULTS, POLICY_FIELDS, unit_credentials
from .switchers import ButtonSwitcher, EntityChecker, EntitySwitcher

if TYPE_CHECKING:
    from .coordinator import PduCoordinator


def policy_from_data(data: Mapping[str, Any]) -> ResourcePolicy:
    """The resource policy stored in a subentry (defaults where a field is absent).

    schema.POLICY_FIELDS are ResourcePolicy's fields, by name, with its defaults.
    """
    return ResourcePolicy(
        **{
            policy.key: type(policy.default)(data.get(policy.key, policy.default))
            for policy in POLICY_FIELDS
        }
    )


def subentry_data(
    entry: ConfigEntry, subentry_type: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The stored data of a lab's subentries of one type, keyed by subentry id."""
    return [
        (sub.subentry_id, sub.data)
        for sub in entry.get_subentries_of_type(subentry_type)
    ]


def file_key(kind: str, data: Mapping[str, Any]) -> str:
    """The stable key (device identifier) of a unit or resource the lab file defines."""
    return f"{FILE_KEY_PREFIX}{kind}_{data[CONF_RESOURCE_NAME]}"


def stagger_policy(settings: Mapping[str, Any]) -> StaggerPolicy:
    """The staggered power-on limits of the lab's settings (0 means no limit)."""
    return StaggerPolicy(
        max_parallel=int(settings.get(CONF_MAX_PARALLEL_ON) or 0) or None,
        per_group=int(settings.get(CONF_UNIT_PARALLEL_ON) or 0) or None,
        spacing=float(settings.get(CONF_ON_SPACING) or 0.0),
    )


def _value(data: Mapping[str, Any], key: str) -> Any:
    """A stored field's value, or its default (schema.py) where data predates it."""
    return data.get(key, FIELD_DEFAULTS[key])


@dataclass(slots=True)
class ResourceBuilder:
    """Builds a lab's resources from their stored data, on the lab's devices."""

    hass: HomeAssistant
    icmp: IcmpSweeper
    units: Mapping[str, PduCoordinator]  # name -> PDU unit
    bmcs: Mapping[str, BmcClient]  # BMC key -> client
    bmc_keys: Mapping[str, str]  # BMC name -> its key
    # Resources whose feed another resource uses too: neither is switched.
    blocked: Mapping[str, SharedFeed]
    host_keys: Mapping[str, str]  # resource -> pinned SSH host key
    remember_host_key: Callable[[str, str], None]
    bmc_of: dict[str, str] = field(default_factory=dict)  # resource -> BMC key

    def spec(self, data: Mapping[str, Any]) -> tuple[ResourceSpec, list[str]]:
        """A resource's definition from its subentry data; the entities it watches."""
        entities: list[str] = []
        checker = self._checker(data, entities)
        name = data[CONF_RESOURCE_NAME]
        shared = self.blocked.get(name)
        spec = ResourceSpec(
            name=name,
            feeds=(shared,) if shared else self._feeds(data, checker, entities),
            checker=checker,
            policy=policy_from_data(data),
            labels=frozenset(data.get(CONF_LABELS, [])),
            power_w=data.get(CONF_POWER_W),
            depends_on=tuple(data.get(CONF_DEPENDS_ON, ())),
        )
        return spec, entities

    def _feeds(
        self,
        data: Mapping[str, Any],
        checker: AvailabilityChecker | None,
        entities: list[str],
    ) -> tuple[Switcher, ...]:
        name = data[CONF_RESOURCE_NAME]
        switcher_type = data[CONF_SWITCHER]
        if switcher_type == SWITCHER_PDU:
            return tuple(self._outlet(name, outlet) for outlet in data[CONF_OUTLETS])
        if switcher_type == SWITCHER_BMC:
            # The UI stores the BMC's subentry id, the lab file its name.
            bmc = self.bmc_keys.get(data[CONF_BMC], data[CONF_BMC])
            self.bmc_of[name] = bmc
            return (BmcSwitcher(self.bmcs[bmc]),)
        if switcher_type == SWITCHER_WOL:
            if checker is None:
                raise ConfigurationSwitchError(
                    "Wake-on-LAN needs an availability check"
                )
            return (
                wol_switcher(
                    data,
                    checker,
                    known_host_key=self.host_keys.get(name),
                    on_first_key=lambda key: self.remember_host_key(name, key),
                ),
            )
        switcher: ButtonSwitcher | EntitySwitcher
        if switcher_type == SWITCHER_BUTTON:
            switcher = ButtonSwitcher(
                self.hass,
                relay_entity=data[CONF_RELAY_ENTITY],
                led_entity=data[CONF_LED_ENTITY],
                reset_entity=data.get(CONF_RESET_ENTITY),
                short_press=float(_value(data, CONF_SHORT_PRESS)),
                long_press=float(_value(data, CONF_LONG_PRESS)),
            )
        else:
            switcher = EntitySwitcher(self.hass, data[CONF_POWER_ENTITY])
        entities.extend(switcher.entities)
        return (switcher,)

    def _outlet(self, resource: str, outlet: str) -> Switcher:
        """The feed of "unit:N"; a feed that reports the missing unit if it is gone."""
        unit_name, _, number = outlet.rpartition(":")
        unit = self.units.get(unit_name)
        if unit is None:
            return UnusableOutlet(outlet, "the PDU unit does not exist")
        unit.fed[int(number)] = resource
        return PduOutletSwitcher(unit.unit, int(number), unit_name)

    def _checker(
        self, data: Mapping[str, Any], entities: list[str]
    ) -> AvailabilityChecker | None:
        match data.get(CONF_CHECKER):
            case value if value == CHECKER_ICMP:
                return self.icmp.checker(data[CONF_HOST])
            case value if value == CHECKER_TCP:
                return TcpChecker(data[CONF_HOST], int(data[CONF_PORT]))
            case value if value == CHECKER_ENTITY:
                entity_checker = EntityChecker(self.hass, data[CONF_CHECK_ENTITY])
                entities.extend(entity_checker.entities)
                return entity_checker
        return None


def bmc_client(hass: HomeAssistant, data: Mapping[str, Any]) -> BmcClient:
    """The client of a BMC subentry (HA's shared HTTP session, HA's executor)."""
    port = data.get(CONF_PORT)
    if data[CONF_PROTOCOL] == BMC_IPMI:
        return IpmiClient(
            data[CONF_HOST],
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            port=int(port or 623),
            cipher_suite=int(_value(data, CONF_CIPHER_SUITE)),
            executor=hass.async_add_executor_job,
        )
    verify_ssl = bool(_value(data, CONF_VERIFY_SSL))
    return RedfishClient(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        data[CONF_HOST],
        None if port is None else int(port),
        username=data[CONF_USERNAME],
        password=data[CONF_PASSWORD],
        verify_ssl=verify_ssl,
        auth=_value(data, CONF_BMC_AUTH),
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
        int(_value(data, CONF_SSH_PORT)),
        username=data[CONF_SSH_USERNAME],
        password=data.get(CONF_SSH_PASSWORD) or None,
        client_key=data.get(CONF_SSH_KEY) or None,
        command=data.get(CONF_SSH_COMMAND) or FIELD_DEFAULTS[CONF_SSH_COMMAND],
        known_host_key=known_host_key,
        on_first_key=on_first_key,
    )
    return WolSshSwitcher(
        data[CONF_MAC],
        _value(data, CONF_WOL_ADDRESS),
        int(_value(data, CONF_WOL_PORT)),
        shutdown,
        checker,
    )


def pdu_client(hass: HomeAssistant, data: Mapping[str, Any]) -> PduClient:
    """The protocol client of a PDU unit subentry (HA's shared HTTP session).

    The clients take the vendor's connection settings (schema.unit_credentials) by
    their stored keys, None where left blank.
    """
    vendor = data[CONF_VENDOR]
    host = data[CONF_HOST]
    port = data.get(CONF_PORT)
    port = None if port is None else int(port)
    given: dict[str, Any] = {
        f.key: data.get(f.key) or None for f in unit_credentials(vendor)
    }
    if vendor in _HTTP_CLIENTS:
        # A blank user name or password is an empty one over HTTP.
        given[CONF_USERNAME] = given[CONF_USERNAME] or ""
        given[CONF_PASSWORD] = given[CONF_PASSWORD] or ""
        return _HTTP_CLIENTS[vendor](async_get_clientsession(hass), host, port, **given)
    return SnmpPduClient(
        host,
        port or 161,
        version=given.pop(CONF_SNMP_VERSION) or FIELD_DEFAULTS[CONF_SNMP_VERSION],
        community=given.pop(CONF_COMMUNITY) or "public",
        profile=given.pop(CONF_SNMP_PROFILE) or FIELD_DEFAULTS[CONF_SNMP_PROFILE],
        executor=hass.async_add_executor_job,
        **given,
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
