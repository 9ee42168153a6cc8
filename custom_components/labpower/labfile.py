"""The lab file: PDU units, BMCs, resources, defaults and lab policies declared in YAML.

It reads text with Home Assistant's YAML loader (annotatedyaml: every value with its
line) and returns the data of config subentries, the same dicts the config flow writes,
so that they are built through the same code as subentries made in the UI. Names and
other fields take hostlist ranges (core/hostlist.py) that expand in step. Every problem
found is reported with its line, up to MAX_ERRORS of them, in one LabFileError. A file is
bounded (size, nesting, aliases, names, range values, time) before memory is spent. The
format is documented in docs/labfile.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import difflib
from functools import partial
import math
from pathlib import Path
import re
import time
from typing import Any, ClassVar, Final, NoReturn

import annotatedyaml
from annotatedyaml.constructors import _construct_seq, _handle_scalar_tag
from annotatedyaml.loader import FastSafeLoader
from annotatedyaml.objects import NodeDictClass, NodeStrClass
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
import yaml  # type: ignore[import-untyped]

from .const import (
    BMC_IPMI,
    BMC_PROTOCOLS,
    CHECKER_ENTITY,
    CHECKER_ICMP,
    CHECKER_NONE,
    CHECKER_TCP,
    CHECKER_TYPES,
    CONF_AUTH_KEY,
    CONF_AUTH_PROTOCOL,
    CONF_BMC,
    CONF_BMC_AUTH,
    CONF_BMC_NAME,
    CONF_CHECK_ENTITY,
    CONF_CHECKER,
    CONF_CIPHER_SUITE,
    CONF_COMMUNITY,
    CONF_DEFAULT_TTL,
    CONF_DEPENDS_ON,
    CONF_GRACEFUL_OFF,
    CONF_HOST,
    CONF_LABELS,
    CONF_LED_ENTITY,
    CONF_LONG_PRESS,
    CONF_MAC,
    CONF_MAX_PARALLEL_ON,
    CONF_MAX_TRANSITIONS,
    CONF_MAX_TTL,
    CONF_METER_ENTITY,
    CONF_MIN_OFF_TIME,
    CONF_NOTIFY_ON_BATTERY,
    CONF_OFF_DELAY,
    CONF_OFF_NOW,
    CONF_ON_SPACING,
    CONF_OUTLET_COUNT,
    CONF_OUTLETS,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_POWER_ENTITY,
    CONF_POWER_W,
    CONF_PRIV_KEY,
    CONF_PRIV_PROTOCOL,
    CONF_PROTOCOL,
    CONF_REFUSE_ON_BATTERY,
    CONF_RELAY_ENTITY,
    CONF_RESET_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SHED_ON_BATTERY,
    CONF_SHORT_PRESS,
    CONF_SHUTDOWN_ON_LOW_BATTERY,
    CONF_SNMP_PROFILE,
    CONF_SNMP_VERSION,
    CONF_SSH_COMMAND,
    CONF_SSH_HOST,
    CONF_SSH_KEY,
    CONF_SSH_PASSWORD,
    CONF_SSH_PORT,
    CONF_SSH_USERNAME,
    CONF_START_TIMEOUT,
    CONF_STOP_TIMEOUT,
    CONF_SWITCHER,
    CONF_UNIT_NAME,
    CONF_UNIT_PARALLEL_ON,
    CONF_UPS_ENTITY,
    CONF_USERNAME,
    CONF_VENDOR,
    CONF_VERIFY_SSL,
    CONF_WOL_ADDRESS,
    CONF_WOL_PORT,
    CONF_WRITE_COMMUNITY,
    CONF_WRITE_PASSWORD,
    CONF_WRITE_USERNAME,
    DEFAULT_LONG_PRESS,
    DEFAULT_SHORT_PRESS,
    DOMAIN,
    PDU_VENDORS,
    SNMP_AUTOMATIC,
    SNMP_FIELDS,
    SNMP_VERSIONS,
    SUBENTRY_BMC,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
    SWITCHER_BMC,
    SWITCHER_BUTTON,
    SWITCHER_ENTITY,
    SWITCHER_PDU,
    SWITCHER_TYPES,
    SWITCHER_WOL,
    VENDOR_SNMP,
)
from .core.feeds import FeedTarget, feed_targets, normalise_mac
from .core.graph import find_cycle
from .core.hostlist import HostlistError, count as range_count, expand, is_pattern
from .core.model import ResourcePolicy
from .drivers.snmp_profiles import SNMP_PROFILES
from .feeds import known_feeds

_C_LOADER: Final = getattr(yaml, "CSafeLoader", None)
# The names each lab's file defines (hass.data): other labs' files may not define them.
_CLAIMS: Final = "labpower_lab_file_names"
_LIVE: Final = (ConfigEntryState.LOADED, ConfigEntryState.SETUP_IN_PROGRESS)


LAB_FILE_NAME: Final = "labpower.yaml"
SECRETS_FILE_NAME: Final = "secrets.yaml"
# Reporting stops after this many problems: the rest are usually consequences.
MAX_ERRORS: Final = 20
# Bounds: a lab file is refused, with the line at fault, before it can take the memory
# or the time of Home Assistant (a YAML alias bomb, a typo like `pi[1-99999]`).
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
MAX_DEPTH: Final = 32  # nesting of lists and mappings, aliases expanded
MAX_NODES: Final = 1_000_000  # YAML values, aliases and merge keys expanded
MAX_NAMES: Final = 20_000  # units, BMCs and resources a file defines
MAX_VALUES: Final = 200_000  # values all its ranges expand to
PARSE_SECONDS: Final = 30.0

# The singular form of `outlets` (`outlet: pdu1:[1-8]`).
CONF_OUTLET: Final = "outlet"
CONF_VERSION: Final = "version"

_TAG: Final = "tag:yaml.org,2002:"
_MERGE_TAG: Final = _TAG + "merge"
_SSH_CREDENTIALS = (CONF_SSH_PASSWORD, CONF_SSH_KEY)
# What an unquoted `[1-8]` leaves of itself once YAML has read it as a list.
_RANGE_BODY = re.compile(r"[0-9][0-9 ,-]*")
_WHOLE = re.compile(r"[+-]?[0-9]+")


# What the parser returns and raises


@dataclass(slots=True)
class LabFile:
    """What a lab file defines, as config subentry data (the config flow's dicts).

    `units` are PDU subentries, `bmcs` BMC subentries, `resources` resource subentries
    (a resource names its BMC and its outlets' units by name); `policies` holds the
    lab-wide policies the file sets (keys it leaves out are absent).
    """

    units: list[dict[str, Any]] = field(default_factory=list)
    bmcs: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    policies: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LabFileProblem:
    """One problem: the 1-based line of the offending node (None: the whole file)."""

    line: int | None
    message: str


class LabFileError(Exception):
    """A lab file that cannot be used; its text lists every problem, one per line."""

    def __init__(
        self,
        errors: list[LabFileProblem],
        filename: str = LAB_FILE_NAME,
        *,
        truncated: bool = False,
    ) -> None:
        """Keep the problems (`truncated`: more were not looked for)."""
        self.errors = errors
        self.filename = filename
        self.truncated = truncated
        super().__init__(str(self))

    def __str__(self) -> str:
        """`labpower.yaml line 12: <the problem>`, one problem per line."""
        lines = [
            f"{self.filename}: {problem.message}"
            if problem.line is None
            else f"{self.filename} line {problem.line}: {problem.message}"
            for problem in self.errors
        ]
        if self.truncated:
            lines.append(f"{self.filename}: stopped after {MAX_ERRORS} problems")
        return "\n".join(lines)


def _fail(message: str, filename: str, line: int | None = None) -> LabFileError:
    return LabFileError([LabFileProblem(line, message)], filename)


async def async_load(
    hass: HomeAssistant, entry: ConfigEntry, path: str, *, claim: bool = True
) -> LabFile:
    """Read and check a lab's file in the executor; it gives up after PARSE_SECONDS.

    Resource names are checked against every lab; with `claim`, the names this file
    defines are kept for the lab (other labs' files may not define them again).
    """
    known = known_outside(hass, entry)
    # The parser stops itself at the deadline (a thread cannot be cancelled).
    deadline = time.monotonic() + PARSE_SECONDS
    lab = await hass.async_add_executor_job(
        partial(load_lab_file, path, deadline=deadline, **known)
    )
    if claim:
        claims: dict[str, tuple[ConfigEntry, set[str]]] = hass.data.setdefault(
            _CLAIMS, {}
        )
        claims[entry.entry_id] = (
            entry,
            {data[CONF_RESOURCE_NAME].casefold() for data in lab.resources},
        )
    return lab


def known_outside(hass: HomeAssistant, entry: ConfigEntry) -> dict[str, Any]:
    """What exists outside a lab's file: it may use it but not define it again.

    Resource names are those of every lab: made in the UI, or by another lab's file
    (loaded, or being loaded: names are claimed when a file is read).
    """
    subentries = entry.subentries.values()
    resources = {
        sub.title: "" if other is entry else other.title
        for other in hass.config_entries.async_entries(DOMAIN)
        for sub in other.subentries.values()
        if sub.subentry_type == SUBENTRY_RESOURCE
    }
    claims: dict[str, tuple[ConfigEntry, set[str]]] = hass.data.get(_CLAIMS, {})
    for entry_id, (other, names) in claims.items():
        if entry_id != entry.entry_id and other.state in _LIVE:
            resources.update(dict.fromkeys(names, other.title))
    return {
        "known_resources": resources,
        "known_units": {
            sub.title: sub.data.get(CONF_OUTLET_COUNT) or None
            for sub in subentries
            if sub.subentry_type == SUBENTRY_PDU
        },
        "known_bmcs": [
            sub.title for sub in subentries if sub.subentry_type == SUBENTRY_BMC
        ],
        "known_feeds": known_feeds(hass, entry),
        "lab": entry.entry_id,
    }


def load_lab_file(
    path: str | Path, *, deadline: float | None = None, **known: Any
) -> LabFile:
    """Read and check the lab file at `path` (blocking I/O: run it in an executor).

    `!secret name` values come from secrets.yaml in the same folder, as in Home
    Assistant's own configuration. The other arguments are as for parse_lab_file.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(f"cannot read the file: {err}", path.name) from err
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(f"larger than {MAX_FILE_BYTES:,} bytes", path.name)
    secrets: dict[str, Any] | None = None
    if "!secret" in text:
        secrets = _load_secrets(path.parent / SECRETS_FILE_NAME, path.name)
    return parse_lab_file(text, path.name, secrets=secrets, deadline=deadline, **known)


def parse_lab_file(
    text: str,
    filename: str = LAB_FILE_NAME,
    *,
    secrets: Mapping[str, Any] | None = None,
    known_resources: Mapping[str, str] | Iterable[str] = (),
    known_units: Mapping[str, int | None] | None = None,
    known_bmcs: Iterable[str] = (),
    known_feeds: Mapping[FeedTarget, str] | None = None,
    lab: str = "",
    deadline: float | None = None,
) -> LabFile:
    """Parse, expand and check a lab file's text; LabFileError lists what is wrong.

    `filename` prefixes the messages. `secrets` resolves `!secret name` values.
    `known_resources` (name -> the lab that has it), `known_units` (name -> outlet
    count, None if unknown) and `known_bmcs` are what exists outside this file: the
    file may refer to them but not define them again. `known_feeds` are the feed
    targets (core/feeds.py) that resources outside this file use, each with who uses
    it: one feed never feeds two resources. `lab` is the id of the file's lab, the
    scope of its outlets and BMCs. `deadline` (time.monotonic()) bounds the time.
    """
    if not isinstance(known_resources, Mapping):
        known_resources = dict.fromkeys(known_resources, "")
    parser = _Parser(
        secrets or {},
        dict(known_resources),
        dict(known_units or {}),
        set(known_bmcs),
        dict(known_feeds or {}),
        lab=lab,
        deadline=time.monotonic() + PARSE_SECONDS if deadline is None else deadline,
    )
    try:
        parsed = parser.parse(text)
    except _StopError as stop:
        raise LabFileError(
            _by_line(parser.problems), filename, truncated=stop.truncated
        ) from None
    if parser.problems:
        raise LabFileError(_by_line(parser.problems), filename)
    return parsed


def _by_line(problems: list[LabFileProblem]) -> list[LabFileProblem]:
    """Problems of the whole file first, then in the order of their lines."""
    return sorted(problems, key=lambda problem: problem.line or 0)


def _load_secrets(path: Path, filename: str) -> dict[str, Any]:
    """The mapping in secrets.yaml (empty when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(f"cannot read {path.name}: {err}", filename) from err
    try:
        secrets: Any = annotatedyaml.parse_yaml(text)
    except (annotatedyaml.YAMLException, yaml.YAMLError) as err:
        raise _fail(f"{path.name} is not valid YAML: {err}", filename) from err
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise _fail(f"{path.name} must be a mapping of names to values", filename)
    return secrets


# Reading YAML: Home Assistant's loader (annotatedyaml), every value with its line.


class _Plain(NodeStrClass):
    """An unquoted number, boolean or date: its text as written, its YAML value in `value`.

    `10:20:30:40:50:59` (a MAC address, to YAML 1.1 a number) and `0755` stay text.
    """

    __slots__ = ("value",)
    value: Any


class _Secret(NodeStrClass):
    """A `!secret` value: taken as written, never expanded."""

    __slots__ = ()


class _Bad(NodeStrClass):
    """A value that could not be read (an unknown tag or secret): what is wrong."""

    __slots__ = ()


class _Map(NodeDictClass):
    """A mapping; the keys it had twice or that were not words, a bad merge."""

    __slots__ = ("merge", "odd", "twice")
    twice: list[tuple[str, int, int]]
    odd: list[int]
    merge: str | None


class _Loader(FastSafeLoader):
    """annotatedyaml's loader (libyaml where built) without includes or environment."""

    yaml_constructors: ClassVar[dict[Any, Any]] = {
        tag: constructor
        for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
        if tag in (_TAG + "null", _TAG + "str", _TAG + "seq", _TAG + "map")
    }

    def __init__(self, stream: str, secrets: Mapping[str, Any] | None = None) -> None:
        """A loader for one text, `!secret` values from `secrets`."""
        super().__init__(stream)
        self.name = LAB_FILE_NAME
        self.lab_secrets = secrets or {}

    def plain(self, node: yaml.ScalarNode) -> _Plain:
        text = _Plain(node.value)
        text.value = yaml.SafeLoader.yaml_constructors[node.tag](self, node)
        text.__line__ = node.start_mark.line + 1
        return text

    def secret(self, node: yaml.ScalarNode) -> _Secret | _Bad:
        value = self.lab_secrets.get(node.value)
        if value is None:
            return self.unknown(
                node, f"no secret named '{node.value}' in {SECRETS_FILE_NAME}"
            )
        secret = _Secret(value)
        secret.__line__ = node.start_mark.line + 1
        return secret

    def unknown(self, node: yaml.Node, message: str = "") -> _Bad:
        bad = _Bad(message or f"unknown tag {node.tag}")
        bad.__line__ = node.start_mark.line + 1
        return bad

    def mapping(self, node: yaml.MappingNode) -> _Map:
        """A mapping: merge keys honoured (what they bring in may be overridden)."""
        own = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
        data = _Map()
        data.twice, data.odd, data.merge = [], [], None
        try:
            self.flatten_mapping(node)
        except yaml.MarkedYAMLError as err:
            data.merge = str(err.problem)
            node.value = [pair for pair in node.value if pair[0].tag != _MERGE_TAG]
        merged = len(node.value) - own
        lines: dict[str, int] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                data.odd.append(line)
                continue
            if key in lines and index >= merged and lines[key] > 0:
                data.twice.append((key, line, lines[key]))
                continue
            lines[key] = line if index >= merged else 0
            data[key] = self.construct_object(value_node)
        data.__line__ = node.start_mark.line + 1
        return data


for _tag in ("int", "float", "bool", "timestamp"):
    _Loader.add_constructor(_TAG + _tag, _Loader.plain)
_Loader.add_constructor(_TAG + "str", _handle_scalar_tag)
_Loader.add_constructor(_TAG + "seq", _construct_seq)
_Loader.add_constructor(_TAG + "map", _Loader.mapping)
_Loader.add_constructor("!secret", _Loader.secret)
_Loader.add_constructor(None, _Loader.unknown)


def _measure(text: str, deadline: float) -> LabFileProblem | None:
    """The first bound the text breaks, read as a stream of YAML events (no values made).

    Counts the values aliases and merge keys expand to and the depth they reach, so
    that an alias bomb is refused at the alias that breaks the bound.
    """
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth below)
    # [anchor, values, depth below, a mapping, children so far, the next is merged]
    stack: list[list[Any]] = []
    total = 0
    loader = yaml.SafeLoader(text) if _C_LOADER is None else _C_LOADER(text)
    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1
            total += 1
            if total % 4096 == 0 and time.monotonic() > deadline:
                return LabFileProblem(None, f"not read within {PARSE_SECONDS:g} s")
            merge = False
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    return LabFileProblem(line, f"nested more than {MAX_DEPTH} deep")
                is_map = isinstance(event, yaml.MappingStartEvent)
                stack.append([event.anchor, 1, 0, is_map, 0, False])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, values, depth, is_map, _, _ = stack.pop()
                if anchor is not None:
                    anchors[anchor] = (values, depth + 1)
                values, depth, total = values - 1, depth + 1, total - 1
                # What a merge key brings in sits in the mapping, not below it.
                folds = 1 if is_map else 2
            elif isinstance(event, yaml.AliasEvent):
                values, depth = anchors.get(event.anchor, (1, 0))
                total, folds = total + values - 1, 1
                if len(stack) + depth > MAX_DEPTH:
                    return LabFileProblem(
                        line, f"alias *{event.anchor} nests more than {MAX_DEPTH} deep"
                    )
                if total > MAX_NODES:
                    return LabFileProblem(
                        line,
                        f"aliases expand to more than {MAX_NODES:,} values "
                        f"(at *{event.anchor})",
                    )
            elif isinstance(event, yaml.ScalarEvent):
                values, depth, folds = 1, 0, 0
                merge = event.value == "<<" and event.implicit[0]
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 0)
            else:
                continue
            if stack:
                parent = stack[-1]
                if parent[3]:
                    if parent[4] % 2 == 0:
                        parent[5] = merge
                    elif parent[5]:
                        depth = max(0, depth - folds)
                    parent[4] += 1
                parent[1] += values
                parent[2] = max(parent[2], depth)
    finally:
        loader.dispose()
    return None


def _read_yaml(
    text: str, secrets: Mapping[str, Any], deadline: float
) -> tuple[Any, LabFileProblem | None]:
    """The lab file's values (each string, list and mapping with its line), or a problem."""
    try:
        if (bound := _measure(text, deadline)) is not None:
            return None, bound
        loader = _Loader(text, secrets)
        try:
            return loader.get_single_data(), None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = None if mark is None else mark.line + 1
        return None, LabFileProblem(
            line, f"not valid YAML: {err.problem or err.context}"
        )
    except yaml.YAMLError as err:
        return None, LabFileProblem(None, f"not valid YAML: {err}")


# The fields of each section


type _Keys = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Field:
    """How a field's value is read: `kind` is one of the kinds below."""

    kind: str
    choices: _Keys = ()
    low: float | None = None
    high: float | None = None


_TEXT = "text"  # a string; ranges expand
_HOST = "host"  # a string that is not blank (as in the flows); ranges expand
_OPAQUE = "opaque"  # a string taken as written (passwords, commands, SNMP settings)
_INT = "int"
_FLOAT = "float"
_BOOL = "bool"
_LIST = "list"  # a list of strings (or one string); ranges expand

_TEXT_FIELD = _Field(_TEXT)
_HOST_FIELD = _Field(_HOST)
_OPAQUE_FIELD = _Field(_OPAQUE)
_PORT_FIELD = _Field(_INT, low=1, high=65535)
_SECONDS_FIELD = _Field(_FLOAT, low=0)
_LIST_FIELD = _Field(_LIST)

_SWITCHERS: Final = tuple(dict.fromkeys([*SWITCHER_TYPES, SWITCHER_PDU]))
_DURATIONS: Final = {
    CONF_OFF_DELAY: "off_delay",
    CONF_MIN_OFF_TIME: "min_off_time",
    CONF_START_TIMEOUT: "start_timeout",
    CONF_STOP_TIMEOUT: "stop_timeout",
    CONF_DEFAULT_TTL: "default_ttl",
    CONF_MAX_TTL: "max_ttl",
}
_SWITCHES: Final = {CONF_GRACEFUL_OFF: "graceful_off", CONF_OFF_NOW: "off_now"}

# The order here is the order of the keys in the subentry data.
_RESOURCE_FIELDS: Final[dict[str, _Field]] = {
    CONF_RESOURCE_NAME: _TEXT_FIELD,
    CONF_SWITCHER: _Field(_TEXT, choices=_SWITCHERS),
    CONF_CHECKER: _Field(_TEXT, choices=tuple(CHECKER_TYPES)),
    CONF_POWER_ENTITY: _TEXT_FIELD,
    CONF_RELAY_ENTITY: _TEXT_FIELD,
    CONF_LED_ENTITY: _TEXT_FIELD,
    CONF_RESET_ENTITY: _TEXT_FIELD,
    CONF_SHORT_PRESS: _SECONDS_FIELD,
    CONF_LONG_PRESS: _SECONDS_FIELD,
    CONF_BMC: _TEXT_FIELD,
    CONF_MAC: _TEXT_FIELD,
    CONF_WOL_ADDRESS: _HOST_FIELD,
    CONF_WOL_PORT: _PORT_FIELD,
    CONF_SSH_HOST: _HOST_FIELD,
    CONF_SSH_PORT: _PORT_FIELD,
    CONF_SSH_USERNAME: _OPAQUE_FIELD,
    CONF_SSH_PASSWORD: _OPAQUE_FIELD,
    CONF_SSH_KEY: _OPAQUE_FIELD,
    CONF_SSH_COMMAND: _OPAQUE_FIELD,
    CONF_OUTLETS: _LIST_FIELD,
    CONF_OUTLET: _LIST_FIELD,
    CONF_HOST: _HOST_FIELD,
    CONF_PORT: _PORT_FIELD,
    CONF_CHECK_ENTITY: _TEXT_FIELD,
    **dict.fromkeys(_DURATIONS, _SECONDS_FIELD),
    CONF_GRACEFUL_OFF: _Field(_BOOL),
    CONF_OFF_NOW: _Field(_BOOL),
    CONF_MAX_TRANSITIONS: _Field(_INT, low=2),
    CONF_LABELS: _LIST_FIELD,
    CONF_POWER_W: _Field(_FLOAT, low=0),
    CONF_METER_ENTITY: _TEXT_FIELD,
    CONF_DEPENDS_ON: _LIST_FIELD,
}
_DEFAULTS_FIELDS: Final = {
    key: spec for key, spec in _RESOURCE_FIELDS.items() if key != CONF_RESOURCE_NAME
}
_ALIASES: Final = {CONF_OUTLET: CONF_OUTLETS}

_SWITCHER_FIELDS: Final[dict[str, _Keys]] = {
    SWITCHER_ENTITY: (CONF_POWER_ENTITY,),
    SWITCHER_BUTTON: (
        CONF_RELAY_ENTITY,
        CONF_LED_ENTITY,
        CONF_RESET_ENTITY,
        CONF_SHORT_PRESS,
        CONF_LONG_PRESS,
    ),
    SWITCHER_BMC: (CONF_BMC,),
    SWITCHER_WOL: (
        CONF_MAC,
        CONF_WOL_ADDRESS,
        CONF_WOL_PORT,
        CONF_SSH_HOST,
        CONF_SSH_PORT,
        CONF_SSH_USERNAME,
        CONF_SSH_PASSWORD,
        CONF_SSH_KEY,
        CONF_SSH_COMMAND,
    ),
    SWITCHER_PDU: (CONF_OUTLETS,),
}
_SWITCHER_REQUIRED: Final[dict[str, _Keys]] = {
    SWITCHER_ENTITY: (CONF_POWER_ENTITY,),
    SWITCHER_BUTTON: (CONF_RELAY_ENTITY, CONF_LED_ENTITY),
    SWITCHER_BMC: (CONF_BMC,),
    SWITCHER_WOL: (CONF_MAC, CONF_SSH_HOST, CONF_SSH_USERNAME),
    SWITCHER_PDU: (CONF_OUTLETS,),
}
# What the config flow fills in when the user leaves it as it is.
_SWITCHER_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    SWITCHER_BUTTON: {
        CONF_SHORT_PRESS: DEFAULT_SHORT_PRESS,
        CONF_LONG_PRESS: DEFAULT_LONG_PRESS,
    },
    SWITCHER_WOL: {
        CONF_WOL_ADDRESS: "255.255.255.255",
        CONF_WOL_PORT: 9,
        CONF_SSH_PORT: 22,
    },
}
# The field that tells which switcher a resource has when switcher_type is left out.
_SWITCHER_HINTS: Final = {
    CONF_POWER_ENTITY: SWITCHER_ENTITY,
    CONF_OUTLETS: SWITCHER_PDU,
    CONF_BMC: SWITCHER_BMC,
    CONF_RELAY_ENTITY: SWITCHER_BUTTON,
    CONF_MAC: SWITCHER_WOL,
}
_CHECKER_FIELDS: Final[dict[str, _Keys]] = {
    CHECKER_NONE: (),
    CHECKER_ICMP: (CONF_HOST,),
    CHECKER_TCP: (CONF_HOST, CONF_PORT),
    CHECKER_ENTITY: (CONF_CHECK_ENTITY,),
}
_COMMON_FIELDS: Final = frozenset(
    {
        CONF_RESOURCE_NAME,
        CONF_SWITCHER,
        CONF_CHECKER,
        *_DURATIONS,
        CONF_GRACEFUL_OFF,
        CONF_OFF_NOW,
        CONF_MAX_TRANSITIONS,
        CONF_LABELS,
        CONF_POWER_W,
        CONF_METER_ENTITY,
        CONF_DEPENDS_ON,
    }
)
_SWITCHER_ONLY: Final = frozenset(
    key for keys in _SWITCHER_FIELDS.values() for key in keys
)

