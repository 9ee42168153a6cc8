"""Every field once: its validator, default, selector, secret flag and translation key.

The config flows build their forms from these fields and validate with them, the lab
file validates its entries with the same schemas, the builders take their defaults from
here, diagnostics redacts by the secret flags, and the actions and the REST API validate
acquire, renew and release with the same rules (strict: a boolean or a string is not a
number).

A validator that refuses a value raises FieldInvalid: `key` is the translation key of
the form error (config.error.<key> in strings.json), the message is English for the lab
file, the actions and the REST API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
import math
import re
from typing import Any, Final, cast

from homeassistant.helpers import config_validation as cv, selector
from homeassistant.util import dt as dt_util
import probatio as vol

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
    CONF_ENERGY_PRICE,
    CONF_EXPIRING_WARNING,
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
    CONF_NOTIFY_AVAILABLE,
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
    CONF_TOKEN_LIMIT,
    CONF_UI_HOLD_EXCLUSIVE,
    CONF_UI_HOLD_MAX,
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
    PDU_VENDORS,
    RELAY_DOMAINS,
    SNMP_AUTOMATIC,
    SNMP_VERSIONS,
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
from .core.feeds import normalise_mac
from .core.model import ResourcePolicy, TokenKind
from .core.text import amount, duration
from .drivers.snmp_profiles import SNMP_PROFILES
from .drivers.ssh import DEFAULT_COMMAND, import_client_key

# Bounds of the acquire/renew/release rules.
MAX_TEXT: Final = 255  # a holder, a name, a token id, a label
MAX_POOL: Final = 1000  # resources one pool acquire may take
MAX_WAIT: Final = 86400.0  # seconds an acquire may wait for `available`
DEFAULT_WAIT: Final = 600.0
MIN_TTL: Final = 1.0
# A year: longer leases are holds. Also the bound of every configured duration.
MAX_SECONDS: Final = 365 * 86400.0
MAX_TRANSITIONS_BOUND: Final = 1000
MAX_PARALLEL_BOUND: Final = 10000
# Live tokens per non-administrator user and lab (the `token_limit` lab option).
DEFAULT_TOKEN_LIMIT: Final = 100
MAX_TOKEN_LIMIT: Final = 1_000_000
# Holds taken from the UI end after this (0: never); reminders come this long before.
DEFAULT_UI_HOLD_MAX: Final = 12 * 3600.0
DEFAULT_EXPIRING_WARNING: Final = 600.0

ATTR_RESOURCE: Final = "resource"
ATTR_HOLDER: Final = "holder"
ATTR_TTL: Final = "ttl"
ATTR_KIND: Final = "kind"
ATTR_WAIT: Final = "wait"
ATTR_TIMEOUT: Final = "timeout"
ATTR_TOKEN: Final = "token"
ATTR_LABELS: Final = "labels"
ATTR_COUNT: Final = "count"
ATTR_LAB: Final = "lab"
ATTR_POWER_OFF: Final = "power_off"
ATTR_EXCLUSIVE: Final = "exclusive"
ATTR_QUEUE: Final = "queue"
ATTR_TICKET: Final = "ticket"
POWER_OFF_NOW: Final = "now"
WAIT_NONE: Final = "none"
WAIT_AVAILABLE: Final = "available"
# Wait in the queue for the turn (see core/queue.py), then until available.
WAIT_QUEUE: Final = "queue"
KINDS: Final = tuple(kind.value for kind in TokenKind)

# C0 and C1 control characters and DEL: never in a holder (they forge log lines).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_OUTLET = re.compile(r"\s*(.*\S)\s*:\s*([0-9]+)\s*")

POLICY_DEFAULTS: Final = ResourcePolicy()


class FieldInvalid(vol.Invalid):
    """A refused value; `key` is the form error's translation key."""

    def __init__(self, key: str, message: str, path: list[Any] | None = None) -> None:
        """Keep the translation key with the message."""
        super().__init__(message, path=path)
        self.key = key


class RuleInvalid(FieldInvalid):
    """A rule between fields was broken: its message names the fields itself."""


def error_key(err: vol.Invalid, fallback: str = "invalid") -> str:
    """The form error key of a refusal (HA's own validators have none: `fallback`)."""
    return getattr(err, "key", fallback)


# Validators


