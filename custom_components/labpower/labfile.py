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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
import difflib
from functools import partial
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
import probatio as vol
import yaml  # type: ignore[import-untyped]

from . import schema
from .const import (
    CHECKER_ENTITY,
    CHECKER_ICMP,
    CHECKER_NONE,
    CHECKER_TCP,
    CONF_BMC,
    CONF_BMC_NAME,
    CONF_CHECK_ENTITY,
    CONF_CHECKER,
    CONF_DEPENDS_ON,
    CONF_HOST,
    CONF_OUTLET_COUNT,
    CONF_OUTLETS,
    CONF_PORT,
    CONF_RESOURCE_NAME,
    CONF_SWITCHER,
    CONF_UNIT_NAME,
    CONF_VENDOR,
    DOMAIN,
    PDU_VENDORS,
    SUBENTRY_BMC,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
)
from .core.feeds import FeedTarget, feed_targets
from .core.graph import find_cycle
from .core.hostlist import HostlistError, count as range_count, expand, is_pattern
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
# What an unquoted `[1-8]` leaves of itself once YAML has read it as a list.
_RANGE_BODY = re.compile(r"[0-9][0-9 ,-]*")


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


# The fields of each section: schema.py's (the flows' validators, defaults, required).

type _Fields = Mapping[str, schema.Field]


def _resource_keys() -> dict[str, schema.Field]:
    fields = schema.by_key(schema.RESOURCE_COMMON)
    for group in (schema.SWITCHER_FIELDS, schema.CHECKER_FIELDS):
        for keys in group.values():
            fields.update(schema.by_key(keys))
    return {**fields, CONF_OUTLET: fields[CONF_OUTLETS]}


_RESOURCE_FIELDS: Final = _resource_keys()
_DEFAULTS_FIELDS: Final = {
    key: field for key, field in _RESOURCE_FIELDS.items() if key != CONF_RESOURCE_NAME
}
_UNIT_FIELDS: Final = schema.by_key(
    (*schema.UNIT_FIELDS, *(f for v in PDU_VENDORS for f in schema.unit_credentials(v)))
)
_BMC_FIELDS: Final = schema.by_key(schema.BMC_FIELDS)
_POLICY_FIELDS: Final = schema.by_key(schema.LAB_POLICY_FIELDS)
# Fields whose value is a list; fields taken as written (never expanded).
_LISTS: Final = (schema.names, schema.outlets, schema.entity_ids)
# The field that tells which switcher a resource has when switcher_type is left out:
# the first of each switcher's fields.
_SWITCHER_HINTS: Final = {
    fields[0].key: switcher for switcher, fields in schema.SWITCHER_FIELDS.items()
}
_SWITCHER_KEYS: Final = frozenset(
    f.key for fields in schema.SWITCHER_FIELDS.values() for f in fields
)
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
    failed: set[str] = field(default_factory=set)


