"""SIGKILL right after a burst of acknowledged acquires: every one is back after restart.

A real Home Assistant process (tests/peers/hass_process.py) with the demo lab; 1,000
acquires through labpower's REST API, 100 at a time; the moment the last 201 arrives the
process is killed with SIGKILL (no unload, no final write, as an OOM kill or a power
cut), then Home Assistant starts again on the same configuration folder.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import time
from typing import Any

import aiohttp
import pytest

from .peers.hass_process import Server, home_assistant, start_hass, tail

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(300),
]

BURST = 1000
CONCURRENT = 100
RESOURCE = "builder-1"


def _auth_written(directory: Path, client_name: str) -> bool:
    """Whether Home Assistant stored the long-lived token (it saves auth with a delay)."""
    with contextlib.suppress(OSError):
        return client_name in (directory / ".storage" / "auth").read_text()
    return False


async def _acquire_burst(server: Server, token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}/api/labpower/resources/{RESOURCE}/tokens"
    limit = asyncio.Semaphore(CONCURRENT)

    async def acquire(number: int) -> str:
        async with (
            limit,
            server.session.post(
                url, json={"holder": f"job {number}"}, headers=headers
            ) as response,
        ):
            assert response.status == 201, await response.text()
            return str((await response.json())["token"])

    return await asyncio.gather(*(acquire(n) for n in range(BURST)))


async def _resource_after_restart(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    process: asyncio.subprocess.Process,
    log: Path,
) -> dict[str, Any]:
    """The resource as the REST API shows it, once Home Assistant answers again.

    (Onboarding is done now, so its API, which until_up asks, is not there.)
    """
    deadline = time.monotonic() + 60
    while True:
        assert process.returncode is None, tail(log)
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(
                f"{url}/api/labpower/resources/{RESOURCE}",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                if response.status == 200:
                    body: dict[str, Any] = await response.json()
                    return body
        assert time.monotonic() < deadline, tail(log)
        await asyncio.sleep(0.2)


async def test_sigkill_after_acknowledged_acquires_loses_none(tmp_path: Path) -> None:
    async with home_assistant(tmp_path) as server:
        token = await server.long_lived_token("durability test")
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(_auth_written, tmp_path, "durability test"):
            assert time.monotonic() < deadline, server.log_tail()
            await asyncio.sleep(0.2)
        acknowledged = await _acquire_burst(server, token)
        assert server.process is not None
        server.process.kill()  # SIGKILL, at once
        await server.process.wait()
    assert len(set(acknowledged)) == BURST

    log = tmp_path / "hass-restart.log"
    process = await start_hass(tmp_path, log)
    try:
        async with aiohttp.ClientSession() as session:
            body = await _resource_after_restart(
                session, server.url, token, process, log
            )
            back = {t["token"] for t in body["tokens"]}
            assert back >= set(acknowledged)
            assert len(back) == body["holders"] == BURST
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
