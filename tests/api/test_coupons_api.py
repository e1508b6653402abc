"""Coupons through the partner API (issue 12, decision 025): a partner makes a coupon campaign
(200 bonus points with a coupon), issues 100 codes, and members present them in earnPoints.
The grocery earns 1 point per 10.00 UAH, so 1,200.00 UAH is 120 base points and 320 with the
coupon. A code that cannot be used never refuses the earn: the base points post and the
explanation says why; a full return gives the use back (the code works again), a partial one
does not. Every number is checked."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.db import tables as t
from gateway.promotions.coupons import ALPHABET, normalise
from tests.api.test_points_api import ENROL, World, world
from tests.support.harness import NOW, Api
from tests.support.members import member_api, member_id_of

ERROR = "... on Error { code message field }"
CREATE = f"""mutation($input: CampaignInput!) {{ createCampaign(input: $input) {{ __typename
  ... on CreateCampaignSuccess {{ campaign {{ id version }} }} {ERROR} }} }}"""
ISSUE = f"""mutation($input: IssueCouponsInput!) {{ issueCoupons(input: $input) {{ __typename
  ... on IssueCouponsSuccess {{ campaignId codes }} {ERROR} }} }}"""
IMPORT = f"""mutation($input: ImportCouponsInput!) {{ importCoupons(input: $input) {{ __typename
  ... on ImportCouponsSuccess {{ campaignId imported }} {ERROR} }} }}"""
COUPON = f"""query($code: String!) {{ coupon(code: $code) {{ __typename
  ... on CouponDetails {{ codeHint campaignId state uses maxUses perMemberLimit expiresAt
    personal }} {ERROR} }} }}"""
EARN = f"""mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ __typename
  ... on EarnPointsSuccess {{ operationId points bonusPoints available explanation
    promotions {{ campaignId version funder points explanation }} }} {ERROR} }} }}"""
RETURN = f"""mutation($input: ReturnPurchaseInput!) {{ returnPurchase(input: $input) {{
  __typename ... on ReturnPurchaseSuccess {{ pointsReversed available }} {ERROR} }} }}"""
BASE = "1200.00 UAH at 1 point per 10.00 UAH = 120 points"
SPRING = "grocery:spring"


def spring(**overrides: Any) -> dict[str, Any]:
    return {"id": "spring", "name": "Spring coupon: 200 bonus points",
            "validFrom": "2026-11-01T00:00:00Z", "conditions": {"couponPresented": True},
            "effects": [{"bonusPoints": {"points": 200}}], **overrides}


async def coupon_world(tmp_path: Path) -> World:
    """The grocery's member g-1, a second member g-2, and the spring campaign in force."""
    w = await world(tmp_path)
    await w.grocery.gql(ENROL, {"c": "g-2"})
    created = (await w.grocery.gql(CREATE, {"input": spring()}))["createCampaign"]
    assert created["campaign"] == {"id": SPRING, "version": 1}
    w.gw.services.ledger.campaigns.reload()  # type: ignore[attr-defined]
    return w


_n = iter(range(10_000))


async def earn(api: Api, codes: list[str], customer: str = "g-1",
               amount_minor: int = 120_000) -> dict[str, Any]:
    key = f"p-{next(_n)}"
    result: dict[str, Any] = (await api.gql(EARN, {"input": {
        "customerId": customer, "amount": {"amountMinor": amount_minor, "currency": "UAH"},
        "channel": "STORE", "purchaseId": key, "idempotencyKey": key,
        "couponCodes": codes}}))["earnPoints"]
    assert result["__typename"] == "EarnPointsSuccess", result
    result["purchaseId"] = key
    return result


async def coupon(api: Api, code: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.gql(COUPON, {"code": code}))["coupon"]
    return found


def redemptions(w: World) -> list[int]:
    with w.gw.services.engine.connect() as conn:
        return [int(u) for u in conn.execute(select(t.coupon_redemptions.c.uses)
                                             .order_by(t.coupon_redemptions.c.id)).scalars()]


def coupon_count(w: World) -> int:
    with w.gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.coupons)).scalar_one())


