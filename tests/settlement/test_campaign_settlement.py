"""Settlement end to end with real campaign earns (issue 12): the earns, the redemption and the
return go through the partner API and the real write path (no synthetic bonus postings), on
this run's backend. November 2026, on Saturday the 21st:

  grocery: 1,200.00 UAH earns 120 base points, its own campaign 50 (grocery-funded) and a
           coalition campaign 30 (coalition-funded): 200 points.
  electronics: the member pays 100 points towards a 10.00 EUR basket; the shop's own weekend
           campaign makes a point pay 1.5 minor instead of 1: 150 minor of goods.
  grocery: half the purchase (600.00 UAH) comes back: CEIL halves of each part go back,
           60 base, 25 to the grocery's campaign, 15 to the coalition's.

In EUR minor units (grocery: 0.25 a point issued; electronics: paid 1 a point redeemed, 2 %
fee): the grocery pays 120 -> 30, is credited 60 -> 15; as a funder it pays 50 -> CEIL 12.5 =
13 and is credited 25 -> FLOOR 6.25 = 6. The coalition's own campaign costs it 30 -> CEIL 7.5
= 8, less 15 -> FLOOR 3.75 = 3 (a memo). The electronics shop is paid per point redeemed:
100 points -> 100 minor (fee CEIL 2), though it gave 150 minor of goods: the 50 is the better
value it promised in its own campaign and bears itself (decision 027), so it is outside the
report, which balances to the minor unit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.core.clock import FixedClock
from gateway.promotions import funding
from gateway.settlement import exposure
from gateway.settlement.model import FunderLine, Period
from gateway.settlement.service import settlement_report
from tests.api.test_mechanics import EARN, ENROL, REDEEM, RETURN, create, member_of
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import make_gateway, partner_api
from tests.support.members import link_with_code

pytestmark = pytest.mark.anyio
NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_campaign_earns_redemption_and_return_settle_per_funder(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 21, 10, tzinfo=UTC))  # a Saturday
    gw = make_gateway(tmp_path, clock=clock)
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 1_000, actor="finance:ana")
    exposure.set_terms(s.engine, s.clock, "coalition", mode="credit", policy=None,
                       limit_points=100, actor="finance:ana")
    grocery = await partner_api(gw, "grocery")
    electronics = await partner_api(gw, "electronics")
    await grocery.gql(ENROL, {"c": "g-1"})
    await create(grocery, id="gro-50", name="50 points",
                 effects=[{"bonusPoints": {"points": 50}}])
    publish(gw, bonus_campaign("coal-30", 30, partner=None, partners=frozenset({"grocery"})))
    await create(electronics, id="weekend-points", name="Points pay 1.5x on weekends",
                 conditions={"schedule": {"days": ["SATURDAY", "SUNDAY"]}},
                 effects=[{"pointsDiscount": {"pointValueMinor": "1.5"}}])
    member = member_of(gw, "g-1")
    link_with_code(s.engine, s.clock, "electronics", "e-1", member)

    earned = await _ok(grocery, EARN, "earnPoints", {
        "customerId": "g-1", "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "channel": "STORE", "purchaseId": "g-p1", "idempotencyKey": "g-k1"})
    assert (earned["points"], earned["bonusPoints"]) == (200, 80)
    paid = await _ok(electronics, REDEEM, "redeemPoints", {
        "customerId": "e-1", "points": 100, "idempotencyKey": "e-r1",
        "basketAmount": {"amountMinor": 1_000, "currency": "EUR"}})
    assert (paid["value"]["amountMinor"], paid["available"]) == (150, 100)
    await _ok(grocery, RETURN, "returnPurchase", {
        "purchaseId": "g-p1", "amount": {"amountMinor": 60_000, "currency": "UAH"},
        "idempotencyKey": "g-ret1"})

    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    report = settlement_report(s.engine, s.rules, NOVEMBER, "EUR")
    lines = {p.partner_id: p for p in report.partners}
    g, e = lines["grocery"].figures, lines["electronics"].figures
    assert (g.issued_points, g.issued_minor, g.issue_returns_points, g.issue_returns_minor) == (
        120, 30, 60, 15)
    assert (g.promotion_points, g.promotion_minor, g.promotion_returns_points,
            g.promotion_returns_minor) == (50, 13, 25, 6)
    assert (e.redeemed_points, e.redeemed_minor, e.fee_minor) == (100, 100, 2)
    c = report.coalition
    assert (c.bonus_points, c.bonus_returns_points, c.bonus_minor, c.bonus_returns_minor) == (
        30, 15, 8, 3)
    assert report.funders() == (FunderLine("grocery", 50, 25, 13, 6),
                                FunderLine("coalition", 30, 15, 8, 3))
    # The report balances: what partners pay minus what they receive is the coalition's.
    assert sum(p.net_minor for p in report.partners) + c.net_minor == 0
    # Funding counted the same points: issued, and released by the return.
    with s.engine.connect() as conn:
        grocery_funding = funding.read(conn, "grocery")
        coalition_funding = funding.read(conn, "coalition")
    assert grocery_funding is not None and coalition_funding is not None
    assert (grocery_funding.issued_points, grocery_funding.reversed_points,
            grocery_funding.left_points) == (50, 25, 975)
    assert (coalition_funding.issued_points, coalition_funding.reversed_points,
            coalition_funding.exposure_points, coalition_funding.left_points) == (30, 15, 15, 85)


async def _ok(api: Any, query: str, field: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = (await api.gql(query, {"input": variables}))[field]
    assert not answer["__typename"].endswith("Error"), answer
    return answer


async def test_a_returned_referral_reward_settles_back_to_its_funder(tmp_path: Path) -> None:
    """Decision 035 with settlement: the grocery funds "refer a friend" (300 points to the
    referrer A, 100 to the referred B). B's 1,200.00 UAH purchase earns 120 + 100 and posts
    A's 300; half of it comes back: B gives 60 + 50, A gives CEIL(300 / 2) = 150 from its
    wallet. As a funder the grocery pays 400 -> 100 EUR minor and is credited 200 -> 50; its
    funding counts 400 issued and 200 reversed; the report balances to the minor unit."""
    from tests.api.test_referrals_api import ENROL as ENROL_REFERRED
    from tests.api.test_referrals_api import VIEWER
    from tests.support.members import member_api

    clock = FixedClock(datetime(2026, 11, 21, 10, tzinfo=UTC))
    gw = make_gateway(tmp_path, clock=clock)
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 1_000, actor="finance:ana")
    grocery = await partner_api(gw, "grocery")
    await grocery.gql(ENROL, {"c": "g-1"})
    code = (await member_api(gw, member_of(gw, "g-1")).gql(VIEWER))["viewer"]["referralCode"]
    await create(grocery, id="refer", name="Refer a friend",
                 conditions={"referralInEffect": True},
                 effects=[{"referralReward": {"referrerPoints": 300, "referredPoints": 100}}])
    enrolled = await grocery.gql(ENROL_REFERRED, {"c": "g-2", "r": code})
    assert enrolled["enrolCustomer"]["__typename"] == "EnrolCustomerSuccess"
    earned = await _ok(grocery, EARN, "earnPoints", {
        "customerId": "g-2", "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "channel": "STORE", "purchaseId": "b-p1", "idempotencyKey": "b-k1"})
    assert (earned["points"], earned["bonusPoints"]) == (220, 100)
    await _ok(grocery, RETURN, "returnPurchase", {
        "purchaseId": "b-p1", "amount": {"amountMinor": 60_000, "currency": "UAH"},
        "idempotencyKey": "b-ret1"})

    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    report = settlement_report(s.engine, s.rules, NOVEMBER, "EUR")
    g = {p.partner_id: p for p in report.partners}["grocery"].figures
    assert (g.issued_points, g.issue_returns_points) == (120, 60)
    assert (g.promotion_points, g.promotion_minor, g.promotion_returns_points,
            g.promotion_returns_minor) == (400, 100, 200, 50)
    assert report.funders() == (FunderLine("grocery", 400, 200, 100, 50),)
    assert sum(p.net_minor for p in report.partners) + report.coalition.net_minor == 0
    with s.engine.connect() as conn:
        grocery_funding = funding.read(conn, "grocery")
    assert grocery_funding is not None
    assert (grocery_funding.issued_points, grocery_funding.reversed_points) == (400, 200)
