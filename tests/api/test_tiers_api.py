"""Coalition tiers through the partner and member APIs (issue 12, decision 026), the worked
example of docs/campaigns.md "Tiers and the discount card", on this run's backend.

The demo programme (partners/catalog/coalition/tiers.toml): Silver 0, Gold 5,000, Platinum
20,000 qualifying points over 12 months; at grocery Gold earns ×1.25 (coalition-funded) and a
3% discount card. Grocery earns 1 point per 10.00 UAH, fuel 1 point per litre (50.00 UAH)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.core.money import Money
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.promotions import tier_sync, tiers_cli
from gateway.rules.campaigns import CampaignBook
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import LINK, link_code_for, member_api, member_id_of

pytestmark = pytest.mark.anyio

ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) { __typename } }"""
EARN = """mutation($input: EarnPointsInput!) { earnPoints(input: $input) { __typename
  ... on EarnPointsSuccess { points bonusPoints explanation
    promotions { campaignId version funder points explanation }
    tillRewards { kind code description valueMinor percent } }
  ... on Error { code message field } } }"""
RETURN = """mutation($input: ReturnPurchaseInput!) { returnPurchase(input: $input) { __typename
  ... on ReturnPurchaseSuccess { pointsReversed } ... on Error { code message field } } }"""
TIER = """query { viewer { __typename ... on Viewer {
  tier { id name qualifyingPoints nextTier pointsToNext validUntil } } } }"""
MEMBER_TIER = """query($c: ID!) { member(customerId: $c) { __typename ... on Member { tier } } }"""
GOLD_LINE = ("Gold tier at grocery (tier-gold-grocery v1): ×1.25 on the basket: 120 base × 0.25 "
             "→ 30 points; till reward discount TIER-GOLD-3: Gold discount card: 3% off "
             "→ +30 points")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = make_gateway(tmp_path)
    programme = gateway.services.ledger.tiers
    assert programme is not None
    tier_sync.sync(gateway.services.engine, programme, actor="test", now=NOW)
    book = gateway.services.ledger.campaigns
    assert isinstance(book, CampaignBook)
    book.reload()
    return gateway


def grocery(key: str, minor: int) -> dict[str, Any]:
    return {"input": {"customerId": "g-1", "amount": {"amountMinor": minor, "currency": "UAH"},
                      "channel": "STORE", "purchaseId": key, "idempotencyKey": key}}


def fuel(key: str, litres: int) -> dict[str, Any]:
    amount = litres * 5000
    return {"input": {"customerId": "f-1", "amount": {"amountMinor": amount, "currency": "UAH"},
                      "channel": "STORE", "purchaseId": key, "idempotencyKey": key,
                      "lines": [{"amountMinor": amount, "category": "fuel",
                                 "quantityMilli": litres * 1000}]}}


async def member_across_brands(gw: Gateway) -> tuple[Api, Api, Api]:
    """A member known as g-1 at grocery and f-1 at fuel, and the member's own API."""
    groc, fuel_api = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")
    assert (await groc.gql(ENROL, {"c": "g-1"}))["enrolCustomer"]["__typename"] == \
        "EnrolCustomerSuccess"
    linked = await fuel_api.gql(LINK, {"c": "f-1", "code": link_code_for(gw, "grocery", "g-1")})
    assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess"
    return groc, fuel_api, member_api(gw, member_id_of(gw, "grocery", "g-1"))


