"""In-process stand-ins for HTTP power distribution units, on 127.0.0.1.

Each fake speaks its firmware's HTTP interface: the same paths, parameters, authentication
scheme, status codes, content types and encodings, and keeps its outlets' state:

- `FakeIntellinet`: Intellinet 163682. `GET /status.xml` (text/xml; charset=gb2312, the body
  encoded in gb2312 with an XML declaration saying so), `GET /control_outlet.htm?outletN=1..
  &op=0|1|2&submit=Apply` (N 0-based; an HTML page back), `GET /config_PDU.htm` (the form
  with the names in `otlt{N}`, gb2312). HTTP Basic on every page.
- `FakeNetio`: NETIO JSON M2M API. `GET /netio.json`, `POST /netio.json` (answered with the
  full status document), 400 for bad syntax, 401 for unknown credentials, 403 when a
  read-only account writes. Measurements: Current mA, Load W, Energy Wh.
- `FakeGude`: Gude Expert Power Control. `GET /status.json?components=1` (outputs),
  `GET /status.json?components=0&cmd=1&p=N&s=0|1` (answers `{}`). HTTP Basic only when
  the fake is given credentials.
- `FakeDli`: Digital Loggers REST API. `GET /restapi/relay/outlets/`, `GET
  /restapi/relay/outlets/all;/state/` (207), `PUT /restapi/relay/outlets/{i}/state/` with
  the form `value=true|false` and `X-CSRF` (204). HTTP Digest: a real challenge (realm,
  nonce, opaque, qop="auth", MD5), the answer's hash checked, nonce counts must grow, and
  nonces can be expired (then the challenge says stale=true).

Every fake logs each request (`log`, `calls()`), counts requests in flight at once
(`most_in_flight`: a unit's client must never overlap its requests), and can be told to
fail: `fail_status` (answer every request, or those to `fail_path`, with that status: 500),
`malformed` (status reads return a broken body), `delay` (seconds before answering: beyond
the client's timeout), `stop()` (the unit goes away: connections are refused; `start()`
brings it back on the same port). `raw[outlet]` makes the status report that raw value
for an outlet (1-based) instead of its on/off state.

Use: `async with FakeNetio() as unit: client = unit.client(session)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import hashlib
import json
import re
import secrets
import ssl
import time
from types import TracebackType
from typing import Any, ClassVar, Self

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from custom_components.labpower.drivers.dli import DliClient
from custom_components.labpower.drivers.gude import GudeClient
from custom_components.labpower.drivers.intellinet import IntellinetClient
from custom_components.labpower.drivers.netio import NetioClient

HOST = "127.0.0.1"

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the unit saw it, and what it answered."""

    method: str
    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]
    body: bytes
    user: str | None = None  # the account it was authenticated as; None: refused
    status: int | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class FakePdu:
    """What every fake unit shares: outlets, the request log, failures, start and stop."""

    vendor: ClassVar[str]
    status_path: ClassVar[str]

    outlet_count: int = 8
    names: list[str] = field(default_factory=list)
    ssl_context: ssl.SSLContext | None = None
    on: list[bool] = field(default_factory=list)  # index 0 is outlet 1
    # outlet (1-based) -> the raw value its status reports instead of on/off
    raw: dict[int, Any] = field(default_factory=dict)
    log: list[Seen] = field(default_factory=list)
    fail_status: int | None = None
    fail_path: str | None = None  # None: every path fails with fail_status
    malformed: bool = False
    delay: float = 0.0
    port: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    # (method, path) -> (status, body, content type) answered instead
    overrides: dict[tuple[str, str], tuple[int, bytes, str]] = field(
        default_factory=dict
    )
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _release: asyncio.Event = field(
        default_factory=asyncio.Event, init=False, repr=False
    )

    def __post_init__(self) -> None:
        """Every outlet off, named "Outlet N" unless names are given."""
        if not self.on:
            self.on = [False] * self.outlet_count
        if not self.names:
            self.names = [f"Outlet {n}" for n in range(1, self.outlet_count + 1)]

    # Running

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a stop)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            HOST,
            self.port,
            ssl_context=self.ssl_context,
            reuse_address=True,
        )
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Go away: stop listening; requests waiting on `delay` end at once."""
        if self._runner is not None:
            self._release.set()
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Started."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stopped."""
        await self.stop()

    @property
    def https(self) -> bool:
        """Whether the fake serves TLS."""
        return self.ssl_context is not None

    def client(self, session: aiohttp.ClientSession, **options: Any) -> Any:
        """A driver client for this unit with the right credentials unless told."""
        raise NotImplementedError

    # What tests look at

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """Authenticated requests (a refused Digest challenge round trip is not one)."""
        return [
            seen
            for seen in self.log
            if seen.user is not None
            and (method is None or seen.method == method)
            and (path is None or seen.path == path)
        ]

    def override(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str = "text/plain",
        method: str = "GET",
    ) -> None:
        """Answer `method` `path` (once authenticated) with this from now on."""
        data = body.encode() if isinstance(body, str) else body
        self.overrides[method, path] = (status, data, content_type)

    def state(self, outlet: int) -> bool:
        """Whether outlet (1-based) is on."""
        return self.on[outlet - 1]

    # Serving

    def routes(self, app: web.Application) -> None:
        """Add the unit's pages."""
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> str | web.Response:
        """The account name, or the refusal to answer with."""
        raise NotImplementedError

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        seen = Seen(
            request.method,
            request.path,
            request.query.copy(),
            request.headers.copy(),
            await request.read(),
        )
        self.log.append(seen)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.delay):
                        await self._release.wait()
            user = self.authenticate(request)
            if isinstance(user, web.Response):
                response: web.StreamResponse = user
            else:
                seen.user = user
                override = self.overrides.get((request.method, request.path))
                if override is not None:
                    status, data, content_type = override
                    response = web.Response(
                        status=status,
                        body=data,
                        headers={"Content-Type": content_type},
                    )
                elif self.fail_status is not None and self.fail_path in (
                    None,
                    request.path,
                ):
                    response = web.Response(
                        status=self.fail_status, text="Internal Server Error"
                    )
                else:
                    response = await handler(request)
            seen.status = response.status
            return response
        finally:
            self.in_flight -= 1

    def _basic_user(self, request: web.Request, accounts: dict[str, str]) -> str | None:
        """The Basic account whose credentials the request carries."""
        header = request.headers.get("Authorization", "")
        try:
            credentials = aiohttp.BasicAuth.decode(header)
        except ValueError:
            return None
        if accounts.get(credentials.login) == credentials.password:
            return credentials.login
        return None

    @staticmethod
    def _basic_refusal(realm: str) -> web.Response:
        return web.Response(
            status=401,
            text="401 Unauthorized",
            headers={"WWW-Authenticate": f'Basic realm="{realm}"'},
        )


