"""Segments and personal offers through the partner API (issue 12, decision 026), the worked
example of docs/campaigns.md "Segments and personal offers", on this run's backend.

The grocery defines "regulars": 3 or more purchases at grocery in the last 30 days and none at
fuel. Eight members, each with three grocery earns: r-1..r-5 qualify and consented to the use
of their purchase history; r-6 qualifies but withdrew its consent (its latest event); r-7
consented but also bought fuel; r-8 consented but its first earn is 40 days old.
The refresh counts 5; the grocery reads "5", never who. A personal offer (a campaign whose
audience is the segment) gives r-1 its 40 points and r-6 nothing; r-1 withdrawing consent
loses the offer at its next earn, before any refresh, and the next refresh shows "<5"."""

from __future__ import annotations

import argparse
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema
from sqlalchemy import select

from gateway.api.schema import print_sdl
from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.core.money import Money
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from gateway.ledger.erasure import erase_member
from gateway.ledger.member_ops import merge_members
from gateway.ledger.model import EarnPoints
from gateway.ledger.service import earn_points
from gateway.members import viewer
from gateway.promotions import segments, tiers_cli
from gateway.rules.campaigns import CampaignBook
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import link_with_code, member_id_of

pytestmark = pytest.mark.anyio

DEFINE = """mutation($input: DefineSegmentInput!) { defineSegment(input: $input) { __typename
  ... on DefineSegmentSuccess { segment { id name rule memberCount refreshedAt } }
  ... on Error { code message field } } }"""
LIST = """query { segments { __typename ... on SegmentList { segments { id memberCount } }
  ... on Error { code message field } } }"""
CREATE = """mutation($input: CampaignInput!) { createCampaign(input: $input) { __typename
  ... on CreateCampaignSuccess { campaign { id } } ... on Error { code message field } } }"""
EARN = """mutation($input: EarnPointsInput!) { earnPoints(input: $input) { __typename
  ... on EarnPointsSuccess { points bonusPoints promotions { campaignId points explanation } }
  ... on Error { code message field } } }"""
REGULARS = {"id": "regulars", "name": "Grocery regulars, no fuel", "clauses": [
    {"at": "grocery", "minPurchases": 3, "days": 30}, {"neverAt": "fuel", "days": 30}]}
OFFER_LINE = ("Regulars: 40 bonus points (grocery:regulars-offer v1): bonus 40 points "
              "→ +40 points")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    gateway = make_gateway(tmp_path)
    engine, ledger = gateway.services.engine, gateway.services.ledger
    clock = gateway.services.clock
    assert isinstance(clock, FixedClock)
    for n in range(1, 9):
        customer = f"r-{n}"
        enrol_customer(engine, clock, "grocery", customer)
        member_id = member_id_of(gateway, "grocery", customer)
        if n != 6:
            viewer.set_consent(engine, clock, member_id, "purchase_history", None, True, "app")
        else:  # granted, then withdrawn: the latest event wins
            viewer.set_consent(engine, clock, member_id, "purchase_history", None, True, "app")
            viewer.set_consent(engine, clock, member_id, "purchase_history", None, False, "app")
        # Three earns 20 days apart (r-8: 40), recorded then: the window counts recorded_at.
        for k in range(3):
            clock.set(NOW - timedelta(days=(40 if n == 8 else 20) - 10 * k * (2 if n == 8
                                                                                 else 1)))
            earn_points(ledger, EarnPoints("grocery", customer, Money(50_000, "UAH"), "store",
                                           f"{customer}-{k}", f"{customer}-{k}"))
        clock.set(NOW)
        if n == 7:
            link_with_code(engine, clock, "fuel", "f-7", member_id)
            earn_points(ledger, EarnPoints("fuel", "f-7", Money(50_000, "UAH"), "store",
                                           "f-7-0", "f-7-0"))
    return gateway


def refresh(gw: Gateway) -> str:
    """``gateway segments refresh``, as the operator runs it."""
    root = argparse.ArgumentParser()
    out = io.StringIO()
    tiers_cli.register(root.add_subparsers(dest="command"), lambda: gw.services, out=out)
    args = root.parse_args(["segments", "refresh", "--batch", "3"])  # three batches of eight
    assert args.func(args) == 0
    return out.getvalue()


