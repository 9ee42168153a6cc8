"""The Redfish BMC client against a real sushy-emulator (fake driver) and a small fake BMC.

sushy-emulator (sushy-tools 2.2.0) runs as a subprocess on 127.0.0.1: once over HTTP with
several systems, once over HTTPS with a self-signed certificate and an htpasswd file (basic
authentication). Its fake driver applies a power change after a random 1-11 s and never
reports PoweringOn/PoweringOff; it has no SessionService and no chassis Power resource. What
it cannot show (sessions, transitional states, power readings, malformed answers) is shown by
a small aiohttp Redfish service on 127.0.0.1 (`FakeBmc`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import http.client
import ipaddress
import os
from pathlib import Path
import secrets
import ssl
import subprocess
import sys
import time
from typing import Any
import uuid

import aiohttp
from aiohttp import web
import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest

from custom_components.labpower.core.model import PowerState
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    TransientSwitchError,
)
from custom_components.labpower.drivers.bmc import (
    BMC_AUTH,
    BmcAuthError,
    BmcClient,
    BmcSwitcher,
    BmcUnreachableError,
)
from custom_components.labpower.drivers.redfish import RedfishClient

from .peers.net import free_port, sockets_allowed

HOST = "127.0.0.1"
USER, PASSWORD, WRONG = "admin", "s3cret", "guessed"
# The emulator applies a power change 1-11 s after the request (whole seconds).
TRANSITION_WITHIN = 20.0

pytestmark = pytest.mark.usefixtures("socket_enabled")

# Starts a peer that dies with this test process, even one killed outright (Linux:
# PR_SET_PDEATHSIG, kept across exec), so no emulator outlives an aborted run.
LAUNCHER = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    if os.getppid() != int(sys.argv[1]):
        sys.exit("the test process is gone")
os.execv(sys.argv[2], sys.argv[2:])
"""


# Helpers


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmc.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "bmc.crt", directory / "bmc.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def system(name: str, power_state: str) -> dict[str, Any]:
    """One system of the emulator's fake driver."""
    return {
        "uuid": str(uuid.uuid4()),
        "name": name,
        "power_state": power_state,
        "external_notifier": False,
        "nics": [],
    }


