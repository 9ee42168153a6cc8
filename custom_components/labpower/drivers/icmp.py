"""ICMP availability: every host that needs a check goes out in one async_multiping sweep."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from icmplib import (
    ICMPLibError,
    NameLookupError,
    SocketPermissionError,
    async_multiping,
    async_ping,
    async_resolve,
)

from ..core.switching import ConfigurationSwitchError

ICMP_UNAVAILABLE = "icmp_unavailable"


class IcmpUnavailableError(ConfigurationSwitchError):
    """Neither privileged nor unprivileged ICMP sockets can be opened here."""

    def __init__(self) -> None:
        """Point the repair issue at ICMP."""
        super().__init__(
            "ICMP sockets are not permitted (run as root, or allow unprivileged "
            "ping through net.ipv4.ping_group_range)",
            issue=ICMP_UNAVAILABLE,
        )


async def detect_privileged() -> bool:
    """Return whether to use privileged ICMP; raise IcmpUnavailableError if neither works."""
    for privileged in (True, False):
        with contextlib.suppress(SocketPermissionError):
            await async_ping("127.0.0.1", count=0, timeout=0, privileged=privileged)
            return privileged
    raise IcmpUnavailableError


class IcmpSweeper:
    """Batches ICMP checks: requests arriving together share one sweep."""

    def __init__(
        self,
        *,
        privileged: bool | None,
        count: int = 2,
        timeout: float = 1.0,
        gather_window: float = 0.05,
    ) -> None:
        """`privileged` None means ICMP cannot be used (checks raise a repair error)."""
        self.privileged = privileged
        self._count = count
        self._timeout = timeout
        self._gather_window = gather_window
        self._pending: dict[str, list[asyncio.Future[bool | None]]] = {}
        self._sweep: asyncio.Task[None] | None = None
        self.sweeps = 0

    def checker(self, host: str) -> IcmpChecker:
        """An availability checker for one host that goes through this sweeper."""
        return IcmpChecker(self, host)

    async def ping(self, host: str) -> bool | None:
        """Whether the host answers; joins the next sweep."""
        if self.privileged is None:
            raise IcmpUnavailableError
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(host, []).append(future)
        if self._sweep is None:
            self._sweep = asyncio.create_task(
                self._run_sweep(), name="labpower icmp sweep"
            )
        return await future

    async def _run_sweep(self) -> None:
        await asyncio.sleep(self._gather_window)
        batch, self._pending, self._sweep = self._pending, {}, None
        try:
            results = await self._probe(list(batch))
        except Exception as err:  # noqa: BLE001
            # Not swallowed: no caller may wait forever on a failed sweep, each gets it.
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(err)
            return
        for host, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(results.get(host))

    async def _probe(self, hosts: list[str]) -> dict[str, bool | None]:
        addresses: dict[str, str] = {}
        for host in hosts:
            try:
                ipaddress.ip_address(host)
                addresses[host] = host
            except ValueError:
                # ValueError: a name the IDNA codec refuses ("host..lab", a label > 63).
                with contextlib.suppress(NameLookupError, ValueError):
                    addresses[host] = (await async_resolve(host))[0]
        self.sweeps += 1
        try:
            answers: list[Any] = await async_multiping(
                list(dict.fromkeys(addresses.values())),
                count=self._count,
                interval=0.2,
                timeout=self._timeout,
                privileged=bool(self.privileged),
            )
        except ICMPLibError:
            return dict.fromkeys(hosts)
        alive = {answer.address: answer.is_alive for answer in answers}
        return {
            host: alive.get(addresses[host]) if host in addresses else None
            for host in hosts
        }


class IcmpChecker:
    """Available when the host answers ICMP echo."""

    def __init__(self, sweeper: IcmpSweeper, host: str) -> None:
        """Check `host` through the shared sweeper."""
        self._sweeper = sweeper
        self.host = host

    @property
    def description(self) -> str:
        """For logs and diagnostics."""
        return f"ping {self.host}"

    async def is_available(self) -> bool | None:
        """Whether the host answers ICMP."""
        return await self._sweeper.ping(self.host)
