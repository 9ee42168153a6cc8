"""PDU units through Home Assistant: the unit subentry flow, outlets as feeds, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
import itertools
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigSubentryDataWithId
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.labpower.const import (
    DOMAIN,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
)
from custom_components.labpower.drivers.pdu import PduUnreachableError

from .conftest import lab_entry, resource_data, until
from .peers.flows import POLICY, unit_flow
from .peers.ha import call, event_tokens, setup_integration, state
from .peers.pdu_http import HOST, FakeGude, FakeIntellinet, FakeNetio

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def netio() -> AsyncIterator[FakeNetio]:
    """A NETIO unit, every output off."""
    async with FakeNetio() as unit:
        yield unit


@pytest.fixture
async def intellinet() -> AsyncIterator[FakeIntellinet]:
    """An Intellinet unit, every outlet off."""
    async with FakeIntellinet() as unit:
        yield unit


def netio_data(unit: FakeNetio, **overrides: Any) -> dict[str, Any]:
    """A NETIO unit subentry (read account and write account)."""
    return {
        "name": "pdu-a",
        "vendor": "netio",
        "host": HOST,
        "port": unit.port,
        "username": "reader",
        "password": "read-secret",
        "write_username": "writer",
        "write_password": "write-secret",
        "outlet_count": unit.outlet_count,
        **overrides,
    }


def intellinet_data(unit: FakeIntellinet, **overrides: Any) -> dict[str, Any]:
    """An Intellinet unit subentry (admin/admin)."""
    return {
        "name": "pdu-b",
        "vendor": "intellinet",
        "host": HOST,
        "port": unit.port,
        "username": "admin",
        "password": "admin",
        "outlet_count": unit.outlet_count,
        **overrides,
    }


def unit_subentry(data: dict[str, Any]) -> ConfigSubentryDataWithId:
    """A unit as a subentry with a stable id."""
    return ConfigSubentryDataWithId(
        data=data,
        subentry_id=f"sub_{data['name']}",
        subentry_type=SUBENTRY_PDU,
        title=data["name"],
        unique_id=None,
    )


def dual_fed(name: str = "server-1", **overrides: Any) -> dict[str, Any]:
    """A resource with two power supplies: outlet 1 of each unit."""
    return resource_data(
        name,
        switcher_type="pdu",
        outlets=["pdu-a:1", "pdu-b:1"],
        off_delay=0,
        **overrides,
    )


def pdu_lab(
    *units: dict[str, Any], resources: list[dict[str, Any]], **options: Any
) -> MockConfigEntry:
    """A lab with these units and resources (and lab options)."""
    return lab_entry(
        *resources, subentries=tuple(unit_subentry(data) for data in units), **options
    )


async def test_unit_flow_reads_before_saving(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """Wrong address, wrong credentials: each its own error; then the unit is saved."""
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_PDU), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    for first, error in (
        ({"name": " ", "vendor": "netio", "host": HOST}, {"name": "name_empty"}),
        ({"name": "a:b", "vendor": "netio", "host": HOST}, {"name": "name_colon"}),
        (
            {"name": "p" * 256, "vendor": "netio", "host": HOST},
            {"name": "name_invalid"},
        ),
        ({"name": "pdu-a", "vendor": "netio", "host": " "}, {"host": "host_empty"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], first
        )
        assert result["errors"] == error
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "pdu-a", "vendor": "netio", "host": HOST, "port": 1}
    )
    assert result["step_id"] == "connection"
    credentials = {"username": "reader", "password": "read-secret"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], credentials
    )
    assert result["errors"] == {"base": "cannot_connect"}
    # back to the address: the right port
    result = await unit_flow(
        hass,
        entry,
        {"name": "pdu-a", "vendor": "netio", "host": HOST, "port": netio.port},
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"username": "reader", "password": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**credentials, "write_username": "writer", "write_password": "write-secret"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    [unit] = entry.subentries.values()
    assert unit.title == "pdu-a"
    assert unit.data["outlet_count"] == 4
    # the same name again is refused
    result = await unit_flow(
        hass, entry, {"name": "PDU-A", "vendor": "netio", "host": HOST}
    )
    assert result["errors"] == {"name": "name_exists"}


async def test_unit_reconfigure_takes_new_credentials(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """The fix for a refused password: reconfigure, tested before it is saved."""
    entry = await setup_integration(hass, pdu_lab(netio_data(netio), resources=[]))
    netio.accounts["reader"] = ("new-secret", False)
    result = await entry.start_subentry_reconfigure_flow(hass, "sub_pdu-a")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"vendor": "netio", "host": HOST, "port": netio.port}
    )
    assert result["step_id"] == "connection"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"username": "reader", "password": "read-secret"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"username": "reader", "password": "new-secret"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries["sub_pdu-a"].data["password"] == "new-secret"
    # the write account was kept
    assert entry.subentries["sub_pdu-a"].data["write_password"] == "write-secret"


async def test_resource_flow_offers_outlets(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """A resource fed by outlets picks them from the lab's units."""
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "server-1", "switcher_type": "pdu", "checker_type": "none"},
    )
    assert result["errors"] == {"switcher_type": "no_pdu"}
    entry = await setup_integration(hass, pdu_lab(netio_data(netio), resources=[]))
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "server-1", "switcher_type": "pdu", "checker_type": "none"},
    )
    assert result["step_id"] == "details"
    schema = result["data_schema"].schema
    [outlets] = [key for key in schema if key == "outlets"]
    options = schema[outlets].config["options"]
    assert options == ["pdu-a:1", "pdu-a:2", "pdu-a:3", "pdu-a:4"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"outlets": [], **POLICY}
    )
    assert result["errors"] == {"outlets": "no_outlets"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"outlets": ["pdu-a:2", "pdu-a:3"], **POLICY}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["outlets"] == ["pdu-a:2", "pdu-a:3"]


