"""The campaign engine: compile once per set of versions, evaluate a purchase with no I/O.

``compile_campaigns`` turns published versions into a :class:`CampaignSet`: campaigns indexed by
partner in stacking order (priority high to low, then campaign id), each with its conditions
compiled to predicates and the member facts and counters it needs worked out once, so the load
step asks :func:`needs` what to read and an earn with no candidate reads nothing more.
:func:`evaluate` checks every condition, computes every effect exactly from the partner's rule
(``partners.rules``: a line earns here what it earns in ``quote_earn``), rounds once per effect
with the rule's rounding, then applies stacking, budgets and limits in that one order. Every
campaign that matched but was not applied is a :class:`Skip` with its reason. The rules are
written out for partners in docs/campaigns-engine.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from operator import attrgetter
from types import MappingProxyType

from gateway.core.money import round_ratio
from gateway.promotions.basket import Basket, Check, coupon, is_purchase_condition, predicate
from gateway.promotions.holdout import held_out
from gateway.promotions.model import (
    Award,
    BirthdayMonth,
    BonusPoints,
    Campaign,
    Cashback,
    CouponPresented,
    Effect,
    Evaluation,
    InSegment,
    MemberFacts,
    Multiplier,
    NthPurchase,
    PointsDiscount,
    PurchaseContext,
    ReferralInEffect,
    ReferralReward,
    Skip,
    SkipReason,
    TierIn,
    TillReward,
    Trigger,
    Used,
    Window,
)
from partners.config import RuleVersion
from partners.rules import LineItem, _money, _num

_ORDER = attrgetter("order")


def _n(value: Fraction) -> str:
    """``partners.rules._num``, with the common whole-number case first (it is hot here)."""
    return str(value.numerator) if value.denominator == 1 else _num(value)


def _pts(n: int) -> str:
    return f"{n} point{'' if n == 1 else 's'}"


_NO_USE = Used()


@dataclass(frozen=True, slots=True)
class Needs:
    """What the load step must read for a set of candidates: member facts (flags), the counter
    rows to lock (campaign ids with a budget or a reward limit, in lock order) and, per
    campaign with per-member limits, the windows to sum the member's awards over."""

    tier: bool = False
    segments: bool = False
    birth_month: bool = False
    purchases_at_partner: bool = False
    referral: bool = False
    coupons: bool = False
    counters: tuple[str, ...] = ()
    member_windows: Mapping[str, tuple[Window, ...]] = field(
        default_factory=lambda: MappingProxyType({}))

    @property
    def member_facts(self) -> bool:
        """Whether any member fact beyond the member id is needed."""
        return (self.tier or self.segments or self.birth_month or self.purchases_at_partner
                or self.referral or self.coupons)


NO_NEEDS = Needs()
_TIER, _SEGMENTS, _BIRTH, _PURCHASES, _REFERRAL, _COUPONS = (1, 2, 4, 8, 16, 32)
_FACT_FLAGS = {TierIn: _TIER, InSegment: _SEGMENTS, BirthdayMonth: _BIRTH,
               NthPurchase: _PURCHASES, ReferralInEffect: _REFERRAL, CouponPresented: _COUPONS}


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    """One campaign version, compiled: predicates (purchase conditions first, they need no
    member), the facts and counters it needs, and its place in the stacking order."""

    campaign: Campaign
    order: tuple[int, str] = field(init=False)
    checks: tuple[Check, ...] = field(init=False)
    facts: int = field(init=False)
    counted: bool = field(init=False)  # a budget or a reward limit: its counter row is read
    windows: tuple[Window, ...] = field(init=False)
    labels: tuple[str, ...] = field(init=False)  # each effect's fixed text, made once
    head: str = field(init=False)  # "name (id vN)": every line about it starts so
    # Worked out once for a campaign whose effects do not depend on the purchase (bonus points,
    # a till reward, a referral: most campaigns): what ``_effects`` returns for any basket,
    # as (points, referrer's points, till reward, the effects' text joined); None otherwise.
    fixed: tuple[int, int, TillReward | None, str] | None = field(init=False)
    fixed_line: str = field(init=False)  # its award's line when nothing caps it ("" if none)
    unlimited: bool = field(init=False)  # no budget, reward or member limit: _limit is a no-op

    def __post_init__(self) -> None:
        c = self.campaign
        conditions = sorted(c.audience + c.conditions, key=lambda k: not is_purchase_condition(k))
        checks: list[Check] = []
        facts = 0
        for k in conditions:
            facts |= _FACT_FLAGS.get(type(k), 0)
            checks.append(coupon(c.id) if isinstance(k, CouponPresented) else predicate(k))
        if any(isinstance(e, ReferralReward) for e in c.effects):
            facts |= _REFERRAL
        object.__setattr__(self, "order", (-c.stacking.priority, c.id))
        object.__setattr__(self, "checks", tuple(checks))
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "counted", c.limits.budget_points is not None
                           or c.limits.max_rewards is not None)
        object.__setattr__(self, "labels", tuple(_label(e) for e in c.effects))
        object.__setattr__(self, "windows", tuple(dict.fromkeys(
            lim.window for lim in c.limits.per_member)))
        head = f"{c.name} ({c.id} v{c.version})"
        object.__setattr__(self, "head", head)
        fixed = _fixed_effects(c.effects, self.labels)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "fixed_line", "" if fixed is None
                           else _award_line(f"{head}: {fixed[3]}", fixed[0]))
        object.__setattr__(self, "unlimited", not self.counted and not c.limits.per_member)

    def matches(self, purchase: PurchaseContext, member: MemberFacts, basket: Basket) -> bool:
        for check in self.checks:  # noqa: SIM110 (a loop: all() over a generator costs more)
            if not check(purchase, member, basket):
                return False
        return True


