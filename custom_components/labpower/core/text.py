"""Numbers in messages, as people write them (31536000 s, not 3.1536e+07 s)."""

from __future__ import annotations

from decimal import Decimal

_DAY = 86400


def amount(number: float) -> str:
    """A number as written: 31536000, 2.5, 0.0001 (never in exponent form)."""
    if number == int(number):
        return str(int(number))
    return format(Decimal(repr(float(number))), "f")


def duration(seconds: float) -> str:
    """Seconds as written: `90 s`, `0.5 s`, `31536000 s (365 days)` for whole days."""
    text = f"{amount(seconds)} s"
    days, rest = divmod(seconds, _DAY)
    if days >= 1 and not rest:
        text += f" ({int(days)} day{'' if days == 1 else 's'})"
    return text