def _shown(value: Any) -> str:
    """A refused value, as its message names it: short, text quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and _finite(value):
        shown = amount(value)
    elif isinstance(value, str):
        shown = repr(str(value))
    else:
        shown = {list: "a list", dict: "a mapping", type(None): "null"}.get(
            type(value), repr(value)
        )
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _finite(value: float) -> bool:
    """Whether a number is finite (an int too large for a float is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def text(value: Any) -> str:
    """A non-blank string, stripped (a number from YAML is taken as its text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldInvalid("not_text", f"expected text, not {_shown(value)}")
    result = str(value).strip()
    if not result:
        raise FieldInvalid("empty", "cannot be empty")
    return result


def opaque(value: Any) -> str:
    """A string taken as written (passwords, keys, commands); blank is allowed."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldInvalid("not_text", f"expected text, not {_shown(value)}")
    return str(value)


def name(value: Any) -> str:
    """A name: non-blank text of at most 255 characters without control characters."""
    try:
        result = text(value)
    except FieldInvalid as err:
        raise FieldInvalid("name_empty", str(err.msg)) from None
    if len(result) > MAX_TEXT or _CONTROL.search(result):
        raise FieldInvalid(
            "name_invalid",
            f"a name is at most {MAX_TEXT} characters, without control characters, "
            f"not {_shown(result)}",
        )
    return result


def unit_name(value: Any) -> str:
    """A PDU unit's name: a name without ':' (outlets are written unit:number)."""
    result = name(value)
    if ":" in result:
        raise FieldInvalid(
            "name_colon", f"a unit's name cannot contain ':', not {_shown(result)}"
        )
    return result


def host(value: Any) -> str:
    """A host name or address: non-blank."""
    try:
        return text(value)
    except FieldInvalid:
        raise FieldInvalid("host_empty", "a host cannot be empty") from None


def _number(value: Any, *, whole: bool) -> float:
    """A finite number (numeric text from a form or a file is read); never a boolean."""
    given = value
    if isinstance(value, str):
        try:
            value = int(value.strip()) if whole else float(value)
        except ValueError:
            kind = "whole number" if whole else "number"
            raise FieldInvalid(
                "not_number", f"expected a {kind}, not {_shown(given)}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldInvalid("not_number", f"expected a number, not {_shown(given)}")
    if not _finite(value):
        raise FieldInvalid(
            "not_number", f"expected a finite number, not {_shown(given)}"
        )
    if whole and value != int(value):
        raise FieldInvalid("not_whole", f"expected a whole number, not {_shown(given)}")
    return value


def whole(low: int, high: int, key: str = "out_of_range") -> Callable[[Any], int]:
    """A whole number from low to high (22.0 from a number box is 22)."""

    def validate(value: Any) -> int:
        number = int(_number(value, whole=True))
        if not low <= number <= high:
            raise FieldInvalid(key, f"must be from {low} to {high}, not {number}")
        return number

    return validate


def seconds(*, positive: bool = False) -> Callable[[Any], float]:
    """A duration in seconds: 0 (or, `positive`, more) up to a year."""

    def validate(value: Any) -> float:
        number = float(_number(value, whole=False))
        if number < 0:
            raise FieldInvalid("negative", f"must be 0 or more, not {amount(number)}")
        if positive and number == 0:
            raise FieldInvalid("ttl_zero", "must be more than 0")
        if number > MAX_SECONDS:
            raise FieldInvalid(
                "too_long",
                f"must be at most {duration(MAX_SECONDS)}, not {amount(number)}",
            )
        return number

    return validate


def _not_negative(value: Any) -> float:
    number = float(_number(value, whole=False))
    if number < 0:
        raise FieldInvalid("negative", f"must be 0 or more, not {amount(number)}")
    return number


def watts(value: Any) -> float:
    """A nominal power draw in W, 0 or more."""
    return _not_negative(value)


def price(value: Any) -> float:
    """A price per kWh, 0 or more."""
    return _not_negative(value)


def boolean(value: Any) -> bool:
    """A boolean, nothing else (not "yes", not 1)."""
    if not isinstance(value, bool):
        raise FieldInvalid(
            "not_boolean", f"expected true or false, not {_shown(value)}"
        )
    return value


def one_of(choices: Iterable[str]) -> Callable[[Any], str]:
    """One of a fixed set of words."""
    allowed = tuple(choices)

    def validate(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise FieldInvalid(
                "invalid_choice",
                f"expected one of {', '.join(allowed)}, not {_shown(value)}",
            )
        return value

    return validate


def entity_id(value: Any) -> str:
    """An entity id (switch.relay_1)."""
    try:
        return str(cv.entity_id(value))
    except vol.Invalid:
        raise FieldInvalid(
            "entity_invalid", f"expected an entity id (switch.a), not {_shown(value)}"
        ) from None


def entity_ids(value: Any) -> list[str]:
    """A list of entity ids (one is a list of one)."""
    return [entity_id(item) for item in _items(value)]


def mac(value: Any) -> str:
    """A MAC address in a usual form (aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff)."""
    if not isinstance(value, str) or normalise_mac(value) is None:
        raise FieldInvalid(
            "invalid_mac",
            f"expected a MAC address (aa:bb:cc:dd:ee:ff), not {_shown(value)}",
        )
    return value.strip()


def ssh_key(value: Any) -> str:
    """An SSH private key's text, or blank for none; a key SSH cannot use is refused."""
    result = opaque(value)
    if result.strip():
        try:
            import_client_key(result)
        except ValueError:
            raise FieldInvalid(
                "invalid_ssh_key",
                "not a usable SSH private key (OpenSSH or PEM format, unencrypted)",
            ) from None
    return result


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def names(value: Any) -> list[str]:
    """A list of names (one name is a list of one), duplicates dropped."""
    return list(dict.fromkeys(name(item) for item in _items(value)))


def outlets(value: Any) -> list[str]:
    """PDU outlets as unit:number ("pdu1:3"), at least one, each once."""
    found: list[str] = []
    for item in _items(value):
        match = _OUTLET.fullmatch(item) if isinstance(item, str) else None
        if match is None or int(match[2]) < 1:
            raise FieldInvalid("outlet_invalid", f"outlet '{item}' is not unit:number")
        found.append(f"{match[1]}:{int(match[2])}")
    if not found:
        raise FieldInvalid("no_outlets", "at least one outlet is needed")
    if len(set(found)) != len(found):
        raise FieldInvalid("outlet_twice", "an outlet is given twice")
    return found


# Fields


@dataclass(frozen=True, slots=True)
class Field:
    """One configuration field.

    `validator` checks a stored value (from a form or the lab file); `default` is
    vol.UNDEFINED where there is none; `selector` is the form's (None: the flow builds
    it, its options depend on the lab); `secret`: a credential, redacted in diagnostics
    and never sent back in a form (see `form_values`); `redact`: redacted in
    diagnostics only (user names). The label's translation key is the field's key.
    """

    key: str
    validator: Callable[[Any], Any]
    selector: selector.Selector[Any] | None = None
    default: Any = vol.UNDEFINED
    required: bool = False
    secret: bool = False
    redact: bool = False

    def marker(self, *, with_default: bool = False) -> vol.Marker:
        """vol.Required or vol.Optional, with the default if asked."""
        kind = vol.Required if self.required else vol.Optional
        if with_default and self.default is not vol.UNDEFINED:
            return kind(self.key, default=self.default)
        return kind(self.key)


def defaults(fields: Iterable[Field]) -> dict[str, Any]:
    """The defaults of these fields (those that have one)."""
    return {f.key: f.default for f in fields if f.default is not vol.UNDEFINED}


def _box(**config: Any) -> selector.NumberSelector:
    return selector.NumberSelector(
        cast(
            "selector.NumberSelectorConfig",
            {"mode": selector.NumberSelectorMode.BOX, **config},
        )
    )


def _entity(domains: list[str], **config: Any) -> selector.EntitySelector:
    return selector.EntitySelector(
        cast("selector.EntitySelectorConfig", {"domain": domains, **config})
    )


def _choice(
    options: Iterable[str],
    key: str,
    mode: selector.SelectSelectorMode = selector.SelectSelectorMode.LIST,
) -> selector.SelectSelector:
    """Radio buttons, or a drop-down where the list is long."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=list(options), translation_key=key, mode=mode
        )
    )


TEXT_SELECTOR: Final = selector.TextSelector()
PASSWORD_SELECTOR: Final = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
PORT_SELECTOR: Final = _box(min=1, max=65535)
SECONDS_SELECTOR: Final = _box(unit_of_measurement="s", step="any")
_PORT: Final = whole(1, 65535)
_LEASE: Final = seconds(positive=True)


def _port(key: str, default: Any = vol.UNDEFINED, *, required: bool = False) -> Field:
    return Field(key, _PORT, PORT_SELECTOR, default=default, required=required)


def _duration(key: str, default: float, validator: Callable[[Any], float]) -> Field:
    return Field(key, validator, SECONDS_SELECTOR, default=default, required=True)


def form(
    fields: Iterable[Field],
    selectors: Mapping[str, selector.Selector[Any]] | None = None,
) -> vol.Schema:
    """A config flow form of these fields: their selectors (or those given), defaults.

    A field without a selector of its own is left out unless `selectors` gives one.
    """
    chosen = selectors or {}
    return vol.Schema(
        {
            field.marker(with_default=True): chosen.get(field.key, field.selector)
            for field in fields
            if field.key in chosen or field.selector is not None
        }
    )


def by_key(fields: Iterable[Field]) -> dict[str, Field]:
    """Fields by key, in order."""
    return {field.key: field for field in fields}


LAB_NAME: Final = Field(CONF_LAB_NAME, name, TEXT_SELECTOR, required=True)

# A resource: its name and type, what its switcher and checker need, its policy.
RESOURCE_NAME: Final = Field(CONF_RESOURCE_NAME, name, TEXT_SELECTOR, required=True)
SWITCHER_TYPE: Final = Field(
    CONF_SWITCHER,
    one_of(SWITCHER_TYPES),
    _choice(SWITCHER_TYPES, CONF_SWITCHER),
    default=SWITCHER_ENTITY,
    required=True,
)
CHECKER_TYPE: Final = Field(
    CONF_CHECKER,
    one_of(CHECKER_TYPES),
    _choice(CHECKER_TYPES, CONF_CHECKER),
    default=CHECKER_NONE,
    required=True,
)
SWITCHER_FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    SWITCHER_ENTITY: (
        Field(
            CONF_POWER_ENTITY,
            entity_id,
            _entity(SWITCHABLE_DOMAINS),
            required=True,
        ),
    ),
    SWITCHER_BUTTON: (
        Field(CONF_RELAY_ENTITY, entity_id, _entity(RELAY_DOMAINS), required=True),
        Field(CONF_LED_ENTITY, entity_id, _entity(["binary_sensor"]), required=True),
        Field(CONF_RESET_ENTITY, entity_id, _entity(RELAY_DOMAINS)),
        _duration(CONF_SHORT_PRESS, DEFAULT_SHORT_PRESS, seconds()),
        _duration(CONF_LONG_PRESS, DEFAULT_LONG_PRESS, seconds()),
    ),
    # The BMC's subentry id in the UI, its name in the lab file: the flow's selector.
    SWITCHER_BMC: (Field(CONF_BMC, text, required=True),),
    SWITCHER_WOL: (
        Field(CONF_MAC, mac, TEXT_SELECTOR, required=True),
        Field(
            CONF_WOL_ADDRESS,
            host,
            TEXT_SELECTOR,
            default="255.255.255.255",
            required=True,
        ),
        _port(CONF_WOL_PORT, 9, required=True),
        Field(CONF_SSH_HOST, host, TEXT_SELECTOR, required=True),
        _port(CONF_SSH_PORT, 22, required=True),
        Field(CONF_SSH_USERNAME, text, TEXT_SELECTOR, required=True, redact=True),
        Field(CONF_SSH_PASSWORD, opaque, PASSWORD_SELECTOR, secret=True),
        Field(
            CONF_SSH_KEY,
            ssh_key,
            selector.TextSelector(selector.TextSelectorConfig(multiline=True)),
            secret=True,
        ),
        Field(
            CONF_SSH_COMMAND,
            text,
            TEXT_SELECTOR,
            default=DEFAULT_COMMAND,
            required=True,
        ),
    ),
    # unit:number of the lab's PDU units: the flow's selector lists the free ones.
    SWITCHER_PDU: (Field(CONF_OUTLETS, outlets, required=True),),
}
CHECKER_FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    CHECKER_NONE: (),
    CHECKER_ICMP: (Field(CONF_HOST, host, TEXT_SELECTOR, required=True),),
    CHECKER_TCP: (
        Field(CONF_HOST, host, TEXT_SELECTOR, required=True),
        # SSH's: what a lab's machines answer on once up (a required number box with no
        # default would show its minimum, 1).
        _port(CONF_PORT, 22, required=True),
    ),
    CHECKER_ENTITY: (
        Field(CONF_CHECK_ENTITY, entity_id, _entity(["binary_sensor"]), required=True),
    ),
}
POLICY_FIELDS: Final = (
    _duration(CONF_OFF_DELAY, POLICY_DEFAULTS.off_delay, seconds()),
    _duration(CONF_MIN_OFF_TIME, POLICY_DEFAULTS.min_off_time, seconds()),
    _duration(CONF_START_TIMEOUT, POLICY_DEFAULTS.start_timeout, seconds()),
    _duration(CONF_STOP_TIMEOUT, POLICY_DEFAULTS.stop_timeout, seconds()),
    _duration(CONF_DEFAULT_TTL, POLICY_DEFAULTS.default_ttl, _LEASE),
    _duration(CONF_MAX_TTL, POLICY_DEFAULTS.max_ttl, _LEASE),
    Field(
        CONF_GRACEFUL_OFF,
        boolean,
        selector.BooleanSelector(),
        default=POLICY_DEFAULTS.graceful_off,
        required=True,
    ),
    Field(
        CONF_OFF_NOW,
        boolean,
        selector.BooleanSelector(),
        default=POLICY_DEFAULTS.off_now,
    ),
    Field(
        CONF_MAX_TRANSITIONS,
        whole(2, MAX_TRANSITIONS_BOUND, "transitions_too_few"),
        _box(step=1),
        default=POLICY_DEFAULTS.max_transitions,
    ),
)
# The resource's other resources: the flow's selector lists them.
DEPENDS_ON: Final = Field(CONF_DEPENDS_ON, names)
EXTRA_FIELDS: Final = (
    Field(
        CONF_LABELS,
        names,
        selector.TextSelector(selector.TextSelectorConfig(multiple=True)),
    ),
    Field(
        CONF_METER_ENTITY,
        entity_id,
        _entity(["sensor"], device_class=["energy", "power"]),
    ),
    Field(CONF_POWER_W, watts, _box(min=0, unit_of_measurement="W")),
)
RESOURCE_COMMON: Final = (
    RESOURCE_NAME,
    SWITCHER_TYPE,
    CHECKER_TYPE,
    *POLICY_FIELDS,
    DEPENDS_ON,
    *EXTRA_FIELDS,
)


def resource_fields(switcher: str, checker: str) -> dict[str, Field]:
    """Every field a resource with this switcher and checker has, by key."""
    return by_key(
        (*RESOURCE_COMMON, *SWITCHER_FIELDS[switcher], *CHECKER_FIELDS[checker])
    )


def _mapping(fields: Iterable[Field]) -> vol.Schema:
    return vol.Schema(
        {field.marker(with_default=True): field.validator for field in fields}
    )


def check_types(switcher: str, checker: str) -> None:
    """A switcher that cannot read the power state needs a checker."""
    if switcher == SWITCHER_WOL and checker == CHECKER_NONE:
        raise RuleInvalid(
            "wol_needs_check",
            "switcher_type wol needs a checker: Wake-on-LAN cannot read the "
            "power state",
            [CONF_CHECKER],
        )


def rule_errors(data: Mapping[str, Any]) -> list[FieldInvalid]:
    """What does not hold between a resource's fields (each with its field's path)."""
    found: list[FieldInvalid] = []
    if data[CONF_MAX_TTL] < data[CONF_DEFAULT_TTL]:
        found.append(
            RuleInvalid(
                "max_ttl_below_default",
                f"max_ttl {duration(data[CONF_MAX_TTL])} is below default_ttl "
                f"{duration(data[CONF_DEFAULT_TTL])}",
                [CONF_MAX_TTL],
            )
        )
    if data[CONF_SWITCHER] == SWITCHER_WOL and not (
        data.get(CONF_SSH_PASSWORD) or data.get(CONF_SSH_KEY)
    ):
        found.append(
            RuleInvalid(
                "ssh_credentials",
                "switcher_type wol needs ssh_password or ssh_key",
                [CONF_SSH_PASSWORD],
            )
        )
    try:
        check_types(data[CONF_SWITCHER], data[CONF_CHECKER])
    except FieldInvalid as err:
        found.append(err)
    return found


def _resource_rules(data: dict[str, Any]) -> dict[str, Any]:
    if found := rule_errors(data):
        raise vol.MultipleInvalid(list(found))
    return data


def _by_checker(switcher: str) -> Callable[[Any], dict[str, Any]]:
    """The schemas of a switcher's resources, discriminated on the checker."""
    return cast(
        "Callable[[Any], dict[str, Any]]",
        cv.key_value_schemas(
            CONF_CHECKER,
            {
                checker: _mapping(resource_fields(switcher, checker).values())
                for checker in CHECKER_TYPES
            },
        ),
    )


# A resource's stored data: a union discriminated on the switcher, then on the checker.
# A field that does not apply to the chosen types is an extra key, and refused.
RESOURCE_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            vol.Optional(CONF_SWITCHER, default=SWITCHER_ENTITY): object,
            vol.Optional(CONF_CHECKER, default=CHECKER_NONE): object,
        },
        extra=vol.ALLOW_EXTRA,
    ),
    cv.key_value_schemas(
        CONF_SWITCHER,
        {switcher: _by_checker(switcher) for switcher in SWITCHER_TYPES},
    ),
    _resource_rules,
)