async def test_dual_fed_resource_end_to_end(
    hass: HomeAssistant, netio: FakeNetio, intellinet: FakeIntellinet
) -> None:
    """Fed by outlets of two units: acquire turns both on, release both off."""
    await setup_integration(
        hass,
        pdu_lab(
            netio_data(netio),
            intellinet_data(intellinet),
            resources=[dual_fed()],
        ),
    )
    assert state(hass, "sensor.server_1_state") == "off"
    response = await call(
        hass, "acquire", {"resource": "server-1", "holder": "ci job 7"}
    )
    [token] = response["tokens"]
    await until(hass, lambda: state(hass, "sensor.server_1_state") == "available")
    assert netio.on[0]
    assert intellinet.on[0]
    assert not any(netio.on[1:])
    assert not any(intellinet.on[1:])
    await until(hass, lambda: state(hass, "switch.pdu_a_outlet_1") == STATE_ON)
    assert hass.states.get("switch.pdu_a_outlet_1").attributes["feeds"] == "server-1"
    redundancy = hass.states.get("binary_sensor.server_1_power_redundancy")
    assert redundancy.state == STATE_OFF
    assert redundancy.attributes["power_chain"] == [
        "psu1 -> pdu-a:outlet1",
        "psu2 -> pdu-b:outlet1",
    ]
    # an outlet feeding a resource is not switched by hand
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            "switch",
            "turn_off",
            {"entity_id": "switch.pdu_a_outlet_1"},
            blocking=True,
        )
    assert err.value.translation_key == "outlet_feeds_resource"
    assert netio.on[0]
    # one outlet lost: redundancy problem while the resource is used
    intellinet.on[0] = False
    runtime = hass.config_entries.async_get_entry("entry_lab").runtime_data
    await runtime.units["pdu-b"].unit.status(max_age=0)  # the next poll
    await until(
        hass, lambda: state(hass, "binary_sensor.server_1_power_redundancy") == STATE_ON
    )
    problems = hass.states.get("binary_sensor.server_1_power_redundancy").attributes
    assert problems["healthy_feeds"] == 1
    intellinet.on[0] = True
    await runtime.units["pdu-b"].unit.status(max_age=0)
    await until(
        hass,
        lambda: state(hass, "binary_sensor.server_1_power_redundancy") == STATE_OFF,
    )
    await call(hass, "release", {"token": token["token"]})
    await until(hass, lambda: state(hass, "sensor.server_1_state") == "off")
    assert not netio.on[0]
    assert not intellinet.on[0]
    assert state(hass, "binary_sensor.server_1_power_redundancy") == STATE_OFF