async def test_issue_present_refuse_return_and_present_again(tmp_path: Path) -> None:
    w = await coupon_world(tmp_path)
    issued = (await w.grocery.gql(ISSUE, {"input": {"campaignId": "spring", "count": 100}})
              )["issueCoupons"]
    assert issued["campaignId"] == SPRING
    codes = issued["codes"]
    symbol = f"[{ALPHABET}]"
    assert len(set(codes)) == 100
    assert all(re.fullmatch(f"{symbol}{{4}}-{symbol}{{4}}-{symbol}{{4}}", c) for c in codes)
    assert not any(ch in c for c in codes for ch in "01IO")
    assert coupon_count(w) == 100
    code = codes[0]
    shown = normalise(code)

    first = await earn(w.grocery, [code])
    assert (first["points"], first["bonusPoints"], first["available"]) == (320, 200, 320)
    [award] = first["promotions"]
    # The why: the base line, the coupon's line, then the campaign it unlocked.
    assert first["explanation"] == [BASE, f"coupon {shown} ({SPRING}): redeemed",
                                    award["explanation"]]
    assert (award["campaignId"], award["funder"], award["points"]) == (SPRING, "grocery", 200)
    assert award["explanation"].startswith("Spring coupon: 200 bonus points (grocery:spring v1)")
    assert award["explanation"].endswith("+200 points")
    assert await coupon(w.grocery, code) == {
        "__typename": "CouponDetails", "codeHint": shown[-4:], "campaignId": SPRING,
        "state": "USED_UP", "uses": 1, "maxUses": 1, "perMemberLimit": None, "expiresAt": None,
        "personal": False}

    # A replay (same key, same request) answers the same and takes no second use.
    replayed = (await w.grocery.gql(EARN, {"input": {
        "customerId": "g-1", "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "channel": "STORE", "purchaseId": first["purchaseId"],
        "idempotencyKey": first["purchaseId"], "couponCodes": [code]}}))["earnPoints"]
    assert {k: replayed[k] for k in replayed} == {k: first[k] for k in replayed}
    assert redemptions(w) == [1]

    # The same single-use code again: the purchase earns its base points, the till is told.
    again = await earn(w.grocery, [code.lower()])
    assert (again["points"], again["bonusPoints"], again["available"]) == (120, 0, 440)
    assert again["explanation"] == [BASE, f"coupon {shown} ({SPRING}): not used, already used up"]
    assert again["promotions"] == []
    unknown = await earn(w.grocery, ["NOPE-NOPE-NOPE"])
    assert unknown["points"] == 120
    assert unknown["explanation"] == [BASE, "coupon NOPENOPENOPE: not used, no such coupon here"]
    assert redemptions(w) == [1]

    # A full return takes back all 320 points and gives the use back (a new -1 row).
    returned = (await w.grocery.gql(RETURN, {"input": {
        "purchaseId": first["purchaseId"], "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "idempotencyKey": "ret-1"}}))["returnPurchase"]
    assert returned == {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 320,
                        "available": 560 - 320}
    assert redemptions(w) == [1, -1]
    restored = await coupon(w.grocery, code)
    assert (restored["state"], restored["uses"]) == ("VALID", 0)
    # Nothing is left to return: refused, and the coupon is not restored twice.
    again_back = (await w.grocery.gql(RETURN, {"input": {
        "purchaseId": first["purchaseId"], "amount": {"amountMinor": 1, "currency": "UAH"},
        "idempotencyKey": "ret-1b"}}))["returnPurchase"]
    assert again_back["__typename"] == "NothingToReturnError"
    assert redemptions(w) == [1, -1]
    reused = await earn(w.grocery, [code])
    assert (reused["points"], reused["bonusPoints"], reused["available"]) == (320, 200, 560)
    assert redemptions(w) == [1, -1, 1]

    # A partial return reverses in proportion (half: 160) and keeps the coupon used.
    second = await earn(w.grocery, [codes[1]])
    assert second["bonusPoints"] == 200
    partial = (await w.grocery.gql(RETURN, {"input": {
        "purchaseId": second["purchaseId"], "amount": {"amountMinor": 60_000, "currency": "UAH"},
        "idempotencyKey": "ret-2"}}))["returnPurchase"]
    assert partial["pointsReversed"] == 160
    assert (await coupon(w.grocery, codes[1]))["uses"] == 1
    assert redemptions(w) == [1, -1, 1, 1]


async def test_an_expired_coupon_gives_only_the_base_points(tmp_path: Path) -> None:
    w = await coupon_world(tmp_path)
    expires = (NOW + timedelta(days=1)).isoformat()
    codes = (await w.grocery.gql(ISSUE, {"input": {"campaignId": "spring", "count": 2,
                                                   "expiresAt": expires}}))["issueCoupons"]["codes"]
    before = await earn(w.grocery, [codes[0]])
    assert before["bonusPoints"] == 200
    w.clock.set(NOW + timedelta(days=1))  # expiresAt itself is past: [.., expiresAt)
    await w.grocery.fetch_token()
    after = await earn(w.grocery, [codes[1]])
    assert (after["points"], after["bonusPoints"]) == (120, 0)
    assert after["explanation"] == [BASE, f"coupon {normalise(codes[1])} ({SPRING}): not used, "
                                          "expired"]
    assert (await coupon(w.grocery, codes[1]))["state"] == "EXPIRED"


async def test_a_multi_use_code_keeps_its_per_member_limit(tmp_path: Path) -> None:
    w = await coupon_world(tmp_path)
    imported = (await w.grocery.gql(IMPORT, {"input": {
        "campaignId": "spring", "codes": ["friends-2026"], "maxUses": 3,
        "perMemberLimit": 1}}))["importCoupons"]
    assert imported == {"__typename": "ImportCouponsSuccess", "campaignId": SPRING,
                        "imported": 1}
    assert (await earn(w.grocery, ["FRIENDS2026"]))["bonusPoints"] == 200
    twice = await earn(w.grocery, ["Friends 2026"])
    assert (twice["points"], twice["bonusPoints"]) == (120, 0)
    assert twice["explanation"][1] == (f"coupon FRIENDS2026 ({SPRING}): not used, this "
                                       "member's limit for it is reached")
    other = await earn(w.grocery, ["FRIENDS2026"], customer="g-2")
    assert (other["points"], other["bonusPoints"], other["available"]) == (320, 200, 320)
    found = await coupon(w.grocery, "friends-2026")
    assert (found["state"], found["uses"], found["maxUses"], found["perMemberLimit"]) == (
        "VALID", 2, 3, 1)


async def test_a_personal_coupon_is_refused_to_another_member(tmp_path: Path) -> None:
    w = await coupon_world(tmp_path)
    [code] = (await w.grocery.gql(ISSUE, {"input": {"campaignId": "spring", "count": 1,
                                                    "customerId": "g-2"}})
              )["issueCoupons"]["codes"]
    assert (await coupon(w.grocery, code))["personal"] is True
    theirs = await earn(w.grocery, [code], customer="g-1")
    assert (theirs["points"], theirs["bonusPoints"]) == (120, 0)
    assert theirs["explanation"][1] == (f"coupon {normalise(code)} ({SPRING}): not used, a "
                                        "personal coupon of another member")
    mine = await earn(w.grocery, [code], customer="g-2")
    assert (mine["points"], mine["bonusPoints"]) == (320, 200)
    export = "mutation { exportMyData { ... on ExportMyDataSuccess { json } } }"
    g2 = member_api(w.gw, member_id_of(w.gw, "grocery", "g-2"))
    exported = json.loads((await g2.gql(export))["exportMyData"]["json"])["coupon_redemptions"]
    assert [(r["partner_id"], r["campaign_id"], r["operation_id"], r["uses"])
            for r in exported] == [("grocery", SPRING, mine["operationId"], 1)]
    # Two codes of one campaign in one purchase: only the first counts.
    codes = (await w.grocery.gql(ISSUE, {"input": {"campaignId": "spring", "count": 2}})
             )["issueCoupons"]["codes"]
    both = await earn(w.grocery, codes)
    assert both["bonusPoints"] == 200
    assert both["explanation"][1:3] == [
        f"coupon {normalise(codes[0])} ({SPRING}): redeemed",
        f"coupon {normalise(codes[1])} ({SPRING}): not used, another coupon for the same "
        "campaign was presented"]
    assert (await coupon(w.grocery, codes[1]))["uses"] == 0


async def test_a_coupon_whose_campaign_does_not_apply_stays_usable(tmp_path: Path) -> None:
    w = await world(tmp_path)
    created = await w.grocery.gql(CREATE, {"input": spring(
        conditions={"couponPresented": True, "minSpendMinor": 100_000})})
    assert created["createCampaign"]["__typename"] == "CreateCampaignSuccess"
    w.gw.services.ledger.campaigns.reload()  # type: ignore[attr-defined]
    [code] = (await w.grocery.gql(ISSUE, {"input": {"campaignId": "spring", "count": 1}})
              )["issueCoupons"]["codes"]
    small = await earn(w.grocery, [code], amount_minor=50_000)
    assert (small["points"], small["bonusPoints"]) == (50, 0)
    assert small["explanation"][1] == (f"coupon {normalise(code)} ({SPRING}): not used, its "
                                       "campaign does not apply to this purchase (the coupon "
                                       "stays usable)")
    assert (await coupon(w.grocery, code))["uses"] == 0
    assert (await earn(w.grocery, [code]))["bonusPoints"] == 200


async def test_bad_issue_and_import_calls_name_their_field_and_write_nothing(tmp_path: Path
                                                                            ) -> None:
    w = await coupon_world(tmp_path)
    plain = await w.grocery.gql(CREATE, {"input": {
        "id": "plain", "name": "No coupon", "validFrom": "2026-11-01T00:00:00Z",
        "effects": [{"bonusPoints": {"points": 5}}]}})
    assert plain["createCampaign"]["__typename"] == "CreateCampaignSuccess"
    await w.grocery.gql(IMPORT, {"input": {"campaignId": "spring", "codes": ["TAKEN1"]}})
    cases = [
        (ISSUE, {"campaignId": "plain", "count": 5}, "InvalidInputError", "campaignId"),
        (ISSUE, {"campaignId": "spring", "count": 0}, "InvalidInputError", "count"),
        (ISSUE, {"campaignId": "spring", "count": 10_001}, "InvalidInputError", "count"),
        (ISSUE, {"campaignId": "spring", "count": 1, "maxUses": 0}, "InvalidInputError",
         "maxUses"),
        (ISSUE, {"campaignId": "spring", "count": 1, "maxUses": 2, "perMemberLimit": 3},
         "InvalidInputError", "perMemberLimit"),
        (ISSUE, {"campaignId": "spring", "count": 1, "expiresAt": NOW.isoformat()},
         "InvalidInputError", "expiresAt"),
        (ISSUE, {"campaignId": "spring", "count": 1, "customerId": "nobody"},
         "UnknownMemberError", "customerId"),
        (ISSUE, {"campaignId": "electronics:spring", "count": 1}, "NotFoundError",
         "campaignId"),
        (IMPORT, {"campaignId": "spring", "codes": ["GOOD1", "good-1"]}, "InvalidInputError",
         "codes[1]"),
        (IMPORT, {"campaignId": "spring", "codes": ["GOOD1", "taken 1"]}, "InvalidInputError",
         "codes[1]"),
        (IMPORT, {"campaignId": "spring", "codes": ["NO"]}, "InvalidInputError", "codes[0]"),
        (IMPORT, {"campaignId": "spring", "codes": ["ÄÖÜ12"]}, "InvalidInputError", "codes[0]"),
    ]
    for query, values, typename, field in cases:
        root = "issueCoupons" if query is ISSUE else "importCoupons"
        answer = (await w.grocery.gql(query, {"input": values}))[root]
        assert (answer["__typename"], answer["field"]) == (typename, field), (values, answer)
        assert coupon_count(w) == 1
    # Another partner cannot read the grocery's coupons: the same answer as a missing code.
    theirs = await coupon(w.electronics, "TAKEN1")
    assert (theirs["__typename"], theirs["field"]) == ("NotFoundError", "code")
