"""Bookings and the lab's calendar through Home Assistant: power up in time, end on time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.labpower.bookings import BookingRequest
from custom_components.labpower.calendar import token_uid
from custom_components.labpower.core import bookings as core_bookings
from custom_components.labpower.core.bookings import (
    LEAD_FACTOR,
    LEAD_MARGIN,
    Booking,
    BookingBook,
    BookingConflictError,
    BookingTextError,
    BootTimes,
    parse_event_text,
)
from custom_components.labpower.core.model import (
    AcquireRefusedError,
    LabError,
    ResourceState,
)
from custom_components.labpower.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.labpower.helpers import labpower_errors

from .conftest import lab_entry, relay, resource_data, setup_relays
from .peers.ha import advance, call, setup_integration, state
from .peers.rest import error_of, rest_api

CALENDAR = "calendar.lab_bookings"
RELAY = relay("builder-1")
# resource_data's start_timeout, as the lead of a resource never measured.
DEFAULT_LEAD = 60 * LEAD_FACTOR + LEAD_MARGIN


def _at(minutes: float) -> datetime:
    return dt_util.utcnow() + timedelta(minutes=minutes)


async def _events(hass: HomeAssistant, minutes: float = 24 * 60) -> list[Any]:
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {
            "entity_id": CALENDAR,
            "start_date_time": dt_util.utcnow() - timedelta(hours=1),
            "end_date_time": _at(minutes),
        },
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    events: list[Any] = response[CALENDAR]["events"]
    return events


async def _book(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    data.setdefault("resource", "builder-1")
    if data["resource"] is None:
        del data["resource"]
    for key in ("start", "end"):
        if isinstance(data[key], datetime):
            data[key] = data[key].isoformat()
    response = await call(hass, "book", data)
    booking: dict[str, Any] = response["booking"]
    return booking


async def _hold_exclusively(hass: HomeAssistant, **extra: Any) -> str:
    """An exclusive token of "me" on builder-1; its id."""
    taken = await call(
        hass,
        "acquire",
        {"resource": "builder-1", "holder": "me", "exclusive": True, **extra},
    )
    token: str = taken["tokens"][0]["token"]
    return token


def _holders(entry: MockConfigEntry, name: str = "builder-1") -> int:
    return entry.runtime_data.lab.ledger.holder_count(name)


async def test_booking_powers_up_in_time_and_ends_on_time(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Done when: booked 30 min ahead, available at its start, released at its end."""
    start, end = _at(30), _at(50)
    booking = await _book(hass, holder="benchmark", start=start, end=end)
    assert booking["status"] == "scheduled"
    power_on = dt_util.parse_datetime(booking["power_on_at"])
    assert power_on == start - timedelta(seconds=DEFAULT_LEAD)
    [event] = await _events(hass)
    assert event["summary"] == "benchmark: builder-1"
    assert "resource: builder-1" in event["description"]
    assert dt_util.parse_datetime(event["start"]) == start
    assert dt_util.parse_datetime(event["end"]) == end
    assert state(hass, CALENDAR) == "off"  # not yet
    # Nothing switches before its power-on time.
    await advance(hass, freezer, (power_on - dt_util.utcnow()).total_seconds() - 1)
    assert state(hass, RELAY) == "off"
    assert _holders(lab) == 0
    await advance(hass, freezer, 2)
    assert state(hass, RELAY) == "on"
    assert _holders(lab) == 1
    [token] = lab.runtime_data.lab.ledger.tokens("builder-1")
    assert token.holder == "benchmark"
    # At its start the machine is available, and the calendar says it is going on.
    await advance(hass, freezer, (start - dt_util.utcnow()).total_seconds())
    assert lab.runtime_data.lab.state("builder-1") is ResourceState.AVAILABLE
    assert state(hass, CALENDAR) == "on"
    assert hass.states.get(CALENDAR).attributes["message"] == "benchmark: builder-1"
    # At its end its hold is released; the machine goes off after its off delay.
    await advance(hass, freezer, (end - dt_util.utcnow()).total_seconds())
    assert _holders(lab) == 0
    assert state(hass, RELAY) == "on"
    await advance(hass, freezer, 31)
    assert state(hass, RELAY) == "off"
    assert await _events(hass) == []
    assert state(hass, CALENDAR) == "off"


