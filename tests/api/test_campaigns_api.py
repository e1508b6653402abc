"""Campaigns through the partner API (issue 12): earnPoints answers bonusPoints, promotions,
tillRewards and skippedPromotions, takes a line's sku and couponCodes, and replays the same
JSON; enrolCustomer posts an enrolment campaign's welcome bonus in its own transaction, once.
BonusPoints and MinSpend campaigns only (every engine evaluates them the same way); grocery
earns 1 point per 10.00 UAH, so 1,200.00 UAH is 120 base points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.db import tables as t
from gateway.ledger.balances import member_balance
from gateway.promotions.model import Trigger
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import make_gateway, partner_api

pytestmark = pytest.mark.anyio

EARN = """mutation($input: EarnPointsInput!) { earnPoints(input: $input) { __typename
  ... on EarnPointsSuccess { operationId points bonusPoints available
    promotions { campaignId version funder points explanation }
    tillRewards { kind code description valueMinor }
    skippedPromotions { campaignId version reason explanation } }
  ... on Error { code message field } } }"""
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path)


def earn_input(key: str, **extra: Any) -> dict[str, Any]:
    return {"customerId": "c-1", "amount": {"amountMinor": 120_000, "currency": "UAH"},
            "channel": "STORE", "purchaseId": key, "idempotencyKey": key, **extra}


def member_of(gw: Gateway, customer: str) -> str:
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.customer_id == customer)).scalar_one())


async def test_earn_points_shows_each_bonus_and_replays_it(gw: Gateway) -> None:
    api = await partner_api(gw, "grocery")
    await api.gql(ENROL, {"c": "c-1"})
    publish(gw, bonus_campaign("gro-50", 50, min_spend_minor=100_000),
            bonus_campaign("coal-30", 30, partner=None, partners=frozenset({"grocery"})))
    lines = [{"amountMinor": 100_000, "category": "organic", "sku": "APL-1"},
             {"amountMinor": 20_000, "sku": "BRD-2"}]
    first = await api.gql(EARN, {"input": earn_input("k-1", lines=lines,
                                                     couponCodes=["WELCOME10"])})
    earned = first["earnPoints"]
    # organic x1.5: floor(100_000 * 1.5 / 1000 + 20_000 / 1000) = 170 base, + 80 bonus.
    assert earned["__typename"] == "EarnPointsSuccess"
    assert (earned["points"], earned["bonusPoints"], earned["available"]) == (250, 80, 250)
    # The explanation's wording is the engine's; each names its campaign.
    assert [(p["campaignId"], p["version"], p["funder"], p["points"])
            for p in earned["promotions"]] == [("coal-30", 1, "coalition", 30),
                                               ("gro-50", 1, "grocery", 50)]
    assert all(p["campaignId"] in p["explanation"] for p in earned["promotions"])
    assert (earned["tillRewards"], earned["skippedPromotions"]) == ([], [])
    again = await api.gql(EARN, {"input": earn_input("k-1", lines=lines,
                                                     couponCodes=["WELCOME10"])})
    assert again == first
    # The coupon codes are part of the request: the same key with other codes is a reuse.
    reused = await api.gql(EARN, {"input": earn_input("k-1", lines=lines)})
    assert reused["earnPoints"]["__typename"] == "IdempotencyKeyReusedError"


async def test_too_many_coupon_codes_is_refused_naming_the_field(gw: Gateway) -> None:
    api = await partner_api(gw, "grocery")
    await api.gql(ENROL, {"c": "c-1"})
    data = await api.gql(EARN, {"input": earn_input("k-1",
                                                    couponCodes=[f"C{n}" for n in range(11)])})
    assert data["earnPoints"]["__typename"] == "InvalidInputError"
    assert data["earnPoints"]["field"] == "couponCodes"


async def test_enrolment_posts_the_welcome_bonus_once(gw: Gateway) -> None:
    api = await partner_api(gw, "grocery")
    publish(gw, bonus_campaign("welcome-100", 100, trigger=Trigger.ENROLMENT),
            bonus_campaign("fuel-welcome", 40, partner="fuel", trigger=Trigger.ENROLMENT),
            bonus_campaign("purchase-only", 7))
    await api.gql(ENROL, {"c": "c-1"})
    await api.gql(ENROL, {"c": "c-1"})  # a retried enrolment: the same member, no new bonus
    member = member_of(gw, "c-1")
    assert member_balance(gw.services.engine, gw.services.clock, member).available == 100
    with gw.services.engine.connect() as conn:
        ops = conn.execute(select(t.operations.c.kind, t.operations.c.points).where(
            t.operations.c.member_id == member)).all()
        awards = conn.execute(select(t.promotion_awards.c.campaign_id,
                                     t.promotion_awards.c.points)).all()
        lots = conn.execute(select(t.lots.c.points, t.lots.c.origin_partner_id)).all()
    assert [tuple(o) for o in ops] == [("bonus", 100)]
    assert [tuple(a) for a in awards] == [("welcome-100", 100)]
    assert [tuple(lot) for lot in lots] == [(100, "grocery")]
