"""gateway.promotions.validation: every semantic error is an InvalidInput naming its field by
the dotted camelCase path the API uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction

import pytest

from gateway.core.errors import InvalidInput
from gateway.promotions.model import (
    COALITION,
    BasketHas,
    BirthdayMonth,
    BonusPoints,
    Campaign,
    Cashback,
    ChannelIn,
    Limits,
    MemberLimit,
    MinSpend,
    Multiplier,
    NthPurchase,
    PointsDiscount,
    ReferralInEffect,
    ReferralReward,
    RewardKind,
    Schedule,
    Stacking,
    TierIn,
    TillReward,
    Trigger,
    Window,
)
from gateway.promotions.validation import validate

START = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = Campaign(
    id="c-1", version=1, owner="grocery", funder="grocery", name="Double organic",
    trigger=Trigger.PURCHASE, valid_from=START, valid_until=START + timedelta(days=30),
    partners=frozenset({"grocery"}), channels=frozenset({"app", "store"}),
    audience=(TierIn(frozenset({"gold"})),),
    conditions=(MinSpend(10_000), BasketHas(frozenset({"organic"})),
                Schedule(frozenset({5, 6}), time(9), time(21), "Europe/Kyiv")),
    effects=(Multiplier(Fraction(2), frozenset({"organic"})), BonusPoints(10),
             Cashback(Fraction(5, 2)), TillReward(RewardKind.GIFT, "GIFT-1", "a mug")),
    limits=Limits(budget_points=10_000, max_rewards=500,
                  per_member=(MemberLimit(Window.DAY, count=1), MemberLimit(Window.MONTH, 500))),
    stacking=Stacking(exclusive=True, priority=5),
)
REPLACE = dataclasses.replace


def test_a_good_campaign_passes() -> None:
    validate(GOOD)
    validate(REPLACE(GOOD, owner=COALITION, funder=COALITION,
                     partners=frozenset({"grocery", "fuel"})))
    validate(REPLACE(GOOD, trigger=Trigger.ENROLMENT, conditions=(), effects=(BonusPoints(100),),
                     audience=(BirthdayMonth(),)))
    validate(REPLACE(GOOD, audience=(ReferralInEffect(),),
                     effects=(ReferralReward(referrer_points=300, referred_points=0),)))


def effects(*e: object) -> Callable[[Campaign], Campaign]:
    return lambda c: REPLACE(c, effects=e)


def conditions(*k: object) -> Callable[[Campaign], Campaign]:
    return lambda c: REPLACE(c, conditions=k)


def limits(**kw: object) -> Callable[[Campaign], Campaign]:
    return lambda c: REPLACE(c, limits=Limits(**kw))  # type: ignore[arg-type]


CASES: list[tuple[str, Callable[[Campaign], Campaign], str]] = [
    ("blank name", lambda c: REPLACE(c, name="  "), "name"),
    ("empty id", lambda c: REPLACE(c, id=""), "id"),
    ("funder not the owner", lambda c: REPLACE(c, funder=COALITION), "funder"),
    ("partner campaign elsewhere", lambda c: REPLACE(c, partners=frozenset({"grocery", "fuel"})),
     "partners"),
    ("partner campaign at another", lambda c: REPLACE(c, partners=frozenset({"fuel"})),
     "partners"),
    ("coalition funded by a partner", lambda c: REPLACE(c, owner=COALITION), "funder"),
    ("no partners", lambda c: REPLACE(c, owner=COALITION, funder=COALITION,
                                      partners=frozenset()), "partners"),
    ("naive validFrom", lambda c: REPLACE(c, valid_from=datetime(2026, 1, 1)), "validFrom"),
    ("until before from", lambda c: REPLACE(c, valid_until=START), "validUntil"),
    ("unknown channel", lambda c: REPLACE(c, channels=frozenset({"fax"})), "channels"),
    ("min spend zero", conditions(MinSpend(0)), "conditions[0].amount"),
    ("empty basket condition", conditions(MinSpend(1), BasketHas()), "conditions[1].categories"),
    ("day 7", conditions(Schedule(frozenset({7}))), "conditions[0].days"),
    ("start after end", conditions(Schedule(start=time(22), end=time(6))), "conditions[0].start"),
    ("start only", conditions(Schedule(start=time(22))), "conditions[0].end"),
    ("unknown time zone", conditions(Schedule(timezone="Mars/Olympus")),
     "conditions[0].timezone"),
    ("empty channel condition", conditions(ChannelIn(frozenset())), "conditions[0].channels"),
    ("nth zero", conditions(NthPurchase(0)), "conditions[0].n"),
    ("no tiers", lambda c: REPLACE(c, audience=(TierIn(frozenset()),)), "audience[0].tiers"),
    ("no effects", effects(), "effects"),
    ("factor one", effects(BonusPoints(1), Multiplier(Fraction(1))), "effects[1].factor"),
    ("factor huge", effects(Multiplier(Fraction(101))), "effects[0].factor"),
    ("zero points", effects(BonusPoints(0)), "effects[0].points"),
    ("too many points", effects(BonusPoints(10**9 + 1)), "effects[0].points"),
    ("percent zero", effects(Cashback(Fraction(0))), "effects[0].percent"),
    ("percent over 100", effects(Cashback(Fraction(101))), "effects[0].percent"),
    ("bad reward code", effects(TillReward(RewardKind.GIFT, "gift 1", "a mug")),
     "effects[0].code"),
    ("long reward code", effects(TillReward(RewardKind.GIFT, "A" * 33, "a mug")),
     "effects[0].code"),
    ("discount without amount", effects(TillReward(RewardKind.DISCOUNT, "D-1", "10 off")),
     "effects[0].value"),
    ("point value zero", effects(PointsDiscount(Fraction(0))), "effects[0].pointValue"),
    ("coalition points discount",
     lambda c: REPLACE(c, owner=COALITION, funder=COALITION,
                       effects=(PointsDiscount(Fraction(15)),)), "effects[0]"),
    ("referral without condition", effects(ReferralReward(100, 100)), "effects[0]"),
    ("referral negative", lambda c: REPLACE(c, audience=(ReferralInEffect(),),
                                            effects=(ReferralReward(-1, 100),)),
     "effects[0].referrerPoints"),
    ("enrolment with a purchase condition",
     lambda c: REPLACE(c, trigger=Trigger.ENROLMENT, effects=(BonusPoints(5),)), "conditions[0]"),
    ("enrolment with a multiplier",
     lambda c: REPLACE(c, trigger=Trigger.ENROLMENT, conditions=()), "effects[0]"),
    ("budget zero", limits(budget_points=0), "limits.budgetPoints"),
    ("rewards zero", limits(max_rewards=0), "limits.maxRewards"),
    ("member limit empty", limits(per_member=(MemberLimit(Window.DAY),)),
     "limits.perMember[0].points"),
    ("member limit window twice", limits(per_member=(
        MemberLimit(Window.DAY, count=1), MemberLimit(Window.DAY, points=5))),
     "limits.perMember[1].window"),
    ("member count zero", limits(per_member=(MemberLimit(Window.WEEK, count=0),)),
     "limits.perMember[0].count"),
    ("priority huge", lambda c: REPLACE(c, stacking=Stacking(priority=10**7)),
     "stacking.priority"),
]


@pytest.mark.parametrize(("change", "field"), [(c, f) for _, c, f in CASES],
                         ids=[name for name, _, _ in CASES])
def test_errors_name_the_field(change: Callable[[Campaign], Campaign], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate(change(GOOD))
    assert caught.value.field == field
    assert caught.value.message  # says what is wrong
