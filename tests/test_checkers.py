"""The availability checkers: ICMP sweeps and TCP ports, against loopback only.

No test sends a packet outside 127.0.0.0/8, and no test asks a DNS server anything:
where a name must fail to resolve, the resolver's answer is simulated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
import ipaddress
import os
import socket
from typing import Any

import icmplib
import pytest

from custom_components.labpower.core.switching import ConfigurationSwitchError
from custom_components.labpower.drivers import icmp
from custom_components.labpower.drivers.icmp import (
    ICMP_UNAVAILABLE,
    IcmpSweeper,
    IcmpUnavailableError,
    detect_privileged,
)
from custom_components.labpower.drivers.tcp import TcpChecker

from .peers.netns import in_netns

requires_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="privileged (raw) ICMP sockets need root"
)


def fake_ping(monkeypatch: pytest.MonkeyPatch, *, refused: set[bool]) -> list[bool]:
    """Make icmplib refuse the ICMP sockets of these kinds; returns the kinds tried."""
    tried: list[bool] = []

    async def async_ping(address: str, **kwargs: Any) -> icmplib.Host:
        assert address == "127.0.0.1"
        privileged: bool = kwargs["privileged"]
        tried.append(privileged)
        if privileged in refused:
            raise icmplib.SocketPermissionError(privileged)
        return icmplib.Host(address, 0, [])

    monkeypatch.setattr(icmp, "async_ping", async_ping)
    return tried


def spy_sweep(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the addresses of every real sweep."""
    sweeps: list[list[str]] = []
    real = icmp.ping_sweep

    async def ping_sweep(addresses: Iterable[str], **kwargs: Any) -> Any:
        addresses = list(addresses)
        sweeps.append(addresses)
        return await real(addresses, **kwargs)

    monkeypatch.setattr(icmp, "ping_sweep", ping_sweep)
    return sweeps


def answer_sweep(
    monkeypatch: pytest.MonkeyPatch,
    answer: Callable[[list[str]], dict[str, bool | None]],
) -> None:
    """Replace the sweep itself (no socket at all) by answer(addresses)."""

    async def ping_sweep(addresses: Iterable[str], **kwargs: Any) -> Any:
        return answer(list(addresses))

    monkeypatch.setattr(icmp, "ping_sweep", ping_sweep)


# detect_privileged


@requires_root
async def test_detect_privileged_as_root(socket_enabled: None) -> None:
    assert await detect_privileged() is True


async def test_detect_falls_back_to_unprivileged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried = fake_ping(monkeypatch, refused={True})
    assert await detect_privileged() is False
    assert tried == [True, False]


async def test_detect_without_any_icmp_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    tried = fake_ping(monkeypatch, refused={True, False})
    with pytest.raises(IcmpUnavailableError) as err:
        await detect_privileged()
    assert tried == [True, False]
    assert isinstance(err.value, ConfigurationSwitchError)
    assert err.value.issue == ICMP_UNAVAILABLE == "icmp_unavailable"
    assert "ping_group_range" in str(err.value)


# IcmpSweeper with real privileged ICMP on loopback


@requires_root
async def test_loopback_hosts_answer(socket_enabled: None) -> None:
    sweeper = IcmpSweeper(privileged=True)
    checker = sweeper.checker("127.0.0.1")
    assert checker.host == "127.0.0.1"
    assert checker.description == "ping 127.0.0.1"
    assert await checker.is_available() is True
    assert await sweeper.checker("127.0.0.2").is_available() is True
    assert sweeper.sweeps == 2


