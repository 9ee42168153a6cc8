"""Lab file benchmark: parse, expand and check a lab file of 5,000 resources.

Run with scripts/benchmark (or scripts/benchmark -k labfile). The time is printed next to
a baseline measured in the same run on the same text: PyYAML loading it into plain Python
objects (libyaml's C loader, the one the lab file uses, and the pure-Python safe_load),
which checks nothing and expands nothing. Timings are reported, never asserted; what is
asserted is that the file was really expanded and checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import time

import pytest
import yaml

from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import ResourcePolicy
from custom_components.labpower.labfile import (
    LabFile,
    LabFileError,
    load_lab_file,
    parse_lab_file,
)
from custom_components.labpower.labyaml import read_yaml
from tests.core.fakes import FakeClock, FakeFeed

from .conftest import Row

TARGET_SECONDS = 2.0
ROUNDS = 5

# The generated lab: 10 core switches (each on two PDU outlets), 90 top-of-rack switches,
# 900 Pi-style stacks on 36 PDUs of 25 outlets, and 4,000 nodes. Every node depends on a
# stack, every stack on a top-of-rack switch, every one of those on a core switch: chains
# of three dependencies. Half the nodes, and all the stacks, come from ranged entries;
# the other half of the nodes is written out one by one (the YAML parser's worst case).
CORES, TORS, STACKS, NODES_WRITTEN, NODES_RANGED = 10, 90, 900, 2000, 2000
RESOURCES = CORES + TORS + STACKS + NODES_WRITTEN + NODES_RANGED


def lab_text() -> str:
    """The YAML of the generated lab."""
    lines = [
        "version: 1",
        "units:",
        "  - name: cpdu[1-2]",
        "    vendor: netio",
        "    host: 10.0.0.[1-2]",
        "    outlet_count: 12",
        "    ups_entity: sensor.ups1_status",
        "  - name: pdu[01-36]",
        "    vendor: snmp",
        "    host: 10.0.1.[1-36]",
        "    community: private",
        "    outlet_count: 25",
        "defaults:",
        "  off_delay: 600",
        "  max_ttl: 28800",
        "policies:",
        "  max_parallel_on: 8",
        "  per_unit_parallel_on: 2",
        "  on_spacing: 0.5",
        "  shed_idle_on_battery: true",
        "resources:",
    ]
    for core in range(1, CORES + 1):
        lines += [
            f"  - name: core{core:02d}",
            f"    outlets: [cpdu1:{core}, cpdu2:{core}]",
            f"    host: 10.0.2.{core}",
            "    labels: [network, core]",
        ]
    for tor in range(1, TORS + 1):
        lines += [
            f"  - name: tor{tor:03d}",
            f"    power_entity: switch.tor{tor:03d}_power",
            f"    host: 10.0.3.{tor}",
            f"    depends_on: core{(tor - 1) // 9 + 1:02d}",
            "    labels: [network]",
        ]
    for block in range(STACKS // 100):
        first = 100 * block + 1
        lines += [
            f"  - name: stack[{first:04d}-{first + 99:04d}]",
            f"    outlet: pdu[{4 * block + 1:02d}-{4 * block + 4:02d}]:[1-25]",
            f"    host: 10.1.{block}.[1-100]",
            f"    depends_on: tor[{10 * block + 1:03d}-{10 * block + 10:03d}]*10",
            "    labels: [stacks]",
            "    power_w: 40",
        ]
    for node in range(1, NODES_WRITTEN + 1):
        lines += [
            f"  - name: node-a{node:04d}",
            f"    power_entity: switch.node_a{node:04d}_usb",
            f"    host: 10.2.{node // 250}.{node % 250 + 1}",
            "    port: 22",
            f"    depends_on: [stack{(node - 1) % STACKS + 1:04d}]",
            "    labels: [nodes, written]",
            "    start_timeout: 120",
        ]
    for block in range(NODES_RANGED // 100):
        first = 100 * block + 1
        stack = 25 * block + 1
        lines += [
            f"  - name: node-b[{first:04d}-{first + 99:04d}]",
            f"    power_entity: switch.node_b[{first:04d}-{first + 99:04d}]_usb",
            f"    host: 10.3.{block}.[1-100]",
            "    port: 22",
            f"    depends_on: stack[{stack:04d}-{stack + 24:04d}]*4",
            "    labels: [nodes, ranged]",
            "    start_timeout: 120",
        ]
    return "\n".join(lines) + "\n"


def best_of(rounds: int, work: Callable[[], object]) -> float:
    """The shortest wall time of `rounds` calls of `work` (seconds)."""
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def load_into_lab(lab_file: LabFile) -> Lab:
    """What a lab does with the file's resources: one spec each, all added at once.

    The feeds are fakes: building Home Assistant's entities is the entry setup that
    benchmarks/test_bench.py measures.
    """
    lab = Lab(clock=FakeClock(), listener=lambda event: None)
    lab.add_all(
        ResourceSpec(
            name=data["name"],
            feeds=tuple(FakeFeed(name=data["name"]) for _ in data.get("outlets", [1])),
            policy=ResourcePolicy(
                off_delay=data["off_delay"],
                min_off_time=data["min_off_time"],
                start_timeout=data["start_timeout"],
                stop_timeout=data["stop_timeout"],
                default_ttl=data["default_ttl"],
                max_ttl=data["max_ttl"],
                graceful_off=data["graceful_off"],
            ),
            labels=frozenset(data.get("labels", ())),
            depends_on=tuple(data.get("depends_on", ())),
        )
        for data in lab_file.resources
    )
    return lab


def check_lab(lab: LabFile) -> None:
    """The file was expanded and checked: every resource, wired as written."""
    assert len(lab.resources) == RESOURCES
    assert len(lab.units) == 38
    by_name = {data["name"]: data for data in lab.resources}
    assert by_name["core03"]["outlets"] == [
        "cpdu1:3",
        "cpdu2:3",
    ]
    assert by_name["tor010"]["depends_on"] == ["core02"]
    assert by_name["stack0126"]["outlets"] == ["pdu06:1"]
    assert by_name["stack0126"]["depends_on"] == ["tor013"]
    assert by_name["stack0126"]["host"] == "10.1.1.26"
    assert by_name["node-a0901"]["depends_on"] == ["stack0001"]
    assert by_name["node-b0105"]["depends_on"] == ["stack0027"]
    assert by_name["node-b0105"]["power_entity"] == "switch.node_b0105_usb"
    assert by_name["node-b0105"]["checker_type"] == "tcp"


def test_labfile_load(tmp_path: Path, report: list[Row]) -> None:
    """Parse+expand+check 5,000 resources, against loading the same YAML unchecked."""
    text = lab_text()
    path = tmp_path / "labpower.yaml"
    path.write_text(text, encoding="utf-8")
    check_lab(parse_lab_file(text))
    check_lab(load_lab_file(path))
    # A file with a mistake is refused with its line, as fast.
    broken = text.replace("depends_on: [stack0007]", "depends_on: [stack9999]")
    with pytest.raises(LabFileError, match=r"line \d+: depends_on: no resource"):
        parse_lab_file(broken)

    assert len(load_into_lab(parse_lab_file(text)).names) == RESOURCES
    ours = best_of(ROUNDS, lambda: parse_lab_file(text))
    loaded = best_of(ROUNDS, lambda: load_into_lab(load_lab_file(path)))
    from_disk = best_of(ROUNDS, lambda: load_lab_file(path))
    # labyaml's share: the bounded YAML read with lines (no expansion, no checks).
    root, problem = read_yaml(text, {}, time.monotonic() + 60)
    assert problem is None
    assert NODES_WRITTEN < len(root["resources"]) < RESOURCES  # ranges not expanded
    read = best_of(ROUNDS, lambda: read_yaml(text, {}, time.monotonic() + 60))
    c_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    c_load = best_of(ROUNDS, lambda: yaml.load(text, Loader=c_loader))  # noqa: S506
    py_load = best_of(2, lambda: yaml.safe_load(text))

    ratio = ours / c_load
    lines = text.count("\n")
    report += [
        Row(
            30,
            f"Lab file: parse+expand+check {RESOURCES:,} resources",
            f"{ours:.3f} s",
            f"yaml CSafeLoader load {c_load:.3f} s",
            f"{ratio:.2f}",
            f"<= {TARGET_SECONDS:g} s",
            "ok" if ours <= TARGET_SECONDS else "MISSED",
        ),
        Row(
            30,
            f"Lab file: read, expand and load {RESOURCES:,} resources into a Lab",
            f"{loaded:.3f} s",
            f"yaml CSafeLoader load {c_load:.3f} s",
            f"{loaded / c_load:.2f}",
            f"<= {TARGET_SECONDS:g} s",
            "ok" if loaded <= TARGET_SECONDS else "MISSED",
        ),
        Row(
            31,
            "  (load_lab_file from disk)",
            f"{from_disk:.3f} s",
            f"yaml.safe_load {py_load:.3f} s",
            f"{from_disk / py_load:.2f}",
            f"{lines:,} lines, {len(text) / 1024:,.0f} KiB",
            "",
        ),
        Row(
            31,
            "  (labyaml.read_yaml: bounded, every value with its line)",
            f"{read:.3f} s",
            f"yaml CSafeLoader load {c_load:.3f} s",
            f"{read / c_load:.2f}",
            "the reader's share",
            "",
        ),
        Row(
            32,
            "  (per resource)",
            f"{ours / RESOURCES * 1e6:.0f} us",
            f"{c_load / RESOURCES * 1e6:.0f} us",
            "",
            f"best of {ROUNDS}",
            "",
        ),
    ]
