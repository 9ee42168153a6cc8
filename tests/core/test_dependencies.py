"""Dependencies: parents come up first and go down last; cycles are refused."""

from __future__ import annotations

import itertools

import pytest

from custom_components.labpower.core.events import EventKind
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    DependencyCycleError,
    LabError,
    PowerState,
    ResourceFaultError,
    ResourceState,
    TokenKind,
    UnknownDependencyError,
)

from .fakes import FakeClock, FakeFeed
from .labrig import Rig, pi_name, stack_name, stacks_lab

FAST = 2.0  # Timing().fast_poll


async def test_one_pi_powers_its_stack_first() -> None:
    rig = Rig()
    await rig.start(stacks_lab(rig))
    assert rig.log == []
    rig.checkers["stack-03"].answer = False  # the relay is on, the stack not up yet
    t0 = rig.clock.now
    rig.lab.acquire([pi_name(3, 1)], "ci")
    await rig.scheduler.settle()
    assert rig.log == [(t0, "stack-03", "on")]
    assert rig.state("stack-03") is ResourceState.STARTING
    assert rig.state("pi-03-1") is ResourceState.OFF
    assert rig.reason("pi-03-1") == "waiting for stack-03"
    assert rig.lab.desired_on("stack-03")
    assert rig.lab.child_demand("stack-03") == 1
    # Polls of the starting stack do not let the Pi go.
    await rig.advance(10)
    assert rig.switched() == ["stack-03"]
    assert rig.reason("pi-03-1") == "waiting for stack-03"
    rig.checkers["stack-03"].answer = True
    await rig.advance(FAST)
    assert rig.state("stack-03") is ResourceState.AVAILABLE
    # The stack's becoming available runs the Pi's pass at once.
    assert rig.switched() == ["stack-03", "pi-03-1"]
    assert rig.times("pi-03-1") == [rig.clock.now]
    assert rig.reason("pi-03-1") is None
    await rig.advance(FAST)
    assert rig.state("pi-03-1") is ResourceState.AVAILABLE
    # Nothing else was touched.
    assert {name for _, name, _ in rig.log} == {"stack-03", "pi-03-1"}
    assert ("pi-03-1", "waiting for stack-03") in rig.reasons


async def test_last_pi_released_then_stack_after_its_own_off_delay() -> None:
    rig = Rig()
    await rig.start(stacks_lab(rig))
    tokens = rig.lab.acquire([pi_name(5, 0), pi_name(5, 1)], "ci")
    await rig.advance(10)
    assert rig.state("pi-05-0") is ResourceState.AVAILABLE
    assert rig.lab.child_demand("stack-05") == 2
    rig.lab.release([tokens[0].id])
    await rig.advance(61)
    assert rig.switched("off") == ["pi-05-0"]
    assert rig.lab.child_demand("stack-05") == 1
    released = rig.clock.now
    rig.lab.release([tokens[1].id])
    await rig.advance(59)
    assert rig.switched("off") == ["pi-05-0"]  # the Pi's own off delay runs
    await rig.advance(1)
    assert rig.switched("off") == ["pi-05-0", "pi-05-1"]
    pi_off = rig.times("pi-05-1", "off")[0]
    assert pi_off == released + 60
    assert rig.lab.child_demand("stack-05") == 0
    assert rig.lab.desired_on("stack-05")  # its own off delay now runs
    await rig.advance(119)
    assert rig.state("stack-05") is ResourceState.AVAILABLE
    await rig.advance(1)
    assert rig.times("stack-05", "off") == [pi_off + 120]
    assert rig.state("stack-05") is ResourceState.OFF


