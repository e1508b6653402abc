"""Welch's t interval for a difference in mean spend, exact up to the two irrational steps.

A group is summarised by three integers: its size ``n``, the sum of its members' spends ``Σx``
and the sum of their squares ``Σx²`` (minor units; Python integers, so never an overflow). From
them the means, the sample variances ``(nΣx² - (Σx)²) / (n(n-1))``, the squared standard error
``s₁²/n₁ + s₂²/n₂`` and the Welch-Satterthwaite degrees of freedom
``(s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁-1) + (s₂²/n₂)²/(n₂-1))`` are exact ``Fraction``\\s. Only
the square root of the standard error (``Decimal`` at 40 digits) and the t quantile (Student's
t distribution's inverse CDF, by bisection on the regularized incomplete beta function in
binary floating point, good to about 1e-12) are not exact; the interval is
``difference ± t₀.₉₇₅(df) · √(s₁²/n₁ + s₂²/n₂)``, then rounded half-even to 0.01 of a minor
unit. The method is the usual one for two groups of unequal size and variance (B. L. Welch,
"The generalization of Student's problem when several different population variances are
involved", Biometrika 34, 1947); a group of fewer than two members gives no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Moments:
    """One group's spend: members, Σx and Σx² in minor units (exact integers)."""

    n: int = 0
    total: int = 0
    squares: int = 0

    def add(self, x: int) -> Moments:
        return Moments(self.n + 1, self.total + x, self.squares + x * x)

    @property
    def mean(self) -> Fraction | None:
        return Fraction(self.total, self.n) if self.n else None

    @property
    def variance(self) -> Fraction | None:
        """The sample variance (n - 1 in the denominator), exact."""
        if self.n < 2:
            return None
        return Fraction(self.n * self.squares - self.total * self.total, self.n * (self.n - 1))


@dataclass(frozen=True, slots=True)
class Interval:
    """A difference of means (treated minus holdout) and its 95 % Welch interval, in minor
    units rounded to 0.01; ``low``/``high`` None when a group has fewer than two members."""

    difference: Decimal | None
    low: Decimal | None
    high: Decimal | None
    degrees_of_freedom: Decimal | None
    t_quantile: Decimal | None

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def decimal(value: Fraction, places: Decimal = CENT) -> Decimal:
    """An exact ratio as a decimal, rounded half-even at ``places`` (once)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            places, rounding=ROUND_HALF_EVEN)


def welch(treated: Moments, holdout: Moments, confidence: float = 0.95) -> Interval:
    """The difference ``mean(treated) - mean(holdout)`` and its Welch t interval."""
    if treated.mean is None or holdout.mean is None:
        return Interval(None, None, None, None, None)
    diff = treated.mean - holdout.mean
    vt, vh = treated.variance, holdout.variance
    if vt is None or vh is None:
        return Interval(decimal(diff), None, None, None, None)
    a, b = vt / treated.n, vh / holdout.n
    se2 = a + b
    if se2 == 0:  # both groups constant: the difference is known exactly
        return Interval(decimal(diff), decimal(diff), decimal(diff), None, None)
    df = se2 * se2 / (a * a / (treated.n - 1) + b * b / (holdout.n - 1))
    t = t_quantile(1 - (1 - confidence) / 2, float(df))
    with localcontext() as ctx:
        ctx.prec = 40
        se = (Decimal(se2.numerator) / Decimal(se2.denominator)).sqrt()
        half = Decimal(repr(t)) * se
        centre = Decimal(diff.numerator) / Decimal(diff.denominator)
        low, high = centre - half, centre + half
    return Interval(decimal(diff), low.quantize(CENT, ROUND_HALF_EVEN),
                    high.quantize(CENT, ROUND_HALF_EVEN), decimal(df),
                    Decimal(repr(t)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN))


# --- Student's t distribution ------------------------------------------------------------------
def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df > 0, not necessarily whole)."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0.5 < p < 1), by bisection to 1e-12."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    while high - low > 1e-12 * max(1.0, high):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0
