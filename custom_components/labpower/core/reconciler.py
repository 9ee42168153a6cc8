"""The per-resource reconciler: makes a resource's real power follow the desired state.

One pass observes the feeds (and the availability check), re-reads the desired state and
takes at most one action, verified by reading back. The safety rules of DESIGN.md live here:
unknown is never off; a toggle is pressed only on a known, different state and never
re-sent; transient errors are retried with backoff, configuration errors fail fast.

Two guards stop the reconciler (a *halt*: fault, no action at all until a person
acknowledges it with `resume`), whatever caused the switching:

- Never fight. The reconciler remembers each readable feed's state as it last saw or made
  it. A feed seen in another state that goes against what is wanted, which labpower did not
  cause (a graceful shutdown it asked for is its own), was switched by something else: a
  person, an automation, the plug's own schedule, another resource on the same relay. It
  is corrected once; a second such change within `Timing.guard_window` halts.
- Hardware protection. At most `ResourcePolicy.max_transitions` power changes per
  `Timing.guard_window`: a power-on counts one, a shutdown one (its forced off after the
  stop timeout is part of it), a power cycle two. The change that would exceed it halts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
import logging

from .model import (
    PowerAction,
    PowerState,
    ResourceHaltedError,
    ResourcePolicy,
    ResourceState,
)
from .switching import (
    AvailabilityChecker,
    ConfigurationSwitchError,
    ForeignSwitchError,
    Switcher,
    SwitchError,
)

_LOGGER = logging.getLogger(__name__)

type Sleep = Callable[[float], Awaitable[None]]

# The reason an OFF resource gives while it waits (the other: "waiting for <parent>").
WAITING_FOR_SLOT = "waiting for power-on slot"
WAITING_FOR = "waiting for "


@dataclass(frozen=True, slots=True)
class Timing:
    """Timeouts and cadences of the reconciler, in seconds."""

    step_timeout: float = 15.0
    verify_backoff: tuple[float, ...] = (1.0, 2.0, 4.0)
    verify_timeout: float = 30.0
    attempts: int = 3
    retry_backoff: tuple[float, ...] = (1.0, 2.0, 4.0)
    fast_poll: float = 2.0
    slow_poll: float = 30.0
    fault_retry: float = 60.0
    cycle_delay: float = 5.0
    start_failures_for_repair: int = 3
    # Foreign changes and power transitions are counted over this window.
    guard_window: float = 600.0


@dataclass(slots=True)
class Observation:
    """What one pass saw."""

    power: PowerState
    available: bool | None


class ReconcilerHooks:
    """What the reconciler tells the world; the lab overrides these."""

    def desired_on(self, resource: str) -> bool:
        """Whether the resource should be on now."""
        raise NotImplementedError

    def cause(self, resource: str) -> str:
        """Who or what caused the current desired state (for the logbook)."""
        raise NotImplementedError

    def min_off_remaining(self, resource: str) -> float:
        """Seconds the resource must still stay off (min_off_time)."""
        raise NotImplementedError

    def state_changed(self, resource: str) -> None:
        """The resource's state, fault reason or availability changed."""

    def power_action(self, resource: str, action: PowerAction, cause: str) -> None:
        """A verified power action happened."""

    def powered_off(self, resource: str) -> None:
        """The resource was seen going off (min_off_time starts)."""

    def config_error(self, resource: str, error: ConfigurationSwitchError) -> None:
        """A switcher reported a configuration error: raise a repair issue."""

    def start_failed(self, resource: str, failures: int) -> None:
        """The resource did not become available within start_timeout again."""

    def recovered(self, resource: str) -> None:
        """The resource reached its desired state again after a fault."""

    def parents_ready(self, resource: str) -> str | None:
        """None when every resource it depends on is available, else the first that is not."""
        return None

    def child_not_off(self, resource: str) -> str | None:
        """A resource depending on this one that is not known to be off, or None."""
        return None

    def power_on_slot(self, resource: str) -> bool:
        """Ask for a power-on slot (staggered power-on): True granted, False queued.

        A queued resource gets another pass when its slot is granted.
        """
        return True

    def power_on_done(self, resource: str) -> None:
        """The switch-on with its slot ran (verified or failed)."""

    def power_on_withdrawn(self, resource: str) -> None:
        """A resource that asked for a slot no longer wants to switch on."""

    def pass_finished(self, resource: str) -> None:
        """A pass ended (what it wants can lapse by time alone: an off delay ran out)."""

    def halted(self, resource: str, reason: str) -> None:
        """The reconciler stopped acting on the resource until a person acknowledges it."""


