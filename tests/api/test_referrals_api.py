"""Referrals through the partner and member APIs (issue 12, decision 025): member A's referral
code (viewer.referralCode, stable), friend B enrolled at the grocery with it, and the grocery's
"refer a friend" campaign (300 points to the referrer, 100 to the referred member, on the
referred member's first qualifying purchase). B's first 1,200.00 UAH earns 120 + 100 and posts
A's 300 as a bonus operation in A's history; B's second earns 120. Self-referral (also through a
merged account), a second referral and an unknown code are refused with typed errors and write
nothing. A return of B's purchase takes back B's 100 with the base and A's 300 in the same
proportion, from what A's wallet holds (decision 035)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.db import tables as t
from gateway.ledger.member_ops import merge_members
from gateway.ledger.verify import verify_ledger
from gateway.notifications import store
from gateway.notifications.consumer import make_consumer
from gateway.outbox import read_events
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
REDEEM = f"""mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{
  __typename ... on RedeemPointsSuccess {{ available }} {ERROR} }} }}"""
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

    # The rule (decision 035): a full return takes back both sides' rewards, the referrer's
    # from its own wallet, and reopens the referral; tested below.


async def give_back(w: World, purchase: str, amount_minor: int, key: str) -> dict[str, Any]:
    result: dict[str, Any] = (await w.grocery.gql(RETURN, {"input": {
        "purchaseId": purchase, "amount": {"amountMinor": amount_minor, "currency": "UAH"},
        "idempotencyKey": key}}))["returnPurchase"]
    return result


def awards_of(w: World, member: str) -> tuple[int, int]:
    """The member's promotion_awards for the referral campaign: points and rewards, summed."""
    with w.gw.services.engine.connect() as conn:
        points, rewards = conn.execute(select(
            func.coalesce(func.sum(t.promotion_awards.c.points), 0),
            func.coalesce(func.sum(t.promotion_awards.c.rewards), 0)).where(
            t.promotion_awards.c.member_id == member,
            t.promotion_awards.c.campaign_id == "grocery:refer")).one()
    return int(points), int(rewards)


async def test_returns_take_back_the_referrers_reward_in_proportion(tmp_path: Path) -> None:
    """Decision 035: a return of the purchase that rewarded a referral takes back the
    referrer's reward in the same proportion as the purchaser's bonus (CEIL, cumulative); the
    referrer's wallet gives what it holds, the rest is unrecovered (no debt)."""
    w, _ = await referred_world(tmp_path)
    first = await earn(w.grocery, "g-2", "b-1")
    assert (first["points"], first["bonusPoints"]) == (220, 100)
    assert await history(w.grocery, "g-1") == (300, [("bonus", 300)])
    a = w.member

    # A third back (40,000 of 120,000): B gives CEIL(120/3) + CEIL(100/3) = 40 + 34; A gives
    # CEIL(300/3) = 100.
    third = await give_back(w, "b-1", 40_000, "ret-1")
    assert third == {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 74,
                     "available": 146}
    assert await history(w.grocery, "g-1") == (200, [("return", -100), ("bonus", 300)])
    assert awards_of(w, a) == (200, 1)
    # A is told why, as a referrer (not as if A had returned something, nor as a challenge).
    notifications = make_consumer(w.clock, lambda: None)
    with w.gw.services.engine.connect() as conn:
        for event in read_events(conn, limit=100, types=["points.returned"]):
            notifications.handle(w.gw.services.engine, event)
    assert [(n.kind, n.title) for n in store.feed(w.gw.services.engine, a, 10, None).items
            ] == [("points_returned", "100 referral points taken back: a purchase was returned")]
    # A replay answers as before and takes nothing more from A.
    assert await give_back(w, "b-1", 40_000, "ret-1") == third
    assert (await history(w.grocery, "g-1"))[0] == 200

    # A spends 150 of its 200: the rest of the reward (200) finds 50 in the wallet.
    spent = (await w.grocery.gql(REDEEM, {"input": {
        "customerId": "g-1", "points": 150, "idempotencyKey": "spend-a",
        "basketAmount": {"amountMinor": 100_000, "currency": "UAH"}}}))["redeemPoints"]
    assert (spent["__typename"], spent["available"]) == ("RedeemPointsSuccess", 50)
    rest = await give_back(w, "b-1", 80_000, "ret-2")
    assert (rest["__typename"], rest["pointsReversed"], rest["available"]) == (
        "ReturnPurchaseSuccess", 146, 0)
    balance, entries = await history(w.grocery, "g-1")
    assert balance == 0 and entries[0] == ("return", -50)  # 150 unrecovered, never debt
    with w.gw.services.engine.connect() as conn:
        debt = conn.execute(select(func.coalesce(func.sum(t.accounts.c.balance), 0)).where(
            t.accounts.c.member_id == a, t.accounts.c.kind == "debt")).scalar_one()
        claimed = conn.execute(select(t.referrals.c.rewarded_operation_id)).scalar_one()
    assert debt == 0
    # The award rows record each share taken back, recovered or not; both rewards released.
    assert awards_of(w, a) == (0, 0)
    # 150 points of the reward were spent before the return: the referral stays claimed, so
    # buying and returning cannot mint a second reward. B's next purchase earns its base only.
    assert claimed is not None
    again = await earn(w.grocery, "g-2", "b-2")
    assert (again["points"], again["bonusPoints"]) == (120, 0)
    assert (await history(w.grocery, "g-1"))[0] == 0
    assert verify_ledger(w.gw.services.engine).problems == []


