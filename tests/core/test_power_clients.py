"""Off from a power client: at once, refused while others hold it, off then on cycles."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from custom_components.labpower.core.lab import ResourceSpec
from custom_components.labpower.core.ledger import Ledger
from custom_components.labpower.core.model import (
    HeldByOthersError,
    PowerState,
    ResourceState,
    TokenKind,
)

from .fakes import FakeClock
from .labrig import Rig

FAST = 2.0  # Timing().fast_poll
MIN_OFF = 5.0  # Rig's min_off_time


def _without_off_now(spec: ResourceSpec) -> ResourceSpec:
    return replace(spec, policy=replace(spec.policy, off_now=False))


async def _held(rig: Rig, name: str = "dut", holder: str = "lava") -> str:
    [token] = rig.lab.acquire([name], holder, kind=TokenKind.HOLD)
    await rig.advance(FAST)
    assert rig.state(name) is ResourceState.AVAILABLE
    return token.id


async def test_off_from_the_last_holder_is_at_once() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut", off_delay=300)])
    token = await _held(rig)
    t0 = rig.clock.now
    rig.lab.power_off("dut", [token], "turned off by lava")
    await rig.scheduler.settle()
    assert rig.log[-1] == (t0, "dut", "off")
    assert rig.state("dut") is ResourceState.OFF
    assert rig.lab.ledger.last_cause("dut") == "turned off by lava"
    # Nothing pending: it comes on again only when somebody wants it.
    await rig.advance(600)
    assert rig.switched() == ["dut"]


async def test_off_then_on_power_cycles_even_before_the_off_was_switched() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut", off_delay=300)])
    token = await _held(rig)
    t0 = rig.clock.now
    # labgrid's cycle with no delay: the on arrives before the off's pass ran.
    rig.lab.power_off("dut", [token], "turned off by lava")
    [again] = rig.lab.acquire(["dut"], "lava", kind=TokenKind.HOLD)
    assert not rig.lab.desired_on("dut")
    waiter = asyncio.ensure_future(rig.lab.wait_available([again], 60))
    await rig.scheduler.settle()
    assert not waiter.done()  # available, but on its way off first
    assert [c for _, n, c in rig.log if n == "dut"] == ["on", "off"]
    assert rig.lab.desired_on("dut")
    await rig.advance(MIN_OFF)
    assert rig.log[-1] == (t0 + MIN_OFF, "dut", "on")
    await rig.advance(FAST)
    assert rig.state("dut") is ResourceState.AVAILABLE
    await waiter
    assert rig.lab.ledger.holder_count("dut") == 1


async def test_off_is_refused_while_others_hold_it_and_the_client_lets_go() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut", off_delay=300)])
    token = await _held(rig)
    rig.lab.acquire(["dut"], "alice", kind=TokenKind.HOLD)
    rig.lab.acquire(["dut"], "jenkins #12")
    with pytest.raises(HeldByOthersError) as err:
        rig.lab.power_off("dut", [token], "turned off by lava")
    assert err.value.holders == ["alice", "jenkins #12"]
    assert str(err.value) == "dut stays on: still used by alice, jenkins #12"
    assert err.value.placeholders["count"] == "2"
    await rig.advance(FAST)
    assert not rig.lab.ledger.is_live(token)
    assert not rig.lab.ledger.off_requested("dut")
    assert rig.switched("off") == []
    assert rig.state("dut") is ResourceState.AVAILABLE


async def test_off_is_refused_while_a_child_needs_it() -> None:
    rig = Rig()
    await rig.start([rig.spec("switch"), rig.spec("host", "switch")])
    rig.lab.acquire(["host"], "ci")
    await rig.advance(FAST)
    await rig.advance(FAST)
    assert rig.state("host") is ResourceState.AVAILABLE
    with pytest.raises(HeldByOthersError) as err:
        rig.lab.power_off("switch", [], "turned off by admin")
    assert err.value.holders == ["host"]
    assert rig.lab.claims("host") == ["ci"]


async def test_off_now_turned_off_keeps_the_off_delay() -> None:
    rig = Rig()
    await rig.start([_without_off_now(rig.spec("dut", off_delay=300))])
    token = await _held(rig)
    rig.lab.power_off("dut", [token], "turned off by alice")
    await rig.advance(299)
    assert rig.switched("off") == []
    await rig.advance(1)
    assert rig.switched("off") == ["dut"]


async def test_graceful_off_then_on_waits_for_the_shutdown() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut", off_delay=300)])
    feed = rig.feeds["dut"]
    feed.graceful = True
    feed.graceful_shuts_down = False  # the OS takes its time
    token = await _held(rig)
    rig.lab.power_off("dut", [token], "turned off by MAAS")
    await rig.scheduler.settle()
    rig.lab.acquire(["dut"], "MAAS", kind=TokenKind.HOLD)
    await rig.advance(FAST)
    assert rig.state("dut") is ResourceState.STOPPING
    feed.state = PowerState.OFF  # the OS is down
    await rig.advance(FAST)
    assert [c for _, n, c in rig.log if n == "dut"] == ["on", "graceful_off"]
    await rig.advance(MIN_OFF)
    assert [c for _, n, c in rig.log if n == "dut"] == ["on", "graceful_off", "on"]


async def test_off_of_a_resource_already_off_requests_nothing() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut")])
    rig.lab.power_off("dut", [], "turned off by alice")
    assert not rig.lab.ledger.off_requested("dut")
    rig.lab.acquire(["dut"], "alice")
    await rig.scheduler.settle()
    assert rig.switched() == ["dut"]


async def test_a_requested_off_survives_a_restart() -> None:
    rig = Rig()
    await rig.start([rig.spec("dut")])
    await _held(rig)
    rig.feeds["dut"].unreadable = True  # the plug went offline
    await rig.advance(FAST)
    rig.lab.power_off("dut", [t.id for t in rig.lab.ledger.tokens("dut")], "off")
    rig.lab.acquire(["dut"], "lava", kind=TokenKind.HOLD)
    await rig.advance(FAST)
    assert rig.switched("off") == []  # never acting on unknown
    stored = rig.lab.ledger.to_dict()
    assert stored["off_requested"] == ["dut"]
    ledger = Ledger(FakeClock())
    ledger.set_policy("dut", rig.lab.spec("dut").policy)
    ledger.load(stored)
    assert ledger.off_requested("dut")
    assert not ledger.wants_on("dut")
    ledger.note_off("dut")
    assert ledger.wants_on("dut")
