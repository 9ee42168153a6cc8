"""What the recorder keeps: the logbook and the Holders count's long-term statistics.

It does not keep the Holders sensor's holder list: every acquire, renew and release
rewrites it, and each recorded version would be a new row (see sensor.HoldersSensor).

The logbook says who caused each power change, on the resource's device page Activity too.
A module of its own: the recorder must be set up before the hass fixture (HA's rule for
recorder tests), so every test here has it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.core import Recorder
from homeassistant.components.recorder.db_schema import Events, EventTypes
from homeassistant.components.recorder.history import state_changes_during_period
from homeassistant.components.recorder.statistics import (
    get_metadata,
    statistics_during_period,
)
from homeassistant.components.recorder.util import session_scope
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import (
    advance,
    call,
    event_tokens,
    holders as holders_of,
    state,
    throttled_done,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> Generator[None]:
    """The recorder first, then labpower from custom_components."""
    return


async def _host_acquired(hass: HomeAssistant) -> Callable[[str], str]:
    """host-1 (which needs switch-1) acquired by alice; the device id of a resource."""
    await setup_relays(hass, "switch-1", "host-1")
    entry = lab_entry(
        resource_data("switch-1"), resource_data("host-1", depends_on=["switch-1"])
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await call(hass, "acquire", {"resource": "host-1", "holder": "alice"})
    for _ in range(5):
        await hass.async_block_till_done()
    assert state(hass, "input_boolean.host_1_relay") == "on"
    devices = dr.async_get(hass)

    def device(name: str) -> str:
        found = devices.async_get_device_by_identifier(
            ("labpower", f"sub_{name}"), entry.entry_id
        )
        assert found is not None
        return found.id

    return device


async def test_power_changes_name_who_and_the_child(hass: HomeAssistant) -> None:
    """Each power change carries its cause and the resource's device (its Activity)."""
    power = async_capture_events(hass, "labpower_power_changed")
    device = await _host_acquired(hass)
    assert [
        (e.data["resource"], e.data["cause"], e.data["device_id"]) for e in power
    ] == [
        ("switch-1", "needed by host-1 (acquired by alice)", device("switch-1")),
        ("host-1", "acquired by alice", device("host-1")),
    ]


async def test_device_activity_has_labpowers_entries(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """A resource's device page Activity (the logbook by device) shows labpower's entries.

    Asked as the device page asks it (logbook/get_events with its device id): who caused
    each change, the child a dependency was powered on for, labpower's icons; nothing of
    another device.
    """
    assert await async_setup_component(hass, "logbook", {})
    start = dt_util.utcnow()
    device = await _host_acquired(hass)
    await async_wait_recording_done(hass)
    client = await hass_ws_client(hass)

    async def activity(name: str) -> list[tuple[str, str, str]]:
        await client.send_json_auto_id(
            {
                "type": "logbook/get_events",
                "start_time": start.isoformat(),
                "device_ids": [device(name)],
            }
        )
        response = await client.receive_json()
        assert response["success"], response
        return [
            (e["name"], e["message"], e["icon"])
            for e in response["result"]
            if e.get("domain") == "labpower"
        ]

    assert await activity("host-1") == [
        ("host-1", "was acquired by alice", "mdi:account-multiple"),
        ("host-1", "was powered on (acquired by alice)", "mdi:power"),
    ]
    assert await activity("switch-1") == [
        (
            "switch-1",
            "was powered on (needed by host-1 (acquired by alice))",
            "mdi:power",
        ),
    ]


async def test_holders_statistics_are_a_count(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """The Holders count (no unit) gets long-term statistics: its mean, min and max."""
    start = datetime(2026, 3, 2, 10, 0, tzinfo=dt_util.UTC)
    freezer.move_to(start)
    await _host_acquired(hass)  # host-1: 1 holder from the start
    await advance(hass, freezer, 150)
    await call(hass, "acquire", {"resource": "host-1", "holder": "bob"})
    await hass.async_block_till_done()
    assert state(hass, "sensor.host_1_holders") == "2"
    freezer.move_to(start + timedelta(minutes=5, seconds=1))
    do_adhoc_statistics(hass, start=start)
    await async_wait_recording_done(hass)
    holders = "sensor.host_1_holders"
    recorder = hass.data["recorder_instance"]
    metadata = await recorder.async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={holders})
    )
    assert metadata[holders][1]["unit_of_measurement"] is None
    stats = await recorder.async_add_executor_job(
        lambda: statistics_during_period(
            hass, start, None, {holders}, "5minute", None, {"mean", "min", "max"}
        )
    )
    [period] = stats[holders]
    # 0 as the lab starts, 1 at once (alice), 2 after 150 s (bob)
    assert (period["min"], period["max"]) == (0.0, 2.0)
    assert 1.0 < period["mean"] < 2.0


