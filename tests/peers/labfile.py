"""The lab file's tests: texts, parsing helpers and the documented example."""

from __future__ import annotations

from pathlib import Path
import re
import textwrap
from typing import Any

import pytest

from custom_components.labpower.labfile import LabFile, LabFileError, parse_lab_file

DOCS = Path(__file__).parents[2] / "docs" / "labfile.md"
SECRETS = {
    "pdu1_password": "pdu-secret",
    "pdu2_community": "private",
    "build1_bmc_password": "bmc-secret",
}
UNITS = """\
units:
  - name: pdu1
    vendor: netio
    host: 10.0.0.5
    outlet_count: 8
  - name: pdu2
    vendor: gude
    host: 10.0.0.6
"""


def with_units(text: str) -> str:
    """UNITS, then the dedented text."""
    return UNITS + textwrap.dedent(text)


def parse(text: str, **kwargs: Any) -> LabFile:
    """Parse dedented text."""
    return parse_lab_file(textwrap.dedent(text), **kwargs)


def problems(text: str, **kwargs: Any) -> list[tuple[int | None, str]]:
    """The (line, message) of every problem in dedented text, which must have some."""
    with pytest.raises(LabFileError) as caught:
        parse(text, **kwargs)
    return [(problem.line, problem.message) for problem in caught.value.errors]


def one_problem(text: str, **kwargs: Any) -> tuple[int | None, str]:
    """The only problem in dedented text."""
    found = problems(text, **kwargs)
    assert len(found) == 1, found
    return found[0]


def docs_example() -> str:
    """The complete example of docs/labfile.md."""
    docs = DOCS.read_text(encoding="utf-8")
    section = docs.split("## A complete example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def by_name(lab: LabFile) -> dict[str, dict[str, Any]]:
    """The lab's resources by name."""
    return {data["name"]: data for data in lab.resources}
