"""Never fight another actor; at most a few power changes per window; halts and resuming."""

from __future__ import annotations

import pytest

from custom_components.labpower.core.events import EventKind
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    PowerAction,
    PowerState,
    ResourceHaltedError,
    ResourcePolicy,
    ResourceState,
    TokenKind,
)

from .fakes import FakeFeed
from .labrig import Rig, harness

FOREIGN = "switched by something else: feed"
CORRECTING = "correcting feed, switched by something else"


async def test_a_foreign_change_is_corrected_once_then_labpower_stops() -> None:
    h = harness(off_delay=0)
    feed = h.feeds[0]
    h.lab.acquire(["r"], "jenkins #1", kind=TokenKind.HOLD)
    await h.step()
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    feed.state = PowerState.OFF  # an automation switches the relay off
    await h.step()
    # min_off_time keeps applying to the correction
    assert h.state is ResourceState.OFF
    assert h.reconciler.reason == "min_off_time"
    h.clock.advance(30)
    await h.step()
    assert feed.commands == ["on", "on"]
    assert h.actions()[-1] == (PowerAction.ON, CORRECTING)
    await h.step()
    assert h.state is ResourceState.AVAILABLE
    h.clock.advance(120)
    feed.state = PowerState.OFF  # again, within ten minutes
    await h.step()
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == FOREIGN
    assert [e.detail for e in h.kinds(EventKind.HALTED)] == [FOREIGN]
    # whatever happens now, labpower does nothing: it does not fight
    for state in (PowerState.ON, PowerState.OFF, PowerState.ON, PowerState.OFF):
        feed.state = state
        h.clock.advance(3600)
        await h.step()
        assert h.reconciler.reason == FOREIGN
    assert feed.commands == ["on", "on"]
    assert len(h.kinds(EventKind.HALTED)) == 1
    assert h.lab.ledger.holder_count("r") == 1  # the hold is kept
    assert h.lab.halts() == {"r": FOREIGN}
    # a person acknowledges: labpower switches it again, once
    assert h.lab.resume("r", "acknowledged in Repairs")
    assert not h.lab.resume("r", "twice")
    assert [e.cause for e in h.kinds(EventKind.RESUMED)] == ["acknowledged in Repairs"]
    assert h.lab.halts() == {}
    await h.step()
    assert h.reconciler.reason == "min_off_time"  # it was just seen going off
    h.clock.advance(30)
    await h.step()
    assert feed.commands == ["on", "on", "on"]
    assert h.actions()[-1] == (PowerAction.ON, "acquired by jenkins #1")


async def test_a_switch_undone_at_once_is_not_resent_as_if_lost() -> None:
    """An automation that undoes labpower's switch before the command returns."""
    feed = FakeFeed(name="feed", undone=True)
    h = harness(feed)
    h.lab.acquire(["r"], "ci", kind=TokenKind.HOLD)
    assert await h.step() == 0  # look again at once
    assert feed.commands == ["on"]  # not sent three times as a lost command would be
    await h.step()
    assert h.reconciler.reason == "min_off_time"  # it had power, however briefly
    h.clock.advance(30)
    assert await h.step() == h.lab.timing.slow_poll
    assert feed.commands == ["on", "on"]  # the one correction
    assert h.lab.halts() == {"r": FOREIGN}
    h.clock.advance(3600)
    await h.step()
    assert feed.commands == ["on", "on"]


async def test_a_switch_off_undone_at_once_halts_the_second_time() -> None:
    feed = FakeFeed(name="feed", state=PowerState.ON, undone=True)
    h = harness(feed)
    await h.step()  # not wanted: off, at once on again
    await h.step()  # the correction, undone too
    assert feed.commands == ["off", "off"]
    assert h.reconciler.halted == FOREIGN
    assert feed.state is PowerState.ON  # left as the other actor wants it


