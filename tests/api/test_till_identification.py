"""Naming the member at the till: a linked customer id, a bare card number (earns anywhere, never
spends) or a store code (earns; consents to one spend where no link exists). Idempotency and
the result-code order hold whatever names the member."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.core.clock import FixedClock
from gateway.members import consent
from gateway.members.identity import luhn_check_digit
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import card_number_of, member_id_of

ERROR = "... on Error { code message field }"
ENROL = """mutation { enrolCustomer(input: {customerId: "g-1"}) { __typename } }"""
EARN = f"""mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ __typename
  ... on EarnPointsSuccess {{ operationId points available }} {ERROR} }} }}"""
REDEEM = f"""mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{ __typename
  ... on RedeemPointsSuccess {{ operationId points available }} {ERROR} }} }}"""
AUTHORISE = f"""mutation($input: RedeemPointsInput!) {{ authoriseRedemption(input: $input) {{
  __typename ... on AuthoriseRedemptionSuccess {{ points available }} {ERROR} }} }}"""
BALANCE = """{ member(customerId: "g-1") { ... on Member { balance { available } } } }"""
BAD_STORE = {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
             "message": "this store code is not valid: wrong, expired or already used; ask the "
             "member to show a fresh one", "field": "storeCode"}


def earn(key: str, **who: str) -> dict[str, Any]:
    return {"input": {**who, "amount": {"amountMinor": 120000, "currency": "UAH"},
                      "channel": "STORE", "purchaseId": key, "idempotencyKey": key}}


def spend(key: str, points: int = 50, **who: str) -> dict[str, Any]:
    return {"input": {**who, "points": points, "idempotencyKey": key,
                      "basketAmount": {"amountMinor": 100000, "currency": "UAH"}}}


async def reject(api: Api, query: str, variables: dict[str, Any], root: str,
                 expected: dict[str, Any]) -> None:
    before = ledger_snapshot(api.gateway)
    assert (await api.gql(query, variables))[root] == expected
    assert ledger_snapshot(api.gateway) == before


async def setup(tmp_path: Path) -> tuple[FixedClock, Api, Api, str]:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery, fuel = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")
    await grocery.gql(ENROL)
    return clock, grocery, fuel, member_id_of(gw, "grocery", "g-1")


async def test_a_bare_card_earns_anywhere_and_shows_no_balance(tmp_path: Path) -> None:
    _, grocery, fuel, member = await setup(tmp_path)
    card = card_number_of(fuel.gateway, member)
    spaced = " ".join(card[i:i + 4] for i in range(0, 16, 4))
    earned = (await fuel.gql(EARN, earn("f-1", cardNumber=spaced)))["earnPoints"]
    assert (earned["__typename"], earned["points"], earned["available"]) == (
        "EarnPointsSuccess", 60, None)
    assert (await fuel.gql(EARN, earn("f-1", cardNumber=spaced)))["earnPoints"] == earned
    assert (await grocery.gql(BALANCE))["member"] == {"balance": {"available": 60}}
    # A card of nobody, a number that is no card, and two ways at once.
    nobody = "9" + "0" * 14
    await reject(fuel, EARN, earn("f-2", cardNumber=nobody + luhn_check_digit(nobody)),
                 "earnPoints", {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
                                "message": "no coalition card with this number",
                                "field": "cardNumber"})
    await reject(fuel, EARN, earn("f-2", cardNumber="1234"), "earnPoints", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "cardNumber is not a coalition card number (16 digits, Luhn)",
        "field": "cardNumber"})
    await reject(fuel, EARN, earn("f-2", cardNumber=card, customerId="g-1"), "earnPoints", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "give exactly one of customerId, cardNumber or storeCode",
        "field": "cardNumber"})
    await reject(fuel, EARN, earn("f-2"), "earnPoints", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "give exactly one of customerId, cardNumber or storeCode",
        "field": "customerId"})


async def test_a_store_code_earns_and_consents_to_one_spend(tmp_path: Path) -> None:
    clock, grocery, fuel, member = await setup(tmp_path)
    gw = fuel.gateway
    await grocery.gql(EARN, earn("g-earn", customerId="g-1"))  # 120 points
    shown = consent.issue_store_code(gw.services.engine, clock, member)
    earned = (await fuel.gql(EARN, earn("f-1", storeCode=shown.qr_text)))["earnPoints"]
    assert (earned["points"], earned["available"]) == (60, 180)  # fuel: 1 point per 20 UAH
    # Typed as digits, the same code earns again at the same till.
    again = (await fuel.gql(EARN, earn("f-2", storeCode=shown.digits)))["earnPoints"]
    assert (again["points"], again["available"]) == (60, 240)
    spent = (await fuel.gql(REDEEM, spend("s-1", storeCode=shown.qr_text)))["redeemPoints"]
    assert (spent["__typename"], spent["points"], spent["available"]) == (
        "RedeemPointsSuccess", 50, 190)
    # A replay under the same key answers the same, though the code's consent is used up.
    assert (await fuel.gql(REDEEM, spend("s-1", storeCode=shown.qr_text)))[
        "redeemPoints"] == spent
    # A second spend with it is refused; so is the grocery, where the code was never bound.
    await reject(fuel, REDEEM, spend("s-2", storeCode=shown.digits), "redeemPoints", BAD_STORE)
    await reject(grocery, EARN, earn("g-2", storeCode=shown.qr_text), "earnPoints", BAD_STORE)
    # A fresh code, but too few points: refused, and its consent is not used up.
    fresh = consent.issue_store_code(gw.services.engine, clock, member)
    await reject(fuel, AUTHORISE, spend("s-3", 1_000, storeCode=fresh.qr_text),
                 "authoriseRedemption", {
                     "__typename": "InsufficientPointsError", "code": "INSUFFICIENT_POINTS",
                     "message": "the member has 190 points available; 1000 were requested",
                     "field": "points"})
    held = (await fuel.gql(AUTHORISE, spend("s-4", 60, storeCode=fresh.qr_text)))
    assert held["authoriseRedemption"] == {"__typename": "AuthoriseRedemptionSuccess",
                                           "points": 60, "available": 130}
    # A minute later the code is gone.
    clock.advance(timedelta(seconds=61))
    await fuel.fetch_token()
    await reject(fuel, EARN, earn("f-3", storeCode=shown.digits), "earnPoints", BAD_STORE)
    await reject(fuel, EARN, earn("f-3", storeCode="1234 5678 9010"), "earnPoints", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "storeCode is neither a store code's 12 digits nor its QR text",
        "field": "storeCode"})


async def test_a_card_number_never_spends(tmp_path: Path) -> None:
    _, grocery, fuel, member = await setup(tmp_path)
    await grocery.gql(EARN, earn("g-earn", customerId="g-1"))
    card = card_number_of(fuel.gateway, member)
    refused = {"__typename": "ConsentRequiredError", "code": "CONSENT_REQUIRED",
               "message": "a card number may earn but never spend: link the customer with the "
               "member's consent, or scan the store code their app shows",
               "field": "cardNumber"}
    await reject(fuel, REDEEM, spend("s-1", cardNumber=card), "redeemPoints", refused)
    await reject(grocery, REDEEM, spend("s-1", cardNumber=card), "redeemPoints", refused)
    await reject(grocery, REDEEM, spend("s-2", cardNumber=card, customerId="g-1"),
                 "redeemPoints", refused)
    await reject(grocery, REDEEM, spend("s-3"), "redeemPoints", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "give exactly one of customerId or storeCode", "field": "customerId"})
