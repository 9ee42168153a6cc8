"""Wake-on-LAN: the magic packet, sent over UDP (no dependency: it is 6 + 96 bytes)."""

from __future__ import annotations

import asyncio

from ..core.feeds import normalise_mac

MAGIC_PACKET_SIZE = 102
DEFAULT_BROADCAST = "255.255.255.255"
DEFAULT_PORT = 9


def parse_mac(mac: str) -> bytes:
    """The 6 bytes of a MAC address; ValueError for anything but the four usual forms."""
    normal = normalise_mac(mac)
    if normal is None:
        raise ValueError(
            f"Not a MAC address: {mac!r} (expected aa:bb:cc:dd:ee:ff, "
            "aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff)"
        )
    return bytes.fromhex(normal.replace(":", ""))


def format_mac(mac: str) -> str:
    """The MAC in the aa:bb:cc:dd:ee:ff form (for descriptions and logs)."""
    return parse_mac(mac).hex(":")


def magic_packet(mac: str) -> bytes:
    """The Wake-on-LAN magic packet: 6 x 0xFF, then the MAC 16 times (102 bytes)."""
    return b"\xff" * 6 + parse_mac(mac) * 16


class _Sender(asyncio.DatagramProtocol):
    """Keeps the error a send reported (asyncio hands it to the protocol)."""

    def __init__(self) -> None:
        self.error: OSError | None = None

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc


async def send_magic_packet(
    mac: str, address: str = DEFAULT_BROADCAST, port: int = DEFAULT_PORT
) -> None:
    """Send one magic packet to `address`:`port` (a broadcast or a directed address).

    The socket has SO_BROADCAST, so a limited (255.255.255.255) or subnet-directed
    broadcast works as well as a unicast address. Exactly one packet is sent: on some
    hardware the packet toggles power, so callers decide when it is safe to send.
    Raises ValueError for a malformed MAC and OSError when the packet cannot be sent
    (no route, a name that does not resolve).
    """
    packet = magic_packet(mac)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Sender, remote_addr=(address, port), allow_broadcast=True
    )
    try:
        transport.sendto(packet)
    finally:
        transport.close()
    if protocol.error is not None:
        raise protocol.error
