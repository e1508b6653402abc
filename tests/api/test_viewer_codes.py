"""The member's codes through their own API: ``createLinkCode`` (a brand links with it, once)
and ``viewer.storeCode`` (digits, signed QR text, expiry; a till earns with it). Partner tokens
get FORBIDDEN and nothing is made."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.enrolment import enrol_customer
from tests.support.harness import NOW, ledger_snapshot, make_gateway, partner_api
from tests.support.members import LINK, member_api

CREATE = """mutation { createLinkCode { __typename
  ... on CreateLinkCodeSuccess { linkCode expiresAt } ... on Error { code message field } } }"""
STORE = """{ viewer { ... on Viewer { storeCode { digits qrText expiresAt } } } }"""
EARN = """mutation($s: String!) { earnPoints(input: {storeCode: $s, amount: {amountMinor: 120000,
  currency: "UAH"}, channel: STORE, purchaseId: "f-p1", idempotencyKey: "f-p1"}) { __typename
  ... on EarnPointsSuccess { points } ... on Error { code } } }"""


def code_rows(gw: Gateway) -> tuple[int, int]:
    with gw.services.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(t.link_codes)).scalar_one(),
                conn.execute(select(func.count()).select_from(t.store_codes)).scalar_one())


async def test_link_code_from_the_api_links_one_brand_once(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    member = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "g-1").member_id
    made = (await member_api(gw, member).gql(CREATE))["createLinkCode"]
    assert made["__typename"] == "CreateLinkCodeSuccess"
    assert re.fullmatch(r"[A-Z2-9]{8}", made["linkCode"])
    assert made["expiresAt"] == "2026-11-23T10:10:00+00:00"
    electronics = await partner_api(gw, "electronics")
    linked = (await electronics.gql(LINK, {"c": "e-1", "code": made["linkCode"]}))["linkCustomer"]
    assert linked["__typename"] == "LinkCustomerSuccess" and linked["created"] is True
    before = ledger_snapshot(gw)
    again = (await electronics.gql(LINK, {"c": "e-2", "code": made["linkCode"]}))["linkCustomer"]
    assert again["__typename"] == "UnknownMemberError"
    assert ledger_snapshot(gw) == before


async def test_store_code_from_the_api_earns_at_a_till(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    member = enrol_customer(gw.services.engine, gw.services.clock, "grocery", "g-1").member_id
    code = (await member_api(gw, member).gql(STORE))["viewer"]["storeCode"]
    assert re.fullmatch(r"\d{4} \d{4} \d{4}", code["digits"])
    assert code["qrText"].startswith("CGSC1") and code["expiresAt"] == "2026-11-23T10:01:00+00:00"
    fuel = await partner_api(gw, "fuel")
    earned = (await fuel.gql(EARN, {"s": code["qrText"]}))["earnPoints"]
    assert earned == {"__typename": "EarnPointsSuccess", "points": 60}  # fuel: 1 per 20 UAH


async def test_partner_tokens_cannot_make_member_codes(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    enrol_customer(gw.services.engine, gw.services.clock, "grocery", "g-1")
    grocery = await partner_api(gw, "grocery")
    before, rows = ledger_snapshot(gw), code_rows(gw)
    assert (await grocery.gql(CREATE))["createLinkCode"] == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN", "field": None,
        "message": "this token lacks the scope 'member' that this field needs"}
    assert (await grocery.gql(STORE))["viewer"] == {}
    assert ledger_snapshot(gw) == before and code_rows(gw) == rows
