"""Numbers in messages as people write them."""

from __future__ import annotations

import pytest

from custom_components.labpower.core.text import amount, duration


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (31536000.0, "31536000"),
        (1e6, "1000000"),
        (2.5, "2.5"),
        (0.0001, "0.0001"),
        (1e-7, "0.0000001"),
        (-5.0, "-5"),
        (0, "0"),
    ],
)
def test_amount_is_never_in_exponent_form(number: float, text: str) -> None:
    assert amount(number) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90, "90 s"),
        (0.5, "0.5 s"),
        (86400, "86400 s (1 day)"),
        (31536000.0, "31536000 s (365 days)"),
        (90000, "90000 s"),
    ],
)
def test_duration_names_whole_days(seconds: float, text: str) -> None:
    assert duration(seconds) == text