_UNIT_FIELDS: Final[dict[str, _Field]] = {
    CONF_UNIT_NAME: _TEXT_FIELD,
    CONF_VENDOR: _Field(_TEXT, choices=tuple(PDU_VENDORS)),
    CONF_HOST: _HOST_FIELD,
    CONF_PORT: _PORT_FIELD,
    CONF_USERNAME: _OPAQUE_FIELD,
    CONF_PASSWORD: _OPAQUE_FIELD,
    CONF_WRITE_USERNAME: _OPAQUE_FIELD,
    CONF_WRITE_PASSWORD: _OPAQUE_FIELD,
    CONF_SNMP_VERSION: _Field(_OPAQUE, choices=tuple(SNMP_VERSIONS)),
    CONF_COMMUNITY: _OPAQUE_FIELD,
    CONF_WRITE_COMMUNITY: _OPAQUE_FIELD,
    CONF_AUTH_PROTOCOL: _OPAQUE_FIELD,
    CONF_AUTH_KEY: _OPAQUE_FIELD,
    CONF_PRIV_PROTOCOL: _OPAQUE_FIELD,
    CONF_PRIV_KEY: _OPAQUE_FIELD,
    CONF_SNMP_PROFILE: _Field(_TEXT, choices=tuple(SNMP_PROFILES)),
    CONF_OUTLET_COUNT: _Field(_INT, low=1),
    CONF_UPS_ENTITY: _TEXT_FIELD,
}
_BMC_FIELDS: Final[dict[str, _Field]] = {
    CONF_BMC_NAME: _TEXT_FIELD,
    CONF_PROTOCOL: _Field(_TEXT, choices=tuple(BMC_PROTOCOLS)),
    CONF_HOST: _HOST_FIELD,
    CONF_PORT: _PORT_FIELD,
    CONF_USERNAME: _OPAQUE_FIELD,
    CONF_PASSWORD: _OPAQUE_FIELD,
    CONF_CIPHER_SUITE: _Field(_INT, low=0, high=17),
    CONF_VERIFY_SSL: _Field(_BOOL),
    CONF_BMC_AUTH: _Field(_TEXT, choices=("basic", "session")),
}
_BMC_DEFAULTS: Final[dict[str, Any]] = {
    CONF_PROTOCOL: BMC_IPMI,
    CONF_CIPHER_SUITE: 3,
    CONF_VERIFY_SSL: True,
    CONF_BMC_AUTH: "basic",
}
_POLICY_FIELDS: Final[dict[str, _Field]] = {
    CONF_MAX_PARALLEL_ON: _Field(_INT, low=0),  # 0: no limit, as in the options
    CONF_UNIT_PARALLEL_ON: _Field(_INT, low=0),
    CONF_ON_SPACING: _SECONDS_FIELD,
    CONF_REFUSE_ON_BATTERY: _Field(_BOOL),
    CONF_NOTIFY_ON_BATTERY: _Field(_BOOL),
    CONF_SHED_ON_BATTERY: _Field(_BOOL),
    CONF_SHUTDOWN_ON_LOW_BATTERY: _Field(_BOOL),
}
# As the PDU flow says it (name_colon): outlets are written unit:number.
_COLON: Final = "cannot contain a colon (outlets are written name:N)"
_SECTIONS: Final = ("version", "units", "bmcs", "defaults", "policies", "resources")


