"""The lab: the ledger plus one reconciling worker per resource, and token expiry.

Dependencies: a resource may depend on others (`ResourceSpec.depends_on`). A resource
needs its parents while it is wanted on; a parent that a child needs is wanted on (the
ledger's demand), and its own off delay runs from the moment the last child stops needing
it. Children go down first: a parent is not switched off while a child is not known to be
off (a child whose state cannot be read keeps its parent as it is, on or off). The lab keeps, per resource, how many
children need it, and after a change walks up only the ancestors whose value flipped. A
child is switched on only once every parent is available; power-ons are staggered by a
PowerOnGate (core/stagger.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
import contextlib
from dataclasses import dataclass, field
import logging
from typing import Any, Protocol

from .events import EventKind, LabEvent, Listener
from .graph import children_first, find_cycle
from .hooks import LabHooks
from .ledger import Clock, Ledger
from .model import (
    AcquireRefusedError,
    DependencyCycleError,
    HeldByOthersError,
    PowerState,
    QueuedRequest,
    ResourceFaultError,
    ResourcePolicy,
    ResourceState,
    TokenKind,
    TokenRevokedError,
    UnknownDependencyError,
    UnknownResourceError,
    UsageToken,
    WaitTimeoutError,
)
from .queue import WaitQueue
from .reconciler import Reconciler, Sleep, Timing
from .stagger import PowerOnGate, StaggerPolicy
from .switching import AvailabilityChecker, Switcher

_LOGGER = logging.getLogger(__name__)

# Free resources are handed out to a pool energy-aware: powered ones first (no power-on
# at all), then those whose parents are already on, then the rest; least recently used
# first (see Lab.pool_candidates).
_POWERED = frozenset(
    {ResourceState.AVAILABLE, ResourceState.STARTING, ResourceState.STOPPING}
)
_POOLABLE = _POWERED | {ResourceState.OFF}
# Changes that may give a queued request its turn.
_QUEUE_WAKES = frozenset({EventKind.HOLDERS_CHANGED, EventKind.STATE_CHANGED})


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """Everything the lab needs to manage one resource."""

    name: str
    feeds: tuple[Switcher, ...]
    checker: AvailabilityChecker | None = None
    policy: ResourcePolicy = field(default_factory=ResourcePolicy)
    labels: frozenset[str] = frozenset()
    power_w: float | None = None
    # The resources this one needs powered (and available) first: a Pi's stack relay.
    depends_on: tuple[str, ...] = ()


type Cancel = Callable[[], None]


class Scheduler(Protocol):
    """Where the lab's timers and passes run (HA's own helpers in Home Assistant)."""

    def call_later(self, delay: float, action: Callable[[], None]) -> Cancel:
        """Run `action` after `delay` seconds; returns a canceller."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a short-lived coroutine as a task."""


