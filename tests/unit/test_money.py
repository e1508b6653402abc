"""Exact rounding and money values (gateway.core.money)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from gateway.core.money import Money, Rounding, check_currency, parse_ratio, round_ratio

CASES = ["5/2", "7/2", "-5/2", "-7/2", "1/3", "2/3", "-1/3", "-2/3", "4", "-4", "0"]
EXPECTED = {
    Rounding.FLOOR: [2, 3, -3, -4, 0, 0, -1, -1, 4, -4, 0],
    Rounding.CEIL: [3, 4, -2, -3, 1, 1, 0, 0, 4, -4, 0],
    # HALF_UP breaks ties away from zero (-2.5 -> -3), as decimal.ROUND_HALF_UP does.
    Rounding.HALF_UP: [3, 4, -3, -4, 0, 1, 0, -1, 4, -4, 0],
    Rounding.HALF_EVEN: [2, 4, -2, -4, 0, 1, 0, -1, 4, -4, 0],
}


@pytest.mark.parametrize("rounding", list(Rounding))
def test_round_ratio_every_mode(rounding: Rounding) -> None:
    got = [round_ratio(Fraction(c), rounding) for c in CASES]
    assert got == EXPECTED[rounding]


def test_round_ratio_ties_and_near_ties() -> None:
    assert round_ratio(Fraction(1, 2), Rounding.HALF_EVEN) == 0
    assert round_ratio(Fraction(3, 2), Rounding.HALF_EVEN) == 2
    assert round_ratio(Fraction(1, 2), Rounding.HALF_UP) == 1
    assert round_ratio(Fraction(-1, 2), Rounding.HALF_EVEN) == 0
    assert round_ratio(Fraction(499_999, 1_000_000), Rounding.HALF_UP) == 0
    assert round_ratio(Fraction(500_001, 1_000_000), Rounding.HALF_EVEN) == 1


def test_parse_ratio_accepts_exact_forms() -> None:
    assert parse_ratio("1.5") == Fraction(3, 2)
    assert parse_ratio(" 3/2 ") == Fraction(3, 2)
    assert parse_ratio("0.1") == Fraction(1, 10)
    assert parse_ratio(2) == Fraction(2)
    assert parse_ratio(Decimal("0.25")) == Fraction(1, 4)
    assert parse_ratio(Fraction(2, 3)) == Fraction(2, 3)


@pytest.mark.parametrize("bad", [0.1, 1.5, True])
def test_parse_ratio_refuses_floats_and_bools(bad: object) -> None:
    with pytest.raises(TypeError, match="exact"):
        parse_ratio(bad)  # type: ignore[arg-type]


def test_parse_ratio_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_ratio("one and a half")


def test_money_str_and_validation() -> None:
    assert str(Money(120_000, "UAH")) == "1200.00 UAH"
    assert str(Money(-5, "EUR")) == "-0.05 EUR"
    assert Money(100, "EUR") == Money(100, "EUR")
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(100, "eur")
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(100, "EURO")
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "EUR")
    assert check_currency("UAH") == "UAH"


def test_check_currency_refuses_trailing_newline() -> None:
    with pytest.raises(ValueError):
        check_currency("EUR\n")