def grocery_earn(customer: str, key: str) -> dict[str, Any]:
    return {"input": {"customerId": customer, "amount": {"amountMinor": 120_000,
                                                         "currency": "UAH"},
                      "channel": "STORE", "purchaseId": key, "idempotencyKey": key}}


async def define_and_offer(gw: Gateway) -> Api:
    grocery = await partner_api(gw, "grocery")
    defined = (await grocery.gql(DEFINE, {"input": REGULARS}))["defineSegment"]
    assert defined == {"__typename": "DefineSegmentSuccess", "segment": {
        "id": "grocery:regulars", "name": "Grocery regulars, no fuel",
        "rule": '[{"at":"grocery","days":30,"min_purchases":3},{"days":30,"never_at":"fuel"}]',
        "memberCount": "<5", "refreshedAt": None}}
    created = await grocery.gql(CREATE, {"input": {
        "id": "regulars-offer", "name": "Regulars: 40 bonus points",
        "validFrom": (NOW - timedelta(days=1)).isoformat(),
        "audience": {"segment": "regulars"}, "effects": [{"bonusPoints": {"points": 40}}]}})
    assert created["createCampaign"]["campaign"] == {"id": "grocery:regulars-offer"}
    reload_campaigns(gw)
    return grocery


def reload_campaigns(gw: Gateway) -> None:
    """Every worker sees a new campaign within its refresh (2 s); the test does not wait."""
    book = gw.services.ledger.campaigns
    assert isinstance(book, CampaignBook)
    book.reload()


async def test_a_segment_counts_consenting_members_and_drives_a_personal_offer(
        gw: Gateway) -> None:
    grocery = await define_and_offer(gw)
    assert refresh(gw) == ("members scanned: 8\nmembers consenting: 7\n"
                           "grocery:regulars: 5\n")
    assert (await grocery.gql(LIST))["segments"] == {"__typename": "SegmentList", "segments": [
        {"id": "grocery:regulars", "memberCount": "5"}]}

    offered = (await grocery.gql(EARN, grocery_earn("r-1", "offer-1")))["earnPoints"]
    assert offered == {"__typename": "EarnPointsSuccess", "points": 160, "bonusPoints": 40,
                       "promotions": [{"campaignId": "grocery:regulars-offer", "points": 40,
                                       "explanation": OFFER_LINE}]}
    # (Not r-8: a third earn in the window would put it in at the next refresh.)
    for outsider in ("r-6", "r-7"):  # no consent; bought fuel
        plain = (await grocery.gql(EARN, grocery_earn(outsider, f"offer-{outsider}")))
        assert (plain["earnPoints"]["points"], plain["earnPoints"]["promotions"]) == (120, [])

    # r-1 withdraws consent: no personal offer from its next earn on, before any refresh.
    engine, clock = gw.services.engine, gw.services.clock
    viewer.set_consent(engine, clock, member_id_of(gw, "grocery", "r-1"), "purchase_history",
                       None, False, "portal")
    after = (await grocery.gql(EARN, grocery_earn("r-1", "offer-2")))["earnPoints"]
    assert (after["points"], after["bonusPoints"], after["promotions"]) == (120, 0, [])
    assert refresh(gw).endswith("members consenting: 6\ngrocery:regulars: 4\n")
    assert (await grocery.gql(LIST))["segments"]["segments"] == [
        {"id": "grocery:regulars", "memberCount": "<5"}]


