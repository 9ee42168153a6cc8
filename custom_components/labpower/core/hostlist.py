"""Hostlist ranges: `pi[01-48]` stands for pi01, pi02, ..., pi48.

A pattern is text with bracket groups. A group holds comma-separated items, each a
number (`7`) or an inclusive range (`1-3`): `node[1-3,7]` is node1, node2, node3, node7.

- Zero padding: a range whose first number has a leading zero pads every value to that
  number's width: `[01-48]` is 01 ... 48, `[001-100]` is 001 ... 100; `[8-10]` is 8, 9, 10.
  A single number is kept as written (`[007]` is 007).
- Repeat: a group followed by `*k` repeats each of its values k times in place:
  `stack[1-3]*2` is stack1, stack1, stack2, stack2, stack3, stack3. The lab file uses it
  to pair lists of different lengths in step (48 Pis, 12 stacks: `stack[1-12]*4`).
  A `*` not followed by digits is plain text.
- Several groups multiply out like nested loops, the leftmost group slowest:
  `r[1-2]n[1-2]` is r1n1, r1n2, r2n1, r2n2.
- Text without brackets is itself. Brackets cannot be escaped; a `[` or `]` that does not
  form a group is an error.

A pattern is read and counted before any value is made (`count`): one of more than
MAX_VALUES values is refused without spending the memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product
import math

# More values than this from one pattern is a typo (`[1-99999]`), not a lab.
MAX_VALUES = 10_000


class HostlistError(ValueError):
    """A pattern that is not a valid hostlist; the message says what and where."""


@dataclass(frozen=True, slots=True)
class _Group:
    """A bracket group: items (first, last, width), each value repeated `repeat` times."""

    items: tuple[tuple[int, int, int], ...]
    repeat: int

    @property
    def size(self) -> int:
        return self.repeat * sum(last - first + 1 for first, last, _ in self.items)

    def values(self) -> tuple[str, ...]:
        return tuple(
            f"{number:0{width}d}"
            for first, last, width in self.items
            for number in range(first, last + 1)
            for _ in range(self.repeat)
        )


def expand(pattern: str) -> list[str]:
    """The values a pattern stands for, in order (see the module's documentation).

    Raises HostlistError for a malformed pattern or one of more than MAX_VALUES values.
    """
    if not is_pattern(pattern):
        return [pattern]
    return list(_expand(pattern))


def count(pattern: str) -> int:
    """How many values the pattern stands for, without making them (HostlistError if bad)."""
    if not is_pattern(pattern):
        return 1
    return math.prod(part.size for part in _parse(pattern) if isinstance(part, _Group))


def is_pattern(text: str) -> bool:
    """Whether the text holds a bracket (so that expand may give other than itself)."""
    return "[" in text or "]" in text


@lru_cache(maxsize=4096)
def _expand(pattern: str) -> tuple[str, ...]:
    if count(pattern) > MAX_VALUES:
        raise HostlistError(f"'{pattern}' gives more than {MAX_VALUES:,} values")
    parts = [
        part.values() if isinstance(part, _Group) else (part,)
        for part in _parse(pattern)
    ]
    return tuple("".join(values) for values in product(*parts))


@lru_cache(maxsize=4096)
def _parse(pattern: str) -> tuple[str | _Group, ...]:
    """The literal texts and groups of a pattern, in order."""
    parts: list[str | _Group] = []
    literal_start = position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "]":
            raise HostlistError(f"'{pattern}': ']' at column {position + 1} has no '['")
        if char != "[":
            position += 1
            continue
        if literal_start < position:
            parts.append(pattern[literal_start:position])
        close = pattern.find("]", position + 1)
        opening = pattern.find("[", position + 1)
        if close < 0:
            raise HostlistError(
                f"'{pattern}': '[' at column {position + 1} is not closed"
            )
        if 0 <= opening < close:
            raise HostlistError(
                f"'{pattern}': '[' at column {opening + 1} inside a range"
            )
        items = _items(pattern, pattern[position + 1 : close])
        position = repeat_end = close + 1
        if pattern.startswith("*", position):
            repeat_end += 1
            while repeat_end < len(pattern) and pattern[repeat_end].isdigit():
                repeat_end += 1
        repeat = 1
        if repeat_end > position + 1:
            repeat = int(pattern[position + 1 : repeat_end])
            if repeat == 0:
                raise HostlistError(f"'{pattern}': '*0' repeats nothing")
            position = repeat_end
        parts.append(_Group(items, repeat))
        literal_start = position
    if literal_start < len(pattern):
        parts.append(pattern[literal_start:])
    return tuple(parts)


def _items(pattern: str, body: str) -> tuple[tuple[int, int, int], ...]:
    """The items of one bracket group's body (`1-3,7`): (first, last, width)."""
    if not body.strip():
        raise HostlistError(f"'{pattern}': empty range '[]'")
    items: list[tuple[int, int, int]] = []
    for item in body.split(","):
        first, dash, last = (part.strip() for part in item.partition("-"))
        if not _is_number(first) or (dash and not _is_number(last)):
            raise HostlistError(
                f"'{pattern}': '{item.strip()}' is not a number or a range a-b"
            )
        if not dash:  # a single number is kept as written
            items.append((int(first), int(first), len(first)))
            continue
        start, end = int(first), int(last)
        if end < start:
            raise HostlistError(f"'{pattern}': range {item.strip()} goes backwards")
        items.append((start, end, len(first) if first.startswith("0") else 1))
    return tuple(items)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
