"""Coupons presented at ``redeemPoints`` (decision 025): a coupon whose campaign gives a better
point value (``pointsDiscount``) is used when that value pays, once; every code presented gets
its line in the answer's ``explanation``; a replay answers again without using it twice.

Electronics: 1 point per 1.00 EUR earned, a point pays 1 cent when spent (its burn rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.promotions.coupons import normalise
from tests.api.test_coupons_api import COUPON, ISSUE
from tests.api.test_mechanics import EARN, ENROL, create
from tests.support.harness import Api, make_gateway, partner_api

pytestmark = pytest.mark.anyio

REDEEM = """mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) { __typename
  ... on RedeemPointsSuccess { operationId points value { amountMinor } available explanation
    promotions { campaignId points } }
  ... on Error { code message field } } }"""
VIP = "electronics:vip-rate"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def redeem(api: Api, key: str, points: int, codes: list[str] | None) -> dict[str, Any]:
    answer = await api.gql(REDEEM, {"input": {
        "customerId": "e-1", "points": points, "idempotencyKey": key,
        "basketAmount": {"amountMinor": 100_000, "currency": "EUR"},
        **({"couponCodes": codes} if codes is not None else {})}})
    result: dict[str, Any] = answer["redeemPoints"]
    return result


async def test_a_coupon_doubles_what_points_pay_once(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    api = await partner_api(gw, "electronics")
    await api.gql(ENROL, {"c": "e-1"})
    earned = (await api.gql(EARN, {"input": {
        "customerId": "e-1", "amount": {"amountMinor": 1_000_000, "currency": "EUR"},
        "channel": "STORE", "purchaseId": "e-p1", "idempotencyKey": "e-k1"}}))["earnPoints"]
    assert earned["points"] == 10_000
    await create(api, id="vip-rate", name="VIP coupon: a point pays 2 cents",
                 conditions={"couponPresented": True},
                 effects=[{"pointsDiscount": {"pointValueMinor": "2"}}])
    await create(api, id="bonus", name="Bonus coupon", conditions={"couponPresented": True},
                 effects=[{"bonusPoints": {"points": 50}}])
    [code] = (await api.gql(ISSUE, {"input": {"campaignId": "vip-rate", "count": 1}})
              )["issueCoupons"]["codes"]
    [bonus_code] = (await api.gql(ISSUE, {"input": {"campaignId": "bonus", "count": 1}})
                    )["issueCoupons"]["codes"]
    shown = normalise(code)

    # 1,000 points with the coupon pay 20.00 EUR (2 cents each), not 10.00.
    first = await redeem(api, "r-1", 1_000, [code])
    assert first["__typename"] == "RedeemPointsSuccess", first
    assert (first["points"], first["value"]["amountMinor"], first["available"]) == (
        1_000, 2_000, 9_000)
    assert first["explanation"] == [f"coupon {shown} ({VIP}): redeemed"]
    assert first["promotions"] == [{"campaignId": VIP, "points": 0}]
    assert (await api.gql(COUPON, {"code": code}))["coupon"]["uses"] == 1

    # The same key again: the stored answer, the coupon not used a second time.
    assert await redeem(api, "r-1", 1_000, [code]) == first
    assert (await api.gql(COUPON, {"code": code}))["coupon"]["uses"] == 1

    # A new redemption with the used coupon: the rule's own value, and why.
    again = await redeem(api, "r-2", 1_000, [code])
    assert (again["value"]["amountMinor"], again["available"], again["promotions"]) == (
        1_000, 8_000, [])
    assert again["explanation"] == [f"coupon {shown} ({VIP}): not used, already used up"]

    # A bonus-points coupon does nothing for a redemption and stays usable; an unknown code
    # is named; no code at all: no lines.
    other = await redeem(api, "r-3", 100, [bonus_code, "NOPE-NOPE"])
    assert other["value"]["amountMinor"] == 100
    assert other["explanation"] == [
        f"coupon {normalise(bonus_code)} (electronics:bonus): not used, its campaign does "
        "not apply to this purchase (the coupon stays usable)",
        "coupon NOPENOPE: not used, no such coupon here"]
    assert (await api.gql(COUPON, {"code": bonus_code}))["coupon"]["uses"] == 0
    plain = await redeem(api, "r-4", 100, None)
    assert (plain["value"]["amountMinor"], plain["explanation"]) == (100, [])


async def test_too_many_codes_at_redeem_name_the_field(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    api = await partner_api(gw, "electronics")
    await api.gql(ENROL, {"c": "e-1"})
    refused = await redeem(api, "r-x", 100, [f"CODE{n}" for n in range(11)])
    assert (refused["__typename"], refused["field"]) == ("InvalidInputError", "couponCodes")
