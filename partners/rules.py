"""The pure conversion-rule engine: purchase facts in, points (and the reasons) out.

No database, clock or I/O: the caller picks the rule version in force and passes what the member
already earned today. All arithmetic is on exact ``Fraction``s and a purchase is rounded exactly
once, with the rule's rounding, so splitting a basket into lines never creates or loses points
through intermediate rounding. Every quote carries an explanation a partner's developer can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from gateway.core.errors import (
    CapExceeded,
    InvalidAmount,
    InvalidInput,
    RedemptionNotAccepted,
    RuleNotInForce,
)
from gateway.core.money import Rounding, round_ratio
from partners.config import BurnRule, Channel, EarnRule, RuleVersion


@dataclass(frozen=True, slots=True)
class LineItem:
    amount_minor: int
    category: str | None = None
    quantity_milli: int | None = None  # 1000 = one litre / one unit
    sku: str | None = None  # the partner's product code (campaign conditions and multipliers)


@dataclass(frozen=True, slots=True)
class PurchaseFacts:
    amount_minor: int
    currency: str  # checked against the partner's currency by the caller
    channel: Channel
    lines: tuple[LineItem, ...] = ()  # empty: the whole amount is one uncategorised line


@dataclass(frozen=True, slots=True)
class CheckedPurchase:
    """A purchase that passed :func:`check_purchase`, with the lines it prices: made once by
    the request's checks, so quoting it does not check it again."""

    facts: PurchaseFacts
    lines: tuple[LineItem, ...]


@dataclass(frozen=True, slots=True)
class EarnQuote:
    points: int
    uncapped_points: int  # after rounding, before min spend and caps
    capped_by: str | None  # "min_spend" | "transaction_cap" | "daily_cap" | None
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BurnQuote:
    points: int
    value_minor: int  # what the points pay, floor, in the partner's minor units
    max_points: int  # the most points this basket accepts
    explanation: tuple[str, ...]


def _money(amount_minor: int, currency: str) -> str:
    sign = "-" if amount_minor < 0 else ""
    whole, minor = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{minor:02d} {currency}"


def _num(value: Fraction) -> str:
    """An exact number for humans: ``120``, ``123.45``, or ``≈0.3333`` when no short decimal."""
    for digits in range(7):
        scaled = value * 10**digits
        if scaled.denominator == 1:
            return _fixed(scaled.numerator, digits)
    return "≈" + _fixed(round_ratio(value * 10**4, Rounding.HALF_EVEN), 4)


def _fixed(scaled: int, digits: int) -> str:
    if digits == 0:
        return str(scaled)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def _pts(n: int | Fraction) -> str:
    return f"{_num(Fraction(n))} point{'' if n == 1 else 's'}"


def _earn_rule(rule: RuleVersion) -> EarnRule:
    if rule.earn is None:
        raise RuleNotInForce(
            f"partner {rule.partner_id!r} does not issue points (rule version {rule.version})"
        )
    return rule.earn


def _burn_rule(rule: RuleVersion) -> BurnRule:
    if rule.burn is None:
        raise RedemptionNotAccepted(
            f"partner {rule.partner_id!r} does not accept points (rule version {rule.version})"
        )
    return rule.burn


def check_purchase(purchase: PurchaseFacts) -> tuple[LineItem, ...]:
    """The purchase's own checks (amounts positive, lines adding up), no rule needed."""
    if purchase.amount_minor <= 0:
        raise InvalidAmount(
            f"amount must be positive, got {purchase.amount_minor} minor units", field="amount"
        )
    if not purchase.lines:
        return (LineItem(purchase.amount_minor),)
    for i, line in enumerate(purchase.lines):
        if line.amount_minor <= 0 or (line.quantity_milli is not None and line.quantity_milli <= 0):
            raise InvalidAmount(f"line {i}: amount and quantity must be positive", field="lines")
    total = sum(line.amount_minor for line in purchase.lines)
    if total != purchase.amount_minor:
        raise InvalidInput(
            f"lines sum to {total} minor units but amount is {purchase.amount_minor}",
            field="lines",
        )
    return purchase.lines


def checked_purchase(purchase: PurchaseFacts) -> CheckedPurchase:
    """:func:`check_purchase`, keeping its outcome for :func:`quote_earn`."""
    return CheckedPurchase(purchase, check_purchase(purchase))


def _line_points(earn: EarnRule, line: LineItem, label: str, currency: str) -> tuple[Fraction, str]:
    by_quantity = {q.category: q for q in earn.quantity_earn}
    q = by_quantity.get(line.category) if line.category is not None else None
    if q is not None and line.quantity_milli is not None:
        raw = Fraction(line.quantity_milli * q.points, q.per_quantity_milli)
        text = (
            f"{label}quantity {_fixed(line.quantity_milli, 3)} at {_pts(q.points)} per "
            f"{_fixed(q.per_quantity_milli, 3)} = {_pts(raw)}"
        )
    else:
        raw = Fraction(line.amount_minor * earn.points, earn.per_amount_minor)
        text = (
            f"{label}{_money(line.amount_minor, currency)} at {_pts(earn.points)} per "
            f"{_money(earn.per_amount_minor, currency)} = {_pts(raw)}"
        )
    multiplier = earn.category_multipliers.get(line.category or "", Fraction(1))
    if multiplier != 1:
        raw *= multiplier
        text += f", {line.category} ×{_num(multiplier)} → {_num(raw)}"
    return raw, text