# A PDU unit: its address, then its credentials (SNMP settings for SNMP units).
UNIT_FIELDS: Final = (
    Field(CONF_UNIT_NAME, unit_name, TEXT_SELECTOR, required=True),
    Field(
        CONF_VENDOR,
        one_of(PDU_VENDORS),
        _choice(PDU_VENDORS, CONF_VENDOR),
        default=PDU_VENDORS[0],
        required=True,
    ),
    Field(CONF_HOST, host, TEXT_SELECTOR, required=True),
    _port(CONF_PORT),
    Field(CONF_UPS_ENTITY, entity_id, _entity(["sensor"])),
    # Read from the unit when the flow checks it; a lab file may state it.
    Field(CONF_OUTLET_COUNT, whole(1, 1000)),
)
_USERNAME: Final = Field(CONF_USERNAME, opaque, TEXT_SELECTOR, redact=True)
_PASSWORD: Final = Field(CONF_PASSWORD, opaque, PASSWORD_SELECTOR, secret=True)
UNIT_CREDENTIALS: Final[dict[str, tuple[Field, ...]]] = {
    VENDOR_SNMP: (
        Field(
            CONF_SNMP_VERSION,
            one_of(SNMP_VERSIONS),
            _choice(SNMP_VERSIONS, CONF_SNMP_VERSION),
            default="2c",
            required=True,
        ),
        Field(CONF_COMMUNITY, opaque, PASSWORD_SELECTOR, secret=True),
        Field(CONF_WRITE_COMMUNITY, opaque, PASSWORD_SELECTOR, secret=True),
        _USERNAME,
        Field(
            CONF_AUTH_PROTOCOL,
            one_of(["none", "md5", "sha"]),
            _choice(["none", "md5", "sha"], CONF_AUTH_PROTOCOL),
        ),
        Field(CONF_AUTH_KEY, opaque, PASSWORD_SELECTOR, secret=True),
        Field(
            CONF_PRIV_PROTOCOL,
            one_of(["none", "des", "aes"]),
            _choice(["none", "des", "aes"], CONF_PRIV_PROTOCOL),
        ),
        Field(CONF_PRIV_KEY, opaque, PASSWORD_SELECTOR, secret=True),
        Field(
            CONF_SNMP_PROFILE,
            one_of(SNMP_PROFILES),
            _choice(
                SNMP_PROFILES, CONF_SNMP_PROFILE, selector.SelectSelectorMode.DROPDOWN
            ),
            default=SNMP_AUTOMATIC,
            required=True,
        ),
    ),
    VENDOR_NETIO: (
        _USERNAME,
        _PASSWORD,
        Field(CONF_WRITE_USERNAME, opaque, TEXT_SELECTOR, redact=True),
        Field(CONF_WRITE_PASSWORD, opaque, PASSWORD_SELECTOR, secret=True),
    ),
}
_PLAIN_CREDENTIALS: Final = (_USERNAME, _PASSWORD)


