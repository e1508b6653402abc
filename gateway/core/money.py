"""Exact money and exact rational rounding.

Points are plain ``int``. Money is an integer amount of minor units plus an ISO 4217 code.
Every conversion goes through :func:`round_ratio`, which names its rounding: there is no
implicit rounding anywhere in the domain, and no float ever touches a point or a minor unit.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Rounding(enum.StrEnum):
    """How an exact ratio becomes an integer. FLOOR never creates points from nothing on earn;
    CEIL is used for what a price costs in points."""

    FLOOR = "floor"
    CEIL = "ceil"
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"


def round_ratio(value: Fraction, rounding: Rounding) -> int:
    """Round an exact rational to an integer with the named rounding (negative values too)."""
    if value < 0 and rounding in (Rounding.HALF_UP, Rounding.HALF_EVEN):
        return -round_ratio(-value, rounding)  # symmetric: HALF_UP rounds ties away from zero
    num, den = value.numerator, value.denominator
    if rounding is Rounding.FLOOR:
        return num // den
    if rounding is Rounding.CEIL:
        return -((-num) // den)
    floor = num // den
    remainder = value - floor
    half = Fraction(1, 2)
    if remainder > half:
        return floor + 1
    if remainder < half:
        return floor
    if rounding is Rounding.HALF_UP:
        return floor + 1
    return floor if floor % 2 == 0 else floor + 1


def parse_ratio(text: str | int | Decimal | Fraction) -> Fraction:
    """An exact ratio from a decimal string (``"1.5"``), a fraction string (``"3/2"``) or an int.

    Floats are refused on purpose: ``0.1`` is not an exact number."""
    if isinstance(text, bool | float):
        raise TypeError("ratios must be exact: give a string like '1.5', not a float")
    if isinstance(text, Fraction):
        return text
    if isinstance(text, int | Decimal):
        return Fraction(text)
    return Fraction(text.strip())


def check_currency(code: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
        raise ValueError(f"currency must be an ISO 4217 code of 3 capital letters, got {code!r}")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units (cents, kopiykas) of one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int")
        check_currency(self.currency)

    def __str__(self) -> str:
        sign = "-" if self.amount_minor < 0 else ""
        whole, minor = divmod(abs(self.amount_minor), 100)
        return f"{sign}{whole}.{minor:02d} {self.currency}"
