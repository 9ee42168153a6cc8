"""Staggered power-on: limits on simultaneous power-ons, lab-wide and per PDU."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from custom_components.labpower.core.model import InvalidStaggerError, ResourceState
from custom_components.labpower.core.reconciler import WAITING_FOR_SLOT
from custom_components.labpower.core.stagger import PowerOnGate, StaggerPolicy

from .fakes import FakeClock, FakeScheduler
from .labrig import Rig, pi_name, stack_name, stacks_lab

SPACING = 2.0


def most_in_flight(starts: list[float], spacing: float) -> int:
    """The most power-ons whose slot (start to start + spacing) overlaps."""
    return max(
        sum(1 for other in starts if start - spacing < other <= start)
        for start in starts
    )


def assert_slots_respected(starts: list[float], limit: int, spacing: float) -> None:
    """At most `limit` slots at a time, and a slot starts again only after `spacing`."""
    starts = sorted(starts)
    assert most_in_flight(starts, spacing) <= limit
    # With `limit` slots, start i and start i + limit share a slot at best.
    for earlier, later in zip(starts, starts[limit:], strict=False):
        assert later - earlier >= spacing


async def test_48_pis_come_up_in_waves() -> None:
    rig = Rig(StaggerPolicy(max_parallel=4, spacing=SPACING))
    await rig.start(stacks_lab(rig))
    pis = [pi_name(s, p) for s in range(12) for p in range(4)]
    started = rig.clock.now
    rig.lab.acquire(pis, "big job")
    await rig.scheduler.settle()
    assert len(rig.switched()) == 4  # the first wave
    assert rig.reason(stack_name(11)) == WAITING_FOR_SLOT
    assert rig.state(stack_name(11)) is ResourceState.OFF
    await rig.advance(120)
    assert all(rig.state(name) is ResourceState.AVAILABLE for name in pis)
    starts = [t for t, _, command in rig.log if command == "on"]
    assert len(starts) == 60  # 12 stacks and 48 Pis, each switched on once
    assert_slots_respected(starts, 4, SPACING)
    assert most_in_flight(starts, SPACING) == 4
    # Waves, not a trickle: 60 power-ons, 4 every 2 s (a Pi also waits for its stack).
    assert max(starts) - started <= 60 / 4 * SPACING + 2 * SPACING
    assert any(
        reason == WAITING_FOR_SLOT for name, reason in rig.reasons if name in pis
    )
    # Every stack came up before its Pis.
    for s in range(12):
        stack_on = rig.times(stack_name(s))[0]
        assert all(rig.times(pi_name(s, p))[0] > stack_on for p in range(4))
    assert rig.lab.stagger.max_parallel == 4


async def test_per_pdu_limit() -> None:
    rig = Rig(StaggerPolicy(per_group=1, spacing=SPACING, group_limits={"pdu-2": 2}))
    specs = [rig.spec(stack_name(s), group=f"pdu-{s % 3}") for s in range(12)]
    await rig.start(specs)
    rig.lab.acquire([stack_name(s) for s in range(12)], "ci")
    await rig.scheduler.settle()
    # One on each of pdu-0 and pdu-1, two on pdu-2, at the same moment.
    assert len(rig.switched()) == 4
    await rig.advance(60)
    assert all(rig.state(stack_name(s)) is ResourceState.AVAILABLE for s in range(12))
    for group, limit in (("pdu-0", 1), ("pdu-1", 1), ("pdu-2", 2)):
        names = {stack_name(s) for s in range(12) if f"pdu-{s % 3}" == group}
        starts = [
            t for t, name, command in rig.log if name in names and command == "on"
        ]
        assert len(starts) == 4
        assert_slots_respected(starts, limit, SPACING)
    everything = [t for t, _, command in rig.log if command == "on"]
    assert most_in_flight(everything, SPACING) == 4


async def test_released_while_waiting_leaves_the_queue() -> None:
    rig = Rig(StaggerPolicy(max_parallel=1, spacing=10))
    await rig.start([rig.spec("a"), rig.spec("b", off_delay=0), rig.spec("c")])
    rig.lab.acquire(["a"], "ci")
    [b] = rig.lab.acquire(["b"], "ci")
    rig.lab.acquire(["c"], "ci")
    await rig.scheduler.settle()
    assert rig.switched() == ["a"]
    assert rig.reason("b") == WAITING_FOR_SLOT
    rig.lab.release([b.id])
    await rig.scheduler.settle()
    assert rig.reason("b") is None  # no longer waits
    await rig.advance(60)
    assert rig.switched() == ["a", "c"]
    assert rig.times("c") == [rig.times("a")[0] + 10]


async def test_limits_changed_while_running() -> None:
    rig = Rig(StaggerPolicy(max_parallel=1, spacing=100))
    await rig.start([rig.spec(f"r{i}") for i in range(6)])
    rig.lab.acquire([f"r{i}" for i in range(6)], "ci")
    await rig.scheduler.settle()
    assert len(rig.switched()) == 1
    rig.lab.set_stagger(StaggerPolicy(max_parallel=3, spacing=100))
    await rig.scheduler.settle()
    assert len(rig.switched()) == 3
    rig.lab.set_stagger(None)
    await rig.scheduler.settle()
    assert len(rig.switched()) == 6


async def test_failed_power_on_frees_its_slot_after_the_spacing() -> None:
    rig = Rig(StaggerPolicy(max_parallel=1, spacing=5))
    await rig.start([rig.spec("bad"), rig.spec("good")])
    rig.feeds["bad"].transient_failures = 10
    rig.lab.acquire(["bad", "good"], "ci")
    await rig.scheduler.settle()
    assert rig.state("bad") is ResourceState.FAULT
    assert rig.switched() == []
    await rig.advance(5)
    assert rig.switched() == ["good"]


def test_gate_is_first_come_first_served() -> None:
    clock = FakeClock()
    scheduler = FakeScheduler(clock)
    granted: list[str] = []
    gate = PowerOnGate(
        StaggerPolicy(max_parallel=2, per_group=1),
        call_later=scheduler.call_later,
        on_grant=granted.append,
    )
    a, b = frozenset({"a"}), frozenset({"b"})
    assert gate.request("a1", a)
    assert not gate.request("a2", a)  # pdu a is busy
    assert gate.request("b1", b)  # another PDU does not wait behind a2
    assert not gate.request("b2", b)
    assert not gate.request("x", frozenset())  # the lab-wide limit
    assert gate.waiting() == ["a2", "b2", "x"]
    assert not gate.request("a2", a)  # asking again keeps the place
    assert gate.request("a1", a)  # a holder is told it holds
    gate.withdraw("b1")  # never used: freed at once, the oldest that fits goes
    assert granted == ["b2"]
    gate.withdraw("x")
    assert gate.waiting() == ["a2"]
    gate.done("a1")  # no spacing: freed at once
    assert granted == ["b2", "a2"]
    assert gate.in_use == 2
    gate.done("nobody")
    gate.withdraw("nobody")
    gate.reset()
    assert gate.in_use == 0
    assert gate.waiting() == []


async def test_gate_spacing() -> None:
    clock = FakeClock()
    scheduler = FakeScheduler(clock)
    granted: list[str] = []
    gate = PowerOnGate(
        StaggerPolicy(max_parallel=1, spacing=3),
        call_later=scheduler.call_later,
        on_grant=granted.append,
    )
    assert gate.request("a")
    assert not gate.request("b")
    gate.done("a")
    assert gate.in_use == 1  # held for the spacing
    await scheduler.advance(2.9)
    assert granted == []
    await scheduler.advance(0.1)
    assert granted == ["b"]
    gate.done("b")
    gate.reset()  # the spacing timer is cancelled
    await scheduler.advance(10)
    assert gate.in_use == 0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda: StaggerPolicy(max_parallel=0),
            "max_parallel must be at least 1, not 0",
        ),
        (lambda: StaggerPolicy(per_group=-1), "per_group must be at least 1, not -1"),
        (
            lambda: StaggerPolicy(group_limits={"pdu": 0}),
            "pdu must be at least 1, not 0",
        ),
        (lambda: StaggerPolicy(spacing=-1), "spacing must not be negative: -1"),
        (
            lambda: StaggerPolicy(spacing=float("nan")),
            "spacing must not be negative: nan",
        ),
    ],
)
def test_invalid_policy(make: Callable[[], StaggerPolicy], reason: str) -> None:
    with pytest.raises(InvalidStaggerError) as err:
        make()
    assert err.value.key == "invalid_stagger"
    assert err.value.placeholders == {"reason": reason}
