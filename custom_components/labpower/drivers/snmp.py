"""SNMP power distribution units (v1, v2c, v3) through pysnmp 7.

One status read is one walk of the vendor's outlet table: a single GETBULK carries the state
column, the name and meter columns and the unit's scalars (sysName, model, totals) for
v2c and v3 (a second one only for units with more outlets than one answer holds); SNMP v1
has no GETBULK and walks row by row with GETNEXT. A switch is one SET with a varbind per
outlet. The vendor profile is given, or chosen from the unit's sysObjectID: among the
vendor's MIBs (APC's rPDU2, rPDU and MasterSwitch tables; Tripp Lite's PDU, ATS and PowerAlert
12.04 trees...), the first, newest first, whose outlet table the unit answers.

The SnmpEngine is made once per client, in the executor: making it loads MIB modules from
disk. Everything after that runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
import logging
from typing import Any, Protocol

from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CBC168_3DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    Integer,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    set_cmd,
)
from pysnmp.proto import errind
from pysnmp.smi import view
from pysnmp.smi.compiler import add_mib_compiler

from ..core.model import PowerState
from ..core.switching import ConfigurationSwitchError, SwitchError
from .pdu import (
    OutletStatus,
    PduAuthError,
    PduProtocolError,
    PduReadOnlyError,
    PduUnreachableError,
    UnitStatus,
)
from .snmp_profiles import (
    AUTOMATIC,
    PROFILES,
    SYS_NAME,
    SYS_OBJECT_ID,
    Meter,
    Oid,
    SnmpProfile,
    candidates,
    dotted,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT = 161
DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 1
VERSIONS = ("1", "2c", "3")
AUTH_PROTOCOLS: dict[str, Any] = {
    "none": USM_AUTH_NONE,
    "md5": USM_AUTH_HMAC96_MD5,
    "sha": USM_AUTH_HMAC96_SHA,
    "sha224": USM_AUTH_HMAC128_SHA224,
    "sha256": USM_AUTH_HMAC192_SHA256,
    "sha384": USM_AUTH_HMAC256_SHA384,
    "sha512": USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "none": USM_PRIV_NONE,
    "des": USM_PRIV_CBC56_DES,
    "3des": USM_PRIV_CBC168_3DES,
    "aes": USM_PRIV_CFB128_AES,
    # Net-SNMP's AES192/AES256 extend the key as Blumenthal's draft does; Cisco (and
    # Net-SNMP's AES192C/AES256C) as Reeder's.
    "aes192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": USM_PRIV_CFB192_AES,
    "aes256c": USM_PRIV_CFB256_AES,
}
MIN_KEY_LENGTH = 8  # RFC 3414: shorter pass phrases are refused

# Rows asked per GETBULK before the unit's outlet count is known.
DEFAULT_REPETITIONS = 24
# Varbinds asked per GETBULK at most: Net-SNMP agents answer 100 at most (and some
# embedded agents less); a longer answer is cut short and costs another request.
BULK_VARBINDS = 96
# A walk that needs more requests than this has met an agent that never ends a column.
MAX_WALK_REQUESTS = 64

# RFC 3416 error-status values.
_ERROR_STATUS = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
_NO_SUCH_NAME = 2
_AUTHORIZATION_ERROR = 16
# A SET refused because these credentials may not write.
_READ_ONLY = frozenset(
    {4, 6, _AUTHORIZATION_ERROR}
)  # readOnly, noAccess, authorizationError
# A SET refused for an object that may not exist (no such outlet) or may not be writable
# with these credentials (SNMP v1 agents answer noSuchName to a read-only community):
# a GET of the object tells which.
_MISSING_OR_READ_ONLY = frozenset({_NO_SUCH_NAME, 11, 17, 18})

# usmStats reports and local USM failures: the user, a key or the security level is wrong.
_AUTH_INDICATIONS: tuple[type[Exception], ...] = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.UnknownSecurityName,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnknownCommunityName,
)

type VarBind = tuple[Oid, Any]


class SnmpVendorError(ConfigurationSwitchError):
    """The unit's sysObjectID names no vendor (or no outlet table) this driver knows."""


class SnmpSettingsError(ConfigurationSwitchError, ValueError):
    """Settings that cannot work (a v3 key too short, an unknown protocol or profile)."""


class SnmpNoAnswerError(PduUnreachableError):
    """No answer in time: nothing listens, or the community or v3 privacy key is wrong.

    Agents drop what they cannot read without a word: the form says so (`no_answer`).
    """

    no_answer = True