async def test_a_partner_reads_only_its_own_segments_and_only_counts(gw: Gateway) -> None:
    await define_and_offer(gw)
    refresh(gw)
    fuel = await partner_api(gw, "fuel")
    assert (await fuel.gql(LIST))["segments"] == {"__typename": "SegmentList", "segments": []}
    # Fuel's campaign naming the grocery's segment names fuel's own (missing) one: it reaches
    # nobody, so no partner learns who is in another's segment.
    created = await fuel.gql(CREATE, {"input": {
        "id": "steal", "name": "Steal", "validFrom": (NOW - timedelta(days=1)).isoformat(),
        "audience": {"segment": "grocery:regulars"},
        "effects": [{"bonusPoints": {"points": 5}}]}})
    assert created["createCampaign"]["campaign"] == {"id": "fuel:steal"}
    reload_campaigns(gw)
    link_with_code(gw.services.engine, gw.services.clock, "fuel", "f-1",
                   member_id_of(gw, "grocery", "r-1"))
    filled = await fuel.gql(EARN, {"input": {
        "customerId": "f-1", "amount": {"amountMinor": 50_000, "currency": "UAH"},
        "channel": "STORE", "purchaseId": "f-1-0", "idempotencyKey": "f-1-0"}})
    assert (filled["earnPoints"]["bonusPoints"], filled["earnPoints"]["promotions"]) == (0, [])
    # A segment shows a count and its rule: no field reaches a member.
    fields = build_schema(print_sdl()).type_map["Segment"].fields  # type: ignore[attr-defined]
    assert sorted(fields) == ["id", "memberCount", "name", "refreshedAt", "rule"]


async def test_define_is_idempotent_and_refuses_bad_clauses_by_field(gw: Gateway) -> None:
    grocery = await partner_api(gw, "grocery")
    first = await grocery.gql(DEFINE, {"input": REGULARS})
    assert await grocery.gql(DEFINE, {"input": REGULARS}) == first
    before = ledger_snapshot(gw), segments.listed(gw.services.engine, "grocery")
    cases = [
        ({**REGULARS, "name": "Another"}, "id"),
        ({**REGULARS, "id": "both", "clauses": [{"at": "grocery", "neverAt": "fuel",
                                                  "days": 30}]}, "clauses[0]"),
        ({**REGULARS, "id": "nowhere", "clauses": [{"at": "grocery", "days": 30},
                                                    {"neverAt": "moon", "days": 30}]},
         "clauses[1].neverAt"),
        ({**REGULARS, "id": "forever", "clauses": [{"at": "grocery", "days": 400}]},
         "clauses[0].days"),
        ({**REGULARS, "id": "Bad Id"}, "id"),
    ]
    for given, field in cases:
        refused = (await grocery.gql(DEFINE, {"input": given}))["defineSegment"]
        assert (refused["__typename"], refused["field"]) == ("InvalidInputError", field)
    assert (ledger_snapshot(gw), segments.listed(gw.services.engine, "grocery")) == before


async def test_an_erased_member_leaves_every_segment_at_once(gw: Gateway) -> None:
    await define_and_offer(gw)
    refresh(gw)
    gone = member_id_of(gw, "grocery", "r-2")
    with gw.services.engine.connect() as conn:
        rows = select(t.member_segments.c.segment_id).where(
            t.member_segments.c.member_id == gone)
        assert list(conn.execute(rows).scalars()) == ["grocery:regulars"]
    erase_member(gw.services.ledger, gone, "FORFEIT", None, "test")
    with gw.services.engine.connect() as conn:
        assert list(conn.execute(rows).scalars()) == []
    assert refresh(gw) == ("members scanned: 7\nmembers consenting: 6\n"
                           "grocery:regulars: 4\n")


async def test_a_merged_member_leaves_at_the_next_refresh(gw: Gateway) -> None:
    """r-5 is merged into r-8 (inactive now, whatever its id's place among the batches): the
    refresh drops its row; the survivor's own earns decide the survivor."""
    await define_and_offer(gw)
    refresh(gw)
    absorbed, survivor = (member_id_of(gw, "grocery", c) for c in ("r-5", "r-8"))
    merge_members(gw.services.engine, gw.services.clock, survivor, absorbed, "test")
    for batch in ("1", "3", "100"):
        assert refresh_in_batches(gw, batch) == ("members scanned: 7\nmembers consenting: 6\n"
                                                 "grocery:regulars: 4\n")
        with gw.services.engine.connect() as conn:
            assert absorbed not in set(conn.execute(
                select(t.member_segments.c.member_id)).scalars())


def refresh_in_batches(gw: Gateway, batch: str) -> str:
    root = argparse.ArgumentParser()
    out = io.StringIO()
    tiers_cli.register(root.add_subparsers(dest="command"), lambda: gw.services, out=out)
    args = root.parse_args(["segments", "refresh", "--batch", batch])
    assert args.func(args) == 0
    return out.getvalue()
