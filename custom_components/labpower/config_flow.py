"""Config flow: a Lab entry, and resources as its subentries."""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import callback
from homeassistant.helpers import selector
import probatio as vol

from .build import async_check_bmc, async_check_pdu
from .const import (
    BMC_IPMI,
    BMC_PROTOCOLS,
    CHECKER_ENTITY,
    CHECKER_ICMP,
    CHECKER_NONE,
    CHECKER_TCP,
    CHECKER_TYPES,
    CONF_AUTH_KEY,
    CONF_AUTH_PROTOCOL,
    CONF_BMC,
    CONF_BMC_AUTH,
    CONF_BMC_NAME,
    CONF_CHECK_ENTITY,
    CONF_CHECKER,
    CONF_CIPHER_SUITE,
    CONF_COMMUNITY,
    CONF_DEFAULT_TTL,
    CONF_DEPENDS_ON,
    CONF_GRACEFUL_OFF,
    CONF_HOST,
    CONF_LAB_FILE,
    CONF_LAB_NAME,
    CONF_LABELS,
    CONF_LED_ENTITY,
    CONF_LONG_PRESS,
    CONF_MAC,
    CONF_MAX_PARALLEL_ON,
    CONF_MAX_TRANSITIONS,
    CONF_MAX_TTL,
    CONF_METER_ENTITY,
    CONF_MIN_OFF_TIME,
    CONF_NOTIFY_ON_BATTERY,
    CONF_OFF_DELAY,
    CONF_OFF_NOW,
    CONF_ON_SPACING,
    CONF_OUTLET_COUNT,
    CONF_OUTLETS,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_POWER_ENTITY,
    CONF_POWER_W,
    CONF_PRIV_KEY,
    CONF_PRIV_PROTOCOL,
    CONF_PROTOCOL,
    CONF_REFUSE_ON_BATTERY,
    CONF_RELAY_ENTITY,
    CONF_RESET_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SHED_ON_BATTERY,
    CONF_SHORT_PRESS,
    CONF_SHUTDOWN_ON_LOW_BATTERY,
    CONF_SNMP_PROFILE,
    CONF_SNMP_VERSION,
    CONF_SSH_COMMAND,
    CONF_SSH_HOST,
    CONF_SSH_KEY,
    CONF_SSH_PASSWORD,
    CONF_SSH_PORT,
    CONF_SSH_USERNAME,
    CONF_START_TIMEOUT,
    CONF_STOP_TIMEOUT,
    CONF_SWITCHER,
    CONF_UNIT_NAME,
    CONF_UNIT_PARALLEL_ON,
    CONF_UPS_ENTITIES,
    CONF_UPS_ENTITY,
    CONF_USERNAME,
    CONF_VENDOR,
    CONF_VERIFY_SSL,
    CONF_WOL_ADDRESS,
    CONF_WOL_PORT,
    CONF_WRITE_COMMUNITY,
    CONF_WRITE_PASSWORD,
    CONF_WRITE_USERNAME,
    DEFAULT_LONG_PRESS,
    DEFAULT_SHORT_PRESS,
    DOMAIN,
    LAB_OPTION_DEFAULTS,
    PDU_VENDORS,
    RELAY_DOMAINS,
    SNMP_AUTOMATIC,
    SNMP_FIELDS,
    SNMP_VERSIONS,
    SUBENTRY_BMC,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
    SWITCHABLE_DOMAINS,
    SWITCHER_BMC,
    SWITCHER_BUTTON,
    SWITCHER_ENTITY,
    SWITCHER_PDU,
    SWITCHER_TYPES,
    SWITCHER_WOL,
    VENDOR_NETIO,
    VENDOR_SNMP,
)
from .core.feeds import FeedTarget, FeedUse, feed_targets, outlet_target
from .core.graph import find_cycle
from .core.model import ResourcePolicy
from .drivers.snmp_profiles import SNMP_PROFILES
from .drivers.ssh import DEFAULT_COMMAND
from .drivers.wol import magic_packet
from .feeds import bmc_names, feed_owners
from .runtime import LabpowerConfigEntry