def unit_credentials(vendor: str) -> tuple[Field, ...]:
    """The connection fields of a unit of this vendor."""
    return UNIT_CREDENTIALS.get(vendor, _PLAIN_CREDENTIALS)


def unit_rule_errors(data: Mapping[str, Any]) -> list[FieldInvalid]:
    """What does not hold between an SNMP unit's settings (community or v3 user)."""
    found: list[FieldInvalid] = []
    if data.get(CONF_VENDOR) != VENDOR_SNMP:
        return found
    version = data[CONF_SNMP_VERSION]
    if version != "3":
        found += [
            RuleInvalid("snmp_v3_only", f"{key} applies only to SNMP version 3", [key])
            for key in _SNMP_V3_KEYS
            if key in data
        ]
        if not data.get(CONF_COMMUNITY):
            found.append(
                RuleInvalid(
                    "snmp_community",
                    f"SNMP version {version} needs community",
                    [CONF_COMMUNITY],
                )
            )
        return found
    if not data.get(CONF_USERNAME):
        found.append(
            RuleInvalid(
                "snmp_username", "SNMP version 3 needs username", [CONF_USERNAME]
            )
        )
    used = {key for key in _SNMP_V3_KEYS if data.get(key) not in (None, "", "none")}
    for protocol, key in _SNMP_V3_KEYS[:2], _SNMP_V3_KEYS[2:]:
        if (protocol in used) != (key in used):
            found.append(
                RuleInvalid(
                    "snmp_pair", f"{protocol} and {key} go together", [protocol]
                )
            )
    if CONF_PRIV_PROTOCOL in used and CONF_AUTH_PROTOCOL not in used:
        found.append(
            RuleInvalid(
                "snmp_priv_needs_auth",
                "priv_protocol needs auth_protocol as well",
                [CONF_PRIV_PROTOCOL],
            )
        )
    return found


