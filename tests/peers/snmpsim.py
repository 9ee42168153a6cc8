"""Recorded walks of real PDUs, replayed by snmpsim on 127.0.0.1.

`snmpsim-command-responder` (PyPI snmpsim 1.2.2) serves every recording in
tests/data/snmprec (APC AP7902B, AP8641, AP8932 with the rPDU2 firmware 6.7.2, a Tripp Lite
PDUMH20ATNET with PowerAlert 15.5.4; where each comes from is in the README there) on one
UDP port of 127.0.0.1; the SNMP v1/v2c community picks the recording (its file name:
`apc-8641`). The recordings are copied unchanged; the session's copy differs in two ways,
both made here when the fixture starts:

- **Pinned state columns.** The published walks replace each outlet's state object by
  snmpsim's `numeric` variation (`2:numeric|min=1,max=2,initial=2,wrap=1`), which would walk
  the value between on and off as time passes. The copy pins it: where the MIB says the
  command column reads the outlet state (PowerNet-MIB rPDU2OutletSwitchedControlCommand:
  1 on, 2 off), to what the recorded command column says; elsewhere (TRIPPLITE-PRODUCTS
  tlpAtsOutletCommand always reads 0) to the variation's `initial` value.
- **Writable command columns.** snmpsim answers a SET only for an object a variation module
  serves. Its `writecache` module keeps a written value for the written object alone, but a
  PDU's command column changes another column, the state. So the state column and the
  command column of the outlet table are served by snmpsim's stock `sql` module instead,
  from an SQLite file written here: one table per column, a `COLUMN|:sql|TABLE` line in
  place of the column's records, and SQLite triggers on the command table that do what the
  unit does, by the same MIB rules the snmpd simulator follows (pdu_mibs.write): a SET of
  rPDU2OutletSwitchedControlCommand.N to immediateOn(1) makes
  rPDU2OutletSwitchedStatusState.N read on(2) and the command read 1; a SET of
  tlpAtsOutletCommand.1.N to turnOn(2) makes tlpAtsOutletState.1.N read on(2) and the
  command read 0 again. A value the MIB does not list, or an outlet the unit lacks (the
  `sql` module would insert a row), is refused by a trigger; snmpsim then answers the SET
  with noSuchInstance. The other records stay as recorded (read-only, or `writecache` where
  the recording says so).

snmpsim refuses to run as root unless told (`SNMPSIM_ALLOW_ROOT=true`); it listens on
127.0.0.1 only. Fixtures: `snmpsim_agent` (one responder for the session) and
`recorded_units` (the same, every unit back to its recorded state, for one test).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import socket
import sqlite3
import subprocess
import sys

import pytest

from .net import free_port, sockets_allowed, stop_process
from .pdu_mibs import READS_STATE, VENDORS, Vendor, write
from .snmpd import HOST, SNMPGET, await_agent

RECORDINGS = Path(__file__).parent.parent / "data" / "snmprec"
RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")
ENTERPRISES = "1.3.6.1.4.1."

# Each recording and the vendor table whose outlets it has (pdu_mibs.VENDORS).
UNITS = {
    "apc-7902b": "apc_rpdu2",
    "apc-8641": "apc_rpdu2",
    "apc-8932": "apc_rpdu2",
    "tripplite-poweralert": "tripplite_ats",
}
_STATE, _COMMAND = "state", "command"
# The recording the fixture asks to know the responder is up, and what it answers.
FIRST, FIRST_SYS_OBJECT_ID = "apc-7902b", "1.3.6.1.4.1.318.1.3.4.8"


def _padded(oid: str) -> str:
    """An OID as snmpsim's `sql` module stores it: each part right-aligned in 10 places."""
    return ".".join(f"{part:>10}" for part in oid.split("."))


def _pinned(tag: str, value: str) -> str:
    """A `numeric` variation's initial value; any other value as recorded."""
    if tag.endswith(":numeric"):
        settings = dict(item.split("=", 1) for item in value.split(","))
        return settings["initial"]
    return value