_DURATIONS = (
    CONF_OFF_DELAY,
    CONF_MIN_OFF_TIME,
    CONF_START_TIMEOUT,
    CONF_STOP_TIMEOUT,
    CONF_DEFAULT_TTL,
    CONF_MAX_TTL,
)
_POLICY_DEFAULTS = ResourcePolicy()
_PORT = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1, max=65535, mode=selector.NumberSelectorMode.BOX
    )
)
_PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
_SECONDS = selector.NumberSelector(
    selector.NumberSelectorConfig(
        mode=selector.NumberSelectorMode.BOX, unit_of_measurement="s", step="any"
    )
)


class LabpowerConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create a Lab: a named set of resources with their tokens."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: LabpowerConfigEntry) -> LabOptionsFlow:
        """Lab-wide settings."""
        return LabOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Resources and BMCs are subentries of a Lab."""
        return {
            SUBENTRY_RESOURCE: ResourceSubentryFlow,
            SUBENTRY_BMC: BmcSubentryFlow,
            SUBENTRY_PDU: PduSubentryFlow,
        }

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the lab's name; the same name twice is refused."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name, errors = self._check_name(user_input, renaming=None)
            if not errors:
                return self.async_create_entry(title=name, data={CONF_LAB_NAME: name})
        return self._name_form("user", user_input or {CONF_LAB_NAME: "Lab"}, errors)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Rename a lab (its resources and tokens stay)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            name, errors = self._check_name(user_input, renaming=entry.entry_id)
            if not errors:
                # The entry's update listener reloads it.
                return self.async_update_and_abort(
                    entry, title=name, data={CONF_LAB_NAME: name}
                )
        return self._name_form(
            "reconfigure", user_input or {CONF_LAB_NAME: entry.title}, errors
        )

    def _check_name(
        self, user_input: dict[str, Any], *, renaming: str | None
    ) -> tuple[str, dict[str, str]]:
        name = user_input[CONF_LAB_NAME].strip()
        taken = {
            entry.data.get(CONF_LAB_NAME, entry.title).casefold()
            for entry in self._async_current_entries(include_ignore=False)
            if entry.entry_id != renaming
        }
        if not name:
            return name, {CONF_LAB_NAME: "name_empty"}
        if name.casefold() in taken:
            return name, {CONF_LAB_NAME: "name_exists"}
        return name, {}

    def _name_form(
        self, step_id: str, values: dict[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Required(CONF_LAB_NAME): selector.TextSelector()}),
                values,
            ),
            errors=errors,
        )


class LabOptionsFlow(OptionsFlow):
    """Lab-wide settings: the lab file, staggered power-on and the UPS policy."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One form; a change reloads the lab (tokens are kept)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            path = str(user_input.get(CONF_LAB_FILE) or "").strip()
            if path and not await self.hass.async_add_executor_job(
                os.path.isfile, self.hass.config.path(path)
            ):
                errors[CONF_LAB_FILE] = "lab_file_missing"
            else:
                return self.async_create_entry(data={**user_input, CONF_LAB_FILE: path})
        count = selector.NumberSelector(
            selector.NumberSelectorConfig(min=0, mode=selector.NumberSelectorMode.BOX)
        )
        schema = vol.Schema(
            {
                vol.Optional(CONF_LAB_FILE): selector.TextSelector(),
                vol.Required(CONF_MAX_PARALLEL_ON): count,
                vol.Required(CONF_UNIT_PARALLEL_ON): count,
                vol.Required(CONF_ON_SPACING): _SECONDS,
                vol.Required(CONF_REFUSE_ON_BATTERY): selector.BooleanSelector(),
                vol.Required(CONF_NOTIFY_ON_BATTERY): selector.BooleanSelector(),
                vol.Required(CONF_SHED_ON_BATTERY): selector.BooleanSelector(),
                vol.Required(CONF_SHUTDOWN_ON_LOW_BATTERY): selector.BooleanSelector(),
                vol.Optional(CONF_UPS_ENTITIES): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain="sensor", multiple=True)
                ),
            }
        )
        values = {
            **LAB_OPTION_DEFAULTS,
            **self.config_entry.options,
            **(user_input or {}),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, values),
            errors=errors,
        )


class ResourceSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a resource: what switches it, how it is checked, its policy."""

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._data: dict[str, Any] = {}
        self._reconfiguring = False
        # What the details form's messages name: a dependency cycle, a feed in use.
        self._placeholders = {"cycle": "", "feed": "", "owner": "", "lab": ""}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Name the resource and choose its switcher and checker."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name = user_input.get(
                CONF_RESOURCE_NAME, self._data.get(CONF_RESOURCE_NAME, "")
            )
            name = name.strip()
            if not self._reconfiguring:
                if not name:
                    errors[CONF_RESOURCE_NAME] = "name_empty"
                elif name.casefold() in self._names_in_use():
                    errors[CONF_RESOURCE_NAME] = "name_exists"
            if user_input[CONF_SWITCHER] == SWITCHER_WOL and (
                user_input[CONF_CHECKER] == CHECKER_NONE
            ):
                errors[CONF_CHECKER] = "wol_needs_check"
            if user_input[CONF_SWITCHER] == SWITCHER_BMC and not any(
                sub.subentry_type == SUBENTRY_BMC
                for sub in self._get_entry().subentries.values()
            ):
                errors[CONF_SWITCHER] = "no_bmc"
            if user_input[CONF_SWITCHER] == SWITCHER_PDU and not self._outlet_options():
                errors[CONF_SWITCHER] = "no_pdu"
            if not errors:
                self._data.update(user_input)
                self._data[CONF_RESOURCE_NAME] = name
                return await self.async_step_details()
        fields: dict[vol.Marker, Any] = {}
        if not self._reconfiguring:
            fields[vol.Required(CONF_RESOURCE_NAME)] = selector.TextSelector()
        fields[vol.Required(CONF_SWITCHER, default=SWITCHER_ENTITY)] = _choice(
            SWITCHER_TYPES, CONF_SWITCHER
        )
        fields[vol.Required(CONF_CHECKER, default=CHECKER_TYPES[0])] = _choice(
            CHECKER_TYPES, CONF_CHECKER
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input or self._data
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a resource; its name (and so its tokens) stays."""
        self._reconfiguring = True
        self._data = dict(self._get_reconfigure_subentry().data)
        return await self.async_step_user()

    async def async_step_details(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Entities, address and policy, depending on the choices made."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._validate(user_input)
            if not errors:
                data = {
                    CONF_RESOURCE_NAME: self._data[CONF_RESOURCE_NAME],
                    CONF_SWITCHER: self._data[CONF_SWITCHER],
                    CONF_CHECKER: self._data[CONF_CHECKER],
                    **user_input,
                }
                if self._reconfiguring:
                    entry = self._get_entry()
                    if entry.state is ConfigEntryState.LOADED:
                        runtime = entry.runtime_data
                        # A reconfigured machine may have been reinstalled: pin its SSH
                        # host key afresh on the next shutdown.
                        runtime.host_keys.pop(data[CONF_RESOURCE_NAME], None)
                        # Reconfiguring is a person looking at it: labpower switches
                        # it again if it had stopped.
                        runtime.lab.resume(data[CONF_RESOURCE_NAME], "reconfigured")
                    return self.async_update_and_abort(
                        entry, self._get_reconfigure_subentry(), data=data
                    )
                return self.async_create_entry(
                    title=data[CONF_RESOURCE_NAME],
                    data=data,
                    unique_id=data[CONF_RESOURCE_NAME],
                )
        defaults = {
            CONF_WOL_ADDRESS: "255.255.255.255",
            CONF_WOL_PORT: 9,
            CONF_SSH_PORT: 22,
            CONF_SSH_COMMAND: DEFAULT_COMMAND,
            CONF_SHORT_PRESS: DEFAULT_SHORT_PRESS,
            CONF_LONG_PRESS: DEFAULT_LONG_PRESS,
            CONF_OFF_DELAY: _POLICY_DEFAULTS.off_delay,
            CONF_MIN_OFF_TIME: _POLICY_DEFAULTS.min_off_time,
            CONF_START_TIMEOUT: _POLICY_DEFAULTS.start_timeout,
            CONF_STOP_TIMEOUT: _POLICY_DEFAULTS.stop_timeout,
            CONF_DEFAULT_TTL: _POLICY_DEFAULTS.default_ttl,
            CONF_MAX_TTL: _POLICY_DEFAULTS.max_ttl,
            CONF_GRACEFUL_OFF: _POLICY_DEFAULTS.graceful_off,
            CONF_OFF_NOW: _POLICY_DEFAULTS.off_now,
            CONF_MAX_TRANSITIONS: _POLICY_DEFAULTS.max_transitions,
            **self._data,
            **(user_input or {}),
        }
        return self.async_show_form(
            step_id="details",
            data_schema=self.add_suggested_values_to_schema(
                self._details_schema(), defaults
            ),
            errors=errors,
            description_placeholders={
                "name": self._data[CONF_RESOURCE_NAME],
                **self._placeholders,
            },
        )

    def _details_schema(self) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {}
        switcher = self._data[CONF_SWITCHER]
        if switcher == SWITCHER_BMC:
            fields[vol.Required(CONF_BMC)] = selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[
                        selector.SelectOptionDict(
                            value=sub.subentry_id, label=sub.title
                        )
                        for sub in self._get_entry().subentries.values()
                        if sub.subentry_type == SUBENTRY_BMC
                    ]
                )
            )
        elif switcher == SWITCHER_PDU:
            fields[vol.Required(CONF_OUTLETS)] = selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=self._outlet_options(),
                    multiple=True,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            )
        elif switcher == SWITCHER_WOL:
            fields[vol.Required(CONF_MAC)] = selector.TextSelector()
            fields[vol.Required(CONF_WOL_ADDRESS)] = selector.TextSelector()
            fields[vol.Required(CONF_WOL_PORT)] = _PORT
            fields[vol.Required(CONF_SSH_HOST)] = selector.TextSelector()
            fields[vol.Required(CONF_SSH_PORT)] = _PORT
            fields[vol.Required(CONF_SSH_USERNAME)] = selector.TextSelector()
            fields[vol.Optional(CONF_SSH_PASSWORD)] = _PASSWORD
            fields[vol.Optional(CONF_SSH_KEY)] = selector.TextSelector(
                selector.TextSelectorConfig(multiline=True)
            )
            fields[vol.Required(CONF_SSH_COMMAND)] = selector.TextSelector()
        elif switcher == SWITCHER_BUTTON:
            fields[vol.Required(CONF_RELAY_ENTITY)] = _entity(RELAY_DOMAINS)
            fields[vol.Required(CONF_LED_ENTITY)] = _entity(["binary_sensor"])
            fields[vol.Optional(CONF_RESET_ENTITY)] = _entity(RELAY_DOMAINS)
            fields[vol.Required(CONF_SHORT_PRESS)] = _SECONDS
            fields[vol.Required(CONF_LONG_PRESS)] = _SECONDS
        else:
            fields[vol.Required(CONF_POWER_ENTITY)] = _entity(SWITCHABLE_DOMAINS)
        checker = self._data[CONF_CHECKER]
        if checker in (CHECKER_ICMP, CHECKER_TCP):
            fields[vol.Required(CONF_HOST)] = selector.TextSelector()
        if checker == CHECKER_TCP:
            fields[vol.Required(CONF_PORT)] = _PORT
        if checker == CHECKER_ENTITY:
            fields[vol.Required(CONF_CHECK_ENTITY)] = _entity(["binary_sensor"])
        for key in _DURATIONS:
            fields[vol.Required(key)] = _SECONDS
        fields[vol.Required(CONF_GRACEFUL_OFF)] = selector.BooleanSelector()
        fields[vol.Optional(CONF_OFF_NOW, default=_POLICY_DEFAULTS.off_now)] = (
            selector.BooleanSelector()
        )
        fields[vol.Optional(CONF_MAX_TRANSITIONS)] = selector.NumberSelector(
            selector.NumberSelectorConfig(mode=selector.NumberSelectorMode.BOX, step=1)
        )
        if others := self._other_resources():
            fields[vol.Optional(CONF_DEPENDS_ON)] = selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=sorted(others),
                    multiple=True,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            )
        fields[vol.Optional(CONF_LABELS)] = selector.TextSelector(
            selector.TextSelectorConfig(multiple=True)
        )
        fields[vol.Optional(CONF_METER_ENTITY)] = selector.EntitySelector(
            selector.EntitySelectorConfig(
                domain="sensor", device_class=["energy", "power"]
            )
        )
        fields[vol.Optional(CONF_POWER_W)] = selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0, mode=selector.NumberSelectorMode.BOX, unit_of_measurement="W"
            )
        )
        return vol.Schema(fields)

    def _other_resources(self) -> dict[str, list[str]]:
        """The lab's other resources and what each depends on."""
        return {
            sub.data[CONF_RESOURCE_NAME]: list(sub.data.get(CONF_DEPENDS_ON, ()))
            for sub in self._get_entry().subentries.values()
            if sub.subentry_type == SUBENTRY_RESOURCE
            and sub.data[CONF_RESOURCE_NAME] != self._data[CONF_RESOURCE_NAME]
        }

    def _cycle(self, depends_on: list[str]) -> list[str] | None:
        """The dependency cycle this resource's parents would close, if any."""
        graph = self._other_resources()
        graph[self._data[CONF_RESOURCE_NAME]] = depends_on
        return find_cycle(graph)

    def _outlet_options(self) -> list[str]:
        """The outlets of the lab's PDU units ("unit:N") no other resource uses."""
        entry = self._get_entry()
        used = self._feed_owners()
        return [
            option
            for sub in entry.subentries.values()
            if sub.subentry_type == SUBENTRY_PDU
            for outlet in range(1, int(sub.data.get(CONF_OUTLET_COUNT) or 0) + 1)
            if outlet_target(option := f"{sub.title}:{outlet}", entry.entry_id)
            not in used
        ]

    def _feed_owners(self) -> dict[FeedTarget, FeedUse]:
        """Who uses each feed target, in every lab, except this resource."""
        return feed_owners(
            self.hass,
            lab=self._get_entry().entry_id,
            resource=self._data.get(CONF_RESOURCE_NAME, ""),
        )

    def _check_feeds(
        self, user_input: Mapping[str, Any], errors: dict[str, str]
    ) -> None:
        """One feed, one owner: refuse an entity, outlet, BMC or MAC another one uses."""
        entry = self._get_entry()
        owners = self._feed_owners()
        data = {CONF_SWITCHER: self._data[CONF_SWITCHER], **user_input}
        for key, target in feed_targets(
            data, scope=entry.entry_id, bmc_names=bmc_names(entry)
        ):
            if (owner := owners.get(target)) is None or key in errors:
                continue
            same_lab = owner.lab == entry.entry_id
            errors[key] = "feed_in_use" if same_lab else "feed_in_use_other_lab"
            self._placeholders.update(
                feed=str(target), owner=owner.resource, lab=owner.title
            )

    def _validate(self, user_input: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if CONF_OUTLETS in user_input and not user_input[CONF_OUTLETS]:
            errors[CONF_OUTLETS] = "no_outlets"
        if cycle := self._cycle(list(user_input.get(CONF_DEPENDS_ON, ()))):
            errors[CONF_DEPENDS_ON] = "dependency_cycle"
            self._placeholders["cycle"] = " -> ".join(cycle)
        for key in (
            CONF_POWER_ENTITY,
            CONF_RELAY_ENTITY,
            CONF_LED_ENTITY,
            CONF_RESET_ENTITY,
            CONF_CHECK_ENTITY,
            CONF_METER_ENTITY,
        ):
            entity_id = user_input.get(key)
            if entity_id and self.hass.states.get(entity_id) is None:
                errors[key] = "entity_not_found"
        for key in (CONF_HOST, CONF_SSH_HOST, CONF_WOL_ADDRESS):
            if key in user_input and not str(user_input[key]).strip():
                errors[key] = "host_empty"
        if CONF_MAC in user_input:
            try:
                magic_packet(user_input[CONF_MAC])
            except ValueError:
                errors[CONF_MAC] = "invalid_mac"
        if CONF_SSH_USERNAME in user_input and not (
            user_input.get(CONF_SSH_PASSWORD) or user_input.get(CONF_SSH_KEY)
        ):
            errors[CONF_SSH_PASSWORD] = "ssh_credentials"
        if user_input.get(CONF_MAX_TRANSITIONS, 2) < 2:
            errors[CONF_MAX_TRANSITIONS] = "transitions_too_few"
        self._check_feeds(user_input, errors)
        for key in (*_DURATIONS, CONF_SHORT_PRESS, CONF_LONG_PRESS):
            if key in user_input and user_input[key] < 0:
                errors[key] = "negative"
        for key in (CONF_DEFAULT_TTL, CONF_MAX_TTL):
            if not errors.get(key) and user_input[key] == 0:
                errors[key] = "ttl_zero"
        if not errors and user_input[CONF_MAX_TTL] < user_input[CONF_DEFAULT_TTL]:
            errors[CONF_MAX_TTL] = "max_ttl_below_default"
        return errors

    def _names_in_use(self) -> set[str]:
        # Actions address resources by name, so names are unique across all labs.
        names = {
            subentry.data[CONF_RESOURCE_NAME].casefold()
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            for subentry in entry.subentries.values()
            if subentry.subentry_type == SUBENTRY_RESOURCE
        }
        # ... and those lab files define
        names.update(
            name.casefold()
            for entry in self.hass.config_entries.async_loaded_entries(DOMAIN)
            for name in entry.runtime_data.lab.names
        )
        return names


def _choice(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.LIST
        )
    )


