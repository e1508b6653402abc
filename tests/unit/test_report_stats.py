"""The uplift statistics (gateway.reports.stats) and the holdout choice
(gateway.promotions.holdout): t quantiles against published tables, Welch's interval against a
worked example, exactness in integers, and the holdout's determinism and uniformity."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from gateway.promotions.holdout import bucket, held_out
from gateway.reports.stats import Moments, decimal, t_quantile, welch


@pytest.mark.parametrize(("df", "expected"), [
    (1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (30, 2.0423), (120, 1.9799),
    (10**7, 1.9600)])
def test_t_quantile_matches_the_tables(df: float, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-5)


def _moments(xs: list[int]) -> Moments:
    m = Moments()
    for x in xs:
        m = m.add(x)
    return m


def test_welch_interval_worked_example() -> None:
    # treated 10, 12, 14, 16 (mean 13, s² 20/3); holdout 8, 9, 10 (mean 9, s² 1)
    treated, holdout = _moments([10, 12, 14, 16]), _moments([8, 9, 10])
    assert treated.variance == Fraction(20, 3) and holdout.variance == 1
    se2 = Fraction(20, 3) / 4 + Fraction(1, 3)  # 2
    df = se2 ** 2 / ((Fraction(20, 3) / 4) ** 2 / 3 + Fraction(1, 3) ** 2 / 2)
    interval = welch(treated, holdout)
    assert interval.difference == Decimal("4.00")
    assert interval.degrees_of_freedom == decimal(df)  # exact, rounded once
    half = t_quantile(0.975, float(df)) * float(se2) ** 0.5
    assert interval.low == Decimal(f"{4 - half:.2f}")
    assert interval.high == Decimal(f"{4 + half:.2f}")
    assert interval.excludes_zero


def test_welch_is_exact_with_huge_minor_units() -> None:
    """Σx² of ten-billion-unit spends is past 2⁶³: Python integers keep it exact."""
    big = 10**10
    treated, holdout = _moments([big + 2, big + 4]), _moments([big, big + 2])
    assert treated.squares > 2**63
    assert treated.variance == 2 and holdout.variance == 2
    assert welch(treated, holdout).difference == Decimal("2.00")


def test_too_few_members_give_no_interval() -> None:
    interval = welch(_moments([5]), _moments([1, 2]))
    assert interval.difference == Decimal("3.50") and interval.low is None
    assert welch(Moments(), _moments([1, 2])).difference is None


def test_holdout_is_deterministic_independent_and_uniform() -> None:
    assert bucket("c1", "m1") == bucket("c1", "m1")
    assert not held_out("c1", "m1", 0)
    members = [f"mem_{i}" for i in range(20_000)]
    held = sum(held_out("grocery:summer", m, 10) for m in members)
    assert 1_800 <= held <= 2_200  # 10 % of 20,000 (sd ≈ 42)
    other = {m for m in members if held_out("grocery:autumn", m, 10)}
    both = sum(1 for m in members if held_out("grocery:summer", m, 10) and m in other)
    assert 140 <= both <= 260  # independent campaigns: ≈ 1 % of members held out of both
    buckets = [0] * 10
    for m in members:
        buckets[bucket("x", m) // 1000] += 1
    assert all(1_800 <= b <= 2_200 for b in buckets)