async def test_crossing_gold_across_brands_then_a_return_drops_back(gw: Gateway) -> None:
    groc, fuel_api, me = await member_across_brands(gw)
    # 4,700 base points at grocery and 300 at fuel: 5,000 qualifying, exactly Gold's threshold.
    first = (await groc.gql(EARN, grocery("g-big", 4_700_000)))["earnPoints"]
    assert (first["points"], first["bonusPoints"], first["tillRewards"]) == (4700, 0, [])
    filled = (await fuel_api.gql(EARN, fuel("f-300", 300)))["earnPoints"]
    assert (filled["points"], filled["bonusPoints"]) == (300, 0)
    assert (await me.gql(TIER))["viewer"]["tier"] == {
        "id": "gold", "name": "Gold", "qualifyingPoints": 5000, "nextTier": "Platinum",
        "pointsToNext": 15000, "validUntil": "2027-11-01T00:00:00+00:00"}
    assert (await groc.gql(MEMBER_TIER, {"c": "g-1"}))["member"]["tier"] == "Gold"
    assert (await fuel_api.gql(MEMBER_TIER, {"c": "f-1"}))["member"]["tier"] == "Gold"

    # The next grocery earn: 120 base points, Gold's ×1.25 adds 30, and the discount card.
    gold = (await groc.gql(EARN, grocery("g-gold", 120_000)))["earnPoints"]
    assert gold == {
        "__typename": "EarnPointsSuccess", "points": 150, "bonusPoints": 30,
        # The answer's explanation: the base line, then every campaign applied (or skipped).
        "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points", GOLD_LINE],
        "promotions": [{"campaignId": "tier-gold-grocery", "version": 1, "funder": "coalition",
                        "points": 30, "explanation": GOLD_LINE}],
        "tillRewards": [{"kind": "discount", "code": "TIER-GOLD-3",
                         "description": "Gold discount card: 3% off", "valueMinor": None,
                         "percent": "3"}]}
    # Bonus points never qualify: 5,000 + 120.
    assert (await me.gql(TIER))["viewer"]["tier"]["qualifyingPoints"] == 5120

    # The fuel purchase comes back: its 300 base points stop qualifying; 4,820 is Silver.
    back = await fuel_api.gql(RETURN, {"input": {
        "purchaseId": "f-300", "amount": {"amountMinor": 1_500_000, "currency": "UAH"},
        "idempotencyKey": "r-f-300"}})
    assert back["returnPurchase"] == {"__typename": "ReturnPurchaseSuccess",
                                      "pointsReversed": 300}
    assert (await me.gql(TIER))["viewer"]["tier"] == {
        "id": "silver", "name": "Silver", "qualifyingPoints": 4820, "nextTier": "Gold",
        "pointsToNext": 180, "validUntil": None}
    assert (await groc.gql(MEMBER_TIER, {"c": "g-1"}))["member"]["tier"] == "Silver"
    silver = (await groc.gql(EARN, grocery("g-silver", 120_000)))["earnPoints"]
    assert (silver["points"], silver["bonusPoints"], silver["promotions"],
            silver["tillRewards"]) == (120, 0, [], [])


async def test_a_replayed_gold_earn_answers_the_same_and_qualifies_once(gw: Gateway) -> None:
    groc, _, me = await member_across_brands(gw)
    await groc.gql(EARN, grocery("g-big", 5_000_000))
    gold = await groc.gql(EARN, grocery("g-gold", 120_000))
    before = ledger_snapshot(gw)
    assert await groc.gql(EARN, grocery("g-gold", 120_000)) == gold
    assert ledger_snapshot(gw) == before
    assert (await me.gql(TIER))["viewer"]["tier"]["qualifyingPoints"] == 5120


async def test_sync_twice_writes_nothing_the_second_time(gw: Gateway) -> None:
    programme = gw.services.ledger.tiers
    assert programme is not None
    again = tier_sync.sync(gw.services.engine, programme, actor="test", now=NOW)
    assert [(x.campaign_id, x.version, x.action) for x in again] == [
        ("tier-platinum-electronics", 1, "unchanged"), ("fuel:tier-gold", 1, "unchanged"),
        ("fuel:tier-platinum", 1, "unchanged"), ("tier-gold-grocery", 1, "unchanged"),
        ("tier-platinum-grocery", 1, "unchanged")]


def test_the_operators_cli_syncs_once_and_shows_a_members_tier(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)

    def run(*argv: str) -> str:
        root = argparse.ArgumentParser(prog="gateway")
        out = io.StringIO()
        tiers_cli.register(root.add_subparsers(dest="command"), lambda: gateway.services,
                           out=out)
        args = root.parse_args(list(argv))
        assert args.func(args) == 0
        return out.getvalue()

    assert run("tiers", "sync", "--actor", "ops") == (
        "published tier-platinum-electronics v1\npublished fuel:tier-gold v1\n"
        "published fuel:tier-platinum v1\npublished tier-gold-grocery v1\n"
        "published tier-platinum-grocery v1\ntier programme v1: 5 campaign versions written\n")
    assert run("tiers", "sync").endswith("tier programme v1: 0 campaign versions written\n")
    assert run("tiers", "show") == ("tier programme v1, window 12 months\n"
                                    "silver\tSilver\t0\ngold\tGold\t5000\n"
                                    "platinum\tPlatinum\t20000\n")
    engine, clock = gateway.services.engine, gateway.services.clock
    enrol_customer(engine, clock, "grocery", "g-1")
    earn_points(gateway.services.ledger, EarnPoints("grocery", "g-1", Money(5_000_000, "UAH"),
                                                    "store", "p-1", "p-1"))
    assert run("tiers", "show", "--member", member_id_of(gateway, "grocery", "g-1")) == (
        "Gold: 5000 qualifying points; valid until 2027-11-01T00:00:00+00:00\n")