class Executor(Protocol):
    """Runs a blocking function off the event loop (`hass.async_add_executor_job`)."""

    def __call__[T](self, func: Callable[[], T], /) -> Awaitable[T]:
        """Run `func()` in a worker thread; its result or exception."""
        ...


def _to_thread[T](func: Callable[[], T]) -> Awaitable[T]:
    return asyncio.to_thread(func)


def _new_engine() -> Any:
    """An SnmpEngine with its MIB view loaded (blocking: runs in the executor).

    Where pysmi is installed, pysnmp gives the MIB builder a MIB compiler at the first
    request (building its parser takes about half a second): that happens here too, off
    the event loop. Without pysmi this adds nothing.
    """
    engine = SnmpEngine()
    builder = engine.message_dispatcher.mib_instrum_controller.get_mib_builder()
    engine.cache["mibViewController"] = view.MibViewController(builder)
    add_mib_compiler(builder, ifAvailable=True, ifNotAdded=True)
    return engine


def _int(value: Any) -> int | None:
    """An INTEGER, Gauge32, Counter... as int; None for anything else."""
    return int(value) if isinstance(value, univ.Integer) else None


def _text(value: Any) -> str | None:
    """An OCTET STRING as text; None when empty or not a string."""
    if not isinstance(value, univ.OctetString):
        return None
    return bytes(value).decode("utf-8", "replace").strip("\x00 \t\r\n") or None


def _present(value: Any) -> bool:
    """False for noSuchObject, noSuchInstance and endOfMibView (all NULL-typed)."""
    return not isinstance(value, univ.Null)


def _status_name(status: int) -> str:
    return _ERROR_STATUS[status] if 0 <= status < len(_ERROR_STATUS) else str(status)