async def test_depth_three_holds_every_ancestor() -> None:
    rig = Rig()
    await rig.start(
        [
            rig.spec("pi", "stack", off_delay=0),
            rig.spec("stack", "switch", off_delay=30),
            rig.spec("switch", off_delay=100),
        ]
    )
    token = rig.lab.acquire(["pi"], "ci", kind=TokenKind.HOLD)[0]
    assert rig.lab.desired_on("stack")
    assert rig.lab.desired_on("switch")
    assert rig.lab.ancestors("pi") == ["stack", "switch"]
    assert rig.lab.parents("stack") == ("switch",)
    assert rig.lab.children("switch") == ["stack"]
    await rig.advance(20)
    assert rig.switched() == ["switch", "stack", "pi"]
    assert rig.state("pi") is ResourceState.AVAILABLE
    # The stack has no token; its parent switch has none either: both stay.
    assert rig.lab.ledger.holder_count("stack") == 0
    await rig.advance(3600)
    assert rig.switched("off") == []
    rig.lab.release([token.id])
    await rig.scheduler.settle()
    assert rig.switched("off") == ["pi"]
    await rig.advance(29)
    assert rig.switched("off") == ["pi"]
    await rig.advance(1)
    assert rig.switched("off") == ["pi", "stack"]
    await rig.advance(99)
    assert rig.switched("off") == ["pi", "stack"]
    await rig.advance(1)
    assert rig.switched("off") == ["pi", "stack", "switch"]


async def test_acquire_while_parent_runs_its_off_delay() -> None:
    rig = Rig()
    await rig.start([rig.spec("pi", "stack", off_delay=0), rig.spec("stack")])
    token = rig.lab.acquire(["pi"], "ci")[0]
    await rig.advance(10)
    rig.lab.release([token.id])
    await rig.advance(30)
    assert rig.switched("off") == ["pi"]
    assert rig.lab.ledger.off_deadline("stack") is not None
    rig.lab.acquire(["pi"], "ci")
    assert rig.lab.ledger.off_deadline("stack") is None  # demand ends the off delay
    await rig.advance(60)
    assert rig.switched("off") == ["pi"]
    assert rig.switched() == ["stack", "pi", "pi"]


async def test_child_left_on_keeps_its_parent_until_it_is_off() -> None:
    rig = Rig()
    specs = [
        rig.spec("pi", "stack", state=PowerState.ON),
        rig.spec("stack", state=PowerState.ON, off_delay=30),
        rig.spec("lone", state=PowerState.ON),
    ]
    graceful = FakeFeed(
        name="pi", graceful=True, graceful_shuts_down=False, state=PowerState.ON
    )
    specs[0] = ResourceSpec(
        name="pi", feeds=(graceful,), policy=specs[0].policy, depends_on=("stack",)
    )
    await rig.start(specs)
    # Nobody wants any of them: the Pi shuts down, the stack waits for it.
    assert graceful.commands == ["graceful_off"]
    assert rig.state("pi") is ResourceState.STOPPING
    assert rig.switched("off") == ["lone"]  # no off delay started by the start itself
    assert rig.lab.child_demand("stack") == 0  # nobody wants the Pi
    assert rig.state("stack") is ResourceState.STOPPING
    assert rig.lab.reconciler("stack").reason == "waiting for pi to go off"
    await rig.advance(59)
    assert rig.switched("off") == ["lone"]
    await rig.advance(2)  # the Pi's stop_timeout: forced off, then the stack
    assert graceful.commands == ["graceful_off", "off"]
    await rig.advance(1)
    assert rig.switched("off") == ["lone", "stack"]


async def test_unknown_child_keeps_its_parent() -> None:
    rig = Rig()
    pi = rig.spec("pi", "stack")
    rig.feeds["pi"].unreadable = True
    await rig.start([pi, rig.spec("stack", state=PowerState.ON, off_delay=0)])
    await rig.advance(100)
    assert rig.switched("off") == []  # unknown is never off
    rig.feeds["pi"].unreadable = False
    await rig.advance(30)
    assert rig.switched("off") == ["stack"]


