"""Constants of the labpower integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "labpower"
LOGGER = logging.getLogger(__package__)

SUBENTRY_RESOURCE: Final = "resource"

CONF_LAB_NAME: Final = "name"
CONF_RESOURCE_NAME: Final = "name"
CONF_SWITCHER: Final = "switcher_type"
CONF_CHECKER: Final = "checker_type"

SWITCHER_ENTITY: Final = "entity"
SWITCHER_BUTTON: Final = "button"
SWITCHER_BMC: Final = "bmc"
SWITCHER_WOL: Final = "wol"
SWITCHER_PDU: Final = "pdu"
SWITCHER_TYPES: Final = [
    SWITCHER_ENTITY,
    SWITCHER_BUTTON,
    SWITCHER_BMC,
    SWITCHER_WOL,
    SWITCHER_PDU,
]

CHECKER_NONE: Final = "none"
CHECKER_ICMP: Final = "icmp"
CHECKER_TCP: Final = "tcp"
CHECKER_ENTITY: Final = "entity"
CHECKER_TYPES: Final = [CHECKER_NONE, CHECKER_ICMP, CHECKER_TCP, CHECKER_ENTITY]

CONF_POWER_ENTITY: Final = "power_entity"
CONF_RELAY_ENTITY: Final = "relay_entity"
CONF_LED_ENTITY: Final = "led_entity"
CONF_RESET_ENTITY: Final = "reset_entity"
CONF_SHORT_PRESS: Final = "short_press"
CONF_LONG_PRESS: Final = "long_press"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_CHECK_ENTITY: Final = "check_entity"

CONF_OFF_DELAY: Final = "off_delay"
CONF_MIN_OFF_TIME: Final = "min_off_time"
CONF_START_TIMEOUT: Final = "start_timeout"
CONF_STOP_TIMEOUT: Final = "stop_timeout"
CONF_DEFAULT_TTL: Final = "default_ttl"
CONF_MAX_TTL: Final = "max_ttl"
CONF_GRACEFUL_OFF: Final = "graceful_off"
CONF_OFF_NOW: Final = "off_now"
CONF_MAX_TRANSITIONS: Final = "max_transitions"
CONF_LABELS: Final = "labels"
CONF_POWER_W: Final = "power_w"
CONF_METER_ENTITY: Final = "meter_entity"

DEFAULT_SHORT_PRESS: Final = 0.5
DEFAULT_LONG_PRESS: Final = 6.0

# Entity domains that turn on and off with homeassistant.turn_on / turn_off.
SWITCHABLE_DOMAINS: Final = ["switch", "light", "input_boolean", "fan"]
RELAY_DOMAINS: Final = ["switch", "input_boolean"]

EVENT_TOKEN_ACQUIRED: Final = "labpower_token_acquired"
EVENT_TOKEN_RELEASED: Final = "labpower_token_released"
EVENT_TOKEN_EXPIRED: Final = "labpower_token_expired"
EVENT_TOKEN_REVOKED: Final = "labpower_token_revoked"
# A token ends soon (the lab's expiring_warning before its expiry; not renewed since).
EVENT_TOKEN_EXPIRING: Final = "labpower_token_expiring"
EVENT_POWER_CHANGED: Final = "labpower_power_changed"
# labpower stopped switching a resource (a foreign actor, the transition limit) / again.
EVENT_HALTED: Final = "labpower_halted"
EVENT_RESUMED: Final = "labpower_resumed"

# Repair issues: a feed target configured for several resources; a halted resource.
FEED_SHARED: Final = "feed_shared"
ISSUE_HALTED: Final = "halted"

STORAGE_VERSION: Final = 1
# Start failures in a row before a repair issue is raised.
START_FAILURES_FOR_REPAIR: Final = 3

SUBENTRY_BMC: Final = "bmc"
BMC_IPMI: Final = "ipmi"
BMC_REDFISH: Final = "redfish"
BMC_PROTOCOLS: Final = [BMC_IPMI, BMC_REDFISH]
CONF_BMC_NAME: Final = "name"
CONF_PROTOCOL: Final = "protocol"
CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"
CONF_CIPHER_SUITE: Final = "cipher_suite"
CONF_VERIFY_SSL: Final = "verify_ssl"
CONF_BMC_AUTH: Final = "bmc_auth"
CONF_BMC: Final = "bmc"
CONF_MAC: Final = "mac"
CONF_WOL_ADDRESS: Final = "wol_address"
CONF_WOL_PORT: Final = "wol_port"
CONF_SSH_HOST: Final = "ssh_host"
CONF_SSH_PORT: Final = "ssh_port"
CONF_SSH_USERNAME: Final = "ssh_username"
CONF_SSH_PASSWORD: Final = "ssh_password"
CONF_SSH_KEY: Final = "ssh_key"
CONF_SSH_COMMAND: Final = "ssh_command"

SUBENTRY_PDU: Final = "pdu"
CONF_UNIT_NAME: Final = "name"
CONF_VENDOR: Final = "vendor"
VENDOR_INTELLINET: Final = "intellinet"
VENDOR_NETIO: Final = "netio"
VENDOR_GUDE: Final = "gude"
VENDOR_DLI: Final = "dli"
VENDOR_SNMP: Final = "snmp"
PDU_VENDORS: Final = [
    VENDOR_INTELLINET,
    VENDOR_NETIO,
    VENDOR_GUDE,
    VENDOR_DLI,
    VENDOR_SNMP,
]
CONF_WRITE_USERNAME: Final = "write_username"
CONF_WRITE_PASSWORD: Final = "write_password"
CONF_SNMP_VERSION: Final = "snmp_version"
SNMP_VERSIONS: Final = ["1", "2c", "3"]
CONF_COMMUNITY: Final = "community"
CONF_WRITE_COMMUNITY: Final = "write_community"
CONF_AUTH_PROTOCOL: Final = "auth_protocol"
CONF_AUTH_KEY: Final = "auth_key"
CONF_PRIV_PROTOCOL: Final = "priv_protocol"
CONF_PRIV_KEY: Final = "priv_key"
CONF_SNMP_PROFILE: Final = "snmp_profile"
SNMP_AUTOMATIC: Final = "automatic"
CONF_OUTLET_COUNT: Final = "outlet_count"
CONF_UPS_ENTITY: Final = "ups_entity"
# A resource fed by PDU outlets: ["pdu1:3", "pdu2:3"] (unit name, 1-based outlet).
CONF_OUTLETS: Final = "outlets"
CONF_DEPENDS_ON: Final = "depends_on"
# Keys (device identifiers) of what a lab file defines start so; subentry ids never do.
FILE_KEY_PREFIX: Final = "file_"
PDU_POLL_SECONDS: Final = 30

# Lab-wide settings (the Lab entry's options; a lab file's `policies:` overrides them;
# their defaults: schema.py).
CONF_LAB_FILE: Final = "lab_file"
CONF_MAX_PARALLEL_ON: Final = "max_parallel_on"
CONF_UNIT_PARALLEL_ON: Final = "per_unit_parallel_on"
CONF_ON_SPACING: Final = "on_spacing"
CONF_REFUSE_ON_BATTERY: Final = "refuse_acquire_on_battery"
CONF_SHED_ON_BATTERY: Final = "shed_idle_on_battery"
CONF_NOTIFY_ON_BATTERY: Final = "notify_holders_on_battery"
CONF_SHUTDOWN_ON_LOW_BATTERY: Final = "shutdown_held_on_low_battery"
# UPS status sensors feeding the whole lab (besides those named on PDU units).
CONF_UPS_ENTITIES: Final = "ups_entities"
# Holds taken from the UI (Power switch, rack card, overview) end after this (0: never).
CONF_UI_HOLD_MAX: Final = "ui_hold_max"
# Holds taken from the UI are exclusive: nobody else gets a token while one lives.
CONF_UI_HOLD_EXCLUSIVE: Final = "ui_hold_exclusive"
# How long before a token's end its user is reminded and the expiring event fires.
CONF_EXPIRING_WARNING: Final = "expiring_warning"
# Tell a UI user when the resource they took becomes available.
CONF_NOTIFY_AVAILABLE: Final = "notify_when_available"
# Live tokens one non-administrator user may hold in a lab (0: no limit).
CONF_TOKEN_LIMIT: Final = "token_limit"
# The price of a kWh in Home Assistant's currency (unset: the Energy dashboard's grid price).
CONF_ENERGY_PRICE: Final = "energy_price"
EVENT_UPS_POLICY: Final = "labpower_ups_policy"
# A booking's holds could not be taken (bookings.py): it is refused until its end.
EVENT_BOOKING_REFUSED: Final = "labpower_booking_refused"
