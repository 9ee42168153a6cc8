"""PDU units: the client protocol, the unit that batches its requests, an outlet switcher.

A PDU unit is one device with N outlets. Its requests go strictly one at a time (some units
block an IP that talks too fast); one status read serves every outlet that asks while it is
under way or fresh; commands for several outlets that arrive together go out as one request
where the protocol allows it. Different units are different objects and run in parallel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
import math
import time
from typing import Any, Protocol

from ..core.model import PowerState
from ..core.switching import (
    ConfigurationSwitchError,
    SwitcherCapabilities,
    TransientSwitchError,
)

PDU_AUTH = "pdu_auth"
PDU_READ_ONLY = "pdu_read_only"
PDU_LOGIN_PAGE = "pdu_login_page"


class PduAuthError(ConfigurationSwitchError):
    """The unit refused the credentials (HTTP 401, an unknown SNMP community/user)."""

    def __init__(self, message: str) -> None:
        """Point the repair issue at the credentials."""
        super().__init__(message, issue=PDU_AUTH)


class PduReadOnlyError(ConfigurationSwitchError):
    """The account may read but not switch (NETIO 403, SNMP noAccess on a set)."""

    def __init__(self, message: str) -> None:
        """Point the repair issue at the write credentials."""
        super().__init__(message, issue=PDU_READ_ONLY)


class PduLoginPageError(ConfigurationSwitchError):
    """The unit answers its web login page: it wants a session login, not HTTP Basic."""

    def __init__(self, message: str) -> None:
        """Point the repair issue at the unit's authentication setting."""
        super().__init__(message, issue=PDU_LOGIN_PAGE)


class PduUnreachableError(TransientSwitchError):
    """No answer, a refused connection, a timeout, a 5xx: worth retrying."""


class PduProtocolError(TransientSwitchError):
    """The unit answered something we cannot read (malformed XML/JSON, missing fields)."""


@dataclass(frozen=True, slots=True)
class OutletStatus:
    """One outlet as the unit reports it; measurements where the unit has them."""

    state: PowerState
    name: str | None = None
    label: str | None = None  # how the unit numbers it, where not plainly ("2:1")
    current_a: float | None = None
    power_w: float | None = None
    energy_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """One status read of a unit: every outlet (1-based numbers) and unit totals."""

    outlets: dict[int, OutletStatus]
    current_a: float | None = None
    power_w: float | None = None
    energy_kwh: float | None = None
    name: str | None = None
    model: str | None = None
    serial: str | None = None

    def state_of(self, outlet: int) -> PowerState:
        """One outlet's state; UNKNOWN if the unit did not report that outlet."""
        found = self.outlets.get(outlet)
        return PowerState.UNKNOWN if found is None else found.state


