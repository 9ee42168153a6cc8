"""TCP availability: a host is available when a port accepts a connection."""

from __future__ import annotations

import asyncio
import contextlib


class TcpChecker:
    """Available when host:port accepts a TCP connection (ssh, a CI agent port...)."""

    def __init__(self, host: str, port: int, *, timeout: float = 3.0) -> None:
        """Check `host`:`port`, giving up after `timeout` seconds."""
        self.host = host
        self.port = port
        self._timeout = timeout

    @property
    def description(self) -> str:
        """For logs and diagnostics."""
        return f"tcp {self.host}:{self.port}"

    async def is_available(self) -> bool | None:
        """Whether the port accepts a connection now."""
        try:
            async with asyncio.timeout(self._timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError, TimeoutError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
