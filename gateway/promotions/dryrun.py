"""Dry runs: what a draft campaign, or a draft conversion-rule version, would have issued and
cost over a partner's recent earns, before it is published. Nothing is written.

The partner's earn operations in ``[since, until)`` are streamed in ``(recorded_at, id)``
order, ``chunk`` rows at a time (keyset pages: never the whole period in memory), and each is
replayed through the real engine (``engine.evaluate``) with the draft alone, as if it had been
in force over the whole period (its own validity window is ignored). What an operation row
does not keep is said in the result rather than guessed:

- the basket's lines are not stored: each purchase is one uncategorised line, so ``basketHas``
  and category or SKU effects cannot match;
- member facts (tier, segments, birth month, purchase count, referral, coupons) are not read:
  a condition on them counts as not matching (so such a draft matches nothing), and
  ``operations_with_unknown_facts`` says how many earns met every other condition: how many
  the draft could reach at most;
- the base points are the operation's ``points`` (what the member got, after the rule's caps).

Costs are exact: points times the operation's rule version ``price_per_point_issued_minor``
(settlement currency), summed as a ``Fraction`` and rounded once, half-even, at the end."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, func, or_, select

from gateway.core.money import Rounding, round_ratio
from gateway.db.tables import operations
from gateway.db.uow import UnitOfWork
from gateway.promotions import engine
from gateway.promotions import model as m
from partners.config import Channel, RuleVersion
from partners.rules import LineItem, PurchaseFacts, quote_earn

NOTES = (
    "the draft is replayed as if in force over the whole period (its validity is ignored)",
    "each purchase is one uncategorised line: lines are not stored",
    "member facts (tier, segments, birth month, purchase count, referral, coupons) are not "
    "read: conditions on them count as not matching; operationsWithUnknownFacts counts the "
    "earns that met every other condition",
    "costs: points x the price per point issued of the rule version each earn used, rounded "
    "once, half-even",
)
RuleOf = Callable[[str, int], RuleVersion]  # (partner id, version) -> the rule version
Progress = Callable[[int], None]  # called with the operations scanned so far, once per chunk
CHUNK = 1000

# Conditions the dry run cannot know from an operation row (see the module docstring).
_UNKNOWN: dict[type[Any], str] = {
    m.TierIn: "tier", m.InSegment: "segment", m.BirthdayMonth: "birth month",
    m.NthPurchase: "purchase count", m.CouponPresented: "coupon",
    m.ReferralInEffect: "referral", m.BasketHas: "basket lines",
}


@dataclass(frozen=True, slots=True)
class Earn:
    """One earn operation, as the dry run reads it."""

    id: str
    member_id: str | None
    channel: str
    amount_minor: int
    currency: str
    points: int
    rule_version: int
    occurred_at: datetime
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Cost:
    minor: int  # rounded once, half-even
    currency: str
    exact: Fraction


@dataclass(frozen=True, slots=True)
class CampaignDryRun:
    operations_scanned: int
    operations_matched: int
    members_reached: int
    bonus_points: int
    cost: tuple[Cost, ...]  # one per settlement currency (usually one)
    budget_points: int | None
    budget_used: int
    skipped: dict[m.SkipReason, int]  # earns that matched but a limit (or stacking) skipped
    unknown_facts: tuple[str, ...]  # the facts this draft needs that a dry run cannot read
    operations_with_unknown_facts: int


@dataclass(frozen=True, slots=True)
class RuleDryRun:
    operations_scanned: int
    points_before: int
    points_after: int
    cost_before: tuple[Cost, ...]
    cost_after: tuple[Cost, ...]


def earns(db: Engine, partner_id: str, since: datetime, until: datetime, *,
          chunk: int = CHUNK) -> Iterator[list[Earn]]:
    """The partner's earns in ``[since, until)`` by recorded time, a chunk at a time: one short
    read transaction per chunk, resumed after the last ``(recorded_at, id)``."""
    o = operations.c
    after: tuple[datetime, str] | None = None
    while True:
        query = (select(o.id, o.member_id, o.channel, o.amount_minor, o.currency, o.points,
                        o.rule_version, o.occurred_at, o.recorded_at)
                 # coalesce: not an indexable partner test, so the planner reads the chunk
                 # in order from ix_operations_recorded instead of taking the (partner_id,
                 # purchase_id) index and sorting all the partner's rows for every chunk
                 # (SQLite did: 40x a raw read at 200,000 earns, quadratic in the chunks).
                 .where(func.coalesce(o.partner_id, "") == partner_id, o.kind == "earn",
                        o.recorded_at >= since, o.recorded_at < until)
                 .order_by(o.recorded_at, o.id).limit(chunk))
        if after is not None:
            # Not a row-value comparison: SQLite would scan for it. The first term bounds an
            # index range (ix_operations_recorded), the second skips the rows already read.
            at, last = after
            query = query.where(o.recorded_at >= at, or_(o.recorded_at > at, o.id > last))
        with UnitOfWork(db, write=False) as uow:
            rows = [Earn(r.id, r.member_id, r.channel or Channel.STORE.value,
                         int(r.amount_minor or 0), r.currency or "", int(r.points),
                         int(r.rule_version or 0), r.occurred_at, r.recorded_at)
                    for r in uow.conn.execute(query)]
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = (rows[-1].recorded_at, rows[-1].id)


def simulate_campaign(db: Engine, rule_of: RuleOf, draft: m.Campaign, *, partner_id: str,
                      since: datetime, until: datetime, chunk: int = CHUNK,
                      progress: Progress | None = None) -> CampaignDryRun:
    """Replay the partner's earns in ``[since, until)`` through the draft alone."""
    unknown = tuple(sorted({_UNKNOWN[type(c)] for c in draft.audience + draft.conditions
                            if type(c) in _UNKNOWN}))
    # With unknown facts the draft matches nothing; what it could reach is what meets the rest.
    in_force = dataclasses.replace(
        draft, valid_from=since, valid_until=None,
        audience=tuple(c for c in draft.audience if type(c) not in _UNKNOWN),
        conditions=tuple(c for c in draft.conditions if type(c) not in _UNKNOWN))
    compiled = engine.compile_campaigns([in_force])
    used = _Usage(draft.id, frozenset(limit.window for limit in draft.limits.per_member))
    scanned = matched = with_unknown = 0
    members: set[str] = set()  # bounded by the members reached, not by the rows read
    skipped: Counter[m.SkipReason] = Counter()
    cost: dict[str, Fraction] = {}
    for rows in earns(db, partner_id, since, until, chunk=chunk):
        for op in rows:
            scanned += 1
            candidates = compiled.candidates(partner_id, op.channel, op.occurred_at)
            if not candidates or op.member_id is None:
                continue
            rule = rule_of(partner_id, op.rule_version)
            purchase = m.PurchaseContext(partner_id, op.channel, op.occurred_at,
                                         op.amount_minor, op.currency,
                                         (LineItem(op.amount_minor),), op.points)
            facts = m.MemberFacts(op.member_id, purchases_at_partner=-1)  # never an n-th
            outcome = engine.evaluate(candidates, purchase, facts,
                                      {draft.id: used.of(op.member_id, op.occurred_at)}, rule)
            if unknown:
                with_unknown += bool(outcome.awards)
                continue
            skipped.update(s.reason for s in outcome.skips)
            points = outcome.bonus_points
            if outcome.awards:
                matched += 1
                members.update(a.member_id for a in outcome.awards)
                used.add(op.member_id, op.occurred_at, points)
                prices = rule.settlement
                cost[prices.currency] = (cost.get(prices.currency, Fraction(0))
                                         + points * prices.price_per_point_issued_minor)
        if progress is not None:
            progress(scanned)
    return CampaignDryRun(
        operations_scanned=scanned, operations_matched=matched, members_reached=len(members),
        bonus_points=used.points, cost=_costs(cost), budget_points=draft.limits.budget_points,
        budget_used=used.points, skipped=dict(skipped), unknown_facts=unknown,
        operations_with_unknown_facts=with_unknown)


