"""ICMP availability: every host that needs a check goes out in one sweep, one socket per family.

A sweep opens one ICMP socket per address family (IPv4, IPv6), sends an echo request to
every address of that family through it and matches each echo reply to its host by the
reply's source address, identifier and sequence number (RFC 792 "Echo or Echo Reply
Message", RFC 4443 section 4). Hosts that have not answered are asked again up to `count`
times, `interval` apart; the sweep ends when all have answered or `reply_wait` after the
last request.

Sockets as Home Assistant's `ping` integration chooses them: raw sockets where permitted
(root or CAP_NET_RAW: `privileged`), else Linux's unprivileged ICMP datagram sockets
(`net.ipv4.ping_group_range`, icmp(7) "ping sockets"), whose identifier the kernel sets and
whose replies it delivers to the socket alone; `detect_privileged` tries them in that order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import contextlib
from dataclasses import dataclass
import ipaddress
import random
import socket
import struct

from icmplib import NameLookupError, SocketPermissionError, async_ping, async_resolve

from ..core.switching import ConfigurationSwitchError

ICMP_UNAVAILABLE = "icmp_unavailable"

# Requests sent between two turns of the event loop: the replies of a batch are read
# before the socket's receive buffer can overflow.
SEND_BATCH = 64
RECEIVE_BUFFER = 4 * 1024 * 1024
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
# Linux: ICMP_FILTER (raw IPv4, level SOL_RAW) and ICMP6_FILTER (raw IPv6) let only echo
# replies through to the socket (icmp(7), RFC 3542 section 3.2).
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_SO_RCVBUFFORCE = 33  # Linux socket(7); the socket module does not name it


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


@dataclass(frozen=True, slots=True)
class _Family:
    family: socket.AddressFamily
    protocol: int
    request: int
    reply: int


_V4 = _Family(socket.AF_INET, socket.IPPROTO_ICMP, 8, 0)
_V6 = _Family(socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129)


def _checksum(*words: int) -> int:
    """The Internet checksum (RFC 1071) of a header made of these 16-bit words."""
    total = sum(words)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _configure(sock: socket.socket, family: _Family, *, privileged: bool) -> None:
    """A receive buffer for a sweep's replies; raw sockets: echo replies only."""
    with contextlib.suppress(OSError):
        try:
            # Beyond net.core.rmem_max where permitted (CAP_NET_ADMIN), else up to it.
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if not privileged:
        return  # a datagram socket gets its own echo replies only
    if family is _V4:
        # A set bit drops that type: everything but echo reply (0).
        option = struct.pack("I", 0xFFFFFFFF & ~(1 << family.reply))
        level, name = _SOL_RAW, _ICMP_FILTER
    else:
        # A set bit blocks that type: everything but echo reply (129).
        blocked = [0xFFFFFFFF] * 8
        blocked[family.reply >> 5] &= ~(1 << (family.reply & 31))
        option = struct.pack("8I", *blocked)
        level, name = socket.IPPROTO_ICMPV6, _ICMP6_FILTER
    with contextlib.suppress(OSError):
        sock.setsockopt(level, name, option)


def _open(family: _Family, *, privileged: bool) -> socket.socket:
    """One non-blocking ICMP socket of the family that reads echo replies only."""
    kind = socket.SOCK_RAW if privileged else socket.SOCK_DGRAM
    sock = socket.socket(family.family, kind, family.protocol)
    sock.settimeout(0.0)  # non-blocking
    _configure(sock, family, privileged=privileged)  # raises nothing
    return sock