class SnmpPduClient:
    """One PDU over SNMP; calls are made one at a time."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        version: str = "2c",
        community: str = "public",
        write_community: str | None = None,
        username: str | None = None,
        auth_protocol: str | None = None,
        auth_key: str | None = None,
        priv_protocol: str | None = None,
        priv_key: str | None = None,
        profile: str = AUTOMATIC,
        outlets: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        executor: Executor | None = None,
    ) -> None:
        """Talk to `host`:`port` with SNMP `version` "1", "2c" or "3".

        v1/v2c read with `community` and switch with `write_community` (default: the
        same). v3 uses `username` with `auth_protocol` (none, md5, sha, sha224...sha512)
        and `auth_key`, `priv_protocol` (none, des, 3des, aes, aes192, aes256, aes192c,
        aes256c) and `priv_key`; a protocol left out (None) is "none". `profile` is a key
        of PROFILES or "automatic" (chosen from sysObjectID). `outlets`, where given, are
        reported (as unknown) even when the unit does not answer for them. Each request
        waits `timeout` s and is sent `retries` more times; `executor` builds the engine.
        Settings that cannot work raise SnmpSettingsError (a ValueError) here.
        """
        if version not in VERSIONS:
            raise SnmpSettingsError(
                f"SNMP version must be one of {', '.join(VERSIONS)}"
            )
        if profile != AUTOMATIC and profile not in PROFILES:
            known = ", ".join((AUTOMATIC, *PROFILES))
            raise SnmpSettingsError(
                f"unknown vendor profile {profile!r} (known: {known})"
            )
        if timeout <= 0 or retries < 0:
            raise SnmpSettingsError("timeout must be positive and retries not negative")
        if outlets is not None and outlets < 0:
            raise SnmpSettingsError("outlets must not be negative")
        self.host = host
        self.port = port
        self.version = version
        self._profile: SnmpProfile | None = PROFILES.get(profile)
        self._outlets = outlets or 0
        self._timeout = timeout
        self._retries = retries
        self._executor: Executor = executor or _to_thread
        if version == "3":
            self._read_auth = self._write_auth = _usm_user(
                username,
                auth_protocol or "none",
                auth_key,
                priv_protocol or "none",
                priv_key,
            )
        else:
            model = 0 if version == "1" else 1
            self._read_auth = CommunityData(community, mpModel=model)
            self._write_auth = CommunityData(
                community if write_community is None else write_community,
                mpModel=model,
            )
        self._context = ContextData()
        self._lock = asyncio.Lock()
        self._engine: Any = None
        self._target: Any = None
        self._known: set[int] = set()  # outlets the unit has reported
        self._absent: set[Oid] = set()  # optional objects the unit does not have

    @property
    def description(self) -> str:
        """For logs, diagnostics and the power chain."""
        return f"snmp {self.host}:{self.port}"

    @property
    def profile(self) -> SnmpProfile | None:
        """The vendor profile in use: the configured one, or the detected one (else None)."""
        return self._profile

    # PduClient

    async def detect(self) -> SnmpProfile:
        """The vendor profile, read from the unit's sysObjectID when "automatic"."""
        async with self._lock:
            return await self._ensure_profile()

    async def read_status(self) -> UnitStatus:
        """Every outlet's state (and names, meters where the profile has them): one walk."""
        async with self._lock:
            profile = await self._ensure_profile()
            outlet_meters = [
                meter
                for meter in (
                    profile.outlet_current,
                    profile.outlet_power,
                    profile.outlet_energy,
                )
                if meter is not None
            ]
            # Optional columns and objects a full read found missing are not asked again.
            optional = [
                profile.name_column,
                profile.module_column,
                profile.number_column,
                *(meter.oid for meter in outlet_meters),
            ]
            columns = [profile.state_column]
            columns.extend(oid for oid in optional if oid and oid not in self._absent)
            scalars = [
                oid
                for oid in (
                    SYS_NAME,
                    profile.model,
                    profile.serial,
                    profile.unit_power.oid if profile.unit_power else None,
                    profile.unit_energy.oid if profile.unit_energy else None,
                )
                if oid and oid not in self._absent
            ]
            tables, values = await self._walk(columns, scalars, "status read")
            if not tables[profile.state_column]:
                raise SnmpVendorError(
                    f"{self.description}: no outlets in {profile.title}'s table "
                    f"{dotted(profile.state_column)}: is the profile the unit's?"
                )
            self._absent.update(oid for oid in columns[1:] if not tables[oid])
            self._absent.update(oid for oid in scalars if oid not in values)
        return self._status(profile, tables, values)

    async def set_outlets(self, outlets: Sequence[int], on: bool) -> None:
        """Switch these outlets (1-based) on or off with one SET."""
        numbers = sorted(set(outlets))
        if not numbers:
            return
        if numbers[0] < 1:
            raise SnmpSettingsError("outlet numbers start at 1")
        async with self._lock:
            profile = await self._ensure_profile()
            command = profile.command(on)
            oids = [(*command.column, number) for number in numbers]
            what = (
                f"switch outlets {', '.join(map(str, numbers))} {'on' if on else 'off'}"
            )
            status, index, answered = await self._request(
                what,
                set_cmd,
                self._write_auth,
                *(
                    ObjectType(ObjectIdentity(oid), Integer(command.value))
                    for oid in oids
                ),
            )
            if status:
                failed = oids[index - 1] if 0 < index <= len(oids) else None
                raise await self._set_error(what, status, failed)
            # Some agents (snmpsim among them) answer a SET of an object they lack with
            # noSuchInstance in place of the value, and no error.
            missing = [oid for oid, value in answered if not _present(value)]
            if missing:
                raise PduProtocolError(
                    f"{self.description}: {what}: the unit has no {dotted(missing[0])}:"
                    f" no outlet {missing[0][-1]}, or not the unit's vendor profile"
                )

    async def close(self) -> None:
        """Close the engine's socket (a later call makes a new engine)."""
        async with self._lock:
            engine, self._engine, self._target = self._engine, None, None
            if engine is None:
                return
            dispatcher = engine.transport_dispatcher
            ticker = getattr(dispatcher, "loopingcall", None)
            engine.close_dispatcher()
            if ticker is not None:
                # The dispatcher's timer task is cancelled: let it finish here.
                await asyncio.wait((ticker,))

    # Vendor profile

    async def _ensure_profile(self) -> SnmpProfile:
        if self._profile is not None:
            return self._profile
        status, _, var_binds = await self._request(
            "read sysObjectID",
            get_cmd,
            self._read_auth,
            ObjectType(ObjectIdentity(SYS_OBJECT_ID)),
        )
        value = var_binds[0][1] if var_binds and not status else None
        if not isinstance(value, univ.ObjectIdentifier):
            raise SnmpVendorError(
                f"{self.description}: the unit reports no sysObjectID; "
                f"choose its vendor profile ({', '.join(PROFILES)})"
            )
        sys_object_id = tuple(value)
        found = candidates(sys_object_id)
        if not found:
            raise SnmpVendorError(
                f"{self.description}: sysObjectID {dotted(sys_object_id)} is not a PDU "
                f"vendor this driver knows; choose a profile ({', '.join(PROFILES)})"
            )
        profile = found[0] if len(found) == 1 else await self._probe(found)
        _LOGGER.debug(
            "%s: sysObjectID %s: profile %s",
            self.description,
            dotted(sys_object_id),
            profile.key,
        )
        self._profile = profile
        return profile

    async def _probe(self, found: Sequence[SnmpProfile]) -> SnmpProfile:
        """The first profile (best first) whose state column the unit answers."""
        answers = await self._get_next(
            [profile.state_column for profile in found], "probe the outlet tables"
        )
        for profile, answer in zip(found, answers, strict=True):
            if answer is not None and _under(answer[0], profile.state_column):
                return profile
        titles = ", ".join(profile.title for profile in found)
        raise SnmpVendorError(
            f"{self.description}: the unit has none of the outlet tables {titles}"
        )

    # Reading

    def _status(
        self,
        profile: SnmpProfile,
        tables: dict[Oid, dict[Oid, Any]],
        values: dict[Oid, Any],
    ) -> UnitStatus:
        states = {
            suffix[0]: value
            for suffix, value in tables[profile.state_column].items()
            if len(suffix) == 1 and suffix[0] >= 1
        }
        self._known.update(states)
        names = tables.get(profile.name_column or (), {})
        labels = _labels(
            tables.get(profile.module_column or (), {}),
            tables.get(profile.number_column or (), {}),
        )

        def meter(which: Meter | None, number: int) -> float | None:
            if which is None:
                return None
            return which.convert(_int(tables.get(which.oid, {}).get((number,))))

        outlets: dict[int, OutletStatus] = {}
        for number in sorted(self._known | set(range(1, self._outlets + 1))):
            if number not in states:
                outlets[number] = OutletStatus(PowerState.UNKNOWN)
                continue
            outlets[number] = OutletStatus(
                state=profile.state(_int(states[number])),
                name=_text(names.get((number,))),
                label=labels.get(number),
                current_a=meter(profile.outlet_current, number),
                power_w=meter(profile.outlet_power, number),
                energy_kwh=meter(profile.outlet_energy, number),
            )

        def unit(which: Meter | None) -> float | None:
            return None if which is None else which.convert(_int(values.get(which.oid)))

        return UnitStatus(
            outlets=outlets,
            power_w=unit(profile.unit_power),
            energy_kwh=unit(profile.unit_energy),
            name=_text(values.get(SYS_NAME)),
            model=_text(values.get(profile.model or ())),
            serial=_text(values.get(profile.serial or ())),
        )

    async def _walk(
        self, columns: Sequence[Oid], scalars: Sequence[Oid], what: str
    ) -> tuple[dict[Oid, dict[Oid, Any]], dict[Oid, Any]]:
        """Walk several table columns side by side and read scalars on the way.

        Returns each column's rows by index (the OID after the column) and the scalars
        that exist. A scalar is asked as the next object after its parent, so it comes
        in the first request along with the columns.
        """
        tables: dict[Oid, dict[Oid, Any]] = {column: {} for column in columns}
        found: dict[Oid, Any] = {}
        cursors = {column: column for column in columns}
        active = list(tables)
        ask = list(scalars)
        for _ in range(MAX_WALK_REQUESTS):
            if not active and not ask:
                return tables, found
            requested = [scalar[:-1] for scalar in ask] + [cursors[c] for c in active]
            answers: Sequence[VarBind | None]
            if self.version == "1":
                answers = await self._get_next(requested, what)
            else:
                # Rows enough to see every column's end, within what agents return.
                wanted = len(self._known) + 1 if self._known else DEFAULT_REPETITIONS
                repetitions = max(1, min(wanted, BULK_VARBINDS // max(1, len(active))))
                answers = await self._get_bulk(
                    len(ask), repetitions if active else 0, requested, what
                )
            for scalar, answer in zip(ask, answers, strict=False):
                if answer is not None and answer[0] == scalar and _present(answer[1]):
                    found[scalar] = answer[1]
            rows = answers[len(ask) :]
            ask = []
            done: set[Oid] = set() if rows else set(active)
            for position, answer in enumerate(rows):
                column = active[position % len(active)]
                if column in done:
                    continue
                if (
                    answer is None
                    or not _present(answer[1])
                    or not _under(answer[0], column)
                    or answer[0] <= cursors[column]
                ):
                    done.add(column)
                    continue
                name, value = answer
                tables[column][name[len(column) :]] = value
                cursors[column] = name
            active = [column for column in active if column not in done]
        raise PduProtocolError(
            f"{self.description}: {what}: the walk did not end after "
            f"{MAX_WALK_REQUESTS} requests"
        )

    async def _get_next(self, oids: Sequence[Oid], what: str) -> list[VarBind | None]:
        """One GETNEXT of `oids`; None where the MIB ends (v1: noSuchName, asked again)."""
        result: list[VarBind | None] = [None] * len(oids)
        pending = list(range(len(oids)))
        while pending:
            status, index, var_binds = await self._request(
                what,
                next_cmd,
                self._read_auth,
                *(ObjectType(ObjectIdentity(oids[i])) for i in pending),
            )
            if status == _NO_SUCH_NAME and 0 < index <= len(pending):
                del pending[index - 1]  # SNMP v1: this one is past the end of the MIB
                continue
            if status:
                raise self._read_error(what, status)
            for position, var_bind in zip(pending, var_binds, strict=False):
                result[position] = var_bind if _present(var_bind[1]) else None
            break
        return result

    async def _get_bulk(
        self, non_repeaters: int, repetitions: int, oids: Sequence[Oid], what: str
    ) -> list[VarBind]:
        """One GETBULK: the non-repeaters' next objects, then rows of the others'."""
        status, _, var_binds = await self._request(
            what,
            bulk_cmd,
            self._read_auth,
            non_repeaters,
            repetitions,
            *(ObjectType(ObjectIdentity(oid)) for oid in oids),
        )
        if status:
            raise self._read_error(what, status)
        return var_binds

    async def _exists(self, oid: Oid) -> bool:
        """Whether the unit has `oid` (read with the read credentials)."""
        status, _, var_binds = await self._request(
            f"read {dotted(oid)}",
            get_cmd,
            self._read_auth,
            ObjectType(ObjectIdentity(oid)),
        )
        if status == _NO_SUCH_NAME:
            return False
        return not (var_binds and not status and not _present(var_binds[0][1]))

    # One request

    async def _session(self) -> tuple[Any, Any]:
        if self._engine is None:
            self._engine = await self._executor(_new_engine)
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.host, self.port), timeout=self._timeout, retries=self._retries
                )
            except PySnmpError as err:
                raise PduUnreachableError(f"{self.description}: {err}") from err
        return self._engine, self._target

    async def _request(
        self, what: str, command: Callable[..., Awaitable[Any]], auth: Any, *args: Any
    ) -> tuple[int, int, list[VarBind]]:
        """Send one request; (error status, error index, varbinds) of its answer."""
        engine, target = await self._session()
        # pysnmp times requests out itself; this only guards against an engine that
        # stopped ticking.
        deadline = self._timeout * (self._retries + 1) + 1.0
        try:
            async with asyncio.timeout(deadline):
                indication, status, index, var_binds = await command(
                    engine, auth, target, self._context, *args, lookupMib=False
                )
        except TimeoutError as err:
            raise self._no_answer(what) from err
        except PySnmpError as err:
            raise PduProtocolError(f"{self.description}: {what}: {err}") from err
        if indication:
            raise self._indication_error(what, indication)
        return (
            int(status),
            int(index),
            [(tuple(name), value) for name, value in var_binds],
        )

    # Errors

    def _no_answer(self, what: str) -> SnmpNoAnswerError:
        if self.version == "3":
            hint = "a wrong privacy key looks the same: agents drop what they cannot decrypt"
        else:
            hint = (
                "a wrong community looks the same: agents drop requests with a "
                "community they do not know"
            )
        return SnmpNoAnswerError(
            f"{self.description}: {what}: no answer within {self._timeout:g} s "
            f"({self._retries} retries); {hint}"
        )

    def _indication_error(self, what: str, indication: Any) -> SwitchError:
        where = f"{self.description}: {what}"
        if isinstance(indication, errind.RequestTimedOut):
            return self._no_answer(what)
        if isinstance(indication, _AUTH_INDICATIONS):
            return PduAuthError(
                f"{where}: the unit refused the credentials: {indication}"
            )
        return PduProtocolError(f"{where}: {indication}")

    def _read_error(self, what: str, status: int) -> SwitchError:
        where = f"{self.description}: {what}"
        if status == _AUTHORIZATION_ERROR:
            return PduAuthError(f"{where}: these credentials may not read the unit")
        return PduProtocolError(f"{where}: the unit answered {_status_name(status)}")

    async def _set_error(
        self, what: str, status: int, failed: Oid | None
    ) -> SwitchError:
        where = f"{self.description}: {what}"
        name = _status_name(status)
        credentials = "user" if self.version == "3" else "write community"
        read_only = PduReadOnlyError(
            f"{where}: refused ({name}): the {credentials} may read but not switch"
        )
        if status in _READ_ONLY:
            return read_only
        if status in _MISSING_OR_READ_ONLY and failed is not None:
            if await self._exists(failed):
                return read_only
            return PduProtocolError(
                f"{where}: the unit has no {dotted(failed)} ({name}): no outlet "
                f"{failed[-1]}, or not the unit's vendor profile"
            )
        target = f" {dotted(failed)}" if failed is not None else ""
        return PduProtocolError(f"{where}: the unit refused to set{target}: {name}")