async def test_free_outlet_is_switched_by_hand(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """An outlet that feeds nothing is an ordinary switch, verified by reading back."""
    await setup_integration(hass, pdu_lab(netio_data(netio), resources=[]))
    assert state(hass, "switch.pdu_a_outlet_3") == STATE_OFF
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.pdu_a_outlet_3"}, blocking=True
    )
    assert netio.on[2]
    assert state(hass, "switch.pdu_a_outlet_3") == STATE_ON
    # measurements of the unit and of each outlet
    assert float(state(hass, "sensor.pdu_a_outlet_3_energy")) == pytest.approx(3.0)


async def test_outlet_that_does_not_follow_is_reported(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """The unit acknowledges and its relay does not follow: the read-back says so."""
    await setup_integration(hass, pdu_lab(netio_data(netio), resources=[]))
    netio.ignore_commands = True
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": "switch.pdu_a_outlet_3"}, blocking=True
        )
    assert err.value.translation_key == "outlet_not_switched"
    (command,) = netio.commands()
    assert command.status == 200  # acknowledged
    assert not netio.on[2]
    assert state(hass, "switch.pdu_a_outlet_3") == STATE_OFF


async def test_read_only_account_raises_a_repair(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """Switching with an account that may only read: a translated error and a repair."""
    await setup_integration(
        hass,
        pdu_lab(
            netio_data(netio, write_username="", write_password=""),
            resources=[],
        ),
    )
    with pytest.raises(Exception, match=r"read-only|403") as err:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": "switch.pdu_a_outlet_2"}, blocking=True
        )
    assert getattr(err.value, "translation_key", None) == "switch_failed"
    assert not netio.on[1]
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, "pdu_read_only_entry_lab_sub_pdu-a"
    )
    assert issue is not None
    assert issue.translation_placeholders["unit"] == "pdu-a"


