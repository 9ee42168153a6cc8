"""The fair queue through Home Assistant: turns, pools, positions, restarts, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.const import DOMAIN
from custom_components.labpower.core.queue import REATTACH_SECONDS

from .conftest import lab_entry, relay, resource_data, setup_relays
from .peers.ha import advance, call, setup_integration, state, throttled_done
from .peers.rest import error_of, rest_api

POOL = ("arm-1", "arm-2", "arm-3")


async def _lab(hass: HomeAssistant, *names: str) -> MockConfigEntry:
    """A lab of these resources (labelled arm when named arm-*), relays off."""
    await setup_relays(hass, *names)
    return await setup_integration(
        hass,
        lab_entry(
            *(
                resource_data(name, labels=["arm"] if name.startswith("arm") else [])
                for name in names
            )
        ),
    )


async def _start(hass: HomeAssistant, data: dict[str, Any]) -> asyncio.Task[Any]:
    """An acquire action that may wait: started, answered or waiting in the queue.

    Not tracked (block_till_done does not wait for it); waiting means queued, its
    caller attached and the request on disk, so the next one queues behind it.
    """
    task = hass.async_create_background_task(
        call(hass, "acquire", data), f"acquire {data.get('holder')}"
    )
    [entry] = hass.config_entries.async_loaded_entries(DOMAIN)
    runtime = entry.runtime_data
    holder = data.get("holder")
    async with asyncio.timeout(10):
        while not task.done():
            queued = [r for r in runtime.lab.queue.requests() if r.holder == holder]
            if queued and runtime.lab.queue.is_attached(queued[0].id):
                await runtime.storage.async_committed()
                break
            await asyncio.sleep(0.01)
    await _settle(hass)
    return task


async def _settle(hass: HomeAssistant) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
        await hass.async_block_till_done()


async def _queue(hass: HomeAssistant, resource: str) -> list[tuple[str, int]]:
    """Who waits for a resource, with their positions (the list action)."""
    listed = await call(hass, "list", {"resource": resource})
    return [(q["holder"], q["position"]) for q in listed["resources"][0]["queue"]]


async def _board_held_and_waited_for(
    hass: HomeAssistant,
) -> tuple[dict[str, Any], asyncio.Task[Any]]:
    """`me` holds the board exclusively; `bench` waits in the queue for it to itself."""
    held = await call(
        hass,
        "acquire",
        {"resource": "board", "holder": "me", "exclusive": True, "kind": "hold"},
    )
    waiting = await _start(
        hass,
        {"resource": "board", "holder": "bench", "exclusive": True, "wait": "queue"},
    )
    return held, waiting


def _granted(events: list[Event]) -> list[str]:
    """The holders given tokens, in the order they were given them.

    Each resource fires its own events (a burst's within TOTALS_DELAY): across the
    pool's resources, the tokens' `since` gives the order.
    """
    tokens = [token for event in events for token in event.data["tokens"]]
    return [token["holder"] for token in sorted(tokens, key=lambda t: t["since"])]


async def _done(task: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(task, 10)


async def test_two_exclusive_requests_the_second_waits_for_the_first(
    hass: HomeAssistant,
) -> None:
    await _lab(hass, "board")
    first, second = await _board_held_and_waited_for(hass)
    await _settle(hass)
    assert not second.done()
    assert await _queue(hass, "board") == [("bench", 1)]
    # Nobody jumps the queue: a plain acquire is refused and names the waiting.
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "acquire", {"resource": "board", "holder": "late"})
    assert refused.value.translation_key == "held_exclusively"
    await call(hass, "release", {"token": first["tokens"][0]["token"]})
    answer = await _done(second)
    [token] = answer["tokens"]
    assert (token["holder"], token["exclusive"], token["state"]) == (
        "bench",
        True,
        "available",
    )
    assert state(hass, relay("board")) == "on"
    assert await _queue(hass, "board") == []


async def test_a_request_for_two_is_not_overtaken_by_requests_for_one(
    hass: HomeAssistant,
) -> None:
    await _lab(hass, *POOL)
    acquired = async_capture_events(hass, "labpower_token_acquired")
    held = [
        (await call(hass, "acquire", {"resource": name, "holder": f"busy {name}"}))[
            "tokens"
        ][0]["token"]
        for name in POOL
    ]
    pair = await _start(
        hass, {"labels": ["arm"], "count": 2, "holder": "pair", "wait": "queue"}
    )
    await _settle(hass)
    singles = []
    for n in range(2):
        singles.append(
            await _start(
                hass, {"labels": ["arm"], "holder": f"single {n}", "wait": "queue"}
            )
        )
        await _settle(hass)
    assert await _queue(hass, "arm-1") == [
        ("pair", 1),
        ("single 0", 2),
        ("single 1", 3),
    ]
    # A plain acquire of a free pool member would jump the queue: refused.
    await call(hass, "release", {"token": held[0]})
    await _settle(hass)
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "acquire", {"resource": "arm-1", "holder": "late"})
    assert refused.value.translation_key == "queued_ahead"
    # One free: the singles wait behind the pair (head-of-line), nobody is granted.
    assert not any(task.done() for task in (pair, *singles))
    await call(hass, "release", {"token": held[1]})
    assert len((await _done(pair))["tokens"]) == 2
    await call(hass, "release", {"token": held[2]})
    await _done(singles[0])
    await _settle(hass)
    assert not singles[1].done()
    await throttled_done(hass)
    assert _granted(acquired)[3:] == ["pair", "pair", "single 0"]
    singles[1].cancel()


async def test_a_pool_queue_of_ten_is_served_in_order_across_a_restart(
    hass: HomeAssistant,
) -> None:
    entry = await _lab(hass, *POOL)
    acquired = async_capture_events(hass, "labpower_token_acquired")

    def request(n: int) -> dict[str, Any]:
        return {
            "labels": ["arm"],
            "holder": f"job {n}",
            "ticket": f"ticket-of-job-{n}",
            "wait": "queue",
            "timeout": 3600,
        }

    tasks = []
    for n in range(10):
        tasks.append(await _start(hass, request(n)))
        await _settle(hass)
    assert [task.done() for task in tasks] == [True] * 3 + [False] * 7
    tokens = {
        (answer := task.result())["tokens"][0]["holder"]: answer["tokens"][0]["token"]
        for task in tasks[:3]
    }
    assert await _queue(hass, "arm-1") == [(f"job {n}", n - 2) for n in range(3, 10)]
    for n in (0, 1):
        await call(hass, "release", {"token": tokens[f"job {n}"]})
        answer = await _done(tasks[n + 3])
        tokens[answer["tokens"][0]["holder"]] = answer["tokens"][0]["token"]

    # Home Assistant restarts: the entry unloads; the waiting callers are told.
    assert await hass.config_entries.async_unload(entry.entry_id)
    for task in tasks[5:]:
        with pytest.raises(HomeAssistantError) as interrupted:
            await _done(task)
        assert interrupted.value.translation_key == "queue_interrupted"
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Nothing lost: the five waiting requests are back, in their order.
    assert await _queue(hass, "arm-1") == [(f"job {n}", n - 4) for n in range(5, 10)]
    # Their callers come back (in any order) and keep their places; a new one queues last.
    back = {n: await _start(hass, request(n)) for n in (9, 7, 5, 8, 6)}
    await _settle(hass)
    back[10] = await _start(hass, request(10))
    await _settle(hass)
    assert not any(task.done() for task in back.values())
    for n in range(2, 8):  # each release serves the next in line
        await call(hass, "release", {"token": tokens[f"job {n}"]})
        answer = await _done(back[n + 3])
        tokens[answer["tokens"][0]["holder"]] = answer["tokens"][0]["token"]
    await throttled_done(hass)
    assert _granted(acquired) == [f"job {n}" for n in range(11)]


async def test_a_restored_request_whose_caller_never_comes_back_is_given_up(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    entry = await _lab(hass, "board")
    first = await call(hass, "acquire", {"resource": "board", "exclusive": True})
    gone = await _start(
        hass,
        {"resource": "board", "holder": "gone", "wait": "queue", "ticket": "t-gone"},
    )
    await _settle(hass)
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(HomeAssistantError):
        await _done(gone)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    later = await _start(
        hass, {"resource": "board", "holder": "later", "wait": "queue"}
    )
    await _settle(hass)
    assert await _queue(hass, "board") == [("gone", 1), ("later", 2)]
    await advance(hass, freezer, REATTACH_SECONDS + 1)
    assert await _queue(hass, "board") == [("later", 1)]
    await call(hass, "release", {"token": first["tokens"][0]["token"]})
    assert (await _done(later))["tokens"][0]["holder"] == "later"


async def test_the_timeout_gives_the_place_up(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab(hass, "board")
    await call(
        hass, "acquire", {"resource": "board", "exclusive": True, "holder": "me"}
    )
    waiting = await _start(
        hass, {"resource": "board", "holder": "ci", "wait": "queue", "timeout": 60}
    )
    await _settle(hass)
    await advance(hass, freezer, 61)
    with pytest.raises(ServiceValidationError) as timed_out:
        await _done(waiting)
    assert timed_out.value.translation_key == "queue_timeout"
    assert timed_out.value.translation_placeholders == {
        "timeout": "60",
        "position": "1",
    }
    assert await _queue(hass, "board") == []


async def test_a_caller_that_goes_away_gives_its_place_up(
    hass: HomeAssistant,
) -> None:
    entry = await _lab(hass, "board")
    await call(hass, "acquire", {"resource": "board", "exclusive": True})
    waiting = await _start(hass, {"resource": "board", "holder": "ci", "wait": "queue"})
    await _settle(hass)
    assert entry.runtime_data.lab.queue.requests()
    waiting.cancel()
    await _settle(hass)
    assert await _queue(hass, "board") == []


async def test_rest_queue_waits_its_turn_and_shows_its_position(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
) -> None:
    await _lab(hass, "board")
    api = await rest_api(hass_client, hass_access_token)
    first = await (
        await api("POST", "/resources/board/tokens", json={"exclusive": True})
    ).json()
    waiting = asyncio.ensure_future(
        api(
            "POST",
            "/resources/board/tokens",
            json={"queue": True, "ticket": "my-ticket", "holder": "ci", "wait": True},
        )
    )
    await _settle(hass)
    queue = await (await api("GET", "/queue")).json()
    assert [(q["ticket"], q["position"], q["waiting"]) for q in queue["queue"]] == [
        ("my-ticket", 1, True)
    ]
    detail = await (await api("GET", "/resources/board")).json()
    assert detail["queued"] == 1
    error = await error_of(
        await api("POST", "/resources/board/tokens", json={"holder": "late"}), 409
    )
    assert error["code"] == "held_exclusively"
    await api("POST", "/tokens/release", json={"token": first["token"]})
    answer = await asyncio.wait_for(waiting, 10)
    assert answer.status == 201
    assert (await answer.json())["holder"] == "ci"
    assert (await (await api("GET", "/queue")).json()) == {"queue": []}


async def test_a_pool_too_small_for_the_request_is_refused_at_once(
    hass: HomeAssistant,
) -> None:
    await _lab(hass, *POOL)
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "acquire", {"labels": ["arm"], "count": 4, "wait": "queue"})
    assert refused.value.translation_key == "not_enough_free"


async def test_no_grant_while_the_lab_refuses_tokens(hass: HomeAssistant) -> None:
    """A UPS on battery: a new request is refused, a queued one waits it out."""
    entry = await _lab(hass, "board")
    lab = entry.runtime_data.lab
    first = await call(hass, "acquire", {"resource": "board", "exclusive": True})
    waiting = await _start(hass, {"resource": "board", "holder": "ci", "wait": "queue"})
    await _settle(hass)
    lab.refuse_acquire("UPS ups1 on battery")
    with pytest.raises(HomeAssistantError) as refused:
        await call(hass, "acquire", {"resource": "board", "wait": "queue"})
    assert refused.value.translation_key == "acquire_refused"
    await call(hass, "release", {"token": first["tokens"][0]["token"]})
    await _settle(hass)
    assert not waiting.done()
    assert lab.ledger.holder_count("board") == 0
    lab.refuse_acquire(None)
    assert (await _done(waiting))["tokens"][0]["holder"] == "ci"


async def test_a_ticket_is_its_owners_and_names_one_request(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    hass_read_only_access_token: str,
) -> None:
    await _lab(hass, "board", "other")
    await call(hass, "acquire", {"resource": "board", "exclusive": True})
    waiting = await _start(
        hass, {"resource": "board", "holder": "ci", "wait": "queue", "ticket": "t-1"}
    )
    # The same ticket for something else, or from another user, is refused.
    with pytest.raises(ServiceValidationError) as reused:
        await call(
            hass, "acquire", {"resource": "other", "wait": "queue", "ticket": "t-1"}
        )
    assert reused.value.translation_key == "ticket_in_use"
    other = await rest_api(hass_client, hass_read_only_access_token)
    error = await error_of(
        await other(
            "POST",
            "/resources/board/tokens",
            json={"queue": True, "ticket": "t-1"},
        ),
        403,
    )
    assert error["code"] == "not_token_owner"
    # Others see who waits, not the ticket.
    queue = await (await other("GET", "/queue")).json()
    assert [(q["holder"], q["ticket"], q["mine"]) for q in queue["queue"]] == [
        ("ci", None, False)
    ]
    waiting.cancel()


async def test_a_grant_refused_at_its_turn_ends_the_request(
    hass: HomeAssistant,
) -> None:
    """Its turn came, but the acquire refuses it (here: a ttl its policy no longer allows)."""
    entry = await _lab(hass, "board")
    first = await call(hass, "acquire", {"resource": "board", "exclusive": True})
    waiting = await _start(
        hass, {"resource": "board", "holder": "ci", "wait": "queue", "ttl": 99999}
    )
    assert waiting.done()  # a ttl above the resource's maximum: refused at once
    with pytest.raises(ServiceValidationError):
        await waiting
    waiting = await _start(hass, {"resource": "board", "holder": "ci", "wait": "queue"})
    lab = entry.runtime_data.lab
    lab.ledger.set_policy(
        "board", replace(lab.ledger.policy("board"), default_ttl=99999)
    )
    await call(hass, "release", {"token": first["tokens"][0]["token"]})
    with pytest.raises(ServiceValidationError) as refused:
        await _done(waiting)
    assert refused.value.translation_key == "invalid_ttl"
    assert lab.queue.requests() == []


async def test_diagnostics_show_the_queue_without_its_tickets(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    entry = await _lab(hass, "board")
    _held, waiting = await _board_held_and_waited_for(hass)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    [queued] = diagnostics["queue"]
    assert (queued["holder"], queued["position"], queued["resources"]) == (
        "bench",
        1,
        ["board"],
    )
    assert queued["id"] == "**REDACTED**"
    waiting.cancel()
