"""Staggered power-on: at most so many machines start at once, lab-wide and per group.

Switching on many machines together draws their inrush current together; a PDU or a
circuit breaker does not like that. The gate hands out power-on slots: a slot is held from
the moment it is granted, while the switch-on command and its verification run, and for
`spacing` seconds after them. Waiters are served first come, first served; a waiter held
back only by the limit of its own group (one PDU) does not hold back waiters of other
groups.

The gate does not block: a resource asks for a slot in its reconciler pass; when none is
free it is queued, its pass ends, and `on_grant` is called once its slot is granted (the
lab then runs a pass of that resource again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .model import InvalidStaggerError

type Cancel = Callable[[], None]
type CallLater = Callable[[float, Callable[[], None]], Cancel]


@dataclass(frozen=True, slots=True)
class StaggerPolicy:
    """Limits on simultaneous power-ons; None is unlimited. Spacing in seconds."""

    max_parallel: int | None = None  # lab-wide
    per_group: int | None = None  # every group (PDU) that has no limit of its own
    group_limits: Mapping[str, int] = field(default_factory=dict)
    spacing: float = 0.0

    def __post_init__(self) -> None:
        """Refuse limits below 1 and negative spacing."""
        limits = {"max_parallel": self.max_parallel, "per_group": self.per_group}
        limits.update(self.group_limits)
        for what, limit in limits.items():
            if limit is not None and limit < 1:
                raise InvalidStaggerError(f"{what} must be at least 1, not {limit}")
        if not self.spacing >= 0:  # also refuses NaN
            raise InvalidStaggerError(f"spacing must not be negative: {self.spacing}")

    def group_limit(self, group: str) -> int | None:
        """The limit of one group."""
        return self.group_limits.get(group, self.per_group)


class PowerOnGate:
    """Hands out power-on slots in order of asking, within the policy's limits."""

    def __init__(
        self,
        policy: StaggerPolicy | None,
        *,
        call_later: CallLater,
        on_grant: Callable[[str], None],
    ) -> None:
        """`call_later` runs the end of a spacing; `on_grant` tells a waiter its turn came."""
        self._policy = policy or StaggerPolicy()
        self._call_later = call_later
        self._on_grant = on_grant
        self._queue: dict[str, frozenset[str]] = {}  # waiters, oldest first
        self._granted: dict[str, frozenset[str]] = {}
        self._in_use = 0  # granted slots plus slots still in their spacing
        self._group_in_use: dict[str, int] = {}
        self._spacing_timers: set[Cancel] = set()

    @property
    def policy(self) -> StaggerPolicy:
        """The limits in force."""
        return self._policy

    def set_policy(self, policy: StaggerPolicy | None) -> None:
        """Change the limits; slots in use stay in use, waiters may go now."""
        self._policy = policy or StaggerPolicy()
        self._pump()

    @property
    def in_use(self) -> int:
        """Slots granted or still in their spacing."""
        return self._in_use

    def waiting(self) -> list[str]:
        """The resources queued for a slot, oldest first."""
        return list(self._queue)

    def request(self, resource: str, groups: frozenset[str] = frozenset()) -> bool:
        """Ask for a slot: True when `resource` holds one, False when it is queued."""
        if resource in self._granted:
            return True
        if resource in self._queue:
            return False
        # After every change the queue holds only waiters that do not fit, so one that
        # fits now does not overtake anybody it competes with.
        if self._fits(groups):
            self._grant(resource, groups)
            return True
        self._queue[resource] = groups
        return False

    def done(self, resource: str) -> None:
        """The switch-on ran (verified or failed): the slot is freed after the spacing."""
        groups = self._granted.pop(resource, None)
        if groups is None:
            return
        spacing = self._policy.spacing
        if spacing <= 0:
            self._free(groups)
            return
        cancel: Cancel | None = None

        def end() -> None:
            if cancel is not None:
                self._spacing_timers.discard(cancel)
            self._free(groups)

        cancel = self._call_later(spacing, end)
        self._spacing_timers.add(cancel)

    def withdraw(self, resource: str) -> None:
        """The resource no longer wants to switch on: leave the queue, or free the slot.

        A slot granted but not used is freed at once (nothing was switched).
        """
        if self._queue.pop(resource, None) is not None:
            return
        groups = self._granted.pop(resource, None)
        if groups is not None:
            self._free(groups)

    def reset(self) -> None:
        """Forget every waiter and slot (the lab stopped)."""
        for cancel in self._spacing_timers:
            cancel()
        self._spacing_timers.clear()
        self._queue.clear()
        self._granted.clear()
        self._in_use = 0
        self._group_in_use.clear()

    # Internals

    def _fits(self, groups: frozenset[str]) -> bool:
        policy = self._policy
        if policy.max_parallel is not None and self._in_use >= policy.max_parallel:
            return False
        for group in groups:
            limit = policy.group_limit(group)
            if limit is not None and self._group_in_use.get(group, 0) >= limit:
                return False
        return True

    def _grant(self, resource: str, groups: frozenset[str]) -> None:
        self._granted[resource] = groups
        self._in_use += 1
        for group in groups:
            self._group_in_use[group] = self._group_in_use.get(group, 0) + 1

    def _free(self, groups: frozenset[str]) -> None:
        self._in_use -= 1
        for group in groups:
            left = self._group_in_use[group] - 1
            if left:
                self._group_in_use[group] = left
            else:
                del self._group_in_use[group]
        self._pump()

    def _pump(self) -> None:
        granted: list[str] = []
        max_parallel = self._policy.max_parallel
        for resource, groups in self._queue.items():
            if max_parallel is not None and self._in_use >= max_parallel:
                break
            if self._fits(groups):
                self._grant(resource, groups)
                granted.append(resource)
        for resource in granted:
            del self._queue[resource]
        for resource in granted:
            self._on_grant(resource)
