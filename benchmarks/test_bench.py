"""labpower benchmarks: action throughput, ledger throughput, setup time and memory.

Run with scripts/benchmark. Each number is printed next to a baseline measured in the same
run and its target; timings are reported, never asserted. What is asserted is that the
work was really done (every acquire returned a token, every release released it...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import gc
import importlib
import secrets
import time
import tracemalloc
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.json import prepare_save_json
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.labpower.const import (
    DOMAIN,
    SUBENTRY_RESOURCE,
)
from custom_components.labpower.core.ledger import RELEASED_MEMORY_MAX, Ledger
from custom_components.labpower.core.model import ResourcePolicy, ResourceState
from tests.conftest import resource_data

from .conftest import CPU_SHARE, Row

RESOURCES = 1000
NAMES = [f"bench-{i:04d}" for i in range(RESOURCES)]
HOLDER = "bench job"

# How long each timed loop runs (seconds); the whole run stays well under 3 minutes.
ACTION_ROUND_SECONDS = 1.2
ACTION_ROUNDS = 5
LEDGER_SECONDS = 2.0

TARGET_ACTION_RATIO = 0.5
TARGET_LEDGER_PAIRS = 200_000
TARGET_SETUP_SECONDS = 5.0

# Imported up front, so that no measurement pays for importing a module the first time.
for _module in (
    "homeassistant.components.input_boolean",
    "custom_components.labpower.binary_sensor",
    "custom_components.labpower.button",
    "custom_components.labpower.sensor",
    "custom_components.labpower.switch",
):
    importlib.import_module(_module)


# Building blocks


def relay_id(name: str) -> str:
    """The object id of a resource's input_boolean relay."""
    return f"{name.replace('-', '_')}_relay"


