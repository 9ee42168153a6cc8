"""Wake-on-LAN on, SSH shutdown off: the drivers against real peers on loopback.

The magic packet goes to a UDP socket on 127.0.0.1 (a directed address, never a real
broadcast) and the shutdown command to an in-process asyncssh server on 127.0.0.1: no
test sends anything outside 127.0.0.0/8. Only the availability checker is a stand-in
(it answers what the test says): it is the part that faces the hardware.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import socket
from typing import Any

import asyncssh
import pytest

from custom_components.labpower.core.events import EventKind, LabEvent
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    PowerAction,
    PowerState,
    ResourcePolicy,
    ResourceState,
)
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    SwitchError,
    TransientSwitchError,
)
from custom_components.labpower.drivers import wol_ssh
from custom_components.labpower.drivers.ssh import (
    DEFAULT_COMMAND,
    SSH_AUTH,
    SSH_HOST_KEY_CHANGED,
    SshShutdown,
    host_key_fingerprint,
)
from custom_components.labpower.drivers.wol import (
    magic_packet,
    parse_mac,
    send_magic_packet,
)
from custom_components.labpower.drivers.wol_ssh import WolSshSwitcher

from .core.fakes import FakeChecker, FakeClock

LOOPBACK = "127.0.0.1"
MAC = "52:54:00:12:34:56"
MAC_BYTES = bytes.fromhex("525400123456")
USER = "lab"
PASSWORD = "s3cret"
WRONG_PASSWORD = "wrong"

HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
OTHER_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
CLIENT_KEY = asyncssh.generate_private_key("ssh-ed25519")
CLIENT_KEY_PEM = CLIENT_KEY.export_private_key("pkcs8-pem").decode()


def public(key: asyncssh.SSHKey) -> str:
    """A key's public half in OpenSSH format, as a user would paste it."""
    return key.export_public_key("openssh").decode().strip()


# Peers on loopback


class UdpListener(asyncio.DatagramProtocol):
    """Collects the datagrams sent to it."""

    def __init__(self) -> None:
        """Nothing received yet."""
        self.packets: list[bytes] = []
        self.port = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Keep it."""
        self.packets.append(data)

    async def settle(self) -> list[bytes]:
        """The packets, once anything sent so far has been read."""
        await asyncio.sleep(0.05)
        return self.packets


@pytest.fixture
async def udp(socket_enabled: None) -> AsyncGenerator[UdpListener]:
    """A UDP socket on 127.0.0.1 standing in for the machine's network card."""
    transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(
        UdpListener, local_addr=(LOOPBACK, 0)
    )
    listener.port = transport.get_extra_info("sockname")[1]
    yield listener
    transport.close()


