"""The one definition of every field (schema.py): its rules, defaults and flags."""

from __future__ import annotations

from typing import Any

import probatio as vol
import pytest

from custom_components.labpower import schema
from custom_components.labpower.core.model import ResourcePolicy

_ENTITY = {"name": "builder-1", "switcher_type": "entity", "power_entity": "switch.a"}
_WOL = {
    "name": "wol-1",
    "switcher_type": "wol",
    "checker_type": "icmp",
    "host": "10.0.0.5",
    "mac": "aa:bb:cc:dd:ee:ff",
    "ssh_host": "10.0.0.5",
    "ssh_username": "root",
    "ssh_password": "secret",
}


def _refusal(validator: Any, value: Any) -> tuple[str, list[Any]]:
    """The form error key and the path of the first refusal."""
    with pytest.raises(vol.Invalid) as err:
        validator(value)
    first = (
        err.value.errors[0] if isinstance(err.value, vol.MultipleInvalid) else err.value
    )
    return schema.error_key(first), list(first.path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(60, 60.0), (1, 1.0), (2.5, 2.5), (31536000, 31536000.0)],
)
def test_ttl_accepts_numbers(value: Any, expected: float) -> None:
    assert schema.ttl(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        *(True, False, "60", None, [], {}, 0, 0.5, 1e-320, -1, 31536001),
        *(float("nan"), 10**400),
    ],
)
def test_ttl_is_strict(value: Any) -> None:
    with pytest.raises(schema.FieldInvalid):
        schema.ttl(value)


@pytest.mark.parametrize(
    "value", [True, "600", 0, -1, 10_000_000, 86400.5, None, [], 10**400]
)
def test_timeout_is_strict_and_bounded(value: Any) -> None:
    with pytest.raises(schema.FieldInvalid):
        schema.timeout(value)
    assert schema.timeout(86400) == 86400.0
    assert schema.timeout(0.05) == 0.05


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (
            schema.ttl,
            31536001,
            "expected from 1 s to 31536000 s (365 days), not 31536001",
        ),
        (schema.ttl, "60", "expected a number, not '60'"),
        (
            schema.ttl,
            10**400,
            "expected a number, not 1" + "0" * 38 + "…",
        ),
        (
            schema.timeout,
            1e7,
            "expected more than 0 s and at most 86400 s (1 day), not 10000000",
        ),
        (schema.seconds(), 4e7, "must be at most 31536000 s (365 days), not 40000000"),
        (
            schema.whole(1, 65535),
            10**400,
            "expected a finite number, not 1" + "0" * 38 + "…",
        ),
        (schema.count, True, "expected a whole number, not true"),
        (schema.holder, None, "expected text of at most 255 characters"),
        (schema.entity_id, "light", "expected an entity id (switch.a), not 'light'"),
        (schema.boolean, [1], "expected true or false, not a list"),
        (schema.text, {"a": 1}, "expected text, not a mapping"),
        (
            schema.name,
            "job\x1b[31m",
            (
                "a name is at most 255 characters, without control characters, "
                "not 'job\\x1b[31m'"
            ),
        ),
    ],
)
def test_refusals_name_the_value_and_the_rule(
    validator: Any, value: Any, message: str
) -> None:
    """Bounds and values as written (never 3.1536e+07), long values cut short."""
    with pytest.raises(schema.FieldInvalid) as refused:
        validator(value)
    assert refused.value.msg == message


@pytest.mark.parametrize("value", [True, "2", 2.0, 0, 1001, None, []])
def test_count_is_strict(value: Any) -> None:
    with pytest.raises(schema.FieldInvalid):
        schema.count(value)
    assert schema.count(1000) == 1000


def test_holder_is_bounded_and_stripped() -> None:
    assert schema.holder("  jenkins\x1b[31m job\n 7 \x7f") == "jenkins[31m job 7"
    assert schema.holder("x" * 255) == "x" * 255
    for bad in ("x" * 256, "x" * 10_000, "", " \n\t", 7, None, ["a"]):
        with pytest.raises(schema.FieldInvalid):
            schema.holder(bad)


