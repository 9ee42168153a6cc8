"""In-process stand-ins for HTTP power distribution units, on 127.0.0.1.

Each fake speaks its firmware's HTTP interface as the public sources show it: the same
paths, parameters, authentication scheme, status codes, content types and encodings, and
keeps its outlets' state. Each class's docstring names, for every request it answers, the
public source of the request and of the answer, and says where no source tells (then the
fake's answer is a plain guess that no driver may rely on).

- `FakeIntellinet`: Intellinet 163682 (status.xml, control_outlet.htm, config_PDU.htm;
  HTTP Basic only on `/`).
- `FakeNetio`: NETIO JSON M2M API (netio.json GET/POST, read and write accounts).
- `FakeGude`: Gude Expert Power Control in the firmware flavour the test chooses
  (status.json, statusjsn.js, ov.html only, or session login).
- `FakeDli`: Digital Loggers REST API behind HTTP Digest (matrix URIs answered 207).

Every fake logs each request (`log`, `calls()`), counts requests in flight at once
(`most_in_flight`: a unit's client must never overlap its requests), and can be told to
fail: `fail_status` (answer every request, or those to `fail_path`, with that status: 500),
`malformed` (status reads return a broken body), `delay` (seconds before answering: beyond
the client's timeout), `ignore_commands` (commands are acknowledged as usual and change
nothing: a relay that does not follow), `stop()` (the unit goes away: connections are
refused; `start()` brings it back on the same port). `raw[outlet]` makes the status report
that raw value for an outlet (1-based) instead of its on/off state.

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
    ignore_commands: bool = False
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

    def commands(self) -> list[Seen]:
        """The authenticated requests that switch outlets."""
        return [seen for seen in self.calls() if self.is_command(seen)]

    @staticmethod
    def is_command(seen: Seen) -> bool:
        """Whether a request switches outlets (every write; GET commands override)."""
        return seen.method != "GET"

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

    def relay(self, index: int, on: bool) -> None:
        """A command reaches outlet index (0-based): it follows unless told to ignore."""
        if not self.ignore_commands:
            self.on[index] = on

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
                    try:
                        response = await handler(request)
                    except web.HTTPException as err:  # no such page: 404
                        seen.status = err.status
                        raise
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
    """An Intellinet 163682 (8 outlets), as its public clients show its web interface.

    Sources: pdudaemon's driver (pdudaemon/drivers/intellinet.py, which points at the
    163682 user manual and at the API wrapper below), the API wrapper
    01programs/Intellinet_163682_IP_smart_PDU_API (api.py and the pages it recorded from
    a unit in test/test_data/), and argus_pdu.py (Luuk Isbouts' client for the Argus
    SW-0816, whose web interface has the same pages; its endpoints come from HAR
    captures of that interface).

    - `GET /`: the start page, the ONLY page behind HTTP Basic (api.py, `IPU._auth`: "The
      PDU only requests a http auth on the / page. All other pages/endpoints (including
      settings updates und file uploads) are unprotected."). Wrong or no credentials: 401
      with a Basic challenge; the start page's content is not published (a frameset
      here, which no driver reads). Factory account admin/admin (api.py DEFAULT_CREDS,
      pdudaemon's defaults).
    - `GET /status.xml`, to anyone: the `<response>` document of test_data/status.xml
      (cur0, stat0, curBan, tempBan, humBan, statBan, outletStat0..7 `on`/`off`,
      userVerifyRes), in gb2312 (api.py DEFAULT_ENDCODING; declared here in the XML
      declaration and the Content-Type).
    - `GET /control_outlet.htm?outlet{N}=1[&outlet{M}=1...]&op=0|1|2&submit=...`, to
      anyone: N 0-based, several outlets in one request, op 0 on, 1 off, 2 off then on
      (pdudaemon's command_map, api.py `_set_outlet_states`, argus_pdu.py); `submit` is
      the form button's label ("Anwenden" on a German unit, "Apply" in the HAR). The
      answer is an HTML page whose content no source records (a stub here).
    - `GET /config_PDU.htm`, to anyone: the form of test_data/config_PDU.htm, with each
      outlet's name in the input `otlt{N}` (maxlength 11) and its delays in
      `ondly{N}`/`ofdly{N}`, gb2312.
    """

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
        """The start page and the pages the drivers use."""
        app.router.add_get("/", self._start)
        app.router.add_get("/status.xml", self._status)
        app.router.add_get("/control_outlet.htm", self._control)
        app.router.add_get("/config_PDU.htm", self._config)

    @staticmethod
    def is_command(seen: Seen) -> bool:
        """The control page switches."""
        return seen.path == "/control_outlet.htm"

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Basic on the start page only; every other page answers anyone."""
        if request.path != "/":
            return "anonymous"
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
        lines += ["", "<userVerifyRes>0</userVerifyRes>", "", "</response>"]
        return "\n".join(lines)

    async def _start(self, request: web.Request) -> web.Response:
        return self._html(
            '<html><head><title>PDU</title></head><frameset rows="80,*">'
            '<frame src="top.htm"><frame src="status.htm"></frameset></html>'
        )

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
                self.relay(index, operation in ("0", "2"))  # 2: off, then on again
        return self._html("<html><body><p>Outlet control</p></body></html>")

    async def _config(self, request: web.Request) -> web.Response:
        rows = "".join(
            f'<tr><td><input name="otlt{index}" type="text" id="otlt{index}" '
            f'value="{name}" maxlength="11"></td>'
            f'<td><input name="ondly{index}" type="text" id="ondly{index}" '
            'value="0" maxlength="3"></td>'
            f'<td><input name="ofdly{index}" type="text" id="ofdly{index}" '
            'value="0" maxlength="3"></td></tr>'
            for index, name in enumerate(self.names)
        )
        return self._html(
            '<html><head><meta http-equiv="Content-Type" content="text/html; '
            'charset=gb2312"></head><body><form name="form1" method="post" action="">'
            f'<table>{rows}</table><input type="submit" value="Apply"></form>'
            "</body></html>"
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
    """A NETIO 4All-like unit: the JSON M2M API with read and write accounts.

    Sources: NETIO's protocol description "M2M API Protocol JSON" (the NETIO JSON API
    PDF linked from wiki.netio-products.com/JSON_API, and application note AN21 "JSON
    HTTP(S) protocol to control NETIO 110/230V power sockets"), the "Open API: M2M
    Protocols" chapter of the device manuals (PowerPDU 4PS, PowerBOX 3PF), and two
    public clients: pdudaemon's drivers/netiojson.py and labgrid's netio_json.py.

    - `GET /netio.json`: the status document, `Agent` (Model, Version, JSONVer,
      DeviceName, SerialNumber, Uptime, Time, NumOutputs...), `GlobalMeasure` (Voltage,
      Frequency, TotalCurrent mA, OverallPowerFactor, TotalLoad W, TotalEnergy Wh,
      EnergyStart; metering models only) and `Outputs` (ID 1-based, Name, State 0|1,
      Action, Delay; Current mA, PowerFactor, Load W, Energy Wh on metering models), as
      the JSON API description lists them.
    - `POST /netio.json` `{"Outputs": [{"ID": n, "Action": a}, ...]}`, several outputs in
      one document; actions 0 off, 1 on, 2 short off, 3 short on, 4 toggle, 5 no change,
      6 ignore (manuals, "Open API: M2M Protocols"; 2, 3 and 6 leave the state here).
      The answer is the full, updated status document (JSON_API wiki: "With write ...
      the device send you back the current (updated) json answer content"; pdudaemon
      reads the new `State` from it).
    - HTTP Basic with separate read and write accounts (JSON_API wiki: "There can be
      different username & password for the read and write access"; the manuals'
      "M2M API Protocol JSON over HTTP" page: Enable READ-ONLY and Enable READ-WRITE,
      each with its username and password): 401 for unknown credentials, 403 when the
      read account writes, 400 for a document the unit cannot parse. These codes are
      the ones the JSON API PDF is quoted with; its table was not at hand to check.
    """

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
                self.relay(index, action == 1)
            elif action == 4:
                self.relay(index, not self.on[index])
        return self._answer()


# Gude


GUDE_FIRMWARES = ("status.json", "statusjsn.js", "ov.html", "session")


@dataclass
class FakeGude(FakePdu):
    """A Gude Expert Power Control unit in one of its firmware flavours (`firmware`).

    Sources: Gude's "EPC HTTP Interface" wiki page (wiki.gude-systems.com/
    EPC_HTTP_Interface: the CGI commands and the JSON status), Gude's own clients
    gudesystems/port.py (port.py) and gudesystems/upload.py (gude/httpDevice.py), and
    labgrid's drivers written against real units: gude8031.py (EPC 8031), gude8225.py
    (EPC 8225-1, firmware 1.0.6), gude24.py (EPC 8080) and gude8316.py (EPC 8316,
    firmware 1.2.0).

    - `GET /status.json?components=C` (flavour "status.json" only): the JSON status;
      bit 1 of C is the outputs (httpDevice.py JSON_STATUS_OUTPUTS), a list of objects
      with `name` and `state` 0|1 in port order (wiki; gude8031.py reads
      `outputs[i]["state"]`), and `components=0` an empty object (gude8031.py: "happily
      returns an empty response but still switches"). `&cmd=1&p=N&s=0|1` switches port
      N (1-based) first (wiki; gude8031.py, httpDevice.py CGI_CMD_SWITCH_POWERPORTS).
      The other members of an output here (type, sw_cnt, batch, wdog) have no source;
      no driver reads them.
    - `GET /statusjsn.js?...` (flavours "status.json" and "statusjsn.js"): the same
      parameters and JSON (gude8225.py reads outputs from it on an EPC 8225 with
      firmware 1.0.6; port.py reads and switches with `components=513&cmd=1&p&s`).
    - `GET /ov.html[?cmd=1&p=N&s=0|1]` (every flavour but "session"): the wiki's "easy
      switching command"; the page carries one `<meta http-equiv="powerstate"
      content="Power Port N,0|1">` per port, one per line after the first, in port
      order (gude24.py on the EPC 8080). `ov_numbered=False` copies firmware 1.2.0 of
      the EPC 8316, which leaves N out (`content="Power Port ,0"`; gude8316.py then
      takes the port from the line). The rest of the page is a stub here.
    - Flavour "session": the unit's HTTP authentication is set to session login rather
      than Basic (httpDevice.py's `sessionauth` option, and `basicauth` in the HTTP
      configuration command). Every page then answers the web login form to a client
      without a session, whatever Basic credentials it sends; the form's exact HTML is
      not published: a page with a password field here.
    - HTTP Basic (`http://user:secret@...` in every wiki example; port.py and
      httpDevice.py send HTTPBasicAuth) only when the fake is given `accounts`: 401
      with a Basic challenge otherwise.
    - A page the flavour lacks: 404.
    """

    vendor: ClassVar[str] = "gude"
    status_path: ClassVar[str] = "/status.json"

    accounts: dict[str, str] = field(default_factory=dict)  # empty: no authentication
    firmware: str = "status.json"
    ov_numbered: bool = True

    def __post_init__(self) -> None:
        """A flavour the fake knows; outlets and names as every fake sets them."""
        assert self.firmware in GUDE_FIRMWARES, self.firmware
        super().__post_init__()

    def client(self, session: aiohttp.ClientSession, **options: Any) -> GudeClient:
        """A client with the first account, if the unit has one, unless told."""
        if self.accounts:
            user, password = next(iter(self.accounts.items()))
            options.setdefault("username", user)
            options.setdefault("password", password)
        return GudeClient(session, HOST, self.port, https=self.https, **options)

    def routes(self, app: web.Application) -> None:
        """The pages of the flavour."""
        if self.firmware in ("status.json", "session"):
            app.router.add_get("/status.json", self._json)
        if self.firmware in ("status.json", "statusjsn.js", "session"):
            app.router.add_get("/statusjsn.js", self._json)
        app.router.add_get("/ov.html", self._overview)

    @staticmethod
    def is_command(seen: Seen) -> bool:
        """Any page with cmd=1 switches."""
        return seen.query.get("cmd") == "1"

    def authenticate(self, request: web.Request) -> str | web.Response:
        """HTTP Basic when the unit has accounts (session login: the form, to anyone)."""
        if not self.accounts or self.firmware == "session":
            return "anonymous"
        return self._basic_user(request, self.accounts) or self._basic_refusal(
            "Expert Power Control"
        )

    def _instead(self, request: web.Request) -> web.Response | None:
        """What a page answers instead of itself: the login form, a bad command's 400.

        A good command (cmd=1) switches its port here, before the page is made.
        """
        if self.firmware == "session":
            return web.Response(text=gude_login_page(), content_type="text/html")
        query = request.query
        if query.get("cmd") != "1":
            return None
        try:
            outlet, value = int(query["p"]), int(query["s"])
        except KeyError, ValueError:
            return web.Response(status=400, text="Bad Request")
        if 1 <= outlet <= self.outlet_count and value in (0, 1):
            self.relay(outlet - 1, value == 1)
        return None

    async def _json(self, request: web.Request) -> web.Response:
        if (instead := self._instead(request)) is not None:
            return instead
        try:
            components = int(request.query.get("components", "0"), 0)
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

    async def _overview(self, request: web.Request) -> web.Response:
        if (instead := self._instead(request)) is not None:
            return instead
        metas = (
            []
            if self.malformed
            else [
                '<meta http-equiv="powerstate" content="Power Port '
                f"{index + 1 if self.ov_numbered else ''},"
                f'{self.raw.get(index + 1, 1 if on else 0)}">'
                for index, on in enumerate(self.on)
            ]
        )
        page = "\n".join(
            [
                "<html><head>",
                *metas,
                "<title>Expert Power Control</title></head>",
                "<body><table><tr><td>Power Port</td></tr></table></body></html>",
            ]
        )
        return web.Response(text=page, content_type="text/html")


def gude_login_page() -> str:
    """The web login form a Gude unit set to session login shows (its HTML is a guess)."""
    return (
        "<html><head><title>Expert Power Control - Login</title></head><body>"
        '<form method="post" action="/login.html">'
        '<input type="text" name="username">'
        '<input type="password" name="password">'
        '<input type="submit" value="Login"></form></body></html>'
    )


# Digital Loggers


@dataclass
class FakeDli(FakePdu):
    """A Digital Loggers Web Power Switch Pro: REST API behind HTTP Digest.

    Sources: DLI's REST API examples (digital-loggers.com/rest.html) and its "DLI
    REST-style API Reference" (public.digital-loggers.com/docs/.../rest_style_api:
    "Supported standard interfaces", "Extensions to the standard interfaces" and
    "Nonstandard 207 Multiple responses format"), with labgrid's
    digitalloggers_restapi.py (an Ethernet Power Controller 7) and the INDI DLI driver.

    - Every path ends with "/" and outlets are 0-based (reference, "URIs"; rest.html:
      "Relays are zero based").
    - `GET /restapi/relay/outlets/`: the outlet objects with `name`, `locked`,
      `critical`, `cycle_delay`, `state` (the persistent state), `transient_state` and
      `physical_state` (the relay itself; rest.html explains the three states).
    - `GET /restapi/relay/outlets/{sel}/state/`: `{sel}` one index -> `true`/`false`
      (200); a matrix URI, `all;` or `=0,4` -> 207 with a JSON array, one entry per
      outlet (rest.html "Get the status of all relays"; the INDI driver reads `[true]`
      from `=N`), and a `Link: <...>; rel=item` header per outlet (reference, 207:
      "The JSON-formatted response contains an array of responses" with the Link
      headers "to gain the information on what resource each response is returned
      from").
    - `PUT /restapi/relay/outlets/{sel}/state/` with the form `value=true|false`: one
      index (rest.html "Switch relay 3 on"; answered 204 here: the examples do not show
      the status) or a matrix URI for several outlets in one request (rest.html "Turn
      relays 1 and 5 on": `=0,4`; labgrid writes `=N`), answered 207 like a matrix GET
      (reference: the API "generates this code when processing matrix URI requests");
      what each entry holds for a PUT is not published (null here). Without `X-CSRF`
      the write is refused (reference, "Cross-site request forgery protection"; the
      status is not published, 409 here). An outlet the account may not switch: 403
      (rest.html: non-admin users "must be granted access"; that a matrix naming one
      such outlet is refused as a whole is a guess).
    - HTTP Digest (reference, "HTTP authentication"; every rest.html example uses
      `--digest`; factory admin/1234), checked as RFC 7616 says: a real challenge
      (realm, nonce, opaque, qop="auth", MD5), the answer's hash checked, nonce counts
      must grow, and nonces can be expired (then the challenge says stale=true).
    """

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
        """The relay outlets resource and each outlet's state, one or a matrix."""
        app.router.add_get("/restapi/relay/outlets/", self._outlets)
        app.router.add_get("/restapi/relay/outlets/{selector}/state/", self._get_state)
        app.router.add_put("/restapi/relay/outlets/{selector}/state/", self._put_state)

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

    def _selected(self, request: web.Request) -> tuple[list[int], bool] | None:
        """The outlets (0-based) a path selects and whether it is a matrix; None: 404."""
        selector = request.match_info["selector"]
        if selector == "all;":
            return list(range(self.outlet_count)), True
        matrix = selector.startswith("=")
        try:
            indexes = [int(part) for part in selector.removeprefix("=").split(",")]
        except ValueError:
            return None
        if not matrix and len(indexes) != 1:
            return None
        if not all(0 <= index < self.outlet_count for index in indexes):
            return None
        return indexes, matrix

    @staticmethod
    def _multiple(indexes: list[int], entries: list[Any]) -> web.Response:
        """207 Multiple responses: a JSON array, a Link header per resource."""
        links = ", ".join(
            f"</restapi/relay/outlets/{index}/state/>; rel=item" for index in indexes
        )
        return web.json_response(entries, status=207, headers={"Link": links})

    async def _get_state(self, request: web.Request) -> web.Response:
        selected = self._selected(request)
        if selected is None:
            return web.Response(status=404, text="Not Found")
        indexes, matrix = selected
        if not matrix:
            return web.json_response(self.on[indexes[0]])
        return self._multiple(indexes, [self.on[index] for index in indexes])

    async def _put_state(self, request: web.Request) -> web.Response:
        if "X-CSRF" not in request.headers:
            return web.Response(status=409, text="CSRF protection: send X-CSRF")
        selected = self._selected(request)
        if selected is None:
            return web.Response(status=404, text="Not Found")
        indexes, matrix = selected
        if any(index + 1 in self.denied for index in indexes):
            return web.Response(status=403, text="Forbidden")
        value = (await request.post()).get("value")
        if value not in ("true", "false"):
            return web.Response(status=400, text="Bad Request")
        for index in indexes:
            self.relay(index, value == "true")
        if matrix:
            return self._multiple(indexes, [None] * len(indexes))
        return web.Response(status=204)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Digest's MD5
