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
    CONF_BMC,
    CONF_BMC_NAME,
    CONF_CHECK_ENTITY,
    CONF_CHECKER,
    CONF_DEPENDS_ON,
    CONF_LAB_FILE,
    CONF_LAB_NAME,
    CONF_LED_ENTITY,
    CONF_METER_ENTITY,
    CONF_OUTLET_COUNT,
    CONF_OUTLETS,
    CONF_POWER_ENTITY,
    CONF_RELAY_ENTITY,
    CONF_RESET_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SWITCHER,
    CONF_UNIT_NAME,
    CONF_VENDOR,
    DOMAIN,
    SUBENTRY_BMC,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
    SWITCHER_BMC,
    SWITCHER_PDU,
)
from .core.feeds import FeedTarget, FeedUse, feed_targets, outlet_target
from .core.graph import find_cycle
from .feeds import bmc_names, feed_owners
from .runtime import LabpowerConfigEntry
from .schema import (
    BMC_FIELDS,
    CHECKER_FIELDS,
    CHECKER_TYPE,
    CREDENTIAL_KEYS,
    DEPENDS_ON,
    EXTRA_FIELDS,
    LAB_NAME,
    LAB_OPTION_FIELDS,
    POLICY_FIELDS,
    RESOURCE_NAME,
    SWITCHER_FIELDS,
    SWITCHER_TYPE,
    UNIT_FIELDS,
    Field,
    check_types,
    error_key,
    form,
    form_values,
    keep_stored_secrets,
    rule_errors,
    unit_credentials,
    unit_rule_errors,
    validate_fields,
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
        values, errors = validate_fields([LAB_NAME], user_input)
        name = str(values[CONF_LAB_NAME])
        taken = {
            entry.data.get(CONF_LAB_NAME, entry.title).casefold()
            for entry in self._async_current_entries(include_ignore=False)
            if entry.entry_id != renaming
        }
        if errors:
            return name, errors
        if name.casefold() in taken:
            return name, {CONF_LAB_NAME: "name_exists"}
        return name, {}

    def _name_form(
        self, step_id: str, values: dict[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(form([LAB_NAME]), values),
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
            data, errors = validate_fields(LAB_OPTION_FIELDS, user_input)
            path = str(data.get(CONF_LAB_FILE) or "").strip()
            if path and not await self.hass.async_add_executor_job(
                os.path.isfile, self.hass.config.path(path)
            ):
                errors[CONF_LAB_FILE] = "lab_file_missing"
            if not errors:
                return self.async_create_entry(data={**data, CONF_LAB_FILE: path})
        schema = form(LAB_OPTION_FIELDS)
        # The form's markers carry the defaults.
        values = {**self.config_entry.options, **(user_input or {})}
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
            name = self._data.get(CONF_RESOURCE_NAME, "")
            if not self._reconfiguring:
                values, errors = validate_fields([RESOURCE_NAME], user_input)
                name = values[CONF_RESOURCE_NAME]
                if not errors and name.casefold() in self._names_in_use():
                    errors[CONF_RESOURCE_NAME] = "name_exists"
            try:
                check_types(user_input[CONF_SWITCHER], user_input[CONF_CHECKER])
            except vol.Invalid as err:
                errors[CONF_CHECKER] = error_key(err)
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
        fields = [SWITCHER_TYPE, CHECKER_TYPE]
        if not self._reconfiguring:
            fields.insert(0, RESOURCE_NAME)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                form(fields), user_input or self._data
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
            user_input = keep_stored_secrets(
                self._details_fields(), user_input, self._data
            )
            values, errors = self._validate(user_input)
            if not errors:
                data = {
                    CONF_RESOURCE_NAME: self._data[CONF_RESOURCE_NAME],
                    CONF_SWITCHER: self._data[CONF_SWITCHER],
                    CONF_CHECKER: self._data[CONF_CHECKER],
                    **values,
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
        # The form's markers carry the defaults.
        values = form_values(self._data, user_input)
        return self.async_show_form(
            step_id="details",
            data_schema=self.add_suggested_values_to_schema(
                self._details_schema(), values
            ),
            errors=errors,
            description_placeholders={
                "name": self._data[CONF_RESOURCE_NAME],
                **self._placeholders,
            },
        )

    def _details_fields(self) -> list[Field]:
        """The switcher's, the checker's and the policy's fields, in the form's order."""
        extra = [DEPENDS_ON] if self._other_resources() else []
        return [
            *SWITCHER_FIELDS[self._data[CONF_SWITCHER]],
            *CHECKER_FIELDS[self._data[CONF_CHECKER]],
            *POLICY_FIELDS,
            *extra,
            *EXTRA_FIELDS,
        ]

    def _details_schema(self) -> vol.Schema:
        """The form; the BMC, outlet and dependency choices depend on the lab."""
        return form(
            self._details_fields(),
            {
                CONF_BMC: selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[
                            selector.SelectOptionDict(
                                value=sub.subentry_id, label=sub.title
                            )
                            for sub in self._get_entry().get_subentries_of_type(
                                SUBENTRY_BMC
                            )
                        ]
                    )
                ),
                CONF_OUTLETS: _dropdown(self._outlet_options()),
                CONF_DEPENDS_ON: _dropdown(sorted(self._other_resources())),
            },
        )

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

    def _validate(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The values as schema.py reads them, and the form's errors."""
        values, errors = validate_fields(self._details_fields(), user_input)
        if cycle := self._cycle(list(values.get(CONF_DEPENDS_ON, ()))):
            errors.setdefault(CONF_DEPENDS_ON, "dependency_cycle")
            self._placeholders["cycle"] = " -> ".join(cycle)
        for key in (
            CONF_POWER_ENTITY,
            CONF_RELAY_ENTITY,
            CONF_LED_ENTITY,
            CONF_RESET_ENTITY,
            CONF_CHECK_ENTITY,
            CONF_METER_ENTITY,
        ):
            entity_id = values.get(key)
            if entity_id and self.hass.states.get(entity_id) is None:
                errors.setdefault(key, "entity_not_found")
        self._check_feeds(values, errors)
        types = {key: self._data[key] for key in (CONF_SWITCHER, CONF_CHECKER)}
        for err in rule_errors({**types, **values}):
            errors.setdefault(str(err.path[0]), err.key)
        return values, errors

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


def _dropdown(options: list[str]) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, multiple=True, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


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
            data, errors = validate_fields(
                BMC_FIELDS, {**(subentry.data if subentry else {}), **user_input}
            )
            name = str(data[CONF_BMC_NAME])
            taken = {
                sub.title.casefold()
                for sub in self._get_entry().subentries.values()
                if sub.subentry_type == SUBENTRY_BMC and sub is not subentry
            }
            if not errors and name.casefold() in taken:
                errors[CONF_BMC_NAME] = "name_exists"
            elif not errors and (error := await async_check_bmc(self.hass, data)):
                errors["base"] = error
            elif not errors:
                data[CONF_BMC_NAME] = name
                if subentry is not None:
                    return self.async_update_and_abort(
                        self._get_entry(), subentry, title=name, data=data
                    )
                return self.async_create_entry(title=name, data=data)
        schema = form(BMC_FIELDS)
        suggested = form_values(subentry.data if subentry else {}, user_input)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
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
            values, errors = validate_fields(
                UNIT_FIELDS,
                {CONF_UNIT_NAME: self._data.get(CONF_UNIT_NAME), **user_input},
            )
            name = str(values[CONF_UNIT_NAME])
            entry = self._get_entry()
            taken = {
                sub.title.casefold()
                for sub in entry.subentries.values()
                if sub.subentry_type == SUBENTRY_PDU and sub is not self._subentry
            }
            if entry.state is ConfigEntryState.LOADED and self._subentry is None:
                taken.update(unit.casefold() for unit in entry.runtime_data.units)
            if not errors and name.casefold() in taken:
                errors[CONF_UNIT_NAME] = "name_exists"
            if not errors:
                if values[CONF_VENDOR] != self._data.get(CONF_VENDOR):
                    for key in CREDENTIAL_KEYS:
                        self._data.pop(key, None)
                self._data.update(values)
                return await self.async_step_connection()
        fields = [
            field
            for field in UNIT_FIELDS
            if field.key != CONF_UNIT_NAME or self._subentry is None
        ]
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                form(fields), user_input or self._data
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
            values, errors = validate_fields(
                unit_credentials(self._data[CONF_VENDOR]), user_input
            )
            data = {**self._data, **values}
            for err in unit_rule_errors(data):
                errors.setdefault(str(err.path[0]), err.key)
            # A refused setting is not tried on the unit.
            if not errors:
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
        suggested = form_values(self._data, user_input)
        return self.async_show_form(
            step_id="connection",
            data_schema=self.add_suggested_values_to_schema(
                form(unit_credentials(self._data[CONF_VENDOR])), suggested
            ),
            errors=errors,
            description_placeholders={"name": self._data[CONF_UNIT_NAME]},
        )
