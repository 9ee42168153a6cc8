"""Reading a lab file: its YAML, bounded, every value with its line, names expanded.

Home Assistant's YAML loader (annotatedyaml) reads the text, without includes or the
environment; `!secret name` comes from secrets.yaml next to the file. Unquoted numbers,
booleans and dates keep the text as written (`10:20:30:40:50:59`, `0755`), their YAML
value beside it. A file is bounded (size, nesting, aliases and merge keys expanded,
names, range values, time) before memory is spent: the bound it breaks is reported with
its line. Reader turns the sections into entries, one per name a hostlist range
(core/hostlist.py) expands to, their fields expanded in step; labfile.py checks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import difflib
from pathlib import Path
import re
import time
from typing import Any, ClassVar, Final, NoReturn

import annotatedyaml
from annotatedyaml.constructors import _construct_seq, _handle_scalar_tag
from annotatedyaml.loader import FastSafeLoader
from annotatedyaml.objects import NodeDictClass, NodeStrClass
import probatio as vol
import yaml  # type: ignore[import-untyped]

from . import schema
from .const import CONF_RESOURCE_NAME
from .core.hostlist import HostlistError, count as range_count, expand, is_pattern

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

_C_LOADER: Final = getattr(yaml, "CSafeLoader", None)
_TAG: Final = "tag:yaml.org,2002:"
_MERGE_TAG: Final = _TAG + "merge"
# What an unquoted `[1-8]` leaves of itself once YAML has read it as a list.
_RANGE_BODY = re.compile(r"[0-9][0-9 ,-]*")
# Fields whose value is a list.
_LISTS: Final = (schema.names, schema.outlets, schema.entity_ids)

type Fields = Mapping[str, schema.Field]
# A field's value and the line it came from.
type Located = tuple[Any, int]


@dataclass(frozen=True, slots=True)
class LabFileProblem:
    """One problem: the 1-based line of the offending node (None: the whole file)."""

    line: int | None
    message: str


class UnreadableError(Exception):
    """A file that cannot be read at all; the message says why."""


def read_file(path: Path) -> tuple[str, dict[str, Any] | None]:
    """The text of the lab file at `path` and, if it uses `!secret`, the secrets."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableError(f"cannot read the file: {err}") from err
    if len(raw) > MAX_FILE_BYTES:
        raise UnreadableError(f"larger than {MAX_FILE_BYTES:,} bytes")
    if "!secret" not in text:
        return text, None
    return text, load_secrets(path.parent / SECRETS_FILE_NAME)


def load_secrets(path: Path) -> dict[str, Any]:
    """The mapping in secrets.yaml (empty when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableError(f"cannot read {path.name}: {err}") from err
    try:
        secrets: Any = annotatedyaml.parse_yaml(text)
    except (annotatedyaml.YAMLException, yaml.YAMLError) as err:
        raise UnreadableError(f"{path.name} is not valid YAML: {err}") from err
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise UnreadableError(f"{path.name} must be a mapping of names to values")
    return secrets


# Home Assistant's loader (annotatedyaml), every value with its line.


class Plain(NodeStrClass):
    """An unquoted number, boolean or date: its text as written, its YAML value in `value`.

    `10:20:30:40:50:59` (a MAC address, to YAML 1.1 a number) and `0755` stay text.
    """

    __slots__ = ("value",)
    value: Any


class Secret(NodeStrClass):
    """A `!secret` value: taken as written, never expanded."""

    __slots__ = ()


class Bad(NodeStrClass):
    """A value that could not be read (an unknown tag or secret): what is wrong."""

    __slots__ = ()


class Map(NodeDictClass):
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

    def plain(self, node: yaml.ScalarNode) -> Plain:
        text = Plain(node.value)
        text.value = yaml.SafeLoader.yaml_constructors[node.tag](self, node)
        text.__line__ = node.start_mark.line + 1
        return text

    def secret(self, node: yaml.ScalarNode) -> Secret | Bad:
        value = self.lab_secrets.get(node.value)
        if value is None:
            return self.unknown(
                node, f"no secret named '{node.value}' in {SECRETS_FILE_NAME}"
            )
        secret = Secret(value)
        secret.__line__ = node.start_mark.line + 1
        return secret

    def unknown(self, node: yaml.Node, message: str = "") -> Bad:
        bad = Bad(message or f"unknown tag {node.tag}")
        bad.__line__ = node.start_mark.line + 1
        return bad

    def mapping(self, node: yaml.MappingNode) -> Map:
        """A mapping: merge keys honoured (what they bring in may be overridden)."""
        own = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
        data = Map()
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


def read_yaml(
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


# Reading the sections


class StopReadingError(Exception):
    """Stop looking: MAX_ERRORS problems found (`truncated`), or a bound broken."""

    def __init__(self, *, truncated: bool) -> None:
        """Stop; `truncated`: more problems were not looked for."""
        super().__init__()
        self.truncated = truncated


class BadValueError(Exception):
    """A value that cannot be used; `line` if it is not the value's own."""

    def __init__(self, message: str, line: int | None = None) -> None:
        """What is wrong, and the line where it is not the value's own."""
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class Entry:
    """One expanded item of a section: a name, its fields, the line of its name."""

    name: str
    line: int
    fields: dict[str, Located]
    # Fields given with a value that could not be used (reported already).
    failed: set[str] = field(default_factory=set)