_SNMP_V3_KEYS: Final = (
    CONF_AUTH_PROTOCOL,
    CONF_AUTH_KEY,
    CONF_PRIV_PROTOCOL,
    CONF_PRIV_KEY,
)


def _unit_rules(data: dict[str, Any]) -> dict[str, Any]:
    if found := unit_rule_errors(data):
        raise vol.MultipleInvalid(list(found))
    return data


# A unit's stored data: a union discriminated on the vendor.
UNIT_SCHEMA: Final = vol.All(
    cv.key_value_schemas(
        CONF_VENDOR,
        {
            vendor: _mapping((*UNIT_FIELDS, *unit_credentials(vendor)))
            for vendor in PDU_VENDORS
        },
    ),
    _unit_rules,
)

# A BMC (IPMI or Redfish); tested before it is saved.
BMC_FIELDS: Final = (
    Field(CONF_BMC_NAME, name, TEXT_SELECTOR, required=True),
    Field(
        CONF_PROTOCOL,
        one_of(BMC_PROTOCOLS),
        _choice(BMC_PROTOCOLS, CONF_PROTOCOL),
        default=BMC_IPMI,
        required=True,
    ),
    Field(CONF_HOST, host, TEXT_SELECTOR, required=True),
    _port(CONF_PORT),
    Field(CONF_USERNAME, opaque, TEXT_SELECTOR, required=True, redact=True),
    Field(CONF_PASSWORD, opaque, PASSWORD_SELECTOR, required=True, secret=True),
    Field(
        CONF_CIPHER_SUITE, whole(0, 17), _box(min=0, max=17), default=3, required=True
    ),
    Field(
        CONF_VERIFY_SSL,
        boolean,
        selector.BooleanSelector(),
        default=True,
        required=True,
    ),
    Field(
        CONF_BMC_AUTH,
        one_of(["basic", "session"]),
        _choice(["basic", "session"], CONF_BMC_AUTH),
        default="basic",
        required=True,
    ),
)
BMC_SCHEMA: Final = _mapping(BMC_FIELDS)