async def test_cycle_refused_naming_it() -> None:
    lab = Lab(clock=FakeClock(), listener=lambda event: None)
    feed = FakeFeed()
    with pytest.raises(DependencyCycleError) as err:
        lab.add_all(
            [
                ResourceSpec(name="a", feeds=(feed,), depends_on=("b",)),
                ResourceSpec(name="b", feeds=(feed,), depends_on=("c",)),
                ResourceSpec(name="c", feeds=(feed,), depends_on=("a",)),
                ResourceSpec(name="d", feeds=(feed,), depends_on=("a",)),
            ]
        )
    cycle = err.value.cycle
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    after = {"a": "b", "b": "c", "c": "a"}
    assert all(after[x] == y for x, y in itertools.pairwise(cycle))
    assert err.value.key == "dependency_cycle"
    assert err.value.placeholders == {"cycle": " -> ".join(cycle)}
    assert str(err.value) == f"Dependency cycle: {' -> '.join(cycle)}"
    assert lab.names == []  # nothing added
    with pytest.raises(DependencyCycleError) as err:
        lab.add(ResourceSpec(name="self", feeds=(feed,), depends_on=("self",)))
    assert err.value.placeholders == {"cycle": "self -> self"}
    # Replacing a definition can close a cycle too; the old definition stays.
    lab.add(ResourceSpec(name="a", feeds=(feed,)))
    lab.add(ResourceSpec(name="b", feeds=(feed,), depends_on=("a",)))
    with pytest.raises(DependencyCycleError) as err:
        lab.add(ResourceSpec(name="a", feeds=(feed,), depends_on=("b",)))
    assert err.value.placeholders == {"cycle": "a -> b -> a"}
    assert lab.parents("a") == ()


async def test_unknown_dependency() -> None:
    lab = Lab(clock=FakeClock(), listener=lambda event: None)
    feed = FakeFeed()
    pi = ResourceSpec(name="pi", feeds=(feed,), depends_on=("stack",))
    with pytest.raises(UnknownDependencyError) as err:
        lab.add(pi)
    assert isinstance(err.value, LabError)
    assert err.value.key == "unknown_dependency"
    assert err.value.placeholders == {"resource": "pi", "dependency": "stack"}
    assert lab.names == []
    # In one add_all a parent may come after its child.
    lab.add_all([pi, ResourceSpec(name="stack", feeds=(feed,))])
    assert lab.parents("pi") == ("stack",)
    assert lab.children("stack") == ["pi"]


async def test_redefinition_moves_the_demand() -> None:
    rig = Rig()
    await rig.start(
        [rig.spec("pi", "old"), rig.spec("old", off_delay=0), rig.spec("new")]
    )
    rig.lab.acquire(["pi"], "ci", kind=TokenKind.HOLD)
    await rig.advance(10)
    assert rig.switched() == ["old", "pi"]
    rig.lab.add(rig.spec("pi", "new"))
    rig.feeds["pi"].state = PowerState.ON  # the same machine, still on
    await rig.advance(10)
    assert rig.lab.child_demand("old") == 0
    assert rig.lab.child_demand("new") == 1
    assert rig.switched("off") == ["old"]
    assert rig.switched() == ["old", "pi", "new"]
    assert rig.lab.desired_on("new")


async def test_force_off_a_parent_takes_its_children_down_first() -> None:
    rig = Rig()
    await rig.start(
        [rig.spec(pi_name(0, p), stack_name(0), off_delay=600) for p in range(2)]
        + [rig.spec(stack_name(0), off_delay=600), rig.spec("other")]
    )
    tokens = rig.lab.acquire([pi_name(0, 0), pi_name(0, 1), "other"], "ci")
    stack_hold = rig.lab.acquire([stack_name(0)], "alice", kind=TokenKind.HOLD)
    await rig.advance(10)
    revoked = rig.lab.force_off(stack_name(0), "admin")
    assert {t.id for t in revoked} == {
        tokens[0].id,
        tokens[1].id,
        stack_hold[0].id,
    }
    revoked_events = [e for e in rig.events if e.kind is EventKind.TOKEN_REVOKED]
    assert {e.resource for e in revoked_events} == {"stack-00", "pi-00-0", "pi-00-1"}
    await rig.scheduler.settle()
    # No off delay anywhere, and the Pis go before the stack.
    assert rig.switched("off") == ["pi-00-0", "pi-00-1", "stack-00"]
    assert rig.lab.ledger.holder_count("other") == 1


