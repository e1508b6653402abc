"""Properties of the campaign engine over generated campaigns, baskets and consumption: the
outcome does not depend on the order campaigns are given in, no award is negative, no campaign
gives more than its remaining budget, the explanation names every award and skip, and double
points on the whole basket give exactly the base points the rule gave (caps included)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.promotions.engine import compile_campaigns, evaluate
from gateway.promotions.model import (
    BasketHas,
    BonusPoints,
    Campaign,
    Cashback,
    Condition,
    Effect,
    Limits,
    MemberFacts,
    MemberLimit,
    MinSpend,
    Multiplier,
    PurchaseContext,
    RewardKind,
    Stacking,
    TillReward,
    Trigger,
    Used,
    Window,
)
from partners.config import Channel
from partners.registry import Registry
from partners.rules import LineItem, PurchaseFacts, quote_earn

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GROCERY = Registry.from_catalog().rule_at("grocery", AT)
CATEGORIES = ("organic", "bakery", "dairy", None)
SKUS = ("A-1", "B-2", None)

lines_st = st.lists(st.builds(LineItem, st.integers(1, 500_000), st.sampled_from(CATEGORIES),
                              st.none(), st.sampled_from(SKUS)), min_size=1, max_size=5)
some = st.frozensets(st.sampled_from(("organic", "bakery", "dairy")), max_size=2)
effect_st: st.SearchStrategy[Effect] = st.one_of(
    st.builds(BonusPoints, st.integers(1, 1_000)),
    st.builds(Multiplier, st.fractions(Fraction(11, 10), 5, max_denominator=20), some),
    st.builds(Cashback, st.fractions(Fraction(1, 10), 30, max_denominator=10), some),
    st.just(TillReward(RewardKind.GIFT, "GIFT-1", "a mug")),
)
condition_st: st.SearchStrategy[Condition] = st.one_of(
    st.builds(MinSpend, st.integers(1, 300_000)),
    st.builds(BasketHas, st.frozensets(st.sampled_from(("organic", "bakery")), min_size=1)),
)


@st.composite
def campaigns_st(draw: st.DrawFn) -> list[Campaign]:
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        budget = draw(st.none() | st.integers(1, 2_000))
        per_member = draw(st.lists(st.builds(
            MemberLimit, st.sampled_from(list(Window)), st.none() | st.integers(1, 500),
            st.none() | st.integers(1, 3)), max_size=2, unique_by=lambda m: m.window))
        out.append(Campaign(
            id=f"c{i:02d}", version=1, owner="grocery", funder="grocery", name=f"Promo {i}",
            trigger=Trigger.PURCHASE, valid_from=AT - timedelta(days=1), valid_until=None,
            partners=frozenset({"grocery"}),
            conditions=tuple(draw(st.lists(condition_st, max_size=2))),
            effects=tuple(draw(st.lists(effect_st, min_size=1, max_size=3))),
            limits=Limits(budget, draw(st.none() | st.integers(1, 5)), tuple(per_member)),
            stacking=Stacking(draw(st.booleans()), draw(st.integers(-2, 2)))))
    return out


@st.composite
def used_st(draw: st.DrawFn, campaigns: list[Campaign]) -> dict[str, Used]:
    used = {}
    for c in campaigns:
        if draw(st.booleans()):
            member = {w: (draw(st.integers(0, 600)), draw(st.integers(0, 4)))
                      for w in draw(st.sets(st.sampled_from(list(Window))))}
            used[c.id] = Used(draw(st.integers(0, 2_500)), draw(st.integers(0, 6)), member)
    return used


def context(lines: list[LineItem], channel: Channel, earned_today: int = 0) -> PurchaseContext:
    amount = sum(line.amount_minor for line in lines)
    quote = quote_earn(GROCERY, PurchaseFacts(amount, "UAH", channel, tuple(lines)),
                       earned_today=earned_today)
    return PurchaseContext("grocery", channel.value, AT, amount, "UAH", tuple(lines), quote.points)


@settings(max_examples=300, deadline=None)
@given(st.data(), campaigns_st(), lines_st, st.sampled_from(list(Channel)))
def test_evaluation_properties(data: st.DataObject, campaigns: list[Campaign],
                               lines: list[LineItem], channel: Channel) -> None:
    used = data.draw(used_st(campaigns))
    buy = context(lines, channel)
    candidates = compile_campaigns(campaigns).candidates("grocery", channel.value, AT)
    member = MemberFacts("m-1")
    ev = evaluate(candidates, buy, member, used, GROCERY)

    # Deterministic, and the input order does not matter.
    shuffled = list(candidates)
    random.Random(data.draw(st.integers())).shuffle(shuffled)
    assert evaluate(shuffled, buy, member, used, GROCERY) == ev
    assert evaluate(list(reversed(candidates)), buy, member, used, GROCERY) == ev

    by_id = {c.id: c for c in campaigns}
    seen: set[str] = set()
    for award in ev.awards:
        c = by_id[award.campaign_id]
        assert award.points >= 0
        assert award.points > 0 or award.till_reward is not None
        assert award.campaign_id not in seen  # one award per campaign (no referral here)
        seen.add(award.campaign_id)
        u = used.get(c.id, Used())
        if c.limits.budget_points is not None:
            assert award.points <= max(0, c.limits.budget_points - u.points)
        if c.limits.max_rewards is not None:
            assert u.rewards < c.limits.max_rewards
        for m in c.limits.per_member:
            got_points, got_count = u.member.get(m.window, (0, 0))
            if m.points is not None:
                assert award.points <= max(0, m.points - got_points)
            if m.count is not None:
                assert got_count < m.count
        assert c.name in award.explanation and f"+{award.points} point" in award.explanation
    for skip in ev.skips:
        assert skip.campaign_id not in seen
        seen.add(skip.campaign_id)
        assert by_id[skip.campaign_id].name in skip.explanation
        assert "skipped" in skip.explanation
    assert ev.explanation == tuple(a.explanation for a in ev.awards) + tuple(
        s.explanation for s in ev.skips)

    # Stacking: after an exclusive award nothing else is applied; an exclusive one stands alone.
    exclusive = [a for a in ev.awards if by_id[a.campaign_id].stacking.exclusive]
    if exclusive:
        assert len(ev.awards) == 1


@settings(max_examples=300, deadline=None)
@given(lines_st, st.sampled_from(list(Channel)), st.integers(0, 20_000))
def test_double_points_give_exactly_the_base_points(lines: list[LineItem], channel: Channel,
                                                    earned_today: int) -> None:
    buy = context(lines, channel, earned_today)
    double = Campaign(id="x2", version=1, owner="grocery", funder="grocery", name="Double",
                      trigger=Trigger.PURCHASE, valid_from=AT, valid_until=None,
                      partners=frozenset({"grocery"}), effects=(Multiplier(Fraction(2)),))
    ev = evaluate(compile_campaigns([double]).candidates("grocery", channel.value, AT), buy,
                  MemberFacts("m-1"), {}, GROCERY)
    assert ev.bonus_points == buy.base_points