# Lab-wide settings: the Lab entry's options; a lab file's `policies:` sets them too.
# 0 parallel power-ons means no limit.
_COUNT_SELECTOR: Final = _box(min=0)
_POWER_ON_FIELDS: Final = (
    Field(
        CONF_MAX_PARALLEL_ON,
        whole(0, MAX_PARALLEL_BOUND),
        _COUNT_SELECTOR,
        default=0,
        required=True,
    ),
    Field(
        CONF_UNIT_PARALLEL_ON,
        whole(0, MAX_PARALLEL_BOUND),
        _COUNT_SELECTOR,
        default=0,
        required=True,
    ),
    Field(CONF_ON_SPACING, seconds(), SECONDS_SELECTOR, default=0.0, required=True),
)
# What a UPS feeding the lab running on battery sets off.
_BATTERY_FIELDS: Final = (
    *(
        Field(key, boolean, selector.BooleanSelector(), default=True, required=True)
        for key in (
            CONF_REFUSE_ON_BATTERY,
            CONF_NOTIFY_ON_BATTERY,
            CONF_SHED_ON_BATTERY,
            CONF_SHUTDOWN_ON_LOW_BATTERY,
        )
    ),
)
# Unset: the Energy dashboard's grid price (fixed or a price entity) is used.
_ENERGY_PRICE: Final = Field(CONF_ENERGY_PRICE, price, _box(step="any"))
LAB_POLICY_FIELDS: Final = (*_POWER_ON_FIELDS, *_BATTERY_FIELDS, _ENERGY_PRICE)
# The options form's order: the UPS sensors just before what their battery sets off.
LAB_OPTION_FIELDS: Final = (
    Field(CONF_LAB_FILE, opaque, TEXT_SELECTOR, default=""),
    *_POWER_ON_FIELDS,
    Field(
        CONF_UPS_ENTITIES,
        entity_ids,
        selector.EntitySelector(
            selector.EntitySelectorConfig(domain="sensor", multiple=True)
        ),
        default=[],
    ),
    *_BATTERY_FIELDS,
    _ENERGY_PRICE,
    # Holds from the UI end (0: never); reminders and the expiring event come before.
    _duration(CONF_UI_HOLD_MAX, DEFAULT_UI_HOLD_MAX, seconds()),
    # Holds from the UI are exclusive tokens (a person debugging a board).
    Field(
        CONF_UI_HOLD_EXCLUSIVE,
        boolean,
        selector.BooleanSelector(),
        default=False,
        required=True,
    ),
    _duration(CONF_EXPIRING_WARNING, DEFAULT_EXPIRING_WARNING, seconds()),
    Field(
        CONF_NOTIFY_AVAILABLE,
        boolean,
        selector.BooleanSelector(),
        default=False,
        required=True,
    ),
    # Live tokens per non-administrator user in this lab (0: no limit).
    Field(
        CONF_TOKEN_LIMIT,
        whole(0, MAX_TOKEN_LIMIT, "token_limit_range"),
        _COUNT_SELECTOR,
        default=DEFAULT_TOKEN_LIMIT,
        required=True,
    ),
)
LAB_OPTIONS_SCHEMA: Final = _mapping(LAB_OPTION_FIELDS)
LAB_OPTION_DEFAULTS: Final = defaults(LAB_OPTION_FIELDS)
# A lab file's `policies:`: only what it gives (no defaults).
LAB_POLICY_SCHEMA: Final = vol.Schema(
    {vol.Optional(field.key): field.validator for field in LAB_POLICY_FIELDS}
)