@dataclass
class Emulator:
    """A sushy-emulator process on 127.0.0.1:port with the fake systems driver."""

    port: int
    https: bool
    systems: list[dict[str, Any]]
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        directory: Path,
        systems: list[dict[str, Any]],
        *,
        auth_file: Path | None = None,
        certificate: tuple[Path, Path] | None = None,
        timeout: float = 15.0,
    ) -> Emulator:
        """Write its config, start it, return once /redfish/v1 answers."""
        port = free_port()
        lines = [
            f"SUSHY_EMULATOR_LISTEN_IP = {HOST!r}",
            f"SUSHY_EMULATOR_LISTEN_PORT = {port}",
            "SUSHY_EMULATOR_FAKE_DRIVER = True",
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}",
            # Its state lives in sqlite, by default under /tmp shared by every instance.
            f"SUSHY_EMULATOR_STATE_DIR = {str(directory / 'state')!r}",
        ]
        if auth_file is not None:
            lines.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}")
        if certificate is not None:
            lines.append(f"SUSHY_EMULATOR_SSL_CERT = {str(certificate[0])!r}")
            lines.append(f"SUSHY_EMULATOR_SSL_KEY = {str(certificate[1])!r}")
        config = directory / "emulator.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log = directory / "emulator.log"
        executable = Path(sys.executable).parent / "sushy-emulator"
        environment = {
            key: value
            for key, value in os.environ.items()
            if "proxy" not in key.lower()
        }
        command = [str(executable), "--config", str(config)]
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - the venv's own entry point
                [sys.executable, "-c", LAUNCHER, str(os.getpid()), *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env=environment,
            )
        emulator = cls(port, certificate is not None, systems, process, log)
        context = (
            None
            if certificate is None
            else ssl.create_default_context(cafile=str(certificate[0]))
        )
        deadline = time.monotonic() + timeout
        while not emulator.answers(context):
            if process.poll() is not None:
                raise RuntimeError(
                    f"sushy-emulator exited with {process.returncode}: "
                    + log.read_text(encoding="utf-8", errors="replace")
                )
            if time.monotonic() > deadline:
                emulator.stop()
                raise RuntimeError(f"sushy-emulator does not answer on {HOST}:{port}")
            time.sleep(0.05)
        return emulator

    def answers(self, context: ssl.SSLContext | None) -> bool:
        """Whether GET /redfish/v1 answers 200 now."""
        connection = (
            http.client.HTTPSConnection(HOST, self.port, timeout=2, context=context)
            if context is not None
            else http.client.HTTPConnection(HOST, self.port, timeout=2)
        )
        try:
            connection.request("GET", "/redfish/v1")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def uuid(self, name: str) -> str:
        """The uuid of the system called `name`."""
        return next(str(s["uuid"]) for s in self.systems if s["name"] == name)

    def stop(self) -> None:
        """Terminate the emulator and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def poll_until(
    client: BmcClient, wanted: PowerState, within: float = TRANSITION_WITHIN
) -> list[PowerState]:
    """Read the power state until it is `wanted` (bounded); return every reading."""
    readings: list[PowerState] = []
    deadline = time.monotonic() + within
    while True:
        readings.append(await client.power_state())
        if readings[-1] is wanted:
            return readings
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{client.description}: not {wanted} within {within:g} s: {readings}"
            )
        await asyncio.sleep(0.25)


# Fixtures


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """sushy-emulator over HTTP without authentication, five systems."""
    systems = [
        system("idle", "Off"),
        system("starter", "Off"),
        system("stopper", "On"),
        system("killer", "On"),
        system("resetter", "On"),
    ]
    with sockets_allowed():
        emulator = Emulator.start(tmp_path_factory.mktemp("sushy"), systems)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def secure_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """sushy-emulator over HTTPS (self-signed) with basic authentication, one system."""
    directory = tmp_path_factory.mktemp("sushy-secure")
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    auth_file = directory / "htpasswd"
    auth_file.write_text(f"{USER}:{digest}\n", encoding="utf-8")
    with sockets_allowed():
        emulator = Emulator.start(
            directory,
            [system("node1", "Off")],
            auth_file=auth_file,
            certificate=self_signed_certificate(directory),
        )
    yield emulator
    emulator.stop()


@pytest.fixture
async def web_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


MISSING = object()


class FakeBmc:
    """A small Redfish service: one system "1", sessions, a chassis with a Power resource."""

    def __init__(self) -> None:
        """Off, readable, power reading 123.5 W."""
        self.port = 0
        self.power_states: list[Any] = ["Off"]
        self.system_patch: dict[str, Any] = {}
        self.systems = ["1"]
        self.power: dict[str, Any] = {"PowerControl": [{"PowerConsumedWatts": 123.5}]}
        self.overrides: dict[tuple[str, str], Callable[[], web.Response]] = {}
        self.tokens: dict[str, str] = {}  # token -> session id
        self.logins = 0
        self.deleted: list[str] = []
        self.resets: list[str] = []
        self.seen_tokens: list[str | None] = []
        self.hang_path: str | None = None  # requests here wait until the test ends
        self.release = asyncio.Event()
        self.delay = 0.0
        self.active = self.most_active = 0
        self.stopped = False
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get("/redfish/v1", self._root)
        self.app.router.add_post("/redfish/v1/SessionService/Sessions", self._login)
        self.app.router.add_delete(
            "/redfish/v1/SessionService/Sessions/{id}", self._logout
        )
        self.app.router.add_get("/redfish/v1/Systems", self._systems)
        self.app.router.add_get("/redfish/v1/Systems/{id}", self._system)
        self.app.router.add_post(
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset", self._reset
        )
        self.app.router.add_get("/redfish/v1/Chassis/1", self._chassis)
        self.app.router.add_get("/redfish/v1/Chassis/1/Power", self._power)
        self.runner = web.AppRunner(self.app)

    def client(self, session: aiohttp.ClientSession, **options: Any) -> RedfishClient:
        """A client for this service over HTTP (basic authentication unless told)."""
        options.setdefault("username", USER)
        options.setdefault("password", PASSWORD)
        return RedfishClient(session, HOST, self.port, https=False, **options)

    def override(self, method: str, path: str, status: int, text: str) -> None:
        """Answer `method` `path` with this status and body from now on."""
        self.overrides[method, path] = lambda: web.Response(
            status=status, text=text, content_type="application/json"
        )

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        """A Redfish error answer."""
        body = {
            "error": {
                "code": "Base.1.0.GeneralError",
                "message": "A general error has occurred.",
                "@Message.ExtendedInfo": [{"Message": message}],
            }
        }
        return web.json_response(body, status=status)

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        public = request.path == "/redfish/v1" or (
            request.method == "POST"
            and request.path == "/redfish/v1/SessionService/Sessions"
        )
        token = request.headers.get("X-Auth-Token")
        self.seen_tokens.append(token)
        basic = aiohttp.encode_basic_auth(USER, PASSWORD)
        if not (
            public
            or request.headers.get("Authorization") == basic
            or token in self.tokens
        ):
            return self.error(401, "Authentication required.")
        if request.path == self.hang_path:
            await self.release.wait()
        if (request.method, request.path) in self.overrides:
            return self.overrides[request.method, request.path]()
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            return await handler(request)
        finally:
            self.active -= 1

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response({"@odata.id": "/redfish/v1/", "RedfishVersion": "1.6"})

    async def _login(self, request: web.Request) -> web.Response:
        credentials = await request.json()
        if credentials != {"UserName": USER, "Password": PASSWORD}:
            return self.error(401, "Invalid username or password.")
        self.logins += 1
        session_id = str(self.logins)
        token = secrets.token_hex(8)
        self.tokens[token] = session_id
        location = f"/redfish/v1/SessionService/Sessions/{session_id}"
        return web.json_response(
            {"@odata.id": location, "Id": session_id, "UserName": USER},
            status=201,
            headers={"X-Auth-Token": token, "Location": location},
        )

    async def _logout(self, request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        self.tokens = {t: s for t, s in self.tokens.items() if s != session_id}
        self.deleted.append(session_id)
        return web.Response(status=204)

    async def _systems(self, request: web.Request) -> web.Response:
        members = [{"@odata.id": f"/redfish/v1/Systems/{s}"} for s in self.systems]
        return web.json_response(
            {"Members": members, "Members@odata.count": len(members)}
        )

    async def _system(self, request: web.Request) -> web.Response:
        identity = request.match_info["id"]
        if identity not in self.systems:
            return self.error(404, f"System {identity} not found.")
        state = (
            self.power_states.pop(0)
            if len(self.power_states) > 1
            else self.power_states[0]
        )
        body: dict[str, Any] = {
            "@odata.id": f"/redfish/v1/Systems/{identity}",
            "Id": identity,
            "PowerState": state,
            "Links": {"Chassis": [{"@odata.id": "/redfish/v1/Chassis/1"}]},
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": f"/redfish/v1/Systems/{identity}/Actions/ComputerSystem.Reset"
                }
            },
        }
        body.update(self.system_patch)
        return web.json_response(
            {key: value for key, value in body.items() if value is not MISSING}
        )

    async def _reset(self, request: web.Request) -> web.Response:
        self.resets.append((await request.json())["ResetType"])
        return web.Response(status=204)

    async def _chassis(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "@odata.id": "/redfish/v1/Chassis/1",
                "Power": {"@odata.id": "/redfish/v1/Chassis/1/Power"},
            }
        )

    async def _power(self, request: web.Request) -> web.Response:
        return web.json_response(self.power)

    async def start(self) -> None:
        """Listen on 127.0.0.1 and a free port."""
        await self.runner.setup()
        site = web.TCPSite(self.runner, HOST, 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening (once)."""
        if not self.stopped:
            self.stopped = True
            self.release.set()
            await self.runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeBmc]:
    """The fake Redfish service on 127.0.0.1 and a free port."""
    bmc = FakeBmc()
    await bmc.start()
    yield bmc
    await bmc.stop()


