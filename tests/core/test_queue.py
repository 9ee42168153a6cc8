"""The fair queue in the core: turns, the grant through Lab.acquire, deadlines, restarts."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.labpower.core.lab import ResourceSpec
from custom_components.labpower.core.model import (
    QueuedAheadError,
    QueuedRequest,
    QueueInterruptedError,
    QueueTimeoutError,
    ResourceState,
    TokenKind,
)
from custom_components.labpower.core.queue import REATTACH_SECONDS

from .labrig import Rig


def _request(rig: Rig, rid: str, *names: str, timeout: float = 600) -> QueuedRequest:
    now = rig.clock.now
    return QueuedRequest(
        id=rid,
        holder=rid,
        created=now,
        deadline=now + timeout,
        resources=names,
        count=len(names),
        exclusive=True,
    )


def _pooled(rig: Rig, rid: str, count: int) -> QueuedRequest:
    now = rig.clock.now
    return QueuedRequest(
        id=rid,
        holder=rid,
        created=now,
        deadline=now + 600,
        labels=("arm",),
        count=count,
    )


def _arm(rig: Rig, name: str) -> ResourceSpec:
    spec = rig.spec(name)
    return ResourceSpec(
        name=spec.name,
        feeds=spec.feeds,
        checker=spec.checker,
        policy=spec.policy,
        labels=frozenset({"arm"}),
    )


async def test_the_grant_is_the_labs_acquire_and_leaves_the_queue() -> None:
    rig = Rig()
    await rig.start([rig.spec("a"), rig.spec("b")])
    queue = rig.lab.queue
    [held] = rig.lab.acquire(["a"], "me", kind=TokenKind.HOLD, exclusive=True)
    rig.lab.enqueue(_request(rig, "r1", "a"))
    rig.lab.enqueue(_request(rig, "r2", "a", "b"))
    rig.lab.enqueue(_request(rig, "r3", "b"))
    assert [queue.position(r) for r in ("r1", "r2", "r3")] == [1, 2, 2]
    assert queue.position("nope") is None
    assert queue.ahead("nope") == []
    # r3 waits behind r2 (they share b), r2 behind r1, r1 for the exclusive token.
    assert [queue.ready(r) for r in ("r1", "r2", "r3")] == [None, None, None]
    with pytest.raises(QueuedAheadError) as jumped:
        rig.lab.acquire(["b"], "late")
    assert jumped.value.count == 2
    with pytest.raises(QueuedAheadError):  # r3's turn has not come: r2 is ahead
        rig.lab.acquire(["b"], "r3", ticket="r3")
    turn = asyncio.ensure_future(queue.wait_turn("r1"))
    await rig.scheduler.settle()
    assert not turn.done()
    rig.lab.release([held.id])
    assert await turn == ["a"]
    [token] = rig.lab.acquire(["a"], "r1", exclusive=True, ticket="r1")
    assert token.exclusive
    assert [r.id for r in queue.requests()] == ["r2", "r3"]
    await rig.advance(10)
    assert rig.state("a") is ResourceState.AVAILABLE  # the reconciler powered it


async def test_a_pool_request_for_two_goes_first() -> None:
    rig = Rig()
    await rig.start([_arm(rig, name) for name in ("p1", "p2", "p3")])
    queue = rig.lab.queue
    held = rig.lab.acquire(["p1", "p2", "p3"], "busy")
    rig.lab.enqueue(_pooled(rig, "pair", 2))
    rig.lab.enqueue(_pooled(rig, "one", 1))
    rig.lab.release([held[0].id])
    assert queue.ready("pair") is None  # one free: not enough
    assert queue.ready("one") is None  # behind the pair
    rig.lab.release([held[1].id])
    assert sorted(queue.ready("pair") or []) == ["p1", "p2"]


async def test_deadlines_and_callers_that_do_not_come_back() -> None:
    rig = Rig()
    await rig.start([rig.spec("a")])
    queue = rig.lab.queue
    rig.lab.acquire(["a"], "me", kind=TokenKind.HOLD, exclusive=True)
    rig.lab.enqueue(_request(rig, "late", "a", timeout=60))
    waiting = asyncio.ensure_future(queue.wait_turn("late"))
    await rig.advance(61)
    with pytest.raises(QueueTimeoutError):
        await waiting
    assert queue.requests() == []
    # A restart: the lab stops (the waiting caller is told), the request stays.
    rig.lab.enqueue(_request(rig, "kept", "a"))
    rig.lab.enqueue(_request(rig, "gone", "a"))
    waiting = asyncio.ensure_future(queue.wait_turn("kept"))
    await rig.scheduler.settle()
    await rig.lab.stop()
    with pytest.raises(QueueInterruptedError):
        await waiting
    await rig.lab.start()
    back = asyncio.ensure_future(queue.wait_turn("kept"))  # its caller comes back
    await rig.advance(REATTACH_SECONDS + 1)
    assert [r.id for r in queue.requests()] == ["kept"]  # "gone" was given up
    assert not back.done()
    await rig.advance(600)
    with pytest.raises(QueueTimeoutError):
        await back
    assert not queue.withdraw("kept")