@dataclass(frozen=True, slots=True)
class CampaignSet:
    """Every published campaign version in force, compiled, indexed by partner."""

    campaigns: tuple[CompiledCampaign, ...]
    by_partner: Mapping[str, tuple[CompiledCampaign, ...]] = field(init=False)
    # (partner, channel, trigger) -> (candidates, from, until): the candidates are the same for
    # every time in [from, until), so most earns answer with one lookup and two comparisons.
    _spans: dict[tuple[str, str, Trigger], tuple[tuple[CompiledCampaign, ...], datetime | None,
                                                 datetime | None]] = field(init=False)

    def __post_init__(self) -> None:
        index: dict[str, list[CompiledCampaign]] = {}
        for compiled in sorted(self.campaigns, key=_ORDER):
            for partner in sorted(compiled.campaign.partners):
                index.setdefault(partner, []).append(compiled)
        object.__setattr__(self, "by_partner", MappingProxyType(
            {partner: tuple(cs) for partner, cs in index.items()}))
        object.__setattr__(self, "_spans", {})

    def candidates(self, partner_id: str, channel: str, at: datetime,
                   trigger: Trigger = Trigger.PURCHASE) -> tuple[CompiledCampaign, ...]:
        """The campaigns that could apply here and now, in stacking order: no member needed.
        ``at`` is the purchase's ``occurred_at`` (UTC). O(campaigns at this partner) when
        ``at`` leaves the span of validity boundaries last seen there; O(1) inside it."""
        key = (partner_id, channel, trigger)
        span = self._spans.get(key)
        if span is not None and (span[1] is None or span[1] <= at) and (
                span[2] is None or at < span[2]):
            return span[0]
        here = [k for k in self.by_partner.get(partner_id, ())
                if k.campaign.trigger == trigger
                and (not k.campaign.channels or channel in k.campaign.channels)]
        found = tuple(k for k in here if k.campaign.valid_from <= at
                      and (k.campaign.valid_until is None or at < k.campaign.valid_until))
        edges = [edge for k in here for edge in (k.campaign.valid_from, k.campaign.valid_until)
                 if edge is not None]
        start = max((edge for edge in edges if edge <= at), default=None)
        end = min((edge for edge in edges if edge > at), default=None)
        self._spans[key] = (found, start, end)  # a race only rebuilds an equal entry
        return found

    def needs(self, candidates: Iterable[CompiledCampaign]) -> Needs:
        return needs(candidates)


def compile_campaigns(campaigns: Iterable[Campaign]) -> CampaignSet:
    """Compile every version once (the caller caches the set until a version is published)."""
    return CampaignSet(tuple(CompiledCampaign(c) for c in campaigns))


