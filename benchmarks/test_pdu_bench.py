"""PDU units at lab scale: status requests per poll, and 48 outlets switched on at once.

Six fake units (3 Intellinet 163682, 3 NETIO, 8 outlets each; tests/peers/pdu_http.py)
listen on 127.0.0.1 and answer every request after REQUEST_DELAY, as slow embedded web
servers do. Each has a real driver client on a real aiohttp session behind a PduUnit (the
status max age Home Assistant uses), and each of the 48 outlets feeds one resource of a
real core Lab (asyncio scheduler, time.time, no stagger limit), started with lab.start().

1. Status requests per poll: every resource's reconciler observes at once; the requests
   to the units are counted (target: one per unit, against one per outlet).
2. Power on: all 48 resources acquired at once until every one is available, against the
   sum of the 48 single-outlet power-ons measured in the same run (one resource acquired
   while everything else is off, then switched off again, untimed).

Before each measurement the units' clock moves past the status max age, so no cached
status is reused: every measurement starts as a user arriving between two polls does.
The reconciler's fast poll (the pass that sees a switched-on resource become available)
runs every FAST_POLL instead of every 2 s, so that what is timed is the units, not the
wait for the next tick. Timings are reported, never asserted; request counts are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
import time

import aiohttp
import pytest

from custom_components.labpower.coordinator import STATUS_MAX_AGE
from custom_components.labpower.core.events import EventKind, LabEvent
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    ResourcePolicy,
    ResourceState,
    UsageToken,
)
from custom_components.labpower.core.reconciler import Timing
from custom_components.labpower.drivers.pdu import PduOutletSwitcher, PduUnit
from tests.peers.pdu_http import FakeIntellinet, FakeNetio, FakePdu

from .conftest import Row

UNITS, OUTLETS = 6, 8
RESOURCES = UNITS * OUTLETS
REQUEST_DELAY = 0.030  # seconds each unit takes to answer a request
FAST_POLL = 0.005
WAIT_TIMEOUT = 30.0
POLICY = ResourcePolicy(off_delay=0, min_off_time=0)

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(300)]


class UnitClock:
    """The units' monotonic clock, which the benchmark can move past the status max age."""

    def __init__(self) -> None:
        """No offset yet."""
        self.offset = 0.0

    def __call__(self) -> float:
        """Monotonic seconds, plus every jump so far."""
        return time.monotonic() + self.offset

    def age_statuses(self) -> None:
        """Jump past the max age: the next read of every unit goes to the unit."""
        self.offset += STATUS_MAX_AGE + 0.1


@dataclass
class Bench:
    """The running lab, its units and the fake hardware behind them."""

    lab: Lab
    fakes: list[FakePdu]
    units: list[PduUnit]
    unit_names: list[str]
    clock: UnitClock
    changed: asyncio.Event  # set on every state change of a resource

    async def wait_off(self, names: list[str]) -> None:
        """Until these resources are read as off (not timed)."""
        async with asyncio.timeout(WAIT_TIMEOUT):
            while True:
                self.changed.clear()
                if all(self.lab.state(name) is ResourceState.OFF for name in names):
                    return
                await self.changed.wait()

    def clear_logs(self) -> None:
        """Forget the requests every fake unit saw so far."""
        for fake in self.fakes:
            fake.log.clear()

    def status_requests(self, fake: FakePdu) -> int:
        """Status reads a fake unit answered since its log was cleared."""
        return len(fake.calls("GET", fake.status_path))

    def requests(self) -> int:
        """Every request the fake units answered since their logs were cleared."""
        return sum(len(fake.calls()) for fake in self.fakes)


@contextlib.asynccontextmanager
async def lab_of_units() -> AsyncIterator[Bench]:
    """Six fake units, a PduUnit each, and a started lab of 48 outlet-fed resources."""
    async with contextlib.AsyncExitStack() as stack:
        fakes: list[FakePdu] = []
        for index in range(UNITS):
            kind = FakeIntellinet if index % 2 == 0 else FakeNetio
            fake = kind(outlet_count=OUTLETS, delay=REQUEST_DELAY)
            fakes.append(await stack.enter_async_context(fake))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        clock = UnitClock()
        unit_names = [f"{fake.vendor}{index + 1}" for index, fake in enumerate(fakes)]
        units = [
            PduUnit(fake.client(session), max_age=STATUS_MAX_AGE, clock=clock)
            for fake in fakes
        ]
        for unit in units:
            stack.push_async_callback(unit.close)
        changed = asyncio.Event()

        def listener(event: LabEvent) -> None:
            if event.kind is EventKind.STATE_CHANGED:
                changed.set()

        lab = Lab(
            clock=time.time,
            listener=listener,
            timing=Timing(fast_poll=FAST_POLL),
        )
        lab.add_all(
            ResourceSpec(
                name=f"{unit_name}-{outlet:02d}",
                feeds=(PduOutletSwitcher(unit, outlet, unit_name),),
                policy=POLICY,
            )
            for unit, unit_name in zip(units, unit_names, strict=True)
            for outlet in range(1, OUTLETS + 1)
        )
        await lab.start()
        stack.push_async_callback(lab.stop)
        assert len(lab.names) == RESOURCES
        assert all(lab.state(name) is ResourceState.OFF for name in lab.names)
        yield Bench(lab, fakes, units, unit_names, clock, changed)


