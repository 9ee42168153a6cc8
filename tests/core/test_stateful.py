"""Property-based stateful test of the ledger and reconcilers against a simple model.

Random interleavings of acquire / release / renew / clock advance / switch failure / restart,
a foreign actor switching the machines, an administrator's force_off and a person
acknowledging a halt. Invariants: a resource with a live token is switched off only by
force_off (which revokes the tokens first), and power-cycled at most once per foreign
change (labpower's power-ons within one hold are at most one plus the foreign changes);
nothing is switched while labpower has stopped switching a resource, nor more often than
its limit per window since it was last acknowledged, nor on within min_off_time; holder
counts match the model and are never negative; no toggle is pressed on an unknown state;
every token is eventually released or expired. Dependencies: plug and button depend on
stack; a child is switched on only while its parent is available, a parent is switched off
only while every child is known off, and after convergence a powered child has a powered
parent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from custom_components.labpower.core.events import EventKind, LabEvent
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    InvalidTtlError,
    PowerAction,
    PowerState,
    ResourcePolicy,
    ResourceState,
    TokenKind,
    UnknownTokenError,
)

from .fakes import FakeClock, FakeFeed

RESOURCES = ("plug", "button", "stack")
DEPENDS_ON = {"plug": ("stack",), "button": ("stack",)}
POLICY = ResourcePolicy(
    off_delay=30,
    min_off_time=10,
    start_timeout=60,
    stop_timeout=20,
    default_ttl=100,
    max_ttl=500,
    max_transitions=3,
)


@dataclass
class ModelToken:
    """What the model knows of a token."""

    resource: str
    kind: TokenKind
    expires: float | None


# How many power changes each reported action is (the forced off ends a shutdown).
WEIGHT = {PowerAction.FORCED_OFF: 0, PowerAction.CYCLE: 2, PowerAction.RESET: 0}


class GuardedFeed(FakeFeed):
    """A feed that records every violation of the safety rules it witnesses."""

    lab: Lab | None = None
    resource: str = ""
    violations: list[str] | None = None
    held_ons: dict[str, int] | None = None  # power-ons while held, per resource

    def _check_not_halted(self) -> None:
        assert self.lab is not None
        assert self.violations is not None
        if self.lab.reconciler(self.resource).halted is not None:
            self.violations.append(f"{self.resource} switched while halted")

    async def turn_off(self, *, graceful: bool) -> None:
        """Power off only while nobody holds the resource and its children are off."""
        assert self.lab is not None
        assert self.violations is not None
        self._check_not_halted()
        if self.lab.ledger.holder_count(self.resource):
            self.violations.append(f"{self.resource} switched off with live tokens")
        for child in self.lab.children(self.resource):
            if self.lab.reconciler(child).power is not PowerState.OFF:
                self.violations.append(f"{self.resource} switched off before {child}")
        await super().turn_off(graceful=graceful)

    async def turn_on(self) -> None:
        """No press on an unknown state; power on only once the parents are available."""
        assert self.lab is not None
        assert self.violations is not None
        assert self.held_ons is not None
        self._check_not_halted()
        if self.toggle and self.unreadable:
            self.violations.append(f"{self.resource} pressed on an unknown state")
        for parent in self.lab.parents(self.resource):
            if self.lab.state(parent) is not ResourceState.AVAILABLE:
                self.violations.append(f"{self.resource} switched on before {parent}")
        if self.lab.ledger.min_off_remaining(self.resource) > 0:
            self.violations.append(f"{self.resource} switched on within min_off_time")
        await super().turn_on()
        if self.lab.ledger.holder_count(self.resource):
            self.held_ons[self.resource] += 1


class LabMachine(RuleBasedStateMachine):
    """The lab against the model."""

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        """A lab with a plug-switched and a button-switched resource."""
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.violations: list[str] = []
        # Per resource, in the current hold (live tokens all along): labpower's power-ons
        # and the foreign changes; and labpower's power changes since acknowledged.
        self.held: dict[str, bool] = dict.fromkeys(RESOURCES, False)
        self.held_ons: dict[str, int] = dict.fromkeys(RESOURCES, 0)
        self.foreign: dict[str, int] = dict.fromkeys(RESOURCES, 0)
        self.changes: dict[str, list[float]] = {name: [] for name in RESOURCES}
        self.feeds = {
            "plug": GuardedFeed(name="plug"),
            "button": GuardedFeed(name="button", toggle=True, graceful=True),
            "stack": GuardedFeed(name="stack"),
        }
        for name, feed in self.feeds.items():
            feed.resource = name
            feed.violations = self.violations
            feed.held_ons = self.held_ons
        self.model: dict[str, ModelToken] = {}
        self.gone: set[str] = set()
        self.lab = self._new_lab()

    def _new_lab(self) -> Lab:
        # The count of power changes starts afresh with the process (it is not stored).
        for changes in self.changes.values():
            changes.clear()
        lab = Lab(clock=self.clock, listener=self._listen, sleep=self.clock.sleep)
        for feed in self.feeds.values():
            feed.lab = lab
        lab.add_all(
            ResourceSpec(
                name=name,
                feeds=(feed,),
                policy=POLICY,
                depends_on=DEPENDS_ON.get(name, ()),
            )
            for name, feed in self.feeds.items()
        )
        return lab

    def _listen(self, event: LabEvent) -> None:
        name = event.resource
        if event.kind is EventKind.HOLDERS_CHANGED and name is not None:
            held = self.lab.ledger.holder_count(name) > 0
            if held != self.held[name]:  # a hold begins or ends
                self.held[name] = held
                self.held_ons[name] = self.foreign[name] = 0
        elif event.kind is EventKind.POWER_CHANGED and name is not None:
            assert event.action is not None
            weight = WEIGHT.get(event.action, 1)
            self.changes[name].extend([self.clock.now] * weight)
        elif event.kind is EventKind.RESUMED and name is not None:
            self.changes[name].clear()

    def run(self, coro: object) -> None:
        """Run a coroutine on the machine's loop."""
        self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    @rule(
        target=tokens,
        resource=st.sampled_from(RESOURCES),
        hold=st.booleans(),
        ttl=st.one_of(st.none(), st.integers(min_value=-5, max_value=600)),
    )
    def acquire(self, resource: str, hold: bool, ttl: int | None) -> str:
        """Take a token (an invalid ttl is refused and changes nothing)."""
        kind = TokenKind.HOLD if hold else TokenKind.LEASE
        try:
            token = self.lab.acquire([resource], "holder", kind=kind, ttl=ttl)[0]
        except InvalidTtlError:
            assert not hold
            assert ttl is not None
            assert not 0 < ttl <= POLICY.max_ttl
            return "invalid"
        self.model[token.id] = ModelToken(resource, kind, token.expires)
        return token.id

    @rule(token=consumes(tokens))
    def release(self, token: str) -> None:
        """Release; twice is fine, unknown is refused."""
        if token == "invalid":
            return
        self.lab.release([token])
        self.model.pop(token, None)
        self.gone.add(token)

    @rule(token=tokens, ttl=st.integers(min_value=1, max_value=500))
    def renew(self, token: str, ttl: int) -> None:
        """Renew a live lease; a gone one is unknown."""
        try:
            renewed = self.lab.renew(token, ttl)
        except UnknownTokenError:
            assert token not in self.model
            return
        model = self.model[token]
        if model.kind is TokenKind.LEASE:
            model.expires = renewed.expires

    @rule(seconds=st.floats(min_value=0, max_value=200))
    def advance(self, seconds: float) -> None:
        """Time passes; leases whose time is up expire."""
        self.clock.advance(seconds)
        self._expire()

    def _expire(self) -> None:
        self.lab._expire()
        for token_id, token in list(self.model.items()):
            if token.expires is not None and token.expires <= self.clock.now:
                del self.model[token_id]
                self.gone.add(token_id)

    @rule(resource=st.sampled_from(RESOURCES))
    def reconcile(self, resource: str) -> None:
        """One reconciler pass."""
        self.run(self.lab.reconciler(resource).reconcile_once())

    @rule(
        resource=st.sampled_from(RESOURCES),
        failures=st.integers(min_value=1, max_value=4),
    )
    def switch_fails(self, resource: str, failures: int) -> None:
        """The next commands to a feed fail."""
        self.feeds[resource].transient_failures = failures

    @rule(resource=st.sampled_from(RESOURCES), unreadable=st.booleans())
    def state_readable(self, resource: str, unreadable: bool) -> None:
        """A feed's state becomes unknown (a plug offline) or readable again."""
        self.feeds[resource].unreadable = unreadable

    @rule(resource=st.sampled_from(RESOURCES))
    def foreign_actor(self, resource: str) -> None:
        """Something else switches the machine: a person, an automation, a crash."""
        feed = self.feeds[resource]
        feed.state = PowerState.OFF if feed.state is PowerState.ON else PowerState.ON
        self.foreign[resource] += 1
        # Home Assistant pushes the entity's change: the resource's pass runs at once.
        self.run(self.lab.reconciler(resource).reconcile_once())

    @rule(resource=st.sampled_from(RESOURCES))
    def short_job(self, resource: str) -> None:
        """A CI job: a lease, the machine powered, the lease released, the off delay run."""
        token = self.lab.acquire([resource], "short job")[0]
        for name in (*self.lab.ancestors(resource), resource):
            self.run(self.lab.reconciler(name).reconcile_once())
        self.lab.release([token.id])
        self.gone.add(token.id)
        self.clock.advance(POLICY.off_delay)
        self._expire()
        self.run(self.lab.reconciler(resource).reconcile_once())

    @rule(resource=st.sampled_from(RESOURCES))
    def force_off(self, resource: str) -> None:
        """An administrator forces it off: its tokens and its children's are revoked."""
        targets = {resource, *self.lab.descendants(resource)}
        revoked = {token.id for token in self.lab.force_off(resource, "admin")}
        for token_id, token in list(self.model.items()):
            if token.resource in targets:
                assert token_id in revoked
                del self.model[token_id]
                self.gone.add(token_id)

    @rule(resource=st.sampled_from(RESOURCES))
    def acknowledge(self, resource: str) -> None:
        """A person acknowledges that labpower stopped switching it (if it had)."""
        halted = self.lab.reconciler(resource).halted is not None
        assert self.lab.resume(resource, "acknowledged") is halted

    @rule()
    def restart(self) -> None:
        """Persist, start a new lab on the same hardware, restore and start it."""
        data = self.lab.ledger.to_dict()
        self.run(self.lab.stop())
        self.lab = self._new_lab()
        self.lab.load(data)
        self.run(self.lab.start())
        self.run(self.lab.stop())
        self._expire()

    @rule()
    def converge(self) -> None:
        """Devices behave again and time passes: a powered child has a powered parent."""
        for feed in self.feeds.values():
            feed.transient_failures = 0
            feed.unreadable = False
        for _ in range(12):
            for resource in RESOURCES:
                self.lab.resume(resource, "acknowledged")
                self.run(self.lab.reconciler(resource).reconcile_once())
            self.clock.advance(self.lab.timing.fault_retry + 1)
            self._expire()
        for child, parents in DEPENDS_ON.items():
            if self.feeds[child].state is PowerState.ON:
                for parent in parents:
                    assert self.feeds[parent].state is PowerState.ON, (child, parent)
        for resource in RESOURCES:
            children = self.lab.children(resource)
            needing = sum(1 for child in children if self.lab.desired_on(child))
            assert self.lab.child_demand(resource) == needing

    @invariant()
    def counts_match_the_model(self) -> None:
        """Holder counts equal the model's and are never negative."""
        for resource in RESOURCES:
            expected = sum(1 for t in self.model.values() if t.resource == resource)
            assert self.lab.ledger.holder_count(resource) == expected >= 0

    @invariant()
    def no_safety_violation(self) -> None:
        """Nothing switched off with live tokens, no press on an unknown state."""
        assert self.violations == []

    @invariant()
    def held_resources_cycled_once_per_foreign_change_at_most(self) -> None:
        """Within a hold, one power-on, and one more per foreign change at most."""
        for resource in RESOURCES:
            assert self.held_ons[resource] <= 1 + self.foreign[resource], resource

    @invariant()
    def power_changes_within_the_limit(self) -> None:
        """At most max_transitions power changes in any window since acknowledged."""
        window = self.lab.timing.guard_window
        for resource, times in self.changes.items():
            for start in times:
                within = sum(1 for t in times if start <= t < start + window)
                assert within <= POLICY.max_transitions, (resource, times)

    def teardown(self) -> None:
        """Every token is eventually released or expired."""
        for token_id, token in list(self.model.items()):
            if token.kind is TokenKind.HOLD:
                self.lab.release([token_id])
                del self.model[token_id]
        self.clock.advance(POLICY.max_ttl + 1)
        self._expire()
        assert self.model == {}
        assert self.lab.ledger.token_count == 0
        self.run(self.lab.stop())
        self.loop.close()


LabMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_lab_against_model = LabMachine.TestCase
