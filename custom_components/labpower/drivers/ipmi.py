"""IPMI 2.0 (RMCP+, "lanplus") BMCs through python-ipmi.

pyipmi is synchronous: every exchange with the BMC runs in an executor (Home Assistant
passes `hass.async_add_executor_job`), one at a time per BMC. The session is created
without pyipmi's keep-alive thread and kept between calls; it is opened again once it
has been idle for longer than BMCs keep idle sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import logging
import time
from typing import Any, Protocol

import pyipmi
from pyipmi.errors import (
    AuthenticationError,
    CompletionCodeError,
    DecodingError,
    IpmiConnectionError,
    IpmiLongPasswordError,
    IpmiTimeoutError,
    MessageStatusCodeError,
    NotSupportedError,
    RetryError,
)
import pyipmi.interfaces
from pyipmi.interfaces.rmcpplus import CIPHER_SUITES
from pyipmi.msgs import constants

from ..core.model import PowerState
from ..core.switching import (
    ConfigurationSwitchError,
    SwitchError,
    TransientSwitchError,
)
from .bmc import BmcAuthError, BmcUnreachableError

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT = 623
DEFAULT_CIPHER_SUITE = 3
DEFAULT_TIMEOUT = 3.0
PRIVILEGES = ("user", "operator", "administrator")
BMC_ADDRESS = 0x20
# IPMI 2.0 says a BMC ends a session idle for 60 s (+-3 s): reopen before that. The slow
# poll (30 s) keeps a session in use alive; a session that died anyway is retried once.
SESSION_IDLE = 45.0
# How long a polite Close Session may take before the socket is simply closed.
CLOSE_TIMEOUT = 1.0

# RMCP+ session setup refusals that mean the user name, password or role is wrong.
_AUTH_MSC = frozenset(
    {
        constants.MSC_INVALID_ROLE,
        constants.MSC_UNAUTHORIZED_ROLE,
        constants.MSC_INVALID_NAME_LENGTH,
        constants.MSC_UNAUTHORIZED_NAME,
        constants.MSC_UNAUTHORIZED_GUID,
        constants.MSC_INVALID_INTEGRITY_CHECK_VALUE,
    }
)
# ... and those that mean the BMC does not accept the configured cipher suite.
_CIPHER_MSC = frozenset(
    {
        constants.MSC_INVALID_AUTHENTICATION_ALGORITHM,
        constants.MSC_INVALID_INTEGRITY_ALGORITHM,
        constants.MSC_NO_MATCHING_AUTHENTICATION_PAYLOAD,
        constants.MSC_NO_MATCHING_INTEGRITY_PAYLOAD,
        constants.MSC_INVALID_CONFIDENTIALITY_ALGORITHM,
        constants.MSC_NO_CIPHER_SUITE_MATCH,
    }
)
# Completion codes of Set Session Privilege Level (0x81, 0x82) and of any command (0xd4)
# that say the user may not do this: a credentials problem, not worth retrying.
_PRIVILEGE_CC = frozenset({0x81, 0x82, constants.CC_INSUFFICIENT_PRIVILEGES})
# Completion codes of DCMI Get Power Reading from a BMC without (working) DCMI power
# management, or one that wants more privilege for it (ipmi_sim wants administrator):
# no reading rather than an error, the reading is optional.
_NO_READING_CC = frozenset(
    {
        constants.CC_INV_CMD,
        constants.CC_INSUFFICIENT_PRIVILEGES,
        constants.CC_INV_CMD_FOR_LUN,
        constants.CC_REQ_DATA_NOT_PRESENT,
        constants.CC_INV_DATA_FIELD_IN_REQ,
        constants.CC_NOT_SUPPORTED_PRESENT_STATE,
        constants.CC_ILLEGAL_COMMAND_DISABLED,
    }
)
_DCMI_SYSTEM_POWER_STATISTICS = 1
_DCMI_MEASUREMENT_ACTIVE = 0x40
# Errors of a session that may simply have expired on the BMC.
_NO_ANSWER = (RetryError, TimeoutError, IpmiTimeoutError, IpmiConnectionError)


class _IntegrityError(Exception):
    """A message of an established session failed its integrity check."""


class Executor(Protocol):
    """Runs a blocking function off the event loop (`hass.async_add_executor_job`)."""

    def __call__[T](self, func: Callable[[], T], /) -> Awaitable[T]:
        """Run `func()` in a worker thread; its result or exception."""
        ...


def _default_executor[T](func: Callable[[], T]) -> Awaitable[T]:
    return asyncio.get_running_loop().run_in_executor(None, func)


class IpmiClient:
    """One BMC over IPMI 2.0 lanplus; calls are made one at a time."""

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *,
        port: int = DEFAULT_PORT,
        cipher_suite: int = DEFAULT_CIPHER_SUITE,
        privilege: str = "administrator",
        kg: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        executor: Executor | None = None,
    ) -> None:
        """Talk to `host`:`port` as `username`, each exchange given up after `timeout` s.

        `cipher_suite` is one of 1, 2, 3, 15, 16, 17 (3, SHA1 with AES, works with nearly
        every BMC); `privilege` the session's level (power control needs "operator");
        `kg` the BMC key where one is set. `executor` runs the blocking calls.
        """
        if cipher_suite not in CIPHER_SUITES:
            supported = ", ".join(map(str, CIPHER_SUITES))
            raise ValueError(
                f"cipher suite {cipher_suite} not supported (supported: {supported})"
            )
        if privilege not in PRIVILEGES:
            raise ValueError(f"privilege must be one of {', '.join(PRIVILEGES)}")
        self.host = host
        self.port = port
        self.cipher_suite = cipher_suite
        self._username = username
        self._password = password
        self._privilege = privilege
        self._kg = kg
        self._timeout = timeout
        self._executor: Executor = executor or _default_executor
        self._lock = asyncio.Lock()
        self._ipmi: Any = None  # a pyipmi.Ipmi with an established session
        self._last_used = 0.0
        self._dcmi_unsupported = False

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain."""
        return f"ipmi {self.host}:{self.port}"

    # BmcClient

    async def power_state(self) -> PowerState:
        """The chassis power state (IPMI has no transitional states: on or off)."""

        def read(ipmi: Any) -> PowerState:
            status = ipmi.get_chassis_status()
            return PowerState.ON if status.power_on else PowerState.OFF

        return await self._run(read, "chassis status")

    async def power_on(self) -> None:
        """Chassis power up."""
        await self._run(lambda ipmi: ipmi.chassis_control_power_up(), "power on")

    async def power_off(self, *, graceful: bool = True) -> None:
        """Graceful: an ACPI soft shutdown the OS carries out; else a hard power down."""
        if graceful:
            await self._run(
                lambda ipmi: ipmi.chassis_control_soft_shutdown(), "soft shutdown"
            )
        else:
            await self._run(
                lambda ipmi: ipmi.chassis_control_power_down(), "power down"
            )

    async def reset(self) -> None:
        """Hard reset (sent once: a lost answer is not followed by a second reset)."""
        await self._run(
            lambda ipmi: ipmi.chassis_control_hard_reset(), "hard reset", repeat=False
        )

    async def power_reading(self) -> float | None:
        """The draw in watts by DCMI Get Power Reading; None where the BMC has none."""
        if self._dcmi_unsupported:
            return None

        def read(ipmi: Any) -> float | None:
            try:
                reading = ipmi.get_power_reading(_DCMI_SYSTEM_POWER_STATISTICS)
            except CompletionCodeError as err:
                if err.cc not in _NO_READING_CC:
                    raise
                if err.cc == constants.CC_INV_CMD:
                    self._dcmi_unsupported = True  # no DCMI at all: stop asking
                _LOGGER.debug("%s: no DCMI power reading: %s", self.description, err)
                return None
            if not reading.reading_state & _DCMI_MEASUREMENT_ACTIVE:
                return None
            return float(reading.current_power)

        return await self._run(read, "DCMI power reading")

    async def close(self) -> None:
        """Close the session and the socket (a later call opens a new session)."""
        await self._locked(self._disconnect)

    # Running one exchange

    async def _run[T](
        self, operation: Callable[[Any], T], what: str, *, repeat: bool = True
    ) -> T:
        """Run `operation(ipmi)` on the session, in the executor, alone on this BMC."""
        return await self._locked(
            lambda: self._exchange(operation, what, repeat=repeat)
        )

    async def _locked[T](self, job: Callable[[], T]) -> T:
        """Run `job` in the executor while holding the lock."""
        await self._lock.acquire()
        try:
            future = asyncio.ensure_future(self._executor(job))
        except BaseException:
            self._lock.release()
            raise
        # The lock is released when the worker is done, not when the caller stops
        # waiting (a cancelled or timed-out caller): a thread still using the session
        # must not overlap the next call. asyncio.wait never cancels what it waits for.
        future.add_done_callback(self._release)
        await asyncio.wait((future,))
        return future.result()

    def _release(self, future: asyncio.Future[Any]) -> None:
        self._lock.release()
        if not future.cancelled():
            future.exception()  # retrieved here when the caller has gone

    def _exchange[T](
        self, operation: Callable[[Any], T], what: str, *, repeat: bool
    ) -> T:
        """In a worker thread: open the session if needed, run, map the errors."""
        if self._ipmi is not None and time.monotonic() - self._last_used > SESSION_IDLE:
            self._disconnect()
        reused = self._ipmi is not None
        try:
            try:
                return self._attempt(operation)
            except _NO_ANSWER:
                # The BMC may have dropped an older session (it restarted, or its idle
                # timeout is short): once more on a new one, which starts with a ping.
                self._drop()
                if not (reused and repeat):
                    raise
                _LOGGER.debug("%s: no answer, reopening the session", self.description)
                return self._attempt(operation)
        except Exception as err:
            if isinstance(err, (*_NO_ANSWER, OSError, DecodingError, _IntegrityError)):
                self._drop()
            raise self._translate(err, what) from err

    def _attempt[T](self, operation: Callable[[Any], T]) -> T:
        if self._ipmi is None:
            self._ipmi = self._connect()
        try:
            result = operation(self._ipmi)
        except AuthenticationError as err:
            # Not the credentials (the session was set up with them): a garbled or
            # stray message. The session is not trusted any more.
            raise _IntegrityError(str(err)) from err
        self._last_used = time.monotonic()
        return result

    def _connect(self) -> Any:
        interface = pyipmi.interfaces.create_interface(
            "rmcpplus",
            keep_alive_interval=0,  # no background thread
            max_retries=0,
            cipher_suite=self.cipher_suite,
            kg=self._kg,
        )
        ipmi = pyipmi.create_connection(interface)
        ipmi.session.set_session_type_rmcp(self.host, port=self.port)
        ipmi.session.set_auth_type_user(self._username, self._password)
        ipmi.session.set_priv_level(self._privilege)
        ipmi.target = pyipmi.Target(ipmb_address=BMC_ADDRESS)
        interface.open()
        try:
            interface.set_timeout(self._timeout)
            ipmi.session.establish()
        except BaseException:
            interface.close()
            raise
        _LOGGER.debug("%s: session opened", self.description)
        return ipmi

    def _disconnect(self) -> None:
        """Close the session politely (briefly), then the socket."""
        ipmi, self._ipmi = self._ipmi, None
        if ipmi is None:
            return
        try:
            ipmi.interface.set_timeout(min(self._timeout, CLOSE_TIMEOUT))
            ipmi.session.close()
        except Exception as err:  # noqa: BLE001 - the BMC forgets it by itself
            _LOGGER.debug("%s: close session: %r", self.description, err)
        finally:
            ipmi.interface.close()

    def _drop(self) -> None:
        """Forget the session without a word to the BMC (it does not answer)."""
        ipmi, self._ipmi = self._ipmi, None
        if ipmi is not None:
            ipmi.interface.close()

    def _translate(self, err: Exception, what: str) -> SwitchError:
        where = f"{self.description}: {what}"
        match err:
            case AuthenticationError() | IpmiLongPasswordError():
                return BmcAuthError(f"{where}: authentication failed ({err})")
            case MessageStatusCodeError() if err.msc in _AUTH_MSC:
                return BmcAuthError(f"{where}: session refused: {err.msc_desc}")
            case MessageStatusCodeError() if err.msc in _CIPHER_MSC:
                return ConfigurationSwitchError(
                    f"{where}: cipher suite {self.cipher_suite} refused: {err.msc_desc}"
                )
            case MessageStatusCodeError():
                return TransientSwitchError(
                    f"{where}: session setup failed with status 0x{err.msc:02x} "
                    f"({err.msc_desc})"
                )
            case CompletionCodeError() if err.cc in _PRIVILEGE_CC:
                return BmcAuthError(
                    f"{where}: privilege {self._privilege} not allowed "
                    f"(completion code 0x{err.cc:02x}: {err.cc_desc})"
                )
            case CompletionCodeError():
                return TransientSwitchError(
                    f"{where}: completion code 0x{err.cc:02x} ({err.cc_desc})"
                )
            case NotSupportedError():
                return ConfigurationSwitchError(f"{where}: not supported: {err}")
            case RetryError() | TimeoutError() | IpmiTimeoutError():
                return BmcUnreachableError(
                    f"{where}: no answer within {self._timeout:g} s"
                )
            case IpmiConnectionError() | OSError():
                return BmcUnreachableError(f"{where}: {err}")
            case _:
                return TransientSwitchError(f"{where}: {type(err).__name__}: {err}")
