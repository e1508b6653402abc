"""Two-step redemptions with campaigns (issue 12): ``authoriseRedemption`` is priced like
``redeemPoints``. A ``pointsDiscount`` campaign in force gives its better point value, and the
answer names the campaign. The capture pays that value even after the campaign has ended: the
till was quoted it, and the value is kept in the hold's stored answer. A coupon that unlocks the
discount is used at authorisation; it is given back when the hold is voided or lapses, and stays
used when the hold is captured.

Electronics: 1 point per 1.00 EUR earned; a point pays 1 cent when spent; holds last 1,800 s."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.clock import FixedClock
from gateway.ledger.expiry import run_expiry
from gateway.ledger.verify import verify_ledger
from gateway.promotions.coupons import normalise
from tests.api.test_coupons_api import COUPON, ISSUE
from tests.api.test_mechanics import EARN, ENROL, create
from tests.support.harness import NOW, Api, make_gateway, partner_api

pytestmark = pytest.mark.anyio

AUTHORISE = """mutation($input: RedeemPointsInput!) { authoriseRedemption(input: $input) {
  __typename ... on AuthoriseRedemptionSuccess { holdId points value { amountMinor } available
    promotions { campaignId points explanation } explanation }
  ... on Error { code message field } } }"""
CAPTURE = """mutation($input: CaptureRedemptionInput!) { captureRedemption(input: $input) {
  __typename ... on CaptureRedemptionSuccess { points released value { amountMinor } available }
  ... on Error { code message field } } }"""
VOID = """mutation($input: VoidRedemptionInput!) { voidRedemption(input: $input) {
  __typename ... on VoidRedemptionSuccess { released available }
  ... on Error { code message field } } }"""
WEEKEND = "electronics:weekend-points"
VIP = "electronics:vip-rate"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def electronics(tmp_path: Path, clock: FixedClock) -> tuple[Any, Api]:
    gw = make_gateway(tmp_path, clock=clock)
    api = await partner_api(gw, "electronics")
    await api.gql(ENROL, {"c": "e-1"})
    earned = (await api.gql(EARN, {"input": {
        "customerId": "e-1", "amount": {"amountMinor": 1_000_000, "currency": "EUR"},
        "channel": "STORE", "purchaseId": "e-p1", "idempotencyKey": "e-k1"}}))["earnPoints"]
    assert earned["points"] == 10_000
    return gw, api


async def authorise(api: Api, key: str, points: int, basket_minor: int = 100_000,
                    codes: list[str] | None = None) -> dict[str, Any]:
    answer = await api.gql(AUTHORISE, {"input": {
        "customerId": "e-1", "points": points, "idempotencyKey": key,
        "basketAmount": {"amountMinor": basket_minor, "currency": "EUR"},
        **({"couponCodes": codes} if codes is not None else {})}})
    result: dict[str, Any] = answer["authoriseRedemption"]
    return result


async def capture(api: Api, hold: str, key: str, points: int | None = None) -> dict[str, Any]:
    answer = await api.gql(CAPTURE, {"input": {
        "holdId": hold, "idempotencyKey": key, **({"points": points} if points else {})}})
    result: dict[str, Any] = answer["captureRedemption"]
    return result


async def test_a_weekend_discount_prices_the_hold_and_its_capture(tmp_path: Path) -> None:
    clock = FixedClock(NOW.replace(day=21))  # Saturday 2026-11-21 10:00 UTC
    gw, api = await electronics(tmp_path, clock)
    await create(api, id="weekend-points", name="Points pay 1.5x at Volt on weekends",
                 conditions={"schedule": {"days": ["SATURDAY", "SUNDAY"]}},
                 effects=[{"pointsDiscount": {"pointValueMinor": "1.5"}}],
                 validUntil="2026-11-21T10:10:00Z")

    # 6,667 points pay FLOOR(6,667 x 1.5) = 10,000 minor, not 6,667.
    held = await authorise(api, "a-1", 6_667)
    assert held["__typename"] == "AuthoriseRedemptionSuccess", held
    assert (held["points"], held["value"]["amountMinor"], held["available"]) == (
        6_667, 10_000, 3_333)
    [promotion] = held["promotions"]
    assert (promotion["campaignId"], promotion["points"]) == (WEEKEND, 0)
    assert "one point pays 1.5 minor units" in promotion["explanation"]
    # The basket caps the points at the better value, as at redeemPoints: 29.99 EUR takes at
    # most 1,999 points.
    capped = await authorise(api, "a-cap", 2_000, 2_999)
    assert (capped["__typename"], capped["field"]) == ("CapExceededError", "points")

    # Captured at 10:20, within the hold's 30 minutes but after the campaign ended at 10:10:
    # the value quoted at the till.
    clock.advance(timedelta(minutes=20))
    await api.fetch_token()
    part = await capture(api, held["holdId"], "c-1", 4_001)
    assert part == {"__typename": "CaptureRedemptionSuccess", "points": 4_001,
                    "released": 2_666, "value": {"amountMinor": 6_001}, "available": 5_999}
    # A new hold now: the rule's own value, no campaign named.
    monday = await authorise(api, "a-2", 1_000)
    assert (monday["value"]["amountMinor"], monday["promotions"]) == (1_000, [])
    assert (await capture(api, monday["holdId"], "c-2"))["value"] == {"amountMinor": 1_000}
    assert verify_ledger(gw.services.engine).problems == []


async def test_a_coupon_used_by_a_hold_comes_back_when_the_hold_does_not_go_through(
        tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw, api = await electronics(tmp_path, clock)
    await create(api, id="vip-rate", name="VIP coupon: a point pays 2 cents",
                 conditions={"couponPresented": True},
                 effects=[{"pointsDiscount": {"pointValueMinor": "2"}}])
    [code] = (await api.gql(ISSUE, {"input": {"campaignId": "vip-rate", "count": 1,
                                              "maxUses": 1}}))["issueCoupons"]["codes"]
    shown = normalise(code)

    async def uses() -> int:
        return int((await api.gql(COUPON, {"code": code}))["coupon"]["uses"])

    # Held with the coupon: 1,000 points pay 20.00 EUR; the coupon is used.
    first = await authorise(api, "a-1", 1_000, codes=[code])
    assert (first["value"]["amountMinor"], first["explanation"]) == (
        2_000, [f"coupon {shown} ({VIP}): redeemed"])
    assert await uses() == 1
    # Used up while held: a second hold with it gets the rule's value, and why.
    second = await authorise(api, "a-2", 1_000, codes=[code])
    assert (second["value"]["amountMinor"], second["explanation"]) == (
        1_000, [f"coupon {shown} ({VIP}): not used, already used up"])
    # Voided: the points and the coupon come back.
    voided = (await api.gql(VOID, {"input": {"holdId": first["holdId"],
                                             "idempotencyKey": "v-1"}}))["voidRedemption"]
    assert voided["__typename"] == "VoidRedemptionSuccess"
    assert await uses() == 0

    # Held again with it, then left to lapse: the next write gives the coupon back too.
    third = await authorise(api, "a-3", 1_000, codes=[code])
    assert third["value"]["amountMinor"] == 2_000 and await uses() == 1
    clock.advance(timedelta(seconds=1_800))
    await api.fetch_token()
    after = await authorise(api, "a-4", 500)  # any write on the member sweeps the lapsed hold
    assert after["__typename"] == "AuthoriseRedemptionSuccess"
    assert await uses() == 0

    # Held and captured: the coupon stays used; the capture pays the coupon's value.
    fourth = await authorise(api, "a-5", 1_000, codes=[code])
    captured = await capture(api, fourth["holdId"], "c-5")
    assert captured["value"] == {"amountMinor": 2_000}
    assert await uses() == 1
    assert verify_ledger(gw.services.engine).problems == []


async def test_a_hold_released_by_the_expiry_job_gives_its_coupon_back_once(
        tmp_path: Path) -> None:
    """The nightly expiry job (``run_expiry``), not a member's write, releases the lapsed hold:
    the coupon comes back with it, once; the expired hold can be neither captured nor voided
    (which would give the coupon back a second time)."""
    clock = FixedClock(NOW)
    gw, api = await electronics(tmp_path, clock)
    await create(api, id="vip-rate", name="VIP coupon: a point pays 2 cents",
                 conditions={"couponPresented": True},
                 effects=[{"pointsDiscount": {"pointValueMinor": "2"}}])
    [code] = (await api.gql(ISSUE, {"input": {"campaignId": "vip-rate", "count": 1,
                                              "maxUses": 1}}))["issueCoupons"]["codes"]

    async def uses() -> int:
        return int((await api.gql(COUPON, {"code": code}))["coupon"]["uses"])

    held = await authorise(api, "a-1", 1_000, codes=[code])
    assert held["value"]["amountMinor"] == 2_000 and await uses() == 1
    clock.advance(timedelta(seconds=1_800))
    await api.fetch_token()
    assert run_expiry(gw.services.ledger) == 1  # the hold_expired operation
    assert await uses() == 0
    assert run_expiry(gw.services.ledger) == 0  # nothing due: nothing given back again
    late = await capture(api, held["holdId"], "c-1")
    assert late["__typename"] == "HoldExpiredError"
    voided = (await api.gql(VOID, {"input": {"holdId": held["holdId"],
                                             "idempotencyKey": "v-1"}}))["voidRedemption"]
    assert voided["__typename"] == "HoldAlreadySettledError"
    assert await uses() == 0
    again = await authorise(api, "a-2", 1_000, codes=[code])
    assert again["value"]["amountMinor"] == 2_000 and await uses() == 1
    assert verify_ledger(gw.services.engine).problems == []