async def test_unit_gone_faults_its_resources_only(
    hass: HomeAssistant,
    netio: FakeNetio,
    intellinet: FakeIntellinet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A unit that disappears: its entities unavailable, its resources fault, others fine."""
    await setup_integration(
        hass,
        pdu_lab(
            netio_data(netio),
            intellinet_data(intellinet),
            resources=[
                resource_data(
                    "a-1", switcher_type="pdu", outlets=["pdu-a:2"], off_delay=0
                ),
                resource_data(
                    "b-1", switcher_type="pdu", outlets=["pdu-b:2"], off_delay=0
                ),
            ],
        ),
    )
    await call(hass, "acquire", {"resource": ["a-1", "b-1"], "holder": "ci"})
    await until(
        hass,
        lambda: (
            state(hass, "sensor.a_1_state") == "available"
            and state(hass, "sensor.b_1_state") == "available"
        ),
    )
    await netio.stop()
    runtime = hass.config_entries.async_get_entry("entry_lab").runtime_data
    with pytest.raises(PduUnreachableError):  # the next poll
        await runtime.units["pdu-a"].unit.status(max_age=0)
    await until(hass, lambda: state(hass, "sensor.a_1_state") == "fault")
    reason = hass.states.get("sensor.a_1_state").attributes["reason"]
    assert "pdu-a" in reason or "netio" in reason
    assert state(hass, "switch.pdu_a_outlet_2") == STATE_UNAVAILABLE
    assert state(hass, "sensor.b_1_state") == "available"
    assert state(hass, "switch.pdu_b_outlet_2") == STATE_ON
    with pytest.raises(PduUnreachableError):  # still gone: not logged again
        await runtime.units["pdu-a"].unit.status(max_age=0)
    await netio.start()
    await runtime.units["pdu-a"].unit.status(max_age=0)
    await until(hass, lambda: state(hass, "sensor.a_1_state") == "available")
    assert caplog.text.count("Error requesting PDU pdu-a data") == 1
    assert caplog.text.count("PDU unit pdu-a answers again") == 1
    assert state(hass, "switch.pdu_a_outlet_2") == STATE_ON


async def test_wrong_credentials_raise_a_repair(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """A unit that refuses the password: unavailable and a repair issue to fix it."""
    await setup_integration(
        hass, pdu_lab(netio_data(netio, password="changed"), resources=[])
    )
    # outlets as configured, unavailable while the unit refuses
    assert state(hass, "switch.pdu_a_outlet_1") == STATE_UNAVAILABLE
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "pdu_auth_entry_lab_sub_pdu-a")
    assert issue is not None
    assert issue.translation_key == "pdu_auth"


@pytest.mark.parametrize("platform", [Platform.SWITCH, Platform.SENSOR])
async def test_unit_entities(
    hass: HomeAssistant,
    platform: Platform,
    netio: FakeNetio,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The unit's device: an outlet switch per outlet and its measurements."""
    with patch("custom_components.labpower.PLATFORMS", [platform]):
        entry = await setup_integration(hass, pdu_lab(netio_data(netio), resources=[]))
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_ups_on_battery_policy(hass: HomeAssistant, netio: FakeNetio) -> None:
    """On battery: no new tokens, idle resources off at once, holders told; low: all off."""
    # The UPS as the NUT integration makes it: a device "ups1" with its status sensor.
    nut = MockConfigEntry(domain="nut", title="ups1")
    nut.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=nut.entry_id, identifiers={("nut", "ups1")}, name="ups1"
    )
    er.async_get(hass).async_get_or_create(
        "sensor",
        "nut",
        "ups1_status",
        suggested_object_id="ups1_status",
        device_id=device.id,
        config_entry=nut,
    )
    hass.states.async_set("sensor.ups1_status", "OL CHRG")
    steps = async_capture_events(hass, "labpower_ups_policy")
    revoked = async_capture_events(hass, "labpower_token_revoked")
    unit = netio_data(netio, ups_entity="sensor.ups1_status")
    await setup_integration(
        hass,
        pdu_lab(
            unit,
            resources=[
                resource_data(
                    "held", switcher_type="pdu", outlets=["pdu-a:1"], off_delay=0
                ),
                resource_data(
                    "idle", switcher_type="pdu", outlets=["pdu-a:2"], off_delay=600
                ),
                resource_data(
                    "new", switcher_type="pdu", outlets=["pdu-a:3"], off_delay=0
                ),
            ],
        ),
    )
    await call(hass, "acquire", {"resource": "held", "holder": "ci job 1"})
    response = await call(hass, "acquire", {"resource": "idle", "holder": "ci job 2"})
    await until(
        hass,
        lambda: (
            state(hass, "sensor.held_state") == "available"
            and state(hass, "sensor.idle_state") == "available"
        ),
    )
    await call(hass, "release", {"token": response["tokens"][0]["token"]})
    await hass.async_block_till_done()
    assert state(hass, "sensor.idle_state") == "available"  # its off delay runs
    assert not steps

    hass.states.async_set("sensor.ups1_status", "OB DISCHRG")
    await until(hass, lambda: state(hass, "sensor.idle_state") == "off")
    assert not netio.on[1]
    assert [event.data["step"] for event in steps] == [
        "refuse_acquire",
        "on_battery",
        "shed_idle",
    ]
    assert steps[1].data["holders"] == ["ci job 1"]
    assert steps[2].data["resources"] == ["idle"]
    assert all("sensor.ups1_status" in event.data["cause"] for event in steps)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "acquire", {"resource": "new", "holder": "ci job 3"})
    assert err.value.translation_key == "acquire_refused"
    # NUT unavailable during the outage: the policy in force stays
    hass.states.async_set("sensor.ups1_status", "unavailable")
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError):
        await call(hass, "acquire", {"resource": "new", "holder": "ci job 3"})
    hass.states.async_set("sensor.ups1_status", "OB DISCHRG")
    await hass.async_block_till_done()
    assert state(hass, "sensor.held_state") == "available"
    redundancy = hass.states.get("binary_sensor.held_power_redundancy")
    assert redundancy.state == STATE_ON
    assert redundancy.attributes["power_chain"] == ["psu1 -> pdu-a:outlet1 -> ups1"]
    assert redundancy.attributes["problems"] == [
        "psu1 -> pdu-a:outlet1 -> ups1: on battery"
    ]

    hass.states.async_set("sensor.ups1_status", "OB LB")
    await until(hass, lambda: state(hass, "sensor.held_state") == "off")
    assert not netio.on[0]
    # Low battery adds its own step; the on-battery ones are not taken (nor told) again.
    assert [event.data["step"] for event in steps] == [
        "refuse_acquire",
        "on_battery",
        "shed_idle",
        "shutdown_held",
    ]
    assert steps[-1].data["resources"] == ["held"]
    assert event_tokens(revoked) == ["ci job 1"]

    hass.states.async_set("sensor.ups1_status", "OL CHRG")
    await hass.async_block_till_done()
    assert steps[-1].data["step"] == "accept_acquire"
    await call(hass, "acquire", {"resource": "new", "holder": "ci job 3"})


