"""The lab's side of its reconcilers: what a resource's reconciler calls back.

The token API (acquire, renew, release, power off; what actions and the REST API
call) is `Lab`; this is the other half, kept apart so neither reads as the other.
The hooks are the lab's own: they read and change its dependency counts, power-on
gate and passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import EventKind
from .model import PowerAction, PowerState, ResourceState
from .reconciler import ReconcilerHooks
from .switching import ConfigurationSwitchError

if TYPE_CHECKING:
    from .lab import Lab


class LabHooks(ReconcilerHooks):
    """The reconcilers' hooks of one lab."""

    def __init__(self, lab: Lab) -> None:
        """Hooks that act on `lab`."""
        self.lab = lab

    def desired_on(self, resource: str) -> bool:
        """Whether a resource should be on (the lab's answer)."""
        return self.lab.desired_on(resource)

    def cause(self, resource: str) -> str:
        """Who last changed what a resource should be."""
        return self.lab.ledger.last_cause(resource)

    def min_off_remaining(self, resource: str) -> float:
        """Seconds until a resource may be switched on again."""
        return self.lab.ledger.min_off_remaining(resource)

    def state_changed(self, resource: str) -> None:
        """Tell listeners, wake waiters; update what it needs, kick children it unblocks."""
        self.lab._emit(EventKind.STATE_CHANGED, resource)
        off = self.lab._resources[resource].reconciler.power is PowerState.OFF
        if off and self.lab.ledger.off_requested(resource):
            self._off_seen(resource)
        if off and self.lab.ledger.is_kept(resource):
            # Kept as found after a lost store: a machine seen off holds nothing.
            self.lab.ledger.forget_kept(resource)
            self.lab._emit(EventKind.PERSIST)
        self.lab._wake_waiters(resource)
        if self.lab._starting:
            return
        self.lab._propagate((resource,))
        if off:
            # A parent that waited for its children to go off may go now.
            for parent in self.lab._parents.get(resource, ()):
                self.lab._kick(self.lab._resources[parent])
        children = self.lab._children.get(resource)
        if (
            children
            and self.lab._resources[resource].reconciler.state
            is ResourceState.AVAILABLE
        ):
            for child in children:
                managed = self.lab._resources[child]
                if managed.reconciler.power is not PowerState.ON and (
                    self.lab.ledger.wants_on(child)
                ):
                    self.lab._kick(managed)

    def child_not_off(self, resource: str) -> str | None:
        """A child whose power is not known to be off (on, mixed or unknown), or None."""
        for child in self.lab._children.get(resource, ()):
            if self.lab._resources[child].reconciler.power is not PowerState.OFF:
                return child
        return None

    def parents_ready(self, resource: str) -> str | None:
        """None when every parent is available, else the first parent that is not."""
        for parent in self.lab._parents.get(resource, ()):
            if (
                self.lab._resources[parent].reconciler.state
                is not ResourceState.AVAILABLE
            ):
                return parent
        return None

    def power_on_slot(self, resource: str) -> bool:
        """Ask the power-on gate for a slot: True granted, False queued."""
        return self.lab._gate.request(resource, self.lab._resources[resource].groups)

    def power_on_done(self, resource: str) -> None:
        """The switch-on ran: its slot is freed after the spacing."""
        self.lab._gate.done(resource)

    def power_on_withdrawn(self, resource: str) -> None:
        """Leave the gate's queue (or free an unused slot)."""
        self.lab._gate.withdraw(resource)

    def pass_finished(self, resource: str) -> None:
        """Re-derive what the resource needs: its off delay may have run out."""
        if not self.lab._starting:
            self.lab._propagate((resource,))

    def power_action(self, resource: str, action: PowerAction, cause: str) -> None:
        """Report a verified power action."""
        self.lab._emit(EventKind.POWER_CHANGED, resource, action=action, cause=cause)

    def powered_off(self, resource: str) -> None:
        """Start min_off_time; parents it no longer needs may start their off delay."""
        requested = self.lab.ledger.off_requested(resource)
        self.lab.ledger.note_off(resource)
        self.lab._emit(EventKind.PERSIST)
        if requested:
            self._off_seen(resource)
        if not self.lab._starting:
            self.lab._propagate((resource,))

    def _off_seen(self, resource: str) -> None:
        """A requested off is done: whoever acquired meanwhile has it powered on."""
        self.lab.ledger.clear_off_request(resource)
        self.lab._emit(EventKind.PERSIST)
        self.lab._emit(EventKind.HOLDERS_CHANGED, resource)
        if self.lab.ledger.wants_on(resource):
            self.lab._kick(self.lab._resources[resource])

    def config_error(self, resource: str, error: ConfigurationSwitchError) -> None:
        """Report a configuration error for a repair issue."""
        self.lab._emit(
            EventKind.CONFIG_ERROR, resource, detail=str(error), cause=error.issue
        )

    def start_failed(self, resource: str, failures: int) -> None:
        """Report a resource that did not become available in time."""
        self.lab._emit(EventKind.START_FAILED, resource, count=failures)

    def recovered(self, resource: str) -> None:
        """Report a resource that left its fault."""
        self.lab._emit(EventKind.RECOVERED, resource)

    def halted(self, resource: str, reason: str) -> None:
        """Remember (across restarts) and report that labpower stopped switching it."""
        self.lab.ledger.set_halted(resource, reason)
        self.lab._emit(EventKind.HALTED, resource, detail=reason)
        self.lab._emit(EventKind.PERSIST)