def quote_earn(rule: RuleVersion, purchase: PurchaseFacts | CheckedPurchase, *,
               earned_today: int = 0) -> EarnQuote:
    """Points a purchase earns under ``rule``: lines, multipliers, one rounding, then caps. A
    :class:`CheckedPurchase` is not checked again."""
    earn = _earn_rule(rule)
    if earned_today < 0:
        raise ValueError(f"earned_today must be >= 0, got {earned_today}")
    checked = purchase if isinstance(purchase, CheckedPurchase) else checked_purchase(purchase)
    purchase, lines = checked.facts, checked.lines
    explanation: list[str] = []
    total = Fraction(0)
    for i, line in enumerate(lines):
        label = ""
        if purchase.lines:
            label = f"line {i + 1} ({line.category}): " if line.category else f"line {i + 1}: "
        raw, text = _line_points(earn, line, label, purchase.currency)
        total += raw
        explanation.append(text)
    if len(lines) > 1:
        explanation.append(f"lines total {_num(total)}")
    channel_multiplier = earn.channel_multipliers.get(purchase.channel.value, Fraction(1))
    if channel_multiplier != 1:
        total *= channel_multiplier
        explanation.append(
            f"{purchase.channel.value} channel ×{_num(channel_multiplier)} → {_num(total)}"
        )
    points = round_ratio(total, earn.rounding)
    if total.denominator != 1:
        explanation.append(f"rounded ({earn.rounding.value}) → {_pts(points)}")
    uncapped = points
    capped_by: str | None = None
    if purchase.amount_minor < earn.min_spend_minor:
        points, capped_by = 0, "min_spend"
        explanation.append(
            f"below the minimum spend of {_money(earn.min_spend_minor, purchase.currency)} → 0"
        )
    cap = earn.cap_per_transaction
    if cap is not None and points > cap:
        points, capped_by = cap, "transaction_cap"
        explanation.append(f"capped at {cap} per transaction")
    daily = earn.cap_per_member_daily
    if daily is not None and points > max(0, daily - earned_today):
        points, capped_by = max(0, daily - earned_today), "daily_cap"
        explanation.append(
            f"capped at {daily} per member per day ({earned_today} earned today) → {points}"
        )
    return EarnQuote(points, uncapped, capped_by, tuple(explanation))


def _max_points(burn: BurnRule, basket_amount_minor: int) -> tuple[int, int]:
    """(largest payable value, largest points whose floor value does not exceed it)."""
    max_value = round_ratio(basket_amount_minor * burn.max_basket_share, Rounding.FLOOR)
    # floor(p * v) <= M  ⇔  p * v < M + 1  ⇔  p < (M + 1) / v
    return max_value, round_ratio((max_value + 1) / burn.point_value_minor, Rounding.CEIL) - 1


def quote_burn(rule: RuleVersion, *, points: int, basket_amount_minor: int) -> BurnQuote:
    """What ``points`` pay towards a basket, refusing what the rule does not allow."""
    burn = _burn_rule(rule)
    if points <= 0:
        raise InvalidAmount(f"points must be positive, got {points}", field="points")
    if points < burn.min_points:
        raise InvalidAmount(
            f"at least min_points={burn.min_points} points per redemption; got {points}",
            field="points",
        )
    if basket_amount_minor <= 0:
        raise InvalidAmount(
            f"basket amount must be positive, got {basket_amount_minor} minor units",
            field="basketAmount",
        )
    max_value, max_points = _max_points(burn, basket_amount_minor)
    if points > max_points:
        raise CapExceeded(
            f"this basket accepts at most {max_points} points "
            f"({_num(burn.max_basket_share * 100)}% of the basket); {points} requested",
            cap=max_points,
            field="points",
        )
    value = round_ratio(points * burn.point_value_minor, Rounding.FLOOR)
    explanation = (
        f"{_pts(points)} at {_num(burn.point_value_minor)} minor units each = {value} minor units",
        f"basket {basket_amount_minor} minor units × max share {_num(burn.max_basket_share)}"
        f" = {max_value} → at most {_pts(max_points)}",
    )
    return BurnQuote(points, value, max_points, explanation)


def points_to_pay(rule: RuleVersion, amount_minor: int) -> int:
    """Points an amount costs at this partner: CEIL, so the points always cover the amount."""
    burn = _burn_rule(rule)
    if amount_minor <= 0:
        raise InvalidAmount(f"amount must be positive, got {amount_minor}", field="amount")
    return round_ratio(Fraction(amount_minor) / burn.point_value_minor, Rounding.CEIL)


def proportional_points(
    total_points: int, part_minor: int, whole_minor: int, rounding: Rounding
) -> int:
    """``total * part / whole`` exactly, then rounded (a partial return's share of the points)."""
    if whole_minor <= 0 or part_minor < 0 or part_minor > whole_minor:
        raise ValueError(f"need 0 <= part <= whole and whole > 0; got {part_minor}/{whole_minor}")
    return round_ratio(Fraction(total_points * part_minor, whole_minor), rounding)
