"""The attack of issue 10, replayed step by step, refused at every step.

Brand A (the grocery) enrols a shopper who earns 120 points. Brand B (the fuel station, same
currency) knows everything a dishonest partner could: the shopper's internal member id (it used
to be in every answer), A's member reference and the card number printed on A's receipt. It tries
to link its own customer "x" with each, to redeem with the card number against a
10,000,000 UAH basket, and to guess a link code. Every step is refused with nothing written, A's
customer keeps 120 points, and settlement pays B nothing. The answers for a member that exists
and one that does not are identical, so B cannot even learn who is a member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.ledger.verify import verify_ledger
from gateway.limits import InProcessRateLimiter
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import luhn_check_digit
from gateway.settlement.model import Period
from gateway.settlement.service import settlement_report
from tests.support.harness import Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import card_number_of, member_id_of

ERROR = "... on Error { code message field }"
ENROL = """mutation { enrolCustomer(input: {customerId: "shopper"}) {
  ... on EnrolCustomerSuccess { cardNumber member { memberReference } } } }"""
EARN = """mutation { earnPoints(input: {customerId: "shopper", amount: {amountMinor: 120000,
  currency: "UAH"}, channel: STORE, purchaseId: "a-1", idempotencyKey: "a-earn-1"}) {
  ... on EarnPointsSuccess { points available } } }"""
LINK = f"""mutation($input: LinkCustomerInput!) {{ linkCustomer(input: $input) {{ __typename
  {ERROR} }} }}"""
REDEEM = f"""mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{ __typename
  {ERROR} }} }}"""
AUTHORISE = f"""mutation($input: RedeemPointsInput!) {{ authoriseRedemption(input: $input) {{
  __typename {ERROR} }} }}"""
BALANCE = """query($c: ID!) { member(customerId: $c) { __typename
  ... on Member { balance { available held } } ... on Error { code } } }"""

BAD_LINK_CODE = {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
                 "message": "this link code is not valid: wrong, expired or already used; ask "
                 "the member for a new one", "field": "linkCode"}
NOT_A_STORE_CODE = {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                    "message": "storeCode is neither a store code's 12 digits nor its QR text",
                    "field": "storeCode"}
CARD_NEVER_SPENDS = {"__typename": "ConsentRequiredError", "code": "CONSENT_REQUIRED",
                     "message": "a card number may earn but never spend: link the customer with "
                     "the member's consent, or scan the store code their app shows",
                     "field": "cardNumber"}
NOT_LINKED = {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
              "message": "no member is linked to customer 'x' at this partner",
              "field": "customerId"}


def _basket(**who: str) -> dict[str, Any]:
    return {"input": {**who, "points": 70, "idempotencyKey": f"b-{sorted(who.items())}",
                      "basketAmount": {"amountMinor": 1_000_000_000, "currency": "UAH"}}}


async def refused(api: Api, query: str, variables: dict[str, Any], root: str,
                  expected: dict[str, Any]) -> None:
    before = ledger_snapshot(api.gateway)
    assert (await api.gql(query, variables))[root] == expected
    assert ledger_snapshot(api.gateway) == before


async def test_brand_b_cannot_reach_brand_a_s_shopper(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    # Guessing budgets on a stopped clock: real time would refill them while the test runs.
    gw.services.ledger.guesses = CodeGuesses.build(
        lambda per_minute, burst: InProcessRateLimiter(per_minute, burst=burst, now=lambda: 0.0))
    a, b = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")

    enrolled = (await a.gql(ENROL))["enrolCustomer"]
    assert (await a.gql(EARN))["earnPoints"] == {"points": 120, "available": 120}
    member_id = member_id_of(gw, "grocery", "shopper")
    card = card_number_of(gw, member_id)
    assert enrolled["cardNumber"] == card
    a_reference = enrolled["member"]["memberReference"]
    before = ledger_snapshot(gw)

    # 1. The old call, with the member id: the field is gone from the API.
    old = await b.post('mutation { linkCustomer(input: {customerId: "x", memberId: "'
                       + member_id + '"}) { __typename } }')
    assert old.status_code == 200
    assert old.json()["data"] is None
    assert [e["message"].split(",")[0] for e in old.json()["errors"]] == [
        "Expected value of type 'LinkCustomerInput' not to include unknown field 'memberId'"]
    # 2. The member id, A's member reference and the card number, passed off as codes.
    for stolen in (member_id, a_reference, card):
        await refused(b, LINK, {"input": {"customerId": "x", "linkCode": stolen}},
                      "linkCustomer", BAD_LINK_CODE)
        await refused(b, LINK, {"input": {"customerId": "x", "storeCode": stolen}},
                      "linkCustomer", NOT_A_STORE_CODE)
    # 3. Spend with the card number, as redemption or as a hold: never.
    await refused(b, REDEEM, _basket(cardNumber=card), "redeemPoints", CARD_NEVER_SPENDS)
    await refused(b, AUTHORISE, _basket(cardNumber=card), "authoriseRedemption",
                  CARD_NEVER_SPENDS)
    # ... nor with "x", which B never managed to link.
    await refused(b, REDEEM, _basket(customerId="x"), "redeemPoints", NOT_LINKED)
    # 4. Guess link codes: refused, then rate limited (even a right one would be now): five
    #    attempts a minute per customer id, three of them spent in step 2.
    for guess in ("ACDEFGHJ", "KMNPQRTU"):
        await refused(b, LINK, {"input": {"customerId": "x", "linkCode": guess}},
                      "linkCustomer", BAD_LINK_CODE)
    limited = (await b.gql(LINK, {"input": {"customerId": "x", "linkCode": "79ACDEFG"}}))
    assert limited["linkCustomer"]["code"] == "RATE_LIMITED"
    assert ledger_snapshot(gw) == before

    # A's customer keeps 120 points; B sees no member; the books are clean.
    assert (await a.gql(BALANCE, {"c": "shopper"}))["member"] == {
        "__typename": "Member", "balance": {"available": 120, "held": 0}}
    assert (await b.gql(BALANCE, {"c": "x"}))["member"] == {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER"}
    assert verify_ledger(gw.services.engine).ok
    # Finance pays B nothing.
    day = datetime(2026, 11, 23, tzinfo=UTC)
    report = settlement_report(gw.services.engine, gw.services.rules,
                               Period(day, day + timedelta(days=1)), "EUR")
    fuel = report.line("fuel")
    assert fuel is None or (fuel.figures.redeemed_points, fuel.net_minor) == (0, 0)
    grocery = report.line("grocery")
    assert grocery is not None and grocery.figures.issued_points == 120


async def test_a_partner_cannot_learn_whether_a_member_exists(tmp_path: Path) -> None:
    """Every way B can name a member without their consent answers the same for a member who
    exists and for one who does not."""
    gw = make_gateway(tmp_path)
    a, b = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")
    await a.gql(ENROL)
    member_id = member_id_of(gw, "grocery", "shopper")
    card = card_number_of(gw, member_id)
    body = "9" + "0" * 14
    nobody_card = body + luhn_check_digit(body)
    assert nobody_card != card
    nobody_id = "mem_" + "0" * 26
    pairs = [
        (LINK, "linkCustomer", {"input": {"customerId": "x", "linkCode": member_id}},
         {"input": {"customerId": "x", "linkCode": nobody_id}}),
        (LINK, "linkCustomer", {"input": {"customerId": "x", "linkCode": card}},
         {"input": {"customerId": "x", "linkCode": nobody_card}}),
        (REDEEM, "redeemPoints", _basket(cardNumber=card), _basket(cardNumber=nobody_card)),
        (AUTHORISE, "authoriseRedemption", _basket(cardNumber=card),
         _basket(cardNumber=nobody_card)),
    ]
    before = ledger_snapshot(gw)
    for query, root, exists, missing in pairs:
        assert (await b.gql(query, exists))[root] == (await b.gql(query, missing))[root]
    assert ledger_snapshot(gw) == before
