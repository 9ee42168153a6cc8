"""Wake-on-LAN: the magic packet, through the `wakeonlan` library HA's own integration uses."""

from __future__ import annotations

import asyncio
from functools import partial

import wakeonlan

from ..core.feeds import normalise_mac

MAGIC_PACKET_SIZE = 102
DEFAULT_BROADCAST = wakeonlan.BROADCAST_IP
DEFAULT_PORT = wakeonlan.DEFAULT_PORT


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
    """The MAC in the aa:bb:cc:dd:ee:ff form (one spelling per card, for logs and owners)."""
    return parse_mac(mac).hex(":")


def magic_packet(mac: str) -> bytes:
    """The Wake-on-LAN magic packet: 6 x 0xFF, then the MAC 16 times (102 bytes)."""
    return wakeonlan.create_magic_packet(format_mac(mac))


async def send_magic_packet(
    mac: str, address: str = DEFAULT_BROADCAST, port: int = DEFAULT_PORT
) -> None:
    """Send one magic packet to `address`:`port` (a broadcast or a directed address).

    The socket has SO_BROADCAST, so a limited (255.255.255.255) or subnet-directed
    broadcast works as well as a unicast address. Exactly one packet is sent: on some
    hardware the packet toggles power, so callers decide when it is safe to send.
    Raises ValueError for a malformed MAC and OSError when the packet cannot be sent
    (no route, a name that does not resolve). The library resolves and sends blocking:
    it runs in the executor.
    """
    send = partial(
        wakeonlan.send_magic_packet, format_mac(mac), ip_address=address, port=port
    )
    await asyncio.get_running_loop().run_in_executor(None, send)