def needs(candidates: Iterable[CompiledCampaign]) -> Needs:
    """What the load step must read for these candidates (nothing, for none)."""
    facts = 0
    counters: list[str] = []
    windows: dict[str, tuple[Window, ...]] = {}
    for k in candidates:
        facts |= k.facts
        if k.counted:
            counters.append(k.campaign.id)
        if k.windows:
            windows[k.campaign.id] = k.windows
    if not facts and not counters and not windows:
        return NO_NEEDS
    return Needs(bool(facts & _TIER), bool(facts & _SEGMENTS), bool(facts & _BIRTH),
                 bool(facts & _PURCHASES), bool(facts & _REFERRAL), bool(facts & _COUPONS),
                 tuple(sorted(set(counters))), MappingProxyType(windows))


def window_start(window: Window, at: datetime) -> datetime | None:
    """Where the member-limit window containing ``at`` starts, in UTC (None: lifetime). Days
    start at 00:00 UTC, weeks on Monday, months on the 1st; the load step sums the member's
    awards of the campaign since then."""
    if window is Window.LIFETIME:
        return None
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if window is Window.DAY:
        return day
    if window is Window.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _which(categories: frozenset[str], skus: frozenset[str]) -> str:
    if not categories and not skus:
        return "the basket"
    names = sorted(categories) + [f"SKU {s}" for s in sorted(skus)]
    return "lines in " + ", ".join(names)


class _NoPointValue(Exception):
    """Cashback at a partner with no burn rule: a point has no value there."""


def _label(e: Effect) -> str:
    match e:
        case BonusPoints(points=points):
            return f"bonus {_pts(points)}"
        case Multiplier(factor=factor, categories=cats, skus=skus):
            return f"×{_num(factor)} on {_which(cats, skus)}"
        case Cashback(percent=percent, categories=cats, skus=skus):
            return f"{_num(percent)}% cashback on {_which(cats, skus)}"
        case TillReward(kind=kind, code=code, description=description):
            return f"till reward {kind.value} {code}: {description}"
        case ReferralReward(referred_points=points):
            return f"referral: {_pts(points)} to the referred member"
    return ""  # PointsDiscount is not an earn effect: see points_discount()


_FIXED_EFFECTS = (BonusPoints, TillReward, ReferralReward, PointsDiscount)


def _fixed_effects(effects: tuple[Effect, ...], labels: tuple[str, ...]
                   ) -> tuple[int, int, TillReward | None, str] | None:
    """``_effects`` of a campaign whose effects need no basket, worked out at compile time
    (the same loop, the same text); None when one needs the basket (a multiplier, cashback)."""
    if not all(isinstance(e, _FIXED_EFFECTS) for e in effects):
        return None
    points, referrer, till, parts = 0, 0, None, []
    for e, label in zip(effects, labels, strict=True):
        if isinstance(e, BonusPoints):
            points += e.points
            parts.append(label)
        elif isinstance(e, TillReward):
            till = e
            parts.append(label)
        elif isinstance(e, ReferralReward):
            points += e.referred_points
            referrer += e.referrer_points
            parts.append(label)
    return points, referrer, till, "; ".join(parts)


def _award_line(text: str, points: int) -> str:
    """An award's line in the explanation: what it applied, then the points it gives."""
    return f"{text} → +{_pts(points)}"


def _effects(k: CompiledCampaign,
             basket: Basket) -> tuple[int, int, TillReward | None, list[str]]:
    """(points to the member, points to the referrer, till reward, explanation parts)."""
    points, referrer, till, parts = 0, 0, None, []
    for e, label in zip(k.campaign.effects, k.labels, strict=True):
        if isinstance(e, BonusPoints):
            points += e.points
            parts.append(label)
        elif isinstance(e, Multiplier):
            base = basket.matching_points(e.categories, e.skus)
            bonus = round_ratio(base * (e.factor - 1), basket.rounding)
            points += bonus
            parts.append(f"{label}: {_n(base)} base × {_n(e.factor - 1)} → {_pts(bonus)}")
        elif isinstance(e, Cashback):
            burn = basket.rule.burn if basket.rule else None
            if burn is None:
                raise _NoPointValue
            spend = basket.matching_spend(e.categories, e.skus)
            value = burn.point_value_minor
            # spend × percent / 100 / value, as one exact ratio
            cash = round_ratio(Fraction(spend * e.percent.numerator * value.denominator,
                                        100 * e.percent.denominator * value.numerator),
                               basket.rounding)
            points += cash
            parts.append(f"{label} ({_money(spend, basket.purchase.currency)}) at {_n(value)} "
                         f"minor units a point → {_pts(cash)}")
        elif isinstance(e, TillReward):
            till = e
            parts.append(label)
        elif isinstance(e, ReferralReward):
            points += e.referred_points
            referrer += e.referrer_points
            parts.append(label)
    return points, referrer, till, parts


