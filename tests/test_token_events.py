"""Token events through Home Assistant: a resource's bursts in one event per kind."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from .peers.ha import advance, call, event_tokens, throttled_done

ACQUIRED = "labpower_token_acquired"
RELEASED = "labpower_token_released"


async def test_a_lone_change_is_fired_at_once_a_burst_together(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, lab: MockConfigEntry
) -> None:
    """The first change in a second goes at once; the rest of that second, in one event."""
    acquired = async_capture_events(hass, ACQUIRED)
    released = async_capture_events(hass, RELEASED)
    fired: list[str] = []
    for event_type in (ACQUIRED, RELEASED):
        hass.bus.async_listen(event_type, lambda e: fired.append(e.event_type))
    first = await call(hass, "acquire", {"resource": "builder-1", "holder": "first"})
    assert event_tokens(acquired) == ["first"]
    # builder-2 is another resource: its first change goes at once too
    await call(hass, "acquire", {"resource": "builder-2", "holder": "other"})
    assert [e.data["resource"] for e in acquired] == ["builder-1", "builder-2"]
    await call(hass, "release", {"token": first["tokens"][0]["token"]})
    tokens = [
        (await call(hass, "acquire", {"resource": "builder-1", "holder": f"job {n}"}))[
            "tokens"
        ][0]["token"]
        for n in range(3)
    ]
    await call(hass, "release", {"token": tokens[0]})
    assert len(acquired) == 2  # they wait for the second's end
    assert released == []
    await throttled_done(hass)
    # one event per kind, the acquisitions first: job 0's acquire before its release
    assert event_tokens(acquired[2:]) == ["job 0", "job 1", "job 2"]
    assert event_tokens(released) == ["first", "job 0"]
    assert fired == [ACQUIRED, ACQUIRED, ACQUIRED, RELEASED]
    assert acquired[2].data["device_id"] == lab.runtime_data.device_id_of("builder-1")
    # a second later, a change goes at once again
    await advance(hass, freezer, 1)
    await call(hass, "release", {"token": tokens[1]})
    assert event_tokens(released) == ["first", "job 0", "job 1"]


async def test_a_burst_is_fired_when_the_lab_unloads(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    """Nothing is lost: a pending burst goes out as the lab stops."""
    acquired = async_capture_events(hass, ACQUIRED)
    await call(hass, "acquire", {"resource": "builder-1", "holder": "first"})
    await call(hass, "acquire", {"resource": "builder-1", "holder": "second"})
    assert event_tokens(acquired) == ["first"]
    assert await hass.config_entries.async_unload(lab.entry_id)
    assert event_tokens(acquired) == ["first", "second"]
