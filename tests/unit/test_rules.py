"""The pure rule engine (partners.rules) and version look-up (partners.registry), exact values."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from gateway.core.errors import (
    CapExceeded,
    InvalidAmount,
    InvalidInput,
    NotFound,
    RedemptionNotAccepted,
    RuleNotInForce,
)
from gateway.core.money import Rounding
from partners.config import (
    BurnRule,
    Channel,
    EarnRule,
    QuantityEarn,
    RuleVersion,
    SettlementPrices,
)
from partners.registry import Registry, UnknownPartner
from partners.rules import (
    LineItem,
    PurchaseFacts,
    points_to_pay,
    proportional_points,
    quote_burn,
    quote_earn,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTLEMENT = SettlementPrices("EUR", Fraction(1, 4), Fraction(22, 100), Fraction(2, 100))


def rule(earn: EarnRule | None = None, burn: BurnRule | None = None) -> RuleVersion:
    return RuleVersion("test", 1, datetime(2026, 1, 1, tzinfo=UTC), earn, burn, SETTLEMENT)


BASE = EarnRule(points=1, per_amount_minor=1000)  # 1 point per 10.00 UAH


def buy(amount: int, *lines: LineItem, channel: Channel = Channel.STORE) -> PurchaseFacts:
    return PurchaseFacts(amount, "UAH", channel, tuple(lines))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_catalog()


# -- the worked example ------------------------------------------------------------------------


def test_worked_example_earn_at_grocery_redeem_at_electronics(registry: Registry) -> None:
    grocery = registry.rule_at("grocery", NOW)
    quote = quote_earn(grocery, buy(120_000))
    assert quote.points == 120
    assert quote.uncapped_points == 120
    assert quote.capped_by is None
    assert quote.explanation == ("1200.00 UAH at 1 point per 10.00 UAH = 120 points",)

    electronics = registry.rule_at("electronics", NOW)
    burn = quote_burn(electronics, points=100, basket_amount_minor=4_999)
    assert (burn.points, burn.value_minor, burn.max_points) == (100, 100, 4_999)  # 1.00 EUR
    assert points_to_pay(electronics, 100) == 100


def test_grocery_app_channel_doubles(registry: Registry) -> None:
    quote = quote_earn(registry.rule_at("grocery", NOW), buy(120_000, channel=Channel.APP))
    assert quote.points == 240
    assert quote.explanation[-1] == "app channel ×2 → 240"


# -- earn --------------------------------------------------------------------------------------


def test_base_earn_floors() -> None:
    assert quote_earn(rule(BASE), buy(1_999)).points == 1
    assert quote_earn(rule(BASE), buy(999)).points == 0
    assert quote_earn(rule(BASE), buy(1)).points == 0


def test_rounding_comes_from_the_rule() -> None:
    half_up = dataclasses.replace(BASE, rounding=Rounding.HALF_UP)
    assert quote_earn(rule(half_up), buy(1_500)).points == 2
    assert quote_earn(rule(half_up), buy(1_499)).points == 1


def test_min_spend_gives_zero_but_reports_uncapped() -> None:
    earn = dataclasses.replace(BASE, min_spend_minor=10_000)
    below = quote_earn(rule(earn), buy(9_999))
    assert (below.points, below.uncapped_points, below.capped_by) == (0, 9, "min_spend")
    at = quote_earn(rule(earn), buy(10_000))
    assert (at.points, at.capped_by) == (10, None)


def test_transaction_cap() -> None:
    earn = dataclasses.replace(BASE, cap_per_transaction=50)
    quote = quote_earn(rule(earn), buy(1_000_000))
    assert (quote.points, quote.uncapped_points, quote.capped_by) == (50, 1000, "transaction_cap")
    assert "capped at 50 per transaction" in quote.explanation
    assert quote_earn(rule(earn), buy(50_000)).capped_by is None  # exactly 50: not capped


def test_daily_cap_uses_earned_today() -> None:
    earn = dataclasses.replace(BASE, cap_per_member_daily=200)
    assert quote_earn(rule(earn), buy(120_000), earned_today=0).points == 120
    q = quote_earn(rule(earn), buy(120_000), earned_today=150)
    assert (q.points, q.uncapped_points, q.capped_by) == (50, 120, "daily_cap")
    over = quote_earn(rule(earn), buy(120_000), earned_today=250)
    assert (over.points, over.capped_by) == (0, "daily_cap")


def test_transaction_cap_then_daily_cap() -> None:
    earn = dataclasses.replace(BASE, cap_per_transaction=100, cap_per_member_daily=130)
    q = quote_earn(rule(earn), buy(500_000), earned_today=50)
    assert (q.points, q.uncapped_points, q.capped_by) == (80, 500, "daily_cap")


def test_category_and_channel_multipliers_round_once() -> None:
    earn = dataclasses.replace(
        BASE,
        category_multipliers={"organic": Fraction(3, 2)},
        channel_multipliers={"app": Fraction(2)},
    )
    # organic 15.00 -> 1.5 * 1.5 = 2.25; other 15.00 -> 1.5; total 3.75; app x2 = 7.5 -> 7.
    # Rounding each line first would give 2 + 1 = 3, x2 = 6.
    q = quote_earn(
        rule(earn),
        buy(3_000, LineItem(1_500, "organic"), LineItem(1_500), channel=Channel.APP),
    )
    assert (q.points, q.uncapped_points) == (7, 7)
    assert q.explanation == (
        "line 1 (organic): 15.00 UAH at 1 point per 10.00 UAH = 1.5 points, organic ×1.5 → 2.25",
        "line 2: 15.00 UAH at 1 point per 10.00 UAH = 1.5 points",
        "lines total 3.75",
        "app channel ×2 → 7.5",
        "rounded (floor) → 7 points",
    )
    # same basket in store: no channel multiplier
    assert (
        quote_earn(rule(earn), buy(3_000, LineItem(1_500, "organic"), LineItem(1_500))).points == 3
    )


def test_fuel_earns_by_litre(registry: Registry) -> None:
    fuel = registry.rule_at("fuel", NOW)
    # 40.5 L of fuel for 2,400.00 UAH: 40.5 points (not 120 by amount) + 100.00 UAH snacks: 5
    q = quote_earn(
        fuel, buy(250_000, LineItem(240_000, "fuel", 40_500), LineItem(10_000, "snacks"))
    )
    assert q.points == 45
    # fuel without a quantity falls back to the amount rule: 2,400.00 UAH / 20.00 = 120
    assert quote_earn(fuel, buy(240_000, LineItem(240_000, "fuel"))).points == 120
    capped = quote_earn(fuel, buy(240_000, LineItem(240_000, "fuel", 40_000)), earned_today=480)
    assert (capped.points, capped.capped_by) == (20, "daily_cap")


def test_quantity_earn_with_category_multiplier() -> None:
    earn = dataclasses.replace(
        BASE,
        quantity_earn=(QuantityEarn("fuel", 1, 1000),),
        category_multipliers={"fuel": Fraction(2)},
    )
    assert quote_earn(rule(earn), buy(100, LineItem(100, "fuel", 10_250))).points == 20


def test_earn_rejections() -> None:
    with pytest.raises(InvalidAmount) as zero:
        quote_earn(rule(BASE), buy(0))
    assert zero.value.field == "amount"
    with pytest.raises(InvalidAmount):
        quote_earn(rule(BASE), buy(-100))
    with pytest.raises(InvalidInput) as mismatch:
        quote_earn(rule(BASE), buy(1_000, LineItem(600), LineItem(300)))
    assert mismatch.value.field == "lines"
    assert "900" in mismatch.value.message
    with pytest.raises(InvalidAmount) as bad_line:
        quote_earn(rule(BASE), buy(1_000, LineItem(1_100), LineItem(-100)))
    assert bad_line.value.field == "lines"
    with pytest.raises(RuleNotInForce):
        quote_earn(rule(None, BurnRule(Fraction(10))), buy(1_000))


# -- burn --------------------------------------------------------------------------------------

GROCERY_BURN = BurnRule(
    point_value_minor=Fraction(10), max_basket_share=Fraction(1, 2), min_points=50
)


def test_burn_value_and_max_share() -> None:
    q = quote_burn(rule(BASE, GROCERY_BURN), points=100, basket_amount_minor=2_000)
    assert (q.points, q.value_minor, q.max_points) == (100, 1_000, 100)
    with pytest.raises(CapExceeded) as exc:
        quote_burn(rule(BASE, GROCERY_BURN), points=100, basket_amount_minor=1_999)
    assert (exc.value.cap, exc.value.field) == (99, "points")


def test_burn_value_floors_for_fractional_point_value() -> None:
    third = BurnRule(point_value_minor=Fraction(1, 3))
    q = quote_burn(rule(BASE, third), points=5, basket_amount_minor=1)
    assert (q.value_minor, q.max_points) == (1, 5)  # 5/3 -> 1; 6 points would pay 2 > 1
    with pytest.raises(CapExceeded):
        quote_burn(rule(BASE, third), points=6, basket_amount_minor=1)


def test_burn_min_points_and_bad_inputs() -> None:
    r = rule(BASE, GROCERY_BURN)
    with pytest.raises(InvalidAmount, match="min_points=50") as few:
        quote_burn(r, points=49, basket_amount_minor=100_000)
    assert few.value.field == "points"
    assert quote_burn(r, points=50, basket_amount_minor=100_000).value_minor == 500
    with pytest.raises(InvalidAmount) as zero:
        quote_burn(r, points=0, basket_amount_minor=100_000)
    assert zero.value.field == "points"
    with pytest.raises(InvalidAmount) as basket:
        quote_burn(r, points=50, basket_amount_minor=0)
    assert basket.value.field == "basketAmount"
    with pytest.raises(RedemptionNotAccepted):
        quote_burn(rule(BASE, None), points=50, basket_amount_minor=100_000)


def test_points_to_pay_ceil() -> None:
    r = rule(BASE, GROCERY_BURN)
    assert points_to_pay(r, 1_000) == 100
    assert points_to_pay(r, 1_001) == 101
    assert points_to_pay(r, 1) == 1
    with pytest.raises(InvalidAmount):
        points_to_pay(r, 0)
    with pytest.raises(RedemptionNotAccepted):
        points_to_pay(rule(BASE), 100)


def test_proportional_points() -> None:
    assert proportional_points(120, 30_000, 120_000, Rounding.FLOOR) == 30
    assert proportional_points(100, 1, 3, Rounding.FLOOR) == 33
    assert proportional_points(100, 1, 3, Rounding.CEIL) == 34
    assert proportional_points(5, 1, 2, Rounding.HALF_EVEN) == 2
    assert proportional_points(5, 1, 2, Rounding.HALF_UP) == 3
    assert proportional_points(7, 10, 10, Rounding.FLOOR) == 7
    for part, whole in [(11, 10), (1, 0), (-1, 10)]:
        with pytest.raises(ValueError):
            proportional_points(7, part, whole, Rounding.FLOOR)


# -- versions and the registry -----------------------------------------------------------------

V2_FROM = datetime(2027, 1, 1, tzinfo=UTC)


def test_rule_at_is_half_open(registry: Registry) -> None:
    assert registry.rule_at("grocery", V2_FROM - timedelta(microseconds=1)).version == 1
    assert registry.rule_at("grocery", V2_FROM).version == 2
    assert registry.rule_at("grocery", datetime(2026, 1, 1, tzinfo=UTC)).version == 1
    with pytest.raises(RuleNotInForce, match="first version starts"):
        registry.rule_at("grocery", datetime(2026, 1, 1, tzinfo=UTC) - timedelta(microseconds=1))
    with pytest.raises(ValueError):
        registry.rule_at("grocery", datetime(2026, 6, 1))  # naive


def test_grocery_v2_has_min_spend(registry: Registry) -> None:
    v2 = registry.rule_at("grocery", V2_FROM)
    assert quote_earn(v2, buy(9_000)).capped_by == "min_spend"
    assert quote_earn(v2, buy(120_000, channel=Channel.APP)).points == 360


def test_registry_lookups(registry: Registry) -> None:
    assert [p.id for p in registry.partners()] == ["charity", "electronics", "fuel", "grocery"]
    assert registry.rule("grocery", 2).effective_from == V2_FROM
    with pytest.raises(UnknownPartner) as unknown:
        registry.partner("nope")
    assert isinstance(unknown.value, NotFound)
    assert isinstance(unknown.value, KeyError)
    assert str(unknown.value) == "no partner with id 'nope'"
    with pytest.raises(NotFound):
        registry.rule("grocery", 3)


def test_with_version_returns_new_registry(registry: Registry) -> None:
    v2 = registry.rule("grocery", 2)
    v3 = dataclasses.replace(v2, version=3, effective_from=datetime(2028, 1, 1, tzinfo=UTC))
    newer = registry.with_version(v3)
    assert newer.rule_at("grocery", datetime(2028, 1, 1, tzinfo=UTC)).version == 3
    assert registry.rule_at("grocery", datetime(2028, 1, 1, tzinfo=UTC)).version == 2  # unchanged
    with pytest.raises(InvalidInput) as old_version:
        registry.with_version(dataclasses.replace(v3, version=2))
    assert old_version.value.field == "version"
    with pytest.raises(InvalidInput) as early:
        registry.with_version(dataclasses.replace(v3, effective_from=V2_FROM))
    assert early.value.field == "effectiveFrom"
    with pytest.raises(InvalidInput) as no_earn:
        registry.with_version(dataclasses.replace(v3, earn=None))
    assert no_earn.value.field == "earn"
    charity_v2 = dataclasses.replace(
        registry.rule("charity", 1), version=2, effective_from=V2_FROM, earn=BASE
    )
    with pytest.raises(InvalidInput, match="charity"):
        registry.with_version(charity_v2)
    with pytest.raises(UnknownPartner):
        registry.with_version(dataclasses.replace(v3, partner_id="nope"))


def test_charity_takes_donations_but_issues_nothing(registry: Registry) -> None:
    charity = registry.rule_at("charity", NOW)
    with pytest.raises(RuleNotInForce):
        quote_earn(charity, buy(1_000))
    assert quote_burn(charity, points=120, basket_amount_minor=1_200).value_minor == 1_200


def test_a_checked_purchase_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The earn's request checks the purchase once (``checked_purchase``); quoting the checked
    purchase does not walk its lines again. Unchecked facts are still checked."""
    from partners import rules

    calls: list[PurchaseFacts] = []
    real = rules.check_purchase

    def counting(purchase: PurchaseFacts) -> tuple[LineItem, ...]:
        calls.append(purchase)
        return real(purchase)

    monkeypatch.setattr(rules, "check_purchase", counting)
    facts = buy(3_000, LineItem(1_000), LineItem(2_000))
    checked = rules.checked_purchase(facts)
    assert rules.quote_earn(rule(BASE), checked).points == 3
    assert len(calls) == 1
    assert rules.quote_earn(rule(BASE), facts).points == 3
    assert len(calls) == 2
    with pytest.raises(InvalidInput):
        rules.checked_purchase(buy(3_001, LineItem(1_000), LineItem(2_000)))