def simulate_rule(db: Engine, rule_of: RuleOf, draft: RuleVersion, *, since: datetime,
                  until: datetime, chunk: int = CHUNK,
                  progress: Progress | None = None) -> RuleDryRun:
    """Quote each earn in ``[since, until)`` under the rule it used and under ``draft``; the
    daily cap is quoted as if the member had earned nothing else that day (not stored)."""
    scanned = before = after = 0
    cost_before: dict[str, Fraction] = {}
    cost_after: dict[str, Fraction] = {}
    for rows in earns(db, draft.partner_id, since, until, chunk=chunk):
        for op in rows:
            scanned += 1
            facts = PurchaseFacts(op.amount_minor, op.currency, Channel(op.channel))
            old = rule_of(draft.partner_id, op.rule_version)
            points_old = quote_earn(old, facts).points
            points_new = quote_earn(draft, facts).points
            before += points_old
            after += points_new
            _add(cost_before, old, points_old)
            _add(cost_after, draft, points_new)
        if progress is not None:
            progress(scanned)
    return RuleDryRun(scanned, before, after, _costs(cost_before), _costs(cost_after))


def _add(cost: dict[str, Fraction], rule: RuleVersion, points: int) -> None:
    prices = rule.settlement
    cost[prices.currency] = (cost.get(prices.currency, Fraction(0))
                             + points * prices.price_per_point_issued_minor)


def _costs(exact: dict[str, Fraction]) -> tuple[Cost, ...]:
    return tuple(Cost(round_ratio(value, Rounding.HALF_EVEN), currency, value)
                 for currency, value in sorted(exact.items()))


class _Usage:
    """The draft's own consumption so far in the replay, as ``engine.evaluate`` reads it:
    totals, and each member's awards in calendar windows (UTC day, ISO week, month)."""

    def __init__(self, campaign_id: str, windows: frozenset[m.Window]) -> None:
        self.campaign_id = campaign_id
        self.windows = windows  # the ones the draft's member limits name: no others are read
        self.points = 0
        self.rewards = 0
        self._member: dict[str, list[tuple[datetime, int]]] = {}

    def add(self, member_id: str, at: datetime, points: int) -> None:
        self.points += points
        self.rewards += 1
        if self.windows:
            self._member.setdefault(member_id, []).append((at, points))

    def of(self, member_id: str, at: datetime) -> m.Used:
        awards = self._member.get(member_id, [])
        windows: dict[m.Window, tuple[int, int]] = {}
        for window in self.windows:
            inside = [p for t, p in awards if _same(window, t, at)]
            windows[window] = (sum(inside), len(inside))
        return m.Used(self.points, self.rewards, windows)


def _same(window: m.Window, a: datetime, b: datetime) -> bool:
    if window is m.Window.DAY:
        return a.date() == b.date()
    if window is m.Window.WEEK:
        return a.isocalendar()[:2] == b.isocalendar()[:2]
    if window is m.Window.MONTH:
        return (a.year, a.month) == (b.year, b.month)
    return True
