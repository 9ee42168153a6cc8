"""The HTTP PDU drivers (Intellinet, NETIO, Gude, Digital Loggers) against fake units.

The fakes (tests/peers/pdu_http.py) answer as the firmware does, on 127.0.0.1. The last
part drives drivers/pdu.py's PduUnit through them: shared status reads, batched commands,
one request at a time per unit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
import ipaddress
import json
from pathlib import Path
import ssl
from typing import Any

import aiohttp
from aiohttp import DigestAuthMiddleware
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest

from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import PowerState, ResourceState
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    TransientSwitchError,
)
from custom_components.labpower.drivers.dli import DliClient
from custom_components.labpower.drivers.gude import GudeClient
from custom_components.labpower.drivers.intellinet import (
    CREDENTIALS_INTERVAL,
    NAMES_INTERVAL,
    NAMES_RETRY,
    IntellinetClient,
)
from custom_components.labpower.drivers.netio import NetioClient
from custom_components.labpower.drivers.pdu import (
    PDU_AUTH,
    PDU_LOGIN_PAGE,
    PDU_READ_ONLY,
    PduAuthError,
    PduLoginPageError,
    PduOutletSwitcher,
    PduProtocolError,
    PduReadOnlyError,
    PduUnit,
    PduUnreachableError,
)

from .core.fakes import FakeClock
from .peers.pdu_http import (
    HOST,
    FakeDli,
    FakeGude,
    FakeIntellinet,
    FakeNetio,
    FakePdu,
    gude_login_page,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

type FakeFactory = Callable[[], FakePdu]

GUDE_PATHS = ("/status.json", "/statusjsn.js", "/ov.html")


# Fixtures


@pytest.fixture
async def web_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (Home Assistant's shared one in production)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def intellinet() -> AsyncIterator[FakeIntellinet]:
    """A fake Intellinet 163682 (admin/admin), outlets 1 and 4 on."""
    on = [False] * 8
    on[0] = on[3] = True
    names = ["build-1", "build-2", "服务器", "ci-runner", "", "pi-stack", "sw", "ups"]
    async with FakeIntellinet(on=on, names=names) as unit:
        yield unit


@pytest.fixture
async def netio() -> AsyncIterator[FakeNetio]:
    """A fake NETIO 4All: accounts reader (read) and writer (write), output 2 on."""
    async with FakeNetio(on=[False, True, False, False]) as unit:
        yield unit


@pytest.fixture
async def gude() -> AsyncIterator[FakeGude]:
    """A fake Gude Expert Power Control 8 ports without authentication."""
    async with FakeGude() as unit:
        yield unit


@pytest.fixture
async def dli() -> AsyncIterator[FakeDli]:
    """A fake Digital Loggers switch (admin/1234, Digest), outlet 8 on."""
    async with FakeDli(on=[False] * 7 + [True]) as unit:
        yield unit


# Each vendor: a fake with credentials, and a raw outlet value that is neither on nor off.
VENDORS: dict[str, tuple[FakeFactory, Any]] = {
    "intellinet": (FakeIntellinet, "pending"),
    "netio": (FakeNetio, 2),
    "gude": (lambda: FakeGude(accounts={"admin": "gude"}), 3),
    "dli": (FakeDli, {"physical_state": None}),
}


@pytest.fixture(params=sorted(VENDORS))
async def any_unit(request: pytest.FixtureRequest) -> AsyncIterator[FakePdu]:
    """Each fake unit in turn (with credentials)."""
    factory, _ = VENDORS[request.param]
    async with factory() as unit:
        yield unit


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 with a fresh self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pdu.test")])
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
    cert_path, key_path = directory / "pdu.crt", directory / "pdu.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


# What every driver does the same way


async def test_unknown_outlet_value_is_unknown(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A value that is neither on nor off is UNKNOWN, never off."""
    _, raw = VENDORS[any_unit.vendor]
    any_unit.raw[2] = raw
    any_unit.on[2] = True
    status = await any_unit.client(web_session).read_status()
    assert status.outlets[2].state is PowerState.UNKNOWN
    assert status.outlets[1].state is PowerState.OFF
    assert status.outlets[3].state is PowerState.ON