async def test_leases_and_holds_are_events(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci", "ttl": 600})
    await call(
        hass,
        "acquire",
        {"resource": "builder-2", "holder": "me", "kind": "hold", "exclusive": True},
    )
    events = {event["summary"]: event for event in await _events(hass)}
    assert set(events) == {"ci: builder-1", "me: builder-2 (exclusive)"}
    lease, hold = events["ci: builder-1"], events["me: builder-2 (exclusive)"]
    assert (
        dt_util.parse_datetime(lease["end"]) - dt_util.parse_datetime(lease["start"])
    ) == timedelta(seconds=600)
    assert "ends: until released" in hold["description"]
    assert dt_util.parse_datetime(hold["end"]) > dt_util.utcnow()
    # A token's id is a secret: its event does not carry it.
    tokens = [t.id for n in ("builder-1", "builder-2") for t in _tokens(lab, n)]
    for event in events.values():
        assert not any(token in str(event) for token in tokens)
    assert state(hass, CALENDAR) == "on"


async def test_the_calendar_state_is_the_first_live_token(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """The state names the token taken first that still lives; later ones write nothing."""
    [ci] = (
        await call(
            hass, "acquire", {"resource": "builder-1", "holder": "ci", "ttl": 60}
        )
    )["tokens"]
    await advance(hass, freezer, 5)
    await call(
        hass, "acquire", {"resource": "builder-2", "holder": "me", "kind": "hold"}
    )
    assert hass.states.get(CALENDAR).attributes["message"] == "ci: builder-1"  # type: ignore[union-attr]
    writes = async_capture_events(hass, "state_changed")

    def calendar_writes() -> list[str]:
        return [
            e.data["new_state"].attributes.get("message", "")
            for e in writes
            if e.data["entity_id"] == CALENDAR
        ]

    await advance(hass, freezer, 5)
    await call(hass, "acquire", {"resource": "builder-2", "holder": "late", "ttl": 600})
    assert calendar_writes() == []
    # the first token's renewal moves its event's end
    ends = hass.states.get(CALENDAR).attributes["end_time"]  # type: ignore[union-attr]
    await call(hass, "renew", {"token": ci["token"], "ttl": 120})
    assert calendar_writes() == ["ci: builder-1"]
    assert hass.states.get(CALENDAR).attributes["end_time"] != ends  # type: ignore[union-attr]
    await call(hass, "release", {"token": ci["token"]})
    assert calendar_writes() == ["ci: builder-1", "me: builder-2"]
    # an open hold's end moves with now: its event is written again only when it changes
    await advance(hass, freezer, 30)
    await call(
        hass, "acquire", {"resource": "builder-1", "holder": "later", "ttl": 600}
    )
    assert calendar_writes() == ["ci: builder-1", "me: builder-2"]
    [hold] = [t for t in _tokens(lab, "builder-2") if t.holder == "me"]
    await call(hass, "release", {"token": hold.id})
    assert calendar_writes() == ["ci: builder-1", "me: builder-2", "late: builder-2"]


def _tokens(entry: MockConfigEntry, name: str) -> list[Any]:
    return list(entry.runtime_data.lab.ledger.tokens(name))


async def test_calendar_books_and_deleting_releases(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    # Starting now: its power-on time has passed, so it is taken at once.
    await hass.services.async_call(
        "calendar",
        "create_event",
        {
            "entity_id": CALENDAR,
            "summary": "Debugging: builder-1 (exclusive)",
            "start_date_time": dt_util.now(),
            "end_date_time": dt_util.now() + timedelta(hours=1),
        },
        blocking=True,
    )
    [token] = _tokens(lab, "builder-1")
    assert token.holder == "Debugging"
    assert token.exclusive
    assert state(hass, RELAY) == "on"
    [event] = await _events(hass)
    assert event["summary"] == "Debugging: builder-1 (exclusive)"
    [booking] = lab.runtime_data.bookings.book.all()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "calendar/event/delete", "entity_id": CALENDAR, "uid": booking.id}
    )
    assert (await client.receive_json())["success"]
    await hass.async_block_till_done()
    assert _holders(lab) == 0
    assert await _events(hass) == []


async def test_calendar_text_names_labels_count_and_holder(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    await setup_relays(hass, "arm-1", "arm-2", "arm-3")
    entry = await setup_integration(
        hass,
        lab_entry(*(resource_data(f"arm-{n}", labels=["arm64"]) for n in (1, 2, 3))),
    )
    client = await hass_ws_client(hass)
    start = dt_util.now() + timedelta(hours=2)
    await client.send_json_auto_id(
        {
            "type": "calendar/event/create",
            "entity_id": CALENDAR,
            "event": {
                "summary": "Nightly",
                "description": "labels: arm64\ncount: 2\nholder: nightly build\n"
                "exclusive: yes\nthe rest are notes",
                "dtstart": start.isoformat(),
                "dtend": (start + timedelta(hours=1)).isoformat(),
            },
        }
    )
    assert (await client.receive_json())["success"]
    [booking] = entry.runtime_data.bookings.book.all()
    assert (booking.labels, booking.count, booking.holder, booking.exclusive) == (
        ("arm64",),
        2,
        "nightly build",
        True,
    )
    # The text it shows reads back as the same booking.
    [event] = await _events(hass, 4 * 60)
    again = parse_event_text(event["summary"], event["description"])
    assert (again.labels, again.count, again.holder, again.exclusive) == (
        ("arm64",),
        2,
        "nightly build",
        True,
    )
    # Only one of the three is left for an exclusive booking of two at that time.
    await client.send_json_auto_id(
        {
            "type": "calendar/event/create",
            "entity_id": CALENDAR,
            "event": {
                "summary": "Other",
                "description": "labels: arm64\ncount: 2",
                "dtstart": start.isoformat(),
                "dtend": (start + timedelta(minutes=30)).isoformat(),
            },
        }
    )
    refused = await client.receive_json()
    assert not refused["success"]
    assert "booked exclusively by nightly build" in refused["error"]["message"]
    # A text that names nothing is refused with what to write.
    with pytest.raises(ServiceValidationError) as bad:
        await hass.services.async_call(
            "calendar",
            "create_event",
            {
                "entity_id": CALENDAR,
                "summary": "   ",
                "start_date_time": start,
                "end_date_time": start + timedelta(hours=1),
            },
            blocking=True,
        )
    assert bad.value.translation_key == "booking_text"


async def test_exclusive_bookings_conflict(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    await _book(hass, holder="me", start=_at(60), end=_at(120), exclusive=True)
    with pytest.raises(ServiceValidationError) as refused:
        await _book(hass, holder="ci", start=_at(90), end=_at(150))
    assert refused.value.translation_key == "booking_conflict"
    assert refused.value.translation_placeholders["holders"] == "me"
    # Before, after, or on another resource: fine; shared bookings share.
    await _book(hass, holder="ci", start=_at(120), end=_at(150))
    await _book(hass, holder="ci", start=_at(30), end=_at(60))
    await _book(hass, resource="builder-2", holder="a", start=_at(60), end=_at(90))
    await _book(hass, resource="builder-2", holder="b", start=_at(60), end=_at(90))
    assert len(lab.runtime_data.bookings.book) == 5
    # An exclusive booking is refused where any other booking overlaps.
    with pytest.raises(ServiceValidationError):
        await _book(
            hass, resource="builder-2", start=_at(80), end=_at(85), exclusive=True
        )


async def test_an_exclusive_token_refuses_a_booking_taken_now(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    await call(
        hass, "acquire", {"resource": "builder-1", "holder": "me", "exclusive": True}
    )
    with pytest.raises(ServiceValidationError) as refused:
        await _book(hass, start=_at(0), end=_at(30))
    assert refused.value.translation_key == "held_exclusively"
    assert lab.runtime_data.bookings.book.all() == []


async def test_booking_on_battery_is_refused_like_any_acquire(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "builder-1")
    hass.states.async_set("sensor.ups_status", "OL")
    entry = await setup_integration(
        hass, lab_entry(resource_data("builder-1"), ups_entities=["sensor.ups_status"])
    )
    refusals = async_capture_events(hass, "labpower_booking_refused")
    booking = await _book(hass, holder="bench", start=_at(30), end=_at(40))
    hass.states.async_set("sensor.ups_status", "OB DISCHRG")
    await hass.async_block_till_done()
    await advance(hass, freezer, 30 * 60)
    assert state(hass, RELAY) == "off"
    [stored] = entry.runtime_data.bookings.book.all()
    assert stored.status.value == "refused"
    assert "battery" in (stored.reason or "")
    [refusal] = refusals
    assert refusal.data["booking"] == booking["id"]
    [event] = await _events(hass)
    assert event["summary"].startswith("refused: bench")
    # Taken at once, it is refused to the caller and not kept.
    with pytest.raises(HomeAssistantError) as now:
        await _book(hass, start=_at(0), end=_at(5))
    assert now.value.translation_key == "acquire_refused"
    assert len(entry.runtime_data.bookings.book) == 1
    # Its end forgets it.
    await advance(hass, freezer, 10 * 60)
    assert len(entry.runtime_data.bookings.book) == 0
    # A later booking is kept; changed to start now, it is refused and gone.
    later = await _book(hass, holder="bench", start=_at(60), end=_at(70))
    bookings = entry.runtime_data.bookings
    moved = BookingRequest(
        holder="bench", start=_at(0), end=_at(10), resources=("builder-1",)
    )
    with pytest.raises(AcquireRefusedError):
        await bookings.async_update(later["id"], moved, None, admin=True)
    assert len(bookings.book) == 0


async def test_restart_keeps_bookings(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    later = await _book(hass, holder="later", start=_at(30), end=_at(40))
    now = await _book(hass, resource="builder-2", start=_at(0), end=_at(20))
    assert now["status"] == "taken"
    assert await hass.config_entries.async_reload(lab.entry_id)
    await hass.async_block_till_done()
    bookings = lab.runtime_data.bookings
    assert [b.id for b in bookings.book.all()] == [now["id"], later["id"]]
    assert _holders(lab, "builder-2") == 1
    # Their timers run again after the restart.
    await advance(hass, freezer, 30 * 60)
    assert state(hass, RELAY) == "on"
    assert _holders(lab, "builder-2") == 0
    assert [b.id for b in bookings.book.all()] == [later["id"]]


async def test_a_booking_ended_while_home_assistant_was_down_is_released(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    await _book(hass, start=_at(0), end=_at(10))
    assert await hass.config_entries.async_unload(lab.entry_id)
    freezer.tick(timedelta(minutes=11))
    assert await hass.config_entries.async_setup(lab.entry_id)
    await hass.async_block_till_done()
    assert _holders(lab) == 0
    assert len(lab.runtime_data.bookings.book) == 0


async def test_a_measured_boot_time_sets_the_lead(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "builder-1")
    hass.states.async_set("binary_sensor.builder_1_up", "off")
    entry = await setup_integration(
        hass,
        lab_entry(
            resource_data(
                "builder-1",
                checker_type="entity",
                check_entity="binary_sensor.builder_1_up",
                start_timeout=600,
            )
        ),
    )
    bookings = entry.runtime_data.bookings
    assert bookings.lead("builder-1") == 600 * LEAD_FACTOR + LEAD_MARGIN
    taken = await call(hass, "acquire", {"resource": "builder-1", "ttl": 600})
    assert state(hass, "sensor.builder_1_state") == "starting"
    await advance(hass, freezer, 200)
    hass.states.async_set("binary_sensor.builder_1_up", "on")
    await advance(hass, freezer, 5)
    assert state(hass, "sensor.builder_1_state") == "available"
    boot = bookings.boot.boot_time("builder-1")
    assert boot is not None
    assert 200 <= boot <= 210
    assert bookings.lead("builder-1") == boot * LEAD_FACTOR + LEAD_MARGIN
    await call(hass, "release", {"token": taken["tokens"][0]["token"]})
    # Learned times survive a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.bookings.boot.boot_time("builder-1") == boot


async def test_rest_bookings(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
) -> None:
    api = await rest_api(hass_client, hass_access_token)

    async def post(begin: float, finish: float, **extra: Any) -> Any:
        body = {
            "resource": "builder-1",
            "start": _at(begin).isoformat(),
            "end": _at(finish).isoformat(),
            **extra,
        }
        return await api("POST", "/bookings", json=body)

    made = await post(30, 60, exclusive=True)
    assert made.status == 201
    booking = await made.json()
    assert booking["exclusive"] is True
    assert booking["status"] == "scheduled"
    assert booking["lab"] == "Lab"
    listed = await (await api("GET", "/bookings")).json()
    assert [b["id"] for b in listed["bookings"]] == [booking["id"]]
    conflict = await error_of(await post(40, 50), 409)
    assert conflict["code"] == "booking_conflict"
    backwards = await error_of(await post(40, 30), 409)
    assert backwards["field"] == "end"
    bad = await error_of(await post(1, 2, start="x"), 400)
    assert bad["field"] == "start"
    both = await error_of(await post(1, 2, labels=["x"]), 409)
    assert both["code"] == "booking_target"
    deleted = await api("DELETE", f"/bookings/{booking['id']}")
    assert deleted.status == 204
    await error_of(await api("DELETE", f"/bookings/{booking['id']}"), 404)


async def test_only_its_maker_deletes_a_booking(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_read_only_user: Any,
    hass_ws_client: WebSocketGenerator,
) -> None:
    mine = Context(user_id=hass_read_only_user.id)
    made = await call(
        hass,
        "book",
        {
            "resource": "builder-1",
            "start": _at(0).isoformat(),
            "end": _at(10).isoformat(),
        },
        context=mine,
    )
    bookings = lab.runtime_data.bookings
    with pytest.raises(ServiceValidationError) as refused:
        await hass_delete(bookings, made["booking"]["id"], "someone else")
    assert refused.value.translation_key == "not_booking_owner"
    assert _holders(lab) == 1
    # The calendar may not delete it either: it is its user's.
    client = await hass_ws_client(hass)
    refused = await _ws_delete(client, made["booking"]["id"])
    assert "belongs to another user" in refused["error"]["message"]
    assert _holders(lab) == 1


async def _ws_delete(client: Any, uid: str) -> dict[str, Any]:
    """Delete an event through the calendar's websocket command; the refusal."""
    await client.send_json_auto_id(
        {"type": "calendar/event/delete", "entity_id": CALENDAR, "uid": uid}
    )
    answer: dict[str, Any] = await client.receive_json()
    assert not answer["success"]
    return answer


async def hass_delete(bookings: Any, booking_id: str, user_id: str) -> None:
    """Delete as another (non-administrator) user, translated as the actions are."""
    await labpower_errors(bookings.async_delete)(booking_id, user_id, admin=False)


async def test_diagnostics_list_bookings(
    hass: HomeAssistant, lab: MockConfigEntry
) -> None:
    await _book(hass, holder="bench", start=_at(0), end=_at(10))
    found = await async_get_config_entry_diagnostics(hass, lab)
    [booking] = found["bookings"]
    assert booking["holder"] == "bench"
    assert booking["tokens"] == 1  # how many, never their ids
    assert booking["id"] == "**REDACTED**"


def test_conflicts_and_lead_times_in_the_core() -> None:
    book = BookingBook()

    def both(_labels: tuple[str, ...]) -> list[str]:
        return ["r1", "r2"]

    a = Booking(id="a", holder="x", start=0, end=100, resources=("r1",), exclusive=True)
    book.add(a)
    with pytest.raises(BookingConflictError):
        book.check(
            Booking(id="b", holder="y", start=50, end=60, resources=("r1",)), both
        )
    book.check(Booking(id="b", holder="y", start=100, end=160, resources=("r1",)), both)
    # By labels: r1 is exclusively booked, r2 is left.
    by_label = Booking(id="c", holder="y", start=10, end=20, labels=("l",), count=1)
    book.check(by_label, both)
    by_label.count = 2
    with pytest.raises(BookingConflictError):
        book.check(by_label, both)
    # An exclusive booking of one by labels, not taken yet, leaves one to r2's.
    by_label.count, by_label.exclusive = 1, True
    book.add(by_label)
    with pytest.raises(BookingConflictError):
        book.check(
            Booking(id="d", holder="z", start=0, end=30, resources=("r2",)), both
        )
    book.check(Booking(id="d", holder="z", start=40, end=50, resources=("r2",)), both)
    times = BootTimes()
    assert not times.observe("r1", ResourceState.AVAILABLE, 0)
    times.observe("r1", ResourceState.STARTING, 10)
    times.observe("r1", ResourceState.STARTING, 20)  # still the same start
    assert times.observe("r1", ResourceState.AVAILABLE, 50)
    assert times.boot_time("r1") == 40
    times.observe("r1", ResourceState.STARTING, 100)
    assert not times.observe("r1", ResourceState.FAULT, 120)  # no sample
    parents = {"r1": ["p"], "p": []}
    lead = times.lead("r1", parents.__getitem__, lambda _: 8.0)
    assert lead == (40 * LEAD_FACTOR + LEAD_MARGIN) + (8 * LEAD_FACTOR + LEAD_MARGIN)


def test_event_text() -> None:
    assert parse_event_text("builder-1, builder-2", None).resources == (
        "builder-1",
        "builder-2",
    )
    plain = parse_event_text("builder-1", "")
    assert (plain.holder, plain.exclusive) == ("calendar", False)
    described = parse_event_text("Soak test", "resource: b1\nexclusive: no")
    assert (described.holder, described.resources) == ("Soak test", ("b1",))
    for summary, description in (
        ("x", "resource: a\nlabels: b"),
        ("x", "count: 2"),
        ("x", "labels: a\ncount: none"),
        ("x", "resource: a\nexclusive: maybe"),
        ("  ", None),
    ):
        with pytest.raises(BookingTextError):
            parse_event_text(summary, description)


async def test_booking_by_labels_finds_its_lab_and_takes_free_ones(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await setup_relays(hass, "x-1", "arm-1", "arm-2")
    await setup_integration(hass, lab_entry(resource_data("x-1"), title="Lab"))
    other = await setup_integration(
        hass,
        lab_entry(
            *(resource_data(f"arm-{n}", labels=["arm64"]) for n in (1, 2)),
            title="Arm lab",
        ),
    )
    with pytest.raises(ServiceValidationError) as few:
        await _book(hass, resource=None, labels=["arm64"], count=3, **_slot(0, 10))
    assert few.value.translation_key == "not_enough_free"
    await call(hass, "acquire", {"resource": "arm-1", "holder": "ci"})
    booking = await _book(hass, resource=None, labels=["arm64"], **_slot(0, 10))
    assert booking["lab"] == "Arm lab"
    assert booking["taken"] == ["arm-2"]  # the free one
    assert other.runtime_data.lab.ledger.holder_count("arm-2") == 1
    with pytest.raises(ServiceValidationError) as across:
        await _book(hass, resource=["x-1", "arm-1"], **_slot(20, 30))
    assert across.value.translation_key == "booking_across_labs"
    with pytest.raises(ServiceValidationError) as both:
        await _book(hass, labels=["arm64"], **_slot(20, 30))
    assert both.value.translation_key == "booking_target"
    await advance(hass, freezer, 10 * 60)
    assert other.runtime_data.lab.ledger.holder_count("arm-2") == 0


def _slot(start: float, end: float) -> dict[str, datetime]:
    return {"start": _at(start), "end": _at(end)}


async def test_calendar_refusals_and_all_day_bookings(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    client = await hass_ws_client(hass)

    async def create(event: dict[str, Any]) -> dict[str, Any]:
        await client.send_json_auto_id(
            {"type": "calendar/event/create", "entity_id": CALENDAR, "event": event}
        )
        answer: dict[str, Any] = await client.receive_json()
        return answer

    tomorrow = dt_util.now().date() + timedelta(days=1)
    after = tomorrow + timedelta(days=1)
    day = {"dtstart": tomorrow.isoformat(), "dtend": after.isoformat()}
    repeated = await create({"summary": "builder-1", "rrule": "FREQ=DAILY", **day})
    assert not repeated["success"]
    assert "do not repeat" in repeated["error"]["message"]
    too_many = await create(
        {"summary": "x", "description": "labels: y\ncount: 2", **day}
    )
    assert not too_many["success"]
    assert (await create({"summary": "builder-2", **day}))["success"]
    [booking] = lab.runtime_data.bookings.book.all()
    midnight = dt_util.start_of_local_day(tomorrow)
    assert booking.start == midnight.timestamp()
    assert booking.end == (midnight + timedelta(days=1)).timestamp()
    # A token's event is not deleted from the calendar: it is released.
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci"})
    [token] = _tokens(lab, "builder-1")
    refused = await _ws_delete(client, token_uid(token))
    assert "release it with the Release action" in refused["error"]["message"]
    assert _holders(lab) == 1


async def test_bookings_are_written_when_acknowledged_and_removed_with_the_lab(
    hass: HomeAssistant, lab: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    key = f"labpower.{lab.entry_id}.bookings"
    made = await _book(hass, start=_at(30), end=_at(40))
    [stored] = hass_storage[key]["data"]["bookings"]
    assert stored["id"] == made["id"]
    assert await hass.config_entries.async_remove(lab.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


def test_booking_errors_translated() -> None:
    en = json.loads(
        (
            Path(__file__).parent.parent
            / "custom_components/labpower/translations/en.json"
        ).read_text(encoding="utf-8")
    )["exceptions"]
    errors = [
        cls
        for cls in vars(core_bookings).values()
        if isinstance(cls, type) and issubclass(cls, LabError)
    ]
    assert len(errors) == 8
    for cls in errors:
        message = en[cls.key]["message"]
        instance = cls(*(["x"] * (cls.__init__.__code__.co_argcount - 1)))
        assert set(re.findall(r"{(\w+)}", message)) == set(instance.placeholders)
    for key in ("booking_recurring", "calendar_token_event"):
        assert en[key]["message"]


async def test_a_booking_waits_for_an_exclusive_holder_until_its_start(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    held = await _hold_exclusively(hass, ttl=1800)
    made = await _book(hass, holder="bench", start=_at(10), end=_at(40))
    # Its power-on time comes while the exclusive lease lives: it tries again.
    power_on = dt_util.parse_datetime(made["power_on_at"])
    assert power_on is not None
    await advance(hass, freezer, (power_on - dt_util.utcnow()).total_seconds() + 1)
    [booking] = lab.runtime_data.bookings.book.all()
    assert booking.status.value == "scheduled"
    assert "held exclusively by me" in (booking.reason or "")
    await call(hass, "release", {"token": held})
    await advance(hass, freezer, 60)
    assert booking.status.value == "taken"
    assert [t.holder for t in _tokens(lab, "builder-1")] == ["bench"]
    # Held on past its start, another booking is refused then.
    await call(hass, "release", {"token": booking.tokens[0]})
    other = await call(
        hass,
        "acquire",
        {"resource": "builder-2", "holder": "me", "exclusive": True, "kind": "hold"},
    )
    late = await _book(hass, resource="builder-2", start=_at(1), end=_at(5))
    await advance(hass, freezer, 61)
    [refused] = [b for b in lab.runtime_data.bookings.book.all() if b.id == late["id"]]
    assert refused.status.value == "refused"
    assert other["tokens"]


async def test_the_calendar_card_is_told_of_new_events(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """What the calendar card subscribes to: pushed on a booking and on a token."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "calendar/event/subscribe",
            "entity_id": CALENDAR,
            "start": dt_util.utcnow().isoformat(),
            "end": _at(24 * 60).isoformat(),
        }
    )
    assert (await client.receive_json())["success"]
    assert (await client.receive_json())["event"]["events"] == []

    async def pushed_until(wanted: set[str]) -> None:
        # A change is pushed at once; a state write may push the same again.
        for _ in range(3):
            events = (await client.receive_json())["event"]["events"]
            if {event["summary"] for event in events} == wanted:
                return
        pytest.fail(f"never pushed {wanted}")

    await _book(hass, holder="bench", start=_at(60), end=_at(90))
    await pushed_until({"bench: builder-1"})
    await call(hass, "acquire", {"resource": "builder-2", "holder": "ci"})
    await hass.async_block_till_done()
    await pushed_until({"bench: builder-1", "ci: builder-2"})


async def test_damaged_bookings_are_left_out_not_fatal(
    hass: HomeAssistant, hass_storage: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    good = Booking(
        id="a" * 16, holder="kept", start=0, end=4e9, resources=("builder-1",)
    )
    hass_storage["labpower.entry_lab.bookings"] = {
        "version": 1,
        "minor_version": 1,
        "key": "labpower.entry_lab.bookings",
        "data": {
            "bookings": [good.as_dict(), {"id": "b"}, "junk"],
            "boot_times": {"builder-1": [12.0], "builder-2": "x"},
        },
    }
    await setup_relays(hass, "builder-1", "builder-2")
    entry = await setup_integration(
        hass, lab_entry(resource_data("builder-1"), resource_data("builder-2"))
    )
    bookings = entry.runtime_data.bookings
    assert [b.holder for b in bookings.book.all()] == ["kept"]
    assert "damaged bookings left out" in caplog.text
    assert bookings.boot.boot_time("builder-1") == 12.0
    assert bookings.boot.boot_time("builder-2") is None


async def test_a_booking_deleted_while_its_holds_are_taken_leaves_none(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    made = await _book(hass, start=_at(30), end=_at(40))
    runtime = lab.runtime_data
    written = runtime.storage.async_committed
    gate = asyncio.Event()
    calls = 0

    async def slow_first_commit() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()  # the take's holds wait for the disk
        await written()

    with patch.object(runtime.storage, "async_committed", slow_first_commit):
        freezer.move_to(dt_util.parse_datetime(made["power_on_at"]))
        async_fire_time_changed(hass)
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls == 1
        assert _holders(lab) == 1  # taken, not yet on disk
        await runtime.bookings.async_delete(made["id"], None, admin=True)
        gate.set()
        await hass.async_block_till_done()
    assert _holders(lab) == 0
    assert len(runtime.bookings.book) == 0


async def test_a_booking_due_now_waits_for_a_busy_resource_until_its_start(
    hass: HomeAssistant, lab: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    held = await _hold_exclusively(hass, ttl=600)
    # Due now (its start is within its lead), busy: kept, tried again until its start.
    made = await _book(hass, holder="bench", start=_at(0.5), end=_at(10))
    assert made["status"] == "scheduled"
    assert "held exclusively by me" in made["reason"]
    await call(hass, "release", {"token": held})
    await advance(hass, freezer, 30)
    [booking] = lab.runtime_data.bookings.book.all()
    assert booking.status.value == "taken"
    assert booking.reason is None


async def test_changing_a_booking_in_the_calendar(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    client = await hass_ws_client(hass)
    now = dt_util.now()

    async def send(kind: str, **fields: Any) -> dict[str, Any]:
        await client.send_json_auto_id(
            {"type": f"calendar/event/{kind}", "entity_id": CALENDAR, **fields}
        )
        answer: dict[str, Any] = await client.receive_json()
        return answer

    def event(summary: str, start: float, end: float) -> dict[str, str]:
        return {
            "summary": summary,
            "dtstart": (now + timedelta(minutes=start)).isoformat(),
            "dtend": (now + timedelta(minutes=end)).isoformat(),
        }

    assert (await send("create", event=event("Debug: builder-1", 0, 30)))["success"]
    bookings = lab.runtime_data.bookings
    [booking] = bookings.book.all()
    [token] = booking.tokens
    # Under way, longer: the same hold, a later end.
    changed = await send(
        "update", uid=booking.id, event=event("Debug: builder-1", 0, 60)
    )
    assert changed["success"]
    [longer] = bookings.book.all()
    assert (longer.id, longer.tokens) == (booking.id, (token,))
    assert longer.end == (now + timedelta(minutes=60)).timestamp()
    # Another resource: the first hold goes, the other is taken.
    assert (await send("update", uid=booking.id, event=event("builder-2", 0, 60)))[
        "success"
    ]
    assert _holders(lab) == 0
    assert _holders(lab, "builder-2") == 1
    # Moved later: released until its new power-on time.
    assert (await send("update", uid=booking.id, event=event("builder-2", 60, 90)))[
        "success"
    ]
    assert _holders(lab, "builder-2") == 0
    [later] = bookings.book.all()
    assert later.status.value == "scheduled"
    # Not a token's event, not another user's booking, and a conflict refuses it.
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci"})
    [ci] = _tokens(lab, "builder-1")
    refused = await send("update", uid=token_uid(ci), event=event("builder-1", 0, 5))
    assert not refused["success"]
    await _book(
        hass, resource="builder-1", start=_at(100), end=_at(200), exclusive=True
    )
    clash = await send("update", uid=later.id, event=event("builder-1", 120, 150))
    assert not clash["success"]
    assert "booked exclusively" in clash["error"]["message"]
    assert bookings.book.get(later.id).resources == ("builder-2",)  # unchanged