async def test_a_foreign_change_after_the_window_is_corrected_again() -> None:
    h = harness(min_off_time=0)
    feed = h.feeds[0]
    h.lab.acquire(["r"], "ci", kind=TokenKind.HOLD)
    await h.step()
    for _ in range(3):
        h.clock.advance(h.lab.timing.guard_window)
        feed.state = PowerState.OFF
        await h.step()
        assert h.state is ResourceState.STARTING
    assert feed.commands == ["on"] * 4
    assert h.lab.halts() == {}


async def test_an_unwanted_resource_switched_on_is_switched_off_once() -> None:
    h = harness(FakeFeed(name="feed"))
    feed = h.feeds[0]
    await h.step()
    feed.state = PowerState.ON  # someone at the plug
    await h.step()
    assert feed.commands == ["off"]
    assert h.actions() == [(PowerAction.OFF, CORRECTING)]
    feed.state = PowerState.ON  # the plug's own schedule, say
    await h.step()
    assert feed.commands == ["off"]
    assert h.state is ResourceState.FAULT
    assert h.reconciler.reason == FOREIGN


async def test_changes_towards_what_is_wanted_are_not_foreign() -> None:
    h = harness(FakeFeed(state=PowerState.ON), off_delay=0, min_off_time=0)
    feed = h.feeds[0]
    token = h.lab.acquire(["r"], "ci")[0]
    await h.step()
    h.lab.release([token.id])
    feed.state = PowerState.OFF  # switched off by hand, as labpower was about to
    await h.step()
    assert feed.commands == []
    h.lab.acquire(["r"], "ci")
    feed.state = PowerState.ON  # switched on by hand, as labpower was about to
    await h.step()
    assert feed.commands == []
    # these were no foreign changes: the next one is corrected, not a reason to stop
    feed.state = PowerState.OFF
    await h.step()
    assert feed.commands == ["on"]
    assert h.lab.halts() == {}


async def test_a_shutdown_labpower_asked_for_is_its_own_change() -> None:
    feed = FakeFeed(state=PowerState.ON, graceful=True, graceful_shuts_down=False)
    h = harness(feed, off_delay=0, min_off_time=0)
    await h.step()
    h.lab.acquire(["r"], "late job")
    await h.step()
    feed.state = PowerState.OFF  # the OS finished shutting down, as asked
    await h.step()
    assert feed.commands == ["graceful_off", "on"]
    assert h.actions()[-1] == (PowerAction.ON, "acquired by late job")
    # a crash a minute later is the first foreign change: corrected
    h.clock.advance(60)
    feed.state = PowerState.OFF
    await h.step()
    assert feed.commands == ["graceful_off", "on", "on"]
    assert h.actions()[-1] == (PowerAction.ON, CORRECTING)
    assert h.lab.halts() == {}


async def test_a_feed_that_cannot_read_power_sees_no_foreign_change() -> None:
    """Wake-on-LAN's state is its host's reachability: a host that drops off is no actor."""
    h = harness(FakeFeed(name="wol", reads_power=False), min_off_time=0)
    feed = h.feeds[0]
    h.lab.acquire(["r"], "ci", kind=TokenKind.HOLD)
    await h.step()
    for _ in range(3):
        feed.state = PowerState.OFF
        await h.step()
    assert feed.commands == ["on"] * 4
    assert h.lab.halts() == {}


async def test_power_changes_beyond_the_limit_stop_it() -> None:
    h = harness(off_delay=0, min_off_time=0, max_transitions=4)
    feed = h.feeds[0]
    for _ in range(2):
        token = h.lab.acquire(["r"], "ci")[0]
        await h.step()
        h.lab.release([token.id])
        await h.step()
    assert feed.commands == ["on", "off", "on", "off"]
    h.lab.acquire(["r"], "ci")
    await h.step()
    assert feed.commands == ["on", "off", "on", "off"]
    assert h.state is ResourceState.FAULT
    reason = (
        "more than 4 power changes within 10 minutes: stopped to protect the hardware"
    )
    assert h.reconciler.reason == reason
    assert [e.detail for e in h.kinds(EventKind.HALTED)] == [reason]
    h.clock.advance(3600)  # the window has passed, but a person must look first
    await h.step()
    assert feed.commands == ["on", "off", "on", "off"]
    h.lab.resume("r", "acknowledged")
    await h.step()
    assert feed.commands == ["on", "off", "on", "off", "on"]