async def _sweep_family(
    family: _Family,
    addresses: list[str],
    *,
    privileged: bool,
    count: int,
    interval: float,
    reply_wait: float,
) -> dict[str, bool | None]:
    """Ping these addresses (one family) through one socket: answered, silent or None."""
    try:
        sock = _open(family, privileged=privileged)
    except OSError:
        return dict.fromkeys(addresses)  # no socket: cannot tell
    loop = asyncio.get_running_loop()
    identifier = random.getrandbits(16)
    # (address as a reply's source reads it, sequence) -> the address asked for
    waiting: dict[tuple[str, int], str] = {}
    for index, address in enumerate(addresses):
        waiting[(address.partition("%")[0], index & 0xFFFF)] = address
    results: dict[str, bool | None] = dict.fromkeys(addresses, False)
    all_answered = loop.create_future()
    raw_v4 = privileged and family is _V4
    check_identifier = privileged  # datagram sockets: the kernel matched it already

    def read() -> None:
        while True:
            try:
                data, source = sock.recvfrom(512)
            except OSError:
                return  # nothing more to read (or an error queued: the requests decide)
            offset = (data[0] & 0x0F) * 4 if raw_v4 and data else 0
            if len(data) < offset + _HEADER.size:
                continue
            kind, _code, _sum, ident, sequence = _HEADER.unpack_from(data, offset)
            if kind != family.reply or (check_identifier and ident != identifier):
                continue
            answered = waiting.pop((source[0].partition("%")[0], sequence), None)
            if answered is not None:
                results[answered] = True
                if not waiting and not all_answered.done():
                    all_answered.set_result(None)

    loop.add_reader(sock.fileno(), read)
    try:
        for attempt in range(count):
            await _send(sock, family, waiting, identifier, results)
            if not waiting:
                break
            wait = reply_wait if attempt == count - 1 else interval
            await asyncio.wait((all_answered,), timeout=wait)
            if not waiting:
                break
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    return results


async def _send(
    sock: socket.socket,
    family: _Family,
    waiting: dict[tuple[str, int], str],
    identifier: int,
    results: dict[str, bool | None],
) -> None:
    """One echo request to every host still waiting, in batches the loop reads between."""
    loop = asyncio.get_running_loop()
    request = family.request << 8
    for sent, (key, address) in enumerate(list(waiting.items()), start=1):
        sequence = key[1]
        # IPv6: the kernel computes the checksum over its pseudo-header (RFC 3542 3.1).
        checksum = _checksum(request, identifier, sequence) if family is _V4 else 0
        packet = _HEADER.pack(family.request, 0, checksum, identifier, sequence)
        try:
            try:
                sock.sendto(packet, (address, 0))  # fe80::1%eth0: its scope too
            except BlockingIOError:
                await loop.sock_sendto(sock, packet, (address, 0))
        except OSError:
            # No route, no such interface...: this host cannot be told.
            if waiting.pop(key, None) is not None:
                results[address] = None
        if sent % SEND_BATCH == 0:
            await asyncio.sleep(0)


async def ping_sweep(
    addresses: Iterable[str],
    *,
    privileged: bool,
    count: int = 2,
    interval: float = 0.2,
    reply_wait: float = 1.0,
) -> dict[str, bool | None]:
    """Ping IP addresses, one socket per family: True answered, False silent, None unknown."""
    by_family: dict[_Family, list[str]] = {_V4: [], _V6: []}
    for address in dict.fromkeys(addresses):
        by_family[_V6 if ":" in address else _V4].append(address)
    answers = await asyncio.gather(
        *(
            _sweep_family(
                family,
                members,
                privileged=privileged,
                count=count,
                interval=interval,
                reply_wait=reply_wait,
            )
            for family, members in by_family.items()
            if members
        )
    )
    return {address: alive for answer in answers for address, alive in answer.items()}


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
                # As a reply's source reads: "0:0::1" is "::1" (fe80::1%eth0 keeps its scope).
                addresses[host] = str(ipaddress.ip_address(host))
            except ValueError:
                # ValueError: a name the IDNA codec refuses ("host..lab", a label > 63).
                with contextlib.suppress(NameLookupError, ValueError):
                    addresses[host] = (await async_resolve(host))[0]
        self.sweeps += 1
        alive = await ping_sweep(
            dict.fromkeys(addresses.values()),
            count=self._count,
            interval=0.2,
            reply_wait=self._timeout,
            privileged=bool(self.privileged),
        )
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