async def test_intellinet_unit_flow(
    hass: HomeAssistant, intellinet: FakeIntellinet
) -> None:
    """An Intellinet unit has one account; its outlet count comes from the unit."""
    entry = lab_entry()
    entry.add_to_hass(hass)
    result = await unit_flow(
        hass,
        entry,
        {
            "name": "rack-1",
            "vendor": "intellinet",
            "host": HOST,
            "port": intellinet.port,
        },
    )
    assert set(result["data_schema"].schema) == {"username", "password"}
    # Only the start page asks for the password: the flow checks it there.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"username": "admin", "password": "guessed"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert [seen.path for seen in intellinet.log] == ["/"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"username": "admin", "password": "admin"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["outlet_count"] == 8


async def test_intellinet_wrong_credentials_raise_a_repair(
    hass: HomeAssistant, intellinet: FakeIntellinet
) -> None:
    """The status page answers anyone; the start page refuses: a repair, until fixed."""
    await setup_integration(
        hass,
        pdu_lab(
            intellinet_data(intellinet, password="changed"),
            resources=[
                resource_data(
                    "b-1", switcher_type="pdu", outlets=["pdu-b:2"], off_delay=0
                )
            ],
        ),
    )
    issue_id = "pdu_auth_entry_lab_sub_pdu-b"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["unit"] == "pdu-b"
    assert state(hass, "switch.pdu_b_outlet_2") == STATE_UNAVAILABLE
    assert not intellinet.calls(path="/status.xml")  # nothing past the refusal
    # The resource is in fault already: an acquire is refused with the reason.
    with pytest.raises(HomeAssistantError, match="refused the credentials"):
        await call(hass, "acquire", {"resource": "b-1", "holder": "ci"})
    assert state(hass, "sensor.b_1_state") == "fault"
    reason = hass.states.get("sensor.b_1_state").attributes["reason"]
    assert "refused the credentials" in reason
    assert not any(intellinet.on)  # the control page would have answered: not asked
    # The unit's password is set to what labpower has: the next read clears the issue.
    intellinet.accounts["admin"] = "changed"
    runtime = hass.config_entries.async_get_entry("entry_lab").runtime_data
    await runtime.units["pdu-b"].unit.status(max_age=0)
    await until(hass, lambda: state(hass, "switch.pdu_b_outlet_2") != STATE_UNAVAILABLE)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


def gude_data(unit: FakeGude, **overrides: Any) -> dict[str, Any]:
    """A Gude unit subentry without credentials."""
    return {
        "name": "pdu-g",
        "vendor": "gude",
        "host": HOST,
        "port": unit.port,
        "outlet_count": unit.outlet_count,
        **overrides,
    }


async def test_gude_unit_flow_in_each_dialect(hass: HomeAssistant) -> None:
    """An 8080-style unit (ov.html only) is added; a session login unit says what to do."""
    entry = lab_entry()
    entry.add_to_hass(hass)

    async def added(gude: FakeGude) -> Any:
        """The unit flow for this unit (no credentials), to its end."""
        result = await unit_flow(
            hass,
            entry,
            {"name": "rack-g", "vendor": "gude", "host": HOST, "port": gude.port},
        )
        return await hass.config_entries.subentries.async_configure(
            result["flow_id"], {}
        )

    async with FakeGude(firmware="ov.html") as gude:  # not even ov.html: not a Gude
        gude.override("/ov.html", status=404, body="Not Found")
        assert (await added(gude))["errors"] == {"base": "pdu_misconfigured"}
    async with FakeGude(firmware="session") as gude:
        assert (await added(gude))["errors"] == {"base": "login_page"}
    async with FakeGude(firmware="ov.html", outlet_count=12) as gude:
        result = await added(gude)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["outlet_count"] == 12


