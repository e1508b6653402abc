"""A stored answer's JSON (``gateway.ledger.model.to_json``) is one canonical text: keys
sorted, no spaces, ASCII. Long lists of campaigns are spliced in from each item's memoised
text; the result must be byte for byte what one ``json.dumps`` of the whole gives (replays
return the stored bytes), whether an item's text is made fresh or comes from the memo."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.core.money import Money
from gateway.ledger import model
from gateway.ledger.model import (
    AppliedPromotion,
    BonusPosted,
    Earned,
    Redeemed,
    SkippedPromotion,
    TillRewardGiven,
    from_json,
    to_json,
)

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def canonical(value: Any) -> str:
    """The stored format as it has always been written: one json.dumps of the whole."""
    return json.dumps(model._encode(value), sort_keys=True, separators=(",", ":"))


def promotions(n: int) -> tuple[AppliedPromotion, ...]:
    return tuple(
        AppliedPromotion(f"c-{k:02d}", 1 + k % 3, "coalition" if k % 2 else "grocery", k,
                         f'offer "{k}" (c-{k:02d} v1): bonus {k} points → +{k} points',
                         TillRewardGiven("gift", f"GIFT{k}", "a mug ×1", 500, "2.5")
                         if k % 5 == 0 else None)
        for k in range(n))


def earned(n: int, skipped: int = 0) -> Earned:
    applied = promotions(n)
    skips = tuple(SkippedPromotion(f"s-{k}", 2, "member_limit", f"s-{k} v2: skipped, capped")
                  for k in range(skipped))
    return Earned("op-1", 10 + sum(p.points for p in applied), 3,
                  ("100.00 UAH at 1 point per 10.00 UAH = 10 points",
                   *(p.explanation for p in applied), *(s.explanation for s in skips)),
                  0, 125, AT, pending=0, bonus_points=sum(p.points for p in applied),
                  promotions=applied, skipped=skips)


def test_a_result_with_many_campaigns_is_the_canonical_json_fresh_and_memoised() -> None:
    value = earned(35, skipped=4)
    model._ITEM_JSON.clear()
    fresh = to_json(value)
    assert fresh == canonical(value)
    assert len(model._ITEM_JSON) == 35 + 4  # every item memoised once
    assert to_json(value) == fresh  # from the memo
    assert to_json(earned(35, skipped=4)) == fresh  # equal items, other objects: made again
    assert len(model._ITEM_JSON) == 2 * (35 + 4)
    assert from_json(Earned, fresh) == value
    assert "\\u2192" in fresh and '\\"0\\"' in fresh  # ASCII, escaped as json.dumps does


def test_every_shape_of_result_is_the_canonical_json() -> None:
    shapes: list[Any] = [
        earned(0), earned(1), earned(2), earned(1, skipped=2), earned(0, skipped=1),
        BonusPosted("op-2", 7, promotions(3), AT),
        Redeemed("op-3", 50, Money(5_000, "UAH"), 2, 40, AT, promotions(1), ("coupon X",)),
        Redeemed("op-4", 50, Money(5_000, "UAH"), 2, 40, AT, promotions(2)),
        {"plain": [1, 2], "dict": True},
    ]
    for value in shapes:
        assert to_json(value) == canonical(value), value


def test_a_small_answer_keeps_its_exact_bytes() -> None:
    value = earned(2)
    assert to_json(value) == (
        '{"available":125,"bonus_points":1,"debt_repaid":0,"explanation":['
        '"100.00 UAH at 1 point per 10.00 UAH = 10 points",'
        '"offer \\"0\\" (c-00 v1): bonus 0 points \\u2192 +0 points",'
        '"offer \\"1\\" (c-01 v1): bonus 1 points \\u2192 +1 points"],'
        '"operation_id":"op-1","pending":0,"points":11,"promotions":['
        '{"campaign_id":"c-00","explanation":"offer \\"0\\" (c-00 v1): bonus 0 points '
        '\\u2192 +0 points","funder":"grocery","points":0,"till_reward":{"code":"GIFT0",'
        '"description":"a mug \\u00d71","kind":"gift","percent":"2.5","value_minor":500},'
        '"version":1},'
        '{"campaign_id":"c-01","explanation":"offer \\"1\\" (c-01 v1): bonus 1 points '
        '\\u2192 +1 points","funder":"coalition","points":1,"till_reward":null,"version":2}],'
        '"recorded_at":{"$dt":"2026-03-01T12:30:00+00:00"},"rule_version":3,"skipped":[]}')


def test_the_memo_stays_bounded() -> None:
    model._ITEM_JSON.clear()
    for k in range(model._ITEM_JSON_MAX // 2 + 5):
        value = Earned("op", 1, 1, (), 0, 0, AT, promotions=(
            AppliedPromotion("a", 1, "g", k, f"line {k}"), AppliedPromotion("b", 1, "g", k, "x")))
        assert to_json(value) == canonical(value)
    assert 0 < len(model._ITEM_JSON) <= model._ITEM_JSON_MAX