def _table(unit: str, which: str) -> str:
    """The SQLite table that serves a recording's state or command column."""
    return f"{unit.replace('-', '_')}_{which}"


@dataclass(frozen=True)
class _Outlets:
    """A recording's outlet table split off into SQLite: the rows as first served."""

    unit: str
    vendor: Vendor
    rows: dict[
        str, list[tuple[str, str, str, str]]
    ]  # table -> (oid, tag, value, access)

    def table(self, which: str) -> str:
        """The SQLite table of this unit's state or command column."""
        return _table(self.unit, which)


def _split(unit: str, vendor: Vendor, lines: list[str]) -> tuple[list[str], _Outlets]:
    """The recording with its state and command columns moved into SQLite rows."""
    [control] = vendor.controls
    columns = {
        _STATE: ENTERPRISES + vendor.status,
        _COMMAND: ENTERPRISES + control.column,
    }
    records: dict[str, dict[str, tuple[str, str]]] = {_STATE: {}, _COMMAND: {}}
    kept: list[str] = []
    for line in lines:
        oid, tag, value = line.split("|", 2)
        which = next((w for w, c in columns.items() if oid.startswith(c + ".")), None)
        if which is None:
            kept.append(line)
            continue
        if not records[which]:
            kept.append(f"{columns[which]}|:sql|{_table(unit, which)}")
        records[which][oid[len(columns[which]) + 1 :]] = (tag, value)
    rows: dict[str, list[tuple[str, str, str, str]]] = {_STATE: [], _COMMAND: []}
    for outlet, (tag, value) in records[_COMMAND].items():
        rows[_COMMAND].append(
            (_padded(f"{columns[_COMMAND]}.{outlet}"), "2", value, "read-write")
        )
        if control.reads == READS_STATE and tag == "2":
            # The recorded command column says what the outlet was.
            state = next(
                s
                for s in ("on", "off")
                if str(vendor.control_value(control, s)) == value
            )
            records[_STATE][outlet] = ("2", str(vendor.states[state]))
    for outlet, (tag, value) in records[_STATE].items():
        rows[_STATE].append(
            (
                _padded(f"{columns[_STATE]}.{outlet}"),
                "2",
                _pinned(tag, value),
                "read-only",
            )
        )
    return kept, _Outlets(unit, vendor, rows)


def _triggers(outlets: _Outlets) -> dict[str, str]:
    """Trigger name -> SQL: a command table's SET does what the unit does (pdu_mibs.write)."""
    vendor = outlets.vendor
    [control] = vendor.controls
    state, command = outlets.table(_STATE), outlets.table(_COMMAND)
    status_prefix = _padded(ENTERPRISES + vendor.status)
    control_prefix = _padded(ENTERPRISES + control.column)
    new_state = []
    reads = []
    allowed = set()
    for written in control.effects:
        changes = write(vendor, control, "N", written).changes
        new_state.append(f"WHEN '{written}' THEN '{changes[f'{vendor.status}.N']}'")
        reads.append(f"WHEN '{written}' THEN '{changes[f'{control.column}.N']}'")
        # What the command reads afterwards passes too: the trigger writes it back.
        allowed |= {written, changes[f"{control.column}.N"]}
    listed = ", ".join(f"'{value}'" for value in sorted(allowed))
    return {
        f"{command}_check": f"BEFORE UPDATE OF value ON {command} "
        f"WHEN new.value NOT IN ({listed}) "
        "BEGIN SELECT RAISE(ABORT, 'wrongValue'); END",
        f"{command}_no_outlet": f"BEFORE INSERT ON {command} "
        "BEGIN SELECT RAISE(ABORT, 'noCreation'); END",
        f"{command}_switch": f"AFTER UPDATE OF value ON {command} BEGIN "  # noqa: S608
        f"UPDATE {state} SET value = CASE new.value {' '.join(new_state)} ELSE value END "
        f"WHERE oid = replace(new.oid, '{control_prefix}', '{status_prefix}'); "
        f"UPDATE {command} SET value = CASE new.value {' '.join(reads)} ELSE new.value END "
        "WHERE oid = new.oid; END",
    }


