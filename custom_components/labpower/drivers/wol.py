"""Wake-on-LAN: the magic packet, through the `wakeonlan` library HA's own integration uses."""

from __future__ import annotations

import asyncio
from functools import partial
import re

import wakeonlan

MAGIC_PACKET_SIZE = 102
DEFAULT_BROADCAST = wakeonlan.BROADCAST_IP
DEFAULT_PORT = wakeonlan.DEFAULT_PORT

# aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff (Cisco) or aabbccddeeff.
_MAC_FORMATS = (
    re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", re.IGNORECASE),
    re.compile(r"[0-9a-f]{2}(?:-[0-9a-f]{2}){5}", re.IGNORECASE),
    re.compile(r"[0-9a-f]{4}(?:\.[0-9a-f]{4}){2}", re.IGNORECASE),
    re.compile(r"[0-9a-f]{12}", re.IGNORECASE),
)


def parse_mac(mac: str) -> bytes:
    """The 6 bytes of a MAC address; ValueError for anything but the four usual forms.

    Stricter than the library, which takes any 17- or 14-character text with a separator
    it guesses from its position.
    """
    text = mac.strip()
    if not any(pattern.fullmatch(text) for pattern in _MAC_FORMATS):
        raise ValueError(
            f"Not a MAC address: {mac!r} (expected aa:bb:cc:dd:ee:ff, "
            "aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff)"
        )
    return bytes.fromhex(re.sub(r"[:.\-]", "", text))


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