def _limit(k: CompiledCampaign, used: Used, mine: int,
           theirs: int) -> tuple[SkipReason | None, int, int, str]:
    """Rewards, budget, then member limits: (skip reason, member's points, referrer's points,
    note). A points limit caps the award at what is left (a partial award, the member's share
    first); a limit with nothing left skips. Member limits count the purchaser's points."""
    lim, note = k.campaign.limits, ""
    if lim.max_rewards is not None and used.rewards >= lim.max_rewards:
        return (SkipReason.REWARDS_EXHAUSTED, 0, 0,
                f"all {lim.max_rewards} rewards given ({used.rewards} given)")
    if lim.budget_points is not None:
        left = max(0, lim.budget_points - used.points)  # a return may leave it over
        if mine + theirs > 0 and left == 0:
            return (SkipReason.BUDGET_EXHAUSTED, 0, 0,
                    f"budget of {_pts(lim.budget_points)} used up ({used.points} used)")
        if mine + theirs > left:
            mine = min(mine, left)
            theirs = left - mine
            note = f"capped at the {_pts(left)} left of the budget"
    for m in lim.per_member:
        got_points, got_count = used.member.get(m.window, (0, 0))
        if m.count is not None and got_count >= m.count:
            return (SkipReason.MEMBER_LIMIT, 0, 0,
                    f"member limit of {m.count} per {m.window.value} reached ({got_count} given)")
        if m.points is not None:
            left = max(0, m.points - got_points)
            if mine > 0 and left == 0:
                return (SkipReason.MEMBER_LIMIT, 0, 0, f"member limit of {_pts(m.points)} per "
                        f"{m.window.value} reached ({got_points} given)")
            if mine > left:
                mine = left
                note = f"capped at the member's {_pts(left)} left this {m.window.value}"
    return None, mine, theirs, note


def _funder_limit(funder: str, limit: int, funded: dict[str, int], mine: int, theirs: int,
                  note: str) -> tuple[SkipReason | None, int, int, str]:
    """What the funder's funding leaves of an award (the member's share first), counted in
    ``funded``: nothing left skips, less than the award cuts it."""
    left = max(0, limit - funded.get(funder, 0))
    if mine + theirs > 0 and left == 0:
        return (SkipReason.FUNDER_LIMIT, 0, 0,
                f"funder {funder!r} has no funding left for its points")
    if mine + theirs > left:
        mine = min(mine, left)
        theirs = left - mine
        note = f"capped at the {_pts(left)} left of funder {funder!r}'s funding"
    funded[funder] = funded.get(funder, 0) + mine + theirs
    return None, mine, theirs, note


def evaluate(candidates: Iterable[CompiledCampaign], purchase: PurchaseContext,
             member: MemberFacts, used: Mapping[str, Used], rule: RuleVersion | None,
             funding: Mapping[str, int] | None = None) -> Evaluation:
    """Awards and skips for one purchase: candidates in stacking order (sorted here, so the
    input order does not matter), conditions, effects, stacking, then budget and limits, then
    the funders' funding: ``funding`` maps a funder to the points it may still issue in this
    operation (only funders that refused a charge; decision 027). Like a budget, an award
    past it is cut to what is left and nothing left skips it (``FUNDER_LIMIT``), which does
    not block the campaigns after it."""
    return _evaluate(candidates, purchase, member, used, rule, funding)


def evaluate_enrolment(candidates: Iterable[CompiledCampaign], partner_id: str, channel: str,
                       at: datetime, member: MemberFacts,
                       used: Mapping[str, Used]) -> Evaluation:
    """Awards for an enrolment (``Trigger.ENROLMENT`` candidates): no purchase and no rule;
    validation allows such campaigns only bonus points and member conditions."""
    nothing = PurchaseContext(partner_id, channel, at, 0, "", (LineItem(0),), 0)
    return _evaluate(candidates, nothing, member, used, None)


