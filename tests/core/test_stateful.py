"""Property-based stateful test of the ledger and reconcilers against a simple model.

Random interleavings of acquire / release / renew / clock advance / switch failure / restart.
Invariants: never switched off while a live token exists (nothing here forces), holder counts
match the model and are never negative, no toggle is pressed on an unknown state, and every
token is eventually released or expired. Dependencies: plug and button depend on stack; a
child is switched on only while its parent is available, a parent is switched off only
while every child is known off, and after convergence a powered child has a powered parent.
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

from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    InvalidTtlError,
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
)


@dataclass
class ModelToken:
    """What the model knows of a token."""

    resource: str
    kind: TokenKind
    expires: float | None


class GuardedFeed(FakeFeed):
    """A feed that records every violation of the safety rules it witnesses."""

    lab: Lab | None = None
    resource: str = ""
    violations: list[str] | None = None

    async def turn_off(self, *, graceful: bool) -> None:
        """Power off only while nobody holds the resource and its children are off."""
        assert self.lab is not None
        assert self.violations is not None
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
        if self.toggle and self.unreadable:
            self.violations.append(f"{self.resource} pressed on an unknown state")
        for parent in self.lab.parents(self.resource):
            if self.lab.state(parent) is not ResourceState.AVAILABLE:
                self.violations.append(f"{self.resource} switched on before {parent}")
        await super().turn_on()


class LabMachine(RuleBasedStateMachine):
    """The lab against the model."""

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        """A lab with a plug-switched and a button-switched resource."""
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.violations: list[str] = []
        self.feeds = {
            "plug": GuardedFeed(name="plug"),
            "button": GuardedFeed(name="button", toggle=True, graceful=True),
            "stack": GuardedFeed(name="stack"),
        }
        for name, feed in self.feeds.items():
            feed.resource = name
            feed.violations = self.violations
        self.model: dict[str, ModelToken] = {}
        self.gone: set[str] = set()
        self.lab = self._new_lab()

    def _new_lab(self) -> Lab:
        lab = Lab(clock=self.clock, listener=lambda event: None, sleep=self.clock.sleep)
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
    def someone_flips_the_machine(self, resource: str) -> None:
        """The machine changes state by itself (a crash, a person at the rack)."""
        feed = self.feeds[resource]
        feed.state = PowerState.OFF if feed.state is PowerState.ON else PowerState.ON

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
