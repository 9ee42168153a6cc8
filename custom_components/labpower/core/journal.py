"""Durable files of a lab's ledger: a snapshot, the last good copy, and a journal.

A change is acknowledged once it is in the journal: an append-only file of batches of
changes, each batch one line (CRC-32, a space, JSON) written and fsynced at once, so
that the changes that arrive while one batch is written share the next fsync (group
commit). The journal is compacted now and then into the snapshot (the Home Assistant
Store file, same envelope), which keeps its previous version as the last good copy.

Generations tie them together: snapshot G holds every change of journal segments
0 .. G-1, so a snapshot of generation G plus the segments G, G+1... is the whole state.
Compaction keeps the segments from the last good copy's generation on, so either copy
recovers everything. Reading classifies what it finds instead of failing: a damaged
file is reported, never trusted, never overwritten before a good state is written.

Synchronous and blocking (run it off the event loop); no Home Assistant imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
from typing import Any
import zlib

# The key inside the snapshot's data that holds its generation (absent: 0).
GENERATION = "journal_generation"
MINOR_VERSION = 1


class NewerVersionError(Exception):
    """A snapshot written by a newer version: it is left as it is."""

    def __init__(self, name: str, version: object) -> None:
        """Which file, which version."""
        super().__init__(f"{name}: version {version}")
        self.version = version


@dataclass(slots=True)
class Recovered:
    """What reading the files found."""

    data: dict[str, Any] | None = None  # the snapshot's data (None: nothing usable)
    source: str | None = None  # "store" or "good": which copy `data` came from
    batches: list[list[Any]] = field(default_factory=list)  # journal, oldest first
    problems: list[str] = field(default_factory=list)  # what was damaged, and how
    complete: bool = True  # whether every acknowledged change is in data + batches
    newer: object = None  # the version of a snapshot too new to read, if any
    fresh: bool = False  # no file at all: a new lab

    @property
    def changes(self) -> int:
        """How many changes the journal replays."""
        return sum(len(batch) for batch in self.batches)


def encode_batch(records: list[Any]) -> bytes:
    """One journal line: CRC-32 of the JSON, a space, the JSON, a newline."""
    body = json.dumps(records, separators=(",", ":"), allow_nan=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_line(line: bytes) -> list[Any] | None:
    """A batch from one journal line; None when it is damaged or torn."""
    crc, _, body = line.rstrip(b"\n").partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        batch = json.loads(body)
    except ValueError:
        return None
    return batch if isinstance(batch, list) else None


class DurableFiles:
    """The snapshot, the last good copy and the journal segments of one store key."""

    def __init__(self, directory: Path, key: str, version: int) -> None:
        """Files `key`, `key.good` and `key.journal.N` in `directory`."""
        self.directory = directory
        self.key = key
        self.version = version
        self.generation = 0  # the segment appended to
        self._good_generation: int | None = None
        # Whether the snapshot file passed read() (or was written by compact()): only
        # then may it become the good copy. Not read yet: not trusted.
        self._store_usable = False
        self._fd: int | None = None
        self.journal_bytes = 0  # of the current segment

    @property
    def store_path(self) -> Path:
        """The snapshot: Home Assistant's Store file of this key."""
        return self.directory / self.key

    @property
    def good_path(self) -> Path:
        """The previous snapshot."""
        return self.directory / f"{self.key}.good"

    @property
    def damaged_path(self) -> Path:
        """A snapshot read() rejected, kept aside by the next compaction."""
        return self.directory / f"{self.key}.damaged"

    def segment_path(self, generation: int) -> Path:
        """The journal of the changes after snapshot `generation`."""
        return self.directory / f"{self.key}.journal.{generation}"

    def _segments(self) -> dict[int, Path]:
        prefix = f"{self.key}.journal."
        found: dict[int, Path] = {}
        if not self.directory.is_dir():
            return found
        for path in self.directory.iterdir():
            suffix = path.name.removeprefix(prefix)
            if suffix != path.name and suffix.isdigit():
                found[int(suffix)] = path
        return found

    # Reading

    def read(self, validate: Callable[[dict[str, Any]], None]) -> Recovered:
        """Find the newest usable snapshot and the journal that follows it.

        `validate` raises ValueError (with what is wrong) on data that must not be
        loaded. A snapshot of a newer version stops everything: nothing is used.
        """
        found = Recovered()
        self._store_usable = False
        copies: list[tuple[int, str, dict[str, Any]]] = []
        existing = 0
        for name, path in (("store", self.store_path), ("good", self.good_path)):
            if not path.exists():
                continue
            existing += 1
            try:
                data = self._read_snapshot(path, validate)
            except NewerVersionError as err:
                found.newer = err.version
                found.problems.append(f"{name}: written by version {err.version}")
                found.complete = False
                return found
            except (OSError, TypeError, ValueError) as err:
                found.problems.append(f"{name}: {err}")
                continue
            copies.append((_generation(data), name, data))
            if name == "store":
                self._store_usable = True
        segments = self._segments()
        if not existing and not segments:
            found.fresh = True
            return found
        if not self.store_path.exists():
            found.problems.append("store: missing")
        base_generation = 0
        if copies:
            base_generation, found.source, found.data = max(copies, key=lambda c: c[0])
        else:
            # No usable copy: the journal from an empty lab (segment 0) is complete,
            # anything later is all there is.
            base_generation = min(segments, default=0)
            found.complete = not existing and base_generation == 0
        newest = max([base_generation, *segments])
        for generation in range(base_generation, newest + 1):
            segment = segments.get(generation)
            if segment is None:
                if generation < newest:
                    found.problems.append(f"journal {generation}: missing")
                    found.complete = False
                continue
            batches, problem = self._read_segment(segment)
            found.batches.extend(batches)
            if problem is not None:
                found.problems.append(f"journal {generation}: {problem}")
                found.complete = False
        self.generation = newest
        self._good_generation = min((c[0] for c in copies), default=None)
        return found

    def _read_snapshot(
        self, path: Path, validate: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        raw = path.read_bytes()
        if not raw.strip():
            raise ValueError("empty")
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise ValueError("not valid JSON (truncated or damaged)") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            raise TypeError("not a labpower store")
        version = envelope.get("version")
        if not isinstance(version, int):
            raise TypeError(f"unknown version {version!r}")
        if version > self.version:
            raise NewerVersionError(path.name, version)
        data: dict[str, Any] = envelope["data"]
        validate(data)
        return data

    @staticmethod
    def _read_segment(path: Path) -> tuple[list[list[Any]], str | None]:
        """The batches of a segment; a problem when a damaged line precedes good ones.

        A damaged last line is a batch torn by a crash before its fsync returned: it
        was never acknowledged, so nothing is lost.
        """
        batches: list[list[Any]] = []
        lines = path.read_bytes().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for number, line in enumerate(lines, 1):
            batch = decode_line(line)
            if batch is None:
                if number == len(lines):
                    break  # torn tail
                return batches, f"line {number} of {len(lines)} damaged"
            batches.append(batch)
        return batches, None

    # Writing

    def append(self, line: bytes) -> None:
        """Write one encoded batch to the journal and fsync it."""
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.segment_path(self.generation)
            created = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self.journal_bytes = os.fstat(self._fd).st_size
            if created:
                self._sync_directory()
        written = 0
        while written < len(line):
            written += os.write(self._fd, line[written:])
        os.fsync(self._fd)
        self.journal_bytes += len(line)

    def compact(self, data: dict[str, Any]) -> None:
        """Write a snapshot of everything journaled so far; start a new segment.

        Order, each step durable before the next: the new snapshot to a temporary
        file, the old snapshot renamed to the good copy, the new one renamed into
        place; then the segments older than the good copy are removed. A crash at any
        point leaves a snapshot (or the good copy) and every segment after it.
        """
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        generation = self.generation + 1
        body = json.dumps(
            {
                "version": self.version,
                "minor_version": MINOR_VERSION,
                "key": self.key,
                "data": {**data, GENERATION: generation},
            },
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        temporary = self.directory / f"{self.key}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            written = 0
            while written < len(body):
                written += os.write(fd, body[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        previous: int | None = None
        if self.store_path.exists():
            if self._store_usable:
                self.store_path.replace(self.good_path)
                previous = self.generation
            else:  # rejected by read(): kept aside, never the good copy
                self.store_path.replace(self.damaged_path)
        self._store_usable = False
        temporary.replace(self.store_path)
        self._store_usable = True
        self._sync_directory()
        self.generation = generation
        self.journal_bytes = 0
        keep_from = previous if previous is not None else self._good_generation
        self._good_generation = keep_from
        if keep_from is None:
            return
        for old, path in self._segments().items():
            if old < keep_from:
                path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete every file of the key (the lab was removed)."""
        self.close()
        for path in (
            self.store_path,
            self.good_path,
            self.damaged_path,
            self.directory / f"{self.key}.tmp",
            *self._segments().values(),
        ):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the open segment."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _generation(data: dict[str, Any]) -> int:
    generation = data.get(GENERATION, 0)
    return generation if isinstance(generation, int) and generation >= 0 else 0