async def test_wrong_credentials(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """Refused credentials are an authentication error with its repair issue."""
    wrong = {"password": "guessed"}
    if any_unit.vendor == "netio":  # its write account has a password of its own
        wrong["write_password"] = "guessed"
    client = any_unit.client(web_session, **wrong)
    with pytest.raises(PduAuthError, match="credentials") as caught:
        await client.read_status()
    assert caught.value.issue == PDU_AUTH
    with pytest.raises(PduAuthError):
        await client.set_outlets([1], True)
    assert not any(any_unit.on)


async def test_server_error_is_unreachable(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A 5xx is worth retrying, for reads and commands."""
    any_unit.fail_status = 500
    client = any_unit.client(web_session)
    with pytest.raises(PduUnreachableError, match="HTTP 500"):
        await client.read_status()
    with pytest.raises(PduUnreachableError, match="HTTP 500"):
        await client.set_outlets([1], True)


async def test_malformed_status_is_a_protocol_error(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A body that does not parse."""
    any_unit.malformed = True
    with pytest.raises(PduProtocolError, match="malformed"):
        await any_unit.client(web_session).read_status()


async def test_timeout_is_unreachable(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A unit that accepts but does not answer within the request timeout."""
    any_unit.delay = 5.0
    client = any_unit.client(web_session, timeout=0.2)
    with pytest.raises(PduUnreachableError, match=r"within 0\.2 s"):
        await client.read_status()
    with pytest.raises(PduUnreachableError, match=r"within 0\.2 s"):
        await client.set_outlets([1], True)


async def test_unit_gone_and_back(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A refused connection is unreachable; the unit back on its port answers again."""
    client = any_unit.client(web_session)
    await any_unit.stop()
    with pytest.raises(PduUnreachableError, match="failed"):
        await client.read_status()
    await any_unit.start()
    assert (await client.read_status()).outlets[1].state is PowerState.OFF


async def test_missing_page_is_a_configuration_error(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """404: another vendor or firmware at that address; retrying cannot help."""
    # A Gude unit without status.json is tried in its older dialects first.
    paths = GUDE_PATHS if any_unit.vendor == "gude" else (any_unit.status_path,)
    for path in paths:
        any_unit.override(path, status=404, body="Not Found")
    with pytest.raises(ConfigurationSwitchError, match="HTTP 404") as caught:
        await any_unit.client(web_session).read_status()
    assert not isinstance(caught.value, TransientSwitchError)


async def test_unexpected_status_is_a_protocol_error(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """A status the protocol does not foresee (a redirect to a login page)."""
    any_unit.override(any_unit.status_path, status=302, body="Found")
    with pytest.raises(PduProtocolError, match="HTTP 302"):
        await any_unit.client(web_session).read_status()


async def test_outlets_the_unit_lacks_are_refused(
    any_unit: FakePdu, web_session: aiohttp.ClientSession
) -> None:
    """Outlet 0, or one past the last the unit reported, is a configuration error."""
    client = any_unit.client(web_session)
    with pytest.raises(ConfigurationSwitchError, match="start at 1"):
        await client.set_outlets([0], True)
    await client.read_status()
    requests = len(any_unit.log)
    with pytest.raises(ConfigurationSwitchError, match="no outlet 9"):
        await client.set_outlets([1, 9], True)
    await client.set_outlets([], True)
    assert len(any_unit.log) == requests  # nothing sent


def test_descriptions() -> None:
    """Vendor and host; the port only when one is given; IPv6 in brackets."""
    session: Any = object()
    assert (
        NetioClient(session, "10.0.0.7", None, username="u", password="p").description
        == "netio 10.0.0.7"
    )
    named = IntellinetClient(session, "pdu1.lab", 8080, username="u", password="p")
    assert named.description == "intellinet pdu1.lab:8080"
    assert GudeClient(session, "fd00::9", 443, https=True).description == (
        "gude [fd00::9]:443"
    )
    dli = DliClient(session, "10.0.0.9", None, username="admin", password="1234")
    assert dli.description == "dli 10.0.0.9"
    assert dli.port == 80
    assert GudeClient(session, "pdu", None, https=True).port == 443


# Intellinet 163682


async def test_intellinet_status(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """States, the unit's current and the names (gb2312) from the configuration page."""
    now = [0.0]
    client = intellinet.client(web_session, clock=lambda: now[0])
    status = await client.read_status()
    assert [status.outlets[n].state for n in range(1, 9)] == [
        PowerState.ON,
        PowerState.OFF,
        PowerState.OFF,
        PowerState.ON,
        *[PowerState.OFF] * 4,
    ]
    assert status.current_a == pytest.approx(0.6)
    assert status.outlets[3].name == "服务器"
    assert status.outlets[1].name == "build-1"
    assert status.outlets[5].name is None  # an empty name
    assert status.outlets[1].power_w is None
    assert [seen.path for seen in intellinet.calls()] == [
        "/",  # the credentials, on the only page that asks for them
        "/status.xml",
        "/config_PDU.htm",
    ]
    assert [seen.user for seen in intellinet.calls()] == [
        "admin",
        "anonymous",
        "anonymous",
    ]
    assert all(
        seen.headers["Authorization"] == aiohttp.encode_basic_auth("admin", "admin")
        for seen in intellinet.calls()
    )
    # The names are read again only after an hour.
    intellinet.names[0] = "renamed"
    now[0] = NAMES_INTERVAL - 1
    assert (await client.read_status()).outlets[1].name == "build-1"
    now[0] = NAMES_INTERVAL
    assert (await client.read_status()).outlets[1].name == "renamed"
    assert len(intellinet.calls(path="/config_PDU.htm")) == 2


async def test_intellinet_credentials_checked_on_the_start_page(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """Only `/` asks for them: checked first, hourly, after a failure; 401 sends nothing."""
    # The firmware's hole, as the fake copies it: status and control answer anyone.
    base = f"http://{HOST}:{intellinet.port}"
    async with web_session.get(f"{base}/status.xml") as response:
        assert response.status == 200
    async with web_session.get(f"{base}/") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    intellinet.log.clear()

    wrong = intellinet.client(web_session, password="guessed", read_names=False)
    for attempt in (wrong.read_status(), wrong.set_outlets([2], True)):
        with pytest.raises(PduAuthError, match="credentials"):
            await attempt
    assert [seen.path for seen in intellinet.log] == ["/", "/"]  # nothing else sent
    assert not intellinet.on[1]

    now = [0.0]
    client = intellinet.client(web_session, read_names=False, clock=lambda: now[0])
    intellinet.log.clear()
    await client.read_status()
    await client.set_outlets([2], True)
    await client.read_status()
    assert [seen.path for seen in intellinet.log] == [
        "/",
        "/status.xml",
        "/control_outlet.htm",
        "/status.xml",
    ]
    # a password changed on the unit shows within the hour: nothing more is sent then
    intellinet.accounts["admin"] = "changed"
    now[0] = CREDENTIALS_INTERVAL
    intellinet.log.clear()
    with pytest.raises(PduAuthError):
        await client.read_status()
    assert [seen.path for seen in intellinet.log] == ["/"]
    # fixed: each request after a failure checks them again until one goes through
    intellinet.accounts["admin"] = "admin"
    intellinet.fail_status, intellinet.fail_path = 500, "/status.xml"
    with pytest.raises(PduUnreachableError):
        await client.read_status()
    intellinet.fail_status = None
    # a start page that redirects once the credentials are accepted is accepted too
    intellinet.override("/", status=302, body="", content_type="text/html")
    intellinet.log.clear()
    await client.read_status()
    await client.read_status()
    assert [seen.path for seen in intellinet.log] == ["/", "/status.xml", "/status.xml"]
    intellinet.override("/", status=500, body="")
    now[0] = 3 * CREDENTIALS_INTERVAL
    with pytest.raises(PduUnreachableError):
        await client.read_status()


async def test_intellinet_names_failure_does_not_fail_status(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """Without names the status stands; the names are tried again a minute later."""
    now = [0.0]
    client = intellinet.client(web_session, clock=lambda: now[0])
    intellinet.fail_status, intellinet.fail_path = 500, "/config_PDU.htm"
    status = await client.read_status()
    assert status.outlets[1].state is PowerState.ON
    assert status.outlets[1].name is None
    intellinet.override("/config_PDU.htm", status=403, body="Forbidden")
    now[0] = NAMES_RETRY
    assert (await client.read_status()).outlets[1].name is None
    assert len(intellinet.calls(path="/config_PDU.htm")) == 2
    intellinet.overrides.clear()
    intellinet.fail_status = None
    now[0] = 2 * NAMES_RETRY
    assert (await client.read_status()).outlets[1].name == "build-1"


async def test_intellinet_without_names(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """read_names=False: one request per status (after the credentials' check)."""
    client = intellinet.client(web_session, read_names=False)
    status = await client.read_status()
    assert status.outlets[1].name is None
    await client.read_status()
    assert [seen.path for seen in intellinet.calls()] == [
        "/",
        "/status.xml",
        "/status.xml",
    ]


async def test_intellinet_switches_several_outlets_in_one_request(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """outletN=1 for each (0-based), op 0 on / 1 off, submit=Apply; the HTML ignored."""
    client = intellinet.client(web_session, read_names=False)
    await client.set_outlets([6, 2, 3, 2], True)
    (command,) = intellinet.calls(path="/control_outlet.htm")
    assert list(command.query.items()) == [
        ("outlet1", "1"),
        ("outlet2", "1"),
        ("outlet5", "1"),
        ("op", "0"),
        ("submit", "Apply"),
    ]
    assert command.headers["Authorization"] == aiohttp.encode_basic_auth(
        "admin", "admin"
    )
    assert intellinet.on == [True, True, True, True, False, True, False, False]
    await client.set_outlets([1, 4], False)
    assert intellinet.calls(path="/control_outlet.htm")[-1].query["op"] == "1"
    assert intellinet.on == [False, True, True, False, False, True, False, False]
    status = await client.read_status()
    assert [n for n, outlet in status.outlets.items() if outlet.state == "on"] == [
        2,
        3,
        6,
    ]


async def test_intellinet_odd_documents(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """Not <response>, no outlets, a DTD: protocol errors; odd numbers are None."""
    client = intellinet.client(web_session, read_names=False)
    cases = {
        "<html><body>Login</body></html>": "not <response>",
        "<response><cur0>0.1</cur0></response>": "no outletStat",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><response/>': "DTD",
    }
    for body, message in cases.items():
        intellinet.override("/status.xml", body=body, content_type="text/xml")
        with pytest.raises(PduProtocolError, match=message):
            await client.read_status()
    # Neither charset nor a current: gb2312 assumed, the current unknown; ON in capitals.
    intellinet.override(
        "/status.xml",
        body="<response><cur0>n/a</cur0><outletStat0> ON </outletStat0></response>",
        content_type="text/xml",
    )
    status = await client.read_status()
    assert status.current_a is None
    assert status.outlets == {1: status.outlets[1]}
    assert status.outlets[1].state is PowerState.ON
    # A charset Python does not know: read as gb2312.
    intellinet.override(
        "/status.xml",
        body="<response><outletStat0>off</outletStat0></response>",
        content_type="text/xml; charset=x-pdu-unknown",
    )
    status = await client.read_status()
    assert status.current_a is None
    assert status.outlets[1].state is PowerState.OFF


async def test_intellinet_control_answer_not_ok(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """A control page that does not answer 200."""
    intellinet.override("/control_outlet.htm", status=302, body="")
    with pytest.raises(PduProtocolError, match="HTTP 302"):
        await intellinet.client(web_session).set_outlets([1], True)


# NETIO


async def test_netio_status(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """States, names, measurements in A/W/kWh, unit totals and identity."""
    status = await netio.client(web_session).read_status()
    assert [status.outlets[n].state for n in range(1, 5)] == [
        PowerState.OFF,
        PowerState.ON,
        PowerState.OFF,
        PowerState.OFF,
    ]
    second = status.outlets[2]
    assert second.name == "Outlet 2"
    assert second.current_a == pytest.approx(0.5)  # 500 mA
    assert second.power_w == 109  # W as the unit says
    assert second.energy_kwh == pytest.approx(2.0)  # 2000 Wh
    assert status.outlets[1].current_a == 0
    assert status.current_a == pytest.approx(0.5)
    assert status.power_w == 109
    assert status.energy_kwh == pytest.approx(10.0)
    assert (status.name, status.model, status.serial) == (
        "Rack 3 NETIO",
        "NETIO 4All",
        "24:A4:2C:39:12:7F",
    )
    (read,) = netio.calls()
    assert read.user == "reader"


async def test_netio_switches_several_outputs_in_one_request(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """One POST with an action per output, from the write account."""
    client = netio.client(web_session)
    await client.set_outlets([4, 1], True)
    (command,) = netio.calls(method="POST")
    assert command.user == "writer"
    assert command.headers["Content-Type"].startswith("application/json")
    assert command.body == (
        b'{"Outputs": [{"ID": 1, "Action": 1}, {"ID": 4, "Action": 1}]}'
    )
    assert netio.on == [True, True, False, True]
    await client.set_outlets([2, 4], False)
    assert netio.on == [True, False, False, False]
    assert b'"Action": 0' in netio.calls(method="POST")[-1].body


async def test_netio_read_only_account(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """The read account switching: 403 says so clearly (not an auth error)."""
    client = NetioClient(
        web_session, HOST, netio.port, username="reader", password="read-secret"
    )
    assert (await client.read_status()).outlets[2].state is PowerState.ON
    with pytest.raises(PduReadOnlyError, match="'reader' is read-only") as caught:
        await client.set_outlets([1], True)
    assert caught.value.issue == PDU_READ_ONLY
    assert not netio.on[0]
    # A separate write account with the read password (None) is refused as such.
    other = NetioClient(
        web_session,
        HOST,
        netio.port,
        username="reader",
        password="read-secret",
        write_username="writer",
    )
    with pytest.raises(PduAuthError):
        await other.set_outlets([1], True)


async def test_netio_refusals(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """400 bad syntax; 403 on a read; a write answered with another status."""
    client = netio.client(web_session)
    with pytest.raises(PduProtocolError, match="bad syntax"):
        await client.set_outlets([7], True)  # no output 7: the unit says 400
    netio.override("/netio.json", status=400, body="Bad Request")
    with pytest.raises(PduProtocolError, match="bad syntax"):
        await client.read_status()
    netio.override("/netio.json", status=403, body="Forbidden")
    with pytest.raises(PduAuthError, match="may not read"):
        await client.read_status()
    netio.override("/netio.json", status=302, body="", method="POST")
    with pytest.raises(PduProtocolError, match="HTTP 302"):
        await client.set_outlets([1], True)


async def test_netio_without_measurements_and_odd_values(
    web_session: aiohttp.ClientSession,
) -> None:
    """A model without metering: no measurements; odd states are UNKNOWN."""
    async with FakeNetio(metering=False, serial="") as netio:
        netio.raw.update({1: True, 2: "1", 3: None})
        status = await netio.client(web_session).read_status()
    assert [outlet.state for outlet in status.outlets.values()] == [
        PowerState.UNKNOWN,
        PowerState.UNKNOWN,
        PowerState.UNKNOWN,
        PowerState.OFF,
    ]
    assert status.outlets[4].current_a is None
    assert status.outlets[4].energy_kwh is None
    assert (status.current_a, status.power_w, status.energy_kwh) == (None, None, None)
    assert status.serial is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[]", "not a JSON object"),
        ('{"Agent": {}}', "no Outputs"),
        ('{"Outputs": []}', "no Outputs"),
        ('{"Outputs": [1]}', "not an object"),
        ('{"Outputs": [{"State": 1}]}', "no valid ID"),
        ('{"Outputs": [{"ID": true, "State": 1}]}', "no valid ID"),
    ],
)
async def test_netio_odd_documents(
    netio: FakeNetio, web_session: aiohttp.ClientSession, body: str, message: str
) -> None:
    """Documents that are JSON but not a NETIO status."""
    netio.override("/netio.json", body=body, content_type="application/json")
    with pytest.raises(PduProtocolError, match=message):
        await netio.client(web_session).read_status()


async def test_netio_over_tls(
    tmp_path: Path, web_session: aiohttp.ClientSession
) -> None:
    """HTTPS: a self-signed certificate is refused unless verification is off."""
    context, _ = self_signed(tmp_path)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def quiet_handshake_reset(
        loop: asyncio.AbstractEventLoop, context: dict[str, Any]
    ) -> None:
        # The fake's side of the handshake the client refused; anything else goes on.
        if not isinstance(
            context.get("exception"), ConnectionResetError | ssl.SSLError
        ):
            assert previous is not None
            previous(loop, context)

    async with FakeNetio(ssl_context=context) as netio:
        client = netio.client(web_session)
        assert client.description == f"netio {HOST}:{netio.port}"
        loop.set_exception_handler(quiet_handshake_reset)
        try:
            with pytest.raises(ConfigurationSwitchError, match="not trusted"):
                await client.read_status()
            await asyncio.sleep(0.1)
        finally:
            loop.set_exception_handler(previous)
        trusting = netio.client(web_session, verify_ssl=False)
        assert len((await trusting.read_status()).outlets) == 4
        await trusting.set_outlets([3], True)
        assert netio.on[2]
        await trusting.close()


# Gude


# firmware flavour -> the page it reads and switches with, the pages tried before
GUDE_DIALECTS = {
    "status.json": ("/status.json", []),
    "statusjsn.js": ("/statusjsn.js", ["/status.json"]),
    "ov.html": ("/ov.html", ["/status.json", "/statusjsn.js"]),
}


@pytest.mark.parametrize("firmware", sorted(GUDE_DIALECTS))
async def test_gude_dialects(firmware: str, web_session: aiohttp.ClientSession) -> None:
    """Probed once in order, then remembered; one cmd=1 request per outlet (p 1-based)."""
    page, tried = GUDE_DIALECTS[firmware]
    async with FakeGude(firmware=firmware) as gude:
        client = gude.client(web_session)
        status = await client.read_status()
        assert len(status.outlets) == 8
        assert all(outlet.state is PowerState.OFF for outlet in status.outlets.values())
        # names where the dialect has them (ov.html: none)
        assert status.outlets[8].name == (None if page == "/ov.html" else "Outlet 8")
        assert [seen.path for seen in gude.log] == [*tried, page]
        assert [seen.status for seen in gude.log] == [404] * len(tried) + [200]
        read = gude.log[-1]
        assert "Authorization" not in read.headers
        json_dialect = page != "/ov.html"
        assert dict(read.query) == ({"components": "1"} if json_dialect else {})
        gude.log.clear()
        await client.set_outlets([5, 2], True)
        prefix = [("components", "0")] if json_dialect else []
        assert [(seen.path, list(seen.query.items())) for seen in gude.log] == [
            (page, [*prefix, ("cmd", "1"), ("p", "2"), ("s", "1")]),
            (page, [*prefix, ("cmd", "1"), ("p", "5"), ("s", "1")]),
        ]
        assert gude.state(2)
        assert gude.state(5)
        await client.set_outlets([2], False)
        assert gude.log[-1].query["s"] == "0"
        assert not gude.state(2)
        gude.log.clear()
        status = await client.read_status()
        assert status.outlets[5].state is PowerState.ON
        assert [seen.path for seen in gude.log] == [page]  # remembered


async def test_gude_ov_html_without_port_numbers(
    web_session: aiohttp.ClientSession,
) -> None:
    """EPC 8316 firmware 1.2.0 writes "Power Port ,1": the port is the tag's position."""
    async with FakeGude(firmware="ov.html", ov_numbered=False) as gude:
        gude.on[2] = True
        gude.raw[4] = 7  # neither 0 nor 1
        status = await gude.client(web_session).read_status()
    assert [outlet.state for outlet in status.outlets.values()] == [
        PowerState.OFF,
        PowerState.OFF,
        PowerState.ON,
        PowerState.UNKNOWN,
        *[PowerState.OFF] * 4,
    ]


async def test_gude_command_before_any_read_probes_first(
    web_session: aiohttp.ClientSession,
) -> None:
    """A command to a unit not read yet: the dialect (and outlets) are found first."""
    async with FakeGude(firmware="statusjsn.js") as gude:
        client = gude.client(web_session)
        with pytest.raises(ConfigurationSwitchError, match="no outlet 9"):
            await client.set_outlets([9], True)
        await client.set_outlets([1], True)
        assert gude.on[0]
        assert [seen.path for seen in gude.log] == [
            "/status.json",
            "/statusjsn.js",
            "/statusjsn.js",
        ]


async def test_gude_without_any_dialect(web_session: aiohttp.ClientSession) -> None:
    """No status.json, statusjsn.js or ov.html: not a Gude unit, retrying cannot help."""
    async with FakeGude(firmware="ov.html") as gude:
        gude.override("/ov.html", status=404, body="Not Found")
        with pytest.raises(ConfigurationSwitchError, match="none of") as caught:
            await gude.client(web_session).read_status()
    assert not isinstance(caught.value, TransientSwitchError)
    assert [seen.path for seen in gude.log] == list(GUDE_PATHS)


async def test_gude_firmware_update_is_probed_again(
    web_session: aiohttp.ClientSession,
) -> None:
    """A remembered page that disappears fails once; the next read probes again."""
    async with FakeGude(firmware="status.json") as gude:
        client = gude.client(web_session)
        await client.read_status()
        gude.override("/status.json", status=404, body="Not Found")
        with pytest.raises(ConfigurationSwitchError, match="HTTP 404"):
            await client.read_status()
        gude.log.clear()
        assert len((await client.read_status()).outlets) == 8
        assert [seen.path for seen in gude.log] == ["/status.json", "/statusjsn.js"]


async def test_gude_session_login_is_a_configuration_error(
    web_session: aiohttp.ClientSession,
) -> None:
    """The login page instead of data: its own repair, not malformed JSON retried."""
    async with FakeGude(firmware="session", accounts={"admin": "gude"}) as gude:
        client = gude.client(web_session)
        with pytest.raises(PduLoginPageError, match="Basic Auth compatible") as caught:
            await client.read_status()
        assert caught.value.issue == PDU_LOGIN_PAGE
        assert not isinstance(caught.value, TransientSwitchError)
        assert [seen.path for seen in gude.log] == ["/status.json"]
        # the unit turned to session login after it was read
        gude.firmware = "status.json"
        await client.read_status()
        gude.firmware = "session"
        with pytest.raises(PduLoginPageError):
            await client.set_outlets([1], True)
        assert not gude.on[0]
    async with FakeGude(firmware="ov.html") as gude:
        gude.override("/ov.html", body=gude_login_page(), content_type="text/html")
        with pytest.raises(PduLoginPageError):
            await gude.client(web_session).read_status()


@pytest.mark.parametrize(
    ("page", "body", "message"),
    [
        ("/status.json", "[]", "outputs has no list of outlets"),
        ("/status.json", '{"outputs": []}', "outputs has no list of outlets"),
        ("/status.json", '{"outputs": ["on"]}', "not an object"),
        ("/status.json", "<html><body>Busy</body></html>", "HTML page, not JSON"),
        ("/ov.html", "<html><body>Overview</body></html>", "no powerstate"),
    ],
)
async def test_gude_odd_documents(
    web_session: aiohttp.ClientSession, page: str, body: str, message: str
) -> None:
    """Pages that are not a status with outputs."""
    async with FakeGude(firmware=page.lstrip("/")) as gude:
        gude.override(page, body=body, content_type="text/plain")
        with pytest.raises(PduProtocolError, match=message):
            await gude.client(web_session).read_status()


async def test_gude_authentication(web_session: aiohttp.ClientSession) -> None:
    """Basic only with a user name; a unit that asks for it refuses anonymous reads."""
    async with FakeGude(accounts={"admin": "gude"}) as gude:
        with pytest.raises(PduAuthError):
            await GudeClient(web_session, HOST, gude.port, username="").read_status()
        client = gude.client(web_session)
        assert len((await client.read_status()).outlets) == 8
        assert gude.calls()[0].user == "admin"


async def test_gude_command_not_ok(
    gude: FakeGude, web_session: aiohttp.ClientSession
) -> None:
    """A switch request answered with an unexpected status."""
    client = gude.client(web_session)
    await client.read_status()
    gude.override("/status.json", status=302, body="")
    with pytest.raises(PduProtocolError, match="HTTP 302"):
        await client.set_outlets([1], True)
    assert [seen.query.get("cmd") for seen in gude.log] == [None, "1"]


# Digital Loggers


async def test_dli_status_reports_the_physical_state(
    dli: FakeDli, web_session: aiohttp.ClientSession
) -> None:
    """physical_state wins over state and transient_state; state where it is absent."""
    dli.raw[1] = {"state": True, "transient_state": True, "physical_state": False}
    dli.raw[2] = {"state": False, "transient_state": True, "physical_state": True}
    objects = dli.outlet_objects()
    objects[2] = {
        "name": "Outlet 3",
        "state": True,
    }  # older firmware: no physical_state
    dli.override(
        "/restapi/relay/outlets/",
        body=json.dumps(objects),
        content_type="application/json",
    )
    status = await dli.client(web_session).read_status()
    assert status.outlets[1].state is PowerState.OFF
    assert status.outlets[2].state is PowerState.ON
    assert status.outlets[3].state is PowerState.ON  # no physical_state: state
    assert status.outlets[8].state is PowerState.ON
    assert status.outlets[4].name == "Outlet 4"
    (read,) = dli.calls()
    assert read.headers["Accept"] == "application/json"
    assert read.headers["Authorization"].startswith("Digest ")
    assert len(dli.log) == 2  # the challenge, then the answer


async def test_dli_switches_with_digest_and_csrf(
    dli: FakeDli, web_session: aiohttp.ClientSession
) -> None:
    """Several outlets: one matrix PUT (0-based), 207; one: its own PUT, 204; X-CSRF."""
    client = dli.client(web_session)
    await client.read_status()
    await client.set_outlets([3, 1], True)
    (matrix,) = dli.calls(method="PUT")
    assert matrix.path == "/restapi/relay/outlets/=0,2/state/"
    assert matrix.body == b"value=true"
    assert matrix.headers["X-CSRF"] == "x"
    assert matrix.headers["Accept"] == "application/json"
    assert matrix.status == 207
    assert dli.on[:3] == [True, False, True]
    assert len(dli.log) == 3  # only the first request was challenged
    await client.set_outlets([1], False)
    single = dli.calls(method="PUT")[-1]
    assert (single.path, single.body, single.status) == (
        "/restapi/relay/outlets/0/state/",
        b"value=false",
        204,
    )
    assert not dli.on[0]
    assert dli.digest_failures == 0


async def test_dli_stale_nonce_is_answered_again(
    dli: FakeDli, web_session: aiohttp.ClientSession
) -> None:
    """An expired nonce: the unit challenges afresh and the request goes through."""
    client = dli.client(web_session)
    await client.read_status()
    dli.expire_nonces()
    await client.set_outlets([2], True)
    assert dli.on[1]
    assert [seen.status for seen in dli.log] == [401, 200, 401, 204]


async def test_dli_wrong_password_and_forbidden_outlet(
    dli: FakeDli, web_session: aiohttp.ClientSession
) -> None:
    """A wrong hash is refused; an outlet the account may not switch is read-only."""
    with pytest.raises(PduAuthError):
        await dli.client(web_session, password="4321").read_status()
    assert dli.digest_failures == 1
    dli.denied.add(2)
    with pytest.raises(PduReadOnlyError, match="may not switch outlet 2 "):
        await dli.client(web_session).set_outlets([2], True)
    with pytest.raises(PduReadOnlyError, match="may not switch outlets 1, 2 "):
        await dli.client(web_session).set_outlets([1, 2], True)
    assert not any(dli.on[:2])
    dli.override("/restapi/relay/outlets/0/state/", status=400, method="PUT")
    with pytest.raises(PduProtocolError, match="HTTP 400"):
        await dli.client(web_session).set_outlets([1], True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "has no list of outlets"),
        ("[]", "has no list of outlets"),
        ("[true]", "not an object"),
    ],
)
async def test_dli_odd_documents(
    dli: FakeDli, web_session: aiohttp.ClientSession, body: str, message: str
) -> None:
    """JSON that is not the outlets list."""
    dli.override("/restapi/relay/outlets/", body=body, content_type="application/json")
    with pytest.raises(PduProtocolError, match=message):
        await dli.client(web_session).read_status()


def test_dli_user_name_with_colon() -> None:
    """Digest cannot carry a ':' in the user name: a configuration error at once."""
    with pytest.raises(ConfigurationSwitchError, match="not allowed"):
        DliClient(object(), "10.0.0.9", None, username="a:b", password="x")  # type: ignore[arg-type]


async def test_dli_fake_speaks_the_firmware(
    dli: FakeDli, web_session: aiohttp.ClientSession
) -> None:
    """The fake itself: 207 and Link headers for matrix URIs, writes without X-CSRF refused."""
    base = f"http://{HOST}:{dli.port}/restapi/relay/outlets"
    digest = DigestAuthMiddleware("admin", "1234")
    async with web_session.get(
        f"{base}/all;/state/", middlewares=(digest,)
    ) as response:
        assert response.status == 207
        assert await response.json() == [False] * 7 + [True]
        assert response.headers["Link"].count("rel=item") == 8
    async with web_session.get(
        f"{base}/=0,7/state/", middlewares=(digest,)
    ) as response:
        assert response.status == 207
        assert await response.json() == [False, True]
        assert response.headers["Link"] == (
            "</restapi/relay/outlets/0/state/>; rel=item, "
            "</restapi/relay/outlets/7/state/>; rel=item"
        )
    async with web_session.get(f"{base}/7/state/", middlewares=(digest,)) as response:
        assert response.status == 200
        assert await response.json() is True
    async with web_session.put(
        f"{base}/=0,4/state/",
        data={"value": "true"},
        headers={"X-CSRF": "x"},
        middlewares=(digest,),
    ) as response:
        assert response.status == 207
        assert await response.json() == [None, None]
    assert dli.on[0]
    assert dli.on[4]
    dli.on[0] = dli.on[4] = False
    async with web_session.put(
        f"{base}/0/state/", data={"value": "true"}, middlewares=(digest,)
    ) as response:
        assert response.status == 409
    for path, value, status in [
        ("9", "true", 404),
        ("x", "true", 404),
        ("=0,9", "true", 404),
        ("0,1", "true", 404),
        ("0", "on", 400),
    ]:
        async with web_session.put(
            f"{base}/{path}/state/",
            data={"value": value},
            headers={"X-CSRF": "x"},
            middlewares=(digest,),
        ) as response:
            assert response.status == status
    assert not dli.on[0]


# drivers/pdu.py's PduUnit over the fakes


async def test_unit_concurrent_reads_make_one_request(
    intellinet: FakeIntellinet, web_session: aiohttp.ClientSession
) -> None:
    """Eight outlets asking at once share one status read."""
    intellinet.delay = 0.05
    unit = PduUnit(intellinet.client(web_session, read_names=False))
    states = await asyncio.gather(*(unit.outlet_state(n) for n in range(1, 9)))
    assert states == [
        PowerState.ON,
        PowerState.OFF,
        PowerState.OFF,
        PowerState.ON,
        *[PowerState.OFF] * 4,
    ]
    assert len(intellinet.calls(path="/status.xml")) == 1
    assert unit.requests == unit.status_reads == 1
    assert await unit.outlet_state(9) is PowerState.UNKNOWN  # served from the cache
    assert [seen.path for seen in intellinet.calls()] == ["/", "/status.xml"]


@pytest.mark.parametrize("vendor", ["dli", "intellinet", "netio"])
async def test_unit_concurrent_switches_make_one_request(
    vendor: str, web_session: aiohttp.ClientSession
) -> None:
    """Eight switch(n, True) at once: one control request naming all eight outlets."""
    fake: FakePdu = {
        "dli": FakeDli,
        "intellinet": FakeIntellinet,
        "netio": lambda: FakeNetio(outlet_count=8),
    }[vendor]()
    async with fake:
        unit = PduUnit(fake.client(web_session, **_no_names(vendor)))
        await asyncio.gather(*(unit.switch(n, on=True) for n in range(1, 9)))
        assert all(fake.on)
        if vendor == "intellinet":
            (command,) = fake.calls(path="/control_outlet.htm")
            assert sorted(k for k in command.query if k.startswith("outlet")) == [
                f"outlet{n}" for n in range(8)
            ]
        elif vendor == "dli":
            (command,) = fake.calls(method="PUT")
            assert command.path == "/restapi/relay/outlets/=0,1,2,3,4,5,6,7/state/"
            assert command.status == 207
        else:
            (command,) = fake.calls(method="POST")
            sent = json.loads(command.body)["Outputs"]
            assert sent == [{"ID": n, "Action": 1} for n in range(1, 9)]
        assert unit.requests == 1


@pytest.mark.parametrize("vendor", sorted(VENDORS))
async def test_unit_requests_never_overlap(
    vendor: str, web_session: aiohttp.ClientSession
) -> None:
    """Reads and commands in any mix reach one unit one at a time; two units overlap."""
    factory, _ = VENDORS[vendor]
    async with factory() as fake:
        fake.delay = 0.01
        unit = PduUnit(fake.client(web_session, **_no_names(vendor)), max_age=0.0)
        await asyncio.gather(
            *(unit.outlet_state(n) for n in range(1, 5)),
            *(unit.switch(n, on=True) for n in (1, 2)),
            unit.status(),
            *(unit.switch(n, on=False) for n in (3, 4)),
            *(unit.outlet_state(n) for n in range(1, 5)),
        )
        assert fake.most_in_flight == 1
        assert fake.on[:2] == [True, True]
        # The fake does see overlap: two units (two clients) at the same address.
        # (long enough that the second request arrives while the first waits, even
        # when opening its connection is slow on a busy machine)
        fake.delay = 0.3
        other = PduUnit(fake.client(web_session, **_no_names(vendor)))
        await asyncio.gather(unit.status(), other.status())
        assert fake.most_in_flight == 2


async def test_unit_reads_again_after_a_switch(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """A fresh status serves reads, but never one from before the last command."""
    unit = PduUnit(netio.client(web_session), max_age=60.0)
    assert (await unit.status()).outlets[1].state is PowerState.OFF
    assert (await unit.status()).outlets[1].state is PowerState.OFF
    assert len(netio.calls(method="GET")) == 1
    await unit.switch(1, on=True)
    assert await unit.outlet_state(1) is PowerState.ON
    assert len(netio.calls(method="GET")) == 2


async def test_unit_hands_errors_to_every_waiter(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """A failed read fails every outlet that waited for it; a refused batch every switch."""
    netio.fail_status = 500
    unit = PduUnit(netio.client(web_session))
    results = await asyncio.gather(
        *(unit.outlet_state(n) for n in range(1, 5)), return_exceptions=True
    )
    assert all(isinstance(result, PduUnreachableError) for result in results)
    assert len(netio.calls(method="GET")) == 1
    netio.fail_status = None
    reader = PduUnit(netio.client(web_session, write_username=None))
    results = await asyncio.gather(
        *(reader.switch(n, on=True) for n in (1, 2)), return_exceptions=True
    )
    assert all(isinstance(result, PduReadOnlyError) for result in results)
    assert len(netio.calls(method="POST")) == 1


async def test_unit_superseded_command_does_not_hang(
    netio: FakeNetio, web_session: aiohttp.ClientSession
) -> None:
    """Off then on for one outlet while the unit is busy: the off caller gets an answer."""
    netio.delay = 0.1
    unit = PduUnit(netio.client(web_session))
    busy = asyncio.create_task(unit.status())  # holds the unit's lock
    await asyncio.sleep(0.02)
    off = asyncio.create_task(unit.switch(1, on=False))
    await asyncio.sleep(0)
    on = asyncio.create_task(unit.switch(1, on=True))
    await asyncio.wait_for(on, 2)
    await busy
    with pytest.raises(TransientSwitchError, match="meanwhile"):
        await asyncio.wait_for(off, 1)
    assert netio.on[0]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
async def test_unit_that_ignores_commands_is_caught_by_the_read_back(
    vendor: str, web_session: aiohttp.ClientSession
) -> None:
    """The unit acknowledges every command and its relay does not follow: a fault."""
    factory, _ = VENDORS[vendor]
    clock = FakeClock()
    async with factory() as fake:
        fake.ignore_commands = True
        unit = PduUnit(fake.client(web_session, **_no_names(vendor)), max_age=0.0)
        lab = Lab(clock=clock, listener=lambda event: None, sleep=clock.sleep)
        lab.add(ResourceSpec(name="r", feeds=(PduOutletSwitcher(unit, 3, "pdu"),)))
        lab.acquire(["r"], "ci")
        await lab.reconciler("r").reconcile_once()
        assert lab.state("r") is ResourceState.FAULT
        assert lab.reconciler("r").reason == (
            "pdu:outlet3 acknowledged but did not turn on"
        )
        commands = fake.commands()
        assert len(commands) == lab.timing.attempts  # each one acknowledged
        assert all(200 <= (seen.status or 0) < 300 for seen in commands)
        assert not fake.on[2]


def _no_names(vendor: str) -> dict[str, Any]:
    """Client options so that a status read is one request for every vendor."""
    return {"read_names": False} if vendor == "intellinet" else {}
