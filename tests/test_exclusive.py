"""Exclusive tokens through Home Assistant: the action, REST, the Power switch, a restart."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.core.ledger import Ledger
from custom_components.labpower.core.model import (
    ExclusiveConflictError,
    ExclusiveNeedsFreeError,
    ResourcePolicy,
    TokenKind,
    duration_text,
)

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, setup_integration, state
from .peers.rest import error_of, rest_api

SWITCH = "switch.builder_1_power"


async def test_exclusive_refuses_others_and_is_refused_while_held(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    mine = await call(
        hass,
        "acquire",
        {"resource": "builder-1", "holder": "me", "exclusive": True, "ttl": 1800},
    )
    assert mine["tokens"][0]["exclusive"] is True
    with pytest.raises(ServiceValidationError) as refused:
        await call(
            hass, "acquire", {"resource": "builder-1", "holder": "jenkins #4711"}
        )
    assert refused.value.translation_key == "held_exclusively"
    assert refused.value.translation_placeholders == {
        "resource": "builder-1",
        "holders": "me",
        "left": "30 min left",
    }
    # All or none: builder-2 is not taken because builder-1 is refused.
    with pytest.raises(ServiceValidationError):
        await call(hass, "acquire", {"resource": ["builder-2", "builder-1"]})
    assert lab.runtime_data.lab.ledger.holder_count("builder-2") == 0
    # A shared token on builder-2 refuses an exclusive one there.
    await call(
        hass, "acquire", {"resource": "builder-2", "holder": "ci", "kind": "hold"}
    )
    with pytest.raises(ServiceValidationError) as busy:
        await call(hass, "acquire", {"resource": "builder-2", "exclusive": True})
    assert busy.value.translation_key == "exclusive_needs_free"
    assert busy.value.translation_placeholders["left"] == "until released"
    # Released, builder-1 can be shared again.
    await call(hass, "release", {"token": mine["tokens"][0]["token"]})
    await call(hass, "acquire", {"resource": "builder-1", "holder": "jenkins #4711"})


async def test_force_off_ends_an_exclusive_token(
    hass: HomeAssistant, lab: MockConfigEntry, hass_admin_user: Any
) -> None:
    await call(
        hass, "acquire", {"resource": "builder-1", "exclusive": True, "kind": "hold"}
    )
    assert await call(hass, "force_off", {"resource": "builder-1"}) == {"revoked": 1}
    await call(hass, "acquire", {"resource": "builder-1", "holder": "next"})


async def test_rest_exclusive_conflict_is_a_409_naming_the_holder(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
) -> None:
    api = await rest_api(hass_client, hass_access_token)
    taken = await api(
        "POST",
        "/resources/builder-1/tokens",
        json={"holder": "me", "exclusive": True, "ttl": 600},
    )
    assert taken.status == 201
    assert (await taken.json())["exclusive"] is True
    error = await error_of(
        await api("POST", "/resources/builder-1/tokens", json={"holder": "ci"}), 409
    )
    assert error["code"] == "held_exclusively"
    assert error["holders"] == ["me"]
    assert 599 <= error["seconds_left"] <= 600
    assert "me" in error["message"]
    detail = await (await api("GET", "/resources/builder-1")).json()
    assert detail["tokens"][0]["exclusive"] is True
    bad = await error_of(
        await api("POST", "/resources/builder-2/tokens", json={"exclusive": "yes"}),
        400,
    )
    assert bad["field"] == "exclusive"


async def test_power_switch_holds_exclusively_with_the_lab_option(
    hass: HomeAssistant,
) -> None:
    await setup_relays(hass, "builder-1")
    entry = await setup_integration(
        hass, lab_entry(resource_data("builder-1"), ui_hold_exclusive=True)
    )
    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    [hold] = entry.runtime_data.lab.ledger.tokens("builder-1")
    assert hold.exclusive
    assert hold.kind is TokenKind.HOLD
    assert state(hass, SWITCH) == "on"
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "acquire", {"resource": "builder-1", "holder": "ci"})
    assert refused.value.translation_key == "held_exclusively"
    # On again renews the same hold: it is not refused by itself.
    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    assert entry.runtime_data.lab.ledger.holder_count("builder-1") == 1


async def test_power_switch_refused_while_held_exclusively(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    await call(
        hass, "acquire", {"resource": "builder-1", "exclusive": True, "holder": "me"}
    )
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            "switch", "turn_on", {ATTR_ENTITY_ID: SWITCH}, blocking=True
        )
    assert refused.value.translation_key == "held_exclusively"


async def test_exclusive_survives_a_reload(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    await call(
        hass, "acquire", {"resource": "builder-1", "exclusive": True, "holder": "me"}
    )
    assert await hass.config_entries.async_reload(lab.entry_id)
    await hass.async_block_till_done()
    [token] = lab.runtime_data.lab.ledger.tokens("builder-1")
    assert token.exclusive
    with pytest.raises(ServiceValidationError):
        await call(hass, "acquire", {"resource": "builder-1"})
    await advance(hass, freezer, 601)  # the default ttl: it expires, then it is free
    await call(hass, "acquire", {"resource": "builder-1"})


def test_old_stores_without_the_flag_load_shared() -> None:
    ledger = Ledger(lambda: 100.0)
    ledger.set_policy("a", ResourcePolicy())
    token = {
        "id": "t" * 22,
        "resource": "a",
        "holder": "old",
        "kind": "hold",
        "created": 1.0,
        "expires": None,
    }
    ledger.load(
        {"version": 1, "tokens": [token], "off_at": {}, "last_off": {}, "released": {}}
    )
    [loaded] = ledger.tokens("a")
    assert not loaded.exclusive
    ledger.acquire("a", "new")  # shared with the old one


def test_the_time_left_reads_as_people_say_it() -> None:
    assert [duration_text(s) for s in (-3, 45, 60, 61, 3599, 3600, 7530)] == [
        "0 s",
        "45 s",
        "1 min",
        "2 min",
        "1 h 00 min",
        "1 h 00 min",
        "2 h 06 min",
    ]
    err = ExclusiveNeedsFreeError("a", ["x", "y"], None)
    assert err.key == "exclusive_needs_free"
    assert isinstance(err, ExclusiveConflictError)
    assert str(err) == "a cannot be taken exclusively: in use by x, y (until released)"