async def test_old_power_changes_leave_the_window() -> None:
    h = harness(off_delay=0, min_off_time=0, max_transitions=2)
    for _ in range(3):
        token = h.lab.acquire(["r"], "ci")[0]
        await h.step()
        h.lab.release([token.id])
        await h.step()
        h.clock.advance(h.lab.timing.guard_window)
    assert h.feeds[0].commands == ["on", "off"] * 3
    assert h.lab.halts() == {}


async def test_a_power_cycle_counts_twice_and_is_refused_while_stopped() -> None:
    feed = FakeFeed(resettable=True)
    h = harness(feed, max_transitions=3)
    h.lab.acquire(["r"], "ci")
    await h.step()
    await h.lab.power_cycle("r", "admin")
    assert feed.commands == ["on", "off", "on"]
    with pytest.raises(ResourceHaltedError) as caught:
        await h.lab.power_cycle("r", "admin")
    assert caught.value.placeholders["resource"] == "r"
    assert feed.commands == ["on", "off", "on"]
    assert h.state is ResourceState.FAULT
    with pytest.raises(ResourceHaltedError):
        await h.lab.reset("r", "admin")
    assert feed.commands == ["on", "off", "on"]


async def test_a_halt_survives_a_restart() -> None:
    h = harness()
    feed = h.feeds[0]
    await h.step()
    for _ in range(2):
        feed.state = PowerState.ON
        await h.step()
    assert h.lab.halts() == {"r": FOREIGN}
    data = h.lab.ledger.to_dict()
    lab = Lab(clock=h.clock, listener=h.events.append, sleep=h.clock.sleep)
    lab.add(h.lab.spec("r"))
    lab.load(data)
    await lab.reconciler("r").observe()
    assert lab.state("r") is ResourceState.FAULT
    assert lab.reconciler("r").reason == FOREIGN
    await lab.reconciler("r").reconcile_once()
    assert feed.commands == ["off"]
    # a definition replaced (a reload of the lab file) keeps it too
    lab.add(lab.spec("r"))
    assert lab.reconciler("r").halted == FOREIGN


async def test_force_off_is_an_administrator_deciding() -> None:
    h = harness(off_delay=0)
    feed = h.feeds[0]
    await h.step()
    for _ in range(2):
        feed.state = PowerState.ON
        await h.step()
    assert h.reconciler.halted == FOREIGN
    h.lab.force_off("r", "forced off by admin")
    assert h.lab.halts() == {}
    assert [e.cause for e in h.kinds(EventKind.RESUMED)] == ["forced off by admin"]
    await h.step()
    assert feed.commands == ["off", "off"]
    assert h.state is ResourceState.OFF


async def test_two_resources_on_one_relay_cycle_the_held_one_once_at_most() -> None:
    """The report: a second resource on builder-1's relay switched it off every 5 s.

    The config flows refuse this now; should it happen anyway (a relay behind two
    entities), neither resource fights the other for long: builder-1 is cycled once.
    """
    rig = Rig()
    relay = FakeFeed(name="relay", log=rig.log, clock=rig.clock)
    policy = ResourcePolicy(off_delay=30, min_off_time=5, start_timeout=90)
    await rig.start(
        [
            ResourceSpec(name="builder-1", feeds=(relay,), policy=policy),
            ResourceSpec(name="second", feeds=(relay,), policy=policy),
        ]
    )
    rig.lab.acquire(["builder-1"], "me", kind=TokenKind.HOLD)
    await rig.advance(45 * 60)
    assert [command for _, _, command in rig.log] == ["on", "off", "on"]
    assert relay.state is PowerState.ON
    assert rig.state("builder-1") is ResourceState.AVAILABLE
    assert rig.state("second") is ResourceState.FAULT
    assert rig.reason("second") == "switched by something else: relay"
    assert rig.lab.halts() == {"second": "switched by something else: relay"}
