"""The lab file: PDU units, BMCs, resources, defaults and lab policies declared in YAML.

labyaml.py reads the text (bounded, every value with its line, names and other fields
expanded in step); this module checks the entries with schema.py's schemas (the flows'
own) and across the file and every lab (names, outlets, feeds, dependencies), and
returns the data of config subentries, the same dicts the config flow writes, so that
they are built through the same code as subentries made in the UI. Every problem found
is reported with its line, up to MAX_ERRORS of them, in one LabFileError. The format is
documented in docs/labfile.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
import time
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
import probatio as vol

from . import schema
from .const import (
    CHECKER_NONE,
    CONF_BMC,
    CONF_BMC_NAME,
    CONF_CHECKER,
    CONF_DEPENDS_ON,
    CONF_OUTLET_COUNT,
    CONF_OUTLETS,
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
from .feeds import known_feeds
from .labyaml import (
    LAB_FILE_NAME,
    MAX_ERRORS,
    PARSE_SECONDS,
    Entry,
    LabFileProblem,
    Located,
    Reader,
    StopReadingError,
    UnreadableError,
    error_text,
    line_of,
    plain,
    read_file,
    suggest,
)

# The names each lab's file defines (hass.data): other labs' files may not define them.
_CLAIMS: Final = "labpower_lab_file_names"
_LIVE: Final = (ConfigEntryState.LOADED, ConfigEntryState.SETUP_IN_PROGRESS)


# The singular form of `outlets` (`outlet: pdu1:[1-8]`).
CONF_OUTLET: Final = "outlet"
CONF_VERSION: Final = "version"


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
    resources = {
        sub.title: "" if other is entry else other.title
        for other in hass.config_entries.async_entries(DOMAIN)
        for sub in other.get_subentries_of_type(SUBENTRY_RESOURCE)
    }
    claims: dict[str, tuple[ConfigEntry, set[str]]] = hass.data.get(_CLAIMS, {})
    for entry_id, (other, names) in claims.items():
        if entry_id != entry.entry_id and other.state in _LIVE:
            resources.update(dict.fromkeys(names, other.title))
    return {
        "known_resources": resources,
        "known_units": {
            sub.title: sub.data.get(CONF_OUTLET_COUNT) or None
            for sub in entry.get_subentries_of_type(SUBENTRY_PDU)
        },
        "known_bmcs": [sub.title for sub in entry.get_subentries_of_type(SUBENTRY_BMC)],
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
        text, secrets = read_file(path)
    except UnreadableError as err:
        raise _fail(str(err), path.name) from err
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
    except StopReadingError as stop:
        raise LabFileError(
            _by_line(parser.problems), filename, truncated=stop.truncated
        ) from None
    if parser.problems:
        raise LabFileError(_by_line(parser.problems), filename)
    return parsed


def _by_line(problems: list[LabFileProblem]) -> list[LabFileProblem]:
    """Problems of the whole file first, then in the order of their lines."""
    return sorted(problems, key=lambda problem: problem.line or 0)


# The fields of each section: schema.py's (the flows' validators, defaults, required).


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
# The field that tells which switcher a resource has when switcher_type is left out:
# the first of each switcher's fields.
_SWITCHER_HINTS: Final = {
    fields[0].key: switcher for switcher, fields in schema.SWITCHER_FIELDS.items()
}
_SWITCHER_KEYS: Final = frozenset(
    f.key for fields in schema.SWITCHER_FIELDS.values() for f in fields
)
_SECTIONS: Final = ("version", "units", "bmcs", "defaults", "policies", "resources")


class _Parser(Reader):
    """One parse: what the file has defined so far, checked."""

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
        super().__init__(secrets, deadline=deadline)
        # Who uses each feed target: outside the file, then the file's resources so far.
        self._feed_users = known_feeds
        self._lab = lab
        self._known_resources = known_resources
        self._known_units = known_units
        self._known_bmcs = known_bmcs
        self._unit_outlets: dict[str, int | None] = dict(known_units)
        self._bmc_names: set[str] = set(known_bmcs)

    def parse(self, text: str) -> LabFile:
        """The lab file in `text`; problems are collected in self.problems."""
        root = self.root(text)
        lab = LabFile()
        if root is None:
            return lab
        sections = self.pairs(root, _SECTIONS, "the lab file", 1)
        if sections is None:
            return lab
        if (version := sections.get(CONF_VERSION)) is not None and str(version) != "1":
            self.error(line_of(version, 1), "version: only version 1 exists")
        units = self.section(sections, "units", "unit", _UNIT_FIELDS)
        # Units and BMCs come from this lab only: no other lab to name.
        for entry in self._unique(units, "unit", dict.fromkeys(self._known_units, "")):
            if (unit := self._unit(entry)) is not None:
                lab.units.append(unit)
        bmcs = self.section(sections, "bmcs", "BMC", _BMC_FIELDS)
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
        defaults: dict[str, Located] = {}
        if (value := sections.get("defaults")) is not None:
            defaults = self.read_mapping(value, _DEFAULTS_FIELDS, "defaults")
        if (value := sections.get("policies")) is not None:
            policies = self.read_mapping(value, _POLICY_FIELDS, "policies")
            given = {key: plain(value) for key, (value, _) in policies.items()}
            lab.policies = dict(schema.LAB_POLICY_SCHEMA(given))
        entries = self._unique(
            self.section(sections, "resources", "resource", _RESOURCE_FIELDS),
            "resource",
            self._known_resources,
        )
        depends: dict[str, list[Located]] = {}
        for entry in entries:
            if (built := self._resource(entry, defaults)) is not None:
                lab.resources.append(built[0])
                depends[entry.name] = built[1]
        self._check_dependencies(entries, depends)
        return lab

    # Reading values

    def _unique(
        self, entries: list[Entry], what: str, known: Mapping[str, str]
    ) -> list[Entry]:
        """The entries without those whose name is taken (names ignore case).

        `known`: the names that exist outside the file, each with the title of the
        other lab that has it ("" for this lab).
        """
        taken = {name.casefold(): lab for name, lab in known.items()}
        first: dict[str, Entry] = {}
        unique: list[Entry] = []
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
        entry: Entry,
        fields: Mapping[str, Located],
        *,
        needs: Callable[[str], str],
        applies_to: Callable[[str], str],
        name_key: str = CONF_BMC_NAME,
    ) -> dict[str, Any] | None:
        """The entry's data through schema.py's validator; its refusals, with lines."""
        given = {key: value for key, value in fields.items() if value[0] is not None}
        data = {name_key: entry.name} | {k: plain(v) for k, (v, _) in given.items()}
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
                message = error_text(bad)
            else:
                message = f"{key}: {error_text(bad)}"
            self.error(line, message)
        return None

    def _unit(self, entry: Entry) -> dict[str, Any] | None:
        """A PDU unit's subentry data."""
        self._unit_outlets[entry.name] = None
        vendor, line = entry.fields.get(CONF_VENDOR, (None, entry.line))
        if vendor is None:
            if CONF_VENDOR not in entry.failed:
                self.error(entry.line, f"a unit needs {CONF_VENDOR}")
            return None
        if not self.check(_UNIT_FIELDS[CONF_VENDOR], vendor, line):
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
        self, entry: Entry, defaults: Mapping[str, Located]
    ) -> tuple[dict[str, Any], list[Located]] | None:
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
                f"bmc: no BMC named '{bmc}'" + suggest(bmc, self._bmc_names),
            )
        self._claim_feeds(entry, data, fields)
        return data, fields.get(CONF_DEPENDS_ON, ([], 0))[0]

    def _claim_feeds(
        self, entry: Entry, data: Mapping[str, Any], fields: Mapping[str, Located]
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
        entry: Entry,
        own: Mapping[str, Located],
        defaults: Mapping[str, Located],
        *,
        key: str,
        hints: Any,
        what: str,
    ) -> str | None:
        """The switcher or checker type: as given, else told by the fields given."""
        given = own.get(key) or defaults.get(key)
        if given is not None:
            valid = self.check(_RESOURCE_FIELDS[key], given[0], given[1])
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

    def _outlets(self, entry: Entry, located: Located) -> list[Located]:
        """Outlets of units that exist, within their count, in the stored form."""
        found: list[Located] = []
        for text, line in located[0]:
            try:
                [outlet] = schema.outlets(text)
            except vol.Invalid as err:
                self.error(line, f"{error_text(err)} (pdu1:3)")
                entry.failed.add(CONF_OUTLETS)
                continue
            unit, _, number = outlet.rpartition(":")
            if unit not in self._unit_outlets:
                entry.failed.add(CONF_OUTLETS)
                self.error(
                    line,
                    f"outlet '{text}': no unit named '{unit}'"
                    + suggest(unit, self._unit_outlets),
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
        self, entries: list[Entry], depends: Mapping[str, list[Located]]
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
                        + suggest(target, names),
                    )
            graph[name] = targets
        if cycle := find_cycle(graph):
            self.error(line_of[cycle[0]], "dependency cycle: " + " -> ".join(cycle))


def _switcher_hints(keys: set[str]) -> list[tuple[str, str]]:
    """The switchers the given fields point to, with the field that points."""
    return [(kind, key) for key, kind in _SWITCHER_HINTS.items() if key in keys]


def _checker_hints(keys: set[str]) -> list[tuple[str, str]]:
    """The checkers whose fields are all given, with their first field.

    Of two where one's fields hold the other's, the one with more: host and port tell
    tcp, host alone icmp.
    """
    told = {
        kind: {f.key for f in fields}
        for kind, fields in schema.CHECKER_FIELDS.items()
        if fields and all(f.key in keys for f in fields)
    }
    found = [
        (kind, schema.CHECKER_FIELDS[kind][0].key)
        for kind, own in told.items()
        if not any(own < other for other in told.values())
    ]
    return found or [(CHECKER_NONE, "")]