class SshPeer:
    """An SSH server on 127.0.0.1 that records logins and commands instead of running them."""

    def __init__(self) -> None:
        """Password and key logins for USER; commands exit 0 unless told otherwise."""
        self.host_key: asyncssh.SSHKey = HOST_KEY
        self.commands: list[str] = []
        self.logins: list[str] = []
        # exit (with `status`), drop, disconnect, signal, hang; refuse: no sessions
        self.mode = "exit"
        self.certificate: asyncssh.SSHCertificate | None = None
        self.status = 0
        self.stderr = ""
        self.port = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self._hanging: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncssh.create_server(
            lambda: _PeerServer(self),
            LOOPBACK,
            self.port,
            server_host_keys=[
                self.host_key
                if self.certificate is None
                else (self.host_key, self.certificate)
            ],
            process_factory=None if self.mode == "refuse" else self._process,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and what is left of its connections."""
        for task in self._hanging:
            task.cancel()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def restart(self) -> None:
        """Start again on the same port (after changing the mode, key or certificate)."""
        await self.stop()
        await self.start()

    async def _process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        self.commands.append(str(process.command))
        if self.mode == "drop":  # the host goes down under the command
            process.get_extra_info("connection").abort()
        elif self.mode == "disconnect":  # sshd stopped in an orderly way
            process.get_extra_info("connection").disconnect(
                asyncssh.DISC_BY_APPLICATION, "the system is going down"
            )
        elif self.mode == "signal":
            process.exit_with_signal("TERM")
        elif self.mode == "hang":
            task = asyncio.current_task()
            assert task is not None
            self._hanging.add(task)
            await asyncio.Event().wait()
        else:
            process.stderr.write(self.stderr)
            process.exit(self.status)

    def shutdown(self, **kwargs: Any) -> SshShutdown:
        """A client for this peer, by password unless told otherwise."""
        options: dict[str, Any] = {"username": USER, "password": PASSWORD}
        options.update(kwargs)
        return SshShutdown(LOOPBACK, self.port, **options)


class _PeerServer(asyncssh.SSHServer):
    def __init__(self, peer: SshPeer) -> None:
        self._peer = peer

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._peer.logins.append(f"password {username}")
        return username == USER and password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._peer.logins.append(f"key {username}")
        return username == USER and key.public_data == CLIENT_KEY.public_data

    def session_requested(self) -> bool:
        return False  # only asked with no process factory: mode "refuse"


@pytest.fixture
async def ssh_peer(socket_enabled: None) -> AsyncGenerator[SshPeer]:
    """A running SshPeer, closed after the test."""
    peer = SshPeer()
    await peer.start()
    yield peer
    await peer.stop()


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


# The magic packet


@pytest.mark.parametrize(
    "mac",
    [
        MAC,
        "52-54-00-12-34-56",
        "5254.0012.3456",
        "525400123456",
        " 52:54:00:12:34:56\n",
    ],
)
def test_magic_packet_accepts_the_usual_forms(mac: str) -> None:
    packet = magic_packet(mac)
    assert len(packet) == 102
    assert packet == b"\xff" * 6 + MAC_BYTES * 16


def test_magic_packet_upper_case() -> None:
    assert parse_mac("AA:BB:CC:DD:EE:FF") == bytes.fromhex("aabbccddeeff")


@pytest.mark.parametrize(
    "mac",
    [
        "",
        "52:54:00:12:34",
        "52:54:00:12:34:56:78",
        "52:54:00-12:34:56",
        "5254:0012:3456",
        "52:54:00:12:34:5g",
        "5:4:0:1:3:5",
        "52540012345",
        "52.54.00.12.34.56",
    ],
)
def test_magic_packet_refuses_anything_else(mac: str) -> None:
    with pytest.raises(ValueError, match="Not a MAC address"):
        magic_packet(mac)


async def test_send_magic_packet_directed(udp: UdpListener) -> None:
    await send_magic_packet(MAC, LOOPBACK, udp.port)
    assert await udp.settle() == [b"\xff" * 6 + MAC_BYTES * 16]


# SSH shutdown


async def test_ssh_first_use_accepts_and_exposes_the_key(ssh_peer: SshPeer) -> None:
    seen: list[str] = []
    shutdown = ssh_peer.shutdown(on_first_key=seen.append)
    assert shutdown.known_host_key is None
    await shutdown.run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]
    assert seen == [public(HOST_KEY)]
    assert shutdown.seen_host_key == public(HOST_KEY)
    # pinned from now on: the next run checks it and does not call back again
    assert shutdown.known_host_key == public(HOST_KEY)
    await shutdown.run()
    assert seen == [public(HOST_KEY)]
    assert ssh_peer.commands == [DEFAULT_COMMAND] * 2


async def test_ssh_with_the_stored_key_runs_the_command(ssh_peer: SshPeer) -> None:
    shutdown = ssh_peer.shutdown(
        known_host_key=public(HOST_KEY), command="shutdown -h now"
    )
    await shutdown.run()
    assert ssh_peer.commands == ["shutdown -h now"]
    assert ssh_peer.logins == [f"password {USER}"]
    assert shutdown.description == f"ssh {USER}@127.0.0.1:{ssh_peer.port}"


async def test_ssh_key_login(ssh_peer: SshPeer) -> None:
    shutdown = ssh_peer.shutdown(
        password=None, client_key=CLIENT_KEY_PEM, known_host_key=public(HOST_KEY)
    )
    await shutdown.run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]
    assert ssh_peer.logins
    assert all(login == f"key {USER}" for login in ssh_peer.logins)


@pytest.mark.parametrize(
    "stored",
    [
        host_key_fingerprint(public(HOST_KEY)),
        host_key_fingerprint(public(HOST_KEY)) + "=",  # padded, as some tools print it
        "sha256:" + host_key_fingerprint(public(HOST_KEY))[7:],
    ],
)
async def test_ssh_stored_fingerprint(ssh_peer: SshPeer, stored: str) -> None:
    await ssh_peer.shutdown(known_host_key=stored).run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]


@pytest.mark.parametrize(
    "stored",
    [public(OTHER_HOST_KEY), host_key_fingerprint(public(OTHER_HOST_KEY))],
    ids=["public key", "fingerprint"],
)
async def test_ssh_host_key_changed_refuses(ssh_peer: SshPeer, stored: str) -> None:
    first: list[str] = []
    shutdown = ssh_peer.shutdown(known_host_key=stored, on_first_key=first.append)
    with pytest.raises(ConfigurationSwitchError) as err:
        await shutdown.run()
    assert err.value.issue == SSH_HOST_KEY_CHANGED
    # refused in the handshake: no password sent, no command run, nothing re-pinned
    assert ssh_peer.logins == []
    assert ssh_peer.commands == []
    assert first == []
    assert shutdown.known_host_key == stored
    # what a repair needs to show and accept the new key
    assert shutdown.seen_host_key == public(HOST_KEY)
    assert host_key_fingerprint(public(HOST_KEY)) in str(err.value)


async def test_ssh_command_dropping_the_connection_is_success(
    ssh_peer: SshPeer,
) -> None:
    ssh_peer.mode = "drop"
    await ssh_peer.shutdown().run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]


async def test_ssh_orderly_disconnect_is_success(ssh_peer: SshPeer) -> None:
    ssh_peer.mode = "disconnect"
    await ssh_peer.shutdown().run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]


async def test_ssh_session_refused(ssh_peer: SshPeer) -> None:
    ssh_peer.mode = "refuse"
    await ssh_peer.restart()
    with pytest.raises(TransientSwitchError, match="cannot open a session"):
        await ssh_peer.shutdown().run()
    assert ssh_peer.commands == []


async def test_ssh_host_key_of_another_type(ssh_peer: SshPeer) -> None:
    """The stored key is ECDSA, the host now has only an Ed25519 key (reinstalled)."""
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    with pytest.raises(ConfigurationSwitchError, match="ecdsa-sha2-nistp256") as err:
        await ssh_peer.shutdown(known_host_key=public(ecdsa)).run()
    assert err.value.issue == SSH_HOST_KEY_CHANGED
    assert ssh_peer.logins == []
    assert ssh_peer.commands == []


async def test_ssh_host_with_a_certificate_pins_its_key(ssh_peer: SshPeer) -> None:
    """A host certified by an SSH CA we do not know: its plain key is what gets pinned."""
    ca = asyncssh.generate_private_key("ssh-ed25519")
    ssh_peer.certificate = ca.generate_host_certificate(HOST_KEY, "pc")
    await ssh_peer.restart()
    shutdown = ssh_peer.shutdown()
    await shutdown.run()
    assert shutdown.known_host_key == public(HOST_KEY)
    await shutdown.run()
    fingerprint = host_key_fingerprint(public(HOST_KEY))
    await ssh_peer.shutdown(known_host_key=fingerprint).run()
    assert ssh_peer.commands == [DEFAULT_COMMAND] * 3


async def test_ssh_command_killed_by_a_signal_is_success(ssh_peer: SshPeer) -> None:
    ssh_peer.mode = "signal"
    await ssh_peer.shutdown().run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]


async def test_ssh_command_failing(ssh_peer: SshPeer) -> None:
    ssh_peer.status = 1
    ssh_peer.stderr = "sudo: a password is required\nmore\n"
    with pytest.raises(
        ConfigurationSwitchError, match=r"status 1: sudo: a password is required$"
    ) as err:
        await ssh_peer.shutdown().run()
    assert err.value.issue == "switcher_misconfigured"
    ssh_peer.stderr = ""
    with pytest.raises(ConfigurationSwitchError, match=r"exited with status 1$"):
        await ssh_peer.shutdown().run()


async def test_ssh_command_timeout(ssh_peer: SshPeer) -> None:
    ssh_peer.mode = "hang"
    with pytest.raises(TransientSwitchError, match=r"did not finish within 0\.2 s"):
        await ssh_peer.shutdown(command_timeout=0.2).run()
    assert ssh_peer.commands == [DEFAULT_COMMAND]


async def test_ssh_wrong_password(ssh_peer: SshPeer) -> None:
    with pytest.raises(ConfigurationSwitchError) as err:
        await ssh_peer.shutdown(password=WRONG_PASSWORD).run()
    assert err.value.issue == SSH_AUTH
    assert ssh_peer.logins
    assert ssh_peer.commands == []


async def test_ssh_unknown_client_key(ssh_peer: SshPeer) -> None:
    other = OTHER_HOST_KEY.export_private_key("openssh").decode()
    with pytest.raises(ConfigurationSwitchError) as err:
        await ssh_peer.shutdown(password=None, client_key=other).run()
    assert err.value.issue == SSH_AUTH
    assert ssh_peer.commands == []


async def test_ssh_port_closed(socket_enabled: None) -> None:
    shutdown = SshShutdown(LOOPBACK, closed_port(), username=USER, password=PASSWORD)
    with pytest.raises(TransientSwitchError, match=r"SSH to 127\.0\.0\.1:\d+"):
        await shutdown.run()
    assert shutdown.seen_host_key is None


async def test_ssh_connect_timeout(socket_enabled: None) -> None:
    """A port that accepts but never speaks SSH (a host half up)."""

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        shutdown = SshShutdown(
            LOOPBACK, port, username=USER, password=PASSWORD, connect_timeout=0.2
        )
        with pytest.raises(TransientSwitchError, match=r"no connection within 0\.2 s"):
            await shutdown.run()
    finally:
        server.close()
        await server.wait_closed()


def test_ssh_settings_checked_up_front() -> None:
    with pytest.raises(ValueError, match="password or a client key"):
        SshShutdown(LOOPBACK, username=USER)
    with pytest.raises(ValueError, match="Not a usable SSH private key"):
        SshShutdown(LOOPBACK, username=USER, client_key="-----BEGIN nonsense")
    with pytest.raises(ValueError, match="Not an SSH host key"):
        SshShutdown(
            LOOPBACK, username=USER, password=PASSWORD, known_host_key="ssh-ed25519 !"
        )
    with pytest.raises(ValueError, match="Not an SSH host key"):
        host_key_fingerprint("nonsense")


# The switcher


def switcher(
    udp: UdpListener,
    shutdown: SshShutdown,
    checker: FakeChecker,
    clock: FakeClock | None = None,
) -> WolSshSwitcher:
    """A switcher waking MAC through the UDP listener on 127.0.0.1."""
    return WolSshSwitcher(
        MAC, LOOPBACK, udp.port, shutdown, checker, clock=clock or FakeClock()
    )


async def test_switcher_declares_what_it_can(
    udp: UdpListener, ssh_peer: SshPeer
) -> None:
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker())
    caps = switch.capabilities
    assert not caps.can_read_state
    assert not caps.is_toggle
    assert not caps.can_cycle
    assert not caps.can_reset
    assert caps.can_shutdown_gracefully
    assert switch.description == "wol 52:54:00:12:34:56 / ssh 127.0.0.1"
    assert (
        WolSshSwitcher(
            "5254.0012.3456", LOOPBACK, 9, ssh_peer.shutdown(), FakeChecker()
        )
    ).mac == MAC
    with pytest.raises(NotImplementedError):
        await switch.reset()
    with pytest.raises(ValueError, match="Not a MAC address"):
        WolSshSwitcher("nonsense", LOOPBACK, 9, ssh_peer.shutdown(), FakeChecker())


@pytest.mark.parametrize(
    ("answer", "state"),
    [(True, PowerState.ON), (False, PowerState.OFF), (None, PowerState.UNKNOWN)],
)
async def test_switcher_state_is_the_checkers(
    udp: UdpListener, ssh_peer: SshPeer, answer: bool | None, state: PowerState
) -> None:
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker(answer=answer))
    assert await switch.read_state() is state


async def test_switcher_no_packet_when_up(udp: UdpListener, ssh_peer: SshPeer) -> None:
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker(answer=True))
    await switch.turn_on()
    assert await udp.settle() == []


async def test_switcher_no_packet_when_unknown(
    udp: UdpListener, ssh_peer: SshPeer
) -> None:
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker(answer=None))
    with pytest.raises(SwitchError, match="state unknown, not sending a magic packet"):
        await switch.turn_on()
    assert await udp.settle() == []


async def test_switcher_one_packet_when_down(
    udp: UdpListener, ssh_peer: SshPeer
) -> None:
    clock = FakeClock()
    checker = FakeChecker(answer=False)
    switch = switcher(udp, ssh_peer.shutdown(), checker, clock)
    await switch.turn_on()
    assert await udp.settle() == [magic_packet(MAC)]
    # Booting: counts as on, and no second packet could toggle it off again.
    assert await switch.read_state() is PowerState.ON
    clock.advance(299)
    await switch.turn_on()
    assert await switch.read_state() is PowerState.ON
    assert len(await udp.settle()) == 1
    # Never came up within the grace: off again, and worth another packet.
    clock.advance(1)
    assert await switch.read_state() is PowerState.OFF
    await switch.turn_on()
    assert len(await udp.settle()) == 2
    # Once it answers, the grace is over: it is off as soon as it stops answering.
    checker.answer = True
    assert await switch.read_state() is PowerState.ON
    checker.answer = False
    assert await switch.read_state() is PowerState.OFF


async def test_switcher_packet_that_cannot_be_sent(
    udp: UdpListener, ssh_peer: SshPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_route(mac: str, address: str, port: int) -> None:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(wol_ssh, "send_magic_packet", no_route)
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker(answer=False))
    with pytest.raises(TransientSwitchError, match="Network is unreachable"):
        await switch.turn_on()
    assert await switch.read_state() is PowerState.OFF  # nothing sent: no grace


async def test_switcher_turn_off(udp: UdpListener, ssh_peer: SshPeer) -> None:
    clock = FakeClock()
    switch = switcher(udp, ssh_peer.shutdown(), FakeChecker(answer=False), clock)
    await switch.turn_on()
    with pytest.raises(TransientSwitchError, match="no forced off"):
        await switch.turn_off(graceful=False)
    assert ssh_peer.commands == []
    await switch.turn_off(graceful=True)
    assert ssh_peer.commands == [DEFAULT_COMMAND]
    # asked to shut down: no longer taken as booting
    assert await switch.read_state() is PowerState.OFF


async def test_switcher_turn_off_errors_pass_through(
    udp: UdpListener, ssh_peer: SshPeer
) -> None:
    switch = switcher(udp, ssh_peer.shutdown(password=WRONG_PASSWORD), FakeChecker())
    with pytest.raises(ConfigurationSwitchError) as err:
        await switch.turn_off(graceful=True)
    assert err.value.issue == SSH_AUTH


# Through the core


async def test_lab_wakes_and_shuts_down(udp: UdpListener, ssh_peer: SshPeer) -> None:
    clock = FakeClock()
    events: list[LabEvent] = []
    checker = FakeChecker(answer=False)
    stored: list[str] = []
    shutdown = ssh_peer.shutdown(on_first_key=stored.append)
    lab = Lab(clock=clock, listener=events.append, sleep=clock.sleep)
    lab.add(
        ResourceSpec(
            name="pc",
            feeds=(switcher(udp, shutdown, checker, clock),),
            checker=checker,
            policy=ResourcePolicy(
                off_delay=60, min_off_time=30, start_timeout=120, stop_timeout=90
            ),
        )
    )
    reconciler = lab.reconciler("pc")

    def actions() -> list[PowerAction | None]:
        return [e.action for e in events if e.kind is EventKind.POWER_CHANGED]

    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.OFF
    token = lab.acquire(["pc"], "jenkins #7")[0]
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.STARTING
    assert await udp.settle() == [magic_packet(MAC)]
    assert actions() == [PowerAction.ON]
    # a slow boot: still starting, and never a second packet
    for _ in range(3):
        clock.advance(20)
        await reconciler.reconcile_once()
        assert reconciler.state is ResourceState.STARTING
    assert len(await udp.settle()) == 1
    checker.answer = True  # the machine booted
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.AVAILABLE
    assert ssh_peer.commands == []

    lab.release([token.id])
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.AVAILABLE  # off delay
    clock.advance(60)
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.STOPPING
    assert ssh_peer.commands == [DEFAULT_COMMAND]
    assert stored == [public(HOST_KEY)]
    assert actions() == [PowerAction.ON, PowerAction.GRACEFUL_OFF]
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.STOPPING  # still answering
    checker.answer = False  # the machine went down
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.OFF
    assert ssh_peer.commands == [DEFAULT_COMMAND]
    assert len(await udp.settle()) == 1


async def test_lab_never_wakes_an_unknown_host(
    udp: UdpListener, ssh_peer: SshPeer
) -> None:
    clock = FakeClock()
    checker = FakeChecker(answer=None)
    lab = Lab(clock=clock, listener=lambda event: None, sleep=clock.sleep)
    lab.add(
        ResourceSpec(
            name="pc",
            feeds=(switcher(udp, ssh_peer.shutdown(), checker, clock),),
            checker=checker,
        )
    )
    lab.acquire(["pc"], "ci")
    await lab.reconciler("pc").reconcile_once()
    assert lab.state("pc") is ResourceState.UNKNOWN
    assert await udp.settle() == []
