"""The reconciler: verified actions, the safety rules, faults and recovery."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.labpower.core.events import EventKind
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    PowerAction,
    PowerState,
    ResourceState,
)
from custom_components.labpower.core.reconciler import Timing
from custom_components.labpower.core.switching import SwitcherCapabilities

from .fakes import FakeChecker, FakeClock, FakeFeed
from .labrig import harness


async def test_on_then_available_then_off_after_delay() -> None:
    h = harness(checker=FakeChecker(answer=False))
    feed = h.feeds[0]
    assert await h.step() == h.lab.timing.slow_poll
    assert h.state is ResourceState.OFF
    assert feed.commands == []
    token = h.lab.acquire(["r"], "jenkins #1")[0]
    assert await h.step() == h.lab.timing.fast_poll
    assert feed.commands == ["on"]
    assert h.state is ResourceState.STARTING
    assert h.actions() == [(PowerAction.ON, "acquired by jenkins #1")]
    await h.step()
    assert h.state is ResourceState.STARTING
    assert h.reconciler.checker is not None
    h.reconciler.checker.answer = True  # type: ignore[attr-defined]
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    h.lab.release([token.id])
    await h.step()
    assert h.state is ResourceState.AVAILABLE  # off delay
    assert feed.commands == ["on"]
    h.clock.advance(60)
    await h.step()
    assert feed.commands == ["on", "off"]
    assert h.state is ResourceState.OFF
    assert h.actions()[-1] == (PowerAction.OFF, "released by jenkins #1")
    assert h.lab.ledger.min_off_remaining("r") == 30


async def test_idempotent_when_already_on() -> None:
    h = harness(FakeFeed(state=PowerState.ON))
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    assert h.feeds[0].commands == []


async def test_start_timeout_fault_and_recovery() -> None:
    checker = FakeChecker(answer=False)
    h = harness(checker=checker)
    h.lab.acquire(["r"], "ci")
    await h.step()
    h.clock.advance(121)
    await h.step()
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == "start_timeout"
    assert [e.count for e in h.kinds(EventKind.START_FAILED)] == [1]
    await h.step()  # counted once per start
    assert len(h.kinds(EventKind.START_FAILED)) == 1
    checker.answer = True
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    assert len(h.kinds(EventKind.RECOVERED)) == 1


async def test_unknown_is_never_off_and_never_acted_on() -> None:
    feed = FakeFeed(state=PowerState.ON, unreadable=True)
    h = harness(feed)
    await h.step()
    assert h.state is ResourceState.UNKNOWN
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert feed.commands == []
    assert h.state is ResourceState.UNKNOWN


async def test_graceful_off_then_forced_after_stop_timeout() -> None:
    feed = FakeFeed(state=PowerState.ON, graceful=True, graceful_shuts_down=False)
    h = harness(feed, off_delay=0)
    await h.step()
    assert feed.commands == ["graceful_off"]
    assert h.state is ResourceState.STOPPING
    assert h.actions() == [(PowerAction.GRACEFUL_OFF, "labpower")]
    h.clock.advance(30)
    await h.step()
    assert feed.commands == ["graceful_off"]
    h.clock.advance(61)
    await h.step()
    assert feed.commands == ["graceful_off", "off"]
    assert h.state is ResourceState.OFF
    assert h.actions()[-1][0] is PowerAction.FORCED_OFF


async def test_graceful_off_completes_and_turns_around() -> None:
    feed = FakeFeed(state=PowerState.ON, graceful=True, graceful_shuts_down=False)
    h = harness(feed, off_delay=0, min_off_time=0)
    await h.step()
    assert h.state is ResourceState.STOPPING
    # someone acquires while the machine shuts down: wait for off, then power on
    h.lab.acquire(["r"], "late job")
    await h.step()
    assert h.state is ResourceState.STOPPING
    assert feed.commands == ["graceful_off"]
    feed.state = PowerState.OFF  # the OS finished shutting down
    await h.step()
    assert feed.commands == ["graceful_off", "on"]
    assert h.state is ResourceState.STARTING


async def test_shutdown_that_never_happens_is_taken_as_on_again() -> None:
    feed = FakeFeed(state=PowerState.ON, graceful=True, graceful_shuts_down=False)
    h = harness(feed, off_delay=0)
    await h.step()
    h.lab.acquire(["r"], "late job")
    h.clock.advance(91)
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    assert feed.commands == ["graceful_off"]


async def test_min_off_time_delays_power_on() -> None:
    h = harness(FakeFeed(state=PowerState.ON), off_delay=0)
    await h.step()
    assert h.state is ResourceState.OFF
    h.lab.acquire(["r"], "ci")
    wait = await h.step()
    assert wait == 30
    assert h.state is ResourceState.OFF
    assert h.reconciler.reason == "min_off_time"
    h.clock.advance(wait)
    await h.step()
    assert h.state is ResourceState.STARTING


async def test_toggle_pressed_once_and_never_resent() -> None:
    button = FakeFeed(toggle=True, graceful=True, ignores_commands=True)
    h = harness(button)
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert button.commands == ["on"]
    assert h.state is ResourceState.FAULT
    for _ in range(3):
        h.clock.advance(3600)
        await h.step()
    assert button.commands == ["on"]  # never re-sent
    # the LED finally shows on: the fault clears without another press
    button.state = PowerState.ON
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    assert button.commands == ["on"]


async def test_toggle_never_pressed_on_unknown() -> None:
    button = FakeFeed(toggle=True, unreadable=True)
    h = harness(button)
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert button.commands == []
    assert h.state is ResourceState.UNKNOWN


async def test_toggle_unblocked_by_a_new_intent() -> None:
    button = FakeFeed(toggle=True, ignores_commands=True)
    h = harness(button, off_delay=0)
    token = h.lab.acquire(["r"], "ci")[0]
    await h.step()
    assert h.state is ResourceState.FAULT
    h.lab.release([token.id])
    await h.step()  # desire changed: the block is lifted, the state is off as wanted
    assert h.state is ResourceState.OFF
    button.ignores_commands = False
    h.lab.acquire(["r"], "ci")
    h.clock.advance(60)
    await h.step()
    assert button.commands == ["on", "on"]
    assert button.state is PowerState.ON


async def test_transient_errors_retried_with_backoff() -> None:
    feed = FakeFeed(transient_failures=2)
    h = harness(feed)
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert feed.commands == ["on"]
    assert h.clock.slept[:2] == [1.0, 2.0]
    assert h.state is ResourceState.STARTING


async def test_persistent_errors_fault_then_retry_later() -> None:
    feed = FakeFeed(transient_failures=5)
    h = harness(feed)
    h.lab.acquire(["r"], "ci")
    wait = await h.step()
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == "connection refused"
    assert wait == h.lab.timing.fault_retry
    await h.step()  # held back until fault_retry
    assert feed.transient_failures == 2
    h.clock.advance(wait)
    await h.step()
    assert feed.commands == ["on"]
    assert h.state is ResourceState.STARTING


async def test_configuration_error_fails_fast() -> None:
    feed = FakeFeed(config_error=True)
    h = harness(feed)
    await h.step()
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == "configuration error: wrong password"
    assert [e.cause for e in h.kinds(EventKind.CONFIG_ERROR)] == [
        "switcher_misconfigured"
    ]
    assert h.clock.slept == []


async def test_acknowledged_but_unchanged_is_a_fault() -> None:
    feed = FakeFeed(ignores_commands=True)
    h = harness(feed)
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert feed.commands == ["on", "on", "on"]
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == "feed acknowledged but did not turn on"
    # verification polled with backoff until the verify timeout
    assert sum(h.clock.slept) >= h.lab.timing.verify_timeout


async def test_dual_feeds() -> None:
    psu1, psu2 = FakeFeed(name="psu1"), FakeFeed(name="psu2", state=PowerState.ON)
    h = harness(psu1, psu2, off_delay=0)
    await h.step()  # mixed, nobody wants it: the one that is on goes off
    assert (psu1.commands, psu2.commands) == ([], ["off"])
    assert h.state is ResourceState.OFF
    h.lab.acquire(["r"], "ci")
    h.clock.advance(30)
    await h.step()
    assert (psu1.state, psu2.state) == (PowerState.ON, PowerState.ON)
    assert h.state is ResourceState.STARTING
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    assert h.reconciler.power is PowerState.ON


async def test_power_cycle_and_reset() -> None:
    feed = FakeFeed(state=PowerState.ON, resettable=True)
    h = harness(feed)
    assert h.reconciler.can_cycle
    assert h.reconciler.can_reset
    await h.lab.power_cycle("r", "pressed by admin")
    assert feed.commands == ["off", "on"]
    assert h.clock.slept[-1] == h.lab.timing.cycle_delay
    assert h.actions() == [(PowerAction.CYCLE, "pressed by admin")]
    await h.lab.reset("r", "pressed by admin")
    assert feed.commands == ["off", "on", "reset"]
    assert h.state is ResourceState.STARTING


async def test_step_timeout() -> None:
    class Hanging(FakeFeed):
        async def turn_on(self) -> None:
            await asyncio.Event().wait()

    clock = FakeClock()
    lab = Lab(
        clock=clock,
        listener=lambda event: None,
        sleep=clock.sleep,
        timing=Timing(step_timeout=0.01, attempts=2),
    )
    lab.add(ResourceSpec(name="r", feeds=(Hanging(),)))
    lab.acquire(["r"], "ci")
    await lab.reconciler("r").reconcile_once()
    assert lab.state("r") is ResourceState.FAULT
    assert lab.reconciler("r").reason == "no answer within 0.01 s"


@pytest.mark.parametrize(
    ("state", "available", "expected"),
    [
        (PowerState.OFF, False, ResourceState.OFF),
        (PowerState.ON, True, ResourceState.AVAILABLE),
        (PowerState.ON, False, ResourceState.STARTING),
        (PowerState.UNKNOWN, None, ResourceState.UNKNOWN),
    ],
)
async def test_observe_reads_without_acting(
    state: PowerState, available: bool, expected: ResourceState
) -> None:
    feed = FakeFeed(state=state, unreadable=state is PowerState.UNKNOWN)
    h = harness(feed, checker=FakeChecker(answer=available))
    await h.reconciler.observe()
    assert h.state is expected
    assert feed.commands == []


async def test_observe_configuration_error() -> None:
    h = harness(FakeFeed(config_error=True))
    await h.reconciler.observe()
    assert h.state is ResourceState.UNKNOWN
    assert h.kinds(EventKind.CONFIG_ERROR)


async def test_capabilities_declared() -> None:
    assert SwitcherCapabilities().can_read_state
    h = harness(FakeFeed(toggle=True))
    assert h.reconciler.is_toggle
    assert not h.reconciler.can_reset
