"""The campaign engine (gateway.promotions.engine): worked scenarios with numbers at the grocery
(rule v1: 1 point per 10.00 UAH, floor, organic ×1.5, app ×2, one point pays 0.10 UAH), the
stacking order, budgets and limits, and what the load step is told to read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from gateway.promotions.basket import line_points
from gateway.promotions.engine import (
    NO_NEEDS,
    CampaignSet,
    compile_campaigns,
    evaluate,
    evaluate_enrolment,
    points_discount,
    window_start,
)
from gateway.promotions.model import (
    COALITION,
    Award,
    BasketHas,
    BirthdayMonth,
    BonusPoints,
    Campaign,
    Cashback,
    ChannelIn,
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
    PointsDiscount,
    PurchaseContext,
    ReferralInEffect,
    ReferralReward,
    RewardKind,
    Schedule,
    SkipReason,
    Stacking,
    TierIn,
    TillReward,
    Trigger,
    Used,
    Window,
)
from partners.config import Channel, RuleVersion
from partners.registry import Registry
from partners.rules import LineItem, PurchaseFacts, _line_points, quote_earn

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
MEMBER = MemberFacts("m-1")
NO_LIMITS = Limits()


@pytest.fixture(scope="module")
def grocery() -> RuleVersion:
    return Registry.from_catalog().rule_at("grocery", MONDAY)


def campaign(cid: str, *effects: Effect, conditions: tuple[Condition, ...] = (),
             audience: tuple[Condition, ...] = (), owner: str = "grocery",
             priority: int = 0, exclusive: bool = False, limits: Limits = NO_LIMITS,
             channels: frozenset[str] = frozenset(), trigger: Trigger = Trigger.PURCHASE,
             valid_until: datetime | None = None, partners: frozenset[str] | None = None,
             ) -> Campaign:
    return Campaign(
        id=cid, version=1, owner=owner, funder=owner, name=f"Campaign {cid}", trigger=trigger,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC), valid_until=valid_until,
        partners=partners if partners is not None else frozenset({owner}), channels=channels,
        audience=audience, conditions=conditions, effects=effects, limits=limits,
        stacking=Stacking(exclusive, priority))


def purchase(rule: RuleVersion, amount: int, *lines: LineItem, channel: Channel = Channel.STORE,
             at: datetime = MONDAY, earned_today: int = 0) -> PurchaseContext:
    """A purchase with its base points from the real rule engine, as the earn path has them."""
    facts = PurchaseFacts(amount, "UAH", channel, lines)
    base = quote_earn(rule, facts, earned_today=earned_today).points
    return PurchaseContext("grocery", channel.value, at, amount, "UAH",
                           lines or (LineItem(amount),), base)


def run(rule: RuleVersion, buy: PurchaseContext, *campaigns: Campaign,
        member: MemberFacts = MEMBER, used: dict[str, Used] | None = None) -> Evaluation:
    cset = compile_campaigns(campaigns)
    candidates = cset.candidates(buy.partner_id, buy.channel, buy.occurred_at)
    return evaluate(candidates, buy, member, used or {}, rule)


def points(ev: Evaluation) -> dict[str, int]:
    return {a.campaign_id: a.points for a in ev.awards}


# -- the mechanics, each with its numbers ---------------------------------------------------------


def test_fixed_bonus_on_the_worked_example(grocery: RuleVersion) -> None:
    buy = purchase(grocery, 120_000)
    assert buy.base_points == 120
    ev = run(grocery, buy, campaign("welcome", BonusPoints(50)))
    assert ev.awards == (Award("welcome", 1, "grocery", "m-1", 50,
                               "Campaign welcome (welcome v1): bonus 50 points → +50 points"),)
    assert ev.bonus_points == 50 and ev.skips == ()


def test_double_points_on_organic(grocery: RuleVersion) -> None:
    # 800.00 bread = 80 points; 400.00 organic = 40 × 1.5 = 60 points; base 140.
    buy = purchase(grocery, 120_000, LineItem(80_000, "bakery"), LineItem(40_000, "organic"))
    assert buy.base_points == 140
    ev = run(grocery, buy, campaign("organic2", Multiplier(Fraction(2), frozenset({"organic"})),
                                    conditions=(BasketHas(frozenset({"organic"})),)))
    assert points(ev) == {"organic2": 60}
    assert "×2 on lines in organic: 60 base × 1 → 60 points" in ev.awards[0].explanation
    # No organic line: the condition does not hold, nothing is listed.
    plain = purchase(grocery, 120_000, LineItem(120_000, "bakery"))
    assert run(grocery, plain, campaign("organic2", Multiplier(Fraction(2), frozenset({"organic"})),
                                        conditions=(BasketHas(frozenset({"organic"})),))) \
        == Evaluation()


def test_multiplier_by_sku_rounds_once_with_the_rule(grocery: RuleVersion) -> None:
    # 15.50 of SKU A-1 = 1.55 points, 14.50 of A-1 = 1.45: 3.0 × 0.5 = 1.5 → floor 1.
    buy = purchase(grocery, 3_000, LineItem(1_550, sku="A-1"), LineItem(1_450, sku="A-1"))
    assert buy.base_points == 3
    ev = run(grocery, buy, campaign("sku", Multiplier(Fraction(3, 2), skus=frozenset({"A-1"}))))
    assert points(ev) == {"sku": 1}


def test_triple_in_the_app_on_weekends_in_kyiv(grocery: RuleVersion) -> None:
    triple = campaign("app3", Multiplier(Fraction(3)), conditions=(
        ChannelIn(frozenset({"app"})), Schedule(frozenset({5, 6}), timezone="Europe/Kyiv")))
    weekend = purchase(grocery, 120_000, channel=Channel.APP, at=SATURDAY)
    assert weekend.base_points == 240  # app ×2
    assert points(run(grocery, weekend, triple)) == {"app3": 480}  # 240 × (3 - 1)
    assert run(grocery, purchase(grocery, 120_000, channel=Channel.APP), triple) == Evaluation()
    assert run(grocery, purchase(grocery, 120_000, at=SATURDAY), triple) == Evaluation()
    # Friday 22:30 UTC is Saturday 00:30 in Kyiv; Sunday 22:30 UTC is already Monday there.
    friday_night = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)
    sunday_night = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)
    assert points(run(grocery, purchase(grocery, 120_000, channel=Channel.APP, at=friday_night),
                      triple)) == {"app3": 480}
    assert run(grocery, purchase(grocery, 120_000, channel=Channel.APP, at=sunday_night),
               triple) == Evaluation()


def test_happy_hour_time_window_is_half_open(grocery: RuleVersion) -> None:
    happy = campaign("happy", BonusPoints(10), conditions=(
        Schedule(start=time(12, 0), end=time(14, 0), timezone="UTC"),))
    assert points(run(grocery, purchase(grocery, 10_000, at=MONDAY), happy)) == {"happy": 10}
    at_end = MONDAY.replace(hour=14)
    assert run(grocery, purchase(grocery, 10_000, at=at_end), happy) == Evaluation()


def test_cashback_five_percent(grocery: RuleVersion) -> None:
    # 5 % of 1,234.56 UAH = 61.728 UAH = 6,172.8 minor / 10 a point = 617.28 → floor 617.
    ev = run(grocery, purchase(grocery, 123_456), campaign("cash5", Cashback(Fraction(5))))
    assert points(ev) == {"cash5": 617}
    assert "5% cashback on the basket (1234.56 UAH) at 10 minor units a point → 617 points" \
        in ev.awards[0].explanation


def test_cashback_where_points_have_no_value_is_skipped(grocery: RuleVersion) -> None:
    no_burn = dataclasses.replace(grocery, burn=None)
    ev = run(no_burn, purchase(grocery, 120_000), campaign("cash5", Cashback(Fraction(5))))
    assert ev.awards == ()
    assert [(s.campaign_id, s.reason) for s in ev.skips] == [("cash5", SkipReason.NO_POINT_VALUE)]


def test_gift_over_500(grocery: RuleVersion) -> None:
    gift = TillReward(RewardKind.GIFT, "GIFT-500", "a jar of honey", value_minor=15_000)
    c = campaign("gift", gift, conditions=(MinSpend(50_000),))
    ev = run(grocery, purchase(grocery, 50_000), c)
    assert [(a.points, a.till_reward) for a in ev.awards] == [(0, gift)]
    assert "till reward gift GIFT-500: a jar of honey" in ev.awards[0].explanation
    assert run(grocery, purchase(grocery, 49_999), c) == Evaluation()


def test_birthday_bonus_in_the_birth_month(grocery: RuleVersion) -> None:
    c = campaign("bday", BonusPoints(100), audience=(BirthdayMonth(),), owner=COALITION,
                 partners=frozenset({"grocery", "fuel"}))
    buy = purchase(grocery, 10_000)
    ev = run(grocery, buy, c, member=MemberFacts("m-1", birth_month=11))
    assert ev.awards[0].funder == COALITION and ev.bonus_points == 100
    assert run(grocery, buy, c, member=MemberFacts("m-1", birth_month=12)) == Evaluation()
    assert run(grocery, buy, c, member=MemberFacts("m-1")) == Evaluation()


def test_welcome_on_the_first_purchase_and_the_nth(grocery: RuleVersion) -> None:
    c = campaign("first", BonusPoints(200), audience=(NthPurchase(1),))
    buy = purchase(grocery, 10_000)
    assert points(run(grocery, buy, c, member=MemberFacts("m-1", purchases_at_partner=0))) \
        == {"first": 200}
    assert run(grocery, buy, c, member=MemberFacts("m-1", purchases_at_partner=1)) == Evaluation()
    tenth = campaign("tenth", BonusPoints(75), audience=(NthPurchase(10),))
    assert points(run(grocery, buy, tenth, member=MemberFacts("m-1", purchases_at_partner=9))) \
        == {"tenth": 75}


def test_tier_segment_and_coupon_conditions(grocery: RuleVersion) -> None:
    buy = purchase(grocery, 10_000)
    gold = campaign("gold", BonusPoints(30), audience=(TierIn(frozenset({"gold"})),))
    seg = campaign("seg", BonusPoints(40), audience=(InSegment("grocery-3x-no-fuel"),))
    coupon = campaign("cpn", BonusPoints(60), conditions=(CouponPresented(),))
    everyone = MemberFacts("m-1", tier="gold", segments=frozenset({"grocery-3x-no-fuel"}),
                           coupons=frozenset({"cpn"}))
    assert points(run(grocery, buy, gold, seg, coupon, member=everyone)) \
        == {"gold": 30, "seg": 40, "cpn": 60}
    nobody = MemberFacts("m-1", tier="silver", coupons=frozenset({"other"}))
    assert run(grocery, buy, gold, seg, coupon, member=nobody) == Evaluation()


def test_referral_rewards_both_members(grocery: RuleVersion) -> None:
    c = campaign("ref", ReferralReward(referrer_points=300, referred_points=200),
                 audience=(ReferralInEffect(),), owner=COALITION, partners=frozenset({"grocery"}))
    ev = run(grocery, purchase(grocery, 10_000), c,
             member=MemberFacts("m-new", referred_by="m-friend"))
    assert [(a.member_id, a.points, a.funder) for a in ev.awards] == [
        ("m-new", 200, COALITION), ("m-friend", 300, COALITION)]
    assert "referrer m-friend" in ev.awards[1].explanation
    assert run(grocery, purchase(grocery, 10_000), c, member=MemberFacts("m-new")) == Evaluation()


# -- stacking -------------------------------------------------------------------------------------


def test_exclusive_first_blocks_every_later_one(grocery: RuleVersion) -> None:
    top = campaign("a-top", BonusPoints(200), priority=10, exclusive=True)
    mid = campaign("b-mid", BonusPoints(50), priority=5)
    low = campaign("c-low", BonusPoints(500), priority=0, exclusive=True)
    ev = run(grocery, purchase(grocery, 10_000), low, mid, top)
    assert points(ev) == {"a-top": 200}
    assert [(s.campaign_id, s.reason) for s in ev.skips] == [
        ("b-mid", SkipReason.NOT_STACKABLE), ("c-low", SkipReason.NOT_STACKABLE)]
    assert "an exclusive campaign was applied" in ev.skips[0].explanation


def test_exclusive_after_a_stackable_is_skipped(grocery: RuleVersion) -> None:
    top = campaign("a-top", BonusPoints(200), priority=10, exclusive=True,
                   conditions=(MinSpend(100_000),))  # does not hold at 100.00
    mid = campaign("b-mid", BonusPoints(50), priority=5)
    also = campaign("b-also", BonusPoints(5), priority=5)  # tie: campaign id decides
    low = campaign("c-low", BonusPoints(500), priority=0, exclusive=True)
    ev = run(grocery, purchase(grocery, 10_000), low, mid, top, also)
    assert [a.campaign_id for a in ev.awards] == ["b-also", "b-mid"]
    assert [(s.campaign_id, s.reason) for s in ev.skips] == [("c-low", SkipReason.NOT_STACKABLE)]
    assert "exclusive, and another campaign was applied first" in ev.skips[0].explanation


def test_an_exhausted_exclusive_does_not_block(grocery: RuleVersion) -> None:
    top = campaign("a-top", BonusPoints(200), priority=10, exclusive=True,
                   limits=Limits(budget_points=1_000))
    mid = campaign("b-mid", BonusPoints(50), priority=5)
    ev = run(grocery, purchase(grocery, 10_000), top, mid, used={"a-top": Used(points=1_000)})
    assert points(ev) == {"b-mid": 50}
    assert [(s.campaign_id, s.reason) for s in ev.skips] == [("a-top", SkipReason.BUDGET_EXHAUSTED)]


# -- budgets and limits ---------------------------------------------------------------------------


def test_budget_gives_what_is_left_then_skips(grocery: RuleVersion) -> None:
    c = campaign("b", BonusPoints(50), limits=Limits(budget_points=100))
    buy = purchase(grocery, 10_000)
    assert points(run(grocery, buy, c, used={"b": Used(points=40, rewards=1)})) == {"b": 50}
    partial = run(grocery, buy, c, used={"b": Used(points=80, rewards=2)})
    assert points(partial) == {"b": 20}
    assert "capped at the 20 points left of the budget" in partial.awards[0].explanation
    spent = run(grocery, buy, c, used={"b": Used(points=100, rewards=3)})
    assert spent.awards == ()
    assert [(s.reason, s.explanation) for s in spent.skips] == [(
        SkipReason.BUDGET_EXHAUSTED,
        "Campaign b (b v1): skipped, budget of 100 points used up (100 used)")]


def test_reward_count_limit(grocery: RuleVersion) -> None:
    gift = TillReward(RewardKind.FREE_DELIVERY, "FREE-DEL", "free delivery")
    c = campaign("g", gift, limits=Limits(max_rewards=10))
    buy = purchase(grocery, 10_000)
    assert len(run(grocery, buy, c, used={"g": Used(rewards=9)}).awards) == 1
    ev = run(grocery, buy, c, used={"g": Used(rewards=10)})
    assert [(s.reason, s.explanation) for s in ev.skips] == [(
        SkipReason.REWARDS_EXHAUSTED,
        "Campaign g (g v1): skipped, all 10 rewards given (10 given)")]


def test_member_limits_by_count_and_points(grocery: RuleVersion) -> None:
    c = campaign("m", BonusPoints(50), limits=Limits(per_member=(
        MemberLimit(Window.DAY, count=1), MemberLimit(Window.MONTH, points=120))))
    buy = purchase(grocery, 10_000)
    once = run(grocery, buy, c, used={"m": Used(member={Window.DAY: (50, 1)})})
    assert [(s.reason, s.explanation) for s in once.skips] == [(
        SkipReason.MEMBER_LIMIT,
        "Campaign m (m v1): skipped, member limit of 1 per day reached (1 given)")]
    month = {Window.DAY: (0, 0), Window.MONTH: (100, 2)}
    capped = run(grocery, buy, c, used={"m": Used(member=month)})
    assert points(capped) == {"m": 20}
    assert "capped at the member's 20 points left this month" in capped.awards[0].explanation
    full = run(grocery, buy, c, used={"m": Used(member={Window.MONTH: (120, 3)})})
    assert [s.reason for s in full.skips] == [SkipReason.MEMBER_LIMIT]


def test_referral_under_a_budget_pays_the_referred_member_first(grocery: RuleVersion) -> None:
    c = campaign("ref", ReferralReward(300, 200), audience=(ReferralInEffect(),),
                 limits=Limits(budget_points=1_000))
    ev = run(grocery, purchase(grocery, 10_000), c, used={"ref": Used(points=750)},
             member=MemberFacts("m-new", referred_by="m-friend"))
    assert [(a.member_id, a.points) for a in ev.awards] == [("m-new", 200), ("m-friend", 50)]


# -- the rule's caps scale the multiplier ---------------------------------------------------------


def test_double_points_follow_the_rules_caps(grocery: RuleVersion) -> None:
    whole = campaign("x2", Multiplier(Fraction(2)))
    big = purchase(grocery, 6_000_000)  # 6,000 raw points, capped at 5,000 per transaction
    assert big.base_points == 5_000
    assert points(run(grocery, big, whole)) == {"x2": 5_000}
    daily = purchase(grocery, 120_000, earned_today=19_950)  # 50 of 120 left today
    assert daily.base_points == 50
    assert points(run(grocery, daily, whole)) == {"x2": 50}


# -- candidates, needs, discounts, windows --------------------------------------------------------


def test_candidates_are_indexed_by_partner_in_stacking_order() -> None:
    ended = datetime(2026, 6, 1, tzinfo=UTC)
    cset = compile_campaigns([
        campaign("z", BonusPoints(1), priority=1),
        campaign("a", BonusPoints(1)),
        campaign("fuel-only", BonusPoints(1), owner="fuel"),
        campaign("old", BonusPoints(1), valid_until=ended),
        campaign("app-only", BonusPoints(1), channels=frozenset({"app"})),
        campaign("welcome", BonusPoints(1), trigger=Trigger.ENROLMENT),
        campaign("coal", BonusPoints(1), owner=COALITION, priority=5,
                 partners=frozenset({"grocery", "fuel"})),
    ])
    assert isinstance(cset, CampaignSet)
    ids = [k.campaign.id for k in cset.candidates("grocery", "store", MONDAY)]
    assert ids == ["coal", "z", "a"]
    assert [k.campaign.id for k in cset.candidates("grocery", "app", MONDAY)] \
        == ["coal", "z", "a", "app-only"]
    assert [k.campaign.id for k in cset.candidates("grocery", "store", ended.replace(day=1))] \
        == ["coal", "z", "a"]
    may = datetime(2026, 5, 1, tzinfo=UTC)
    assert [k.campaign.id for k in cset.candidates("grocery", "store", may)] \
        == ["coal", "z", "a", "old"]
    assert [k.campaign.id for k in cset.candidates("fuel", "store", MONDAY)] \
        == ["coal", "fuel-only"]
    enrolment = cset.candidates("grocery", "store", MONDAY, Trigger.ENROLMENT)
    assert [k.campaign.id for k in enrolment] == ["welcome"]
    assert cset.candidates("charity", "store", MONDAY) == ()


def test_candidates_follow_validity_edges_in_any_order_of_times() -> None:
    """The set caches the candidates for the span between validity edges: a time on either
    side of an edge, asked in any order, still gets its own answer."""
    start, end = datetime(2026, 5, 10, tzinfo=UTC), datetime(2026, 5, 20, tzinfo=UTC)
    may = dataclasses.replace(campaign("may", BonusPoints(1), valid_until=end), valid_from=start)
    cset = compile_campaigns([campaign("always", BonusPoints(1)), may])
    second = timedelta(seconds=1)

    def ids(at: datetime) -> list[str]:
        return [k.campaign.id for k in cset.candidates("grocery", "store", at)]

    for at, expected in [(start, ["always", "may"]), (start - second, ["always"]),
                         (end - second, ["always", "may"]), (end, ["always"]),
                         (start + second, ["always", "may"]), (end + 100 * second, ["always"]),
                         (start - 100 * second, ["always"]), (start, ["always", "may"])]:
        assert ids(at) == expected, at


def test_needs_names_only_what_the_candidates_read() -> None:
    cset = compile_campaigns([
        campaign("plain", BonusPoints(1), conditions=(MinSpend(100),)),
        campaign("tier", BonusPoints(1), audience=(TierIn(frozenset({"gold"})),),
                 limits=Limits(budget_points=100, per_member=(MemberLimit(Window.WEEK, count=1),
                                                              MemberLimit(Window.DAY, points=5)))),
        campaign("cpn", BonusPoints(1), conditions=(CouponPresented(),),
                 limits=Limits(max_rewards=3)),
        campaign("ref", ReferralReward(1, 1), audience=(ReferralInEffect(),)),
    ])
    cands = cset.candidates("grocery", "store", MONDAY)
    assert cset.needs(()) is NO_NEEDS
    assert cset.needs([k for k in cands if k.campaign.id == "plain"]) is NO_NEEDS
    needs = cset.needs(cands)
    assert (needs.tier, needs.segments, needs.birth_month, needs.purchases_at_partner,
            needs.referral, needs.coupons) == (True, False, False, False, True, True)
    assert needs.counters == ("cpn", "tier")
    assert dict(needs.member_windows) == {"tier": (Window.WEEK, Window.DAY)}
    assert needs.member_facts


def test_points_discount_takes_the_best_rate_whose_conditions_hold(grocery: RuleVersion) -> None:
    cset = compile_campaigns([
        campaign("d12", PointsDiscount(Fraction(12)), priority=9),
        campaign("d15", PointsDiscount(Fraction(15)), audience=(TierIn(frozenset({"gold"})),)),
        campaign("d20", PointsDiscount(Fraction(20)), conditions=(MinSpend(1_000_000),)),
        campaign("bonus", BonusPoints(5)),
    ])
    cands = cset.candidates("grocery", "store", MONDAY)
    basket = dataclasses.replace(purchase(grocery, 10_000), base_points=0)
    best = points_discount(cands, basket, MemberFacts("m-1", tier="gold"))
    assert best is not None and best[0] == 15 and best[1].campaign_id == "d15"
    assert best[1].explanation == "Campaign d15 (d15 v1): one point pays 15 minor units here"
    other = points_discount(cands, basket, MemberFacts("m-1"))
    assert other is not None and (other[0], other[1].campaign_id) == (12, "d12")
    assert points_discount(cset.candidates("fuel", "store", MONDAY), basket, MEMBER) is None
    # PointsDiscount gives nothing at earn time.
    assert points(evaluate(cands, purchase(grocery, 10_000), MEMBER, {}, grocery)) == {"bonus": 5}


@pytest.mark.parametrize(("window", "start"), [
    (Window.DAY, datetime(2026, 11, 26, tzinfo=UTC)),
    (Window.WEEK, datetime(2026, 11, 23, tzinfo=UTC)),
    (Window.MONTH, datetime(2026, 11, 1, tzinfo=UTC)),
    (Window.LIFETIME, None),
])
def test_member_windows_start_in_utc(window: Window, start: datetime | None) -> None:
    assert window_start(window, datetime(2026, 11, 26, 17, 45, 3, tzinfo=UTC)) == start
    kyiv = ZoneInfo("Europe/Kyiv")  # 01:30 on the 27th in Kyiv is still the 26th in UTC
    assert window_start(window, datetime(2026, 11, 27, 1, 30, tzinfo=kyiv)) == start


def test_a_till_reward_outlives_a_spent_points_budget(grocery: RuleVersion) -> None:
    # A return may leave a budget over-consumed: the gift (no points) is still given, never a
    # negative award.
    gift = TillReward(RewardKind.GIFT, "GIFT-1", "a mug")
    c = campaign("g", gift, BonusPoints(10), limits=Limits(budget_points=100))
    ev = run(grocery, purchase(grocery, 10_000), campaign("g2", gift,
                                                          limits=Limits(budget_points=100)),
             used={"g2": Used(points=103)})
    assert [(a.points, a.till_reward) for a in ev.awards] == [(0, gift)]
    skipped = run(grocery, purchase(grocery, 10_000), c, used={"g": Used(points=103)})
    assert [s.reason for s in skipped.skips] == [SkipReason.BUDGET_EXHAUSTED]


@pytest.mark.parametrize("partner", ["grocery", "fuel", "electronics"])
def test_line_points_match_the_rule_engine(partner: str) -> None:
    rule = Registry.from_catalog().rule_at(partner, MONDAY)
    assert rule.earn is not None
    categories = {*rule.earn.category_multipliers, *(q.category for q in rule.earn.quantity_earn)}
    lines = [LineItem(12_345, c, quantity) for c in [None, "x", *sorted(categories)]
             for quantity in (None, 41_250)]
    for line in lines:
        assert line_points(rule.earn, line) == _line_points(rule.earn, line, "", "UAH")[0]


def test_a_referral_may_reward_only_the_referrer(grocery: RuleVersion) -> None:
    c = campaign("ref", ReferralReward(referrer_points=500, referred_points=0),
                 audience=(ReferralInEffect(),))
    ev = run(grocery, purchase(grocery, 10_000), c,
             member=MemberFacts("m-new", referred_by="m-friend"))
    assert [(a.member_id, a.points) for a in ev.awards] == [("m-friend", 500)]


def test_enrolment_welcome_bonus_with_a_budget() -> None:
    welcome = campaign("welcome", BonusPoints(100), trigger=Trigger.ENROLMENT, owner=COALITION,
                       partners=frozenset({"grocery"}), audience=(BirthdayMonth(),),
                       limits=Limits(budget_points=250))
    cands = compile_campaigns([welcome, campaign("buy", BonusPoints(5))]).candidates(
        "grocery", "app", MONDAY, Trigger.ENROLMENT)
    assert [k.campaign.id for k in cands] == ["welcome"]
    born_in_november = MemberFacts("m-9", birth_month=11)
    ev = evaluate_enrolment(cands, "grocery", "app", MONDAY, born_in_november, {})
    assert [(a.member_id, a.points, a.funder) for a in ev.awards] == [("m-9", 100, COALITION)]
    last = evaluate_enrolment(cands, "grocery", "app", MONDAY, born_in_november,
                              {"welcome": Used(points=200, rewards=2)})
    assert last.bonus_points == 50
    assert evaluate_enrolment(cands, "grocery", "app", MONDAY, MemberFacts("m-9"), {}) \
        == Evaluation()


def test_a_held_out_member_is_skipped_and_blocks_nothing(grocery: RuleVersion) -> None:
    """Decision 034: an eligible member in the holdout is skipped (reason holdout, the funder
    named for the marker row); the held-out campaign is not applied, so the exclusive one after
    it still applies. A member outside the holdout gets it as before."""
    from gateway.promotions.holdout import held_out

    members = [MemberFacts(f"m-{n}") for n in range(40)]
    out = next(m for m in members if held_out("a-top", m.member_id, 50))
    kept = next(m for m in members if not held_out("a-top", m.member_id, 50))
    top = dataclasses.replace(campaign("a-top", BonusPoints(200), priority=10, exclusive=True),
                              holdout_percent=50)
    low = campaign("c-low", BonusPoints(500), priority=0, exclusive=True)
    buy = purchase(grocery, 10_000)
    ev = evaluate(compile_campaigns([top, low]).campaigns, buy, out, {}, grocery)
    assert points(ev) == {"c-low": 500}
    assert [(s.campaign_id, s.reason, s.funder) for s in ev.skips] == [
        ("a-top", SkipReason.HOLDOUT, "grocery")]
    assert "is in its 50% holdout group" in ev.skips[0].explanation
    ev = evaluate(compile_campaigns([top, low]).campaigns, buy, kept, {}, grocery)
    assert points(ev) == {"a-top": 200}
    assert [(s.campaign_id, s.reason) for s in ev.skips] == [("c-low", SkipReason.NOT_STACKABLE)]