def _evaluate(candidates: Iterable[CompiledCampaign], purchase: PurchaseContext,
              member: MemberFacts, used: Mapping[str, Used],
              rule: RuleVersion | None, funding: Mapping[str, int] | None = None) -> Evaluation:
    basket = Basket(purchase, rule)
    partner = rule.partner_id if rule is not None else purchase.partner_id
    awards: list[Award] = []
    skips: list[Skip] = []
    applied = exclusive_applied = False
    funded: dict[str, int] = {}  # points given so far per funder with a funding limit here
    for k in sorted(candidates, key=_ORDER):
        c = k.campaign
        matched = True
        for check in k.checks:  # CompiledCampaign.matches, inlined: this loop is the hot one
            if not check(purchase, member, basket):
                matched = False
                break
        if not matched:
            continue
        head = k.head
        if c.holdout_percent and held_out(c.id, member.member_id, c.holdout_percent):
            # Eligible, and held out (decision 034): not applied, so it neither blocks an
            # exclusive campaign nor counts against a budget; the earn records the marker.
            skips.append(Skip(c.id, c.version, SkipReason.HOLDOUT,
                              f"{head}: skipped, the member is in its "
                              f"{c.holdout_percent}% holdout group", c.funder))
            continue
        if exclusive_applied or (c.stacking.exclusive and applied):
            why = "an exclusive campaign was applied" if exclusive_applied else \
                "exclusive, and another campaign was applied first"
            skips.append(Skip(c.id, c.version, SkipReason.NOT_STACKABLE, f"{head}: skipped, {why}"))
            continue
        fixed = k.fixed  # most campaigns: the effects' points and text were worked out once
        if fixed is not None:
            points, referrer, till, done = fixed
        else:
            try:
                points, referrer, till, parts = _effects(k, basket)
            except _NoPointValue:
                skips.append(Skip(c.id, c.version, SkipReason.NO_POINT_VALUE,
                                  f"{head}: skipped, cashback needs a point value and partner "
                                  f"{partner!r} accepts no points"))
                continue
            done = "; ".join(parts)
        if member.referred_by is None:
            referrer = 0
        if points + referrer <= 0 and till is None:
            continue  # matched, but gives nothing here (no matching lines): not listed
        if k.unlimited:  # what _limit answers for a campaign with no budget and no limits
            reason, mine, theirs, note = None, points, referrer, ""
        else:
            reason, mine, theirs, note = _limit(k, used.get(c.id, _NO_USE), points, referrer)
        if reason is None and funding is not None and c.funder in funding:
            reason, mine, theirs, note = _funder_limit(c.funder, funding[c.funder],
                                                      funded, mine, theirs, note)
        if reason is not None:
            skips.append(Skip(c.id, c.version, reason, f"{head}: skipped, {note}"))
            continue
        if mine > 0 or till is not None:  # a referral may reward only the referrer
            if fixed is not None and not note and mine == points:
                line = k.fixed_line
            else:
                line = _award_line(f"{head}: {done}; {note}" if note else f"{head}: {done}",
                                   mine)
            awards.append(Award(c.id, c.version, c.funder, member.member_id, mine, line, till))
        if theirs > 0 and member.referred_by is not None:
            awards.append(Award(c.id, c.version, c.funder, member.referred_by, theirs,
                                f"{head}: referral reward to the referrer {member.referred_by}"
                                f" → +{_pts(theirs)}"))
        applied = True
        exclusive_applied = c.stacking.exclusive
    return Evaluation(tuple(awards), tuple(skips))


def points_discount(candidates: Iterable[CompiledCampaign], purchase: PurchaseContext,
                    member: MemberFacts) -> tuple[Fraction, Award] | None:
    """The better point value a redemption gets here, or None: of the candidates whose
    conditions hold and that have a ``PointsDiscount``, the highest value (ties: stacking
    order). The ``Award`` (0 points) names the campaign for the redemption's explanation.
    ``purchase`` is the basket being paid (``base_points`` 0). Budgets and limits do not
    apply to a discount rate."""
    basket: Basket | None = None
    best: tuple[Fraction, CompiledCampaign] | None = None
    for k in sorted(candidates, key=_ORDER):
        rates = [e.point_value_minor for e in k.campaign.effects if isinstance(e, PointsDiscount)]
        if not rates or (best is not None and max(rates) <= best[0]):
            continue
        if basket is None:
            basket = Basket(purchase, None)
        if k.matches(purchase, member, basket):
            best = (max(rates), k)
    if best is None:
        return None
    value, k = best
    c = k.campaign
    return value, Award(c.id, c.version, c.funder, member.member_id, 0,
                        f"{c.name} ({c.id} v{c.version}): one point pays {_num(value)} minor "
                        f"units here")