# Against sushy-emulator


async def test_discovers_the_only_system(
    secure_emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """No system_id: the service's only system; basic auth over self-signed HTTPS."""
    client = RedfishClient(
        web_session,
        HOST,
        secure_emulator.port,
        username=USER,
        password=PASSWORD,
        verify_ssl=False,
    )
    assert client.description == f"redfish {HOST}:{secure_emulator.port}"
    assert client.system_path is None
    assert await client.power_state() is PowerState.OFF
    assert client.system_path == f"/redfish/v1/Systems/{secure_emulator.uuid('node1')}"
    # The emulator's chassis has Thermal but no Power resource.
    assert await client.power_reading() is None
    await client.close()


async def test_wrong_password_is_an_auth_error(
    secure_emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """The emulator's htpasswd check answers 401: BmcAuthError, a repair issue."""
    client = RedfishClient(
        web_session,
        HOST,
        secure_emulator.port,
        username=USER,
        password=WRONG,
        verify_ssl=False,
    )
    with pytest.raises(BmcAuthError, match="401") as caught:
        await client.power_state()
    assert caught.value.issue == BMC_AUTH
    assert PASSWORD not in str(caught.value)
    assert WRONG not in str(caught.value)


async def test_self_signed_certificate_needs_verify_ssl_off(
    secure_emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """verify_ssl=True refuses the self-signed certificate; False accepts it."""
    options: dict[str, Any] = {"username": USER, "password": PASSWORD}
    strict = RedfishClient(web_session, HOST, secure_emulator.port, **options)
    with pytest.raises(ConfigurationSwitchError, match="certificate is not trusted"):
        await strict.power_state()
    relaxed = RedfishClient(
        web_session, HOST, secure_emulator.port, verify_ssl=False, **options
    )
    assert await relaxed.power_state() is PowerState.OFF


async def test_several_systems_need_a_system_id(
    emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """Discovery refuses to guess among several systems and lists them."""
    client = RedfishClient(
        web_session, HOST, emulator.port, https=False, username="", password=""
    )
    with pytest.raises(ConfigurationSwitchError, match="5 systems") as caught:
        await client.power_state()
    for entry in emulator.systems:
        assert str(entry["uuid"]) in str(caught.value)


async def test_unknown_system_is_a_configuration_error(
    emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """The emulator's 404 for a system that does not exist."""
    client = RedfishClient(
        web_session,
        HOST,
        emulator.port,
        https=False,
        username="",
        password="",
        system_id="nope",
    )
    with pytest.raises(ConfigurationSwitchError, match="not found"):
        await client.power_state()


async def test_state_by_name_follows_the_redirect(
    emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """A system named by its Name: the emulator redirects (307) to its uuid."""
    client = RedfishClient(
        web_session,
        HOST,
        emulator.port,
        https=False,
        username="",
        password="",
        system_id="idle",
    )
    assert await client.power_state() is PowerState.OFF
    assert await client.power_reading() is None


async def test_session_auth_without_a_session_service(
    emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """The emulator has no SessionService: a clear configuration error, not a retry."""
    client = RedfishClient(
        web_session,
        HOST,
        emulator.port,
        https=False,
        username=USER,
        password=PASSWORD,
        auth="session",
        system_id=emulator.uuid("idle"),
    )
    with pytest.raises(ConfigurationSwitchError, match="use basic authentication"):
        await client.power_state()


async def test_power_transitions(
    emulator: Emulator, web_session: aiohttp.ClientSession
) -> None:
    """On, graceful shutdown, forced off and reset, on four systems at once."""

    def client(name: str) -> RedfishClient:
        return RedfishClient(
            web_session,
            HOST,
            emulator.port,
            https=False,
            username="",
            password="",
            system_id=emulator.uuid(name),
        )

    async def power_on() -> None:
        switcher = BmcSwitcher(client("starter"))
        assert await switcher.read_state() is PowerState.OFF
        await switcher.turn_on()
        readings = await poll_until(switcher.client, PowerState.ON)
        # Never On before the change landed: Off (the fake driver's only "not yet").
        assert set(readings[:-1]) <= {PowerState.OFF}, readings

    async def graceful_off() -> None:
        bmc = client("stopper")
        assert await bmc.power_state() is PowerState.ON
        await bmc.power_off(graceful=True)
        readings = await poll_until(bmc, PowerState.OFF)
        assert set(readings[:-1]) <= {PowerState.ON}, readings

    async def forced_off() -> None:
        switcher = BmcSwitcher(client("killer"))
        await switcher.turn_off(graceful=False)
        readings = await poll_until(switcher.client, PowerState.OFF)
        assert set(readings[:-1]) <= {PowerState.ON}, readings

    async def reset() -> None:
        switcher = BmcSwitcher(client("resetter"))
        await switcher.reset()  # 204: accepted
        # The fake driver shows a restart as Off at once, then On after 1-11 s:
        # the Off shows that the reset landed.
        readings = await poll_until(switcher.client, PowerState.ON)
        assert readings[0] is PowerState.OFF, readings

    await asyncio.gather(power_on(), graceful_off(), forced_off(), reset())


async def test_unreachable_port(web_session: aiohttp.ClientSession) -> None:
    """Nothing listens: BmcUnreachableError, worth retrying."""
    client = RedfishClient(
        web_session, HOST, free_port(), https=False, username=USER, password=PASSWORD
    )
    with pytest.raises(BmcUnreachableError, match="failed"):
        await client.power_on()
    assert isinstance(BmcUnreachableError("x"), TransientSwitchError)


# Against the fake Redfish service


async def test_transitional_states_are_unknown(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """PoweringOn/PoweringOff are not yet the target; null or odd values are UNKNOWN."""
    fake.power_states = ["Off", "PoweringOn", "PoweringOn", "On", "PoweringOff"]
    fake.power_states += [None, "Standby", "Paused"]
    client = fake.client(web_session, system_id="1")
    readings = [await client.power_state() for _ in range(8)]
    assert readings == [
        PowerState.OFF,
        PowerState.UNKNOWN,
        PowerState.UNKNOWN,
        PowerState.ON,
        PowerState.UNKNOWN,
        PowerState.UNKNOWN,
        PowerState.UNKNOWN,
        PowerState.ON,
    ]


async def test_actions_and_power_reading(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """Reset types sent to the advertised target; the chassis' PowerConsumedWatts."""
    client = fake.client(web_session)
    await client.power_on()
    await client.power_off(graceful=True)
    await client.power_off(graceful=False)
    await client.reset()
    assert fake.resets == ["On", "GracefulShutdown", "ForceOff", "ForceRestart"]
    assert client.system_path == "/redfish/v1/Systems/1"
    assert await client.power_reading() == 123.5
    fake.power = {"PowerControl": [{"PowerConsumedWatts": 80}]}
    assert await client.power_reading() == 80.0
    for absent in ({}, {"PowerControl": []}, {"PowerControl": [{}]}):
        fake.power = absent
        assert await client.power_reading() is None
    fake.power = {"PowerControl": [{"PowerConsumedWatts": "lots"}]}
    with pytest.raises(TransientSwitchError, match="not a number"):
        await client.power_reading()
    fake.power = {"PowerControl": {"PowerConsumedWatts": 1}}
    with pytest.raises(TransientSwitchError, match="not a list"):
        await client.power_reading()
    fake.override("GET", "/redfish/v1/Chassis/1/Power", 404, "{}")
    assert await client.power_reading() is None
    for links in ({}, MISSING):
        fake.system_patch = {"Links": links}
        assert await client.power_reading() is None
    fake.system_patch = {"Links": {"Chassis": {"@odata.id": "/x"}}}
    with pytest.raises(TransientSwitchError, match="not a list"):
        await client.power_reading()
    fake.system_patch = {"Links": []}
    with pytest.raises(TransientSwitchError, match="Links is not an object"):
        await client.power_reading()
    fake.system_patch = {"Links": {"Chassis": ["/redfish/v1/Chassis/1"]}}
    with pytest.raises(TransientSwitchError, match="not a Redfish link"):
        await client.power_reading()


async def test_reset_without_advertised_target(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """No reset action advertised in the system resource: the standard action path."""
    for actions in (MISSING, {}):
        fake.system_patch = {"Actions": actions}
        await fake.client(web_session, system_id="1").power_on()
    assert fake.resets == ["On", "On"]


async def test_chassis_without_power(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """A chassis that links no Power resource, or that is gone: no reading."""
    client = fake.client(web_session)
    fake.override("GET", "/redfish/v1/Chassis/1", 200, '{"Id": "1"}')
    assert await client.power_reading() is None
    fake.override("GET", "/redfish/v1/Chassis/1", 404, "")
    assert await client.power_reading() is None


async def test_session_auth_logs_in_again_once(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """X-Auth-Token on every request; a 401 opens a new session once; close deletes it."""
    client = fake.client(web_session, auth="session")
    assert await client.power_state() is PowerState.OFF
    assert fake.logins == 1
    first = next(iter(fake.tokens))
    assert fake.seen_tokens[-1] == first
    fake.tokens.clear()  # the BMC forgot the session (timeout, reboot)
    await client.power_on()
    assert fake.logins == 2
    assert fake.resets == ["On"]
    await client.close()
    assert fake.deleted == ["2"]
    assert fake.tokens == {}
    await client.close()  # nothing left to delete
    assert fake.deleted == ["2"]


async def test_session_refused_again_is_an_auth_error(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """Still 401 right after a new login: BmcAuthError, no loop."""
    client = fake.client(web_session, auth="session", system_id="1")
    fake.override("GET", "/redfish/v1/Systems/1", 401, "{}")
    with pytest.raises(BmcAuthError, match="401"):
        await client.power_state()
    assert fake.logins == 2


async def test_session_login_refused(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """A wrong password at login: BmcAuthError with the BMC's message."""
    client = fake.client(web_session, auth="session", password=WRONG)
    with pytest.raises(BmcAuthError, match="Invalid username or password"):
        await client.power_state()
    assert fake.logins == 0


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (201, "{}", TransientSwitchError, "without an X-Auth-Token"),
        (503, "", BmcUnreachableError, "login failed with HTTP 503"),
        (405, "", ConfigurationSwitchError, "no Redfish sessions"),
        (403, "", BmcAuthError, "login refused"),
    ],
)
async def test_session_login_failures(
    fake: FakeBmc,
    web_session: aiohttp.ClientSession,
    *,
    status: int,
    body: str,
    error: type[Exception],
    match: str,
) -> None:
    """What a login answer other than 201 with a token means."""
    fake.override("POST", "/redfish/v1/SessionService/Sessions", status, body)
    client = fake.client(web_session, auth="session", system_id="1")
    with pytest.raises(error, match=match):
        await client.power_state()


async def test_session_location_from_the_body(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """No Location header: the session's @odata.id; a failing DELETE is only logged."""
    fake.overrides["POST", "/redfish/v1/SessionService/Sessions"] = lambda: (
        web.json_response(
            {"@odata.id": "/redfish/v1/SessionService/Sessions/7"},
            status=201,
            headers={"X-Auth-Token": "t7"},
        )
    )
    fake.tokens["t7"] = "7"
    client = fake.client(web_session, auth="session", system_id="1")
    assert await client.power_state() is PowerState.OFF
    await fake.stop()  # the BMC is gone by the time we close
    await client.close()
    assert fake.deleted == []


@pytest.mark.parametrize(
    ("method", "status", "body", "error", "match"),
    [
        ("GET", 200, "{not json", TransientSwitchError, "malformed JSON"),
        ("GET", 200, "[]", TransientSwitchError, "not return a JSON object"),
        ("GET", 200, '{"Id": "1"}', TransientSwitchError, "no PowerState"),
        ("GET", 200, '{"PowerState": 1}', TransientSwitchError, "not a string"),
        ("GET", 500, "<html>oops</html>", BmcUnreachableError, "HTTP 500"),
        ("GET", 403, "", BmcAuthError, "HTTP 403"),
        ("GET", 409, "", TransientSwitchError, "HTTP 409"),
        ("GET", 404, "", ConfigurationSwitchError, "not found"),
    ],
)
async def test_odd_system_answers(
    fake: FakeBmc,
    web_session: aiohttp.ClientSession,
    *,
    method: str,
    status: int,
    body: str,
    error: type[Exception],
    match: str,
) -> None:
    """Malformed or unexpected answers for the system resource."""
    fake.override(method, "/redfish/v1/Systems/1", status, body)
    with pytest.raises(error, match=match):
        await fake.client(web_session, system_id="1").power_state()


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (400, "ResetType not allowed", TransientSwitchError),
        (404, "no such action", ConfigurationSwitchError),
        (503, "busy", BmcUnreachableError),
    ],
)
async def test_refused_reset(
    fake: FakeBmc,
    web_session: aiohttp.ClientSession,
    *,
    status: int,
    message: str,
    error: type[Exception],
) -> None:
    """A refused action carries the BMC's message."""
    path = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
    fake.overrides["POST", path] = lambda: FakeBmc.error(status, message)
    with pytest.raises(error, match=message):
        await fake.client(web_session).power_off(graceful=True)


async def test_discovery_odd_collections(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """No systems, or a collection without Members."""
    fake.systems = []
    with pytest.raises(ConfigurationSwitchError, match="no systems"):
        await fake.client(web_session).power_state()
    fake.override("GET", "/redfish/v1/Systems", 200, '{"Name": "Systems"}')
    with pytest.raises(TransientSwitchError, match="no Members list"):
        await fake.client(web_session).power_state()


async def test_discovered_system_gone_is_discovered_again(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """A discovered system that disappears: configuration error, then found anew."""
    client = fake.client(web_session)
    assert await client.power_state() is PowerState.OFF
    fake.systems = ["2"]
    with pytest.raises(ConfigurationSwitchError, match="not found"):
        await client.power_state()
    assert client.system_path is None
    assert await client.power_state() is PowerState.OFF
    assert client.system_path == "/redfish/v1/Systems/2"


async def test_timeout_is_unreachable(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """A BMC that accepts but does not answer in time."""
    fake.hang_path = "/redfish/v1/Systems/1"
    client = fake.client(web_session, system_id="1", timeout=0.2)
    with pytest.raises(BmcUnreachableError, match=r"within 0\.2 s"):
        await client.power_state()


async def test_one_request_at_a_time(
    fake: FakeBmc, web_session: aiohttp.ClientSession
) -> None:
    """Concurrent calls on one client reach the BMC one after the other."""
    fake.delay = 0.02
    client = fake.client(web_session)
    await asyncio.gather(
        client.power_reading(), *(client.power_state() for _ in range(4))
    )
    assert fake.most_active == 1
    other = fake.client(web_session)  # another BMC client has its own lock
    await asyncio.gather(client.power_state(), other.power_state())
    assert fake.most_active == 2


def test_description_and_options() -> None:
    """Default ports per scheme, IPv6 in brackets, auth must be basic or session."""
    session: Any = object()
    assert RedfishClient(
        session, "10.0.0.5", username=USER, password=PASSWORD
    ).description == ("redfish 10.0.0.5:443")
    plain = RedfishClient(
        session, "bmc.lab", https=False, username=USER, password=PASSWORD
    )
    assert plain.description == "redfish bmc.lab:80"
    six = RedfishClient(session, "fd00::5", 8443, username=USER, password=PASSWORD)
    assert six.description == "redfish [fd00::5]:8443"
    with pytest.raises(ValueError, match="basic"):
        RedfishClient(session, "h", username=USER, password=PASSWORD, auth="digest")  # type: ignore[arg-type]