def lab_entry(names: list[str], title: str = "Bench lab") -> MockConfigEntry:
    """A Lab config entry with one resource subentry per name."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data={"name": title},
        subentries_data=[
            ConfigSubentryData(
                data=resource_data(name),
                subentry_type=SUBENTRY_RESOURCE,
                title=name,
                unique_id=name,
            )
            for name in names
        ],
    )


async def setup_booleans(hass: HomeAssistant, object_ids: list[str]) -> None:
    """Set up the input_boolean integration with these booleans, all off."""
    assert await async_setup_component(
        hass,
        "input_boolean",
        {"input_boolean": {oid: {"name": oid, "initial": False} for oid in object_ids}},
    )
    await hass.async_block_till_done()


async def setup_lab(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set up a Lab entry and let it settle."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


def check_lab_loaded(hass: HomeAssistant, entry: MockConfigEntry) -> int:
    """Every resource is known, read as off, and has its entities; returns how many."""
    lab = entry.runtime_data.lab
    assert lab.names == NAMES
    assert all(lab.state(name) is ResourceState.OFF for name in NAMES)
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    # At least Power, Available, State, Holders and Power cycle per resource.
    assert len(entities) >= 5 * RESOURCES
    assert hass.states.get(f"switch.{NAMES[-1].replace('-', '_')}_power") is not None
    return len(entities)


# Formatting


def rate(value: float, unit: str = "/s") -> str:
    """A rate with thousands separators."""
    return f"{value:,.0f}{unit}"


def size(value: float) -> str:
    """Bytes, readable."""
    if value >= 10_000:
        return f"{value / 1024:,.1f} KiB"
    return f"{value:,.0f} B"


def verdict(ok: bool) -> str:
    """What the table says about a target."""
    return "ok" if ok else "MISSED"


class Stopwatch:
    """Wall and CPU seconds since it was made (CPU: every thread of this process)."""

    def __init__(self) -> None:
        """Start now."""
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._thread = time.thread_time()

    def stop(self) -> tuple[float, float]:
        """Wall and CPU seconds; also notes how much of the wall time we were on a CPU."""
        wall = time.perf_counter() - self._wall
        CPU_SHARE[0] += wall
        CPU_SHARE[1] += time.thread_time() - self._thread
        return wall, time.process_time() - self._cpu


@dataclass(frozen=True, slots=True)
class Rate:
    """Operations per wall-clock second, and per CPU second (unaffected by other load)."""

    wall: float
    cpu: float

    @classmethod
    def of(cls, operations: float, watch: Stopwatch) -> Rate:
        """Operations done since `watch` started."""
        wall, cpu = watch.stop()
        return cls(operations / wall, operations / cpu)

    @staticmethod
    def median(rates: list[Rate]) -> Rate:
        """The median of each."""
        return Rate(median([r.wall for r in rates]), median([r.cpu for r in rates]))


def median(values: list[float]) -> float:
    """The middle value."""
    return sorted(values)[len(values) // 2]


def timed_loop(body: Callable[[], None], seconds: float, per_batch: int) -> Rate:
    """Run `body` (one batch of `per_batch` operations) for `seconds`."""
    batches = 0
    watch = Stopwatch()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body()
        batches += 1
    return Rate.of(batches * per_batch, watch)


# 1. Actions through Home Assistant


async def acquire_release(hass: HomeAssistant, name: str) -> None:
    """One pair, each call awaited like a separate API request."""
    response = await hass.services.async_call(
        DOMAIN,
        "acquire",
        {"resource": name, "holder": HOLDER},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    [token] = response["tokens"]
    assert token["resource"] == name
    assert token["token"]
    await asyncio.sleep(0)
    response = await hass.services.async_call(
        DOMAIN,
        "release",
        {"token": token["token"]},
        blocking=True,
        return_response=True,
    )
    assert response == {"released": 1}
    await asyncio.sleep(0)


async def toggle(hass: HomeAssistant, entity_id: str) -> None:
    """One input_boolean.toggle, awaited like a separate API request."""
    await hass.services.async_call(
        "input_boolean", "toggle", {"entity_id": entity_id}, blocking=True
    )
    await asyncio.sleep(0)


async def calls_per_second(
    hass: HomeAssistant, one: Callable[[int], Any], start: int, seconds: float
) -> tuple[Rate, int]:
    """Await one(i) for i = start, start+1... for `seconds`, then until HA is idle.

    The background work the calls started (reconciler passes, storage writes) is part of
    the time. Returns the rate and the next i.
    """
    i = start
    watch = Stopwatch()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            await one(i)
            i += 1
    await hass.async_block_till_done()
    return Rate.of(i - start, watch), i


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_action_throughput(hass: HomeAssistant, report: list[Row]) -> None:
    """Acquire+release pairs per second through the actions, against toggles."""
    toggled = [f"bench_toggle_{i:04d}" for i in range(RESOURCES)]
    await setup_booleans(hass, [relay_id(name) for name in NAMES] + toggled)
    entry = lab_entry(NAMES)
    entry.add_to_hass(hass)
    await setup_lab(hass, entry)
    toggle_ids = [f"input_boolean.{oid}" for oid in toggled]

    async def pair(i: int) -> None:
        await acquire_release(hass, NAMES[i % RESOURCES])

    async def flip(i: int) -> None:
        await toggle(hass, toggle_ids[i % RESOURCES])

    # Warm-up: one round over every resource (each relay is switched on once) and over
    # every toggled boolean.
    for i in range(RESOURCES):
        await pair(i)
        await flip(i)
    await hass.async_block_till_done()
    pairs_done = toggles_done = RESOURCES
    pair_rates: list[Rate] = []
    toggle_rates: list[Rate] = []
    for _ in range(ACTION_ROUNDS):
        value, toggles_done = await calls_per_second(
            hass, flip, toggles_done, ACTION_ROUND_SECONDS
        )
        toggle_rates.append(value)
        value, pairs_done = await calls_per_second(
            hass, pair, pairs_done, ACTION_ROUND_SECONDS
        )
        pair_rates.append(value)

    # The work was done: no token left, every relay on (off delay), toggles add up.
    runtime = entry.runtime_data
    assert runtime.lab.ledger.token_count == 0
    assert all(runtime.lab.state(name) is ResourceState.AVAILABLE for name in NAMES)
    for i, entity_id in enumerate(toggle_ids):
        flips = toggles_done // RESOURCES + (i < toggles_done % RESOURCES)
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == ("on" if flips % 2 else "off")

    # A lab that has run a while: its ledger remembers RELEASED_MEMORY_MAX released ids
    # (so that releasing twice is no error), and every storage write carries them.
    ledger = runtime.lab.ledger
    while len(ledger._released) < RELEASED_MEMORY_MAX:
        assert ledger.release(ledger.acquire(NAMES[0], HOLDER).id) is not None
    await hass.async_block_till_done()
    start = pairs_done
    long_run, pairs_done = await calls_per_second(
        hass, pair, pairs_done, ACTION_ROUND_SECONDS
    )
    assert ledger.token_count == 0
    assert len(ledger._released) == RELEASED_MEMORY_MAX

    pairs, toggles = Rate.median(pair_rates), Rate.median(toggle_rates)
    for order, label, kind in (
        (1, "HA actions: acquire+release", "wall"),
        (2, "  (per CPU second, all threads)", "cpu"),
    ):
        ratio = getattr(pairs, kind) / getattr(toggles, kind)
        report.append(
            Row(
                order,
                label,
                rate(getattr(pairs, kind), " pairs/s"),
                f"input_boolean.toggle {rate(getattr(toggles, kind))}",
                f"{ratio:.2f}",
                f"ratio >= {TARGET_ACTION_RATIO}",
                verdict(ratio >= TARGET_ACTION_RATIO),
            )
        )
    report.append(
        Row(
            3,
            "  (each round, wall: pairs/s | toggles/s)",
            ", ".join(f"{r.wall:,.0f}" for r in pair_rates),
            ", ".join(f"{r.wall:,.0f}" for r in toggle_rates),
            "",
            f"{start - RESOURCES:,} pairs timed",
            "",
        )
    )
    report.append(
        Row(
            4,
            f"  (long-running: {RELEASED_MEMORY_MAX:,} released ids remembered)",
            f"{rate(long_run.wall, ' pairs/s')} (CPU: {rate(long_run.cpu)})",
            "",
            f"{long_run.wall / toggles.wall:.2f} ({long_run.cpu / toggles.cpu:.2f})",
            f"{pairs_done - start:,} pairs timed",
            verdict(long_run.wall / toggles.wall >= TARGET_ACTION_RATIO),
        )
    )


# 1b. Durability: answered once on disk, against the coalesced save it replaced

DURABLE_CLIENTS = 100
DURABLE_RESOURCES = 50
DURABLE_ROUND_SECONDS = 1.5
DURABLE_ROUNDS = 3


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_durable_throughput(hass: HomeAssistant, report: list[Row]) -> None:
    """Concurrent acquire+release pairs, each change on disk before it is answered.

    Against the same lab answering at once and writing within a second (as before).
    """
    names = NAMES[:DURABLE_RESOURCES]
    await setup_booleans(hass, [relay_id(name) for name in names])
    entry = lab_entry(names, "Durable lab")
    entry.add_to_hass(hass)
    await setup_lab(hass, entry)
    storage = entry.runtime_data.storage

    async def clients(seconds: float) -> tuple[Rate, int, int]:
        done = 0
        deadline = time.perf_counter() + seconds

        async def client(first: int) -> None:
            nonlocal done
            i = first
            while time.perf_counter() < deadline:
                await acquire_release(hass, names[i % len(names)])
                i += DURABLE_CLIENTS
                done += 1

        commits = storage.commits
        watch = Stopwatch()
        await asyncio.gather(*(client(k) for k in range(DURABLE_CLIENTS)))
        await hass.async_block_till_done()
        return Rate.of(done, watch), storage.commits - commits, done

    rates: dict[bool, list[Rate]] = {True: [], False: []}
    fsyncs = pairs = 0
    try:
        for durable in (True, False):  # warm-up: every relay on once
            storage.acknowledge_on_disk = durable
            await clients(0.3)
        for _ in range(DURABLE_ROUNDS):
            for durable in (True, False):
                storage.acknowledge_on_disk = durable
                value, commits, done = await clients(DURABLE_ROUND_SECONDS)
                rates[durable].append(value)
                if durable:
                    fsyncs += commits
                    pairs += done
    finally:
        storage.acknowledge_on_disk = True
    assert entry.runtime_data.lab.ledger.token_count == 0
    durable_rate, coalesced = Rate.median(rates[True]), Rate.median(rates[False])
    ratio = durable_rate.wall / coalesced.wall
    report.append(
        Row(
            4,
            f"HA actions, {DURABLE_CLIENTS} concurrent callers: on disk when answered",
            rate(durable_rate.wall, " pairs/s"),
            f"coalesced save {rate(coalesced.wall, ' pairs/s')}",
            f"{ratio:.2f}",
            f"{fsyncs / max(pairs, 1) / 2:.3f} fsyncs per change",
            "",
        )
    )


# 2. The ledger alone


def test_ledger_throughput(report: list[Row]) -> None:
    """Acquire+release pairs per second of the pure ledger, against a plain dict."""
    ledger = Ledger(time.time)
    for name in NAMES:
        ledger.set_policy(name, ResourcePolicy())
    batch = [NAMES[i % RESOURCES] for i in range(2 * RESOURCES)]
    acquire, release = ledger.acquire, ledger.release

    def pairs() -> None:
        for name in batch:
            token = acquire(name, HOLDER)
            assert release(token.id) is token

    # A fresh ledger, then a long-running one: the memory of released ids (kept so that
    # releasing twice is no error) fills up to RELEASED_MEMORY_MAX and stays full.
    # (Fresh: the best of three short runs, which together stay below that.)
    fresh = max(
        (timed_loop(pairs, 0.03, len(batch)) for _ in range(3)), key=lambda r: r.cpu
    )
    assert len(ledger._released) < RELEASED_MEMORY_MAX
    while len(ledger._released) < RELEASED_MEMORY_MAX:
        pairs()
    pairs()
    steady = timed_loop(pairs, LEDGER_SECONDS, len(batch))
    assert ledger.token_count == 0
    assert len(ledger._released) == RELEASED_MEMORY_MAX

    plain: dict[str, int] = {}

    def dict_pairs() -> None:
        for value in range(len(batch)):
            key = secrets.token_urlsafe(16)
            plain[key] = value
            del plain[key]

    baseline = timed_loop(dict_pairs, LEDGER_SECONDS / 2, len(batch))
    assert not plain
    # What every storage write of the ledger costs in the event loop (HA's Store calls
    # to_dict and serialises there): with the released ids remembered, and without.
    for name in NAMES:
        ledger.acquire(name, HOLDER)
    full_ms, full_size = snapshot_cost(ledger)
    ledger._released.clear()
    empty_ms, empty_size = snapshot_cost(ledger)
    assert empty_size < full_size

    for order, label, kind in (
        (5, "Ledger: acquire+release", "wall"),
        (6, "  (per CPU second)", "cpu"),
    ):
        value, base = getattr(steady, kind), getattr(baseline, kind)
        report.append(
            Row(
                order,
                label,
                rate(value, " pairs/s"),
                f"dict insert+delete {rate(base)}",
                f"{value / base:.2f}",
                f">= {TARGET_LEDGER_PAIRS:,} pairs/s",
                verdict(value >= TARGET_LEDGER_PAIRS),
            )
        )
    report.append(
        Row(
            7,
            f"  (fresh ledger, < {RELEASED_MEMORY_MAX:,} released ids, CPU)",
            rate(fresh.cpu, " pairs/s"),
            "",
            f"{fresh.cpu / baseline.cpu:.2f}",
            "",
            "",
        )
    )
    report.append(
        Row(
            8,
            "Ledger storage write (to_dict + JSON, CPU)",
            f"{full_ms:.1f} ms, {full_size / 2**20:.1f} MiB",
            f"no released ids {empty_ms:.2f} ms, {empty_size / 2**10:.0f} KiB",
            f"{full_ms / empty_ms:.0f}",
            f"{RESOURCES:,} tokens, {RELEASED_MEMORY_MAX:,} released ids",
            "",
        )
    )


def snapshot_cost(ledger: Ledger) -> tuple[float, int]:
    """CPU milliseconds and bytes of one storage write of the ledger, as HA's Store does.

    Store calls to_dict and serialises in the event loop; only the file is written in a
    thread.
    """
    times = []
    for _ in range(5):
        start = time.process_time()
        _, data = prepare_save_json({"version": 1, "data": ledger.to_dict()})
        times.append(time.process_time() - start)
    return median(times) * 1000, len(data)


# 3. Setup time


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_setup_time(hass: HomeAssistant, report: list[Row]) -> None:
    """Setting up a Lab of 1,000 resources, against setting up their 1,000 relays."""
    watch = Stopwatch()
    await setup_booleans(hass, [relay_id(name) for name in NAMES])
    relays, relays_cpu = watch.stop()
    assert len(hass.states.async_entity_ids("input_boolean")) == RESOURCES
    entry = lab_entry(NAMES)
    entry.add_to_hass(hass)
    watch = Stopwatch()
    await setup_lab(hass, entry)
    lab, lab_cpu = watch.stop()
    check_lab_loaded(hass, entry)
    report.append(
        Row(
            9,
            f"Lab entry setup, {RESOURCES:,} resources",
            f"{lab:.2f} s (CPU {lab_cpu:.2f} s)",
            f"{RESOURCES:,} input_booleans {relays:.2f} s (CPU {relays_cpu:.2f} s)",
            f"{lab / relays:.1f}",
            f"<= {TARGET_SETUP_SECONDS:g} s",
            verdict(lab <= TARGET_SETUP_SECONDS),
        )
    )


# 4. Memory


def traced() -> int:
    """Memory allocated by Python right now (after a full collection)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@dataclass(frozen=True, slots=True)
