"""Debian's snmpd on 127.0.0.1 as a simulated PDU of any supported vendor.

One agent serves every vendor tree: `bin/snmp-pdu-sim` answers below each vendor's
enterprise OID (as snmpd's `pass_persist` program) from a JSON state file, and answers
sysObjectID.0 too (registered with a higher priority than snmpd's own system group), so a
test turns the agent into another unit by loading another state: `agent.load(unit(...))`.
A write to an outlet's control object changes its separate status object the way the
vendor's unit does. The vendors' trees and what a write does there are in pdu_mibs.py, each
with its MIB source: APC MasterSwitch, rPDU and rPDU2 (daisy-chained units too: the index
spans the linked units, Module and Number name each row's unit and outlet), CyberPower ePDU
and ePDU2, Raritan PX2/PX3 (PDU2-MIB) and PX (PDU-MIB), Eaton ePDU, Tripp Lite
TRIPPLITE-PRODUCTS PDU and ATS outlet tables (current firmware) and the PowerAlert 12.04 tree.

Access: v1/v2c community `public` reads and `private` writes; v3 users `labadmin`
(SHA + AES, read-write), `labmd5` (MD5 + DES, read-write) and `labreader` (SHA, no privacy,
read-only). The agent runs as the current user on a free high UDP port and keeps its v3
users in its own persistent directory, so it needs no root.

Fixtures: `snmpd_agent` (one agent for the session) and `snmp_agent` (the same agent with
an empty unit and no recorded writes, for one test).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time

import pytest

from .net import free_port, sockets_allowed, stop_process
from .pdu_mibs import VENDORS

HOST = "127.0.0.1"
SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
SNMPGET = shutil.which("snmpget")
SIM = Path(__file__).parent / "bin" / "snmp-pdu-sim"
SYS_NAME = "lab-pdu-1"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"

READ_COMMUNITY = "public"
WRITE_COMMUNITY = "private"


@dataclass(frozen=True)
class V3User:
    """An SNMP v3 user of the agent (protocol names as the driver spells them)."""

    name: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str = "none"
    priv_key: str | None = None
    writable: bool = True


V3_ADMIN = V3User("labadmin", "sha", "labauth-secret", "aes", "labpriv-secret")
V3_MD5 = V3User("labmd5", "md5", "labauth-secret", "des", "labpriv-secret")
V3_READER = V3User("labreader", "sha", "labauth-secret", writable=False)
V3_USERS = (V3_ADMIN, V3_MD5, V3_READER)


ENTERPRISE_TREES = sorted({vendor.enterprise for vendor in VENDORS.values()})

type Values = dict[str, list[str]]


def oid(relative: str) -> str:
    """An OID below .1.3.6.1.4.1, written out."""
    return f"1.3.6.1.4.1.{relative}"


def unit(
    vendor: str,
    outlets: Sequence[str | int | None],
    *,
    names: bool = True,
    chain: Sequence[int] | None = None,
    sys_object_id: str | None = "",
    extra: Mapping[str, tuple[str, str | int]] | None = None,
) -> Values:
    """The objects of a `vendor` unit with these outlets (1, 2, ...).

    Each outlet is "on", "off", a raw status value, or None (the unit has no such
    outlet). `chain`: the outlets of each daisy-chained unit, in order (units 1, 2...),
    where the vendor's table spans linked units; default one unit. `sys_object_id`: ""
    the vendor's, None none at all. `extra`: more objects, {OID below .1.3.6.1.4.1:
    (type, value)}.
    """
    spec = VENDORS[vendor]
    values: Values = {}
    if sys_object_id is not None:
        values[SYS_OBJECT_ID] = [
            "objectid",
            "." + (sys_object_id or oid(spec.sys_object_id)),
        ]
    members = [
        (module, number)
        for module, size in enumerate(chain or [len(outlets)], start=1)
        for number in range(1, size + 1)
    ]
    for index, state in enumerate(outlets, start=1):
        if state is None:
            continue
        raw = spec.states.get(state, state) if isinstance(state, str) else state
        for control in spec.controls:
            if control.column != spec.status:
                now = "on" if raw == spec.on else "off"
                value = spec.control_value(control, now)
                values[oid(f"{control.column}.{index}")] = ["integer", str(value)]
        values[oid(f"{spec.status}.{index}")] = ["integer", str(raw)]
        module, number = members[index - 1]
        if names and spec.names:
            # Each unit of a chain names its own outlets "Outlet 1"...
            values[oid(f"{spec.names}.{index}")] = ["string", f"outlet {number}"]
        if spec.modules and spec.numbers:
            values[oid(f"{spec.modules}.{index}")] = ["integer", str(module)]
            values[oid(f"{spec.numbers}.{index}")] = ["integer", str(number)]
    for relative, (kind, value) in (extra or {}).items():
        values[oid(relative)] = [kind, str(value)]
    return values


@dataclass
class SnmpAgent:
    """A running snmpd and the state file of the unit it simulates."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = HOST
    read_community: str = READ_COMMUNITY
    write_community: str = WRITE_COMMUNITY
    users: tuple[V3User, ...] = V3_USERS

    @property
    def state(self) -> Path:
        """The JSON file the simulated unit lives in."""
        return self.directory / "unit.json"

    def load(self, values: Values) -> None:
        """Become this unit (and forget the writes so far)."""
        self._save(values)
        self.state.with_name(self.state.name + ".log").unlink(missing_ok=True)

    def _save(self, values: Values) -> None:
        # Atomically: the simulator reads the file for every request.
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"values": values}, indent=1), encoding="utf-8")
        tmp.replace(self.state)

    def values(self) -> Values:
        """Every object of the unit now."""
        data: Values = json.loads(self.state.read_text(encoding="utf-8"))["values"]
        return data

    def value(self, full_oid: str) -> str | None:
        """One object's value as text, None when the unit lacks it."""
        found = self.values().get(full_oid.strip("."))
        return None if found is None else found[1]

    def status(self, vendor: str, outlet: int) -> str | None:
        """What the outlet's status object reads (raw)."""
        return self.value(oid(f"{VENDORS[vendor].status}.{outlet}"))

    def put(self, full_oid: str, kind: str, value: str | int) -> None:
        """Change (or add) one object, as the unit itself would."""
        values = self.values()
        values[full_oid.strip(".")] = [kind, str(value)]
        self._save(values)

    @property
    def writes(self) -> list[str]:
        """SETs the unit accepted, in order: "OID value"."""
        log = self.state.with_name(self.state.name + ".log")
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    def snmpget(self, *oids: str, community: str = READ_COMMUNITY) -> list[str]:
        """Values as Net-SNMP's snmpget (the reference client) prints them."""
        return snmpget(self.port, *oids, community=community)

    def stop(self) -> None:
        """Terminate snmpd (its pass_persist programs end with their pipes)."""
        stop_process(self.process)