class PduClient(Protocol):
    """One PDU unit's protocol. The caller makes one call at a time."""

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain ("netio 10.0.0.7")."""

    async def read_status(self) -> UnitStatus:
        """Read every outlet (and the measurements) in as few requests as possible."""

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """Switch these outlets (1-based) on or off, in one request where possible."""

    async def close(self) -> None:
        """Release sessions and sockets."""


type Clock = Callable[[], float]
type UnitListener = Callable[[UnitStatus | Exception], None]


@dataclass(slots=True)
class _Read:
    started: float
    future: asyncio.Future[UnitStatus]


@dataclass(slots=True)
class PduUnit:
    """A unit: its client behind a FIFO lock, with shared status reads and batched commands."""

    client: PduClient
    max_age: float = 1.0  # a status this fresh serves every outlet's read
    clock: Clock = time.monotonic
    listener: UnitListener | None = None  # told every status read and failed request
    requests: int = 0  # requests made to the unit (for benchmarks and diagnostics)
    status_reads: int = 0
    last: UnitStatus | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _read: _Read | None = None
    _last_started: float = float("-inf")
    _commanded_at: float = float("-inf")
    _pending: dict[bool, dict[int, asyncio.Future[None]]] = field(
        default_factory=lambda: {True: {}, False: {}}
    )
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def description(self) -> str:
        """The client's description."""
        return self.client.description

    async def status(self, max_age: float | None = None) -> UnitStatus:
        """A status no older than max_age (default: the unit's), read after any command.

        One status read serves every outlet that asks while it is under way or fresh.
        """
        now = self.clock()
        if max_age is None:
            max_age = self.max_age
        if (
            self.last is not None
            and self._last_started >= self._commanded_at
            and now - self._last_started <= max_age
        ):
            return self.last
        read = self._read
        if read is None or read.started < self._commanded_at:
            # Until it holds the lock, a read counts as starting after any command.
            read = _Read(math.inf, asyncio.get_running_loop().create_future())
            self._read = read
            self._spawn(self._do_read(read))
        return await _shared(read.future)

    async def _do_read(self, read: _Read) -> None:
        try:
            async with self._lock:
                read.started = self.clock()  # what the read saw is from this moment
                self.requests += 1
                self.status_reads += 1
                status = await self.client.read_status()
        except BaseException as err:  # noqa: BLE001 - handed to every waiter
            if not read.future.done():
                read.future.set_exception(err)
            read.future.exception()  # retrieved: no "never retrieved" warning
            self._last_started = -math.inf  # a failed read ends the cached status
            self._tell(err)
        else:
            self.last = status
            self._last_started = read.started
            read.future.set_result(status)
            self._tell(status)
        finally:
            if self._read is read:
                self._read = None

    async def outlet_state(self, outlet: int) -> PowerState:
        """One outlet's state from a shared status read; UNKNOWN if the unit lacks it."""
        return (await self.status()).state_of(outlet)

    async def switch(self, outlet: int, *, on: bool) -> None:
        """Switch one outlet; commands queued together go out in one request."""
        pending = self._pending[on]
        future = pending.get(outlet)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            pending[outlet] = future
            superseded = self._pending[not on].pop(outlet, None)
            if superseded is not None and not superseded.done():
                superseded.set_exception(
                    TransientSwitchError(
                        f"{self.description}: outlet {outlet} was switched "
                        f"{'on' if on else 'off'} meanwhile"
                    )
                )
                superseded.exception()  # retrieved: no warning when nobody awaits it
            if len(pending) == 1:
                self._spawn(self._send(on))
        await _shared(future)

    async def _send(self, on: bool) -> None:
        async with self._lock:
            batch = self._pending[on]
            self._pending[on] = {}
            if not batch:
                return
            try:
                self.requests += 1
                await self.client.set_outlets(sorted(batch), on)
            except BaseException as err:  # noqa: BLE001 - handed to every waiter
                for future in batch.values():
                    if not future.done():
                        future.set_exception(err)
                        future.exception()
                self._tell(err)
            else:
                for future in batch.values():
                    if not future.done():
                        future.set_result(None)
            finally:
                self._commanded_at = self.clock()

    def _tell(self, result: UnitStatus | BaseException) -> None:
        if self.listener is not None and isinstance(result, (UnitStatus, Exception)):
            self.listener(result)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close the client."""
        await self.client.close()


class PduOutletSwitcher:
    """One outlet of a unit as a resource's feed: readable, commanded, cycle by the core."""

    _capabilities = SwitcherCapabilities(
        can_read_state=True,
        is_toggle=False,
        can_cycle=True,
        can_reset=False,
        can_shutdown_gracefully=False,
    )

    def __init__(self, unit: PduUnit, outlet: int, unit_name: str) -> None:
        """Switch `outlet` (1-based) of `unit`."""
        self.unit = unit
        self.outlet = outlet
        self.unit_name = unit_name
        self.stagger_group: str | None = unit_name  # per-unit power-on limit

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """What an outlet can do."""
        return self._capabilities

    @property
    def description(self) -> str:
        """`unit:outletN`, as the power chain shows it."""
        return f"{self.unit_name}:outlet{self.outlet}"

    async def read_state(self) -> PowerState:
        """The outlet's state from the unit's shared status read."""
        return await self.unit.outlet_state(self.outlet)

    async def turn_on(self) -> None:
        """Switch the outlet on."""
        await self.unit.switch(self.outlet, on=True)

    async def turn_off(self, *, graceful: bool) -> None:
        """Switch the outlet off (an outlet cannot shut a machine down gracefully)."""
        await self.unit.switch(self.outlet, on=False)

    async def reset(self) -> None:
        """Outlets have no reset line (can_reset is False)."""
        raise ConfigurationSwitchError(f"{self.description} cannot reset")


class UnusableOutlet(PduOutletSwitcher):
    """An outlet a resource cannot use: its unit is not configured.

    Every call is a configuration error: the resource goes to fault with the reason and
    nothing is switched.
    """

    def __init__(self, outlet: str, reason: str) -> None:
        """Remember what was asked for ("pdu1:3") and why it cannot be used."""
        unit_name, _, number = outlet.rpartition(":")
        self.unit_name = unit_name
        self.outlet = int(number) if number.isdigit() else 0
        self.stagger_group = None
        self.reason = reason

    async def read_state(self) -> PowerState:
        """Refuse: the outlet cannot be used."""
        raise ConfigurationSwitchError(f"{self.description}: {self.reason}")

    async def turn_on(self) -> None:
        """Refuse: the outlet cannot be used."""
        await self.read_state()

    async def turn_off(self, *, graceful: bool) -> None:
        """Refuse: the outlet cannot be used."""
        await self.read_state()


async def _shared[T](future: asyncio.Future[T]) -> T:
    """Wait for a future other callers share; a cancelled caller leaves it running.

    Unlike asyncio.shield, a failure after every caller went away (Home Assistant
    stopping during a read) is not reported as an exception nobody handled.
    """
    await asyncio.wait((future,))
    return future.result()