class VerificationError(SwitchError):
    """The device acknowledged but its state did not follow."""


@dataclass(slots=True)
class _Progress:
    starting_since: float | None = None
    stopping_since: float | None = None
    fault_until: float | None = None
    toggle_blocked: tuple[bool, PowerState] | None = None
    start_failures: int = 0
    counted_failure: bool = False
    had_fault: bool = False
    asked_slot: bool = False  # queued for, or holding, a power-on slot
    halted: str | None = None  # why it stopped acting (until resumed)
    foreign_at: float | None = None  # when something else last switched it
    # The cause of the action that undoes a foreign change.
    correction: str | None = None
    transitions: deque[float] = field(default_factory=deque)  # when it switched lately


@dataclass(slots=True)
class Reconciler:
    """Converges one resource; every public coroutine holds the resource's action lock."""

    name: str
    policy: ResourcePolicy
    feeds: Sequence[Switcher]
    checker: AvailabilityChecker | None
    hooks: ReconcilerHooks
    clock: Callable[[], float]
    sleep: Sleep = asyncio.sleep
    timing: Timing = field(default_factory=Timing)
    state: ResourceState = ResourceState.UNKNOWN
    reason: str | None = None
    power: PowerState = PowerState.UNKNOWN
    available: bool | None = None
    _progress: _Progress = field(default_factory=_Progress)
    _read_error: str | None = None  # why a feed could not be read in this pass
    # Each readable feed's state as last seen or made (by index), and the feeds seen in
    # another state by the last observation.
    _known: dict[int, PowerState] = field(default_factory=dict)
    _changed: list[tuple[str, PowerState]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def is_toggle(self) -> bool:
        """Whether any feed is toggle-only."""
        return any(feed.capabilities.is_toggle for feed in self.feeds)

    @property
    def can_cycle(self) -> bool:
        """Whether every feed supports a power cycle."""
        return all(feed.capabilities.can_cycle for feed in self.feeds)

    @property
    def can_reset(self) -> bool:
        """Whether some feed can reset the machine."""
        return any(feed.capabilities.can_reset for feed in self.feeds)

    async def observe(self) -> Observation:
        """Read the real state without acting (the first thing after a start)."""
        async with self._lock:
            try:
                seen = await self._observe()
            except ConfigurationSwitchError as err:
                # At start other integrations may not have made their entities yet.
                self.hooks.config_error(self.name, err)
                self._set(ResourceState.UNKNOWN, f"configuration error: {err}")
                return Observation(PowerState.UNKNOWN, None)
            if self._progress.halted is not None:
                self._set(ResourceState.FAULT, self._progress.halted)
            elif seen.power is PowerState.UNKNOWN:
                self._set(ResourceState.UNKNOWN)
            elif seen.power is PowerState.OFF:
                self._set(ResourceState.OFF)
            elif seen.available:
                self._set(ResourceState.AVAILABLE)
            else:
                self._progress.starting_since = self.clock()
                self._set(ResourceState.STARTING)
            return seen

    async def reconcile_once(self) -> float:
        """Observe, take at most one verified action; returns seconds until the next pass."""
        async with self._lock:
            progress = self._progress
            had_slot, progress.asked_slot = progress.asked_slot, False
            try:
                return await self._pass()
            except ConfigurationSwitchError as err:
                self.hooks.config_error(self.name, err)
                return self._fault(f"configuration error: {err}")
            except ForeignSwitchError as err:
                return self._switched_back(err)
            except SwitchError as err:
                return self._fault(str(err) or type(err).__name__)
            finally:
                # A pass that did not ask for its slot again gives up its place.
                if had_slot and not progress.asked_slot:
                    self.hooks.power_on_withdrawn(self.name)
                self.hooks.pass_finished(self.name)

    def retry_now(self) -> None:
        """Something about the devices changed: an action held back by a fault may go now."""
        self._progress.fault_until = None

    @property
    def halted(self) -> str | None:
        """Why the reconciler stopped acting on the resource (None: it acts)."""
        return self._progress.halted

    def restore_halt(self, reason: str) -> None:
        """Stay halted as before a restart (no new report)."""
        self._progress.halted = reason

    def resume(self) -> bool:
        """A person acknowledged a halt: act again, counting afresh. False if not halted."""
        progress = self._progress
        if progress.halted is None:
            return False
        progress.halted = None
        progress.foreign_at = None
        progress.correction = None
        progress.transitions.clear()
        progress.fault_until = None
        return True

    async def power_cycle(self, cause: str) -> None:
        """Verified off, a delay, verified on (never a device's own cycle)."""
        async with self._lock:
            self._refuse_if_halted()
            self._may_switch(self.clock(), 2)  # halts when it would exceed the limit
            self._refuse_if_halted()
            await self._switch(PowerState.OFF, graceful=False)
            self._switched(1)
            self.hooks.powered_off(self.name)
            self.hooks.power_action(self.name, PowerAction.CYCLE, cause)
            await self.sleep(self.timing.cycle_delay)
            await self._switch(PowerState.ON, graceful=False)
            self._switched(1)
            self._progress.starting_since = self.clock()
            self._set(ResourceState.STARTING)

    async def reset(self, cause: str) -> None:
        """Reset through the first feed that can."""
        async with self._lock:
            self._refuse_if_halted()
            feed = next(feed for feed in self.feeds if feed.capabilities.can_reset)
            await self._call(feed.reset())
            self.hooks.power_action(self.name, PowerAction.RESET, cause)
            self._progress.starting_since = self.clock()
            self._set(ResourceState.STARTING)

    # One pass

    async def _pass(self) -> float:
        previous = self.power
        seen = await self._observe()
        if seen.power is PowerState.OFF and previous in (
            PowerState.ON,
            PowerState.MIXED,
        ):
            self.hooks.powered_off(
                self.name
            )  # min_off_time starts, whoever switched it
        now = self.clock()
        progress = self._progress
        desired = self.hooks.desired_on(self.name)
        if progress.halted is not None:
            self._set(ResourceState.FAULT, progress.halted)
            return self.timing.slow_poll
        if not self._tolerate_foreign(desired, now):
            return self.timing.slow_poll
        if seen.power is (PowerState.ON if desired else PowerState.OFF):
            progress.correction = None  # nothing (left) to correct
        if progress.toggle_blocked is not None and progress.toggle_blocked != (
            desired,
            seen.power,
        ):
            progress.toggle_blocked = None
            progress.fault_until = None
        if seen.power is PowerState.UNKNOWN:
            # Never act on an unknown state. A feed that cannot be read at all (its
            # device is gone) is a fault with the reason; one that answers "unknown"
            # is unknown. An earlier fault stays visible either way.
            if self._read_error is not None:
                if self.reason != self._read_error:
                    _LOGGER.warning("%s: fault: %s", self.name, self._read_error)
                self._set(ResourceState.FAULT, self._read_error)
            elif self.state is not ResourceState.FAULT:
                self._set(ResourceState.UNKNOWN)
            return self.timing.fast_poll
        if progress.toggle_blocked is not None or (
            progress.fault_until is not None and now < progress.fault_until
        ):
            return self._wait_in_fault(seen, desired, now)
        progress.fault_until = None
        if desired:
            return await self._towards_on(seen, now)
        return await self._towards_off(seen, now)

    def _wait_in_fault(self, seen: Observation, desired: bool, now: float) -> float:
        # A fault clears by itself once the real state matches what is wanted.
        if seen.power is (PowerState.ON if desired else PowerState.OFF) and (
            not desired or seen.available
        ):
            self._progress.toggle_blocked = None
            self._progress.fault_until = None
            self._set(ResourceState.AVAILABLE if desired else ResourceState.OFF)
            return self.timing.slow_poll
        until = self._progress.fault_until
        return self.timing.slow_poll if until is None else max(0.0, until - now)

    async def _towards_on(self, seen: Observation, now: float) -> float:
        progress = self._progress
        if seen.power is PowerState.ON:
            stopping_since = progress.stopping_since
            if stopping_since is not None:
                # A graceful shutdown is under way: let it finish, then turn around.
                if now - stopping_since < self.policy.stop_timeout:
                    self._set(ResourceState.STOPPING)
                    return self.timing.fast_poll
                progress.stopping_since = None
            return self._settle_on(seen, now)
        if seen.power is PowerState.OFF:
            progress.stopping_since = None
        parent = self.hooks.parents_ready(self.name)
        if parent is not None:
            # The lab runs a pass again when the parent becomes available.
            self._set(ResourceState.OFF, f"{WAITING_FOR}{parent}")
            return self.timing.slow_poll
        wait = self.hooks.min_off_remaining(self.name)
        if wait > 0:
            self._set(ResourceState.OFF, "min_off_time")
            return wait
        if not self._may_switch(now, 1):
            return self.timing.slow_poll
        progress.asked_slot = True
        if not self.hooks.power_on_slot(self.name):
            # The lab runs a pass again when the slot is granted.
            self._set(ResourceState.OFF, WAITING_FOR_SLOT)
            return self.timing.slow_poll
        try:
            await self._switch(PowerState.ON, graceful=False)
        finally:
            progress.asked_slot = False
            self.hooks.power_on_done(self.name)
        # Verified: from now on it counts as powered (its parents stay needed).
        self._switched(1)
        self.power = PowerState.ON
        self.hooks.power_action(self.name, PowerAction.ON, self._cause())
        progress.starting_since = self.clock()
        progress.counted_failure = False
        self._set(ResourceState.STARTING)
        return self.timing.fast_poll

    def _settle_on(self, seen: Observation, now: float) -> float:
        progress = self._progress
        if seen.available:
            progress.starting_since = None
            progress.start_failures = 0
            self._set(ResourceState.AVAILABLE)
            return self.timing.slow_poll
        if progress.starting_since is None:
            progress.starting_since = now
            progress.counted_failure = False
        if now - progress.starting_since < self.policy.start_timeout:
            self._set(ResourceState.STARTING)
            return self.timing.fast_poll
        if not progress.counted_failure:
            progress.counted_failure = True
            progress.start_failures += 1
            self.hooks.start_failed(self.name, progress.start_failures)
        self._set(ResourceState.FAULT, "start_timeout")
        return self.timing.fast_poll

    async def _towards_off(self, seen: Observation, now: float) -> float:
        progress = self._progress
        progress.starting_since = None
        if seen.power is PowerState.OFF:
            progress.stopping_since = None
            self._set(ResourceState.OFF)
            return self.timing.slow_poll
        if (child := self.hooks.child_not_off(self.name)) is not None:
            # Children go down first; the lab kicks this pass when one goes off.
            self._set(ResourceState.STOPPING, f"{WAITING_FOR}{child} to go off")
            return self.timing.slow_poll
        graceful = self.policy.graceful_off and all(
            feed.capabilities.can_shutdown_gracefully for feed in self.feeds
        )
        if progress.stopping_since is None and not self._may_switch(now, 1):
            return self.timing.slow_poll
        if progress.stopping_since is None and graceful:
            await self._switch_feeds(PowerState.OFF, graceful=True, verify=False)
            self._switched(1)
            progress.stopping_since = now
            self.hooks.power_action(self.name, PowerAction.GRACEFUL_OFF, self._cause())
            self._set(ResourceState.STOPPING)
            return self.timing.fast_poll
        if progress.stopping_since is not None:
            if now - progress.stopping_since < self.policy.stop_timeout:
                self._set(ResourceState.STOPPING)
                return self.timing.fast_poll
            action = PowerAction.FORCED_OFF
        else:
            action = PowerAction.OFF
        self._set(ResourceState.STOPPING)
        await self._switch(PowerState.OFF, graceful=False)
        if action is PowerAction.OFF:
            self._switched(1)  # a forced off ends the shutdown counted already
        progress.stopping_since = None
        self.power = PowerState.OFF
        self.hooks.power_action(self.name, action, self._cause())
        self.hooks.powered_off(self.name)
        self._set(ResourceState.OFF)
        return self.timing.slow_poll

    # Observation

    async def _observe(self) -> Observation:
        self._read_error = None
        states = [await self._read(feed) for feed in self.feeds]
        self._changed = []
        for index, (feed, state) in enumerate(zip(self.feeds, states, strict=True)):
            if state is PowerState.UNKNOWN or not feed.capabilities.can_read_state:
                continue  # a feed that cannot read power (Wake-on-LAN) sees no change
            if self._known.get(index, state) is not state:
                self._changed.append((feed.description, state))
            self._known[index] = state
        power = _combine(states)
        available: bool | None = None
        if power is PowerState.ON:
            available = True if self.checker is None else await self._check()
        if power != self.power or available != self.available:
            self.power = power
            self.available = available
            self.hooks.state_changed(self.name)
        return Observation(power, available)

    async def _read(self, feed: Switcher) -> PowerState:
        try:
            return await self._call(feed.read_state())
        except ConfigurationSwitchError:
            raise
        except SwitchError as err:
            _LOGGER.debug("%s: cannot read %s: %s", self.name, feed.description, err)
            if self._read_error is None:
                self._read_error = f"{feed.description}: {err or type(err).__name__}"
            return PowerState.UNKNOWN

    async def _check(self) -> bool | None:
        assert self.checker is not None
        try:
            return await self._call(self.checker.is_available())
        except ConfigurationSwitchError:
            raise
        except SwitchError:
            return None

    # Actions

    async def _switch(self, target: PowerState, *, graceful: bool) -> None:
        await self._switch_feeds(target, graceful=graceful, verify=True)

    async def _switch_feeds(
        self, target: PowerState, *, graceful: bool, verify: bool
    ) -> None:
        for index, feed in enumerate(self.feeds):
            current = await self._read(feed)
            if current is not target:
                if feed.capabilities.is_toggle:
                    await self._press(
                        feed, current, target, graceful=graceful, verify=verify
                    )
                else:
                    await self._command(feed, target, graceful=graceful, verify=verify)
            # idempotent: already there, nothing was sent
            if verify or current is target:
                self._known[index] = target  # labpower's own change, seen

    async def _press(
        self,
        feed: Switcher,
        current: PowerState,
        target: PowerState,
        *,
        graceful: bool,
        verify: bool,
    ) -> None:
        if current is PowerState.UNKNOWN:
            raise SwitchError(f"{feed.description}: state unknown, not pressing")
        # A toggle is sent once: a retry could undo a press that did land.
        await self._call(self._send(feed, target, graceful=graceful))
        if verify and not await self._verify(feed, target):
            self._progress.toggle_blocked = (
                self.hooks.desired_on(self.name),
                self.power,
            )
            raise VerificationError(
                f"{feed.description} was pressed but did not turn {target.value}"
            )

    async def _command(
        self, feed: Switcher, target: PowerState, *, graceful: bool, verify: bool
    ) -> None:
        error: SwitchError | None = None
        for attempt in range(self.timing.attempts):
            if attempt:
                backoff = self.timing.retry_backoff
                await self.sleep(backoff[min(attempt - 1, len(backoff) - 1)])
            try:
                await self._call(self._send(feed, target, graceful=graceful))
            except ConfigurationSwitchError, ForeignSwitchError:
                raise
            except SwitchError as err:
                error = err
                continue
            if not verify or await self._verify(feed, target):
                return
            error = VerificationError(
                f"{feed.description} acknowledged but did not turn {target.value}"
            )
        assert error is not None
        raise error

    @staticmethod
    def _send(feed: Switcher, target: PowerState, *, graceful: bool) -> Awaitable[None]:
        if target is PowerState.ON:
            return feed.turn_on()
        return feed.turn_off(graceful=graceful)

    async def _verify(self, feed: Switcher, target: PowerState) -> bool:
        # Counted in time slept, not by the clock: the bound holds whatever the clock does.
        backoff = iter(self.timing.verify_backoff)
        waited = delay = 0.0
        while True:
            if await self._read(feed) is target:
                return True
            delay = next(backoff, delay)
            if waited + delay > self.timing.verify_timeout:
                return False
            await self.sleep(delay)
            waited += delay

    async def _call[T](self, awaitable: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timing.step_timeout):
                return await awaitable
        except TimeoutError as err:
            raise SwitchError(
                f"no answer within {self.timing.step_timeout:g} s"
            ) from err

    # Guards

    def _tolerate_foreign(self, desired: bool, now: float) -> bool:
        """Correct a feed something else switched once; halt (False) on a second time."""
        progress = self._progress
        wanted = PowerState.ON if desired else PowerState.OFF
        foreign = [
            description
            for description, state in self._changed
            if state is not wanted
            # labpower asked the machine to shut down: its going off is no surprise
            and not (state is PowerState.OFF and progress.stopping_since is not None)
        ]
        return not foreign or self._foreign(foreign, now)

    def _switched_back(self, err: ForeignSwitchError) -> float:
        """A switch undone at once by something else: a foreign change like any other."""
        self._switched(1)  # it did switch, however briefly
        if err.target is PowerState.ON:
            self.hooks.powered_off(self.name)  # min_off_time applies to the correction
        if not self._foreign([err.feed], self.clock()):
            return self.timing.slow_poll
        return 0.0

    def _foreign(self, foreign: list[str], now: float) -> bool:
        """Something else switched these feeds: correct once, halt (False) if again."""
        progress = self._progress
        reason = f"switched by something else: {', '.join(foreign)}"
        last, progress.foreign_at = progress.foreign_at, now
        if last is not None and now - last < self.timing.guard_window:
            self._halt(reason)
            return False
        _LOGGER.warning("%s: %s; correcting it once", self.name, reason)
        progress.correction = (
            f"correcting {', '.join(foreign)}, switched by something else"
        )
        return True

    def _may_switch(self, now: float, count: int) -> bool:
        """Whether `count` more power changes stay within the limit; else halt (False)."""
        recent = self._progress.transitions
        while recent and now - recent[0] >= self.timing.guard_window:
            recent.popleft()
        limit = self.policy.max_transitions
        if len(recent) + count <= limit:
            return True
        self._halt(
            f"more than {limit} power changes within "
            f"{self.timing.guard_window / 60:g} minutes: stopped to protect the hardware"
        )
        return False

    def _switched(self, count: int) -> None:
        """Count power changes made (verified, or a shutdown asked for)."""
        self._progress.transitions.extend([self.clock()] * count)

    def _cause(self) -> str:
        """Who caused the action taken now: a correction, else the desired state's cause."""
        correction, self._progress.correction = self._progress.correction, None
        return correction or self.hooks.cause(self.name)

    def _halt(self, reason: str) -> None:
        progress = self._progress
        progress.halted = reason
        progress.correction = None
        _LOGGER.warning(
            "%s: %s; labpower stops switching it until a person acknowledges it",
            self.name,
            reason,
        )
        self._set(ResourceState.FAULT, reason)
        self.hooks.halted(self.name, reason)

    def _refuse_if_halted(self) -> None:
        if (reason := self._progress.halted) is not None:
            raise ResourceHaltedError(self.name, reason)

    # State

    def _fault(self, reason: str) -> float:
        if self.state is not ResourceState.FAULT or self.reason != reason:
            _LOGGER.warning("%s: fault: %s", self.name, reason)  # once, not every retry
        self._progress.fault_until = self.clock() + self.timing.fault_retry
        self._set(ResourceState.FAULT, reason)
        return self.timing.fault_retry

    def _set(self, state: ResourceState, reason: str | None = None) -> None:
        if state is ResourceState.FAULT:
            self._progress.had_fault = True
        elif self._progress.had_fault and state in _SETTLED:
            self._progress.had_fault = False
            _LOGGER.info("%s: recovered, %s", self.name, state.value)
            self.hooks.recovered(self.name)
        if state is not self.state or reason != self.reason:
            self.state = state
            self.reason = reason
            self.hooks.state_changed(self.name)


_SETTLED = frozenset({ResourceState.AVAILABLE, ResourceState.OFF})


def _combine(states: list[PowerState]) -> PowerState:
    if not states or PowerState.UNKNOWN in states:
        return PowerState.UNKNOWN
    first = states[0]
    if all(state is first for state in states):
        return first
    return PowerState.MIXED