def _all_fields() -> Iterable[Field]:
    yield from RESOURCE_COMMON
    for group in (SWITCHER_FIELDS, CHECKER_FIELDS, UNIT_CREDENTIALS):
        for fields in group.values():
            yield from fields
    yield from (*UNIT_FIELDS, *_PLAIN_CREDENTIALS, *BMC_FIELDS, *LAB_OPTION_FIELDS)


SECRETS: Final = frozenset(f.key for f in _all_fields() if f.secret)


def form_values(
    stored: Mapping[str, Any], entered: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a form is filled with: what was entered, else what is stored.

    Never a stored credential: the form goes to the browser. A change form leaves it
    blank, and `keep_stored_secrets` keeps it when it is left so.
    """
    return {**{k: v for k, v in stored.items() if k not in SECRETS}, **(entered or {})}


def keep_stored_secrets(
    fields: Iterable[Field], entered: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """A form's input where a credential of these fields left blank keeps the stored one."""
    kept = {
        f.key: stored[f.key]
        for f in fields
        if f.secret and stored.get(f.key) and not str(entered.get(f.key) or "").strip()
    }
    return {**entered, **kept}


# What a unit's connection step sets (cleared when its vendor changes).
CREDENTIAL_KEYS: Final = frozenset(
    f.key for fields in (*UNIT_CREDENTIALS.values(), _PLAIN_CREDENTIALS) for f in fields
)
REDACTED: Final = frozenset(f.key for f in _all_fields() if f.secret or f.redact)
# Every field's default by key (the builders read stored data that may predate a field).
FIELD_DEFAULTS: Final = defaults(_all_fields())


def validate_fields(
    fields: Iterable[Field], data: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each given field's value checked: the values and the form errors by key."""
    values: dict[str, Any] = dict(data)
    errors: dict[str, str] = {}
    for field in fields:
        if field.key not in data or data[field.key] is None:
            continue
        try:
            values[field.key] = field.validator(data[field.key])
        except vol.Invalid as err:
            errors[field.key] = error_key(err)
    return values, errors


# The acquire, renew and release rules (the actions and the REST API).


def holder(value: Any) -> str:
    """Free text of at most 255 characters; control characters are taken out."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise FieldInvalid(
            "holder_invalid", f"expected text of at most {MAX_TEXT} characters"
        )
    result = _CONTROL.sub("", value).strip()
    if not result:
        raise FieldInvalid("holder_invalid", "cannot be empty")
    return result


def _strict_number(value: Any) -> float:
    """A JSON number: not a boolean, not text, not NaN or infinite."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not _finite(value)
    ):
        raise FieldInvalid("not_number", f"expected a number, not {_shown(value)}")
    return float(value)


def ttl(value: Any) -> float:
    """A lease's time to live: 1 s to a year (the resource's max_ttl bounds it too)."""
    number = _strict_number(value)
    if not MIN_TTL <= number <= MAX_SECONDS:
        raise FieldInvalid(
            "ttl_invalid",
            f"expected from {duration(MIN_TTL)} to {duration(MAX_SECONDS)}, "
            f"not {amount(number)}",
        )
    return number


def timeout(value: Any) -> float:
    """How long to wait for `available`: more than 0, at most a day."""
    number = _strict_number(value)
    if not 0 < number <= MAX_WAIT:
        raise FieldInvalid(
            "timeout_invalid",
            f"expected more than 0 s and at most {duration(MAX_WAIT)}, "
            f"not {amount(number)}",
        )
    return number


def count(value: Any) -> int:
    """How many resources a pool acquire takes: a whole number from 1 to 1000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldInvalid(
            "count_invalid", f"expected a whole number, not {_shown(value)}"
        )
    if not 1 <= value <= MAX_POOL:
        raise FieldInvalid(
            "count_invalid", f"expected from 1 to {MAX_POOL}, not {_shown(value)}"
        )
    return value


def token(value: Any) -> str:
    """A token id: non-empty text of at most 255 characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise FieldInvalid(
            "token_invalid", f"expected a token id of at most {MAX_TEXT} characters"
        )
    return value


def label_list(value: Any) -> list[str]:
    """A non-empty JSON list of names (the REST API's pool labels)."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) for item in value)
    ):
        raise FieldInvalid("labels_invalid", "expected a non-empty list of labels")
    return names(value)


KIND: Final = one_of(KINDS)
WAIT: Final = one_of([WAIT_NONE, WAIT_AVAILABLE, WAIT_QUEUE])
POWER_OFF: Final = one_of([POWER_OFF_NOW])
TOKENS: Final = vol.All(_items, [token], vol.Length(min=1))

# The actions (HA's service schemas). A resource or a token may be one or a list.
ACQUIRE_ACTION_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_RESOURCE): names,
        vol.Optional(ATTR_HOLDER): holder,
        vol.Optional(ATTR_TTL): ttl,
        vol.Optional(ATTR_KIND, default=TokenKind.LEASE.value): KIND,
        vol.Optional(ATTR_WAIT, default=WAIT_NONE): WAIT,
        vol.Optional(ATTR_TIMEOUT, default=DEFAULT_WAIT): timeout,
        vol.Optional(ATTR_LABELS): names,
        vol.Optional(ATTR_COUNT, default=1): count,
        vol.Optional(ATTR_EXCLUSIVE, default=False): boolean,
        vol.Optional(ATTR_TICKET): token,
        **cv.TARGET_SERVICE_FIELDS,
    }
)
RENEW_ACTION_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_TOKEN): token, vol.Optional(ATTR_TTL): ttl}
)
RELEASE_ACTION_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_TOKEN): TOKENS, vol.Optional(ATTR_POWER_OFF): POWER_OFF}
)
NAMES_ACTION_SCHEMA: Final = vol.Schema({vol.Optional(ATTR_RESOURCE): names})
FORCE_OFF_ACTION_SCHEMA: Final = vol.Schema({vol.Required(ATTR_RESOURCE): names})
RELOAD_ACTION_SCHEMA: Final = vol.Schema({vol.Optional(ATTR_LAB): names})

# The REST API's bodies (docs/openapi.yaml): the same rules, JSON's shapes (wait is a
# boolean, labels a list), unknown fields refused.
_REST_ACQUIRE: Final = {
    vol.Optional(ATTR_HOLDER): holder,
    vol.Optional(ATTR_TTL): ttl,
    vol.Optional(ATTR_KIND, default=TokenKind.LEASE.value): KIND,
    vol.Optional(ATTR_WAIT, default=False): boolean,
    vol.Optional(ATTR_TIMEOUT, default=DEFAULT_WAIT): timeout,
    vol.Optional(ATTR_EXCLUSIVE, default=False): boolean,
    vol.Optional(ATTR_QUEUE, default=False): boolean,
    # The id of the queued request: chosen by the caller, who may ask again with it.
    vol.Optional(ATTR_TICKET): token,
}
ACQUIRE_REST_SCHEMA: Final = vol.Schema(_REST_ACQUIRE)
POOL_REST_SCHEMA: Final = vol.Schema(
    {
        **_REST_ACQUIRE,
        vol.Required(ATTR_LABELS): label_list,
        vol.Optional(ATTR_COUNT, default=1): count,
    }
)
# A token id travels in the body, never in a URL (Home Assistant logs URLs).
RENEW_REST_SCHEMA: Final = RENEW_ACTION_SCHEMA  # one token in both
RELEASE_REST_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_TOKEN): token, vol.Optional(ATTR_POWER_OFF): POWER_OFF}
)

# The book action and POST /api/labpower/bookings: what, when, for whom.
ATTR_START: Final = "start"
ATTR_END: Final = "end"


def moment(value: Any) -> datetime:
    """A point in time: a datetime or ISO 8601 text; without an offset, HA's local time."""
    if isinstance(value, datetime):
        found: datetime | None = value
    elif isinstance(value, str):
        found = dt_util.parse_datetime(value)
    else:
        found = None
    if found is None:
        raise FieldInvalid("time_invalid", "expected a date and time (ISO 8601)")
    return dt_util.as_utc(found)


_BOOK: Final = {
    vol.Optional(ATTR_RESOURCE): names,
    vol.Optional(ATTR_COUNT, default=1): count,
    vol.Optional(ATTR_HOLDER): holder,
    vol.Required(ATTR_START): moment,
    vol.Required(ATTR_END): moment,
    vol.Optional(ATTR_EXCLUSIVE, default=False): boolean,
}
BOOK_ACTION_SCHEMA: Final = vol.Schema({**_BOOK, vol.Optional(ATTR_LABELS): names})
BOOK_REST_SCHEMA: Final = vol.Schema({**_BOOK, vol.Optional(ATTR_LABELS): label_list})
