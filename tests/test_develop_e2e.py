"""`scripts/develop` as README.md runs it: the demo stays up, on 127.0.0.1 only, until Ctrl-C.

Home Assistant 2026.10 keeps its HTTP settings in storage; settings that arrive another way
are a five-minute trial that HA reverts (and exits for) unless somebody confirms it, to a
default on every interface. The demo's seed stores them confirmed, and scripts/develop starts
Home Assistant again whenever it asks to be restarted (exit code 100). This test starts the
script, lets the demo run past the trial's five minutes, checks that it answers on 127.0.0.1
and listens nowhere else, restarts Home Assistant through its own action, and stops the
script as Ctrl-C does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
import signal
import socket
import time

import aiohttp
import pytest

from .peers.hass_process import (
    HOST,
    REPO,
    Server,
    clean_environment,
    demo_ready,
    free_port,
    onboard,
    tail,
    until_up,
)

# Past HA's trial of pending HTTP settings (five minutes) and its revert.
STAY_UP = 6.5 * 60
CHECK_EVERY = 20.0
TCP_LISTEN = "0A"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(900),
]


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (from /proc/net)."""
    found: set[str] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with contextlib.suppress(FileNotFoundError):
            lines = Path(f"/proc/net/{table}").read_text(encoding="ascii").splitlines()
            for line in lines[1:]:
                fields = line.split()
                address, _, hex_port = fields[1].partition(":")
                if fields[3] != TCP_LISTEN or int(hex_port, 16) != port:
                    continue
                raw = bytes.fromhex(address)
                # /proc prints the address as host-order 32-bit words.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, words))
    return found


async def answers(session: aiohttp.ClientSession, server: Server) -> bool:
    """Whether the API answers the owner."""
    with contextlib.suppress(aiohttp.ClientError):
        async with session.get(f"{server.url}/api/", headers=server.headers) as reply:
            return reply.status == 200
    return False


async def test_develop_stays_up_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "develop.log"
    environment = {
        **clean_environment(),
        "LABPOWER_DEMO_CONFIG": str(tmp_path / "config"),
        "LABPOWER_DEMO_PORT": str(port),
    }
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(REPO / "scripts" / "develop"),
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await until_up(session, url, process, log, seconds=180)
            server = Server(url, session, await onboard(session, url), log, process)
            deadline = time.monotonic() + 60
            while not await demo_ready(server):
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.5)
            assert await server.repairs_shown() == []

            started = time.monotonic()
            while time.monotonic() - started < STAY_UP:
                await asyncio.sleep(CHECK_EVERY)
                assert process.returncode is None, tail(log)
                assert await answers(session, server), tail(log)
            text = log.read_text(encoding="utf-8", errors="replace")
            assert "Pending HTTP config was not confirmed" not in text
            # Bound to 127.0.0.1 alone: not 0.0.0.0, not ::, no other interface.
            assert listening_addresses(port) == {HOST}

            # Home Assistant asks to be restarted (exit code 100): it comes back.
            async with session.post(
                f"{url}/api/services/homeassistant/restart", headers=server.headers
            ):
                pass
            deadline = time.monotonic() + 60
            while await answers(session, server):
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.2)
            deadline = time.monotonic() + 120
            while not await answers(session, server):
                assert process.returncode is None, tail(log)
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.5)
            assert "asked to be restarted" in log.read_text(encoding="utf-8")
            assert listening_addresses(port) == {HOST}
    finally:
        if process.returncode is None:
            # Ctrl-C: the terminal signals the whole process group.
            os.killpg(process.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    assert process.returncode == 0, tail(log)
    assert listening_addresses(port) == set()
