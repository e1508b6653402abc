"""Issue 12's mechanics, each a scenario through the partner GraphQL API with exact numbers, on
this run's backend (docs/campaigns.md, "Mechanics: worked examples", says the same in prose).

Partner campaigns are created with ``createCampaign`` (stored as ``grocery:<id>``); coalition
campaigns, which only the operators' CLI makes, are published with the test helper. The
grocery earns 1 point per 10.00 UAH (floor), organic lines x1.5, the app channel x2, and one
of its points pays 0.10 UAH; the clock stands at Monday 2026-11-23 10:00 UTC."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.balances import member_balance
from gateway.promotions.model import NthPurchase
from gateway.rules.campaigns import CampaignBook
from gateway.settlement import exposure
from tests.settlement.test_api import finance
from tests.support.campaigns import bonus_campaign, publish
from tests.support.harness import NOW, Api, make_gateway, partner_api

pytestmark = pytest.mark.anyio

EARN = """mutation($input: EarnPointsInput!) { earnPoints(input: $input) { __typename
  ... on EarnPointsSuccess { points bonusPoints explanation
    promotions { campaignId funder points explanation }
    tillRewards { kind code description valueMinor }
    skippedPromotions { campaignId reason explanation } }
  ... on Error { code message field } } }"""
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename } }"""
CREATE = """mutation($input: CampaignInput!) { createCampaign(input: $input) { __typename
  ... on CreateCampaignSuccess { campaign { id version } }
  ... on Error { code message field } } }"""
REDEEM = """mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) { __typename
  ... on RedeemPointsSuccess { points value { amountMinor currency } available
    promotions { campaignId funder points explanation } }
  ... on Error { code message field } } }"""
RETURN = """mutation($input: ReturnPurchaseInput!) { returnPurchase(input: $input) { __typename
  ... on Error { code message field } } }"""
EXPOSURE = """{ funderExposure { __typename ... on FunderExposureList { currency funders {
  funder mode policy fundedPoints issuedPoints reversedPoints exposurePoints leftPoints
  exposureMinor leftMinor } } ... on Error { code } } }"""
FROM = "2026-11-01T00:00:00Z"
SATURDAY = "2026-11-21T12:00:00Z"
WEDNESDAY = "2026-11-18T12:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path)


async def grocery(gw: Gateway, *customers: str) -> Api:
    api = await partner_api(gw, "grocery")
    for customer in customers or ("c-1",):
        assert (await api.gql(ENROL, {"c": customer}))["enrolCustomer"]["__typename"] == \
            "EnrolCustomerSuccess"
    return api


async def create(api: Api, **definition: Any) -> str:
    """createCampaign, then the book reloaded (workers see it within its refresh, 2 s)."""
    answer = (await api.gql(CREATE, {"input": {"validFrom": FROM, **definition}}))
    created = answer["createCampaign"]
    assert created["__typename"] == "CreateCampaignSuccess", created
    book = api.gateway.services.ledger.campaigns
    assert isinstance(book, CampaignBook)
    book.reload()
    return str(created["campaign"]["id"])


async def earn(api: Api, key: str, minor: int = 120_000, customer: str = "c-1",
               **extra: Any) -> dict[str, Any]:
    answer = await api.gql(EARN, {"input": {
        "customerId": customer, "amount": {"amountMinor": minor, "currency": "UAH"},
        "channel": "STORE", "purchaseId": key, "idempotencyKey": key, **extra}})
    earned: dict[str, Any] = answer["earnPoints"]
    assert earned["__typename"] == "EarnPointsSuccess", earned
    return earned


def applied(earned: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(p["campaignId"], p["funder"], p["points"]) for p in earned["promotions"]]


def skipped(earned: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["campaignId"], s["reason"]) for s in earned["skippedPromotions"]]


def member_of(gw: Gateway, customer: str, partner: str = "grocery") -> str:
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.linked_accounts.c.member_id).where(
            t.linked_accounts.c.partner_id == partner,
            t.linked_accounts.c.customer_id == customer)).scalar_one())


def available(gw: Gateway, customer: str, partner: str = "grocery") -> int:
    services = gw.services
    return member_balance(services.engine, services.clock,
                          member_of(gw, customer, partner)).available


