"""Wake-on-LAN on, SSH shutdown off: a switcher for PCs with nothing but a network card."""

from __future__ import annotations

from collections.abc import Callable
import logging
import time

from ..core.model import PowerState
from ..core.switching import (
    AvailabilityChecker,
    SwitcherCapabilities,
    SwitchError,
    TransientSwitchError,
)
from .ssh import SshShutdown
from .wol import format_mac, send_magic_packet

_LOGGER = logging.getLogger(__name__)

DEFAULT_WAKE_GRACE = 300.0


class WolSshSwitcher:
    """Powers a machine on with a magic packet and off with an SSH command.

    Wake-on-LAN cannot report state, so the state is the availability checker's answer:
    reachable is on, unreachable is off, "cannot tell" is unknown. On some network cards
    the magic packet toggles power, so a packet is only ever sent when the checker says
    the host is not reachable (known off), and at most once per `wake_grace` seconds:
    for that long after a packet the host counts as on (booting) even before it answers,
    so the core's read-back verification passes and no second packet can switch a
    booting machine off again. A host that has not answered when the grace ends is off
    again and may get another packet. There is no forced off.
    """

    _capabilities = SwitcherCapabilities(
        can_read_state=False,  # the state comes from the availability check
        is_toggle=False,  # turn_on guards the packet itself: sent only when known off
        can_cycle=False,
        can_reset=False,
        can_shutdown_gracefully=True,
    )

    def __init__(
        self,
        mac: str,
        broadcast: str,
        port: int,
        shutdown: SshShutdown,
        checker: AvailabilityChecker,
        *,
        wake_grace: float = DEFAULT_WAKE_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wake `mac` through `broadcast`:`port`; ValueError for a malformed MAC."""
        self.mac = format_mac(mac)
        self.broadcast = broadcast
        self.port = port
        self.shutdown = shutdown
        self.checker = checker
        self._wake_grace = wake_grace
        self._clock = clock
        self._woken_at: float | None = None

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """No state of its own, no cycle, no reset; graceful off only."""
        return self._capabilities

    @property
    def description(self) -> str:
        """For logs and the power chain."""
        return f"wol {self.mac} / ssh {self.shutdown.host}"

    def _waking(self) -> float | None:
        """Seconds since the last magic packet while its grace runs, else None."""
        if self._woken_at is None:
            return None
        since = self._clock() - self._woken_at
        if since >= self._wake_grace:
            self._woken_at = None
            return None
        return since

    async def read_state(self) -> PowerState:
        """ON when reachable (or woken within the grace), OFF when not, UNKNOWN otherwise."""
        available = await self.checker.is_available()
        if available is None:
            return PowerState.UNKNOWN
        if available:
            self._woken_at = None  # up: the grace is over
            return PowerState.ON
        return PowerState.OFF if self._waking() is None else PowerState.ON

    async def turn_on(self) -> None:
        """Send one magic packet, but only when the host is known to be off.

        Reachable: nothing to do. Cannot tell: SwitchError, no packet (it might toggle a
        running machine off). Woken within the grace: nothing, it is booting.
        """
        available = await self.checker.is_available()
        if available:
            _LOGGER.debug("%s: already on, no magic packet", self.description)
            return
        if available is None:
            raise SwitchError(
                f"{self.description}: state unknown, not sending a magic packet"
            )
        since = self._waking()
        if since is not None:
            _LOGGER.debug(
                "%s: magic packet sent %.0f s ago, waiting for the host",
                self.description,
                since,
            )
            return
        try:
            await send_magic_packet(self.mac, self.broadcast, self.port)
        except OSError as err:
            raise TransientSwitchError(
                f"{self.description}: cannot send the magic packet to "
                f"{self.broadcast}:{self.port}: {err}"
            ) from err
        self._woken_at = self._clock()
        _LOGGER.debug("%s: magic packet sent", self.description)

    async def turn_off(self, *, graceful: bool) -> None:
        """Graceful: run the SSH shutdown command. There is no forced off.

        `graceful=False` raises TransientSwitchError: the core retries, then reports a
        fault. So with graceful off disabled, or when a graceful shutdown does not take
        the host down within stop_timeout (the forced off that follows fails), the
        resource goes to fault; it clears by itself once the host is seen off.
        """
        if not graceful:
            raise TransientSwitchError("Wake-on-LAN/SSH has no forced off")
        self._woken_at = None
        await self.shutdown.run()

    async def reset(self) -> None:
        """Not possible over Wake-on-LAN/SSH (can_reset is False)."""
        raise NotImplementedError
