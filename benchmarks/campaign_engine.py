"""The campaign engine's CPU per earn (issue 12): what ``candidates`` + ``needs`` +
``evaluate`` cost with 50 campaigns at the partner and 20 coalition ones, against the same
with none, and against ``quote_earn`` of the same basket (the rule's own pure work).

    .venv/bin/python -m benchmarks.campaign_engine [--rounds 20000]

Pure code, no database: the figure is the engine's share of the earn's 1.3x budget (a whole
in-process earnPoints request costs ~2,300-2,600 µs, docs/benchmarks.md). The mix is what a
partner runs: most campaigns do not hold for a given basket (another category, a weekend, a
higher spend, a tier, a coupon not presented), a few apply with budgets and member limits, and
exclusive ones get skipped. Best of five runs, µs per call (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from benchmarks.table import Row, ratio_row, render_text
from gateway.promotions.engine import CampaignSet, compile_campaigns, evaluate, needs
from gateway.promotions.model import (
    COALITION,
    BasketHas,
    BirthdayMonth,
    BonusPoints,
    Campaign,
    Cashback,
    Condition,
    CouponPresented,
    Effect,
    Evaluation,
    InSegment,
    Limits,
    MemberFacts,
    MemberLimit,
    MinSpend,
    Multiplier,
    NthPurchase,
    PurchaseContext,
    Schedule,
    Stacking,
    TierIn,
    Trigger,
    Used,
    Window,
)
from partners.config import Channel
from partners.registry import Registry
from partners.rules import LineItem, PurchaseFacts, checked_purchase, quote_earn

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday
LINES = (LineItem(45_000, "bakery"), LineItem(30_000, "organic"), LineItem(25_000, "dairy"),
         LineItem(12_000, "organic", sku="A-1"), LineItem(8_000, "household"))
MEMBER = MemberFacts("m-1", tier="silver", segments=frozenset({"s-1"}), birth_month=5,
                     purchases_at_partner=3, coupons=frozenset())


def _campaign(i: int, owner: str, effect: Effect, *conditions: Condition,
              limits: Limits | None = None, exclusive: bool = False) -> Campaign:
    return Campaign(
        id=f"{owner}-{i:03d}", version=1, owner=owner, funder=owner, name=f"Promo {i}",
        trigger=Trigger.PURCHASE, valid_from=AT - timedelta(days=30), valid_until=None,
        partners=frozenset({"grocery", "fuel"}) if owner == COALITION else frozenset({owner}),
        conditions=conditions, effects=(effect,), limits=limits or Limits(),
        stacking=Stacking(exclusive, priority=i % 7))


def campaigns() -> list[Campaign]:
    """50 at the grocery, 20 coalition-wide: 5 apply to the benchmark's basket (2 double
    organic, 2 cashback, 1 personal offer) and 5 exclusive ones are skipped."""
    out: list[Campaign] = []
    per_member = Limits(budget_points=1_000_000, per_member=(MemberLimit(Window.DAY, count=1),))
    for i in range(50):
        kind = i % 10
        if kind in (0, 1):  # a category not in the basket
            out.append(_campaign(i, "grocery", Multiplier(Fraction(2), frozenset({f"pet-{i}"})),
                                 BasketHas(frozenset({f"pet-{i}"}))))
        elif kind in (2, 3):  # a higher spend
            out.append(_campaign(i, "grocery", BonusPoints(100), MinSpend(500_000 + i)))
        elif kind in (4, 5):  # weekends in Kyiv
            out.append(_campaign(i, "grocery", Multiplier(Fraction(3)),
                                 Schedule(frozenset({5, 6}), timezone="Europe/Kyiv")))
        elif kind == 6:  # another tier
            out.append(_campaign(i, "grocery", BonusPoints(50), TierIn(frozenset({"gold"}))))
        elif kind == 7:  # a coupon not presented
            out.append(_campaign(i, "grocery", BonusPoints(75), CouponPresented()))
        elif kind in (8, 9) and i >= 20:  # organic offers at a spend this basket misses
            out.append(_campaign(i, "grocery", Multiplier(Fraction(2), frozenset({"organic"})),
                                 BasketHas(frozenset({"organic"})), MinSpend(300_000 + i)))
        elif kind == 8:  # applies: double organic, budgeted, once a day per member
            out.append(_campaign(i, "grocery", Multiplier(Fraction(2), frozenset({"organic"})),
                                 BasketHas(frozenset({"organic"})), limits=per_member))
        else:  # applies: cashback
            out.append(_campaign(i, "grocery", Cashback(Fraction(i % 5 + 1)), MinSpend(10_000),
                                 limits=Limits(budget_points=5_000_000)))
    for i in range(20):
        kind = i % 4
        if kind == 0:
            out.append(_campaign(i, COALITION, BonusPoints(100), BirthdayMonth()))
        elif kind == 1:
            out.append(_campaign(i, COALITION, BonusPoints(200), NthPurchase(1)))
        elif kind == 2 and i >= 10:  # another segment
            out.append(_campaign(i, COALITION, BonusPoints(30), InSegment("s-2")))
        elif kind == 2:  # applies: a segment's personal offer
            out.append(_campaign(i, COALITION, BonusPoints(30), InSegment("s-1"),
                                 limits=Limits(max_rewards=1_000_000)))
        else:  # matches, exclusive: skipped once anything applied before it
            out.append(_campaign(i, COALITION, BonusPoints(10), MinSpend(1_000),
                                 exclusive=True))
    return out


def best_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(min(rounds, 2_000)):
        fn()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        runs.append(1e6 * (time.perf_counter() - started) / rounds)
    return min(runs)


def one_earn(cset: CampaignSet, purchase: PurchaseContext) -> Callable[[], Evaluation]:
    rule = Registry.from_catalog().rule_at("grocery", AT)
    used = {c.campaign.id: Used(points=100, rewards=1) for c in cset.campaigns}

    def run() -> Evaluation:
        candidates = cset.candidates("grocery", "store", AT)
        needs(candidates)
        return evaluate(candidates, purchase, MEMBER, used, rule)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args(argv)
    rule = Registry.from_catalog().rule_at("grocery", AT)
    facts = checked_purchase(PurchaseFacts(sum(x.amount_minor for x in LINES), "UAH",
                                           Channel.STORE, LINES))
    quote = quote_earn(rule, facts)
    purchase = PurchaseContext("grocery", "store", AT, facts.facts.amount_minor, "UAH", LINES,
                               quote.points)
    many = campaigns()
    compile_us = best_us(lambda: compile_campaigns(many), max(1, args.rounds // 100))
    full, empty = compile_campaigns(many), compile_campaigns([])
    ev = one_earn(full, purchase)()
    assert len(full.candidates("grocery", "store", AT)) == 70
    assert ev.awards and ev.skips, ev  # the mix applies some and skips some

    quote_us = best_us(lambda: quote_earn(rule, facts), args.rounds)
    none_us = best_us(one_earn(empty, purchase), args.rounds)
    seventy_us = best_us(one_earn(full, purchase), args.rounds)
    note = f"{len(ev.awards)} awards, {len(ev.skips)} skips, +{ev.bonus_points} points"
    rows: list[Row] = [
        Row("campaign_engine", "none", "quote_earn, same basket (the rule's pure work)",
            quote_us, None, "", None, "µs"),
        Row("campaign_engine", "none", "compile 70 campaigns (once per version)", compile_us,
            None, "", None, "µs"),
        Row("campaign_engine", "none", "candidates+needs+evaluate, no campaigns", none_us, None,
            "", None, "µs"),
        ratio_row("campaign_engine", "none",
                  "candidates+needs+evaluate, 50 partner + 20 coalition campaigns",
                  seventy_us, none_us, unit="µs", note=note),
        ratio_row("campaign_engine", "none", "the same, against quote_earn", seventy_us,
                  quote_us, unit="µs"),
    ]
    print(render_text(rows))
    print(f"\nadded to an earn: {seventy_us - none_us:.1f} µs per call "
          f"(target: well under 100 µs; a whole in-process earn is ~2,300-2,600 µs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
