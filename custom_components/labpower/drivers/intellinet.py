"""Intellinet 163682 (8 outlets; also sold as LogiLink PDU8P01) over its web interface.

Status: `GET /status.xml` -> `<response>` with `<cur0>` (amps) and `<outletStat0>` ..
`<outletStat7>`, each `on` or `off`. The firmware declares the body as gb2312: it is decoded
before parsing (expat cannot read multi-byte encodings itself). Switching: one
`GET /control_outlet.htm?outlet{N}=1&...&op={0 on | 1 off}&submit=Apply` for every outlet
at once (N 0-based); the answer is an HTML page, ignored: the caller reads the status again.
Outlet names come from the configuration form (`GET /config_PDU.htm`, inputs `otlt{N}`),
read now and then; a failure there never fails the status.

Credentials: the firmware asks for HTTP Basic only on its start page `/`; every other page
answers anyone. So a wrong password shows only there: `GET /` is asked before the first
request, again an hour later, and again after any failed request (a unit that was away
may have been reset or reconfigured). 401 there is a PduAuthError and nothing else is sent.
HTTP Basic goes with every request all the same (a firmware that protects more pages works).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from html.parser import HTMLParser
import logging
import re
import time
from xml.etree import ElementTree as ET

import aiohttp

from ..core.model import PowerState
from ..core.switching import SwitchError
from .http_pdu import DEFAULT_TIMEOUT, HttpAnswer, HttpPduClient, basic_auth, decoded
from .pdu import OutletStatus, PduProtocolError, UnitStatus

_LOGGER = logging.getLogger(__name__)

VENDOR = "intellinet"
ROOT_PATH = "/"  # the only page the firmware protects
STATUS_PATH = "/status.xml"
CONTROL_PATH = "/control_outlet.htm"
CONFIG_PATH = "/config_PDU.htm"

OP_ON, OP_OFF = "0", "1"  # op=2 is the unit's own power cycle: never used
DEFAULT_CHARSET = "gb2312"
NAMES_INTERVAL = 3600.0  # names change rarely: read them again after this long
NAMES_RETRY = 60.0  # after a failed read of the names
CREDENTIALS_INTERVAL = 3600.0  # a password changed on the unit shows within this long

_OUTLET_TAG = re.compile(r"outletStat(\d+)")
_NAME_FIELD = re.compile(r"otlt(\d+)")
_STATES = {"on": PowerState.ON, "off": PowerState.OFF}


class IntellinetClient(HttpPduClient):
    """One Intellinet 163682 unit."""

    vendor = VENDOR

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str,
        password: str,
        read_names: bool = True,
        names_interval: float = NAMES_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Talk to the unit at `host`:`port` (80 by default); factory account admin/admin.

        `read_names=False` never asks for the outlet names (one request less, once an hour).
        """
        super().__init__(session, host, port, timeout=timeout)
        self._auth = basic_auth(username, password)
        self._read_names = read_names
        self._names_interval = names_interval
        self._clock = clock
        self._names: dict[int, str] = {}
        self._names_due = float("-inf")
        self._credentials_due = float("-inf")

    async def read_status(self) -> UnitStatus:
        """Every outlet's state and the unit's current from status.xml (names if due)."""
        return await self._with_credentials(self._read_status)

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """One control request for all these outlets (1-based)."""
        wanted = self._check_outlets(outlets)
        if wanted:
            await self._with_credentials(lambda: self._control(wanted, on))

    async def _with_credentials[T](self, step: Callable[[], Awaitable[T]]) -> T:
        """`step` once the start page accepted the credentials; a failure checks anew."""
        try:
            now = self._clock()
            if now >= self._credentials_due:
                await self._get(ROOT_PATH, accept_redirect=True)
                self._credentials_due = now + CREDENTIALS_INTERVAL
            return await step()
        except SwitchError:
            self._credentials_due = float("-inf")
            raise

    async def _get(
        self,
        path: str,
        params: Sequence[tuple[str, str]] | None = None,
        *,
        accept_redirect: bool = False,
    ) -> HttpAnswer:
        """One GET with HTTP Basic; anything but 200 (or a redirect, if accepted) fails."""
        answer = await self._request("GET", path, params=params, headers=self._auth)
        if answer.status != 200 and not (
            accept_redirect and 300 <= answer.status < 400
        ):
            raise self._unexpected("GET", path, answer)
        return answer

    async def _read_status(self) -> UnitStatus:
        answer = await self._get(STATUS_PATH)
        root = self._parse_xml(decoded(answer, DEFAULT_CHARSET))
        states: dict[int, PowerState] = {}
        for element in root:
            match = _OUTLET_TAG.fullmatch(element.tag)
            if match is None:
                continue
            text = (element.text or "").strip()
            state = _STATES.get(text.lower(), PowerState.UNKNOWN)
            if state is PowerState.UNKNOWN:
                _LOGGER.debug("%s: %s is %r", self.description, element.tag, text)
            states[int(match[1]) + 1] = state
        if not states:
            raise PduProtocolError(
                f"{self.description}: {STATUS_PATH} has no outletStat elements"
            )
        self._remember_outlets(states)
        names = await self._names_if_due()
        return UnitStatus(
            outlets={
                outlet: OutletStatus(state, name=names.get(outlet))
                for outlet, state in sorted(states.items())
            },
            current_a=_float(root.findtext("cur0")),
        )

    async def _control(self, outlets: Sequence[int], on: bool) -> None:
        params = [(f"outlet{outlet - 1}", "1") for outlet in outlets]
        params += [("op", OP_ON if on else OP_OFF), ("submit", "Apply")]
        await self._get(CONTROL_PATH, params)

    def _parse_xml(self, text: str) -> ET.Element:
        """The `<response>` element; anything else is a PduProtocolError."""
        # The unit never sends a DTD; refusing one keeps entity expansion out of reach.
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise PduProtocolError(f"{self.description}: {STATUS_PATH} carries a DTD")
        try:
            root = ET.fromstring(text)  # noqa: S314 - no DTD, see above
        except ET.ParseError as err:
            raise PduProtocolError(
                f"{self.description}: {STATUS_PATH} is malformed XML: {err}"
            ) from err
        if root.tag != "response":
            raise PduProtocolError(
                f"{self.description}: {STATUS_PATH} is <{root.tag}>, not <response>"
            )
        return root

    async def _names_if_due(self) -> dict[int, str]:
        """The outlet names, read again when due; the last ones known if that fails."""
        if not self._read_names:
            return {}
        now = self._clock()
        if now < self._names_due:
            return self._names
        try:
            answer = await self._get(CONFIG_PATH)
        except SwitchError as err:  # names are a nicety: the status stands without them
            _LOGGER.debug("%s: no outlet names: %s", self.description, err)
            self._names_due = now + NAMES_RETRY
            return self._names
        parser = _NameFields()
        parser.feed(decoded(answer, DEFAULT_CHARSET))
        parser.close()
        self._names = parser.names
        self._names_due = now + self._names_interval
        return self._names


class _NameFields(HTMLParser):
    """The values of the `otlt{N}` inputs of the configuration form."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names: dict[int, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        fields = dict(attrs)
        match = _NAME_FIELD.fullmatch(fields.get("name") or "")
        value = (fields.get("value") or "").strip()
        if match is not None and value:
            self.names[int(match[1]) + 1] = value


def _float(text: str | None) -> float | None:
    """A decimal number as the firmware writes it; None when absent or not a number."""
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None