# Intellinet 163682


@dataclass
class FakeIntellinet(FakePdu):
    """An Intellinet 163682: status.xml, control_outlet.htm and config_PDU.htm."""

    vendor: ClassVar[str] = "intellinet"
    status_path: ClassVar[str] = "/status.xml"

    accounts: dict[str, str] = field(default_factory=lambda: {"admin": "admin"})
    amps_per_outlet: float = 0.3

    def client(
        self, session: aiohttp.ClientSession, **options: Any
    ) -> IntellinetClient:
        """A client with the first account unless told."""
        user, password = next(iter(self.accounts.items()))
        options.setdefault("username", user)
        options.setdefault("password", password)
        return IntellinetClient(session, HOST, self.port, **options)

    def routes(self, app: web.Application) -> None:
        """The pages the drivers use."""
        app.router.add_get("/status.xml", self._status)
        app.router.add_get("/control_outlet.htm", self._control)
        app.router.add_get("/config_PDU.htm", self._config)

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Basic on every page."""
        return self._basic_user(request, self.accounts) or self._basic_refusal(
            "Intellinet PDU"
        )

    def status_xml(self) -> str:
        """The status document as the firmware writes it."""
        amps = round(sum(self.on) * self.amps_per_outlet, 1)
        lines = [
            '<?xml version="1.0" encoding="gb2312"?>',
            "<response>",
            f"<cur0>{amps}</cur0>",
            "<stat0>normal</stat0>",
            f"<curBan>{amps}</curBan>",
            "<tempBan>24</tempBan>",
            "<humBan>38</humBan>",
            "<statBan>normal</statBan>",
        ]
        for index, on in enumerate(self.on):
            value = self.raw.get(index + 1, "on" if on else "off")
            lines.append(f"<outletStat{index}>{value}</outletStat{index}>")
        lines += ["<userVerifyRes>0</userVerifyRes>", "</response>"]
        return "\n".join(lines)

    async def _status(self, request: web.Request) -> web.Response:
        text = self.status_xml()
        if self.malformed:
            text = text.replace("</outletStat3>", "</outletStat>")
        return web.Response(
            body=text.encode("gb2312"),
            headers={"Content-Type": "text/xml; charset=gb2312"},
        )

    async def _control(self, request: web.Request) -> web.Response:
        operation = request.query.get("op")
        for key in request.query:
            match = re.fullmatch(r"outlet(\d+)", key)
            if match is None or request.query[key] != "1":
                continue
            index = int(match[1])
            if index < len(self.on) and operation in ("0", "1", "2"):
                self.on[index] = operation in ("0", "2")  # 2: off, then on again
        return self._html("<html><body><p>Outlet control</p></body></html>")

    async def _config(self, request: web.Request) -> web.Response:
        rows = "".join(
            f'<tr><td>Outlet {index + 1}</td><td><input type="text" name="otlt{index}" '
            f'id="otlt{index}" value="{name}" maxlength="15"></td>'
            f'<td><input type="text" name="ondly{index}" value="0"></td>'
            f'<td><input type="text" name="ofdly{index}" value="0"></td></tr>'
            for index, name in enumerate(self.names)
        )
        return self._html(
            '<html><head><meta http-equiv="Content-Type" content="text/html; '
            'charset=gb2312"></head><body><form method="post" action="config_PDU.htm">'
            f'<table>{rows}</table><input type="submit" name="submit" value="Apply">'
            "</form></body></html>"
        )

    @staticmethod
    def _html(text: str) -> web.Response:
        return web.Response(
            body=text.encode("gb2312"),
            headers={"Content-Type": "text/html; charset=gb2312"},
        )


# NETIO


@dataclass
class FakeNetio(FakePdu):
    """A NETIO 4All-like unit: the JSON M2M API with read and write accounts."""

    vendor: ClassVar[str] = "netio"
    status_path: ClassVar[str] = "/netio.json"

    outlet_count: int = 4
    # account -> (password, may write)
    accounts: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {
            "reader": ("read-secret", False),
            "writer": ("write-secret", True),
        }
    )
    energy_wh: list[int] = field(default_factory=list)
    metering: bool = True
    device_name: str = "Rack 3 NETIO"
    serial: str = "24:A4:2C:39:12:7F"

    def __post_init__(self) -> None:
        """Energy counters start at 1000 Wh per output."""
        super().__post_init__()
        if not self.energy_wh:
            self.energy_wh = [1000 * n for n in range(1, self.outlet_count + 1)]

    def client(self, session: aiohttp.ClientSession, **options: Any) -> NetioClient:
        """Read with "reader", write with "writer" unless told."""
        options.setdefault("username", "reader")
        options.setdefault("password", self.accounts["reader"][0])
        if "write_username" not in options and "writer" in self.accounts:
            options["write_username"] = "writer"
            options.setdefault("write_password", self.accounts["writer"][0])
        return NetioClient(session, HOST, self.port, https=self.https, **options)

    def routes(self, app: web.Application) -> None:
        """One resource, read and written."""
        app.router.add_get("/netio.json", self._read)
        app.router.add_post("/netio.json", self._write)

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Basic (a POST from an account that may only read gets 403)."""
        passwords = {user: password for user, (password, _) in self.accounts.items()}
        return self._basic_user(request, passwords) or self._basic_refusal("NETIO")

    def document(self) -> dict[str, Any]:
        """The full status document."""
        outputs = []
        for index, on in enumerate(self.on):
            outlet = index + 1
            output: dict[str, Any] = {
                "ID": outlet,
                "Name": self.names[index],
                "State": self.raw.get(outlet, 1 if on else 0),
                "Action": 6,
                "Delay": 2020,
            }
            if self.metering:
                milliamps = 250 * outlet if on else 0
                output |= {
                    "Current": milliamps,
                    "PowerFactor": 0.95 if on else 0.0,
                    "Load": round(milliamps * 0.23 * 0.95),
                    "Energy": self.energy_wh[index],
                }
            outputs.append(output)
        document: dict[str, Any] = {
            "Agent": {
                "Model": "NETIO 4All",
                "Version": "3.3.1",
                "JSONVer": "2.1",
                "DeviceName": self.device_name,
                "VendorID": 0,
                "OemID": 0,
                "SerialNumber": self.serial,
                "Uptime": 7200,
                "Time": "2026-01-01T12:00:00+01:00",
                "NumOutputs": self.outlet_count,
            },
            "Outputs": outputs,
        }
        if self.metering:
            document["GlobalMeasure"] = {
                "Voltage": 230.0,
                "Frequency": 50.0,
                "TotalCurrent": sum(o["Current"] for o in outputs),
                "OverallPowerFactor": 0.95,
                "TotalLoad": sum(o["Load"] for o in outputs),
                "TotalEnergy": sum(self.energy_wh),
                "EnergyStart": "2025-01-01T00:00:00+01:00",
            }
        return document

    def _answer(self) -> web.Response:
        if self.malformed:
            return web.Response(
                text='{"Agent": {"Model": "NETIO 4All"}, "Outputs": [',
                content_type="application/json",
            )
        return web.json_response(self.document())

    async def _read(self, request: web.Request) -> web.Response:
        return self._answer()

    async def _write(self, request: web.Request) -> web.Response:
        user = aiohttp.BasicAuth.decode(request.headers["Authorization"]).login
        if not self.accounts[user][1]:
            return web.Response(status=403, text="403 Forbidden")
        try:
            command = json.loads(await request.read())
            outputs = command["Outputs"]
            changes = [(int(o["ID"]), int(o["Action"])) for o in outputs]
        except ValueError, KeyError, TypeError:
            return web.Response(status=400, text="400 Bad Request")
        if any(not 1 <= outlet <= self.outlet_count for outlet, _ in changes) or any(
            not 0 <= action <= 6 for _, action in changes
        ):
            return web.Response(status=400, text="400 Bad Request")
        for outlet, action in changes:
            index = outlet - 1
            if action in (0, 1):
                self.on[index] = action == 1
            elif action == 4:
                self.on[index] = not self.on[index]
        return self._answer()