def _entity(domains: list[str]) -> selector.EntitySelector:
    return selector.EntitySelector(selector.EntitySelectorConfig(domain=domains))


class BmcSubentryFlow(ConfigSubentryFlow):
    """Add or change a BMC (IPMI or Redfish); it is tested before it is saved."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Name, protocol, address and credentials."""
        return await self._form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """New address or credentials (after a password change: the repair issue's fix)."""
        return await self._form(
            "reconfigure", user_input, self._get_reconfigure_subentry()
        )

    async def _form(
        self,
        step_id: str,
        user_input: dict[str, Any] | None,
        subentry: ConfigSubentry | None,
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**(subentry.data if subentry else {}), **user_input}
            name = str(data[CONF_BMC_NAME]).strip()
            taken = {
                sub.title.casefold()
                for sub in self._get_entry().subentries.values()
                if sub.subentry_type == SUBENTRY_BMC and sub is not subentry
            }
            if not name:
                errors[CONF_BMC_NAME] = "name_empty"
            elif name.casefold() in taken:
                errors[CONF_BMC_NAME] = "name_exists"
            elif error := await async_check_bmc(self.hass, data):
                errors["base"] = error
            else:
                data[CONF_BMC_NAME] = name
                if subentry is not None:
                    return self.async_update_and_abort(
                        self._get_entry(), subentry, title=name, data=data
                    )
                return self.async_create_entry(title=name, data=data)
        schema = vol.Schema(
            {
                vol.Required(CONF_BMC_NAME): selector.TextSelector(),
                vol.Required(CONF_PROTOCOL, default=BMC_IPMI): _choice(
                    BMC_PROTOCOLS, CONF_PROTOCOL
                ),
                vol.Required(CONF_HOST): selector.TextSelector(),
                vol.Optional(CONF_PORT): _PORT,
                vol.Required(CONF_USERNAME): selector.TextSelector(),
                vol.Required(CONF_PASSWORD): _PASSWORD,
                vol.Required(CONF_CIPHER_SUITE, default=3): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=0, max=17, mode=selector.NumberSelectorMode.BOX
                    )
                ),
                vol.Required(CONF_VERIFY_SSL, default=True): selector.BooleanSelector(),
                vol.Required(CONF_BMC_AUTH, default="basic"): _choice(
                    ["basic", "session"], CONF_BMC_AUTH
                ),
            }
        )
        suggested = dict(user_input or (subentry.data if subentry else {}))
        suggested.pop(CONF_PASSWORD, None)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )


