"""The demo lab of scripts/develop works with no hardware: acquire, start, available, off."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
)

from .conftest import until
from .peers.demo import demo_configuration, setup_demo
from .peers.flows import error_text, resource_form
from .peers.ha import call, say, state
from .peers.hass_process import seed_module


async def test_demo_lab(hass: HomeAssistant) -> None:
    configuration = demo_configuration()
    seed = seed_module()
    # As shipped: hosts boot within a minute, resources go off 30 s after the last release.
    sensors = configuration["template"][0]["binary_sensor"]
    assert all(sensor.get("delay_on", 0) <= 60 for sensor in sensors)
    assert seed.DEMO_POLICY["off_delay"] == 30
    # Here in fast motion: the same configuration with boot times and delays shrunk.
    entry = await setup_demo(hass)
    # Steady: every resource's state is known, the front-panel machine's too.
    for name in ("builder_1", "builder_2", "ci_runner", "network_switch", "pi_maas"):
        assert state(hass, f"sensor.{name}_state") == "off", name
    assert {r["name"] for r in (await call(hass, "list", {}))["resources"]} == {
        "builder-1",
        "builder-2",
        "ci-runner",
        "network-switch",
        "pi-maas",
    }

    response = await call(
        hass,
        "acquire",
        {"resource": ["builder-1", "pi-maas"], "wait": "available", "timeout": 10},
    )
    assert {t["state"] for t in response["tokens"]} == {"available"}
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    assert state(hass, "input_boolean.switch_relay") == "on"  # builder-1 needs it
    assert (
        state(hass, "input_boolean.atx_machine_power") == "on"
    )  # the front panel was pressed
    # lab totals follow within a second (a timer on HA's scheduler)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
    await hass.async_block_till_done()
    assert state(hass, "sensor.demo_lab_resources_on") == "3"

    await call(hass, "release", {"token": [t["token"] for t in response["tokens"]]})
    # The off delay (0.1 s here) runs on the lab's clock, real time in this test as the
    # boot delays above: wait for the pi's shutdown press to end, not a fixed time.
    await until(
        hass,
        lambda: (
            state(hass, "sensor.pi_maas_state") == "off"
            and state(hass, "sensor.builder_1_state") == "off"
        ),
    )
    assert state(hass, "input_boolean.builder_1_relay") == "off"
    assert state(hass, "sensor.builder_1_state") == "off"
    # the pi was asked to shut down with a short press: the simulated board turned off
    assert state(hass, "input_boolean.atx_machine_power") == "off"
    assert state(hass, "sensor.pi_maas_state") == "off"

    # one feed, one owner: a new resource on builder-1's relay is refused, by name
    result = await resource_form(hass, entry, "builder-3", "entity")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"power_entity": "input_boolean.builder_1_relay", **seed.DEMO_POLICY},
    )
    assert result["errors"] == {"power_entity": "feed_in_use"}
    assert await error_text(
        hass, "feed_in_use", result["description_placeholders"]
    ) == (
        "input_boolean.builder_1_relay already feeds builder-1. A feed powers one "
        "resource only: if several machines share it (a Pi stack's relay), add it "
        "as a resource of its own and let them depend on it."
    )


async def test_demo_assist(hass: HomeAssistant, hass_admin_user: User) -> None:
    """The issue's sentences, asked of the demo lab as shipped (off delay 30 s)."""
    for domain in ("homeassistant", "conversation", "intent"):
        assert await async_setup_component(hass, domain, {})
    await setup_demo(hass, shipped=True)
    me = Context(user_id=hass_admin_user.id)
    await call(hass, "acquire", {"resource": "builder-1", "holder": "alice"})
    await until(hass, lambda: state(hass, "sensor.builder_1_state") == "available")
    answers = {
        text: await say(hass, text, me)
        for text in (
            "is builder-1 available",
            "who is using builder-1",
            "how many holders does builder-1 have",
            "how many people use builder-1",
            "which lab machines are on",
            "what is the state of builder-1",
            "reserve builder-2 for 2 hours",
            "release builder-2",
            "turn off builder-1 power",
        )
    }
    until_time = answers["reserve builder-2 for 2 hours"].split("until ")[1][:5]
    # answered once the token is on disk: the relay may have switched meanwhile
    reserved = answers.pop("reserve builder-2 for 2 hours")
    assert reserved in (
        f"Reserved builder-2 for you for 2 hours, until {until_time}. {now}"
        for now in ("It is powering on.", "It is starting.")
    )
    assert answers == {
        "is builder-1 available": "Yes, builder-1 is available. alice is using it.",
        "who is using builder-1": "alice is using builder-1.",
        "how many holders does builder-1 have": "builder-1 has 1 holder.",
        "how many people use builder-1": "builder-1 has 1 holder.",
        "which lab machines are on": (
            "2 lab machines are on: builder-1 and network-switch."
        ),
        "what is the state of builder-1": "builder-1 is available.",
        "release builder-2": (
            "Released builder-2. It goes off in 1 minute unless somebody takes it."
        ),
        "turn off builder-1 power": (
            "Released, but builder-1 stays on: still used by alice."
        ),
    }
    # builder-2, reserved and released, boots on meanwhile (its off delay runs).
    await until(hass, lambda: state(hass, "binary_sensor.builder_2_reachable") == "on")