async def power_on(bench: Bench, names: list[str]) -> tuple[float, list[UsageToken]]:
    """Acquire these resources at once; wall seconds until every one is available."""
    bench.clock.age_statuses()
    bench.clear_logs()
    start = time.perf_counter()
    tokens = bench.lab.acquire(names, "pdu bench")
    await bench.lab.wait_available(tokens, WAIT_TIMEOUT)
    return time.perf_counter() - start, tokens


async def status_requests_per_poll(bench: Bench) -> tuple[int, int]:
    """Every reconciler observes at once: requests to the units, and shared reads made."""
    await asyncio.sleep(0.1)  # the first passes after start end (cached reads only)
    bench.clock.age_statuses()
    bench.clear_logs()
    reads_before = sum(unit.status_reads for unit in bench.units)
    lab = bench.lab
    await asyncio.gather(*(lab.reconciler(name).observe() for name in lab.names))
    reads = sum(unit.status_reads for unit in bench.units) - reads_before
    requests = sum(bench.status_requests(fake) for fake in bench.fakes)
    assert bench.requests() == requests  # nothing but status reads went out
    return requests, reads


def verdict(ok: bool) -> str:
    """What the table says about a target."""
    return "ok" if ok else "MISSED"


async def test_pdu_lab(report: list[Row]) -> None:
    """A lab of 6 units x 8 outlets: requests per poll; a batch power-on vs single ones."""
    async with lab_of_units() as bench:
        lab = bench.lab
        per_poll, shared_reads = await status_requests_per_poll(bench)
        assert per_poll == UNITS
        assert shared_reads == UNITS

        # The baseline: one outlet at a time, everything else off.
        single_times: list[float] = []
        single_requests: list[int] = []  # to the unit of the outlet switched
        for index, name in enumerate(lab.names):
            seconds, tokens = await power_on(bench, [name])
            single_times.append(seconds)
            # (the other units may have answered the idle resources' poll meanwhile)
            single_requests.append(len(bench.fakes[index // OUTLETS].calls()))
            lab.release(token.id for token in tokens)
            await bench.wait_off([name])
        assert not any(any(fake.on) for fake in bench.fakes)

        # Every outlet at once.
        batch_s, tokens = await power_on(bench, lab.names)
        assert all(lab.state(name) is ResourceState.AVAILABLE for name in lab.names)
        assert all(all(fake.on) for fake in bench.fakes)
        per_unit = [
            (
                len(fake.calls()),
                bench.status_requests(fake),
                len(fake.calls()) - bench.status_requests(fake),
            )
            for fake in bench.fakes
        ]
        # Commands to one unit went out as one request.
        assert [commands for _, _, commands in per_unit] == [1] * UNITS
        lab.release(token.id for token in tokens)
        await bench.wait_off(lab.names)
        assert not any(any(fake.on) for fake in bench.fakes)
        # A unit's requests never overlapped.
        assert all(fake.most_in_flight == 1 for fake in bench.fakes)

    singles_s = sum(single_times)
    ratio = batch_s / singles_s
    batch_requests = sum(total for total, _, _ in per_unit)
    print(
        f"\nPDU bench: {per_poll} status requests per poll; 48 at once {batch_s:.3f} s, "
        f"sum of 48 singles {singles_s:.3f} s (ratio {ratio:.3f}); per unit "
        + ", ".join(
            f"{unit_name} {total} ({reads} status, {commands} command)"
            for unit_name, (total, reads, commands) in zip(
                bench.unit_names, per_unit, strict=True
            )
        )
    )
    report += [
        Row(
            40,
            f"PDU status requests per poll ({UNITS} units x {OUTLETS} outlets)",
            f"{per_poll}",
            f"one per outlet {RESOURCES}",
            f"{per_poll / RESOURCES:.3f}",
            f"== {UNITS} (one per unit)",
            verdict(per_poll == UNITS),
        ),
        Row(
            41,
            f"Power on {RESOURCES} outlets at once ({REQUEST_DELAY * 1000:g} ms a request)",
            f"{batch_s:.3f} s",
            f"sum of {RESOURCES} single switches {singles_s:.3f} s",
            f"{ratio:.3f}",
            "< 1 (batched per unit, units in parallel)",
            verdict(ratio < 1),
        ),
        Row(
            42,
            "  (one outlet alone, median)",
            f"{sorted(single_times)[RESOURCES // 2] * 1000:.0f} ms",
            f"min {min(single_times) * 1000:.0f} ms, max {max(single_times) * 1000:.0f} ms",
            "",
            f"fast poll every {FAST_POLL * 1000:g} ms",
            "",
        ),
        Row(
            43,
            "  (requests per unit, all at once)",
            " / ".join(str(total) for total, _, _ in per_unit),
            f"singles: {sum(single_requests)} to the units switched",
            f"{batch_requests / sum(single_requests):.3f}",
            "status read, one command, verify read",
            "",
        ),
    ]
