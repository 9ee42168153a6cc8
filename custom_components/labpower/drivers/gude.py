"""Gude Expert Power Control units through their HTTP interface, in each firmware's dialect.

Gude firmware speaks one of three dialects; the client probes them in this order once,
then remembers the one that answered:

1. `GET /status.json?components=1` -> `{"outputs": [{"name", "state": 0|1, ...}]}` (the list
   0-indexed); switching `GET /status.json?components=0&cmd=1&p=N&s=0|1` (N 1-based),
   answered `{}`. Current firmware (EPC 8031, 8041, 8221/8226, 87-1210...).
2. `/statusjsn.js` with the same parameters and the same JSON: EPC 8225 firmware 1.0.x,
   and what Gude's own example client (port.py) asks for.
3. `GET /ov.html`: a page with one `<meta http-equiv="powerstate" content="Power Port N,0|1">`
   per port, in port order; switching `GET /ov.html?cmd=1&p=N&s=0|1`. EPC 8080 and 8316
   (whose firmware 1.2.0 leaves N out: the port is the tag's position, as here always).

A 404 moves the probe to the next dialect; none of them: a configuration error. A
remembered dialect that answers 404 later is forgotten (the firmware changed) and probed
again on the next request. Switching is one request per outlet (no batch in any dialect).

Authentication: HTTP Basic where a user name is given (the unit's "Basic Auth compatible"
mode). A unit set to session login answers its HTML login page instead of any of this: a
PduLoginPageError (turn on the Basic-compatible mode), never retried as malformed data.
Gude units block an address that talks too fast: the unit's requests go one at a time
(PduUnit), never in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
import re

import aiohttp

from ..core.model import PowerState
from ..core.switching import ConfigurationSwitchError
from .http_pdu import (
    DEFAULT_TIMEOUT,
    HttpAnswer,
    HttpPduClient,
    PduMissingPageError,
    basic_auth,
    decoded,
    state_0_1,
)
from .pdu import OutletStatus, PduLoginPageError, PduProtocolError, UnitStatus

VENDOR = "gude"
COMPONENT_OUTPUTS = "1"  # the `components` bit of the outputs' states
COMMAND_SWITCH = "1"
_STATES = {"0": PowerState.OFF, "1": PowerState.ON}
_PASSWORD_FIELD = re.compile(
    rb"<input\b[^>]*\btype\s*=\s*[\"']?password", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where a firmware serves its status and takes commands, and in what form."""

    path: str
    json: bool  # the status as JSON; else the ov.html page's powerstate tags


STATUS_JSON = Dialect("/status.json", json=True)
STATUSJSN_JS = Dialect("/statusjsn.js", json=True)
OV_HTML = Dialect("/ov.html", json=False)
DIALECTS = (STATUS_JSON, STATUSJSN_JS, OV_HTML)


class GudeClient(HttpPduClient):
    """One Gude Expert Power Control unit."""

    vendor = VENDOR

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        https: bool = False,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the unit at `host`:`port`; no credentials (None or "") sends none."""
        super().__init__(
            session, host, port, https=https, verify_ssl=verify_ssl, timeout=timeout
        )
        self._auth = basic_auth(username, password or "") if username else {}
        self.dialect: Dialect | None = None  # None: not probed yet

    async def read_status(self) -> UnitStatus:
        """Every output's state (and name, where the dialect has them)."""
        remembered = self.dialect
        for dialect in DIALECTS if remembered is None else (remembered,):
            try:
                answer = await self._get(dialect)
            except PduMissingPageError:
                if remembered is not None:
                    raise
                continue
            status = UnitStatus(outlets=self._outlets(dialect, answer))
            self.dialect = dialect
            return status
        raise ConfigurationSwitchError(
            f"{self.description} has none of "
            f"{', '.join(dialect.path for dialect in DIALECTS)} (HTTP 404): is this a "
            "Gude Expert Power Control unit with its HTTP interface on?"
        )

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """Switch these outlets (1-based), one request each, in order."""
        if self.dialect is None and outlets:
            await self.read_status()  # which dialect the unit speaks, and its outlets
        for outlet in self._check_outlets(outlets):
            assert self.dialect is not None
            params = [
                ("cmd", COMMAND_SWITCH),
                ("p", str(outlet)),
                ("s", "1" if on else "0"),
            ]
            if self.dialect.json:
                # nothing back but `{}`: the command is enough
                params.insert(0, ("components", "0"))
            answer = await self._get(self.dialect, params)
            if _login_page(answer):
                raise self._login_page_error(self.dialect)

    async def _get(
        self, dialect: Dialect, params: Sequence[tuple[str, str]] | None = None
    ) -> HttpAnswer:
        """One GET of the dialect's page; a 404 forgets the dialect, non-2xx fails."""
        if params is None and dialect.json:
            params = [("components", COMPONENT_OUTPUTS)]
        try:
            answer = await self._request(
                "GET", dialect.path, params=params, headers=self._auth
            )
        except PduMissingPageError:
            self.dialect = None
            raise
        if not 200 <= answer.status < 300:
            raise self._unexpected("GET", dialect.path, answer)
        return answer

    def _outlets(self, dialect: Dialect, answer: HttpAnswer) -> dict[int, OutletStatus]:
        """The outlets of a status answer in the dialect's form."""
        if dialect.json:
            if answer.body.lstrip().startswith(b"<"):
                if _login_page(answer):
                    raise self._login_page_error(dialect)
                raise PduProtocolError(
                    f"{self.description}: {dialect.path} answered an HTML page, not JSON"
                )
            document = self._json("GET", dialect.path, answer)
            outputs = document.get("outputs") if isinstance(document, dict) else None
            return self._outlet_list(
                outputs,
                f"{dialect.path} outputs",
                lambda output: state_0_1(output.get("state")),
            )
        states = _powerstates(answer)
        if not states:
            if _login_page(answer):
                raise self._login_page_error(dialect)
            raise PduProtocolError(
                f"{self.description}: {dialect.path} has no powerstate meta tags"
            )
        outlets = {
            index: OutletStatus(state) for index, state in enumerate(states, start=1)
        }
        self._remember_outlets(outlets)
        return outlets

    def _login_page_error(self, dialect: Dialect) -> PduLoginPageError:
        return PduLoginPageError(
            f"{self.description}: {dialect.path} answered the unit's login page: it is "
            "set to session login, which labpower cannot use; turn on the Basic "
            "Auth compatible mode in the unit's HTTP configuration"
        )


class _PowerStates(HTMLParser):
    """The states in the `powerstate` meta tags of ov.html, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.states: list[PowerState] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fields = dict(attrs)
        if tag != "meta" or (fields.get("http-equiv") or "").lower() != "powerstate":
            return
        # "Power Port 3,1"; firmware 1.2.0 of the 8316 writes "Power Port ,1"
        _, _, value = (fields.get("content") or "").rpartition(",")
        self.states.append(_STATES.get(value.strip(), PowerState.UNKNOWN))


def _powerstates(answer: HttpAnswer) -> list[PowerState]:
    """Each port's state from an ov.html page, port 1 first."""
    parser = _PowerStates()
    parser.feed(decoded(answer, "latin-1"))
    parser.close()
    return parser.states


def _login_page(answer: HttpAnswer) -> bool:
    """An HTML page with a password field and no port states: the login form."""
    body = answer.body
    return (
        body.lstrip().startswith(b"<")
        and _PASSWORD_FIELD.search(body) is not None
        and b"powerstate" not in body.lower()
    )