@pytest.mark.parametrize("value", [[], {}, 1, "lent", None])
def test_kind_is_a_word_of_the_set(value: Any) -> None:
    with pytest.raises(schema.FieldInvalid):
        schema.KIND(value)
    assert schema.KIND("hold") == "hold"


def test_acquire_action_schema_defaults() -> None:
    assert schema.ACQUIRE_ACTION_SCHEMA({"resource": "a"}) == {
        "resource": ["a"],
        "kind": "lease",
        "wait": "none",
        "timeout": 600.0,
        "count": 1,
        "exclusive": False,
    }


def test_rest_schemas_refuse_unknown_fields() -> None:
    assert _refusal(schema.ACQUIRE_REST_SCHEMA, {"colour": "red"})[1] == ["colour"]
    assert _refusal(schema.POOL_REST_SCHEMA, {"labels": "arm64"}) == (
        "labels_invalid",
        ["labels"],
    )
    assert schema.POOL_REST_SCHEMA({"labels": ["arm64"]})["count"] == 1
    assert _refusal(schema.ACQUIRE_REST_SCHEMA, {"wait": "yes"})[1] == ["wait"]


def test_resource_defaults_are_the_policy_defaults() -> None:
    data = schema.RESOURCE_SCHEMA(dict(_ENTITY))
    policy = ResourcePolicy()
    assert data["checker_type"] == "none"
    assert data["off_delay"] == policy.off_delay
    assert data["max_ttl"] == policy.max_ttl
    assert data["max_transitions"] == policy.max_transitions
    assert data["graceful_off"] is policy.graceful_off


def test_resource_union_refuses_fields_of_other_types() -> None:
    # host belongs to the icmp/tcp checkers, mac to the wol switcher
    assert _refusal(schema.RESOURCE_SCHEMA, {**_ENTITY, "host": "h"})[1] == ["host"]
    assert _refusal(schema.RESOURCE_SCHEMA, {**_ENTITY, "mac": "aa:bb:cc:dd:ee:ff"})[
        1
    ] == ["mac"]
    with pytest.raises(vol.Invalid, match="switcher_type"):
        schema.RESOURCE_SCHEMA({**_ENTITY, "switcher_type": "relay"})
    with pytest.raises(vol.Invalid, match="switcher_type"):
        schema.RESOURCE_SCHEMA({**_ENTITY, "switcher_type": ["entity"]})
    tcp = schema.RESOURCE_SCHEMA(
        {**_ENTITY, "checker_type": "tcp", "host": "h", "port": 22.0}
    )
    assert tcp["port"] == 22


@pytest.mark.parametrize(
    ("change", "key", "path"),
    [
        ({"max_ttl": 10.0, "default_ttl": 60.0}, "max_ttl_below_default", "max_ttl"),
        ({"default_ttl": 0}, "ttl_zero", "default_ttl"),
        ({"off_delay": -1}, "negative", "off_delay"),
        ({"off_delay": True}, "not_number", "off_delay"),
        ({"max_transitions": 1}, "transitions_too_few", "max_transitions"),
        ({"max_transitions": 2.5}, "not_whole", "max_transitions"),
        ({"name": "  "}, "name_empty", "name"),
        ({"name": "x" * 256}, "name_invalid", "name"),
        ({"power_entity": "not an entity"}, "entity_invalid", "power_entity"),
        ({"graceful_off": "yes"}, "not_boolean", "graceful_off"),
    ],
)
def test_resource_field_rules(change: dict[str, Any], key: str, path: str) -> None:
    assert _refusal(schema.RESOURCE_SCHEMA, {**_ENTITY, **change}) == (key, [path])


@pytest.mark.parametrize(
    ("change", "key", "path"),
    [
        ({"ssh_host": " "}, "host_empty", "ssh_host"),
        ({"mac": "aa:bb"}, "invalid_mac", "mac"),
        ({"ssh_password": ""}, "ssh_credentials", "ssh_password"),
        (
            {"checker_type": "none", "host": None},
            "wol_needs_check",
            "checker_type",
        ),
    ],
)
def test_wol_rules(change: dict[str, Any], key: str, path: str) -> None:
    data = {k: v for k, v in {**_WOL, **change}.items() if v is not None}
    assert _refusal(schema.RESOURCE_SCHEMA, data) == (key, [path])