def _labels(modules: dict[Oid, Any], numbers: dict[Oid, Any]) -> dict[int, str]:
    """Index -> "unit:outlet" where the table spans daisy-chained units, else nothing.

    A single unit's outlets keep their plain number (its index is the outlet number).
    """
    found = {
        suffix[0]: (module, number)
        for suffix, raw in modules.items()
        if len(suffix) == 1
        and (module := _int(raw)) is not None
        and (number := _int(numbers.get(suffix))) is not None
    }
    if len({module for module, _ in found.values()}) < 2:
        return {}
    return {index: f"{module}:{number}" for index, (module, number) in found.items()}


def _under(oid: Oid, column: Oid) -> bool:
    return len(oid) > len(column) and oid[: len(column)] == column


def _usm_user(
    username: str | None,
    auth_protocol: str,
    auth_key: str | None,
    priv_protocol: str,
    priv_key: str | None,
) -> Any:
    """SNMP v3 credentials, checked before anything is sent."""
    if not username:
        raise SnmpSettingsError("SNMP v3 needs a user name")
    if auth_protocol not in AUTH_PROTOCOLS:
        raise SnmpSettingsError(
            f"auth protocol must be one of {', '.join(AUTH_PROTOCOLS)}"
        )
    if priv_protocol not in PRIV_PROTOCOLS:
        raise SnmpSettingsError(
            f"privacy protocol must be one of {', '.join(PRIV_PROTOCOLS)}"
        )
    options: dict[str, Any] = {}
    if auth_protocol == "none" and auth_key:
        raise SnmpSettingsError("an auth key needs an auth protocol (md5, sha...)")
    if priv_protocol == "none" and priv_key:
        raise SnmpSettingsError("a privacy key needs a privacy protocol (des, aes...)")
    if auth_protocol != "none":
        if not auth_key or len(auth_key) < MIN_KEY_LENGTH:
            raise SnmpSettingsError(
                f"the auth key needs at least {MIN_KEY_LENGTH} characters"
            )
        options |= {"authKey": auth_key, "authProtocol": AUTH_PROTOCOLS[auth_protocol]}
    if priv_protocol != "none":
        if auth_protocol == "none":
            raise SnmpSettingsError(
                "privacy needs authentication (an auth protocol and key)"
            )
        if not priv_key or len(priv_key) < MIN_KEY_LENGTH:
            raise SnmpSettingsError(
                f"the privacy key needs at least {MIN_KEY_LENGTH} characters"
            )
        options |= {"privKey": priv_key, "privProtocol": PRIV_PROTOCOLS[priv_protocol]}
    # authNoPriv and noAuthNoPriv are the unit's owner's choice (many PDUs offer no more).
    return UsmUserData(username, **options)  # noqa: S509


class _Refusal(asyncio.DatagramProtocol):
    """Notes an ICMP port-unreachable (a refused datagram) on a connected socket."""

    def __init__(self) -> None:
        self.refused = asyncio.get_running_loop().create_future()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError) and not self.refused.done():
            self.refused.set_result(True)


async def udp_port_refuses(host: str, port: int, wait: float = 0.5) -> bool:
    """Whether nothing listens at host:port (the host answers port-unreachable).

    An SNMP agent says nothing to a wrong community: this tells a wrong address or port
    (refused) from a wrong community (silence), where the network lets ICMP through.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Refusal, remote_addr=(host, port)
        )
    except OSError:
        return True
    try:
        transport.sendto(b"\0")
        try:
            return await asyncio.wait_for(asyncio.shield(protocol.refused), wait)
        except TimeoutError:
            return False
    finally:
        transport.close()
