"""Stand-ins for hardware (the only thing the core tests fake) and a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from custom_components.labpower.core.model import PowerState
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    SwitcherCapabilities,
    TransientSwitchError,
)


class FakeClock:
    """Epoch seconds that move only when told; sleeping advances them."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        """Start at a fixed time."""
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Sleep by moving time forward."""
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeFeed:
    """A power feed: a plug, or a front-panel button when toggle=True."""

    state: PowerState = PowerState.OFF
    toggle: bool = False
    graceful: bool = False
    resettable: bool = False
    transient_failures: int = 0  # the next N commands fail
    config_error: bool = False
    ignores_commands: bool = False  # acknowledges, state does not follow
    unreadable: bool = False
    graceful_shuts_down: bool = True
    commands: list[str] = field(default_factory=list)
    name: str = "feed"

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """What the fake declares."""
        return SwitcherCapabilities(
            is_toggle=self.toggle,
            can_reset=self.resettable,
            can_shutdown_gracefully=self.graceful,
        )

    @property
    def description(self) -> str:
        """Its name."""
        return self.name

    async def read_state(self) -> PowerState:
        """The state, or an error as configured."""
        if self.config_error:
            raise ConfigurationSwitchError(
                "wrong password", issue="switcher_misconfigured"
            )
        if self.unreadable:
            return PowerState.UNKNOWN
        return self.state

    def _fail(self) -> None:
        if self.config_error:
            raise ConfigurationSwitchError(
                "wrong password", issue="switcher_misconfigured"
            )
        if self.transient_failures:
            self.transient_failures -= 1
            raise TransientSwitchError("connection refused")

    def _apply(self, target: PowerState) -> None:
        if self.ignores_commands:
            return
        if self.toggle:
            # A press flips whatever the machine is in.
            self.state = (
                PowerState.OFF if self.state is PowerState.ON else PowerState.ON
            )
        else:
            self.state = target

    async def turn_on(self) -> None:
        """Record and apply."""
        self._fail()
        self.commands.append("on")
        self._apply(PowerState.ON)

    async def turn_off(self, *, graceful: bool) -> None:
        """Record and apply (a graceful off may be ignored by the OS)."""
        self._fail()
        self.commands.append("graceful_off" if graceful else "off")
        if graceful and not self.graceful_shuts_down:
            return
        self._apply(PowerState.OFF)

    async def reset(self) -> None:
        """Record."""
        self._fail()
        self.commands.append("reset")


@dataclass
class FakeChecker:
    """Answers what it is told."""

    answer: bool | None = True
    checks: int = 0

    @property
    def description(self) -> str:
        """Fixed."""
        return "fake check"

    async def is_available(self) -> bool | None:
        """The configured answer."""
        self.checks += 1
        return self.answer