# The parser


class _StopError(Exception):
    """Stop looking: MAX_ERRORS problems found (`truncated`), or a bound broken."""

    def __init__(self, *, truncated: bool) -> None:
        super().__init__()
        self.truncated = truncated


class _BadValueError(Exception):
    """A value that cannot be used; `line` if it is not the value's own."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# A field's value and the line it came from.
type _Located = tuple[Any, int]


@dataclass(slots=True)
class _Entry:
    """One expanded item of a section: a name, its fields, the line of its name."""

    name: str
    line: int
    fields: dict[str, _Located]
    # Fields given with a value that could not be used (reported already).
    failed: frozenset[str] = frozenset()


def _at(value: Any, line: int) -> int:
    """The line of a YAML value (`line` for a null, which has none)."""
    return int(getattr(value, "__line__", line))


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class _Parser:
    """One parse: the problems found so far and what the file has defined."""

    def __init__(
        self,
        secrets: Mapping[str, Any],
        known_resources: dict[str, str],
        known_units: dict[str, int | None],
        known_bmcs: set[str],
        known_feeds: dict[FeedTarget, str],
        *,
        lab: str,
        deadline: float,
    ) -> None:
        self.problems: list[LabFileProblem] = []
        # Who uses each feed target: outside the file, then the file's resources so far.
        self._feed_users = known_feeds
        self._lab = lab
        self._deadline = deadline
        self._seen: set[tuple[int | None, str]] = set()
        self._secrets = secrets
        self._known_resources = known_resources
        self._known_units = known_units
        self._known_bmcs = known_bmcs
        self._unit_outlets: dict[str, int | None] = dict(known_units)
        self._bmc_names: set[str] = set(known_bmcs)
        self._names = 0  # names defined so far
        self._values = 0  # values expanded so far

    def error(self, line: int | None, message: str) -> None:
        """Note a problem (once: an entry that expands repeats its problems)."""
        if (line, message) in self._seen:
            return
        self._seen.add((line, message))
        self.problems.append(LabFileProblem(line, message))
        if len(self.problems) >= MAX_ERRORS:
            raise _StopError(truncated=True)

    def stop(self, line: int | None, message: str) -> NoReturn:
        """A bound is broken: report it and look no further."""
        self.problems.append(LabFileProblem(line, message))
        raise _StopError(truncated=False)

    def parse(self, text: str) -> LabFile:
        """The lab file in `text`; problems are collected in self.problems."""
        root, problem = _read_yaml(text, self._secrets, self._deadline)
        lab = LabFile()
        if problem is not None:
            self.error(problem.line, problem.message)
        if root is None:
            return lab
        sections = self._pairs(root, _SECTIONS, "the lab file", 1)
        if sections is None:
            return lab
        if (version := sections.get(CONF_VERSION)) is not None and str(version) != "1":
            self.error(_at(version, 1), "version: only version 1 exists")
        units = self._section(sections, "units", "unit", _UNIT_FIELDS)
        for entry in self._unique(units, "unit", self._known_units):
            if (unit := self._unit(entry)) is not None:
                lab.units.append(unit)
        bmcs = self._section(sections, "bmcs", "BMC", _BMC_FIELDS)
        lab.bmcs = [
            self._bmc(entry) for entry in self._unique(bmcs, "BMC", self._known_bmcs)
        ]
        defaults: dict[str, _Located] = {}
        if (value := sections.get("defaults")) is not None:
            defaults = self._fields(value, _DEFAULTS_FIELDS, "defaults")
        if (value := sections.get("policies")) is not None:
            policies = self._fields(value, _POLICY_FIELDS, "policies")
            lab.policies = {key: value for key, (value, _) in policies.items()}
        entries = self._unique(
            self._section(sections, "resources", "resource", _RESOURCE_FIELDS),
            "resource",
            self._known_resources,
        )
        depends: dict[str, list[_Located]] = {}
        for entry in entries:
            if (built := self._resource(entry, defaults)) is not None:
                lab.resources.append(built[0])
                depends[entry.name] = built[1]
        self._check_dependencies(entries, depends)
        return lab

    # Reading values

    def _pairs(
        self, value: Any, fields: Iterable[str], what: str, line: int
    ) -> dict[str, Any] | None:
        """A mapping's values by key; unknown and repeated keys are problems."""
        if not isinstance(value, _Map):
            self.error(_at(value, line), f"{what} must be a mapping (key: value)")
            return None
        for key, at, first in value.twice:
            self.error(at, f"'{key}' is given twice in {what} (first at line {first})")
        for at in value.odd:
            self.error(at, f"unknown key that is not a word in {what}")
        if value.merge:
            self.error(_at(value, line), f"{what}: {value.merge}")
        pairs: dict[str, Any] = {}
        for key, item in value.items():
            if key not in fields:
                hint = _suggest(key, fields)
                self.error(_at(key, line), f"unknown key '{key}' in {what}{hint}")
            else:
                pairs[key] = item
        return pairs

    def _key_line(self, pairs: Mapping[str, Any], key: str, line: int) -> int:
        """The line of a key (its value's, or the mapping's where it has none)."""
        return next((_at(k, line) for k in pairs if k == key), line)

    def _section(
        self,
        sections: Mapping[str, Any],
        key: str,
        singular: str,
        fields: Mapping[str, _Field],
    ) -> list[_Entry]:
        """The expanded entries of a list section (units, bmcs, resources)."""
        value = sections.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(_at(value, 1), f"{singular}s must be a list (- name: a)")
            return []
        entries: list[_Entry] = []
        for item in value:
            entries.extend(self._expand(item, singular, fields, _at(value, 1)))
        return entries

    def _expand(
        self, item: Any, singular: str, fields: Mapping[str, _Field], line: int
    ) -> list[_Entry]:
        """One entry of a section, one per name its name expands to."""
        if time.monotonic() > self._deadline:
            self.stop(None, f"not read within {PARSE_SECONDS:g} s")
        pairs = self._pairs(item, fields, f"a {singular}", line)
        if pairs is None:
            return []
        line = _at(item, line)
        if CONF_RESOURCE_NAME not in pairs:
            self.error(line, f"a {singular} needs a name")
            return []
        name_value = pairs.pop(CONF_RESOURCE_NAME)
        line = _at(name_value, self._key_line(item, CONF_RESOURCE_NAME, line))
        try:
            names = self._names_of(name_value, line)
        except _BadValueError as bad:
            self.error(line, f"name: {bad}")
            return []
        self._names += len(names)
        if self._names > MAX_NAMES:
            self.stop(line, f"the file defines more than {MAX_NAMES:,} names")
        columns, failed = self._columns(item, pairs, fields, len(names), name_value)
        return [
            _Entry(
                name,
                line,
                {key: (values[i], at) for key, (values, at) in columns.items()},
                failed,
            )
            for i, name in enumerate(names)
        ]

    def _names_of(self, value: Any, line: int) -> list[str]:
        if isinstance(value, list | dict):
            raise _BadValueError("expected a name, not a list or a mapping")
        names = self._scalar(_TEXT_FIELD, value, line, expand_ranges=True)
        names = [str(name).strip() for name in names or ()]
        if not names or not all(names):
            raise _BadValueError("a name cannot be empty")
        return names

    def _fields(
        self, value: Any, fields: Mapping[str, _Field], what: str
    ) -> dict[str, _Located]:
        """The values of a mapping that is not expanded (defaults, policies)."""
        pairs = self._pairs(value, fields, what, 1)
        if pairs is None:
            return {}
        columns, _ = self._columns(value, pairs, fields, 1, "")
        return {
            key: (values[0], at)
            for key, (values, at) in columns.items()
            if values[0] is not None
        }

    def _columns(
        self,
        mapping: Mapping[str, Any],
        pairs: Mapping[str, Any],
        fields: Mapping[str, _Field],
        count: int,
        pattern: Any,
    ) -> tuple[dict[str, tuple[list[Any], int]], frozenset[str]]:
        """Each field's value for each of `count` names (expanded in step), by key.

        Also the keys whose value was refused, so that they are not reported missing.
        """
        columns: dict[str, tuple[list[Any], int]] = {}
        failed: set[str] = set()
        base = _at(mapping, 1)
        for key, value in pairs.items():
            key_line = self._key_line(mapping, key, base)
            line = _at(value, key_line)
            target = _ALIASES.get(key, key)
            if target != key and target in pairs:
                self.error(key_line, f"give either '{key}' or '{target}', not both")
                continue
            try:
                values = self._column(fields[key], value, line, count, str(pattern))
            except _BadValueError as bad:
                self.error(bad.line or line, f"{key}: {bad}")
                failed.add(target)
                continue
            # A null is kept as None: it unsets a default.
            columns[target] = ([None] * count if values is None else values, line)
        return columns, frozenset(failed)

    def _column(
        self, spec: _Field, value: Any, line: int, count: int, pattern: str
    ) -> list[Any] | None:
        """A field's value for each of `count` names; None where it is null (unset)."""
        if spec.kind == _LIST:
            return self._list_column(value, line, count, pattern)
        if isinstance(value, dict):
            raise _BadValueError("expected a value, not a mapping")
        if not isinstance(value, list):
            values = self._scalar(spec, value, line, expand_ranges=True)
            if values is None:
                return None
            if len(values) == 1:
                return values * count
            if len(values) == count:
                return values
            raise _BadValueError(_mismatch(str(value), len(values), count, pattern))
        if count > 1:
            if len(value) != count:
                raise _BadValueError(
                    f"a list here gives one value to each of the {count} names of "
                    f"'{pattern}', not {_plural(len(value), 'value')}"
                )
            column: list[Any] = []
            for item in value:
                one = (
                    None
                    if isinstance(item, list | dict)
                    else self._scalar(spec, item, line, expand_ranges=False)
                )
                if one is None:
                    raise _BadValueError("expected a value", _at(item, line))
                column.append(one[0])
            return column
        hint = ""
        if value and all(
            isinstance(item, str) and _RANGE_BODY.fullmatch(item) for item in value
        ):
            hint = " (a value that starts with '[' must be quoted: \"[1-8]\")"
        raise _BadValueError(f"expected one value, not a list{hint}")

    def _list_column(
        self, value: Any, line: int, count: int, pattern: str
    ) -> list[list[_Located]] | None:
        """A list field's items for each of `count` names, each with its line.

        An item that expands to `count` values gives one to each name; an item of one
        value goes to every name; with one name, every value of every item is its own.
        """
        if value is None:
            return None
        if isinstance(value, dict):
            raise _BadValueError("expected a list, not a mapping")
        items = value if isinstance(value, list) else [value]
        column: list[list[_Located]] = [[] for _ in range(count)]
        for item in items:
            at = _at(item, line)
            texts = (
                None
                if isinstance(item, list | dict)
                else self._scalar(_TEXT_FIELD, item, at, expand_ranges=True)
            )
            if texts is None:
                raise _BadValueError("expected a list of values", at)
            if count == 1:
                column[0].extend((text, at) for text in texts)
            elif len(texts) == 1:
                for values in column:
                    values.append((texts[0], at))
            elif len(texts) == count:
                for values, text in zip(column, texts, strict=True):
                    values.append((text, at))
            else:
                raise _BadValueError(
                    _mismatch(str(item), len(texts), count, pattern), at
                )
        return column

    def _scalar(
        self, spec: _Field, value: Any, line: int, *, expand_ranges: bool
    ) -> list[Any] | None:
        """The value(s) of one scalar: several where a range expands; None for null."""
        if value is None:
            return None
        if isinstance(value, _Bad):
            raise _BadValueError(str(value))
        kind = spec.kind
        plain = value.value if isinstance(value, _Plain) else None
        if kind == _BOOL:
            if not isinstance(plain, bool):
                raise _BadValueError(f"expected true or false, not '{value}'")
            return [plain]
        if kind in (_INT, _FLOAT) and isinstance(plain, int | float):
            return [_number(spec, plain)]
        texts = [str(value)]
        if (
            expand_ranges
            and kind != _OPAQUE
            and not isinstance(value, _Secret)
            and is_pattern(texts[0])
        ):
            try:
                self._values += range_count(texts[0])
                if self._values > MAX_VALUES:
                    self.stop(line, f"ranges give more than {MAX_VALUES:,} values")
                texts = expand(texts[0])
            except HostlistError as err:
                raise _BadValueError(f"bad range: {err}") from None
        if kind in (_INT, _FLOAT):
            return [_number(spec, _parse_number(spec, text)) for text in texts]
        if kind == _HOST and not all(text.strip() for text in texts):
            raise _BadValueError("cannot be empty")
        if spec.choices:
            for text in texts:
                if text not in spec.choices:
                    raise _BadValueError(
                        f"'{text}' is not one of {', '.join(spec.choices)}"
                        + _suggest(text, spec.choices)
                    )
        return texts

    def _unique(
        self, entries: list[_Entry], what: str, known: Iterable[str]
    ) -> list[_Entry]:
        """The entries without those whose name is taken (names ignore case)."""
        taken = {
            name.casefold(): (known[name] if isinstance(known, Mapping) else "")
            for name in known
        }
        first: dict[str, _Entry] = {}
        unique: list[_Entry] = []
        for entry in entries:
            folded = entry.name.casefold()
            if (other := first.get(folded)) is not None:
                self.error(
                    entry.line,
                    f"{what} '{entry.name}' is defined twice: at line {other.line} "
                    f"and at line {entry.line}",
                )
            elif folded in taken:
                where = f"in lab {taken[folded]}" if taken[folded] else ""
                self.error(
                    entry.line,
                    f"{what} '{entry.name}' already exists outside the lab file"
                    + (f" ({where})" if where else ""),
                )
            else:
                first[folded] = entry
                unique.append(entry)
        return unique

    # Building subentry data

    def _unit(self, entry: _Entry) -> dict[str, Any] | None:
        """A PDU unit's subentry data."""
        fields = _given(entry.fields)
        if ":" in entry.name:
            self.error(entry.line, f"name: '{entry.name}' {_COLON}")
            return None
        count = fields.get(CONF_OUTLET_COUNT)
        self._unit_outlets[entry.name] = None if count is None else count[0]
        missing = [key for key in (CONF_VENDOR, CONF_HOST) if key not in fields]
        for key in missing:
            if key not in entry.failed:
                self.error(entry.line, f"a unit needs {key}")
        if missing:
            return None
        snmp = fields[CONF_VENDOR][0] == VENDOR_SNMP
        data: dict[str, Any] = {CONF_UNIT_NAME: entry.name}
        for key in _UNIT_FIELDS:
            if key not in fields:
                continue
            value, line = fields[key]
            if key in SNMP_FIELDS and not snmp:
                self.error(line, f"{key} applies only to vendor {VENDOR_SNMP}")
                continue
            data[key] = value
        if snmp and CONF_SNMP_VERSION not in entry.failed:
            self._check_snmp(entry, fields, data)
        return data

    def _check_snmp(
        self, entry: _Entry, fields: Mapping[str, _Located], data: dict[str, Any]
    ) -> None:
        version = data.setdefault(CONF_SNMP_VERSION, "2c")
        data.setdefault(CONF_SNMP_PROFILE, SNMP_AUTOMATIC)
        if version == "3":
            if CONF_USERNAME not in data and CONF_USERNAME not in entry.failed:
                self.error(entry.line, "SNMP version 3 needs username")
            for protocol, key in (
                (CONF_AUTH_PROTOCOL, CONF_AUTH_KEY),
                (CONF_PRIV_PROTOCOL, CONF_PRIV_KEY),
            ):
                if (protocol in data) != (key in data):
                    self.error(entry.line, f"{protocol} and {key} go together")
            if CONF_PRIV_PROTOCOL in data and CONF_AUTH_PROTOCOL not in data:
                self.error(entry.line, "priv_protocol needs auth_protocol as well")
            return
        if CONF_COMMUNITY not in data and CONF_COMMUNITY not in entry.failed:
            self.error(entry.line, f"SNMP version {version} needs community")
        for key in (
            CONF_AUTH_PROTOCOL,
            CONF_AUTH_KEY,
            CONF_PRIV_PROTOCOL,
            CONF_PRIV_KEY,
        ):
            if key in fields:
                self.error(fields[key][1], f"{key} applies only to SNMP version 3")

    def _bmc(self, entry: _Entry) -> dict[str, Any]:
        """A BMC's subentry data."""
        self._bmc_names.add(entry.name)
        fields = _given(entry.fields)
        for key in (CONF_HOST, CONF_USERNAME, CONF_PASSWORD):
            if key not in fields and key not in entry.failed:
                self.error(entry.line, f"a BMC needs {key}")
        data: dict[str, Any] = {CONF_BMC_NAME: entry.name}
        for key in _BMC_FIELDS:
            if key in fields:
                data[key] = fields[key][0]
            elif key in _BMC_DEFAULTS:
                data[key] = _BMC_DEFAULTS[key]
        return data

    def _resource(
        self,
        entry: _Entry,
        defaults: Mapping[str, _Located],
    ) -> tuple[dict[str, Any], list[_Located]] | None:
        """A resource's subentry data and its dependencies (each with its line)."""
        own = _given(entry.fields)
        unset = entry.fields.keys() - own.keys()
        defaults = {key: value for key, value in defaults.items() if key not in unset}
        switcher = self._choose(
            entry,
            own,
            defaults,
            key=CONF_SWITCHER,
            hints=_switcher_hints,
            what="switcher",
        )
        checker = self._choose(
            entry,
            own,
            defaults,
            key=CONF_CHECKER,
            hints=_checker_hints,
            what="checker",
        )
        if switcher is None or checker is None:
            return None
        applies = _APPLIES[switcher, checker]
        for key, (_, line) in own.items():
            if key not in applies:
                which = (
                    f"switcher_type {switcher}"
                    if key in _SWITCHER_ONLY
                    else f"checker_type {checker}"
                )
                self.error(line, f"{key} does not apply to {which}")
        fields = {key: value for key, value in defaults.items() if key in applies}
        fields.update((key, value) for key, value in own.items() if key in applies)
        self._check_required(entry, fields, switcher, checker)
        data: dict[str, Any] = {
            CONF_RESOURCE_NAME: entry.name,
            CONF_SWITCHER: switcher,
            CONF_CHECKER: checker,
        }
        switcher_defaults = _SWITCHER_DEFAULTS.get(switcher, {})
        for key in _SWITCHER_FIELDS[switcher]:
            if key in fields:
                data[key] = fields[key][0]
            elif key in switcher_defaults:
                data[key] = switcher_defaults[key]
        for key in _CHECKER_FIELDS[checker]:
            if key in fields:
                data[key] = fields[key][0]
        for key, attribute in _DURATIONS.items():
            data[key] = (
                float(fields[key][0])
                if key in fields
                else getattr(_POLICY_DEFAULTS, attribute)
            )
        for key, attribute in _SWITCHES.items():
            data[key] = (
                fields[key][0]
                if key in fields
                else getattr(_POLICY_DEFAULTS, attribute)
            )
        if labels := fields.get(CONF_LABELS, ((), 0))[0]:
            data[CONF_LABELS] = list(dict.fromkeys(label for label, _ in labels))
        for key in (CONF_MAX_TRANSITIONS, CONF_POWER_W, CONF_METER_ENTITY):
            if key in fields:
                data[key] = fields[key][0]
        depends: list[_Located] = fields.get(CONF_DEPENDS_ON, ([], 0))[0]
        if depends:
            data[CONF_DEPENDS_ON] = list(dict.fromkeys(name for name, _ in depends))
        self._check_ttls(entry, fields, data)
        if CONF_MAC in data:
            mac, line = fields[CONF_MAC]
            if normalise_mac(mac) is None:
                self.error(
                    line, f"mac: '{mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)"
                )
        if CONF_BMC in data:
            bmc, line = fields[CONF_BMC]
            if bmc not in self._bmc_names:
                self.error(
                    line,
                    f"bmc: no BMC named '{bmc}'" + _suggest(bmc, self._bmc_names),
                )
        lines = {key: line for key, (_, line) in fields.items()}
        if CONF_OUTLETS in data:
            outlets = self._outlets(entry, data[CONF_OUTLETS])
            data[CONF_OUTLETS] = [outlet for outlet, _ in outlets]
            lines.update(outlets)
        self._claim_feeds(entry, data, lines)
        return data, depends

    def _claim_feeds(
        self, entry: _Entry, data: Mapping[str, Any], lines: Mapping[str, int]
    ) -> None:
        """One feed, one owner: refuse a feed target that another resource uses.

        `lines` gives the line of each field, and of each outlet ("pdu1:3").
        """
        for key, target in feed_targets(data, scope=self._lab):
            value = data[key]
            if key == CONF_OUTLETS:
                value = target.label.removeprefix("outlet ")
                line, what = lines.get(value, entry.line), CONF_OUTLET
            else:
                line, what = lines.get(key, entry.line), key
            user = self._feed_users.get(target)
            if user is None:
                self._feed_users[target] = f"{entry.name} (line {entry.line})"
                continue
            self.error(
                line,
                f"{what} '{value}' of {entry.name} already feeds {user}: a feed powers "
                "one resource; to share it, make it a resource of its own that both "
                "depend on",
            )

    def _choose(
        self,
        entry: _Entry,
        own: Mapping[str, _Located],
        defaults: Mapping[str, _Located],
        *,
        key: str,
        hints: Any,
        what: str,
    ) -> str | None:
        """The switcher or checker type: as given, else told by the fields given."""
        given = own.get(key) or defaults.get(key)
        if given is not None:
            return str(given[0])
        if key in entry.failed:
            return None
        found: list[tuple[str, str]] = hints(
            own.keys() | defaults.keys() | entry.failed
        )
        if len({kind for kind, _ in found}) == 1:
            return found[0][0]
        if found:
            self.error(
                entry.line,
                f"both {found[0][1]} and {found[1][1]} are given: "
                f"set {key} to say which {what} it has",
            )
        else:
            self.error(
                entry.line,
                f"no {what}: give {key} or one of "
                + ", ".join(_SWITCHER_HINTS)
                + f" (or {CONF_OUTLET})",
            )
        return None

    def _check_required(
        self,
        entry: _Entry,
        fields: Mapping[str, _Located],
        switcher: str,
        checker: str,
    ) -> None:
        given = fields.keys() | entry.failed
        for key in _SWITCHER_REQUIRED[switcher]:
            if key not in given:
                self.error(entry.line, f"switcher_type {switcher} needs {key}")
        for key in _CHECKER_FIELDS[checker]:
            if key not in given:
                self.error(entry.line, f"checker_type {checker} needs {key}")
        if switcher == SWITCHER_WOL:
            if not any(key in given for key in _SSH_CREDENTIALS):
                self.error(
                    entry.line, "switcher_type wol needs ssh_password or ssh_key"
                )
            if checker == CHECKER_NONE:
                self.error(
                    entry.line,
                    "switcher_type wol needs a checker (host, port or check_entity): "
                    "Wake-on-LAN cannot read the power state",
                )

    def _check_ttls(
        self, entry: _Entry, fields: Mapping[str, _Located], data: Mapping[str, Any]
    ) -> None:
        def line(key: str) -> int:
            return fields[key][1] if key in fields else entry.line

        zero = False
        for key in (CONF_DEFAULT_TTL, CONF_MAX_TTL):
            if data[key] == 0:
                zero = True
                self.error(line(key), f"{key} must be more than 0")
        if not zero and data[CONF_MAX_TTL] < data[CONF_DEFAULT_TTL]:
            self.error(
                line(CONF_MAX_TTL),
                f"max_ttl ({data[CONF_MAX_TTL]:g} s) is below default_ttl "
                f"({data[CONF_DEFAULT_TTL]:g} s)",
            )

    def _outlets(
        self,
        entry: _Entry,
        located: list[_Located],
    ) -> list[tuple[str, int]]:
        """`pdu1:3` items, each checked, in the form the UI stores ("pdu1:3"), with lines."""
        outlets: list[tuple[str, int]] = []
        mine: set[tuple[str, int]] = set()
        for text, line in located:
            unit, colon, number = text.rpartition(":")
            unit, number = unit.strip(), number.strip()
            if not colon or not unit or not (number.isascii() and number.isdigit()):
                self.error(line, f"outlet '{text}' is not unit:number (pdu1:3)")
                continue
            outlet = int(number)
            if unit not in self._unit_outlets:
                self.error(
                    line,
                    f"outlet '{text}': no unit named '{unit}'"
                    + _suggest(unit, self._unit_outlets),
                )
                continue
            count = self._unit_outlets[unit]
            if outlet < 1 or (count is not None and outlet > count):
                self.error(
                    line,
                    f"outlet '{text}': {unit} has outlets 1 to {count}"
                    if count is not None
                    else f"outlet '{text}': outlets are numbered from 1",
                )
                continue
            key = (unit, outlet)
            if key in mine:
                self.error(line, f"outlet '{text}' is given twice for {entry.name}")
                continue
            mine.add(key)
            outlets.append((f"{unit}:{outlet}", line))
        if not outlets and not located:
            self.error(entry.line, "switcher_type pdu needs at least one outlet")
        return outlets

    def _check_dependencies(
        self, entries: list[_Entry], depends: Mapping[str, list[_Located]]
    ) -> None:
        """Every depends_on names a resource, and no resource depends on itself."""
        line_of = {entry.name: entry.line for entry in entries}
        names = line_of.keys() | self._known_resources
        graph: dict[str, list[str]] = {}
        for name, located in depends.items():
            targets: list[str] = []
            for target, line in located:
                if target in names:
                    targets.append(target)
                else:
                    self.error(
                        line,
                        f"depends_on: no resource named '{target}'"
                        + _suggest(target, names),
                    )
            graph[name] = targets
        if cycle := find_cycle(graph):
            self.error(line_of[cycle[0]], "dependency cycle: " + " -> ".join(cycle))


