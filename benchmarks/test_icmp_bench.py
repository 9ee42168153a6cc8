"""ICMP availability sweeps: CPU per host of labpower's one-socket sweep against icmplib.

HOSTS loopback addresses (127.0.0.1, 127.0.0.2...: every one answers on Linux) and ::1 are
pinged once each per sweep, three ways, in the same run and interleaved round by round:

- labpower: `ping_sweep`, one ICMP socket per address family for the whole sweep;
- icmplib `async_ping` per host, what Home Assistant's `ping` integration does for each of
  its hosts (here all at once, at most CONCURRENT at a time: multiping's own default);
- icmplib `async_multiping`, which labpower used before (one socket per host inside).

Each sends one echo request per host (count=1), so what is compared is the cost per
request and reply, not a number of retries. The process's CPU time over a sweep, divided
by the hosts, is the figure (median of ROUNDS); every host must answer in every sweep.
Privileged (raw) sockets where the benchmark runs as root, else Linux's ping sockets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import statistics
import time
from typing import Any

from icmplib import SocketPermissionError, async_multiping, async_ping
import pytest

from custom_components.labpower.drivers.icmp import ping_sweep

from .conftest import Row

HOSTS = 5000
ROUNDS = 5
CONCURRENT = 50
TARGET = 0.3  # x async_ping per host (issue 18)

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(600)]


def hosts() -> list[str]:
    """HOSTS loopback IPv4 addresses and ::1."""
    first = ipaddress.IPv4Address("127.0.0.1")
    return [*(str(first + n) for n in range(HOSTS)), "::1"]


async def privilege() -> bool:
    """Raw sockets if permitted, else ping sockets; skip where neither is."""
    for privileged in (True, False):
        try:
            await async_ping("127.0.0.1", count=0, timeout=0, privileged=privileged)
        except SocketPermissionError:
            continue
        return privileged
    pytest.skip("no ICMP sockets here (root or net.ipv4.ping_group_range)")


async def labpower_sweep(addresses: list[str], privileged: bool) -> dict[str, Any]:
    """One sweep through one socket per family."""
    return await ping_sweep(addresses, privileged=privileged, count=1, reply_wait=2)


async def icmplib_per_host(addresses: list[str], privileged: bool) -> dict[str, Any]:
    """async_ping for every host, CONCURRENT at a time."""
    limit = asyncio.Semaphore(CONCURRENT)

    async def one(address: str) -> bool:
        async with limit:
            host = await async_ping(address, count=1, timeout=2, privileged=privileged)
            return bool(host.is_alive)

    alive = await asyncio.gather(*(one(address) for address in addresses))
    return dict(zip(addresses, alive, strict=True))


async def icmplib_multiping(addresses: list[str], privileged: bool) -> dict[str, Any]:
    """async_multiping over every host."""
    answers = await async_multiping(
        addresses,
        count=1,
        timeout=2,
        concurrent_tasks=CONCURRENT,
        privileged=privileged,
    )
    return {host.address: host.is_alive for host in answers}


async def test_icmp_sweep(report: list[Row]) -> None:
    """CPU per host: one-socket sweep vs async_ping per host vs async_multiping."""
    privileged = await privilege()
    addresses = hosts()
    ways = {
        "labpower": labpower_sweep,
        "async_ping": icmplib_per_host,
        "async_multiping": icmplib_multiping,
    }
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, way in ways.items():
            started_cpu, started = time.process_time(), time.perf_counter()
            alive = await way(addresses, privileged)
            cpu[name].append((time.process_time() - started_cpu) / len(addresses))
            wall[name].append(time.perf_counter() - started)
            lost = [address for address in addresses if alive.get(address) is not True]
            assert lost == [], f"{name}: {len(lost)} hosts did not answer"
    us = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
    seconds = {name: statistics.median(values) for name, values in wall.items()}
    ratio = us["labpower"] / us["async_ping"]
    multi_ratio = us["labpower"] / us["async_multiping"]
    kind = "raw" if privileged else "datagram (ping)"
    print(
        f"\nICMP bench ({len(addresses)} hosts, {kind} sockets, uid {os.geteuid()}): "
        + ", ".join(
            f"{name} {us[name]:.1f} us CPU/host, {seconds[name]:.3f} s" for name in ways
        )
    )
    report += [
        Row(
            60,
            f"ICMP sweep CPU per host ({HOSTS} IPv4 + ::1, {kind})",
            f"{us['labpower']:.1f} us",
            f"async_ping per host {us['async_ping']:.1f} us",
            f"{ratio:.3f}",
            f"<= {TARGET} x async_ping",
            "ok" if ratio <= TARGET else "MISSED",
        ),
        Row(
            61,
            "  (against async_multiping)",
            f"{us['labpower']:.1f} us",
            f"async_multiping {us['async_multiping']:.1f} us",
            f"{multi_ratio:.3f}",
            "what labpower used before",
            "",
        ),
        Row(
            62,
            "  (wall time of one sweep, median)",
            f"{seconds['labpower']:.3f} s",
            f"async_ping {seconds['async_ping']:.3f} s, "
            f"async_multiping {seconds['async_multiping']:.3f} s",
            f"{seconds['labpower'] / seconds['async_ping']:.3f}",
            "no reply lost in any sweep",
            "",
        ),
    ]