# --- welcome ----------------------------------------------------------------------------------
async def test_welcome_bonus_on_enrolment_is_funded_by_the_partner(gw: Gateway) -> None:
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 1_000, actor="finance:ana")
    api = await partner_api(gw, "grocery")
    await create(api, id="welcome", name="Welcome: 100 points", trigger="ENROLMENT",
                 effects=[{"bonusPoints": {"points": 100}}])
    await api.gql(ENROL, {"c": "c-1"})
    await api.gql(ENROL, {"c": "c-1"})  # a retry: the same member, no second bonus
    assert available(gw, "c-1") == 100
    with s.engine.connect() as conn:
        awards = conn.execute(select(t.promotion_awards.c.campaign_id,
                                     t.promotion_awards.c.funder,
                                     t.promotion_awards.c.points)).all()
    assert [tuple(a) for a in awards] == [("grocery:welcome", "grocery", 100)]
    # Finance sees the funder's exposure: 100 of its 1,000 prepaid points issued, 900 left,
    # worth FLOOR(900 x 0.25) = 225 EUR cents at its issue price.
    own = await finance(gw, "grocery", ["settlement:read"])
    rows = (await own.gql(EXPOSURE))["funderExposure"]["funders"]
    assert rows == [{"funder": "grocery", "mode": "prepaid", "policy": "refuse",
                     "fundedPoints": "1000", "issuedPoints": "100", "reversedPoints": "0",
                     "exposurePoints": "0", "leftPoints": "900", "exposureMinor": "0",
                     "leftMinor": "225"}]


async def test_welcome_on_the_first_purchase_is_coalition_funded(gw: Gateway) -> None:
    api = await grocery(gw)
    publish(gw, replace(bonus_campaign("first-buy", 150, partner=None,
                                       partners=frozenset({"grocery"})),
                        conditions=(NthPurchase(1),)))
    first = await earn(api, "p-1")
    assert (first["points"], first["bonusPoints"]) == (270, 150)
    assert applied(first) == [("first-buy", "coalition", 150)]
    second = await earn(api, "p-2")  # the second purchase: the condition does not hold
    assert (second["points"], second["bonusPoints"], applied(second), skipped(second)) == (
        120, 0, [], [])
    assert available(gw, "c-1") == 390


# --- birthday ---------------------------------------------------------------------------------
async def test_birthday_bonus_in_the_birth_month_only(gw: Gateway) -> None:
    api = await grocery(gw, "nov", "mar", "none")
    with gw.services.engine.begin() as conn:
        for customer, born in (("nov", date(1990, 11, 5)), ("mar", date(1990, 3, 5))):
            conn.execute(update(t.members).where(t.members.c.id == member_of(gw, customer))
                         .values(birth_date=born))
    await create(api, id="birthday", name="Happy birthday: 200 points",
                 audience={"birthdayMonth": True}, effects=[{"bonusPoints": {"points": 200}}])
    born_in_november = await earn(api, "b-1", customer="nov")
    assert (born_in_november["points"], applied(born_in_november)) == (
        320, [("grocery:birthday", "grocery", 200)])
    for customer in ("mar", "none"):  # another month, or no birth date: base points only
        other = await earn(api, f"b-{customer}", customer=customer)
        assert (other["points"], applied(other), skipped(other)) == (120, [], [])


# --- cashback ---------------------------------------------------------------------------------
async def test_cashback_five_percent_at_the_partners_point_value(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="cashback", name="5% back as points",
                 effects=[{"cashback": {"percent": "5"}}])
    earned = await earn(api, "cb-1", 123_456)
    # Base: FLOOR(1,234.56 / 10.00) = 123. Cashback: 5% of 123,456 minor = 6,172.8 minor, at
    # 10 minor a point = 617.28 points, FLOOR (the rule's rounding) = 617.
    assert (earned["points"], earned["bonusPoints"]) == (740, 617)
    assert "617 points" in earned["promotions"][0]["explanation"]


# --- multipliers ------------------------------------------------------------------------------
async def test_double_points_on_organic_lines_only(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="organic-x2", name="Double points on organic",
                 effects=[{"multiplier": {"factor": "2", "categories": ["organic"]}}])
    lines = [{"amountMinor": 60_000, "category": "organic"},
             {"amountMinor": 60_000, "category": "bakery"}]
    earned = await earn(api, "o-1", lines=lines)
    # Base: organic 600.00 -> 60 x 1.5 = 90, bakery 60: 150. Bonus: the organic line's 90
    # base points x (2 - 1) = 90.
    assert (earned["points"], earned["bonusPoints"]) == (240, 90)
    plain = await earn(api, "o-2", lines=[{"amountMinor": 120_000, "category": "bakery"}])
    assert (plain["points"], plain["bonusPoints"]) == (120, 0)


async def test_triple_points_in_the_app_on_weekends(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="app-weekend", name="Triple points in the app at weekends",
                 channels=["APP"], conditions={"schedule": {"days": ["SATURDAY", "SUNDAY"]}},
                 effects=[{"multiplier": {"factor": "3"}}])
    # The app doubles the rule's points: 1,200.00 UAH is 240 base; x3 adds 2 x 240 = 480.
    saturday = await earn(api, "a-sat", channel="APP", occurredAt=SATURDAY)
    assert (saturday["points"], saturday["bonusPoints"]) == (720, 480)
    wednesday = await earn(api, "a-wed", channel="APP", occurredAt=WEDNESDAY)
    assert (wednesday["points"], wednesday["bonusPoints"], skipped(wednesday)) == (240, 0, [])
    in_store = await earn(api, "s-sat", channel="STORE", occurredAt=SATURDAY)
    assert (in_store["points"], in_store["bonusPoints"]) == (120, 0)


