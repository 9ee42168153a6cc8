"""Labs of fake machines on a fake clock.

`Rig` runs a lab of many (dependency and stagger tests); `harness` drives one resource's
reconciler pass by pass (reconciler and guard tests).
"""

from __future__ import annotations

from custom_components.labpower.core.events import EventKind, LabEvent
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    PowerAction,
    PowerState,
    ResourcePolicy,
    ResourceState,
)
from custom_components.labpower.core.stagger import StaggerPolicy

from .fakes import FakeChecker, FakeClock, FakeFeed, FakeScheduler


class Rig:
    """A lab whose machines log every command with the time it was sent."""

    def __init__(self, stagger: StaggerPolicy | None = None) -> None:
        """An empty lab."""
        self.clock = FakeClock()
        self.scheduler = FakeScheduler(self.clock)
        self.events: list[LabEvent] = []
        self.log: list[tuple[float, str, str]] = []
        self.feeds: dict[str, FakeFeed] = {}
        self.checkers: dict[str, FakeChecker] = {}
        self.reasons: list[tuple[str, str | None]] = []
        self.lab = Lab(
            clock=self.clock,
            listener=self._listen,
            sleep=self.clock.sleep,
            scheduler=self.scheduler,
            stagger=stagger,
        )

    def _listen(self, event: LabEvent) -> None:
        self.events.append(event)
        if event.resource is not None and event.kind is EventKind.STATE_CHANGED:
            reason = self.lab.reconciler(event.resource).reason
            if not self.reasons or self.reasons[-1] != (event.resource, reason):
                self.reasons.append((event.resource, reason))

    def spec(
        self,
        name: str,
        *depends_on: str,
        off_delay: float = 60,
        group: str | None = None,
        state: PowerState = PowerState.OFF,
        available: bool | None = True,
    ) -> ResourceSpec:
        """A resource with one fake feed and a fake check."""
        feed = FakeFeed(
            name=name, log=self.log, clock=self.clock, stagger_group=group, state=state
        )
        checker = FakeChecker(answer=available)
        self.feeds[name] = feed
        self.checkers[name] = checker
        return ResourceSpec(
            name=name,
            feeds=(feed,),
            checker=checker,
            policy=ResourcePolicy(
                off_delay=off_delay, min_off_time=5, start_timeout=120, stop_timeout=60
            ),
            depends_on=depends_on,
        )

    async def start(self, specs: list[ResourceSpec]) -> None:
        """Add the resources, start the lab and let it settle."""
        self.lab.add_all(specs)
        await self.lab.start()
        await self.scheduler.settle()

    async def advance(self, seconds: float) -> None:
        """Let time pass."""
        await self.scheduler.advance(seconds)

    def state(self, name: str) -> ResourceState:
        """A resource's state."""
        return self.lab.state(name)

    def reason(self, name: str) -> str | None:
        """Why a resource is in its state."""
        return self.lab.reconciler(name).reason

    def switched(self, command: str = "on") -> list[str]:
        """Names in the order this command was sent to them."""
        return [name for _, name, sent in self.log if sent == command]

    def times(self, name: str, command: str = "on") -> list[float]:
        """When this command was sent to this resource."""
        return [t for t, n, sent in self.log if n == name and sent == command]


def stacks_lab(rig: Rig, stacks: int = 12, pis: int = 4) -> list[ResourceSpec]:
    """Stacks of Pis: each Pi depends on its stack's relay; stacks keep on 120 s."""
    specs = [rig.spec(stack_name(s), off_delay=120) for s in range(stacks)]
    specs += [
        rig.spec(pi_name(s, p), stack_name(s), off_delay=60)
        for s in range(stacks)
        for p in range(pis)
    ]
    return specs


def stack_name(stack: int) -> str:
    """The name of a stack."""
    return f"stack-{stack:02d}"


def pi_name(stack: int, pi: int) -> str:
    """The name of a Pi in a stack."""
    return f"pi-{stack:02d}-{pi}"


POLICY = ResourcePolicy(
    off_delay=60, min_off_time=30, start_timeout=120, stop_timeout=90, default_ttl=600
)


class Harness:
    """A lab of one resource driven pass by pass on a fake clock."""

    clock: FakeClock
    events: list[LabEvent]
    lab: Lab
    feeds: tuple[FakeFeed, ...]

    async def step(self) -> float:
        """One reconcile pass."""
        return await self.reconciler.reconcile_once()

    @property
    def state(self) -> ResourceState:
        """The resource's state."""
        return self.reconciler.state

    def actions(self) -> list[tuple[PowerAction | None, str | None]]:
        """Power actions reported so far."""
        return [
            (e.action, e.cause)
            for e in self.events
            if e.kind is EventKind.POWER_CHANGED
        ]

    def kinds(self, kind: EventKind) -> list[LabEvent]:
        """Events of one kind."""
        return [e for e in self.events if e.kind is kind]


def _policy(**overrides: float) -> ResourcePolicy:
    values = {
        "off_delay": POLICY.off_delay,
        "min_off_time": POLICY.min_off_time,
        "start_timeout": POLICY.start_timeout,
        "stop_timeout": POLICY.stop_timeout,
        "default_ttl": POLICY.default_ttl,
        "max_ttl": POLICY.max_ttl,
        "graceful_off": POLICY.graceful_off,
    }
    values.update(overrides)
    return ResourcePolicy(**values)  # type: ignore[arg-type]


def harness(
    *feeds: FakeFeed, checker: FakeChecker | None = None, **policy: float
) -> Harness:
    """A harness with the policy above, changed by `policy`."""
    h = Harness.__new__(Harness)
    h.clock = FakeClock()
    h.events = []
    h.lab = Lab(clock=h.clock, listener=h.events.append, sleep=h.clock.sleep)
    h.feeds = feeds or (FakeFeed(),)
    h.lab.add(
        ResourceSpec(name="r", feeds=h.feeds, checker=checker, policy=_policy(**policy))
    )
    h.reconciler = h.lab.reconciler("r")
    return h
