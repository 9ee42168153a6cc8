"""Assist through the conversation API, as Home Assistant's own intent tests do it."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.assist import join_names, parse_hours, spoken

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, holders, say, state


@pytest.fixture
async def assist_lab(hass: HomeAssistant) -> MockConfigEntry:
    """builder-1 (depends on network-switch), builder-10, pi_maas; Assist running."""
    await hass.config.async_set_time_zone("UTC")
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, "intent", {})
    await setup_relays(hass, "builder-1", "builder-10", "network-switch", "pi_maas")
    entry = lab_entry(
        resource_data("network-switch"),
        resource_data("builder-1", depends_on=["network-switch"], max_ttl=86400),
        resource_data("builder-10", max_ttl=4 * 3600),
        resource_data("pi_maas", max_ttl=86400),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.mark.usefixtures("assist_lab")
async def test_questions_about_a_resource(
    hass: HomeAssistant, hass_admin_user: Any
) -> None:
    assert await say(hass, "is builder-1 available") == (
        "No, builder-1 is off. Nobody is using it."
    )
    assert await say(hass, "who is using builder-1") == "Nobody is using builder-1."
    assert await say(hass, "how many holders does builder-1 have") == (
        "builder-1 has no holder."
    )
    await call(hass, "acquire", {"resource": "builder-1", "holder": "alice"})
    await hass.async_block_till_done()
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_state") == "available"
    assert await say(hass, "Is builder 1 available?") == (
        "Yes, builder-1 is available. alice is using it."
    )
    assert await say(hass, "who is using builder-1") == "alice is using builder-1."
    await call(hass, "acquire", {"resource": "builder-1", "holder": "jenkins #12"})
    assert await say(hass, "who uses builder-1") == (
        "alice and jenkins #12 are using builder-1."
    )
    assert await say(hass, "how many people use builder-1") == (
        "builder-1 has 2 holders."
    )
    assert await say(hass, "how many holders does builder-1 have") == (
        "builder-1 has 2 holders."
    )
    # the longest name said is the one meant
    assert await say(hass, "who is using builder-10") == "Nobody is using builder-10."
    assert await say(hass, "what is the state of builder-1") == (
        "builder-1 is available."
    )
    assert await say(hass, "what is the state of pi maas") == "pi_maas is off."
    assert await say(hass, "which lab machines are on") == (
        "2 lab machines are on: network-switch and builder-1."
    )


@pytest.mark.usefixtures("assist_lab")
async def test_reserve_release_and_switch(
    hass: HomeAssistant, hass_admin_user: Any, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to("2026-10-20T09:00:00+00:00")
    me = Context(user_id=hass_admin_user.id)
    assert await say(hass, "which lab machines are on") == "No lab machine is on."
    # answered once the token is on disk: its relay may have switched meanwhile
    assert await say(hass, "reserve builder-10 for 2 hours", me) in (
        "Reserved builder-10 for you for 2 hours, until 11:00. It is powering on.",
        "Reserved builder-10 for you for 2 hours, until 11:00. It is available.",
    )
    [token] = (await call(hass, "list", {"resource": "builder-10"}))["resources"][0][
        "tokens"
    ]
    assert token["holder"] == hass_admin_user.name
    assert token["expires"] == "2026-10-20T11:00:00+00:00"
    await hass.async_block_till_done()
    assert await say(hass, "which lab machines are on") == (
        "1 lab machine is on: builder-10."
    )
    # answered once the token is on disk: its relay may have switched meanwhile
    assert await say(hass, "reserve pi_maas for two hours", me) in (
        "Reserved pi_maas for you for 2 hours, until 11:00. It is powering on.",
        "Reserved pi_maas for you for 2 hours, until 11:00. It is available.",
    )
    assert await say(hass, "reserve builder-10 for 5 hours", me) == (
        "ttl 18000 s for builder-10 must be above 0 and at most 14400 s."
    )
    assert await say(hass, "reserve builder-10 for many hours", me) == (
        "I did not understand many hours."
    )
    await call(hass, "acquire", {"resource": "builder-10", "holder": "bob"})
    assert await say(hass, "release builder-10", me) == (
        "Released builder-10. It stays on for bob."
    )
    assert await say(hass, "release builder-10", me) == (
        "You hold nothing on builder-10."
    )
    assert await say(hass, "release pi_maas", me) == (
        "Released pi_maas. It goes off in 1 minute unless somebody takes it."
    )
    # turning off through Assist: refused with the holders' names, not an error
    assert await say(hass, "turn on builder-10 power", me) == "Turned on builder-10."
    assert await holders(hass, "builder-10") == "2"
    assert await say(hass, "turn off builder-10 power", me) == (
        "Released, but builder-10 stays on: still used by bob."
    )
    assert await holders(hass, "builder-10") == "1"
    await advance(hass, freezer, 1)
    assert state(hass, "input_boolean.builder_10_relay") == "on"


async def test_only_exposed_resources_and_other_sentences_untouched(
    hass: HomeAssistant, assist_lab: MockConfigEntry
) -> None:
    async_expose_entity(hass, conversation.DOMAIN, "switch.builder_1_power", False)
    await hass.async_block_till_done()
    # builder-1 is not Assist's any more; the built-in intents answer as they would
    assert await say(hass, "who is using builder-1") != "Nobody is using builder-1."
    assert await say(hass, "which lab machines are on") == "No lab machine is on."
    assert await say(hass, "who is using builder-10") == "Nobody is using builder-10."
    # unloading the lab takes its sentences away
    await hass.config_entries.async_unload(assist_lab.entry_id)
    await hass.async_block_till_done()
    assert await say(hass, "who is using builder-10") != "Nobody is using builder-10."


@pytest.mark.usefixtures("assist_lab")
async def test_through_the_http_api(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    client = await hass_client()
    answer = await client.post(
        "/api/conversation/process",
        json={"text": "how many people use builder-1", "language": "en"},
    )
    assert answer.status == 200
    body = await answer.json()
    assert body["response"]["speech"]["plain"]["speech"] == "builder-1 has no holder."


@pytest.mark.usefixtures("assist_lab")
async def test_intents_without_a_sentence(hass: HomeAssistant) -> None:
    """The handlers answer the intent API too; an unknown resource is an error."""
    response = await intent.async_handle(
        hass, "test", "LabpowerState", {"resource": {"value": "builder-10"}}
    )
    assert response.speech["plain"]["speech"] == "builder-10 is off."
    with pytest.raises(intent.IntentHandleError):
        await intent.async_handle(
            hass, "test", "LabpowerState", {"resource": {"value": "nope"}}
        )


def test_words() -> None:
    assert spoken("Pi_MAAS-2") == "pi maas 2"
    assert join_names(["a"]) == "a"
    assert join_names(["a", "b", "c"]) == "a, b and c"
    assert parse_hours("an") == 1
    assert parse_hours("1.5") == 1.5
    assert parse_hours("0") is None