def line_of(value: Any, line: int) -> int:
    """The line of a YAML value (`line` for a null, which has none)."""
    return int(getattr(value, "__line__", line))


def suggest(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, if one is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def plain(value: Any) -> Any:
    """A field's value for its validator: a list field's items without their lines."""
    return [text for text, _ in value] if isinstance(value, list) else value


class Reader:
    """One reading: the problems found so far, the names and range values counted."""

    def __init__(self, secrets: Mapping[str, Any], *, deadline: float) -> None:
        """A reader of one text; `deadline` is a time.monotonic() value."""
        self.problems: list[LabFileProblem] = []
        self._deadline = deadline
        self._seen: set[tuple[int | None, str]] = set()
        self._secrets = secrets
        self._names = 0  # names defined so far
        self._values = 0  # values expanded so far

    def error(self, line: int | None, message: str) -> None:
        """Note a problem (once: an entry that expands repeats its problems)."""
        if (line, message) in self._seen:
            return
        self._seen.add((line, message))
        self.problems.append(LabFileProblem(line, message))
        if len(self.problems) >= MAX_ERRORS:
            raise StopReadingError(truncated=True)

    def stop(self, line: int | None, message: str) -> NoReturn:
        """A bound is broken: report it and look no further."""
        self.problems.append(LabFileProblem(line, message))
        raise StopReadingError(truncated=False)

    def root(self, text: str) -> Any:
        """The file's values (None where the text is not YAML within the bounds)."""
        root, problem = read_yaml(text, self._secrets, self._deadline)
        if problem is not None:
            self.error(problem.line, problem.message)
        return root

    def pairs(
        self, value: Any, fields: Iterable[str], what: str, line: int
    ) -> dict[str, Any] | None:
        """A mapping's values by key; unknown and repeated keys are problems."""
        if not isinstance(value, Map):
            self.error(line_of(value, line), f"{what} must be a mapping (key: value)")
            return None
        for key, at, first in value.twice:
            self.error(at, f"'{key}' is given twice in {what} (first at line {first})")
        for at in value.odd:
            self.error(at, f"unknown key that is not a word in {what}")
        if value.merge:
            self.error(line_of(value, line), f"{what}: {value.merge}")
        pairs: dict[str, Any] = {}
        for key, item in value.items():
            if key not in fields:
                hint = suggest(key, fields)
                self.error(line_of(key, line), f"unknown key '{key}' in {what}{hint}")
            else:
                pairs[key] = item
        return pairs

    def key_line(self, pairs: Mapping[str, Any], key: str, line: int) -> int:
        """The line of a key (its value's, or the mapping's where it has none)."""
        return next((line_of(k, line) for k in pairs if k == key), line)

    def section(
        self, sections: Mapping[str, Any], key: str, singular: str, fields: Fields
    ) -> list[Entry]:
        """The expanded entries of a list section (units, bmcs, resources)."""
        value = sections.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(line_of(value, 1), f"{singular}s must be a list (- name: a)")
            return []
        entries: list[Entry] = []
        for item in value:
            entries.extend(self.expand(item, singular, fields, line_of(value, 1)))
        return entries

    def expand(
        self, item: Any, singular: str, fields: Fields, line: int
    ) -> list[Entry]:
        """One entry of a section, one per name its name expands to."""
        if time.monotonic() > self._deadline:
            self.stop(None, f"not read within {PARSE_SECONDS:g} s")
        pairs = self.pairs(item, fields, f"a {singular}", line)
        if pairs is None:
            return []
        line = line_of(item, line)
        if CONF_RESOURCE_NAME not in pairs:
            self.error(line, f"a {singular} needs a name")
            return []
        name_value = pairs.pop(CONF_RESOURCE_NAME)
        line = line_of(name_value, self.key_line(item, CONF_RESOURCE_NAME, line))
        if isinstance(name_value, list | dict):
            self.error(line, "name: expected a name, not a list or a mapping")
            return []
        spec = fields[CONF_RESOURCE_NAME]
        try:
            texts = self._scalar(spec, name_value, line, expand_ranges=True)
            names = [schema.name(name) for name in texts or [None]]
        except (BadValueError, vol.Invalid) as bad:
            self.error(line, f"name: {error_text(bad)}")
            return []
        self._names += len(names)
        if self._names > MAX_NAMES:
            self.stop(line, f"the file defines more than {MAX_NAMES:,} names")
        columns, failed = self._columns(item, pairs, fields, len(names), name_value)
        return [
            Entry(
                name,
                line,
                {key: (values[i], at) for key, (values, at) in columns.items()},
                set(failed),
            )
            for i, name in enumerate(names)
        ]

    def read_mapping(self, value: Any, fields: Fields, what: str) -> dict[str, Located]:
        """The values of a mapping that is not expanded (defaults, policies), checked."""
        pairs = self.pairs(value, fields, what, 1)
        if pairs is None:
            return {}
        columns, _ = self._columns(value, pairs, fields, 1, "")
        given: dict[str, Located] = {}
        for key, ([item], line) in columns.items():
            if item is None:
                continue
            if self.check(fields[key], item, line):
                given[key] = (item, line)
        return given

    def check(self, spec: schema.Field, value: Any, line: int) -> bool:
        """Whether one field's value passes its validator (if not, a problem)."""
        try:
            spec.validator(plain(value))
        except vol.Invalid as err:
            self.error(line, f"{spec.key}: {error_text(err)}")
            return False
        return True

    def _columns(
        self,
        mapping: Mapping[str, Any],
        pairs: Mapping[str, Any],
        fields: Fields,
        count: int,
        pattern: Any,
    ) -> tuple[dict[str, tuple[list[Any], int]], set[str]]:
        """Each field's value for each of `count` names (expanded in step), by key.

        Also the keys whose value was refused, so that they are not reported missing.
        """
        columns: dict[str, tuple[list[Any], int]] = {}
        failed: set[str] = set()
        base = line_of(mapping, 1)
        for key, value in pairs.items():
            key_line = self.key_line(mapping, key, base)
            line = line_of(value, key_line)
            target = fields[key].key
            if target != key and target in pairs:
                self.error(key_line, f"give either '{key}' or '{target}', not both")
                continue
            try:
                values = self._column(fields[key], value, line, count, str(pattern))
            except BadValueError as bad:
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
            raise BadValueError("expected a value, not a mapping")
        if not isinstance(value, list):
            values = self._scalar(spec, value, line, expand_ranges=True)
            if values is None:
                return None
            if len(values) == 1:
                return values * count
            if len(values) == count:
                return values
            raise BadValueError(_mismatch(str(value), len(values), count, pattern))
        if count > 1:
            if len(value) != count:
                raise BadValueError(
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
                    raise BadValueError("expected a value", line_of(item, line))
                column.append(one[0])
            return column
        hint = ""
        if value and all(
            isinstance(item, str) and _RANGE_BODY.fullmatch(item) for item in value
        ):
            hint = " (a value that starts with '[' must be quoted: \"[1-8]\")"
        raise BadValueError(f"expected one value, not a list{hint}")

    def _list_column(
        self, spec: schema.Field, value: Any, line: int, count: int, pattern: str
    ) -> list[list[Located]] | None:
        """A list field's items for each of `count` names, each with its line.

        An item that expands to `count` values gives one to each name; an item of one
        value goes to every name; with one name, every value of every item is its own.
        """
        if value is None:
            return None
        if isinstance(value, dict):
            raise BadValueError("expected a list, not a mapping")
        items = value if isinstance(value, list) else [value]
        column: list[list[Located]] = [[] for _ in range(count)]
        for item in items:
            at = line_of(item, line)
            texts = (
                None
                if isinstance(item, list | dict)
                else self._scalar(spec, item, at, expand_ranges=True)
            )
            if texts is None:
                raise BadValueError("expected a list of values", at)
            if count == 1:
                column[0].extend((text, at) for text in texts)
            elif len(texts) == 1:
                for values in column:
                    values.append((texts[0], at))
            elif len(texts) == count:
                for values, text in zip(column, texts, strict=True):
                    values.append((text, at))
            else:
                raise BadValueError(
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
        if isinstance(value, Bad):
            raise BadValueError(str(value))
        if spec.validator is schema.boolean and isinstance(value, Plain):
            return [value.value]
        texts = [str(value)]
        if (
            expand_ranges
            and spec.validator is not schema.opaque
            and not isinstance(value, Secret)
            and is_pattern(texts[0])
        ):
            try:
                self._values += range_count(texts[0])
                if self._values > MAX_VALUES:
                    self.stop(line, f"ranges give more than {MAX_VALUES:,} values")
                texts = expand(texts[0])
            except HostlistError as err:
                raise BadValueError(f"bad range: {err}") from None
        return texts


def error_text(err: Exception) -> str:
    """The message of a refusal (a validator's, without its path)."""
    return str(err.msg) if isinstance(err, vol.Invalid) else str(err)


def _mismatch(text: str, values: int, names: int, pattern: str) -> str:
    if names == 1:
        return f"'{text}' gives {values} values for one name"
    return f"'{text}' gives {values} values but the name '{pattern}' gives {names}"