async def test_a_full_return_recovered_whole_reopens_the_referral(tmp_path: Path) -> None:
    """Both rewards came back whole: the referral is unclaimed again and B's next purchase is
    its first qualifying one, rewarding both, once."""
    w, _ = await referred_world(tmp_path)
    await earn(w.grocery, "g-2", "b-1")
    back = await give_back(w, "b-1", 120_000, "ret-all")
    assert (back["pointsReversed"], back["available"]) == (220, 0)
    assert await history(w.grocery, "g-1") == (0, [("return", -300), ("bonus", 300)])
    with w.gw.services.engine.connect() as conn:
        assert conn.execute(select(t.referrals.c.rewarded_operation_id)).scalar_one() is None
    again = await earn(w.grocery, "g-2", "b-2")
    assert (again["points"], again["bonusPoints"]) == (220, 100)
    assert (await history(w.grocery, "g-1"))[0] == 300
    assert (await earn(w.grocery, "g-2", "b-3"))["bonusPoints"] == 0
    assert awards_of(w, w.member) == (300, 1)
    assert verify_ledger(w.gw.services.engine).problems == []


async def test_a_partial_return_without_a_share_left_writes_nothing_for_the_referrer(
        tmp_path: Path) -> None:
    """CEIL takes the whole of a 1-point share at the first small return: a second small
    return has no share left and posts no operation on the referrer's accounts."""
    w, _ = await referred_world(tmp_path)
    await earn(w.grocery, "g-2", "b-1")
    for n in (1, 2):
        answer = await give_back(w, "b-1", 1, f"tiny-{n}")
        assert answer["__typename"] == "ReturnPurchaseSuccess"
    _, entries = await history(w.grocery, "g-1")
    # CEIL(300 * 1 / 120,000) = 1, then CEIL(300 * 2 / 120,000) - 1 = 0: one reversal only.
    assert entries == [("return", -1), ("bonus", 300)]


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


async def test_a_referrer_merged_into_the_purchaser_after_the_reward(tmp_path: Path) -> None:
    """B's first purchase rewarded A (300); then B absorbs A's account. Returning half of the
    purchase takes back B's half (60 + 50) and A's half (150) from the one wallet; the
    partner's answer shows the wallet after both (520 - 110 - 150 = 260), as the balance does."""
    w, _ = await referred_world(tmp_path)
    await earn(w.grocery, "g-2", "b-1")
    b = member_id_of(w.gw, "grocery", "g-2")
    merge_members(w.gw.services.engine, w.gw.services.clock, b, w.member, "test")
    assert (await history(w.grocery, "g-2"))[0] == 520
    half = await give_back(w, "b-1", 60_000, "ret-half")
    assert half == {"__typename": "ReturnPurchaseSuccess", "pointsReversed": 110,
                    "available": 260}
    balance, entries = await history(w.grocery, "g-2")
    assert balance == 260
    assert sorted(e for e in entries if e[0] == "return") == [("return", -150), ("return", -110)]
    rest = await give_back(w, "b-1", 60_000, "ret-rest")
    assert (rest["pointsReversed"], rest["available"]) == (110, 0)
    assert (await history(w.grocery, "g-2"))[0] == 0
    assert verify_ledger(w.gw.services.engine).problems == []


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
