"""A Home Assistant as it runs in production, and the table the benchmarks print."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
import platform
from typing import Any

from homeassistant.const import __version__ as ha_version
import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Log warnings and errors only, as Home Assistant does unless run verbose."""
    logging.getLogger().setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
async def enable_event_loop_debug() -> None:
    """Keep the event loop out of debug mode (the test plugin turns it on: slow)."""


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """A temporary configuration folder: storage is really written, as in production."""
    return hass_tmp_config_dir


@pytest.fixture
def hass_storage() -> dict[str, Any]:
    """Real storage instead of the test plugin's mock (which re-parses every write)."""
    return {}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    order: int
    measure: str
    value: str
    baseline: str
    ratio: str
    target: str
    verdict: str


ROWS: list[Row] = []
# Wall and CPU seconds of the benchmark thread over the timed sections.
CPU_SHARE = [0.0, 0.0]
HEADER = ("measure", "labpower", "baseline (same run)", "ratio", "target / notes", "")


@pytest.fixture
def report() -> list[Row]:
    """Where the benchmarks put their results."""
    return ROWS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the table of results at the end of the run."""
    if not ROWS:
        return
    rows = [HEADER] + [
        (r.measure, r.value, r.baseline, r.ratio, r.target, r.verdict)
        for r in sorted(ROWS, key=lambda r: r.order)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    write = terminalreporter.write_line
    write("")
    write(
        f"labpower benchmarks: Python {platform.python_version()}, "
        f"Home Assistant {ha_version}, {os.cpu_count()} CPUs"
    )
    for index, row in enumerate(rows):
        write(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
        )
        if index == 0:
            write("  ".join("-" * width for width in widths))
    wall, cpu = CPU_SHARE
    if wall:
        share = cpu / wall
        write(
            f"The benchmark thread was on a CPU {share:.0%} of the timed wall time"
            + ("." if share >= 0.9 else ": other load on this machine, rates are low.")
        )