class AsyncioScheduler:
    """The plain asyncio scheduler."""

    def call_later(self, delay: float, action: Callable[[], None]) -> Cancel:
        """Schedule on the running loop."""
        return asyncio.get_running_loop().call_later(delay, action).cancel

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Create a task."""
        return asyncio.get_running_loop().create_task(coro, name=name)


@dataclass(slots=True)
class _Managed:
    """A resource with its reconciler, its running pass and its next timer."""

    spec: ResourceSpec
    reconciler: Reconciler
    task: asyncio.Task[None] | None = None
    again: bool = False
    timer: Cancel | None = None
    due: float | None = None  # when the timer fires (clock time)
    groups: frozenset[str] = frozenset()  # stagger groups of its feeds (PDUs)


class Lab:
    """Reference-counting coordinator of a lab's resources."""

    def __init__(
        self,
        *,
        clock: Clock,
        listener: Listener,
        timing: Timing | None = None,
        sleep: Sleep = asyncio.sleep,
        scheduler: Scheduler | None = None,
        stagger: StaggerPolicy | None = None,
    ) -> None:
        """Create an empty lab; `listener` receives every LabEvent.

        `stagger` limits simultaneous power-ons (None: no limit).
        """
        self.clock = clock
        self.ledger = Ledger(clock)
        self.timing = timing or Timing()
        self._sleep = sleep
        self._listener = listener
        self._resources: dict[str, _Managed] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._scheduler = scheduler or AsyncioScheduler()
        # Steady polls on a shared tick: its instant -> who polls then, and its one timer.
        self._ticks: dict[float, dict[str, _Managed]] = {}
        self._tick_timers: dict[float, Cancel] = {}
        self._running = False
        self._refusal: str | None = None
        self._expiry_timer: Cancel | None = None
        self._expiry_at: float | None = None
        # The dependency graph, and per resource how many children need it now.
        self._parents: dict[str, tuple[str, ...]] = {}
        self._children: dict[str, dict[str, None]] = {}
        self._need_count: dict[str, int] = {}
        self._needs: dict[str, bool] = {}  # whether it counts in its parents' need
        self._starting = False
        self._hooks = LabHooks(self)
        self._gate = PowerOnGate(
            stagger,
            call_later=self._scheduler.call_later,
            on_grant=self._slot_granted,
        )
        self.queue = WaitQueue(self)

    # Configuration

    def add(self, spec: ResourceSpec) -> None:
        """Add a resource (or replace its definition, keeping its tokens).

        Its dependencies must be resources of the lab already (see add_all).
        """
        self.add_all((spec,))

    def add_all(self, specs: Iterable[ResourceSpec]) -> None:
        """Add resources (or replace definitions, keeping tokens), checking them together.

        A resource may depend on resources of the lab or of the same call, in any order;
        anything else raises UnknownDependencyError, and a dependency cycle raises
        DependencyCycleError. Either leaves the lab as it was. When a name appears twice,
        the last definition counts. Only the part of the graph above the new resources
        is checked, so adding resources one by one stays linear.
        """
        new = {spec.name: spec for spec in specs}
        self._check_graph(new)
        self.queue.forget_scopes()
        dirty: list[str] = []
        for spec in new.values():
            self._install(spec, dirty)
        if self._running:
            for name in new:
                managed = self._resources[name]
                managed.task = self._scheduler.spawn(
                    self._first_pass(managed), f"labpower {name}"
                )
        self._propagate(dirty)

    def _check_graph(self, new: dict[str, ResourceSpec]) -> None:
        for spec in new.values():
            for parent in spec.depends_on:
                if parent not in new and parent not in self._resources:
                    raise UnknownDependencyError(spec.name, parent)
        # The graph was acyclic before: a new cycle runs through a new definition, so
        # walking up from the new definitions finds it.
        above: dict[str, tuple[str, ...]] = {}
        todo = list(new)
        while todo:
            name = todo.pop()
            if name in above:
                continue
            known = new.get(name)
            parents = known.depends_on if known else self._parents.get(name, ())
            above[name] = parents
            todo.extend(parents)
        cycle = find_cycle(above)
        if cycle is not None:
            raise DependencyCycleError(cycle)

    def _install(self, spec: ResourceSpec, dirty: list[str]) -> None:
        name = spec.name
        old = self._resources.get(name)
        if old is not None:
            self._halt(old)
            self._gate.withdraw(name)
            if self._needs.pop(name, False):
                dirty.extend(p for p in self._parents[name] if self._count(p, -1, name))
            for parent in self._parents[name]:
                del self._children[parent][name]
        parents = tuple(dict.fromkeys(spec.depends_on))
        self._parents[name] = parents
        for parent in parents:
            self._children.setdefault(parent, {})[name] = None
        self._need_count.setdefault(name, 0)
        self.ledger.set_policy(name, spec.policy)
        managed = self._resources[name] = _Managed(
            spec=spec,
            reconciler=Reconciler(
                name=name,
                policy=spec.policy,
                feeds=spec.feeds,
                checker=spec.checker,
                hooks=self._hooks,
                clock=self.clock,
                sleep=self._sleep,
                timing=self.timing,
            ),
            groups=frozenset(
                group
                for feed in spec.feeds
                if (group := getattr(feed, "stagger_group", None))
            ),
        )
        if (reason := self.ledger.halted.get(name)) is not None:
            managed.reconciler.restore_halt(reason)
        if parents:
            dirty.append(name)

    @property
    def stagger(self) -> StaggerPolicy:
        """The power-on limits in force."""
        return self._gate.policy

    def set_stagger(self, policy: StaggerPolicy | None) -> None:
        """Change the power-on limits (None: no limit); slots in use stay in use."""
        self._gate.set_policy(policy)

    def load(
        self, data: dict[str, Any] | None, journal: Iterable[list[Any]] = ()
    ) -> None:
        """Restore persisted state and its journal (after adding resources, before start)."""
        journal = list(journal)
        if not data and not journal:
            return
        for token in self.ledger.load(data or self.ledger.to_dict(), journal):
            _LOGGER.warning(
                "Token of %s for removed resource %s released",
                token.holder,
                token.resource,
            )
            self._emit(
                EventKind.TOKEN_REVOKED,
                token.resource,
                token=token,
                cause="resource removed",
            )
        for name, reason in self.ledger.halted.items():
            self._resources[name].reconciler.restore_halt(reason)

    # Life cycle

    async def start(self) -> None:
        """Read every resource's real state, release tokens expired meanwhile, then run."""
        # What children need is derived once everything is read: a child read as off
        # at start ends no demand, so starts no off delay of its parents.
        self._starting = True
        try:
            await asyncio.gather(
                *(m.reconciler.observe() for m in self._resources.values())
            )
        finally:
            self._starting = False
        self.recompute_desired()
        self._running = True
        self.queue.start()
        self._expire()
        for managed in self._resources.values():
            self._kick(managed)

    async def stop(self) -> None:
        """Stop every pass and timer (power is left as it is); the queue stays."""
        self._running = False
        self.queue.stop()
        if self._expiry_timer is not None:
            self._expiry_timer()
            self._expiry_timer = None
        tasks = [self._halt(m) for m in self._resources.values()]
        self._gate.reset()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()

    # Tokens

    def acquire(
        self,
        names: Iterable[str],
        holder: str,
        *,
        kind: TokenKind = TokenKind.LEASE,
        ttl: float | None = None,
        user_id: str | None = None,
        limit: float | None = None,
        exclusive: bool = False,
        ticket: str | None = None,
    ) -> list[UsageToken]:
        """Take a token on each resource: all or none (a hold ends after `limit` s).

        An exclusive token is granted only on a resource nobody holds, and refuses
        every other token while it lives (ExclusiveConflictError names its holder).
        Nobody jumps the queue (QueuedAheadError): `ticket` names the queued request
        this grants, which leaves the queue with it (see core/queue.py).
        """
        self.check_accepting()
        names = list(dict.fromkeys(names))
        self.check_acquire(
            names, kind=kind, ttl=ttl, exclusive=exclusive, ticket=ticket
        )
        wanted = {name: self.ledger.wants_on(name) for name in names}
        tokens = [
            self.ledger.acquire(
                name,
                holder,
                kind=kind,
                ttl=ttl,
                user_id=user_id,
                limit=limit,
                exclusive=exclusive,
            )
            for name in names
        ]
        if ticket is not None:
            self.queue.granted(ticket)
        for token in tokens:
            self._token_changed(
                EventKind.TOKEN_ACQUIRED,
                token,
                desire_changed=not wanted[token.resource],
            )
        self._emit(EventKind.PERSIST)
        return tokens

    def check_acquire(
        self,
        names: Iterable[str],
        *,
        kind: TokenKind,
        ttl: float | None,
        exclusive: bool,
        ticket: str | None = None,
    ) -> None:
        """Raise what acquire would raise for these resources, taking nothing."""
        names = list(names)
        for name in names:
            if kind is TokenKind.LEASE:
                self.ledger.validate_ttl(name, ttl)
            else:
                self.ledger.policy(name)
            self.ledger.check_free(name, exclusive=exclusive)
        self.queue.check_turn(names, ticket)

    def pool_candidates(self, labels: frozenset[str]) -> list[tuple[int, float, str]]:
        """The free resources carrying every label, each as (tier, last off, name).

        Sorted, the best come first: tier 0 is powered, 1 has its parents powered,
        2 needs more switched on; then the least recently used.
        """
        candidates: list[tuple[int, float, str]] = []
        for name, managed in self._resources.items():
            spec = managed.spec
            state = managed.reconciler.state
            if (
                not labels <= spec.labels
                or self.ledger.holder_count(name)
                or state not in _POOLABLE
            ):
                continue
            if state in _POWERED:
                tier = 0
            elif all(self.state(parent) in _POWERED for parent in spec.depends_on):
                tier = 1 if spec.depends_on else 2
            else:
                tier = 2
            last_off = self.ledger.last_off(name)
            candidates.append(
                (tier, float("-inf") if last_off is None else last_off, name)
            )
        return candidates

    def enqueue(self, request: QueuedRequest) -> None:
        """Queue an acquire that cannot be granted now (see core/queue.py)."""
        self.check_accepting()
        self.queue.enqueue(request)

    @property
    def running(self) -> bool:
        """Whether the lab runs (started, not stopped)."""
        return self._running

    @property
    def refusing(self) -> bool:
        """Whether the lab gives out no new tokens now."""
        return self.ledger.frozen is not None or self._refusal is not None

    def call_later(self, delay: float, action: Callable[[], None]) -> Cancel:
        """Run `action` after `delay` seconds on the lab's scheduler."""
        return self._scheduler.call_later(delay, action)

    def emit(self, kind: EventKind, resource: str | None = None) -> None:
        """Tell the listener something changed (the queue's positions, persisting)."""
        self._emit(kind, resource)

    def release(self, token_ids: Iterable[str]) -> list[UsageToken]:
        """Release tokens; ones already released are skipped, unknown ones refused."""
        token_ids = list(token_ids)
        for token_id in token_ids:
            self.ledger.check_known(token_id)
        released = [t for t in map(self.ledger.release, token_ids) if t is not None]
        for token in released:
            self._token_changed(EventKind.TOKEN_RELEASED, token)
        if released:
            self._emit(EventKind.PERSIST)
        return released

    def power_off(
        self, name: str, token_ids: Iterable[str], cause: str
    ) -> list[UsageToken]:
        """An explicit off from a client that owns the machine's power (a switch, MAAS).

        Releases the client's tokens. Left with no token and no resource depending on
        it, the resource goes off at once (graceful first where it can), skipping the
        off delay, when its policy says `off_now`; it is seen off before it powers on
        again, so an off, then an on, is a power cycle. Otherwise the tokens are
        released all the same and HeldByOthersError names who keeps it on.
        """
        managed = self._get(name)
        released = self.release(token_ids)
        if claims := self.claims(name):
            raise HeldByOthersError(name, claims)
        if (
            managed.spec.policy.off_now
            and managed.reconciler.power is not PowerState.OFF
            and self.ledger.request_off(name, cause)
        ):
            self._emit(EventKind.PERSIST)
            self._emit(EventKind.HOLDERS_CHANGED, name)  # what it should be changed
            self._kick(managed)
            self._propagate((name,))
        return released

    def claims(self, name: str) -> list[str]:
        """Who keeps a resource on: its holders, and the resources that need it."""
        self._get(name)
        holders = [token.holder for token in self.ledger.tokens(name)]
        if self.ledger.has_demand(name):
            holders.extend(
                child
                for child in self._children.get(name, ())
                if self._needs.get(child, False)
            )
        return list(dict.fromkeys(holders))

    def renew(self, token_id: str, ttl: float | None = None) -> UsageToken:
        """Extend a lease (or a hold with a limit)."""
        token = self.ledger.renew(token_id, ttl)
        if token.expires is None:
            return token  # a hold without a limit: nothing changed
        self._schedule_expiry(token)
        self._emit(EventKind.TOKEN_RENEWED, token.resource, token=token)
        self._emit(EventKind.HOLDERS_CHANGED, token.resource)
        self._emit(EventKind.PERSIST)
        return token

    def check_accepting(self) -> None:
        """Raise AcquireRefusedError while the lab gives out no new tokens."""
        if self.ledger.frozen is not None:
            raise AcquireRefusedError(self.ledger.frozen)
        if self._refusal is not None:
            raise AcquireRefusedError(self._refusal)

    def refuse_acquire(self, reason: str | None) -> None:
        """Refuse new tokens for this reason (a UPS on battery); None accepts them again."""
        self._refusal = reason
        if reason is None:
            self.queue.wake()

    def shed_idle(self, cause: str | None) -> list[str]:
        """Power off what no token holds now, skipping off delays until called with None.

        Returns the resources whose running off delay was cut short.
        """
        self.ledger.shedding = cause is not None
        if cause is None:
            return []
        shed = self.ledger.end_off_delays()
        for name in shed:
            self.ledger.set_cause(name, cause)
            self._kick(self._resources[name])
        if shed:
            self._emit(EventKind.PERSIST)
        return shed

    def shutdown_order(self, names: Iterable[str]) -> list[str]:
        """These resources, children before the resources they depend on."""
        wanted = set(names)
        graph = {name: self.parents(name) for name in wanted}
        return children_first(graph)

    def force_off(self, name: str, cause: str) -> list[UsageToken]:
        """Revoke every token of a resource and power it off now (administrators).

        Whatever depends on it loses power with it: the tokens of every descendant are
        revoked too, descendants go off first, and none of them waits for its off delay.
        Returns every token revoked.
        """
        self._get(name)
        targets = [name, *self.descendants(name)]
        revoked: list[UsageToken] = []
        for target in targets:
            tokens = self.ledger.revoke_all(target, cause)
            for token in tokens:
                self._emit(EventKind.TOKEN_REVOKED, target, token=token, cause=cause)
            if tokens or target == name:
                self._emit(EventKind.HOLDERS_CHANGED, target)
            revoked.extend(tokens)
        for target in targets:
            self.resume(target, cause)  # an administrator decided: switch it again
        self._emit(EventKind.PERSIST)
        for target in targets:
            self._kick(self._resources[target])
            self._wake_waiters(target)
        self._propagate(targets)
        return revoked

    def resume(self, name: str, cause: str) -> bool:
        """A person acknowledged that labpower stopped switching a resource: switch again.

        Returns False when it was not stopped.
        """
        managed = self._get(name)
        if not managed.reconciler.resume():
            return False
        _LOGGER.info("%s: switched again (%s)", name, cause)
        self.ledger.set_halted(name, None)
        self._emit(EventKind.RESUMED, name, cause=cause)
        self._emit(EventKind.PERSIST)
        self._kick(managed)
        return True

    def confirm_unknown(self, cause: str) -> list[str]:
        """An administrator confirmed the lost tokens: manage kept resources again.

        Those nobody holds go off after their off delay.
        """
        kept = self.ledger.confirm_unknown()
        for name in kept:
            self.ledger.set_cause(name, cause)
            self._emit(EventKind.HOLDERS_CHANGED, name)
            self._kick(self._resources[name])
        self._propagate(kept)
        self._emit(EventKind.PERSIST)
        return kept

    def halts(self) -> dict[str, str]:
        """The resources labpower stopped switching, with the reason."""
        return self.ledger.halted

    async def wait_available(
        self,
        tokens: Iterable[UsageToken],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Wait until the tokens' resources are available; fail at once on a fault.

        Also fails when one of the tokens is revoked or expires meanwhile, and at once
        when a resource they depend on is in fault.
        """
        tokens = list(tokens)
        names = list(dict.fromkeys(token.resource for token in tokens))
        ancestors = {name: self.ancestors(name) for name in names}
        pending = names
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    pending = [
                        n
                        for n in names
                        if self.state(n) is not ResourceState.AVAILABLE
                        or self.ledger.off_requested(n)  # it goes off first
                    ]
                    if not pending:
                        return
                    for token in tokens:
                        if not self.ledger.is_live(token.id):
                            raise TokenRevokedError(token.resource)
                    watched = list(
                        dict.fromkeys(
                            n for name in pending for n in (name, *ancestors[name])
                        )
                    )
                    for name in watched:
                        reconciler = self._resources[name].reconciler
                        if reconciler.state is ResourceState.FAULT:
                            raise ResourceFaultError(name, reconciler.reason or "fault")
                    future: asyncio.Future[None] = loop.create_future()
                    for name in watched:
                        self._waiters.setdefault(name, set()).add(future)
                    try:
                        await future
                    finally:
                        for name in watched:
                            self._waiters[name].discard(future)
        except TimeoutError:
            raise WaitTimeoutError(pending, timeout) from None

    # Queries

    @property
    def names(self) -> list[str]:
        """The resources of this lab."""
        return list(self._resources)

    def spec(self, name: str) -> ResourceSpec:
        """A resource's definition."""
        return self._get(name).spec

    def reconciler(self, name: str) -> Reconciler:
        """A resource's reconciler (state, reason, power, availability, capabilities)."""
        return self._get(name).reconciler

    def state(self, name: str) -> ResourceState:
        """A resource's current state."""
        return self._get(name).reconciler.state

    def desired_on(self, resource: str) -> bool:
        """Whether a resource should be on: tokens, a child needs it, or its off delay."""
        return self.ledger.wants_on(resource)

    def parents(self, name: str) -> tuple[str, ...]:
        """The resources this one depends on directly."""
        self._get(name)
        return self._parents[name]

    def children(self, name: str) -> list[str]:
        """The resources that depend on this one directly."""
        self._get(name)
        return list(self._children.get(name, ()))

    def ancestors(self, name: str) -> list[str]:
        """Every resource this one depends on, directly or not, nearest first."""
        self._get(name)
        return self._walk(name, self._parents)

    def child_demand(self, name: str) -> int:
        """How many children need this resource now (are wanted on)."""
        self._get(name)
        return self._need_count[name]

    def recompute_desired(self) -> None:
        """Derive what every child needs from scratch (start does; changes keep it since).

        Demand that ends here starts no off delay: it was only assumed while the
        children's power was unknown.
        """
        counts = dict.fromkeys(self._resources, 0)
        needs: dict[str, bool] = {}
        wants_on = self.ledger.wants_on
        for name in children_first(self._parents):
            was = wants_on(name)
            self.ledger.set_demand(name, counts[name] > 0, start_delay=False)
            wanted = wants_on(name)
            if wanted != was:
                self._kick(self._resources[name])
            parents = self._parents[name]
            if parents:
                need = wanted
                needs[name] = need
                if need:
                    for parent in parents:
                        counts[parent] += 1
        self._need_count = counts
        self._needs = needs

    # Power actions asked for by users

    async def power_cycle(self, name: str, cause: str) -> None:
        """Verified off, delay, verified on."""
        await self._get(name).reconciler.power_cycle(cause)

    async def reset(self, name: str, cause: str) -> None:
        """Reset the machine through its reset line."""
        await self._get(name).reconciler.reset(cause)

    def _wake_waiters(self, resource: str) -> None:
        for future in self._waiters.get(resource, ()):
            if not future.done():
                future.set_result(None)

    # Internals

    def _get(self, name: str) -> _Managed:
        try:
            return self._resources[name]
        except KeyError:
            raise UnknownResourceError(name) from None

    # Dependencies: what children need, kept up to date by walking up from a change.

    def _propagate(self, names: Iterable[str]) -> None:
        """Re-derive whether these resources need their parents; walk up what flips."""
        todo = list(names)
        parents_of = self._parents
        while todo:
            name = todo.pop()
            parents = parents_of.get(name)
            if not parents:
                continue
            need = self.ledger.wants_on(name)
            if need == self._needs.get(name, False):
                continue
            self._needs[name] = need
            delta = 1 if need else -1
            todo.extend(p for p in parents if self._count(p, delta, name))

    def _count(self, parent: str, delta: int, child: str) -> bool:
        """Change how many children need `parent`; True when its demand flipped.

        The flip names the child (and what changed it) for the parent's logbook entry.
        """
        count = self._need_count.get(parent, 0) + delta
        self._need_count[parent] = count
        if (count > 0) == (count - delta > 0):
            return False
        ledger = self.ledger
        needed = "needed by" if count > 0 else "no longer needed by"
        ledger.set_cause(parent, f"{needed} {child} ({ledger.last_cause(child)})")
        was, deadline = ledger.wants_on(parent), ledger.off_deadline(parent)
        ledger.set_demand(parent, count > 0)
        managed = self._resources[parent]
        if ledger.wants_on(parent) != was:
            self._kick(managed)
        else:
            self._wake_by_off_deadline(managed)  # its own off delay started
        if ledger.off_deadline(parent) != deadline:
            self._emit(EventKind.PERSIST)  # off deadlines survive a restart
        return True

    def descendants(self, name: str) -> list[str]:
        """Every resource that depends on this one, directly or through others."""
        return self._walk(name, self._children)

    @staticmethod
    def _walk(name: str, edges: Mapping[str, Iterable[str]]) -> list[str]:
        seen: dict[str, None] = {}
        todo = [name]
        for current in todo:
            for other in edges.get(current, ()):
                if other not in seen and other != name:
                    seen[other] = None
                    todo.append(other)
        return list(seen)

    def _slot_granted(self, resource: str) -> None:
        managed = self._resources.get(resource)
        if managed is not None:
            self._kick(managed)

    def _emit(
        self,
        kind: EventKind,
        resource: str | None = None,
        **details: Any,
    ) -> None:
        self._listener(LabEvent(kind, resource, **details))
        if kind in _QUEUE_WAKES:
            self.queue.wake()

    def _token_changed(
        self, kind: EventKind, token: UsageToken, *, desire_changed: bool = True
    ) -> None:
        self._emit(kind, token.resource, token=token, cause=token.holder)
        self._emit(EventKind.HOLDERS_CHANGED, token.resource)
        if kind is EventKind.TOKEN_ACQUIRED:
            self._schedule_expiry(token)
        managed = self._resources[token.resource]
        if self.ledger.holder_count(token.resource) > 1:
            return
        # Only a change of what the resource should be needs a pass: the first token
        # (unless the off delay kept it wanted anyway), or the last one going with no
        # off delay. A last token going with an off delay needs only the timer moved.
        if kind is not EventKind.TOKEN_ACQUIRED:
            desire_changed = not self.ledger.wants_on(token.resource)
        if desire_changed:
            self._kick(managed)
        else:
            self._wake_by_off_deadline(managed)
        self._propagate((token.resource,))

    def _schedule_expiry(self, token: UsageToken) -> None:
        if token.expires is not None and (
            self._expiry_at is None or token.expires < self._expiry_at
        ):
            self._arm_expiry(token.expires)

    def _arm_expiry(self, when: float | None) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer()
            self._expiry_timer = None
        self._expiry_at = when
        if when is not None and self._running:
            self._expiry_timer = self._scheduler.call_later(
                max(0.0, when - self.clock()), self._expire
            )

    def _expire(self) -> None:
        expired = self.ledger.expire()
        for token in expired:
            self._token_changed(EventKind.TOKEN_EXPIRED, token)
        if expired:
            self._emit(EventKind.PERSIST)
        self._arm_expiry(self.ledger.next_expiry())

    # Passes: short-lived tasks, started by a change or by the resource's own timer.

    def _kick(self, managed: _Managed) -> None:
        if not self._running:
            return
        if managed.task is not None:
            managed.again = True  # the running pass loops once more
            return
        if managed.timer is not None:
            managed.timer()
            managed.timer = None
            managed.due = None
        managed.task = self._scheduler.spawn(
            self._passes(managed), f"labpower {managed.spec.name}"
        )

    async def _first_pass(self, managed: _Managed) -> None:
        await managed.reconciler.observe()
        managed.task = None
        self._kick(managed)

    async def _passes(self, managed: _Managed) -> None:
        reconciler = managed.reconciler
        name = managed.spec.name
        delay = self.timing.fault_retry
        try:
            while True:
                managed.again = False
                try:
                    delay = await reconciler.reconcile_once()
                except Exception:  # pragma: no cover - a bug must not stop the lab
                    _LOGGER.exception("%s: reconcile failed", name)
                if not managed.again:
                    break
        finally:
            managed.task = None
        if not self._running or self._resources.get(name) is not managed:
            return
        now = self.clock()
        tick: float | None = None
        if delay in (self.timing.fast_poll, self.timing.slow_poll):
            # Steady polls fall on shared ticks, so checks of many hosts batch together
            # (and one timer serves every resource of a tick).
            delay -= now % delay
            tick = round(now + delay, 3)
        off_at = self.ledger.off_deadline(name)
        if off_at is not None and off_at > now and off_at - now < delay:
            delay, tick = off_at - now, None
        self._plan(managed, delay, tick)

    def _wake_by_off_deadline(self, managed: _Managed) -> None:
        off_at = self.ledger.off_deadline(managed.spec.name)
        if managed.task is not None or off_at is None or not self._running:
            return  # a running pass plans its next one with the deadline
        if managed.due is None or off_at < managed.due:
            self._plan(managed, off_at - self.clock())

    def _plan(self, managed: _Managed, delay: float, tick: float | None = None) -> None:
        if managed.timer is not None:
            managed.timer()
        delay = max(0.0, delay)
        managed.due = self.clock() + delay
        if tick is None:
            managed.timer = self._scheduler.call_later(
                delay, lambda: self._kick(managed)
            )
        else:
            managed.timer = self._join_tick(tick, delay, managed)

    def _join_tick(self, tick: float, delay: float, managed: _Managed) -> Cancel:
        """Poll at the shared instant `tick`; returns how to leave it."""
        members = self._ticks.get(tick)
        if members is None:
            members = self._ticks[tick] = {}
            self._tick_timers[tick] = self._scheduler.call_later(
                delay, lambda: self._fire_tick(tick)
            )
        name = managed.spec.name
        members[name] = managed

        def leave() -> None:
            group = self._ticks.get(tick)
            if group is None or group.get(name) is not managed:
                return
            del group[name]
            if not group:
                del self._ticks[tick]
                self._tick_timers.pop(tick)()

        return leave

    def _fire_tick(self, tick: float) -> None:
        self._tick_timers.pop(tick, None)
        for managed in self._ticks.pop(tick, {}).values():
            managed.timer = None
            managed.due = None
            self._kick(managed)

    def _halt(self, managed: _Managed) -> asyncio.Task[None] | None:
        if managed.timer is not None:
            managed.timer()
            managed.timer = None
            managed.due = None
        task, managed.task = managed.task, None
        if task is not None:
            task.cancel()
        return task

    def wake(self, name: str) -> None:
        """A resource's devices changed: a pass now, and a fault may retry at once."""
        managed = self._resources.get(name)
        if managed is not None:
            managed.reconciler.retry_now()
            self._kick(managed)