@requires_root
async def test_concurrent_checks_share_one_sweep(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = spy_sweep(monkeypatch)
    sweeper = IcmpSweeper(privileged=True)
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.2"]
    results = await asyncio.gather(
        *(sweeper.checker(host).is_available() for host in hosts)
    )
    assert results == [True, True, True, True]
    assert sweeper.sweeps == 1
    assert sent == [["127.0.0.1", "127.0.0.2", "127.0.0.3"]]

    assert await sweeper.checker("127.0.0.3").is_available() is True
    assert sweeper.sweeps == 2
    assert sent[1] == ["127.0.0.3"]


@requires_root
async def test_names_that_do_not_resolve_cannot_tell(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolver, simulated so that no DNS query leaves the machine: addresses
    # and localhost (/etc/hosts) resolve for real; a name the IDNA codec refuses
    # raises UnicodeError as CPython's getaddrinfo does; other names do not exist.
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return real_getaddrinfo(host, *args, **kwargs)
        if host == "localhost":
            return real_getaddrinfo(host, *args, **kwargs)
        host.encode("idna")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    sent = spy_sweep(monkeypatch)
    sweeper = IcmpSweeper(privileged=True)
    hosts = ["no-such-host.invalid", "host..lab", "localhost", "127.0.0.1", "127.0.0.2"]
    results = await asyncio.wait_for(
        asyncio.gather(*(sweeper.checker(host).is_available() for host in hosts)),
        timeout=10,
    )
    assert results == [None, None, True, True, True]
    assert sweeper.sweeps == 1
    assert sent == [["127.0.0.1", "127.0.0.2"]]


async def test_unprivileged_sweep_refused_by_the_os(socket_enabled: None) -> None:
    try:
        await icmplib.async_ping("127.0.0.1", count=0, timeout=0, privileged=False)
    except icmplib.SocketPermissionError:
        pass
    else:
        pytest.skip("unprivileged ICMP is allowed here (net.ipv4.ping_group_range)")
    sweeper = IcmpSweeper(privileged=False)
    results = await asyncio.gather(
        sweeper.checker("127.0.0.1").is_available(),
        sweeper.checker("127.0.0.2").is_available(),
    )
    assert results == [None, None]
    assert sweeper.sweeps == 1


def loopback_hosts(count: int) -> list[str]:
    """127.0.0.1, 127.0.0.2...: every one answers on Linux's loopback."""
    return [str(ipaddress.IPv4Address("127.0.0.0") + n) for n in range(1, count + 1)]


@requires_root
async def test_no_reply_lost_for_5000_hosts(socket_enabled: None) -> None:
    """5,000 IPv4 hosts and ::1 in one sweep: one socket per family, every one answers."""
    opened = []
    real_socket = socket.socket

    def counting(*args: Any, **kwargs: Any) -> socket.socket:
        sock = real_socket(*args, **kwargs)
        opened.append((sock.family, sock.type))
        return sock

    hosts = [*loopback_hosts(5000), "::1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(icmp.socket, "socket", counting)
        # One attempt only: a lost reply would not be made up for by a second request.
        results = await icmp.ping_sweep(hosts, privileged=True, count=1, reply_wait=5)
    assert [host for host in hosts if results[host] is not True] == []
    assert sorted(opened) == sorted(
        [(socket.AF_INET, socket.SOCK_RAW), (socket.AF_INET6, socket.SOCK_RAW)]
    )


@requires_root
async def test_sweeper_checks_ipv6(socket_enabled: None) -> None:
    sweeper = IcmpSweeper(privileged=True)
    results = await asyncio.gather(
        sweeper.checker("::1").is_available(),
        sweeper.checker("0:0::1").is_available(),  # the same address, written otherwise
        sweeper.checker("127.0.0.9").is_available(),
    )
    assert results == [True, True, True]
    assert sweeper.sweeps == 1


def test_unprivileged_datagram_sockets_in_a_namespace() -> None:
    """HA ping's fallback: Linux's ping sockets where net.ipv4.ping_group_range allows."""
    results = in_netns(
        """
        import asyncio
        from custom_components.labpower.drivers import icmp
        async def main():
            privileged = await icmp.detect_privileged()
            hosts = ["127.0.0.1", "127.0.0.2", "127.0.3.4", "::1"]
            return privileged, await icmp.ping_sweep(hosts, privileged=False)
        print(json.dumps(asyncio.run(main())))
        """,
        sysctls={"net.ipv4.ping_group_range": "0 2147483647"},
    )
    privileged, alive = results
    assert alive == {
        "127.0.0.1": True,
        "127.0.0.2": True,
        "127.0.3.4": True,
        "::1": True,
    }
    assert privileged is (os.geteuid() == 0)


def test_silent_and_unreachable_hosts_in_a_namespace() -> None:
    """Echo ignored: silent (False) after every attempt; no route: cannot tell (None)."""
    results = in_netns(
        """
        import asyncio
        from custom_components.labpower.drivers import icmp
        hosts = ["127.0.0.1", "::1", "192.0.2.1", "2001:db8::1"]
        print(json.dumps(asyncio.run(icmp.ping_sweep(hosts, privileged=True, reply_wait=0.3))))
        """,
        sysctls={
            "net.ipv4.icmp_echo_ignore_all": "1",
            "net.ipv6.icmp.echo_ignore_all": "1",
        },
    )
    assert results == {
        "127.0.0.1": False,
        "::1": False,
        "192.0.2.1": None,  # the namespace has no route: nothing left the machine
        "2001:db8::1": None,
    }


def test_replies_match_by_source_identifier_and_sequence() -> None:
    """Forged echo replies: wrong identifier, wrong source or wrong sequence do not count."""
    results = in_netns(
        """
        import asyncio, socket, struct, threading
        from custom_components.labpower.drivers import icmp

        A, B, C, D = "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"
        listen = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        listen.settimeout(3)
        senders = {}
        for source in (A, C, D, "127.0.0.99"):
            senders[source] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            senders[source].bind((source, 0))

        def reply(source, ident, seq):
            checksum = icmp._checksum(ident, seq)  # type 0, code 0
            senders[source].sendto(struct.pack("!BBHHH", 0, 0, checksum, ident, seq), (source, 0))

        def answer():
            # The kernel ignores echo requests here: this thread answers them, badly but one.
            try:
                while True:
                    data, _ = listen.recvfrom(512)
                    offset = (data[0] & 15) * 4
                    kind, _, _, ident, seq = struct.unpack_from("!BBHHH", data, offset)
                    target = socket.inet_ntoa(data[16:20])
                    if kind != 8:
                        continue
                    if target == A:
                        reply(A, ident ^ 1, seq)
                    elif target == B:
                        reply("127.0.0.99", ident, seq)
                    elif target == C:
                        reply(C, ident, (seq + 1) & 0xFFFF)
                    elif target == D:
                        reply(D, ident, seq)
            except TimeoutError:
                pass

        threading.Thread(target=answer, daemon=True).start()
        hosts = [A, B, C, D]
        print(json.dumps(asyncio.run(icmp.ping_sweep(hosts, privileged=True, reply_wait=0.5))))
        """,
        sysctls={"net.ipv4.icmp_echo_ignore_all": "1"},
    )
    assert results == {
        "127.0.0.11": False,
        "127.0.0.12": False,
        "127.0.0.13": False,
        "127.0.0.14": True,
    }


# IcmpSweeper without sockets


async def test_no_icmp_raises_repair_error() -> None:
    sweeper = IcmpSweeper(privileged=None)
    with pytest.raises(IcmpUnavailableError) as err:
        await sweeper.checker("127.0.0.1").is_available()
    assert err.value.issue == ICMP_UNAVAILABLE
    assert sweeper.sweeps == 0


async def test_dead_host_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    answer_sweep(
        monkeypatch,
        lambda addresses: {address: address == "127.0.0.1" for address in addresses},
    )
    sweeper = IcmpSweeper(privileged=True)
    results = await asyncio.gather(
        sweeper.checker("127.0.0.1").is_available(),
        sweeper.checker("127.0.0.2").is_available(),
    )
    assert results == [True, False]


async def test_unexpected_error_reaches_every_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(addresses: list[str]) -> dict[str, bool | None]:
        raise RuntimeError("sweep bug")

    answer_sweep(monkeypatch, fail)
    sweeper = IcmpSweeper(privileged=True)
    impatient = asyncio.create_task(sweeper.checker("127.0.0.1").is_available())
    await asyncio.sleep(0)
    impatient.cancel()
    results = await asyncio.wait_for(
        asyncio.gather(
            sweeper.checker("127.0.0.1").is_available(),
            sweeper.checker("127.0.0.2").is_available(),
            return_exceptions=True,
        ),
        timeout=5,
    )
    assert [str(result) for result in results] == ["sweep bug", "sweep bug"]
    assert all(isinstance(result, RuntimeError) for result in results)
    assert impatient.cancelled()
    assert sweeper.sweeps == 1

    # The sweeper is not stuck: the next sweep answers.
    answer_sweep(
        monkeypatch,
        lambda addresses: dict.fromkeys(addresses, True),
    )
    assert await sweeper.checker("127.0.0.1").is_available() is True
    assert sweeper.sweeps == 2


async def test_cancelled_caller_does_not_disturb_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer_sweep(
        monkeypatch,
        lambda addresses: dict.fromkeys(addresses, True),
    )
    sweeper = IcmpSweeper(privileged=True)
    impatient = asyncio.create_task(sweeper.checker("127.0.0.1").is_available())
    patient = asyncio.create_task(sweeper.checker("127.0.0.1").is_available())
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient is True
    assert impatient.cancelled()
    assert sweeper.sweeps == 1


# TcpChecker


async def test_tcp_port_open_then_closed(socket_enabled: None) -> None:
    connected = asyncio.Event()

    async def accept(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connected.set()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    checker = TcpChecker("127.0.0.1", port)
    assert checker.description == f"tcp 127.0.0.1:{port}"
    try:
        assert await checker.is_available() is True
        await asyncio.wait_for(connected.wait(), timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    assert await checker.is_available() is False


async def test_tcp_gives_up_after_its_timeout(socket_enabled: None) -> None:
    async def accept(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # The deadline has passed before the connection can complete.
        assert await TcpChecker("127.0.0.1", port, timeout=0).is_available() is False
        assert await TcpChecker("127.0.0.1", port).is_available() is True
    finally:
        server.close()
        await server.wait_closed()
