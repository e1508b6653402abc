"""What one evaluation knows about its basket, and campaign conditions as predicates over it.

``Basket`` computes, at most once per evaluation and only when some campaign asks, the exact
base points of the lines (the conversion rule's own arithmetic), the local time in a campaign's
time zone, and sums over line selections; ``predicate`` turns a condition into a function of
(purchase, member, basket), built once per campaign version. Pure, like the engine that uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from gateway.core.money import Rounding, round_ratio
from gateway.promotions.model import (
    BasketHas,
    BirthdayMonth,
    ChannelIn,
    Condition,
    InSegment,
    MemberFacts,
    MinSpend,
    NthPurchase,
    PurchaseContext,
    ReferralInEffect,
    Schedule,
    TierIn,
)
from partners.config import EarnRule, RuleVersion
from partners.rules import LineItem


def line_points(earn: EarnRule, line: LineItem) -> Fraction:
    """A line's exact points before the channel multiplier: ``partners.rules._line_points``'s
    arithmetic without its text (a test keeps the two equal), by quantity or by amount, then
    the category multiplier, made as one ratio."""
    num, den = line.amount_minor * earn.points, earn.per_amount_minor
    if line.category is not None and line.quantity_milli is not None:
        for q in reversed(earn.quantity_earn):  # the last one wins, as in the dict there
            if q.category == line.category:
                num, den = line.quantity_milli * q.points, q.per_quantity_milli
                break
    if earn.category_multipliers:
        multiplier = earn.category_multipliers.get(line.category or "")
        if multiplier is not None:
            num, den = num * multiplier.numerator, den * multiplier.denominator
    return Fraction(num, den)


class Basket:
    """Per-evaluation values computed at most once, and only if some campaign asks."""

    __slots__ = ("_line_raw", "_local", "_points", "_scale", "_spend", "categories", "purchase",
                 "rule", "skus")

    def __init__(self, purchase: PurchaseContext, rule: RuleVersion | None) -> None:
        self.purchase, self.rule = purchase, rule
        self.categories = {line.category for line in purchase.lines}
        self.skus = {line.sku for line in purchase.lines}
        self._line_raw: tuple[Fraction, ...] | None = None
        self._scale = Fraction(1)
        self._local: dict[str, datetime] = {}
        self._points: dict[tuple[frozenset[str], frozenset[str]], Fraction] = {}
        self._spend: dict[tuple[frozenset[str], frozenset[str]], int] = {}

    def matching_points(self, categories: frozenset[str], skus: frozenset[str]) -> Fraction:
        """The exact base points of the matching lines, after the rule's caps."""
        key = (categories, skus)
        got = self._points.get(key)
        if got is None:
            raw, scale = self.line_points()
            got = sum((raw[i] for i in matching(self.purchase, categories, skus)), Fraction(0))
            if scale != 1:
                got *= scale
            self._points[key] = got
        return got

    def matching_spend(self, categories: frozenset[str], skus: frozenset[str]) -> int:
        key = (categories, skus)
        got = self._spend.get(key)
        if got is None:
            lines = self.purchase.lines
            got = self._spend[key] = sum(
                lines[i].amount_minor for i in matching(self.purchase, categories, skus))
        return got

    def local(self, tz: ZoneInfo) -> datetime:
        at = self._local.get(tz.key)
        if at is None:
            at = self._local[tz.key] = self.purchase.occurred_at.astimezone(tz)
        return at

    def line_points(self) -> tuple[tuple[Fraction, ...], Fraction]:
        """Each line's exact points as ``quote_earn`` computes them (line logic, category
        multipliers), and the scale to apply to a sum of them: the channel multiplier, and
        the share the rule's caps left."""
        if self._line_raw is None:
            earn, p = self.rule.earn if self.rule else None, self.purchase
            if earn is None:
                self._line_raw = tuple(Fraction(0) for _ in p.lines)
            else:
                self._line_raw = tuple(line_points(earn, line) for line in p.lines)
                channel = earn.channel_multipliers.get(p.channel)
                if channel is not None:
                    self._scale = channel  # exact: it multiplies the sum as it would each line
                total = sum(self._line_raw, Fraction(0)) * self._scale
                if total and p.base_points < round_ratio(total, earn.rounding):
                    # capped: the caps scale every line's points alike
                    self._scale = self._scale * p.base_points / total
        return self._line_raw, self._scale

    @property
    def rounding(self) -> Rounding:
        earn = self.rule.earn if self.rule else None
        return earn.rounding if earn is not None else Rounding.FLOOR


Check = Callable[[PurchaseContext, MemberFacts, Basket], bool]


def predicate(condition: Condition) -> Check:
    """A condition as a predicate, built once per campaign version."""
    match condition:
        case MinSpend(amount_minor=amount):
            return lambda p, m, b: p.amount_minor >= amount
        case BasketHas(categories=cats, skus=skus):
            return lambda p, m, b: not (cats.isdisjoint(b.categories)
                                        and skus.isdisjoint(b.skus))
        case Schedule(days=days, start=start, end=end, timezone=name):
            tz = ZoneInfo(name)

            def in_schedule(p: PurchaseContext, m: MemberFacts, b: Basket) -> bool:
                local = b.local(tz)
                if days and local.weekday() not in days:
                    return False
                clock = local.time().replace(tzinfo=None)
                return (start is None or start <= clock) and (end is None or clock < end)
            return in_schedule
        case ChannelIn(channels=channels):
            return lambda p, m, b: p.channel in channels
        case NthPurchase(n=n):
            return lambda p, m, b: m.purchases_at_partner + 1 == n
        case TierIn(tiers=tiers):
            return lambda p, m, b: m.tier in tiers
        case InSegment(segment=segment):
            return lambda p, m, b: segment in m.segments
        case BirthdayMonth():
            # The purchase's month in UTC: a birthday at midnight's edge may be a day off.
            return lambda p, m, b: m.birth_month == p.occurred_at.month
        case ReferralInEffect():
            return lambda p, m, b: m.referred_by is not None
    # CouponPresented needs the campaign id: built in CompiledCampaign.
    raise TypeError(f"unknown condition {condition!r}")  # pragma: no cover


def coupon(campaign_id: str) -> Check:
    return lambda p, m, b: campaign_id in m.coupons


def is_purchase_condition(condition: Condition) -> bool:
    return isinstance(condition, MinSpend | BasketHas | Schedule | ChannelIn)



def matching(lines_of: PurchaseContext, categories: frozenset[str],
              skus: frozenset[str]) -> list[int]:
    if not categories and not skus:
        return list(range(len(lines_of.lines)))
    return [i for i, line in enumerate(lines_of.lines)
            if line.category in categories or line.sku in skus]