async def test_gude_session_login_raises_a_repair(hass: HomeAssistant) -> None:
    """The login page instead of data: one repair for the unit, cleared once it answers."""
    async with FakeGude(firmware="session") as gude:
        await setup_integration(
            hass,
            pdu_lab(
                gude_data(gude),
                resources=[
                    resource_data(
                        "g-1", switcher_type="pdu", outlets=["pdu-g:1"], off_delay=0
                    )
                ],
            ),
        )
        issue_id = "pdu_login_page_entry_lab_sub_pdu-g"
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_key == "pdu_login_page"
        assert issue.translation_placeholders["unit"] == "pdu-g"
        assert "Basic Auth compatible" in issue.translation_placeholders["detail"]
        assert state(hass, "switch.pdu_g_outlet_1") == STATE_UNAVAILABLE
        with pytest.raises(HomeAssistantError, match="login page"):
            await call(hass, "acquire", {"resource": "g-1", "holder": "ci"})
        assert state(hass, "sensor.g_1_state") == "fault"
        assert "login page" in hass.states.get("sensor.g_1_state").attributes["reason"]
        # the unit's own repair, not one per resource fed by it
        assert [
            key for domain, key in ir.async_get(hass).issues if domain == DOMAIN
        ] == [issue_id]
        assert not gude.commands()
        gude.firmware = "status.json"  # Basic-compatible authentication turned on
        runtime = hass.config_entries.async_get_entry("entry_lab").runtime_data
        await runtime.units["pdu-g"].unit.status(max_age=0)
        await until(
            hass, lambda: state(hass, "switch.pdu_g_outlet_1") != STATE_UNAVAILABLE
        )
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        await hass.config_entries.async_unload(
            hass.config_entries.async_get_entry("entry_lab").entry_id
        )


async def test_diagnostics_redact_unit_secrets(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, netio: FakeNetio
) -> None:
    """Units appear in diagnostics with their request counts; credentials do not."""
    entry = await setup_integration(
        hass, pdu_lab(netio_data(netio), resources=[dual_fed()])
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diagnostics)
    assert "read-secret" not in text
    assert "write-secret" not in text
    assert diagnostics["units"]["pdu-a"]["status_reads"] >= 1
    assert diagnostics["units"]["pdu-a"]["fed"] == {"1": "server-1"}
    # pdu-b is not configured: that feed reports the missing unit
    assert diagnostics["resources"]["server-1"]["feeds"] == [
        "pdu-a:outlet1",
        "pdu-b:outlet1",
    ]
    reason = diagnostics["resources"]["server-1"]["reason"]
    assert "pdu-b:outlet1: the PDU unit does not exist" in reason


async def test_units_and_dual_fed_resource_added_as_users_do(
    hass: HomeAssistant, netio: FakeNetio, intellinet: FakeIntellinet
) -> None:
    """Units added in the config flow, a resource on an outlet of each, acquire, release."""
    entry = lab_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for first, second in (
        (
            {"name": "pdu-a", "vendor": "netio", "host": HOST, "port": netio.port},
            {
                "username": "reader",
                "password": "read-secret",
                "write_username": "writer",
                "write_password": "write-secret",
            },
        ),
        (
            {
                "name": "pdu-b",
                "vendor": "intellinet",
                "host": HOST,
                "port": intellinet.port,
            },
            {"username": "admin", "password": "admin"},
        ),
    ):
        result = await unit_flow(hass, entry, first)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], second
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "server-1", "switcher_type": "pdu", "checker_type": "none"},
    )
    details = {
        key: value
        for key, value in dual_fed().items()
        if key not in ("name", "switcher_type", "checker_type", "power_entity")
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**details, "outlets": ["pdu-a:1", "pdu-b:1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    response = await call(hass, "acquire", {"resource": "server-1", "holder": "me"})
    await until(hass, lambda: state(hass, "sensor.server_1_state") == "available")
    assert netio.on[0]
    assert intellinet.on[0]
    await until(
        hass,
        lambda: (
            state(hass, "switch.pdu_a_outlet_1") == STATE_ON
            and state(hass, "switch.pdu_b_outlet_1") == STATE_ON
        ),
    )
    await call(hass, "release", {"token": response["tokens"][0]["token"]})
    await until(hass, lambda: state(hass, "sensor.server_1_state") == "off")
    assert not netio.on[0]
    assert not intellinet.on[0]


async def test_one_outlet_feeds_one_resource(
    hass: HomeAssistant, netio: FakeNetio
) -> None:
    """Two resources stored on one outlet: neither switches it; the UI offers it no more."""
    entry = await setup_integration(
        hass,
        pdu_lab(
            netio_data(netio),
            resources=[
                resource_data(
                    "first", switcher_type="pdu", outlets=["pdu-a:2"], off_delay=0
                ),
                resource_data(
                    "second", switcher_type="pdu", outlets=["pdu-a:2"], off_delay=0
                ),
            ],
        ),
    )
    # Both are in fault at once: an acquire is refused with the reason, nothing switches.
    with pytest.raises(HomeAssistantError, match="also feeds second"):
        await call(hass, "acquire", {"resource": "first", "holder": "ci"})
    for name, other in (("first", "second"), ("second", "first")):
        await until(hass, lambda n=name: state(hass, f"sensor.{n}_state") == "fault")
        assert hass.states.get(f"sensor.{name}_state").attributes["reason"] == (
            f"outlet pdu-a:2: also feeds {other}: labpower switches none of them"
        )
    assert not netio.on[1]  # switching it for one would switch the other
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"feed_shared_{entry.entry_id}_outlet_pdu-a:2"
    )
    assert issue is not None
    assert issue.translation_placeholders == {
        "feed": "outlet pdu-a:2",
        "resources": "first, second",
    }
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_RESOURCE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "third", "switcher_type": "pdu", "checker_type": "none"},
    )
    options = result["data_schema"].schema["outlets"].config["options"]
    assert options == ["pdu-a:1", "pdu-a:3", "pdu-a:4"]