# Gude


@dataclass
class FakeGude(FakePdu):
    """A Gude Expert Power Control unit (JSON interface, basic-compatible mode)."""

    vendor: ClassVar[str] = "gude"
    status_path: ClassVar[str] = "/status.json"

    accounts: dict[str, str] = field(default_factory=dict)  # empty: no authentication

    def client(self, session: aiohttp.ClientSession, **options: Any) -> GudeClient:
        """A client with the first account, if the unit has one, unless told."""
        if self.accounts:
            user, password = next(iter(self.accounts.items()))
            options.setdefault("username", user)
            options.setdefault("password", password)
        return GudeClient(session, HOST, self.port, https=self.https, **options)

    def routes(self, app: web.Application) -> None:
        """status.json reads and switches."""
        app.router.add_get("/status.json", self._status)

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Basic when the unit has accounts."""
        if not self.accounts:
            return "anonymous"
        return self._basic_user(request, self.accounts) or self._basic_refusal(
            "Expert Power Control"
        )

    async def _status(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("cmd") == "1":
            try:
                outlet, value = int(query["p"]), int(query["s"])
            except KeyError, ValueError:
                return web.Response(status=400, text="Bad Request")
            if 1 <= outlet <= self.outlet_count and value in (0, 1):
                self.on[outlet - 1] = value == 1
        try:
            components = int(query.get("components", "0"), 0)
        except ValueError:
            return web.Response(status=400, text="Bad Request")
        if self.malformed and components & 1:
            return web.Response(
                text='{"outputs": [{"name": "Power Port", "state": 1',
                content_type="application/json",
            )
        body: dict[str, Any] = {}
        if components & 1:
            body["outputs"] = [
                {
                    "name": self.names[index],
                    "state": self.raw.get(index + 1, 1 if on else 0),
                    "type": 1,
                    "sw_cnt": 0,
                    "batch": [0, 0, 0, 0, 0],
                    "wdog": [0, 2, "192.168.0.1"],
                }
                for index, on in enumerate(self.on)
            ]
        return web.json_response(body)


# Digital Loggers


@dataclass
class FakeDli(FakePdu):
    """A Digital Loggers Web Power Switch Pro: REST API behind HTTP Digest."""

    vendor: ClassVar[str] = "dli"
    status_path: ClassVar[str] = "/restapi/relay/outlets/"

    accounts: dict[str, str] = field(default_factory=lambda: {"admin": "1234"})
    realm: str = "Power switch"
    denied: set[int] = field(default_factory=set)  # outlets the account may not switch
    nonces: dict[str, int] = field(default_factory=dict)  # nonce -> last nonce count
    expired: set[str] = field(default_factory=set)
    opaque: str = field(default_factory=lambda: secrets.token_hex(16))
    digest_failures: int = 0

    def client(self, session: aiohttp.ClientSession, **options: Any) -> DliClient:
        """A client with the first account unless told."""
        user, password = next(iter(self.accounts.items()))
        options.setdefault("username", user)
        options.setdefault("password", password)
        return DliClient(session, HOST, self.port, https=self.https, **options)

    def expire_nonces(self) -> None:
        """Every nonce issued so far becomes stale (the next request is challenged)."""
        self.expired |= set(self.nonces)

    def routes(self, app: web.Application) -> None:
        """The relay outlets resource."""
        app.router.add_get("/restapi/relay/outlets/", self._outlets)
        app.router.add_get("/restapi/relay/outlets/all;/state/", self._all_states)
        app.router.add_put("/restapi/relay/outlets/{index}/state/", self._put_state)

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Digest (RFC 7616, MD5, qop=auth), checked in full."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return self._challenge(stale=False)
        fields = {
            key: quoted or plain
            for key, quoted, plain in re.findall(
                r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', header[len("Digest ") :]
            )
        }
        nonce = fields.get("nonce", "")
        if nonce in self.expired:
            return self._challenge(stale=True)
        user = fields.get("username", "")
        password = self.accounts.get(user)
        count = int(fields.get("nc", "0"), 16)
        if (
            password is None
            or nonce not in self.nonces
            or fields.get("realm") != self.realm
            or fields.get("opaque") != self.opaque
            or fields.get("qop") != "auth"
            or fields.get("algorithm", "MD5").upper() != "MD5"
            or fields.get("uri") != request.raw_path
            or count <= self.nonces[nonce]  # a replayed nonce count
        ):
            self.digest_failures += 1
            return self._challenge(stale=False)
        ha1 = _md5(f"{user}:{self.realm}:{password}")
        ha2 = _md5(f"{request.method}:{fields['uri']}")
        expected = _md5(
            f"{ha1}:{nonce}:{fields['nc']}:{fields.get('cnonce', '')}:auth:{ha2}"
        )
        if not secrets.compare_digest(expected, fields.get("response", "")):
            self.digest_failures += 1
            return self._challenge(stale=False)
        self.nonces[nonce] = count
        return user

    def _challenge(self, *, stale: bool) -> web.Response:
        nonce = secrets.token_hex(16)
        self.nonces[nonce] = 0
        challenge = (
            f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", '
            f'opaque="{self.opaque}", algorithm=MD5'
        )
        if stale:
            challenge += ", stale=true"
        return web.Response(
            status=401,
            text="<html><body>401 Unauthorized</body></html>",
            content_type="text/html",
            headers={"WWW-Authenticate": challenge},
        )

    def outlet_objects(self) -> list[dict[str, Any]]:
        """The outlets resource as the firmware returns it."""
        outlets = []
        for index, on in enumerate(self.on):
            outlet = {
                "name": self.names[index],
                "locked": False,
                "critical": False,
                "cycle_delay": None,
                "state": on,
                "physical_state": on,
                "transient_state": on,
            }
            outlet |= self.raw.get(index + 1, {})
            outlets.append(outlet)
        return outlets

    async def _outlets(self, request: web.Request) -> web.Response:
        if self.malformed:
            return web.Response(
                text='[{"name": "Outlet 1", "state": tr',
                content_type="application/json",
            )
        return web.json_response(self.outlet_objects())

    async def _all_states(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.on), status=207)

    async def _put_state(self, request: web.Request) -> web.Response:
        if "X-CSRF" not in request.headers:
            return web.Response(status=409, text="CSRF protection: send X-CSRF")
        try:
            index = int(request.match_info["index"])
        except ValueError:
            return web.Response(status=404, text="Not Found")
        if not 0 <= index < self.outlet_count:
            return web.Response(status=404, text="Not Found")
        if index + 1 in self.denied:
            return web.Response(status=403, text="Forbidden")
        value = (await request.post()).get("value")
        if value not in ("true", "false"):
            return web.Response(status=400, text="Bad Request")
        self.on[index] = value == "true"
        return web.Response(status=204)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Digest's MD5