def _at(value: Any, line: int) -> int:
    """The line of a YAML value (`line` for a null, which has none)."""
    return int(getattr(value, "__line__", line))


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _plain(value: Any) -> Any:
    """A field's value for its validator: a list field's items without their lines."""
    return [text for text, _ in value] if isinstance(value, list) else value


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
        # Units and BMCs come from this lab only: no other lab to name.
        for entry in self._unique(units, "unit", dict.fromkeys(self._known_units, "")):
            if (unit := self._unit(entry)) is not None:
                lab.units.append(unit)
        bmcs = self._section(sections, "bmcs", "BMC", _BMC_FIELDS)
        for entry in self._unique(bmcs, "BMC", dict.fromkeys(self._known_bmcs, "")):
            self._bmc_names.add(entry.name)
            data = self._valid(
                schema.BMC_SCHEMA,
                entry,
                entry.fields,
                needs=lambda _: "a BMC",
                applies_to=lambda _: "a BMC",
            )
            if data is not None:
                lab.bmcs.append(data)
        defaults: dict[str, _Located] = {}
        if (value := sections.get("defaults")) is not None:
            defaults = self._fields(value, _DEFAULTS_FIELDS, "defaults")
        if (value := sections.get("policies")) is not None:
            policies = self._fields(value, _POLICY_FIELDS, "policies")
            given = {key: _plain(value) for key, (value, _) in policies.items()}
            lab.policies = dict(schema.LAB_POLICY_SCHEMA(given))
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
        self, sections: Mapping[str, Any], key: str, singular: str, fields: _Fields
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
        self, item: Any, singular: str, fields: _Fields, line: int
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
        if isinstance(name_value, list | dict):
            self.error(line, "name: expected a name, not a list or a mapping")
            return []
        spec = fields[CONF_RESOURCE_NAME]
        try:
            texts = self._scalar(spec, name_value, line, expand_ranges=True)
            names = [schema.name(name) for name in texts or [None]]
        except (_BadValueError, vol.Invalid) as bad:
            self.error(line, f"name: {_message(bad)}")
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
                set(failed),
            )
            for i, name in enumerate(names)
        ]

    def _fields(self, value: Any, fields: _Fields, what: str) -> dict[str, _Located]:
        """The values of a mapping that is not expanded (defaults, policies), checked."""
        pairs = self._pairs(value, fields, what, 1)
        if pairs is None:
            return {}
        columns, _ = self._columns(value, pairs, fields, 1, "")
        given: dict[str, _Located] = {}
        for key, ([item], line) in columns.items():
            if item is None:
                continue
            if self._check(fields[key], item, line):
                given[key] = (item, line)
        return given

    def _check(self, spec: schema.Field, value: Any, line: int) -> bool:
        """Whether one field's value passes its validator (if not, a problem)."""
        try:
            spec.validator(_plain(value))
        except vol.Invalid as err:
            self.error(line, f"{spec.key}: {_message(err)}")
            return False
        return True

    def _columns(
        self,
        mapping: Mapping[str, Any],
        pairs: Mapping[str, Any],
        fields: _Fields,
        count: int,
        pattern: Any,
    ) -> tuple[dict[str, tuple[list[Any], int]], set[str]]:
        """Each field's value for each of `count` names (expanded in step), by key.

        Also the keys whose value was refused, so that they are not reported missing.
        """
        columns: dict[str, tuple[list[Any], int]] = {}
        failed: set[str] = set()
        base = _at(mapping, 1)
        for key, value in pairs.items():
            key_line = self._key_line(mapping, key, base)
            line = _at(value, key_line)
            target = fields[key].key
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
        return columns, failed

    def _column(
        self, spec: schema.Field, value: Any, line: int, count: int, pattern: str
    ) -> list[Any] | None:
        """A field's value for each of `count` names; None where it is null (unset)."""
        if spec.validator in _LISTS:
            return self._list_column(spec, value, line, count, pattern)
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
        self, spec: schema.Field, value: Any, line: int, count: int, pattern: str
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
                else self._scalar(spec, item, at, expand_ranges=True)
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
        self, spec: schema.Field, value: Any, line: int, *, expand_ranges: bool
    ) -> list[Any] | None:
        """The value(s) of one scalar: several where a range expands; None for null.

        Text as written, for the field's validator to read (a YAML boolean for a
        boolean field); ranges expand unless the field is taken as written.
        """
        if value is None:
            return None
        if isinstance(value, _Bad):
            raise _BadValueError(str(value))
        if spec.validator is schema.boolean and isinstance(value, _Plain):
            return [value.value]
        texts = [str(value)]
        if (
            expand_ranges
            and spec.validator is not schema.opaque
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
        return texts

    def _unique(
        self, entries: list[_Entry], what: str, known: Mapping[str, str]
    ) -> list[_Entry]:
        """The entries without those whose name is taken (names ignore case).

        `known`: the names that exist outside the file, each with the title of the
        other lab that has it ("" for this lab).
        """
        taken = {name.casefold(): lab for name, lab in known.items()}
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
                where = f" (in lab {taken[folded]})" if taken[folded] else ""
                self.error(
                    entry.line,
                    f"{what} '{entry.name}' already exists outside the lab file{where}",
                )
            else:
                first[folded] = entry
                unique.append(entry)
        return unique

    # Checking entries with schema.py and building subentry data

    def _valid(
        self,
        validator: Callable[[Any], Any],
        entry: _Entry,
        fields: Mapping[str, _Located],
        *,
        needs: Callable[[str], str],
        applies_to: Callable[[str], str],
        name_key: str = CONF_BMC_NAME,
    ) -> dict[str, Any] | None:
        """The entry's data through schema.py's validator; its refusals, with lines."""
        given = {key: value for key, value in fields.items() if value[0] is not None}
        data = {name_key: entry.name} | {k: _plain(v) for k, (v, _) in given.items()}
        try:
            return dict(validator(data))
        except vol.Invalid as err:
            errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
        for bad in errors:
            key = str(bad.path[0]) if bad.path else ""
            if key in entry.failed:
                continue
            line = given[key][1] if key in given else entry.line
            if isinstance(bad, vol.RequiredFieldInvalid):
                message = f"{needs(key)} needs {key}"
            elif isinstance(bad, vol.ExtraKeysInvalid):
                message = f"{key} does not apply to {applies_to(key)}"
            elif isinstance(bad, schema.RuleInvalid) or not key:
                message = _message(bad)
            else:
                message = f"{key}: {_message(bad)}"
            self.error(line, message)
        return None

    def _unit(self, entry: _Entry) -> dict[str, Any] | None:
        """A PDU unit's subentry data."""
        self._unit_outlets[entry.name] = None
        vendor, line = entry.fields.get(CONF_VENDOR, (None, entry.line))
        if vendor is None:
            if CONF_VENDOR not in entry.failed:
                self.error(entry.line, f"a unit needs {CONF_VENDOR}")
            return None
        if not self._check(_UNIT_FIELDS[CONF_VENDOR], vendor, line):
            return None
        data = self._valid(
            schema.UNIT_SCHEMA,
            entry,
            entry.fields,
            needs=lambda _: "a unit",
            applies_to=lambda _: f"vendor {vendor}",
            name_key=CONF_UNIT_NAME,
        )
        if data is not None:
            self._unit_outlets[entry.name] = data.get(CONF_OUTLET_COUNT)
        return data

    def _resource(
        self, entry: _Entry, defaults: Mapping[str, _Located]
    ) -> tuple[dict[str, Any], list[_Located]] | None:
        """A resource's subentry data and its dependencies (each with its line)."""
        own = {
            key: value for key, value in entry.fields.items() if value[0] is not None
        }
        defaults = {k: v for k, v in defaults.items() if k not in entry.fields}
        types: list[str] = []
        for key, hints, what in (
            (CONF_SWITCHER, _switcher_hints, "switcher"),
            (CONF_CHECKER, _checker_hints, "checker"),
        ):
            chosen = self._choose(entry, own, defaults, key=key, hints=hints, what=what)
            if chosen is None:
                return None
            types.append(chosen)
        switcher, checker = types
        applies = schema.resource_fields(switcher, checker)
        fields = {k: v for k, v in defaults.items() if k in applies} | own
        fields[CONF_SWITCHER] = (
            switcher,
            fields.get(CONF_SWITCHER, (0, entry.line))[1],
        )
        fields[CONF_CHECKER] = (checker, fields.get(CONF_CHECKER, (0, entry.line))[1])
        if CONF_OUTLETS in fields:
            located = fields[CONF_OUTLETS]
            fields[CONF_OUTLETS] = (self._outlets(entry, located), located[1])

        def which(key: str) -> str:
            if key in _SWITCHER_KEYS:
                return f"switcher_type {switcher}"
            return f"checker_type {checker}"

        data = self._valid(
            schema.RESOURCE_SCHEMA,
            entry,
            fields,
            needs=which,
            applies_to=which,
            name_key=CONF_RESOURCE_NAME,
        )
        if data is None:
            return None
        if CONF_BMC in data and (bmc := data[CONF_BMC]) not in self._bmc_names:
            self.error(
                fields[CONF_BMC][1],
                f"bmc: no BMC named '{bmc}'" + _suggest(bmc, self._bmc_names),
            )
        self._claim_feeds(entry, data, fields)
        return data, fields.get(CONF_DEPENDS_ON, ([], 0))[0]

    def _claim_feeds(
        self, entry: _Entry, data: Mapping[str, Any], fields: Mapping[str, _Located]
    ) -> None:
        """One feed, one owner: refuse a feed target that another resource uses."""
        lines = {key: line for key, (_, line) in fields.items()}
        lines.update(fields.get(CONF_OUTLETS, ([], 0))[0])
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
            valid = self._check(_RESOURCE_FIELDS[key], given[0], given[1])
            return str(given[0]) if valid else None
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

    def _outlets(self, entry: _Entry, located: _Located) -> list[_Located]:
        """Outlets of units that exist, within their count, in the stored form."""
        found: list[_Located] = []
        for text, line in located[0]:
            try:
                [outlet] = schema.outlets(text)
            except vol.Invalid as err:
                self.error(line, f"{_message(err)} (pdu1:3)")
                entry.failed.add(CONF_OUTLETS)
                continue
            unit, _, number = outlet.rpartition(":")
            if unit not in self._unit_outlets:
                entry.failed.add(CONF_OUTLETS)
                self.error(
                    line,
                    f"outlet '{text}': no unit named '{unit}'"
                    + _suggest(unit, self._unit_outlets),
                )
            elif (count := self._unit_outlets[unit]) is not None and int(
                number
            ) > count:
                entry.failed.add(CONF_OUTLETS)
                self.error(line, f"outlet '{text}': {unit} has outlets 1 to {count}")
            else:
                found.append((outlet, line))
        return found

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


def _message(err: Exception) -> str:
    return str(err.msg) if isinstance(err, vol.Invalid) else str(err)


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


def _mismatch(text: str, values: int, names: int, pattern: str) -> str:
    if names == 1:
        return f"'{text}' gives {values} values for one name"
    return f"'{text}' gives {values} values but the name '{pattern}' gives {names}"