# --- till rewards -----------------------------------------------------------------------------
async def test_gift_over_1000_and_free_delivery_over_500(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="gift", name="A tote bag over 1,000.00 UAH",
                 conditions={"minSpendMinor": 100_000},
                 effects=[{"tillReward": {"kind": "GIFT", "code": "TOTE-1",
                                          "description": "Kolos tote bag", "valueMinor": 25_000}}])
    await create(api, id="delivery", name="Free delivery over 500.00 UAH",
                 conditions={"minSpendMinor": 50_000},
                 effects=[{"tillReward": {"kind": "FREE_DELIVERY", "code": "FREE-DEL",
                                          "description": "Free home delivery"}}])
    big = await earn(api, "t-1", 120_000)
    assert (big["points"], big["bonusPoints"]) == (120, 0)
    assert big["tillRewards"] == [
        {"kind": "free_delivery", "code": "FREE-DEL", "description": "Free home delivery",
         "valueMinor": None},
        {"kind": "gift", "code": "TOTE-1", "description": "Kolos tote bag", "valueMinor": 25000}]
    middle = await earn(api, "t-2", 60_000)
    assert [r["code"] for r in middle["tillRewards"]] == ["FREE-DEL"]
    small = await earn(api, "t-3", 40_000)
    assert (small["points"], small["tillRewards"], skipped(small)) == (40, [], [])


# --- stacking, budgets, limits: the "why" -----------------------------------------------------
async def test_an_exclusive_campaign_skips_the_stackable_one_and_says_why(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="mega", name="Mega weekend: 300 points, alone",
                 stacking={"exclusive": True, "priority": 10},
                 effects=[{"bonusPoints": {"points": 300}}])
    await create(api, id="small", name="50 points", effects=[{"bonusPoints": {"points": 50}}])
    earned = await earn(api, "x-1")
    assert (earned["points"], applied(earned)) == (420, [("grocery:mega", "grocery", 300)])
    assert skipped(earned) == [("grocery:small", "not_stackable")]
    why = earned["skippedPromotions"][0]["explanation"]
    assert "grocery:small" in why and "exclusive campaign was applied" in why
    # The earn's explanation lists the rule's lines, every campaign applied, every one skipped.
    assert earned["explanation"][-2:] == [earned["promotions"][0]["explanation"], why]
    assert "grocery:mega" in earned["explanation"][-2]


async def test_a_budget_cuts_the_last_award_then_skips(gw: Gateway) -> None:
    api = await grocery(gw)
    await create(api, id="budget", name="60 points while 100 last",
                 limits={"budgetPoints": 100}, effects=[{"bonusPoints": {"points": 60}}])
    got = [await earn(api, f"bud-{n}") for n in range(3)]
    assert [g["bonusPoints"] for g in got] == [60, 40, 0]
    assert "capped at the 40 points left of the budget" in got[1]["promotions"][0]["explanation"]
    assert skipped(got[2]) == [("grocery:budget", "budget_exhausted")]
    assert got[2]["points"] == 120


async def test_a_member_limit_of_once_a_day(gw: Gateway) -> None:
    api = await grocery(gw, "c-1", "c-2")
    await create(api, id="daily", name="30 points once a day",
                 limits={"perMember": [{"window": "DAY", "count": 1}]},
                 effects=[{"bonusPoints": {"points": 30}}])
    first, second = await earn(api, "d-1"), await earn(api, "d-2")
    other = await earn(api, "d-3", customer="c-2")
    assert [g["bonusPoints"] for g in (first, second, other)] == [30, 0, 30]
    assert skipped(second) == [("grocery:daily", "member_limit")]
    assert "member limit of 1 per day reached" in second["skippedPromotions"][0]["explanation"]


