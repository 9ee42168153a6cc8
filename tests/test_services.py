"""The actions through Home Assistant: acquire, release, renew, list, force_off."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.labpower.const import DOMAIN

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, event_tokens, holders, state


async def test_acquire_release_cycle(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, lab: MockConfigEntry
) -> None:
    acquired = async_capture_events(hass, "labpower_token_acquired")
    released = async_capture_events(hass, "labpower_token_released")
    power = async_capture_events(hass, "labpower_power_changed")
    taken = dt_util.utcnow().isoformat()
    response = await call(
        hass, "acquire", {"resource": "builder-1", "holder": "jenkins #7"}
    )
    [token] = response["tokens"]
    assert token["resource"] == "builder-1"
    assert len(token["token"]) >= 22
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    assert state(hass, "sensor.builder_1_state") == "available"
    assert state(hass, "binary_sensor.builder_1_available") == "on"
    assert state(hass, "switch.builder_1_power") == "on"
    assert state(hass, "sensor.builder_1_holders") == "1"
    # the holder total is written with the change the answer waited for (issue 20)
    assert state(hass, "sensor.lab_holders") == "1"
    await advance(hass, freezer, 1)  # other totals follow within a second
    assert state(hass, "sensor.lab_resources_on") == "1"
    [event] = acquired
    assert event.data == {
        "resource": "builder-1",
        "tokens": [
            {
                "holder": "jenkins #7",
                "kind": "lease",
                "since": taken,
                "user_id": None,
                "cause": "jenkins #7",
            }
        ],
        "device_id": lab.runtime_data.device_id_of("builder-1"),
    }  # no token id: ids are secrets
    assert power[0].data == {
        "resource": "builder-1",
        "action": "on",
        "cause": "acquired by jenkins #7",
        "device_id": lab.runtime_data.device_id_of("builder-1"),
    }
    assert power[0].data["device_id"] is not None

    assert await call(hass, "release", {"token": token["token"]}) == {"released": 1}
    assert await call(hass, "release", {"token": [token["token"]]}) == {"released": 0}
    assert event_tokens(released) == ["jenkins #7"]
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "0"
    assert state(hass, "input_boolean.builder_1_relay") == "on"  # off delay: 30 s
    await advance(hass, freezer, 29)
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    await advance(hass, freezer, 2)
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert state(hass, "sensor.builder_1_state") == "off"
    assert state(hass, "switch.builder_1_power") == "off"
    assert power[-1].data["cause"] == "released by jenkins #7"


@pytest.mark.usefixtures("lab")
async def test_acquire_many_and_by_target(hass: HomeAssistant) -> None:
    response = await call(hass, "acquire", {"resource": ["builder-1", "builder-2"]})
    assert {t["resource"] for t in response["tokens"]} == {"builder-1", "builder-2"}
    response = await call(hass, "acquire", {"entity_id": "switch.builder_2_power"})
    assert [t["resource"] for t in response["tokens"]] == ["builder-2"]
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, entry.runtime_data.subentry_of["builder-1"]),
        config_entry_id=entry.entry_id,
    )
    assert device is not None
    response = await call(hass, "acquire", {"device_id": device.id, "ttl": 60})
    assert [t["resource"] for t in response["tokens"]] == ["builder-1"]
    await hass.async_block_till_done()
    assert await holders(hass, "builder-2") == "2"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1))
    await hass.async_block_till_done()
    assert state(hass, "sensor.lab_holders") == "4"


@pytest.mark.usefixtures("lab")
@pytest.mark.parametrize(
    ("data", "key", "placeholders"),
    [
        ({"resource": ["builder-1", "nope"]}, "unknown_resource", {"resource": "nope"}),
        (
            {"resource": "builder-1", "ttl": 7200},
            "invalid_ttl",
            {"resource": "builder-1", "ttl": "7200", "max_ttl": "3600"},
        ),
        ({"holder": "ci"}, "no_resource", None),
        ({"entity_id": "input_boolean.builder_1_relay"}, "no_resource", None),
    ],
)
async def test_acquire_refused_takes_nothing(
    hass: HomeAssistant,
    data: dict[str, Any],
    key: str,
    placeholders: dict[str, str] | None,
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "acquire", data)
    assert err.value.translation_key == key
    assert err.value.translation_domain == DOMAIN
    if placeholders:
        assert err.value.translation_placeholders == placeholders
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "0"
    assert state(hass, "input_boolean.builder_1_relay") == "off"


@pytest.mark.usefixtures("lab")
async def test_schema_errors_are_validation_errors(hass: HomeAssistant) -> None:
    for data in (
        {"resource": "builder-1", "ttl": -1},
        {"resource": "builder-1", "wait": "x"},
    ):
        with pytest.raises(vol.Invalid):
            await call(hass, "acquire", data)
    with pytest.raises(vol.Invalid):
        await call(hass, "release", {})


@pytest.mark.usefixtures("lab")
async def test_release_and_renew_errors(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "release", {"token": "not-a-token-at-all"})
    assert err.value.translation_key == "unknown_token"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "renew", {"token": "not-a-token-at-all"})
    assert err.value.translation_key == "unknown_token"
    [token] = (await call(hass, "acquire", {"resource": "builder-1", "ttl": 60}))[
        "tokens"
    ]
    # a list with one unknown token releases nothing
    with pytest.raises(ServiceValidationError):
        await call(hass, "release", {"token": [token["token"], "not-a-token-at-all"]})
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "1"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "renew", {"token": token["token"], "ttl": 99999})
    assert err.value.translation_key == "invalid_ttl"
    renewed = await call(hass, "renew", {"token": token["token"], "ttl": 3000})
    assert renewed["tokens"][0]["expires"] > token["expires"]


async def test_lease_expires(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "builder-1")
    entry = lab_entry(resource_data("builder-1", off_delay=0))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    expired = async_capture_events(hass, "labpower_token_expired")
    await call(
        hass, "acquire", {"resource": "builder-1", "ttl": 120, "holder": "short job"}
    )
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    await advance(hass, freezer, 119)
    assert state(hass, "sensor.builder_1_holders") == "1"
    await advance(hass, freezer, 2)
    assert state(hass, "sensor.builder_1_holders") == "0"
    assert event_tokens(expired) == ["short job"]
    await advance(hass, freezer, 1)
    assert state(hass, "input_boolean.builder_1_relay") == "off"


async def _lab_with_sensor(hass: HomeAssistant, **policy: Any) -> MockConfigEntry:
    await setup_relays(hass, "builder-1")
    hass.states.async_set("binary_sensor.builder_1_up", "off")
    entry = lab_entry(
        resource_data(
            "builder-1",
            checker_type="entity",
            check_entity="binary_sensor.builder_1_up",
            **policy,
        )
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_acquire_waits_until_available(hass: HomeAssistant) -> None:
    await _lab_with_sensor(hass)
    task = asyncio.ensure_future(
        call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 30},
        )
    )
    await hass.async_block_till_done(wait_background_tasks=False)
    assert not task.done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    assert state(hass, "sensor.builder_1_state") == "starting"
    hass.states.async_set("binary_sensor.builder_1_up", "on")
    response = await task
    assert response["tokens"][0]["state"] == "available"


async def test_wait_timeout_releases(hass: HomeAssistant) -> None:
    await _lab_with_sensor(hass)
    # The answer to the caller's own timeout, not a server error (HA's REST API: 400).
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 0.05},
        )
    assert err.value.translation_key == "wait_timeout"
    assert err.value.translation_placeholders == {
        "resources": "builder-1",
        "timeout": "0.05",
    }
    await hass.async_block_till_done()
    assert await holders(hass, "builder-1") == "0"


async def test_wait_fails_fast_on_fault(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab_with_sensor(hass, start_timeout=10)
    task = asyncio.ensure_future(
        call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 600},
        )
    )
    await hass.async_block_till_done(wait_background_tasks=False)
    await advance(hass, freezer, 12)
    await advance(hass, freezer, 2)
    with pytest.raises(HomeAssistantError) as err:
        await task
    assert err.value.translation_key == "resource_fault"
    assert err.value.translation_placeholders == {
        "resource": "builder-1",
        "reason": "start_timeout",
    }
    assert state(hass, "sensor.builder_1_holders") == "0"


@pytest.mark.usefixtures("lab")
async def test_list_hides_other_users_token_ids(
    hass: HomeAssistant, hass_admin_user: User, hass_read_only_user: User
) -> None:
    admin = Context(user_id=hass_admin_user.id)
    user = Context(user_id=hass_read_only_user.id)
    await call(hass, "acquire", {"resource": "builder-1", "holder": "admin job"}, admin)
    mine = (
        await call(hass, "acquire", {"resource": "builder-1", "kind": "hold"}, user)
    )["tokens"][0]["token"]
    as_user = await call(hass, "list", {"resource": "builder-1"}, user)
    [resource] = as_user["resources"]
    assert resource["name"] == "builder-1"
    assert resource["holders"] == 2
    by_holder = {t["holder"]: t for t in resource["tokens"]}
    assert by_holder["admin job"]["token"] is None
    assert by_holder[hass_read_only_user.name]["token"] == mine
    assert by_holder[hass_read_only_user.name]["kind"] == "hold"
    assert by_holder[hass_read_only_user.name]["expires"] is None
    as_admin = await call(hass, "list", {}, admin)
    assert {r["name"] for r in as_admin["resources"]} == {"builder-1", "builder-2"}
    assert all(t["token"] for r in as_admin["resources"] for t in r["tokens"])
    with pytest.raises(ServiceValidationError):
        await call(hass, "list", {"resource": "nope"})


@pytest.mark.usefixtures("lab")
async def test_force_off_admin_only(
    hass: HomeAssistant, hass_admin_user: User, hass_read_only_user: User
) -> None:
    revoked = async_capture_events(hass, "labpower_token_revoked")
    await call(hass, "acquire", {"resource": "builder-1", "holder": "long job"})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    with pytest.raises(Unauthorized):
        await call(
            hass,
            "force_off",
            {"resource": "builder-1"},
            Context(user_id=hass_read_only_user.id),
        )
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    response = await call(
        hass,
        "force_off",
        {"resource": "builder-1"},
        Context(user_id=hass_admin_user.id),
    )
    assert response == {"revoked": 1}
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert await holders(hass, "builder-1") == "0"
    assert event_tokens(revoked, "cause") == [f"forced off by {hass_admin_user.name}"]


async def test_force_off_ends_a_wait(
    hass: HomeAssistant, hass_admin_user: User
) -> None:
    await _lab_with_sensor(hass)
    waiting = asyncio.ensure_future(
        call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 600},
        )
    )
    await hass.async_block_till_done(wait_background_tasks=False)
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    await call(
        hass,
        "force_off",
        {"resource": "builder-1"},
        Context(user_id=hass_admin_user.id),
    )
    with pytest.raises(HomeAssistantError) as err:
        await waiting
    assert err.value.translation_key == "token_revoked"
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"


async def test_cancelled_wait_releases(hass: HomeAssistant) -> None:
    await _lab_with_sensor(hass)
    waiting = asyncio.ensure_future(
        call(
            hass,
            "acquire",
            {"resource": "builder-1", "wait": "available", "timeout": 600},
        )
    )
    await hass.async_block_till_done(wait_background_tasks=False)
    assert state(hass, "sensor.builder_1_holders") == "1"
    waiting.cancel()  # the caller went away
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await hass.async_block_till_done()
    assert await holders(hass, "builder-1") == "0"
