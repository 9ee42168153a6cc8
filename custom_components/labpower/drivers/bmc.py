"""What every BMC client (IPMI, Redfish) offers, and the switcher made of one."""

from __future__ import annotations

from typing import Protocol

from ..core.model import PowerState
from ..core.switching import (
    ConfigurationSwitchError,
    SwitcherCapabilities,
    TransientSwitchError,
)

BMC_AUTH = "bmc_auth"


class BmcAuthError(ConfigurationSwitchError):
    """The BMC refused the credentials: fail fast, raise a repair issue, ask to reauthenticate."""

    def __init__(self, message: str) -> None:
        """Point the repair issue at the credentials."""
        super().__init__(message, issue=BMC_AUTH)


class BmcUnreachableError(TransientSwitchError):
    """No answer, a refused connection, a timeout: worth retrying."""


class BmcClient(Protocol):
    """One BMC. Calls to one BMC are made one at a time by the caller."""

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain ("ipmi 10.0.0.5")."""

    async def power_state(self) -> PowerState:
        """On or off; a transitional state (powering on/off) is UNKNOWN, never the target."""

    async def power_on(self) -> None:
        """Chassis power on."""

    async def power_off(self, *, graceful: bool) -> None:
        """Graceful: ACPI soft off / GracefulShutdown. Otherwise a hard (forced) off."""

    async def reset(self) -> None:
        """Hard reset (IPMI reset, Redfish ForceRestart)."""

    async def power_reading(self) -> float | None:
        """The draw in watts where the BMC reports it (DCMI, Redfish Power), else None."""

    async def close(self) -> None:
        """Release sessions and sockets."""


class BmcSwitcher:
    """A resource fed through its BMC: readable, graceful off, reset; cycle done by the core."""

    _capabilities = SwitcherCapabilities(
        can_read_state=True,
        is_toggle=False,
        can_cycle=True,
        can_reset=True,
        can_shutdown_gracefully=True,
    )

    def __init__(self, client: BmcClient) -> None:
        """Switch through `client`."""
        self.client = client

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """What a BMC can do."""
        return self._capabilities

    @property
    def description(self) -> str:
        """The BMC."""
        return self.client.description

    async def read_state(self) -> PowerState:
        """The chassis power state."""
        return await self.client.power_state()

    async def turn_on(self) -> None:
        """Power on."""
        await self.client.power_on()

    async def turn_off(self, *, graceful: bool) -> None:
        """Soft off (the OS shuts down) or hard off."""
        await self.client.power_off(graceful=graceful)

    async def reset(self) -> None:
        """Hard reset."""
        await self.client.reset()