# --- funding ----------------------------------------------------------------------------------
async def test_a_funder_out_of_funding_is_skipped_and_finance_sees_it(gw: Gateway) -> None:
    s = gw.services
    exposure.set_terms(s.engine, s.clock, "grocery", mode="prepaid", policy=None,
                       limit_points=None, actor="finance:ana")
    exposure.top_up(s.engine, s.clock, "grocery", 500, actor="finance:ana")
    api = await grocery(gw)
    await create(api, id="big", name="200 points", effects=[{"bonusPoints": {"points": 200}}])
    got = [await earn(api, f"f-{n}") for n in range(4)]
    assert [(g["points"], g["bonusPoints"]) for g in got] == [(320, 200), (320, 200),
                                                             (220, 100), (120, 0)]
    assert skipped(got[3]) == [("grocery:big", "funder_limit")]
    returned = await api.gql(RETURN, {"input": {
        "purchaseId": "f-0", "amount": {"amountMinor": 120_000, "currency": "UAH"},
        "idempotencyKey": "r-0"}})
    assert returned["returnPurchase"]["__typename"] == "ReturnPurchaseSuccess"
    own = await finance(gw, "grocery", ["settlement:read"])
    rows = (await own.gql(EXPOSURE))["funderExposure"]["funders"]
    # 500 issued, the returned purchase's 200 reversed: 200 left (FLOOR 200 x 0.25 = 50).
    assert [(r["issuedPoints"], r["reversedPoints"], r["leftPoints"], r["leftMinor"],
             r["exposurePoints"]) for r in rows] == [("500", "200", "200", "50", "0")]


# --- a better point value at redeem -----------------------------------------------------------
async def test_points_pay_one_and_a_half_times_at_electronics_on_weekends(
        tmp_path: Path) -> None:
    clock = FixedClock(NOW.replace(day=21))  # Saturday 2026-11-21 10:00 UTC
    gw = make_gateway(tmp_path, clock=clock)
    api = await partner_api(gw, "electronics")
    await api.gql(ENROL, {"c": "e-1"})
    earned = (await api.gql(EARN, {"input": {
        "customerId": "e-1", "amount": {"amountMinor": 1_000_000, "currency": "EUR"},
        "channel": "STORE", "purchaseId": "e-p1", "idempotencyKey": "e-k1"}}))["earnPoints"]
    assert earned["points"] == 10_000  # 1 point per 1.00 EUR
    await create(api, id="weekend-points", name="Points pay 1.5x at Volt on weekends",
                 conditions={"schedule": {"days": ["SATURDAY", "SUNDAY"]}},
                 effects=[{"pointsDiscount": {"pointValueMinor": "1.5"}}])

    async def redeem(key: str, points: int, basket_minor: int = 10_000) -> dict[str, Any]:
        answer = await api.gql(REDEEM, {"input": {
            "customerId": "e-1", "points": points, "idempotencyKey": key,
            "basketAmount": {"amountMinor": basket_minor, "currency": "EUR"}}})
        result: dict[str, Any] = answer["redeemPoints"]
        return result

    # A 100.00 EUR discount: CEIL(10,000 / 1.5) = 6,667 points, worth FLOOR(10,000.5) = 10,000
    # minor (a point normally pays 1 minor: 10,000 points). 6,666 points pay FLOOR(9,999).
    saturday = await redeem("d-1", 6_667)
    assert saturday["__typename"] == "RedeemPointsSuccess", saturday
    assert (saturday["points"], saturday["value"], saturday["available"]) == (
        6_667, {"amountMinor": 10_000, "currency": "EUR"}, 3_333)
    [promotion] = saturday["promotions"]
    assert (promotion["campaignId"], promotion["funder"], promotion["points"]) == (
        "electronics:weekend-points", "electronics", 0)
    assert "one point pays 1.5 minor units" in promotion["explanation"]
    less = await redeem("d-2", 666, 999)
    assert (less["value"]["amountMinor"], less["available"]) == (999, 2_667)
    # The basket caps the points at the better value too: 29.99 EUR takes at most 1,999
    # (2,000 would pay 30.00).
    too_many = await redeem("d-3", 2_000, 2_999)
    assert (too_many["__typename"], too_many["field"]) == ("CapExceededError", "points")
    clock.set(NOW)  # Monday: the rule's own value, no campaign named
    await api.fetch_token()  # the first one expired in the two days
    monday = await redeem("d-4", 1_000)
    assert (monday["value"]["amountMinor"], monday["promotions"]) == (1_000, [])


# --- audit ------------------------------------------------------------------------------------
async def test_publishing_a_campaign_version_is_audited_with_who_published_it(
        gw: Gateway) -> None:
    api = await partner_api(gw, "grocery")
    await create(api, id="audited", name="10 points", effects=[{"bonusPoints": {"points": 10}}])
    publish(gw, bonus_campaign("coal-audited", 5, partner=None, partners=frozenset({"grocery"})))
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.audit_log.c.actor, t.audit_log.c.subject,
                                   t.audit_log.c.detail)
                            .where(t.audit_log.c.action == "campaign.publish")
                            .order_by(t.audit_log.c.id)).all()
    assert [(r.actor, r.subject) for r in rows] == [
        (f"client:{api.client_id}", "grocery:audited v1"), ("test", "coal-audited v1")]
    assert json.loads(rows[0].detail) == {
        "owner": "grocery", "funder": "grocery", "valid_from": "2026-11-01T00:00:00+00:00",
        "valid_until": None}