async def test_unit_with_invalid_settings(hass: HomeAssistant) -> None:
    """A unit whose settings its driver refuses: a repair, its resources in fault."""
    unit = {
        "name": "pdu-v3",
        "vendor": "snmp",
        "host": HOST,
        "snmp_version": "3",
        "username": "lab",
        "auth_protocol": "sha",
        "auth_key": "short",
        "outlet_count": 8,
    }
    await setup_integration(
        hass,
        pdu_lab(
            unit,
            resources=[resource_data("r", switcher_type="pdu", outlets=["pdu-v3:1"])],
        ),
    )
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, "pdu_invalid_entry_lab_sub_pdu-v3"
    )
    assert issue is not None
    assert issue.translation_placeholders["unit"] == "pdu-v3"
    reason = hass.states.get("sensor.r_state").attributes["reason"]
    assert "the PDU unit does not exist" in reason


async def test_unit_and_resource_from_the_lab_file(
    hass: HomeAssistant, netio: FakeNetio, tmp_path: Path
) -> None:
    """A unit the lab file defines works as one added in the UI: outlets, feeds, names."""
    hass.config.config_dir = str(tmp_path)
    netio.names = ["build-1", "", "Outlet 3", "spare"]
    (tmp_path / "labpower.yaml").write_text(
        f"""\
units:
  - name: pdu-f
    vendor: netio
    host: {HOST}
    port: {netio.port}
    username: reader
    password: read-secret
    write_username: writer
    write_password: write-secret
resources:
  - name: file-server
    outlets: [pdu-f:1]
    off_delay: 0
"""
    )
    entry = lab_entry(title="File lab", lab_file="labpower.yaml")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # outlets named from the unit where it stores names
    assert hass.states.get("switch.pdu_f_outlet_1_build_1").name == (
        "pdu-f Outlet 1 (build-1)"
    )
    assert hass.states.get("switch.pdu_f_outlet_3").name == "pdu-f Outlet 3"
    response = await call(hass, "acquire", {"resource": "file-server", "holder": "ci"})
    await until(hass, lambda: state(hass, "sensor.file_server_state") == "available")
    assert netio.on[0]
    await call(hass, "release", {"token": response["tokens"][0]["token"]})
    await until(hass, lambda: state(hass, "sensor.file_server_state") == "off")
    assert not netio.on[0]
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, "file_unit_pdu-f"), "entry_file_lab"
    )
    assert device is not None
    assert device.name == "pdu-f"
    assert device.serial_number == netio.serial


async def test_per_unit_power_on_limit(hass: HomeAssistant, netio: FakeNetio) -> None:
    """One power-on at a time on this unit, 0.3 s apart: four outlets, four requests."""
    spacing = 0.3
    await setup_integration(
        hass,
        pdu_lab(
            netio_data(netio),
            resources=[
                resource_data(f"n{n}", switcher_type="pdu", outlets=[f"pdu-a:{n}"])
                for n in range(1, 5)
            ],
            per_unit_parallel_on=1,
            on_spacing=spacing,
        ),
    )
    before = len(netio.calls(method="POST"))
    await call(hass, "acquire", {"resource": ["n1", "n2", "n3", "n4"], "holder": "ci"})
    await until(hass, lambda: all(netio.on))
    # one outlet per request (the limit holds the others back), spacing apart
    commands = netio.calls(method="POST")[before:]
    assert len(commands) == 4
    times = [seen.at for seen in commands]
    assert all(b - a >= spacing * 0.9 for a, b in itertools.pairwise(times))
