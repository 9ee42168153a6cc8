"""Redfish BMC client over an injected aiohttp session (Home Assistant's shared one).

Basic authentication, or a Redfish session (`POST /redfish/v1/SessionService/Sessions`, then
the `X-Auth-Token` header; logged in again once when the BMC answers 401, deleted on close).
One request at a time per client. Errors: refused credentials raise BmcAuthError, no answer
(refused, timeout, 5xx) BmcUnreachableError, an answer that is not what Redfish promises
TransientSwitchError, a system that does not exist (or several to choose from)
ConfigurationSwitchError.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import ipaddress
import json
import logging
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from ..core.model import PowerState
from ..core.switching import ConfigurationSwitchError, TransientSwitchError
from .bmc import BmcAuthError, BmcUnreachableError

_LOGGER = logging.getLogger(__name__)

SERVICE_ROOT = "/redfish/v1"
SYSTEMS = f"{SERVICE_ROOT}/Systems"
SESSIONS = f"{SERVICE_ROOT}/SessionService/Sessions"
RESET_ACTION = "#ComputerSystem.Reset"
AUTH_TOKEN_HEADER = "X-Auth-Token"

# Redfish ComputerSystem.PowerState. Paused: powered, the processors halted.
_POWER_STATES = {
    "On": PowerState.ON,
    "Off": PowerState.OFF,
    "Paused": PowerState.ON,
    "PoweringOn": PowerState.UNKNOWN,  # not yet the target state
    "PoweringOff": PowerState.UNKNOWN,
}

type RedfishAuth = Literal["basic", "session"]
type Json = dict[str, Any]


class RedfishClient:
    """One Redfish service (BMC) and one of its computer systems."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int | None = None,
        *,
        username: str,
        password: str,
        https: bool = True,
        verify_ssl: bool = True,
        auth: RedfishAuth = "basic",
        system_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Talk to the BMC at `host`:`port` (443 or 80 by default) through `session`.

        `verify_ssl=False` accepts a self-signed certificate (common on BMCs).
        `system_id` None: the service's only system, found on first use.
        """
        if auth not in ("basic", "session"):
            raise ValueError(f"auth must be 'basic' or 'session', not {auth!r}")
        self._session = session
        self.host = host
        self.port = port if port is not None else (443 if https else 80)
        self._base = URL.build(
            scheme="https" if https else "http", host=host, port=self.port
        )
        self._username = username
        self._password = password
        self._verify_ssl = verify_ssl
        self._auth: RedfishAuth = auth
        self._system_id = system_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._lock = asyncio.Lock()
        self._system_path: str | None = (
            None if system_id is None else f"{SYSTEMS}/{quote(system_id, safe='')}"
        )
        self._reset_target: str | None = None
        self._token: str | None = None
        self._session_url: URL | None = None

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain ("redfish 10.0.0.5:443")."""
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"redfish {host}:{self.port}"

    @property
    def system_path(self) -> str | None:
        """The system's resource path, once known (given, or discovered on first use)."""
        return self._system_path

    # The BmcClient protocol

    async def power_state(self) -> PowerState:
        """On or off; PoweringOn/PoweringOff are UNKNOWN: not yet the target state."""
        system = await self._get_system()
        if "PowerState" not in system:
            raise TransientSwitchError(
                f"{self.description}: the system resource has no PowerState"
            )
        value = system["PowerState"]
        if value is None:  # Redfish: null when the service cannot tell
            return PowerState.UNKNOWN
        if not isinstance(value, str):
            raise TransientSwitchError(
                f"{self.description}: PowerState is not a string: {value!r}"
            )
        state = _POWER_STATES.get(value)
        if state is None:
            _LOGGER.warning("%s: unknown PowerState %r", self.description, value)
            return PowerState.UNKNOWN
        return state

    async def power_on(self) -> None:
        """ComputerSystem.Reset with ResetType On."""
        await self._reset("On")

    async def power_off(self, *, graceful: bool) -> None:
        """ResetType GracefulShutdown (the OS shuts down) or ForceOff."""
        await self._reset("GracefulShutdown" if graceful else "ForceOff")

    async def reset(self) -> None:
        """ResetType ForceRestart."""
        await self._reset("ForceRestart")

    async def power_reading(self) -> float | None:
        """PowerControl[0].PowerConsumedWatts of the system's chassis; None when absent."""
        system = await self._get_system()
        chassis_path = _first_link(system.get("Links"), "Chassis", self.description)
        if chassis_path is None:
            return None
        chassis = await self._get_optional(chassis_path)
        if chassis is None:
            return None
        power_path = _odata_id(chassis.get("Power"), "Power", self.description)
        if power_path is None:
            return None
        power = await self._get_optional(power_path)
        if power is None:
            return None
        controls = power.get("PowerControl")
        if controls is None or controls == []:
            return None
        if not isinstance(controls, list) or not isinstance(controls[0], dict):
            raise TransientSwitchError(
                f"{self.description}: PowerControl is not a list of objects"
            )
        watts = controls[0].get("PowerConsumedWatts")
        if watts is None:
            return None
        if isinstance(watts, bool) or not isinstance(watts, int | float):
            raise TransientSwitchError(
                f"{self.description}: PowerConsumedWatts is not a number: {watts!r}"
            )
        return float(watts)

    async def close(self) -> None:
        """Delete the Redfish session, if one was opened (errors are only logged)."""
        async with self._lock:
            token, url = self._token, self._session_url
            self._token = self._session_url = None
            if token is None or url is None:
                return
            try:
                async with self._session.delete(
                    url,
                    headers={AUTH_TOKEN_HEADER: token},
                    ssl=self._verify_ssl,
                    timeout=self._timeout,
                ) as response:
                    _LOGGER.debug(
                        "%s: session deleted (%s)", self.description, response.status
                    )
            except (aiohttp.ClientError, TimeoutError) as err:
                _LOGGER.debug(
                    "%s: could not delete the session: %r", self.description, err
                )

    # Resources

    async def _get_system(self) -> Json:
        """The system resource; remembers its reset action's target."""
        path = await self._resolve_system()
        status, body = await self._request("GET", path)
        if status == 404:
            self._reset_target = None
            if self._system_id is None:
                self._system_path = None  # discover again next time
            raise ConfigurationSwitchError(
                f"{self.description}: Redfish system {path} not found"
                f"{_error_message(body)}"
            )
        system = self._expect_object(status, body, path)
        target = _reset_target(system.get("Actions"))
        if target is not None:
            self._reset_target = target
        return system

    async def _resolve_system(self) -> str:
        """The system's path: the one given, or the service's only system."""
        if self._system_path is not None:
            return self._system_path
        status, body = await self._request("GET", SYSTEMS)
        collection = self._expect_object(status, body, SYSTEMS)
        members = collection.get("Members")
        if not isinstance(members, list):
            raise TransientSwitchError(
                f"{self.description}: {SYSTEMS} has no Members list"
            )
        paths = [_odata_id(member, "Members", self.description) for member in members]
        found = [path for path in paths if path is not None]
        if not found:
            raise ConfigurationSwitchError(
                f"{self.description}: the Redfish service has no systems"
            )
        if len(found) > 1:
            ids = ", ".join(path.rstrip("/").rsplit("/", 1)[-1] for path in found)
            raise ConfigurationSwitchError(
                f"{self.description}: the Redfish service has {len(found)} systems "
                f"({ids}); choose one with system_id"
            )
        self._system_path = found[0]
        return found[0]

    async def _get_optional(self, path: str) -> Json | None:
        """A linked resource, None when the BMC says it does not exist."""
        status, body = await self._request("GET", path)
        if status == 404:
            return None
        return self._expect_object(status, body, path)

    async def _reset(self, reset_type: str) -> None:
        """POST ComputerSystem.Reset to the target the system resource names."""
        if self._reset_target is None:
            await self._get_system()
        target = self._reset_target
        if target is None:  # no Actions advertised: the standard place
            target = f"{await self._resolve_system()}/Actions/ComputerSystem.Reset"
        status, body = await self._request(
            "POST", target, payload={"ResetType": reset_type}
        )
        if status == 404:
            raise ConfigurationSwitchError(
                f"{self.description}: no reset action at {target}{_error_message(body)}"
            )
        if not 200 <= status < 300:
            raise TransientSwitchError(
                f"{self.description}: ResetType {reset_type} refused with HTTP "
                f"{status}{_error_message(body)}"
            )
        _LOGGER.debug("%s: ResetType %s accepted", self.description, reset_type)

    def _expect_object(self, status: int, body: Any, path: str) -> Json:
        """The JSON object of a successful answer, else a TransientSwitchError."""
        if not 200 <= status < 300:
            raise TransientSwitchError(
                f"{self.description}: GET {path} answered HTTP {status}"
                f"{_error_message(body)}"
            )
        if not isinstance(body, dict):
            raise TransientSwitchError(
                f"{self.description}: GET {path} did not return a JSON object"
            )
        return body

    # HTTP

    async def _request(
        self, method: str, path: str, *, payload: Json | None = None
    ) -> tuple[int, Any]:
        """One request under the lock: (status, parsed JSON body or None).

        401/403 raise BmcAuthError (a session is opened again once first), no answer and 5xx
        BmcUnreachableError; other statuses are the caller's to judge.
        """
        async with self._lock:
            if self._auth == "session" and self._token is None:
                await self._login()
            answer = await self._send(method, path, payload)
            if answer.status == 401 and self._auth == "session":
                _LOGGER.debug("%s: session expired, logging in again", self.description)
                self._token = self._session_url = None
                await self._login()
                answer = await self._send(method, path, payload)
        status, body = answer.status, answer.body
        if status in (401, 403):
            raise BmcAuthError(
                f"{self.description}: {method} {path} refused with HTTP {status}"
                f"{_error_message(body)}"
            )
        if status >= 500:
            raise BmcUnreachableError(
                f"{self.description}: {method} {path} failed with HTTP {status}"
                f"{_error_message(body)}"
            )
        return status, body

    async def _send(
        self,
        method: str,
        path: str,
        payload: Json | None,
        *,
        with_auth: bool = True,
    ) -> _Answer:
        """Send one request; map transport failures; parse a JSON body if there is one."""
        headers = {"Accept": "application/json", "OData-Version": "4.0"}
        if with_auth and self._auth == "basic":
            headers["Authorization"] = aiohttp.encode_basic_auth(
                self._username, self._password
            )
        elif with_auth and self._token is not None:
            headers[AUTH_TOKEN_HEADER] = self._token
        try:
            async with self._session.request(
                method,
                self._base.join(URL(path)),
                json=payload,
                headers=headers,
                ssl=self._verify_ssl,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                answer = _Answer(response.status, None, response.headers.copy())
        except aiohttp.ClientConnectorCertificateError as err:
            raise ConfigurationSwitchError(
                f"{self.description}: the BMC's TLS certificate is not trusted "
                f"({err.certificate_error}); install a trusted certificate or turn "
                "certificate verification off for this BMC"
            ) from err
        except TimeoutError as err:
            raise BmcUnreachableError(
                f"{self.description}: no answer to {method} {path} within "
                f"{self._timeout.total:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise BmcUnreachableError(
                f"{self.description}: {method} {path} failed: {err}"
            ) from err
        if raw.strip():
            try:
                answer.body = json.loads(raw)
            except ValueError as err:
                if answer.status < 400:  # an error page that is not JSON says enough
                    raise TransientSwitchError(
                        f"{self.description}: {method} {path} returned malformed "
                        f"JSON: {err}"
                    ) from err
        return answer

    async def _login(self) -> None:
        """Open a Redfish session (the lock is held); keep its token and URL."""
        answer = await self._send(
            "POST",
            SESSIONS,
            {"UserName": self._username, "Password": self._password},
            with_auth=False,
        )
        status, body = answer.status, answer.body
        if status in (401, 403):
            raise BmcAuthError(
                f"{self.description}: login refused with HTTP {status}"
                f"{_error_message(body)}"
            )
        if status in (404, 405):
            raise ConfigurationSwitchError(
                f"{self.description}: the BMC offers no Redfish sessions (HTTP "
                f"{status} from {SESSIONS}); use basic authentication"
            )
        if status >= 500:
            raise BmcUnreachableError(
                f"{self.description}: login failed with HTTP {status}"
                f"{_error_message(body)}"
            )
        token = answer.headers.get(AUTH_TOKEN_HEADER)
        if not 200 <= status < 300 or not token:
            raise TransientSwitchError(
                f"{self.description}: login answered HTTP {status} without an "
                f"{AUTH_TOKEN_HEADER}{_error_message(body)}"
            )
        location = answer.headers.get("Location")
        if not location and isinstance(body, dict):
            odata_id = body.get("@odata.id")
            location = odata_id if isinstance(odata_id, str) else None
        self._token = token
        self._session_url = self._base.join(URL(location)) if location else None
        _LOGGER.debug("%s: Redfish session opened", self.description)


@dataclass(slots=True)
class _Answer:
    """A response's status, parsed JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: CIMultiDict[str]


def _odata_id(link: Any, what: str, description: str) -> str | None:
    """The `@odata.id` of a link object; None for no link, TransientSwitchError if odd."""
    if link is None:
        return None
    if not isinstance(link, dict) or not isinstance(link.get("@odata.id"), str):
        raise TransientSwitchError(f"{description}: {what} is not a Redfish link")
    path: str = link["@odata.id"]
    return path


def _first_link(links: Any, name: str, description: str) -> str | None:
    """The first link of `Links[name]`, None when there is none."""
    if links is None:
        return None
    if not isinstance(links, dict):
        raise TransientSwitchError(f"{description}: Links is not an object")
    items = links.get(name)
    if items is None or items == []:
        return None
    if not isinstance(items, list):
        raise TransientSwitchError(f"{description}: Links.{name} is not a list")
    return _odata_id(items[0], f"Links.{name}[0]", description)


def _reset_target(actions: Any) -> str | None:
    """Actions["#ComputerSystem.Reset"].target, when the system advertises it."""
    if not isinstance(actions, dict):
        return None
    action = actions.get(RESET_ACTION)
    if not isinstance(action, dict):
        return None
    target = action.get("target")
    return target if isinstance(target, str) and target else None


def _error_message(body: Any) -> str:
    """The BMC's error message as ": message" to append, else an empty string."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return ""
    error: dict[str, Any] = body["error"]
    messages = [
        info["Message"]
        for info in error.get("@Message.ExtendedInfo") or []
        if isinstance(info, dict) and isinstance(info.get("Message"), str)
    ]
    if not messages and isinstance(error.get("message"), str):
        messages = [error["message"]]
    return f": {'; '.join(messages)}" if messages else ""