def test_wol_defaults() -> None:
    data = schema.RESOURCE_SCHEMA(dict(_WOL))
    assert (data["wol_address"], data["wol_port"], data["ssh_port"]) == (
        "255.255.255.255",
        9,
        22,
    )
    assert data["ssh_command"] == "sudo systemctl poweroff"


def test_outlets() -> None:
    data = schema.RESOURCE_SCHEMA(
        {"name": "a", "switcher_type": "pdu", "outlets": ["pdu1: 3", "pdu2:03"]}
    )
    assert data["outlets"] == ["pdu1:3", "pdu2:3"]
    for bad, key in (
        ([], "no_outlets"),
        (["pdu1"], "outlet_invalid"),
        (["pdu1:0"], "outlet_invalid"),
        (["pdu1:1", "pdu1:1"], "outlet_twice"),
    ):
        assert _refusal(
            schema.RESOURCE_SCHEMA,
            {"name": "a", "switcher_type": "pdu", "outlets": bad},
        ) == (key, ["outlets"])


def test_unit_union_on_vendor() -> None:
    unit = {"name": "pdu1", "vendor": "gude", "host": "10.0.0.2"}
    assert schema.UNIT_SCHEMA(dict(unit)) == unit
    # the lab file accepted these; the flows never did
    assert _refusal(schema.UNIT_SCHEMA, {**unit, "name": "pdu:a"}) == (
        "name_colon",
        ["name"],
    )
    assert _refusal(schema.UNIT_SCHEMA, {**unit, "host": " "}) == (
        "host_empty",
        ["host"],
    )
    assert _refusal(schema.UNIT_SCHEMA, {**unit, "community": "public"})[1] == [
        "community"
    ]
    snmp = schema.UNIT_SCHEMA({**unit, "vendor": "snmp", "community": "public"})
    assert (snmp["snmp_version"], snmp["snmp_profile"]) == ("2c", "automatic")


def test_bmc_defaults() -> None:
    bmc = schema.BMC_SCHEMA(
        {"name": "bmc1", "host": "10.0.0.9", "username": "u", "password": "p"}
    )
    assert (bmc["protocol"], bmc["cipher_suite"], bmc["verify_ssl"]) == (
        "ipmi",
        3,
        True,
    )
    assert bmc["bmc_auth"] == "basic"


def test_lab_policies() -> None:
    # 0 parallel power-ons is the options flow's "no limit": the lab file takes it too
    assert schema.LAB_POLICY_SCHEMA({"max_parallel_on": 0}) == {"max_parallel_on": 0}
    assert _refusal(schema.LAB_POLICY_SCHEMA, {"max_parallel_on": -1})[1] == [
        "max_parallel_on"
    ]
    options = schema.LAB_OPTIONS_SCHEMA({})
    assert options["max_parallel_on"] == 0
    assert options["ups_entities"] == []
    assert options["refuse_acquire_on_battery"] is True


def test_secret_flags() -> None:
    assert {
        "password",
        "write_password",
        "community",
        "write_community",
        "auth_key",
        "priv_key",
        "ssh_password",
        "ssh_key",
    } == schema.SECRETS
    assert schema.SECRETS < schema.REDACTED
    assert {"username", "write_username", "ssh_username"} <= schema.REDACTED


def test_validate_fields_collects_form_errors() -> None:
    fields = schema.resource_fields("wol", "tcp").values()
    values, errors = schema.validate_fields(
        fields, {"wol_port": 9.0, "port": 0, "ssh_host": "", "off_delay": -5}
    )
    assert values["wol_port"] == 9
    assert errors == {
        "port": "out_of_range",
        "ssh_host": "host_empty",
        "off_delay": "negative",
    }