async def test_holder_list_is_live_not_recorded(hass: HomeAssistant) -> None:
    """The Holders count and its unit are recorded; its holders and queue only live."""
    start = dt_util.utcnow()
    await _host_acquired(hass)
    await call(hass, "acquire", {"resource": "host-1", "holder": "bob"})
    assert await holders_of(hass, "host-1") == "2"
    await async_wait_recording_done(hass)
    holders = "sensor.host_1_holders"
    live = hass.states.get(holders)
    assert live is not None
    assert [token["holder"] for token in live.attributes["tokens"]] == ["alice", "bob"]
    assert live.attributes["queue"] == []
    recorder = hass.data["recorder_instance"]
    recorded = await recorder.async_add_executor_job(
        lambda: state_changes_during_period(hass, start, entity_id=holders)
    )
    assert [s.state for s in recorded[holders]] == ["0", "1", "2"]
    for recorded_state in recorded[holders]:
        assert "tokens" not in recorded_state.attributes
        assert "queue" not in recorded_state.attributes
        assert recorded_state.attributes["state_class"] == "measurement"


async def test_a_token_costs_the_recorder_few_rows(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """A token's acquire and release share one event data row; renewals add no event.

    Under load the recorder's writes are what makes answers wait (see README,
    Benchmarks): a renewal only moves an expiry, a token's events carry only what stays
    the same through its life (`since` pairs its acquire with its end), and a
    resource's burst of token changes within TOTALS_DELAY is one event per kind.
    """
    await _host_acquired(hass)  # alice's acquire: fired at once
    acquired = async_capture_events(hass, "labpower_token_acquired")
    released = async_capture_events(hass, "labpower_token_released")
    now = dt_util.utcnow()
    [token] = (await call(hass, "acquire", {"resource": "host-1", "holder": "ci 7"}))[
        "tokens"
    ]
    assert acquired == []  # within TOTALS_DELAY of alice's: at the end of it
    await throttled_done(hass)
    await advance(hass, freezer, 30)
    for _ in range(3):
        await call(hass, "renew", {"token": token["token"], "ttl": 900})
    await call(hass, "release", {"token": token["token"]})
    await throttled_done(hass)
    assert acquired[0].data == released[0].data
    assert event_tokens(acquired, "since") == [now.isoformat()]
    assert "expires" not in acquired[0].data["tokens"][0]  # it changes with renewals
    # Five more jobs in the same second: one event, one data row.
    for n in range(5):
        await call(hass, "acquire", {"resource": "host-1", "holder": f"burst {n}"})
    await throttled_done(hass)
    assert len(acquired) == 2
    assert event_tokens(acquired[1:]) == [f"burst {n}" for n in range(5)]
    await async_wait_recording_done(hass)

    def rows() -> list[tuple[str, int | None]]:
        with session_scope(hass=hass, read_only=True) as session:
            return [
                (event_type, data_id)
                for event_type, data_id in session.query(
                    EventTypes.event_type, Events.data_id
                )
                .join(Events, Events.event_type_id == EventTypes.event_type_id)
                .filter(EventTypes.event_type.like("labpower_token_%"))
                .all()
            ]

    recorder = hass.data["recorder_instance"]
    recorded = await recorder.async_add_executor_job(rows)
    types = [event_type for event_type, _ in recorded]
    assert types == [
        "labpower_token_acquired",  # alice
        "labpower_token_acquired",  # ci 7
        "labpower_token_released",
        "labpower_token_acquired",  # the five
    ]
    assert recorded[1][1] == recorded[2][1]  # ci 7's two events, one data row
    assert len({recorded[0][1], recorded[1][1], recorded[3][1]}) == 3
