"""What the HTTP PDU clients (Intellinet, NETIO, Gude, Digital Loggers) share.

One base URL per unit, an injected aiohttp session (Home Assistant's shared one: never
closed here), a timeout per request, and one mapping of transport failures and HTTP statuses
to the PDU errors: no answer, a refused connection, a timeout or a 5xx raise
PduUnreachableError; 401 PduAuthError; 404 (the page does not exist: another vendor or
firmware) PduMissingPageError, a ConfigurationSwitchError. Everything else is the vendor
module's to judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
import ipaddress
import json
import logging
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from ..core.model import PowerState
from ..core.switching import ConfigurationSwitchError
from .pdu import OutletStatus, PduAuthError, PduProtocolError, PduUnreachableError

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
_STATES_0_1 = {0: PowerState.OFF, 1: PowerState.ON}
# gb18030 is a superset of gb2312 (and of the gbk a firmware may really send).
_CODECS = {"gb2312": "gb18030", "gbk": "gb18030"}


class PduMissingPageError(ConfigurationSwitchError):
    """HTTP 404: the unit has no such page (another vendor, or another firmware)."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A response's status, raw body and declared charset."""

    status: int
    body: bytes
    charset: str | None


class HttpPduClient:
    """The part of an HTTP PDU client that does not depend on the vendor."""

    vendor: ClassVar[str]

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None,
        *,
        https: bool = False,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the unit at `host`:`port` (80 or 443 by default) through `session`.

        `verify_ssl=False` accepts a self-signed certificate (common on PDUs).
        """
        self._session = session
        self.host = host
        self._explicit_port = port is not None
        self.port = port if port is not None else (443 if https else 80)
        self._base = URL.build(
            scheme="https" if https else "http", host=host, port=self.port
        )
        self._verify_ssl = verify_ssl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._known_outlets: frozenset[int] = frozenset()

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain ("netio 10.0.0.7")."""
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        port = f":{self.port}" if self._explicit_port else ""
        return f"{self.vendor} {host}{port}"

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""

    def _outlet_list(
        self,
        entries: Any,
        where: str,
        state: Callable[[Mapping[str, Any]], PowerState],
    ) -> dict[int, OutletStatus]:
        """Outlets from a JSON list of objects (0-indexed), named as the unit stores."""
        if not isinstance(entries, list) or not entries:
            raise PduProtocolError(
                f"{self.description}: {where} has no list of outlets"
            )
        outlets: dict[int, OutletStatus] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise PduProtocolError(
                    f"{self.description}: an entry of {where} is not an object"
                )
            name = entry.get("name")
            outlets[index + 1] = OutletStatus(
                state(entry), name=name if isinstance(name, str) and name else None
            )
        self._remember_outlets(outlets)
        return outlets

    def _remember_outlets(self, outlets: Iterable[int]) -> None:
        """The outlets the last status read reported, to refuse commands for others."""
        self._known_outlets = frozenset(outlets)

    def _check_outlets(self, outlets: Sequence[int]) -> list[int]:
        """The outlets (1-based) sorted and without repeats; refuse ones the unit lacks."""
        wanted = sorted(set(outlets))
        for outlet in wanted:
            if isinstance(outlet, bool) or not isinstance(outlet, int) or outlet < 1:
                raise ConfigurationSwitchError(
                    f"{self.description}: outlet numbers start at 1, not {outlet!r}"
                )
            if self._known_outlets and outlet not in self._known_outlets:
                raise ConfigurationSwitchError(
                    f"{self.description} has no outlet {outlet} (it reports "
                    f"{len(self._known_outlets)} outlets)"
                )
        return wanted

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        data: Mapping[str, str] | None = None,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        middlewares: Sequence[aiohttp.ClientMiddlewareType] | None = None,
    ) -> HttpAnswer:
        """Send one request and read the whole answer; map failures and 401/404/5xx."""
        what = f"{method} {path}"
        try:
            async with self._session.request(
                method,
                self._base.join(URL(path)),
                params=params,
                data=data,
                json=payload,
                headers=headers,
                middlewares=middlewares,
                ssl=self._verify_ssl,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                answer = HttpAnswer(
                    response.status, await response.read(), response.charset
                )
        except aiohttp.ClientConnectorCertificateError as err:
            raise ConfigurationSwitchError(
                f"{self.description}: the unit's TLS certificate is not trusted "
                f"({err.certificate_error}); install a trusted certificate or turn "
                "certificate verification off for this unit"
            ) from err
        except TimeoutError as err:
            raise PduUnreachableError(
                f"{self.description}: no answer to {what} within "
                f"{self._timeout.total:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise PduUnreachableError(
                f"{self.description}: {what} failed: {err}"
            ) from err
        _LOGGER.debug("%s: %s answered HTTP %s", self.description, what, answer.status)
        if answer.status == 401:
            raise PduAuthError(
                f"{self.description}: {what} refused the credentials (HTTP 401)"
            )
        if answer.status == 404:
            raise PduMissingPageError(
                f"{self.description}: {what} does not exist (HTTP 404): is this a "
                f"{self.vendor} unit with a firmware that offers it?"
            )
        if answer.status >= 500:
            raise PduUnreachableError(
                f"{self.description}: {what} failed with HTTP {answer.status}"
            )
        return answer

    def _unexpected(
        self, method: str, path: str, answer: HttpAnswer
    ) -> PduProtocolError:
        """The error for an answer status the protocol does not foresee."""
        return PduProtocolError(
            f"{self.description}: {method} {path} answered HTTP {answer.status}"
        )

    def _json(self, method: str, path: str, answer: HttpAnswer) -> Any:
        """The JSON document of a successful answer."""
        if not 200 <= answer.status < 300:
            raise self._unexpected(method, path, answer)
        try:
            return json.loads(answer.body)
        except ValueError as err:
            raise PduProtocolError(
                f"{self.description}: {method} {path} returned malformed JSON: {err}"
            ) from err


def decoded(answer: HttpAnswer, default_charset: str) -> str:
    """The body as text in its declared charset (the default when none or an unknown one)."""
    charset = (answer.charset or default_charset).lower()
    try:
        return answer.body.decode(_CODECS.get(charset, charset), errors="replace")
    except LookupError:  # a charset Python does not know
        return answer.body.decode(
            _CODECS.get(default_charset, default_charset), errors="replace"
        )


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def state_0_1(value: Any) -> PowerState:
    """A JSON 1 on, 0 off; anything else (missing, a boolean, 2, "1") UNKNOWN, never off."""
    if isinstance(value, bool) or not isinstance(value, int):
        return PowerState.UNKNOWN
    return _STATES_0_1.get(value, PowerState.UNKNOWN)


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP Basic authentication."""
    return {"Authorization": aiohttp.encode_basic_auth(username, password)}