async def test_waiting_fails_when_a_parent_is_in_fault() -> None:
    rig = Rig()
    await rig.start([rig.spec("pi", "stack"), rig.spec("stack")])
    rig.feeds["stack"].ignores_commands = True
    tokens = rig.lab.acquire(["pi"], "ci")
    with pytest.raises(ResourceFaultError) as err:
        await rig.lab.wait_available(tokens, timeout=5)
    assert err.value.placeholders["resource"] == "stack"
    assert rig.reason("pi") == "waiting for stack"


async def test_shared_parent_counts_each_child_once() -> None:
    rig = Rig()
    await rig.start(
        [
            rig.spec("a", "switch", off_delay=0),
            rig.spec("b", "switch", off_delay=0),
            rig.spec("c", "a", "b", off_delay=0),
            rig.spec("switch", off_delay=0),
        ]
    )
    first = rig.lab.acquire(["c"], "one")[0]
    second = rig.lab.acquire(["c"], "two")[0]
    await rig.advance(10)
    assert rig.switched() == ["switch", "a", "b", "c"]
    assert rig.lab.child_demand("switch") == 2
    assert rig.lab.child_demand("a") == 1
    rig.lab.release([first.id])
    await rig.advance(10)
    assert rig.switched("off") == []
    rig.lab.release([second.id])
    await rig.advance(10)
    assert rig.switched("off")[0] == "c"
    assert rig.switched("off")[-1] == "switch"
    assert sorted(rig.switched("off")) == ["a", "b", "c", "switch"]
    assert rig.lab.child_demand("switch") == 0


async def test_restart_during_a_parents_off_delay_keeps_it() -> None:
    rig = Rig()
    await rig.start([rig.spec("pi", "stack", off_delay=0), rig.spec("stack")])
    token = rig.lab.acquire(["pi"], "ci")[0]
    await rig.advance(10)
    persisted = sum(e.kind is EventKind.PERSIST for e in rig.events)
    rig.lab.release([token.id])
    await rig.scheduler.settle()
    assert rig.switched("off") == ["pi"]
    deadline = rig.clock.now + 60
    assert sum(e.kind is EventKind.PERSIST for e in rig.events) > persisted + 1
    stored = rig.lab.ledger.to_dict()
    assert stored["off_at"]["stack"] == deadline
    await rig.lab.stop()
    # A new lab on the same machines: the stack stays on until its deadline.
    again = Rig()
    again.clock.now = rig.clock.now + 20
    specs = [
        again.spec("pi", "stack", off_delay=0),
        again.spec("stack", state=PowerState.ON),
    ]
    again.lab.add_all(specs)
    again.lab.load(stored)
    await again.lab.start()
    await again.scheduler.settle()
    assert again.switched("off") == []
    await again.advance(39)
    assert again.switched("off") == []
    await again.advance(1)
    assert again.switched("off") == ["stack"]
    assert again.times("stack", "off") == [deadline]


async def test_steady_polls_share_one_timer_per_tick() -> None:
    """Idle resources poll on shared ticks: one timer serves them all, each still polls."""
    rig = Rig()
    names = [f"host-{n}" for n in range(50)]
    await rig.start([rig.spec(name) for name in names])
    slow = rig.lab.timing.slow_poll

    def timers() -> int:
        return len([timer for timer in rig.scheduler._timers if timer[2]])

    assert timers() == 1  # one tick for the 50, not 50 timers
    # One leaves the tick (a token: its pass plans on its own), the others stay on it.
    rig.lab.acquire(["host-7"], "ci")
    await rig.scheduler.settle()
    assert rig.state("host-7") is not ResourceState.OFF
    # Something else powers the others on: each one's next poll reads it ...
    for name in names:
        if name != "host-7":
            rig.feeds[name].state = PowerState.ON
    await rig.advance(slow)
    # ... and, as nobody holds them, switches each back off once.
    others = [name for name in names if name != "host-7"]
    assert all(rig.feeds[name].commands == ["off"] for name in others)
    await rig.lab.stop()
    assert rig.lab._ticks == rig.lab._tick_timers == {}  # gone with their resources
