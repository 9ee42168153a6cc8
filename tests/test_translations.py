"""Every error, issue, entity and action the code uses has its translation and icon."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from custom_components.labpower import schema
from custom_components.labpower.const import FEED_SHARED, ISSUE_HALTED, PDU_VENDORS
from custom_components.labpower.core import model
from custom_components.labpower.drivers.icmp import ICMP_UNAVAILABLE
from custom_components.labpower.drivers.snmp_profiles import SNMP_PROFILES
from custom_components.labpower.storage import ISSUE_LOST, ISSUE_NEWER, ISSUE_RECOVERED
from custom_components.labpower.switchers import ENTITY_MISSING

PACKAGE = Path(__file__).parent.parent / "custom_components" / "labpower"
EN = json.loads((PACKAGE / "translations" / "en.json").read_text(encoding="utf-8"))
ICONS = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))


def _code() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py"))


def test_exceptions_translated() -> None:
    used = set(
        re.findall(r'translation_domain=DOMAIN,\s*translation_key="([a-z_]+)"', _code())
    )
    assert {"no_resource", "outlet_feeds_resource"} <= used
    lab_errors = {
        cls.key
        for cls in vars(model).values()
        if isinstance(cls, type) and issubclass(cls, model.LabError)
    }
    issues = {
        ENTITY_MISSING,
        ICMP_UNAVAILABLE,
        FEED_SHARED,
        ISSUE_HALTED,
        "switcher_misconfigured",
        "start_failures",
        ISSUE_LOST,
        ISSUE_NEWER,
        ISSUE_RECOVERED,
    }
    exceptions = set(EN["exceptions"])
    assert {"holders_remain", "not_powered", "held_by_others"} <= lab_errors
    assert (used - issues) | lab_errors | {"switch_failed"} <= exceptions
    assert issues <= set(EN["issues"])
    # every placeholder a lab error fills is used by its message, and the other way round
    for cls in vars(model).values():
        if (
            isinstance(cls, type)
            and issubclass(cls, model.LabError)
            and cls is not model.LabError
        ):
            message = EN["exceptions"][cls.key]["message"]
            assert set(re.findall(r"{(\w+)}", message)) <= {
                "resource",
                "token",
                "ttl",
                "max_ttl",
                "reason",
                "resources",
                "timeout",
                "labels",
                "count",
                "free",
                "cycle",
                "dependency",
                "holders",
                "labs",
                "detail",
                "limit",
                "left",
                "position",
            }


def test_entities_translated_and_iconed() -> None:
    code = _code()
    for platform in ("switch", "binary_sensor", "sensor", "button"):
        source = (PACKAGE / f"{platform}.py").read_text(encoding="utf-8")
        keys = set(re.findall(r'translation_key="([a-z_]+)"', source)) - set(
            EN["exceptions"]
        )
        assert keys, platform
        assert keys <= set(EN["entity"][platform]), platform
        assert keys <= set(ICONS["entity"][platform]), platform
    assert "state" in EN["entity"]["sensor"]
    assert code


def test_actions_described() -> None:
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    assert set(services) == set(EN["services"]) == set(ICONS["services"])
    for name, service in services.items():
        assert set(service.get("fields", {})) == set(EN["services"][name]["fields"]), (
            name
        )
    for key in ("kind", "wait"):
        options = services["acquire"]["fields"][key]["selector"]["select"]["options"]
        assert set(options) == set(EN["selector"][key]["options"])


def test_snmp_profiles_translated() -> None:
    # The unit form's selector offers SNMP_PROFILES: each has its label, in that order.
    assert list(EN["selector"]["snmp_profile"]["options"]) == SNMP_PROFILES


def test_flow_fields_described() -> None:
    flow = EN["config_subentries"]["resource"]["step"]
    for step in flow.values():
        assert set(step["data"]) == set(step["data_description"])


# Values a form (or an API call into a flow) may carry that schema.py refuses.
_BAD_VALUES: list[Any] = [
    True, "x", -1, -0.5, 2.5, 1e12, "", "  ", "\t", [], {"a": 1}, "a:b", "aa:bb", 0,
    ["pdu:x"], ["a", "a"],
]  # fmt: skip
_FLOW_FIELDS: dict[tuple[str, ...], list[schema.Field]] = {
    ("config",): [schema.LAB_NAME],
    ("options",): list(schema.LAB_OPTION_FIELDS),
    ("config_subentries", "bmc"): list(schema.BMC_FIELDS),
    ("config_subentries", "pdu"): [
        *schema.UNIT_FIELDS,
        *(f for vendor in PDU_VENDORS for f in schema.unit_credentials(vendor)),
    ],
    ("config_subentries", "resource"): [
        schema.RESOURCE_NAME,
        schema.SWITCHER_TYPE,
        schema.CHECKER_TYPE,
        *schema.RESOURCE_COMMON,
        *schema.POLICY_FIELDS,
        *schema.EXTRA_FIELDS,
        schema.DEPENDS_ON,
        *(
            f
            for group in (schema.SWITCHER_FIELDS, schema.CHECKER_FIELDS)
            for fields in group.values()
            for f in fields
        ),
    ],
}


@pytest.mark.parametrize("flow", list(_FLOW_FIELDS), ids="/".join)
def test_every_refusal_of_a_flow_is_translated(flow: tuple[str, ...]) -> None:
    """Each error key a flow's fields can give has its text in that flow's errors."""
    table = EN
    for part in flow:
        table = table[part]
    given: set[str] = set()
    for field in _FLOW_FIELDS[flow]:
        for bad in _BAD_VALUES:
            given |= set(schema.validate_fields([field], {field.key: bad})[1].values())
    assert given, "no bad value was refused"
    assert sorted(given - set(table["error"])) == []


def test_every_snmp_rule_is_translated() -> None:
    """The rules between an SNMP unit's settings (the connection step) have texts."""
    v2 = {"vendor": "snmp", "snmp_version": "2c", "auth_protocol": "sha"}
    v3 = {"vendor": "snmp", "snmp_version": "3", "priv_protocol": "aes"}
    keys = {err.key for data in (v2, v3) for err in schema.unit_rule_errors(data)}
    assert sorted(keys - set(EN["config_subentries"]["pdu"]["error"])) == []
