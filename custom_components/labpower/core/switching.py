"""The protocols every power switcher and availability checker implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .model import PowerState


@dataclass(frozen=True, slots=True)
class SwitcherCapabilities:
    """What a switcher can do: declared by the driver, never guessed."""

    can_read_state: bool = True
    is_toggle: bool = False
    can_cycle: bool = True
    can_reset: bool = False
    can_shutdown_gracefully: bool = False


class SwitchError(Exception):
    """A switcher or checker failed; transient unless a subclass says otherwise."""


class TransientSwitchError(SwitchError):
    """Worth retrying with backoff: timeouts, refused connections, busy devices."""


class ConfigurationSwitchError(SwitchError):
    """Retrying cannot help (missing entity, wrong credentials): fail fast, repair."""

    def __init__(self, message: str, *, issue: str = "switcher_misconfigured") -> None:
        """Keep the repair issue kind this error should raise."""
        super().__init__(message)
        self.issue = issue


class ForeignSwitchError(SwitchError):
    """The feed reached the state asked for and something else switched it back at once.

    Retrying would fight whatever did it: the reconciler treats it as a foreign change.
    """

    def __init__(self, feed: str, target: PowerState) -> None:
        """Name the feed and the state it was switched back from."""
        super().__init__(f"{feed} was switched back by something else")
        self.feed = feed
        self.target = target


class Switcher(Protocol):
    """Switches one feed of a resource.

    Optional: a `stagger_group: str | None` attribute names the group whose power-on
    limit this feed counts against (its PDU unit, or its circuit); the lab reads it with
    getattr, so switchers without it count against the lab-wide limit only.
    """

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """What this switcher can do."""

    @property
    def description(self) -> str:
        """A short human description for logs and the power chain."""

    async def read_state(self) -> PowerState:
        """Read the feed's real state; UNKNOWN when it cannot be told."""

    async def turn_on(self) -> None:
        """Apply power (a toggle presses once: the caller checked the state)."""

    async def turn_off(self, *, graceful: bool) -> None:
        """Remove power; graceful asks the machine to shut down first."""

    async def reset(self) -> None:
        """Reset the machine without removing power (if can_reset)."""


class AvailabilityChecker(Protocol):
    """Tells whether a powered machine is really reachable."""

    @property
    def description(self) -> str:
        """A short human description for logs and diagnostics."""

    async def is_available(self) -> bool | None:
        """True reachable, False not reachable, None cannot tell."""
