"""The tier programme's pure parts (decision 026): months, the status a window of months gives
(tier, points to the next, until when it holds) and the programme file's strict reading."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import InvalidInput
from gateway.promotions import tier_sync
from gateway.promotions.model import Multiplier, RewardKind, TierIn, TillReward
from gateway.promotions.tier_config import load_programme, programme_from_mapping, tiers_path
from gateway.promotions.tiers import add_months, month_of, status, window
from gateway.settings import DEFAULT_CATALOG

PROGRAMME = load_programme(tiers_path(DEFAULT_CATALOG))
AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_months_wrap_across_years() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 202612
    assert (add_months(202611, 2), add_months(202601, -1), add_months(202612, -12)) == (
        202701, 202512, 202512)
    assert window(AT, 12) == (202512, 202611)


def test_status_counts_the_window_and_says_until_when_it_holds() -> None:
    assert PROGRAMME is not None
    # 3,000 in January 2026 and 2,500 in June: Gold (5,500) until January leaves the window
    # (February 2027: 2,500 left); outside the window, December 2024 does not count.
    months = {202412: 9000, 202601: 3000, 202606: 2500}
    found = status(PROGRAMME, months, AT)
    assert (found.tier.id, found.qualifying_points, found.points_to_next) == ("gold", 5500, 14500)
    assert found.next_tier is not None and found.next_tier.name == "Platinum"
    assert found.valid_until == datetime(2027, 1, 1, tzinfo=UTC)  # window Jan 2026..Dec 2026
    # at exactly the threshold it holds; one point less it does not
    assert status(PROGRAMME, {202611: 5000}, AT).tier.id == "gold"
    below = status(PROGRAMME, {202611: 4999}, AT)
    assert (below.tier.id, below.points_to_next, below.valid_until) == ("silver", 1, None)
    top = status(PROGRAMME, {202610: 20000, 202611: 5}, AT)
    assert (top.tier.id, top.next_tier, top.points_to_next) == ("platinum", None, None)
    # Platinum needs 20,000: October's leave in October 2027, then 5 < 20,000.
    assert top.valid_until == datetime(2027, 10, 1, tzinfo=UTC)


def test_the_sync_means_one_campaign_per_tier_and_partner_with_effects() -> None:
    assert PROGRAMME is not None
    wanted = {c.id: c for c in tier_sync.campaigns(PROGRAMME)}
    assert sorted(wanted) == ["fuel:tier-gold", "fuel:tier-platinum",
                              "tier-gold-grocery", "tier-platinum-electronics",
                              "tier-platinum-grocery"]
    gold = wanted["tier-gold-grocery"]
    assert (gold.owner, gold.funder, gold.partners, gold.audience) == (
        "coalition", "coalition", frozenset({"grocery"}), (TierIn(frozenset({"gold"})),))
    assert gold.effects == (Multiplier(Fraction(5, 4)), TillReward(
        RewardKind.DISCOUNT, "TIER-GOLD-3", "Gold discount card: 3% off", percent=Fraction(3)))
    fuel = wanted["fuel:tier-gold"]
    assert (fuel.owner, fuel.funder, fuel.effects) == ("fuel", "fuel",
                                                       (Multiplier(Fraction(11, 10)),))


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "version": 1, "effective_from": "2026-01-01T00:00:00Z",
        "tiers": [{"id": "silver", "name": "Silver", "threshold": 0},
                  {"id": "gold", "name": "Gold", "threshold": 5000}],
        "partners": {"grocery": {"multipliers": {"gold": "1.25"},
                                 "discount_percent": {"gold": "3"}}}}
    raw.update(changes)
    return raw


@pytest.mark.parametrize(("changes", "field"), [
    ({"colour": "red"}, "colour"),
    ({"tiers": [{"id": "silver", "name": "Silver", "threshold": 10}]}, "tiers[0].threshold"),
    ({"tiers": [{"id": "silver", "name": "Silver", "threshold": 0},
                {"id": "gold", "name": "Gold", "threshold": 0}]}, "tiers[1].threshold"),
    ({"partners": {"grocery": {"multipliers": {"gold": 1.25}}}},
     "partners.grocery.multipliers.gold"),
    ({"partners": {"grocery": {"multipliers": {"gold": "1"}}}},
     "partners.grocery.multipliers.gold"),
    ({"partners": {"grocery": {"multipliers": {"bronze": "2"}}}},
     "partners.grocery.multipliers.bronze"),
    ({"partners": {"grocery": {"discount_percent": {"gold": "120"}}}},
     "partners.grocery.discount_percent.gold"),
    ({"partners": {"grocery": {"funder": "someone"}}}, "partners.grocery.funder"),
    ({"effective_from": "2026-01-01"}, "effective_from"),
])
def test_a_bad_programme_is_refused_naming_its_field(changes: dict[str, Any],
                                                     field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        programme_from_mapping(_raw(**changes), where="tiers.toml")
    assert refused.value.field == field
    assert str(refused.value.message).startswith(f"tiers.toml: {field}: ")


def test_no_file_means_no_programme(tmp_path: Path) -> None:
    assert load_programme(tmp_path / "tiers.toml") is None
    good = programme_from_mapping(_raw(), where="x")
    assert (good.window_months, [t.threshold for t in good.tiers]) == (12, [0, 5000])
