"""The campaign parser on garbage: whatever a file or a client sends, the answer is a campaign or
``InvalidInput`` naming a field that exists in the input's shape; never another exception."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, time
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import InvalidInput
from gateway.promotions import codec, manage
from gateway.promotions import model as m

VALID: dict[str, Any] = {
    "id": "spring", "name": "Spring", "validFrom": "2026-03-01T00:00:00+02:00",
    "validUntil": "2026-06-01T00:00:00+03:00", "channels": ["app", "STORE"],
    "audience": {"tiers": ["gold"], "birthdayMonth": True},
    "conditions": {"minSpendMinor": 50000, "basketHas": {"categories": ["organic"]},
                   "schedule": {"days": ["saturday", "SUNDAY"], "start": "08:00",
                                "end": "12:00", "timezone": "Europe/Kyiv"},
                   "nthPurchase": 1},
    "effects": [{"multiplier": {"factor": "3/2", "categories": ["organic"]}},
                {"cashback": {"percent": "2.5"}},
                {"tillReward": {"kind": "free_delivery", "code": "FREE", "description": "x",
                                "valueMinor": 9900}}],
    "limits": {"budgetPoints": 100000, "maxRewards": 5000,
               "perMember": [{"window": "month", "points": 500, "count": 3}]},
    "stacking": {"exclusive": True, "priority": 7},
}
FIELD = re.compile(r"[A-Za-z]+(\[\d+\])?(\.[A-Za-z]+(\[\d+\])?)*")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["1.5", "0", "-1", "3/0", "nan", "1e999", "2026-01-01",
                                     "12:60", "monday", "gold", "app", "DAY"]))
garbage = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def test_a_full_definition_parses_exactly() -> None:
    c = manage.parse(VALID, owner="grocery")
    assert c.id == "grocery:spring" and c.partners == frozenset({"grocery"})
    assert c.valid_from == datetime(2026, 2, 28, 22, 0, tzinfo=UTC)
    assert c.channels == frozenset({"app", "store"})
    assert c.audience == (m.TierIn(frozenset({"gold"})), m.BirthdayMonth())
    assert c.conditions == (
        m.MinSpend(50000), m.BasketHas(frozenset({"organic"})),
        m.Schedule(frozenset({5, 6}), time(8, 0), time(12, 0), "Europe/Kyiv"), m.NthPurchase(1))
    assert c.effects == (
        m.Multiplier(Fraction(3, 2), frozenset({"organic"})), m.Cashback(Fraction(5, 2)),
        m.TillReward(m.RewardKind.FREE_DELIVERY, "FREE", "x", 9900))
    assert c.limits == m.Limits(100000, 5000, (m.MemberLimit(m.Window.MONTH, 500, 3),))
    assert c.stacking == m.Stacking(True, 7)
    assert codec.loads(codec.dumps(c)) == c


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


PATHS = _paths(VALID)


def _outcome(raw: Any) -> None:
    try:
        campaign = manage.parse(raw, owner="grocery")
    except InvalidInput as refused:
        # The field is a path in the input's shape, or the unknown key the input sent.
        assert refused.field, refused
        assert FIELD.fullmatch(refused.field) or refused.message.startswith("unknown field")
        return
    assert isinstance(campaign, m.Campaign)
    assert codec.loads(codec.dumps(campaign)) == campaign


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=garbage)
def test_garbage_anywhere_is_a_campaign_or_a_named_field(path: tuple[Any, ...],
                                                         value: Any) -> None:
    raw = copy.deepcopy(VALID)
    node: Any = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _outcome(raw)


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from([*sorted(VALID), "x"]), garbage, max_size=8))
def test_garbage_documents_are_a_campaign_or_a_named_field(raw: dict[str, Any]) -> None:
    _outcome(raw)


def test_holdout_percent_parses_round_trips_and_is_bounded() -> None:
    """Decision 034: 0 to 50, stored in the version's canonical JSON; out of range names it."""
    c = manage.parse({**VALID, "holdoutPercent": 25}, owner="grocery")
    assert c.holdout_percent == 25 and codec.loads(codec.dumps(c)).holdout_percent == 25
    assert manage.parse(VALID, owner="grocery").holdout_percent == 0
    for bad in (51, -1, True, "10"):
        try:
            manage.parse({**VALID, "holdoutPercent": bad}, owner="grocery")
        except InvalidInput as error:
            assert error.field == "holdoutPercent"
            assert "from 0 to 50" in error.message
        else:
            raise AssertionError(f"holdoutPercent {bad!r} was accepted")