_SECRETS = (
    CONF_PASSWORD,
    CONF_WRITE_PASSWORD,
    CONF_COMMUNITY,
    CONF_WRITE_COMMUNITY,
    CONF_AUTH_KEY,
    CONF_PRIV_KEY,
)


class PduSubentryFlow(ConfigSubentryFlow):
    """Add or change a PDU unit; it is read before it is saved."""

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._data: dict[str, Any] = {}
        self._subentry: ConfigSubentry | None = None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Name, vendor and address."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name = str(user_input.get(CONF_UNIT_NAME, self._data.get(CONF_UNIT_NAME)))
            name = name.strip()
            entry = self._get_entry()
            taken = {
                sub.title.casefold()
                for sub in entry.subentries.values()
                if sub.subentry_type == SUBENTRY_PDU and sub is not self._subentry
            }
            if entry.state is ConfigEntryState.LOADED and self._subentry is None:
                taken.update(unit.casefold() for unit in entry.runtime_data.units)
            if not name:
                errors[CONF_UNIT_NAME] = "name_empty"
            elif ":" in name:
                errors[CONF_UNIT_NAME] = "name_colon"
            elif name.casefold() in taken:
                errors[CONF_UNIT_NAME] = "name_exists"
            elif not str(user_input[CONF_HOST]).strip():
                errors[CONF_HOST] = "host_empty"
            else:
                if user_input[CONF_VENDOR] != self._data.get(CONF_VENDOR):
                    for key in (*SNMP_FIELDS, CONF_USERNAME, *_SECRETS):
                        self._data.pop(key, None)
                self._data.update(user_input)
                self._data[CONF_UNIT_NAME] = name
                return await self.async_step_connection()
        fields: dict[vol.Marker, Any] = {}
        if self._subentry is None:
            fields[vol.Required(CONF_UNIT_NAME)] = selector.TextSelector()
        fields[vol.Required(CONF_VENDOR, default=PDU_VENDORS[0])] = _choice(
            PDU_VENDORS, CONF_VENDOR
        )
        fields[vol.Required(CONF_HOST)] = selector.TextSelector()
        fields[vol.Optional(CONF_PORT)] = _PORT
        fields[vol.Optional(CONF_UPS_ENTITY)] = selector.EntitySelector(
            selector.EntitySelectorConfig(domain="sensor")
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input or self._data
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """New address or credentials (after a password change: the repair's fix)."""
        self._subentry = self._get_reconfigure_subentry()
        self._data = dict(self._subentry.data)
        return await self.async_step_user()

    async def async_step_connection(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Credentials (or SNMP settings); the unit is read before saving."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**self._data, **user_input}
            error, status = await async_check_pdu(self.hass, data)
            if error is not None or status is None:
                errors["base"] = error or "cannot_connect"
            else:
                data[CONF_OUTLET_COUNT] = len(status.outlets)
                title = data[CONF_UNIT_NAME]
                if self._subentry is not None:
                    return self.async_update_and_abort(
                        self._get_entry(), self._subentry, title=title, data=data
                    )
                return self.async_create_entry(title=title, data=data)
        fields: dict[vol.Marker, Any] = {}
        vendor = self._data[CONF_VENDOR]
        if vendor == VENDOR_SNMP:
            fields[vol.Required(CONF_SNMP_VERSION, default="2c")] = _choice(
                SNMP_VERSIONS, CONF_SNMP_VERSION
            )
            fields[vol.Optional(CONF_COMMUNITY)] = _PASSWORD
            fields[vol.Optional(CONF_WRITE_COMMUNITY)] = _PASSWORD
            fields[vol.Optional(CONF_USERNAME)] = selector.TextSelector()
            fields[vol.Optional(CONF_AUTH_PROTOCOL)] = _choice(
                ["none", "md5", "sha"], CONF_AUTH_PROTOCOL
            )
            fields[vol.Optional(CONF_AUTH_KEY)] = _PASSWORD
            fields[vol.Optional(CONF_PRIV_PROTOCOL)] = _choice(
                ["none", "des", "aes"], CONF_PRIV_PROTOCOL
            )
            fields[vol.Optional(CONF_PRIV_KEY)] = _PASSWORD
            fields[vol.Required(CONF_SNMP_PROFILE, default=SNMP_AUTOMATIC)] = _choice(
                SNMP_PROFILES, CONF_SNMP_PROFILE
            )
        else:
            fields[vol.Optional(CONF_USERNAME)] = selector.TextSelector()
            fields[vol.Optional(CONF_PASSWORD)] = _PASSWORD
            if vendor == VENDOR_NETIO:
                fields[vol.Optional(CONF_WRITE_USERNAME)] = selector.TextSelector()
                fields[vol.Optional(CONF_WRITE_PASSWORD)] = _PASSWORD
        suggested = {
            k: v for k, v in (user_input or self._data).items() if k not in _SECRETS
        }
        return self.async_show_form(
            step_id="connection",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), suggested
            ),
            errors=errors,
            description_placeholders={"name": self._data[CONF_UNIT_NAME]},
        )
