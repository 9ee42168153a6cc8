"""A lab of 5,000 machines in one Home Assistant (issue 18): setup, memory, token changes.

Run with scripts/benchmark (or scripts/benchmark -k scale). The lab comes from one lab file:
50 rack switches and 4,950 nodes, each node depending on a rack switch, every resource
switched by an input_boolean relay, no availability check. Baselines are measured in the
same run on the same Home Assistant: setting up the 5,000 relays (input_booleans, with
50 more that no resource uses) and switching one of those 50 (`input_boolean.turn_on`/
`turn_off`, state written: a relay of the lab switched by hand would be a fault).

- setup: `async_setup` of the Lab entry, from reading the file to every entity added (HA
  idle again), target <= 10 s;
- memory: Python allocations that the set-up lab keeps (tracemalloc, after a full
  collection, in a run of its own as tracing slows everything down), target <= 30 KiB per
  resource;
- one token change: `labpower.acquire` then `labpower.release` of a node through the
  actions, one awaited at a time, each answered once on disk; after each the lab's Holders
  sensor (its live tokens) is checked to be written; Home Assistant's background work (the
  reconciler switching the relay, timers) is in the time; target <= 1 ms per change.

Timings are reported, never asserted; asserted is that the work was done.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.labpower.const import DOMAIN
from custom_components.labpower.core.model import ResourceState
from tests.peers.ha import call

from .conftest import Row
from .test_bench import (
    Stopwatch,
    measure_setup_memory,
    setup_booleans,
    setup_lab,
    size,
    verdict,
)

RACKS, NODES = 50, 4950
RESOURCES = RACKS + NODES
RACK_NAMES = [f"rack{i:02d}" for i in range(1, RACKS + 1)]
NODE_NAMES = [f"node{i:04d}" for i in range(1, NODES + 1)]
NAMES = RACK_NAMES + NODE_NAMES
SPARE_BOOLEANS = [
    f"spare{i:02d}" for i in range(1, RACKS + 1)
]  # the switching baseline
HOLDERS_TOTAL = "sensor.scale_lab_holders"  # the lab's live tokens, written per commit
CHANGES = 2000  # token changes timed (acquire and release each count as one)

TARGET_SETUP_SECONDS = 10.0
TARGET_MEMORY = 30 * 1024
TARGET_CHANGE_MS = 1.0

pytestmark = pytest.mark.timeout(600)


def lab_text() -> str:
    """The lab file: ranges expand in step (node0001 on rack01 ... node4950 on rack50)."""
    return "\n".join(
        [
            "version: 1",
            "defaults:",
            "  off_delay: 600",
            "  max_ttl: 28800",
            "resources:",
            f"  - name: rack[01-{RACKS}]",
            f"    power_entity: input_boolean.rack[01-{RACKS}]_relay",
            "    labels: [network]",
            f"  - name: node[0001-{NODES}]",
            f"    power_entity: input_boolean.node[0001-{NODES}]_relay",
            f"    depends_on: rack[01-{RACKS}]*{NODES // RACKS}",
            "    labels: [nodes]",
            "    power_w: 60",
            "",
        ]
    )


async def lab_from_file(hass: HomeAssistant) -> MockConfigEntry:
    """The relays, the lab file and its Lab entry (not set up yet)."""
    path = Path(hass.config.path("labpower.yaml"))
    await hass.async_add_executor_job(path.write_text, lab_text(), "utf-8")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Scale lab",
        data={"name": "Scale lab"},
        options={"lab_file": "labpower.yaml"},
    )
    entry.add_to_hass(hass)
    return entry


def check_loaded(
    hass: HomeAssistant, entry: MockConfigEntry, *, off: bool = True
) -> tuple[int, int]:
    """Every resource is there (and off); its entities (all, enabled) are registered."""
    lab = entry.runtime_data.lab
    assert sorted(lab.names) == sorted(NAMES)
    # After the token changes the first nodes and their racks stay on (off delay).
    assert all(lab.state(name) is ResourceState.OFF for name in NAMES[-RACKS:])
    if off:
        assert all(lab.state(name) is ResourceState.OFF for name in NAMES)
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    enabled = [e for e in entities if e.disabled_by is None]
    assert hass.states.get(f"switch.{NODE_NAMES[-1]}_power") is not None
    assert hass.states.get(HOLDERS_TOTAL) is not None
    return len(entities), len(enabled)


def relays() -> list[str]:
    """The object ids of the relays."""
    return [f"{name}_relay" for name in NAMES]


def booleans() -> list[str]:
    """The object ids of the input_booleans: the relays and the spare ones."""
    return relays() + SPARE_BOOLEANS


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_scale_setup_and_changes(hass: HomeAssistant, report: list[Row]) -> None:
    """Setup time of the 5,000-resource lab file, then token changes one at a time."""
    watch = Stopwatch()
    await setup_booleans(hass, booleans())
    relays_wall, relays_cpu = watch.stop()
    entry = await lab_from_file(hass)
    watch = Stopwatch()
    await setup_lab(hass, entry)
    lab_wall, lab_cpu = watch.stop()
    entities, enabled = check_loaded(hass, entry)
    report.append(
        Row(
            30,
            f"Lab file setup, {RESOURCES:,} resources",
            f"{lab_wall:.2f} s (CPU {lab_cpu:.2f} s)",
            f"{len(booleans()):,} input_booleans {relays_wall:.2f} s (CPU {relays_cpu:.2f} s)",
            f"{lab_wall / relays_wall:.1f}",
            f"<= {TARGET_SETUP_SECONDS:g} s",
            verdict(lab_wall <= TARGET_SETUP_SECONDS),
        )
    )
    report.append(
        Row(
            31,
            "  (entities per resource: enabled / registered)",
            f"{enabled / RESOURCES:.1f} / {entities / RESOURCES:.1f}",
            "",
            "",
            "the others are disabled by default",
            "",
        )
    )

    # Token changes: the first CHANGES / 2 nodes, acquired and released in turn.
    names = NODE_NAMES[: CHANGES // 2]

    resident = 0  # tokens held all along (the lab in use)

    async def change(name: str, token: str | None) -> str | None:
        if token is None:
            [taken] = (
                await call(hass, "acquire", {"resource": name, "holder": "scale job"})
            )["tokens"]
            token, count = taken["token"], str(resident + 1)
        else:
            assert await call(hass, "release", {"token": token}) == {"released": 1}
            token, count = None, str(resident)
        state = hass.states.get(HOLDERS_TOTAL)
        assert state is not None
        assert state.state == count  # the state is written when the call returns
        return token

    async def toggle(entity_id: str, service: str) -> None:
        await hass.services.async_call(
            "input_boolean", service, {"entity_id": entity_id}, blocking=True
        )
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == ("on" if service == "turn_on" else "off")

    async def timed_changes() -> float:
        tokens: dict[str, str | None] = {}
        watch = Stopwatch()
        for name in names:
            tokens[name] = await change(name, None)
            await asyncio.sleep(0)
            tokens[name] = await change(name, tokens[name])
            await asyncio.sleep(0)
        await hass.async_block_till_done()
        wall, _ = watch.stop()
        assert not any(tokens.values())
        return wall / (2 * len(names))

    async def timed_toggles() -> float:
        ids = [f"input_boolean.{name}" for name in SPARE_BOOLEANS]
        watch = Stopwatch()
        for service in ("turn_on", "turn_off"):
            for i in range(len(names)):
                await toggle(ids[i % len(ids)], service)
                await asyncio.sleep(0)
        await hass.async_block_till_done()
        wall, _ = watch.stop()
        return wall / (2 * len(names))

    await timed_changes()  # warm-up: each node (and its rack) powered on once
    await timed_toggles()
    changes = [await timed_changes() for _ in range(3)]
    toggles = [await timed_toggles() for _ in range(3)]
    per_change, per_toggle = min(changes), min(toggles)
    assert entry.runtime_data.lab.ledger.token_count == 0
    # The lab in use: nearly every node held by a job (the last ones stay off for the
    # reload's check), all powered on; then the same changes.
    held = NODE_NAMES[:-RACKS]
    resident_tokens = (
        await call(hass, "acquire", {"resource": held, "holder": "resident job"})
    )["tokens"]
    lab = entry.runtime_data.lab
    for _ in range(600):
        await hass.async_block_till_done()
        if all(lab.state(name) is ResourceState.AVAILABLE for name in held):
            break
        await asyncio.sleep(0.1)
    resident = len(held)
    in_use = [await timed_changes() for _ in range(3)]
    per_change_in_use = min(in_use)
    assert lab.ledger.token_count == resident
    released = await call(
        hass, "release", {"token": [taken["token"] for taken in resident_tokens]}
    )
    assert released == {"released": resident}
    resident = 0
    # A restart's setup: the registry knows every entity already (unload + setup).
    watch = Stopwatch()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    reload_wall, reload_cpu = watch.stop()
    check_loaded(hass, entry, off=False)  # the first nodes' racks are on: off delay
    report.append(
        Row(
            31,
            "  (reload: unload + setup, entities registered)",
            f"{reload_wall:.2f} s (CPU {reload_cpu:.2f} s)",
            "",
            f"{reload_wall / relays_wall:.1f}",
            f"<= {TARGET_SETUP_SECONDS:g} s",
            verdict(reload_wall <= TARGET_SETUP_SECONDS),
        )
    )
    report.append(
        Row(
            32,
            f"One token change, {RESOURCES:,}-resource lab",
            f"{per_change * 1000:.3f} ms",
            f"input_boolean turn_on/off {per_toggle * 1000:.3f} ms",
            f"{per_change / per_toggle:.1f}",
            f"<= {TARGET_CHANGE_MS:g} ms (on disk, state written)",
            verdict(per_change * 1000 <= TARGET_CHANGE_MS),
        )
    )
    report.append(
        Row(
            32,
            f"  the same with {len(held):,} tokens held (the lab in use)",
            f"{per_change_in_use * 1000:.3f} ms",
            f"input_boolean turn_on/off {per_toggle * 1000:.3f} ms",
            f"{per_change_in_use / per_toggle:.1f}",
            f"<= {TARGET_CHANGE_MS:g} ms (on disk, state written)",
            verdict(per_change_in_use * 1000 <= TARGET_CHANGE_MS),
        )
    )


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_scale_memory(hass: HomeAssistant, report: list[Row]) -> None:
    """Memory the 5,000-resource lab keeps per resource, against an input_boolean."""
    entry, memory = await measure_setup_memory(
        hass, relays(), lambda: lab_from_file(hass), RESOURCES
    )
    check_loaded(hass, entry)
    per_resource, per_relay = memory.per_resource, memory.per_relay
    report.append(
        Row(
            33,
            f"Memory per resource, {RESOURCES:,}-resource lab file",
            size(per_resource),
            f"per input_boolean {size(per_relay)}",
            f"{per_resource / per_relay:.1f}",
            f"<= {size(TARGET_MEMORY)} (tracemalloc)",
            verdict(per_resource <= TARGET_MEMORY),
        )
    )
    report.append(
        Row(
            34,
            "  (peak during setup)",
            f"+{memory.peak / 2**20:,.1f} MiB",
            "",
            "",
            "",
            "",
        )
    )