def _quiet_env() -> dict[str, str]:
    # No MIB files: the agent and snmpget work with numeric OIDs only.
    return {**os.environ, "MIBS": "", "MIBDIRS": ""}


def snmpget(port: int, *oids: str, community: str = READ_COMMUNITY) -> list[str]:
    """Values of an agent on 127.0.0.1 as Net-SNMP's snmpget (the reference client) prints them."""
    assert SNMPGET is not None
    done = subprocess.run(  # noqa: S603 - a fixed local binary
        [SNMPGET, "-v2c", "-c", community, "-On", "-Oqv", "-r0", "-t1", f"{HOST}:{port}", *oids],
        capture_output=True, check=True, timeout=10, text=True, env=_quiet_env(),
    )  # fmt: skip
    return done.stdout.splitlines()


def await_agent(
    process: subprocess.Popen[bytes],
    port: int,
    log: Path,
    *,
    community: str = READ_COMMUNITY,
    sys_object_id: str,
    timeout: float,
) -> None:
    """Return once the agent on `port` reports this sysObjectID; raise if it exits or not."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited with {process.returncode}: "
                + log.read_text(encoding="utf-8", errors="replace")[-4000:]
            )
        try:
            if snmpget(port, SYS_OBJECT_ID, community=community) == [
                f".{sys_object_id}"
            ]:
                return
        except subprocess.CalledProcessError:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"{process.args[0]} does not answer on {HOST}:{port}")
        time.sleep(0.05)


def snmpd_config(agent_port: int, state: Path, sys_object_id: str) -> str:
    """snmpd.conf: access for the communities and v3 users, the simulator's trees."""
    program = f"{sys.executable} {SIM} {state}"
    lines = [
        f"agentAddress udp:{HOST}:{agent_port}",
        f"rocommunity {READ_COMMUNITY} {HOST}",
        f"rwcommunity {WRITE_COMMUNITY} {HOST}",
        f"sysName {SYS_NAME}",
        f"sysObjectID .{sys_object_id}",
    ]
    for user in V3_USERS:
        priv = f" {user.priv_protocol.upper()} {user.priv_key}" if user.priv_key else ""
        lines.append(
            f"createUser {user.name} {user.auth_protocol.upper()} {user.auth_key}{priv}"
        )
        level = "priv" if user.priv_key else "auth"
        lines.append(f"{'rwuser' if user.writable else 'rouser'} {user.name} {level}")
    # Priority 1 beats snmpd's own system group (127): the unit's state decides sysObjectID.
    lines.append(f"pass_persist -p 1 .{SYS_OBJECT_ID[:-2]} {program}")
    lines.extend(
        f"pass_persist .1.3.6.1.4.1.{tree} {program}" for tree in ENTERPRISE_TREES
    )
    return "\n".join(lines) + "\n"


def start_snmpd(
    directory: Path, *, sys_object_id: str = oid("8072.3.2.10"), timeout: float = 10.0
) -> SnmpAgent:
    """Start snmpd on a free UDP port with an empty unit; return once it answers."""
    with sockets_allowed():
        port = free_port(socket.SOCK_DGRAM)
    persistent = directory / "persist"
    persistent.mkdir(exist_ok=True)
    config = directory / "snmpd.conf"
    agent_state = directory / "unit.json"
    config.write_text(snmpd_config(port, agent_state, sys_object_id), encoding="utf-8")
    log = directory / "snmpd.log"
    process = subprocess.Popen(  # noqa: S603 - a fixed local binary
        [SNMPD, "-f", "-Lf", str(log), "-I", "-smux", "-C", "-c", str(config), f"--persistentDir={persistent}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=_quiet_env(),
    )  # fmt: skip
    agent = SnmpAgent(directory, port, process)
    agent.load({SYS_OBJECT_ID: ["objectid", "." + sys_object_id]})
    await_agent(process, port, log, sys_object_id=sys_object_id, timeout=timeout)
    return agent


@pytest.fixture(scope="session")
def snmpd_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpAgent]:
    """One snmpd for the whole session."""
    if SNMPGET is None or not Path(SNMPD).exists():
        pytest.skip("needs Debian's snmpd and snmp (snmpget)")
    agent = start_snmpd(tmp_path_factory.mktemp("snmpd"))
    yield agent
    agent.stop()


@pytest.fixture
def snmp_agent(snmpd_agent: SnmpAgent) -> SnmpAgent:
    """The session's snmpd as a unit without outlets (sysObjectID of Net-SNMP)."""
    snmpd_agent.load({SYS_OBJECT_ID: ["objectid", "." + oid("8072.3.2.10")]})
    return snmpd_agent