class SetupMemory:
    """What a Lab entry's setup keeps, per resource (tracemalloc, after a collection)."""

    per_relay: float  # the baseline: one input_boolean
    per_entry: float  # the config entry before its setup (its subentries)
    per_resource: float  # the set-up lab
    peak: float  # bytes above the entry alone, at the peak during setup


async def measure_setup_memory(
    hass: HomeAssistant,
    relays: list[str],
    make_entry: Callable[[], Awaitable[MockConfigEntry]],
    resources: int,
) -> tuple[MockConfigEntry, SetupMemory]:
    """Set up the relays, then the entry `make_entry` adds, measuring each step."""
    tracemalloc.start()
    try:
        before = traced()
        await setup_booleans(hass, relays)
        with_relays = traced()
        entry = await make_entry()
        with_entry = traced()
        tracemalloc.reset_peak()
        await setup_lab(hass, entry)
        peak = tracemalloc.get_traced_memory()[1]
        lab = traced()
    finally:
        tracemalloc.stop()
    return entry, SetupMemory(
        per_relay=(with_relays - before) / resources,
        per_entry=(with_entry - with_relays) / resources,
        per_resource=(lab - with_entry) / resources,
        peak=peak - with_entry,
    )


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_setup_memory(hass: HomeAssistant, report: list[Row]) -> None:
    """Memory a Lab entry keeps per resource, against an input_boolean."""

    async def make_entry() -> MockConfigEntry:
        entry = lab_entry(NAMES)
        entry.add_to_hass(hass)
        return entry

    entry, memory = await measure_setup_memory(
        hass, [relay_id(name) for name in NAMES], make_entry, RESOURCES
    )
    entities = check_lab_loaded(hass, entry)
    report.append(
        Row(
            10,
            "Memory per resource (Lab setup)",
            size(memory.per_resource),
            f"per input_boolean {size(memory.per_relay)}",
            f"{memory.per_resource / memory.per_relay:.1f}",
            "",
            "",
        )
    )
    report.append(
        Row(
            11,
            "  (config subentry; peak during setup)",
            f"{size(memory.per_entry)} per subentry",
            f"peak +{memory.peak / 2**20:,.1f} MiB",
            "",
            f"{entities / RESOURCES:.1f} entities + 1 device per resource",
            "",
        )
    )


def test_ledger_memory(report: list[Row]) -> None:
    """Memory per live token in the ledger, and per remembered released id."""
    tokens = 50_000
    ledger = Ledger(time.time)
    for name in NAMES:
        ledger.set_policy(name, ResourcePolicy())
    tracemalloc.start()
    try:
        before = traced()
        for i in range(tokens):
            ledger.acquire(NAMES[i % RESOURCES], HOLDER)
        live = traced()
        for token_id in [token.id for token in ledger.all_tokens()]:
            ledger.release(token_id)
        released = traced()
    finally:
        tracemalloc.stop()
    assert ledger.token_count == 0
    assert len(ledger._released) == tokens
    report.append(
        Row(
            12,
            "Memory per live token (ledger)",
            size((live - before) / tokens),
            "",
            "",
            "",
            "",
        )
    )
    report.append(
        Row(
            13,
            "Memory per remembered released id",
            size((released - before) / tokens),
            "",
            "",
            f"{RELEASED_MEMORY_MAX:,} at most",
            "",
        )
    )
