"""Referrals through the partner and member APIs (issue 12, decision 025): member A's referral
code (viewer.referralCode, stable), friend B enrolled at the grocery with it, and the grocery's
"refer a friend" campaign (300 points to the referrer, 100 to the referred member, on the
referred member's first qualifying purchase). B's first 1,200.00 UAH earns 120 + 100 and posts
A's 300 as a bonus operation in A's history; B's second earns 120. Self-referral (also through a
merged account), a second referral and an unknown code are refused with typed errors and write
nothing. A return of B's purchase takes back B's 100 with the base; A's 300 stays (the rule)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.db import tables as t
from gateway.ledger.member_ops import merge_members
from gateway.promotions import referrals
from gateway.promotions.coupons import ALPHABET
from tests.api.test_points_api import World, world
from tests.support.harness import NOW, Api
from tests.support.members import member_api, member_id_of

ERROR = "... on Error { code message field }"
CREATE = f"""mutation($input: CampaignInput!) {{ createCampaign(input: $input) {{ __typename
  {ERROR} }} }}"""
ENROL = f"""mutation($c: ID!, $r: String) {{ enrolCustomer(input: {{customerId: $c,
  referralCode: $r}}) {{ __typename ... on EnrolCustomerSuccess {{ created }} {ERROR} }} }}"""
VIEWER = "query { viewer { __typename ... on Viewer { referralCode } } }"
RECORD = f"""mutation($code: String!) {{ recordReferral(referralCode: $code) {{ __typename
  ... on RecordReferralSuccess {{ referrerCode }} {ERROR} }} }}"""
EARN = f"""mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ __typename
  ... on EarnPointsSuccess {{ points bonusPoints available
    promotions {{ campaignId points explanation }} }} {ERROR} }} }}"""
RETURN = f"""mutation($input: ReturnPurchaseInput!) {{ returnPurchase(input: $input) {{
  __typename ... on ReturnPurchaseSuccess {{ pointsReversed available }} {ERROR} }} }}"""
HISTORY = """query($c: ID!) { member(customerId: $c) { ... on Member {
  balance { available } history(first: 20) { edges { node { kind points } } } } } }"""
REFER = {"id": "refer", "name": "Refer a friend", "validFrom": "2026-11-01T00:00:00Z",
         "conditions": {"referralInEffect": True},
         "effects": [{"referralReward": {"referrerPoints": 300, "referredPoints": 100}}]}


async def earn(api: Api, customer: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = (await api.gql(EARN, {"input": {
        "customerId": customer, "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "channel": "STORE", "purchaseId": key, "idempotencyKey": key}}))["earnPoints"]
    return result


async def history(api: Api, customer: str) -> tuple[int, list[tuple[str, int]]]:
    member = (await api.gql(HISTORY, {"c": customer}))["member"]
    return member["balance"]["available"], [(e["node"]["kind"], e["node"]["points"])
                                            for e in member["history"]["edges"]]


def referral_rows(w: World) -> int:
    with w.gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.referrals)).scalar_one())


async def referred_world(tmp_path: Path) -> tuple[World, str]:
    w = await world(tmp_path)
    a = member_api(w.gw, w.member)
    code = (await a.gql(VIEWER))["viewer"]["referralCode"]
    symbol = f"[{ALPHABET}]"
    assert re.fullmatch(f"{symbol}{{4}}-{symbol}{{4}}", code)
    assert (await a.gql(VIEWER))["viewer"]["referralCode"] == code  # stable
    assert (await w.grocery.gql(CREATE, {"input": REFER}))["createCampaign"]["__typename"] == \
        "CreateCampaignSuccess"
    w.gw.services.ledger.campaigns.reload()  # type: ignore[attr-defined]
    enrolled = (await w.grocery.gql(ENROL, {"c": "g-2", "r": code.lower()}))["enrolCustomer"]
    assert enrolled == {"__typename": "EnrolCustomerSuccess", "created": True}
    return w, code


async def test_first_qualifying_purchase_rewards_both_once(tmp_path: Path) -> None:
    w, _ = await referred_world(tmp_path)
    first = await earn(w.grocery, "g-2", "b-1")
    assert (first["points"], first["bonusPoints"], first["available"]) == (220, 100, 220)
    [award] = first["promotions"]  # the answer lists the purchaser's own awards
    assert (award["campaignId"], award["points"]) == ("grocery:refer", 100)
    assert award["explanation"].startswith("Refer a friend (grocery:refer v1)")
    assert await history(w.grocery, "g-1") == (300, [("bonus", 300)])

    second = await earn(w.grocery, "g-2", "b-2")
    assert (second["points"], second["bonusPoints"], second["promotions"]) == (120, 0, [])
    assert (await history(w.grocery, "g-1"))[0] == 300
    with w.gw.services.engine.connect() as conn:
        claimed = conn.execute(select(t.referrals.c.rewarded_operation_id)).scalar_one()
        first_op = conn.execute(select(t.operations.c.id).where(
            t.operations.c.purchase_id == "b-1")).scalar_one()
    assert claimed == first_op

    # The rule: a return takes back the referred member's 100 with the base (in proportion);
    # the referrer's 300 stays (decision 025).
    returned = (await w.grocery.gql(RETURN, {"input": {
        "purchaseId": "b-1", "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "idempotencyKey": "ret-b-1"}}))["returnPurchase"]
    assert returned == {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 220,
                        "available": 120}
    assert (await history(w.grocery, "g-1"))[0] == 300


async def test_self_second_and_unknown_referrals_are_refused(tmp_path: Path) -> None:
    w, code = await referred_world(tmp_path)
    a = member_api(w.gw, w.member)
    b = member_api(w.gw, member_id_of(w.gw, "grocery", "g-2"))
    assert referral_rows(w) == 1
    refusals = [
        (a, code, "SelfReferralError", "SELF_REFERRAL"),
        (b, code, "AlreadyReferredError", "ALREADY_REFERRED"),
        (a, "ZZZZ-ZZZZ", "ReferralRefusedError", "REFERRAL_REFUSED"),
    ]
    for api, given, typename, error_code in refusals:
        answer = (await api.gql(RECORD, {"code": given}))["recordReferral"]
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            typename, error_code, "referralCode")
        assert referral_rows(w) == 1

    # Through a merged account: C's code, made before C was merged into A, is A's own now.
    await w.grocery.gql(ENROL, {"c": "g-3"})
    c = member_id_of(w.gw, "grocery", "g-3")
    c_code = referrals.my_code(w.gw.services.engine, c, NOW)
    merge_members(w.gw.services.engine, w.gw.services.clock, w.member, c, "test")
    answer = (await a.gql(RECORD, {"code": c_code}))["recordReferral"]
    assert (answer["__typename"], answer["code"]) == ("SelfReferralError", "SELF_REFERRAL")
    # A merged member's own code is its survivor's.
    assert referrals.my_code(w.gw.services.engine, c, NOW) == code

    # An unknown code at enrolment refuses the enrolment: no member is made.
    with w.gw.services.engine.connect() as conn:
        members_before = conn.execute(select(func.count()).select_from(t.members)).scalar_one()
    refused = (await w.grocery.gql(ENROL, {"c": "g-9", "r": "ZZZZ-ZZZZ"}))["enrolCustomer"]
    assert (refused["__typename"], refused["field"]) == ("ReferralRefusedError", "referralCode")
    with w.gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.members)).scalar_one() == \
            members_before
    assert referral_rows(w) == 1

    # A new member records a referral themselves, once.
    await w.grocery.gql(ENROL, {"c": "g-4"})
    d = member_api(w.gw, member_id_of(w.gw, "grocery", "g-4"))
    recorded = (await d.gql(RECORD, {"code": code}))["recordReferral"]
    assert recorded == {"__typename": "RecordReferralSuccess", "referrerCode": code}
    assert referral_rows(w) == 2


async def test_a_merge_after_the_referral_makes_it_a_self_referral(tmp_path: Path) -> None:
    """B was referred by A, then B absorbs A's account: one person, so B's first purchase gives
    no referral reward (the referrer is resolved to its survivor at the purchase)."""
    w, _ = await referred_world(tmp_path)
    b = member_id_of(w.gw, "grocery", "g-2")
    merge_members(w.gw.services.engine, w.gw.services.clock, b, w.member, "test")
    first = await earn(w.grocery, "g-2", "b-1")
    assert (first["points"], first["bonusPoints"], first["promotions"]) == (120, 0, [])
    with w.gw.services.engine.connect() as conn:
        bonus_ops = conn.execute(select(func.count()).select_from(t.operations).where(
            t.operations.c.kind == "bonus")).scalar_one()
        claimed = conn.execute(select(t.referrals.c.rewarded_operation_id)).scalar_one()
    assert (bonus_ops, claimed) == (0, None)


async def test_the_members_export_holds_their_referral_and_coupons(tmp_path: Path) -> None:
    w, code = await referred_world(tmp_path)
    await earn(w.grocery, "g-2", "b-1")
    export = "mutation { exportMyData { ... on ExportMyDataSuccess { json } } }"
    b = member_api(w.gw, member_id_of(w.gw, "grocery", "g-2"))
    mine = json.loads((await b.gql(export))["exportMyData"]["json"])
    assert mine["referral_code"] is None  # never asked for
    [referral] = mine["referral"]
    assert (referral["via"], referral["partner_id"]) == ("enrolment", "grocery")
    assert referral["rewarded_operation_id"] == mine["operations"][0]["id"]
    assert w.member not in json.dumps(mine)  # who referred them is the referrer's data
    theirs = json.loads((await member_api(w.gw, w.member).gql(export))["exportMyData"]["json"])
    assert (theirs["referral_code"], theirs["members_referred"], theirs["referral"]) == (
        code.replace("-", ""), 1, [])
    assert theirs["coupon_redemptions"] == []
