"""Stand-ins for hardware (the only thing the core tests fake) and a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
import heapq
from typing import Any

from custom_components.labpower.core.model import PowerState
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    ForeignSwitchError,
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
    reads_power: bool = True  # False: its state is inferred (Wake-on-LAN from a check)
    undone: bool = False  # something else switches it back before the command returns
    commands: list[str] = field(default_factory=list)
    name: str = "feed"
    stagger_group: str | None = None  # the PDU it hangs on, for staggered power-on
    # When set, every command is also logged as (clock time, name, command).
    log: list[tuple[float, str, str]] | None = None
    clock: FakeClock | None = None

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """What the fake declares."""
        return SwitcherCapabilities(
            can_read_state=self.reads_power,
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
        if self.undone:
            raise ForeignSwitchError(self.name, target)  # and the state stays
        if self.toggle:
            # A press flips whatever the machine is in.
            self.state = (
                PowerState.OFF if self.state is PowerState.ON else PowerState.ON
            )
        else:
            self.state = target

    def _record(self, command: str) -> None:
        self.commands.append(command)
        if self.log is not None:
            assert self.clock is not None
            self.log.append((self.clock.now, self.name, command))

    async def turn_on(self) -> None:
        """Record and apply."""
        self._fail()
        self._record("on")
        self._apply(PowerState.ON)

    async def turn_off(self, *, graceful: bool) -> None:
        """Record and apply (a graceful off may be ignored by the OS)."""
        self._fail()
        self._record("graceful_off" if graceful else "off")
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


class FakeScheduler:
    """The lab's timers on the fake clock: they fire only when the test advances time.

    Passes run as real tasks on the test's loop; `settle` waits until none is left.
    """

    def __init__(self, clock: FakeClock) -> None:
        """No timer yet."""
        self.clock = clock
        self._timers: list[tuple[float, int, list[Any]]] = []
        self._seq = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def call_later(
        self, delay: float, action: Callable[[], None]
    ) -> Callable[[], None]:
        """Run `action` once the clock reaches now + delay."""
        entry: list[Any] = [action]
        self._seq += 1
        heapq.heappush(self._timers, (self.clock.now + delay, self._seq, entry))
        return entry.clear

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run the pass as a task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def settle(self) -> None:
        """Until every pass (and every pass they started) has ended."""
        await asyncio.sleep(0)
        while self.tasks:
            await asyncio.wait(list(self.tasks))

    async def advance(self, seconds: float) -> None:
        """Let time pass: fire every timer due meanwhile, in order, settling after each."""
        await self.settle()
        until = self.clock.now + seconds
        while self._timers and self._timers[0][0] <= until:
            due, _, entry = heapq.heappop(self._timers)
            if not entry:
                continue  # cancelled
            self.clock.now = max(self.clock.now, due)
            entry[0]()
            await self.settle()
        self.clock.now = max(self.clock.now, until)