_POLICY_DEFAULTS: Final = ResourcePolicy()


def _given(fields: Mapping[str, _Located]) -> dict[str, _Located]:
    """The fields that hold a value (not a null)."""
    return {key: value for key, value in fields.items() if value[0] is not None}


def _switcher_hints(keys: set[str]) -> list[tuple[str, str]]:
    """The switchers the given fields point to, with the field that points."""
    return [(kind, key) for key, kind in _SWITCHER_HINTS.items() if key in keys]


def _checker_hints(keys: set[str]) -> list[tuple[str, str]]:
    """The checker the given fields point to (host and port: tcp; host: icmp)."""
    found: list[tuple[str, str]] = []
    if CONF_CHECK_ENTITY in keys:
        found.append((CHECKER_ENTITY, CONF_CHECK_ENTITY))
    if CONF_HOST in keys:
        found.append((CHECKER_TCP if CONF_PORT in keys else CHECKER_ICMP, CONF_HOST))
    return found or [(CHECKER_NONE, "")]


# The fields that a resource with this switcher and checker may set.
_APPLIES: Final = {
    (switcher, checker): _COMMON_FIELDS
    | set(_SWITCHER_FIELDS[switcher])
    | set(_CHECKER_FIELDS[checker])
    for switcher in _SWITCHERS
    for checker in CHECKER_TYPES
}


def _mismatch(text: str, values: int, names: int, pattern: str) -> str:
    if names == 1:
        return f"'{text}' gives {values} values for one name"
    return f"'{text}' gives {values} values but the name '{pattern}' gives {names}"


def _parse_number(spec: _Field, text: str) -> float:
    if spec.kind == _INT:
        if not _WHOLE.fullmatch(text.strip()):
            raise _BadValueError(f"'{text}' is not a whole number")
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise _BadValueError(f"'{text}' is not a number") from None


def _number(spec: _Field, value: float) -> float:
    """A number checked against the field's bounds."""
    if spec.kind == _INT and not isinstance(value, int):
        raise _BadValueError(f"expected a whole number, not {value}")
    if spec.kind == _FLOAT:
        value = float(value)
        if not math.isfinite(value):
            raise _BadValueError(f"expected a number, not {value}")
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        )
        raise _BadValueError(f"must be {bounds}, not {value:g}")
    return value