@contextlib.contextmanager
def _database(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the outlet tables, committed and closed at the end."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        yield db


def _load(db: sqlite3.Connection, outlets: _Outlets) -> None:
    """(Re)write a unit's outlet tables as first served, then arm the triggers."""
    triggers = _triggers(outlets)
    for name in triggers:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    for which, rows in outlets.rows.items():
        table = outlets.table(which)
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(oid TEXT PRIMARY KEY, tag TEXT, value TEXT, maxaccess TEXT)"
        )
        db.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", rows)  # noqa: S608
    for name, body in triggers.items():
        db.execute(f"CREATE TRIGGER {name} {body}")


@dataclass
class SnmpsimAgent:
    """A running snmpsim responder and the SQLite file behind its outlet tables."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    outlets: tuple[_Outlets, ...]
    host: str = HOST

    @property
    def database(self) -> Path:
        """The SQLite file the `sql` variation module serves the outlet columns from."""
        return self.directory / "outlets.sqlite"

    def reset(self) -> None:
        """Every unit back to its recorded outlet states."""
        with _database(self.database) as db:
            for outlets in self.outlets:
                _load(db, outlets)

    def value(self, unit: str, oid: str) -> str | None:
        """What the unit's outlet table holds for `oid` now (None: not an outlet object)."""
        with _database(self.database) as db:
            for outlets in self.outlets:
                if outlets.unit != unit:
                    continue
                for which in (_STATE, _COMMAND):
                    found = db.execute(
                        f"SELECT value FROM {outlets.table(which)} WHERE oid = ?",  # noqa: S608
                        (_padded(oid.strip(".")),),
                    ).fetchone()
                    if found:
                        return str(found[0])
        return None

    def stop(self) -> None:
        """Terminate the responder."""
        stop_process(self.process)


def start_snmpsim(directory: Path, *, timeout: float = 60.0) -> SnmpsimAgent:
    """Write the session's copy of the recordings, start snmpsim, return once it answers."""
    data = directory / "data"
    data.mkdir()
    database = directory / "outlets.sqlite"
    made: list[_Outlets] = []
    with _database(database) as db:
        for unit, vendor in UNITS.items():
            lines = (
                (RECORDINGS / f"{unit}.snmprec")
                .read_text(encoding="utf-8")
                .splitlines()
            )
            kept, outlets = _split(unit, VENDORS[vendor], lines)
            (data / f"{unit}.snmprec").write_text("\n".join(kept) + "\n", "utf-8")
            _load(db, outlets)
            made.append(outlets)
    with sockets_allowed():
        port = free_port(socket.SOCK_DGRAM)
    log = directory / "snmpsim.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the venv's own responder
            [
                str(RESPONDER),
                f"--data-dir={data}",
                f"--cache-dir={directory / 'cache'}",
                f"--agent-udpv4-endpoint={HOST}:{port}",
                f"--variation-module-options=sql:dbtype:sqlite3,database:{database}",
                "--log-level=error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
        )
    await_agent(
        process,
        port,
        log,
        community=FIRST,
        sys_object_id=FIRST_SYS_OBJECT_ID,
        timeout=timeout,
    )
    return SnmpsimAgent(directory, port, process, tuple(made))


@pytest.fixture(scope="session")
def snmpsim_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpsimAgent]:
    """One snmpsim responder with every recording, for the whole session."""
    if SNMPGET is None or not RESPONDER.exists():
        pytest.skip("needs snmpsim (requirements_test.txt) and Net-SNMP's snmpget")
    agent = start_snmpsim(tmp_path_factory.mktemp("snmpsim"))
    yield agent
    agent.stop()


@pytest.fixture
def recorded_units(snmpsim_agent: SnmpsimAgent) -> SnmpsimAgent:
    """The session's responder with every outlet as recorded."""
    snmpsim_agent.reset()
    return snmpsim_agent
