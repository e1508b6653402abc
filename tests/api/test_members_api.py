"""Enrol, link and read members over GraphQL, with real tokens on a real SQLite file.

A partner sees a member only through its own customer ids, and only its own operations in the
history. Every rejection asserts the exact typed error and that nothing was written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.limits import InProcessRateLimiter
from gateway.members import consent
from gateway.members.guesses import CodeGuesses
from gateway.members.identity import CODE_ALPHABET, IdentityRepository, is_card_number
from gateway.members.secrets import reference_for
from tests.support.harness import (
    NOW,
    PARTNER_SCOPES,
    Api,
    ledger_snapshot,
    make_gateway,
    partner_api,
)
from tests.support.members import card_number_of, member_id_of

MEMBER_FIELDS = "customerId memberReference linkedAt"
ERROR = "... on Error { code message field }"
ENROL = f"""mutation($c: ID!) {{ enrolCustomer(input: {{customerId: $c}}) {{ __typename
  ... on EnrolCustomerSuccess {{ created cardNumber activationCode member {{ {MEMBER_FIELDS} }} }}
  {ERROR} ... on ForbiddenError {{ scope }} }} }}"""
LINK = f"""mutation($c: ID!, $code: String, $store: String) {{ linkCustomer(input: {{
  customerId: $c, linkCode: $code, storeCode: $store}}) {{ __typename
  ... on LinkCustomerSuccess {{ created member {{ {MEMBER_FIELDS} }} }}
  {ERROR} ... on ForbiddenError {{ scope }} ... on RateLimitedError {{ retryAfterSeconds }}
  }} }}"""
BALANCE = f"""query($c: ID!) {{ member(customerId: $c) {{ __typename
  ... on Member {{ {MEMBER_FIELDS}
    balance {{ available held pending debt expiringSoon expiringBefore }} }}
  {ERROR} ... on ForbiddenError {{ scope }} }} }}"""
HISTORY = """query($c: ID!, $first: Int!, $after: String) { member(customerId: $c) {
  ... on Member { history(first: $first, after: $after) {
    edges { cursor node { id kind points channel purchaseId amount { amountMinor currency }
                          ruleVersion occurredAt recordedAt } }
    pageInfo { hasNextPage endCursor } } } } }"""
EARN = """mutation($c: ID!, $amount: MinorUnits!, $p: String!) { earnPoints(input: {customerId: $c,
  amount: {amountMinor: $amount, currency: "UAH"}, channel: STORE, purchaseId: $p,
  idempotencyKey: $p}) { ... on EarnPointsSuccess { operationId points } } }"""
REDEEM = """mutation($c: ID!, $points: Int!, $basket: MoneyInput!, $key: String!) {
  redeemPoints(input: {customerId: $c, points: $points, basketAmount: $basket,
  idempotencyKey: $key}) { ... on RedeemPointsSuccess { operationId available } } }"""
RETURN = """mutation { returnPurchase(input: {purchaseId: "r-1", amount: {amountMinor: 30000,
  currency: "UAH"}, idempotencyKey: "ret-1"}) { ... on ReturnPurchaseSuccess { operationId } } }"""

AT = "2026-11-23T10:00:00+00:00"
BAD_CODE = {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
            "message": "this link code is not valid: wrong, expired or already used; ask the "
            "member for a new one", "field": "linkCode"}


async def reject(api: Api, query: str, variables: dict[str, Any], root: str,
                 expected: dict[str, Any]) -> None:
    before = ledger_snapshot(api.gateway)
    result = (await api.gql(query, variables))[root]
    assert result == expected
    assert ledger_snapshot(api.gateway) == before


async def enrol(api: Api, customer: str) -> str:
    """Enrol the customer; the coalition member id behind it (only the gateway knows it)."""
    await api.gql(ENROL, {"c": customer})
    assert api.partner_id is not None
    return member_id_of(api.gateway, api.partner_id, customer)


def code_of(gw: Gateway, member_id: str) -> str:
    return consent.create_link_code(gw.services.engine, gw.services.clock, member_id).code


def reference(gw: Gateway, partner_id: str, member_id: str) -> str:
    return reference_for(gw.services.engine, gw.services.clock, partner_id, member_id)


# --- enrolCustomer ------------------------------------------------------------------------------
async def test_enrol_creates_once_then_returns_the_same_member(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery = await partner_api(gw, "grocery")
    first = (await grocery.gql(ENROL, {"c": "g-1"}))["enrolCustomer"]
    member = member_id_of(gw, "grocery", "g-1")
    ref = first["member"]["memberReference"]
    assert ref == reference(gw, "grocery", member) and ref.startswith("mr_") and len(ref) == 29
    card, activation = first["cardNumber"], first["activationCode"]
    assert is_card_number(card) and card == card_number_of(gw, member)
    assert len(activation) == 10 and set(activation) <= set(CODE_ALPHABET)
    with gw.services.engine.connect() as conn:
        assert IdentityRepository(conn).activation_matches(member, activation)
    assert first == {"__typename": "EnrolCustomerSuccess", "created": True,
                     "cardNumber": card, "activationCode": activation,
                     "member": {"customerId": "g-1", "memberReference": ref, "linkedAt": AT}}
    before = ledger_snapshot(gw)
    assert before["counts"]["members"] == 1
    assert before["counts"]["linked_accounts"] == 1

    clock.advance(timedelta(minutes=5))
    again = (await grocery.gql(ENROL, {"c": "g-1"}))["enrolCustomer"]
    # Never again: no card number, no activation code in a repeated answer.
    assert again == {"__typename": "EnrolCustomerSuccess", "created": False,
                     "cardNumber": None, "activationCode": None,
                     "member": {"customerId": "g-1", "memberReference": ref, "linkedAt": AT}}
    assert ledger_snapshot(gw) == before

    other = (await grocery.gql(ENROL, {"c": "g-2"}))["enrolCustomer"]
    assert other["created"] is True
    assert other["member"]["memberReference"] != ref
    assert other["cardNumber"] != card


async def test_enrol_rejects(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    blank = {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
             "message": "customerId must be 1 to 128 characters, not blank", "field": "customerId"}
    await reject(grocery, ENROL, {"c": "  "}, "enrolCustomer", blank)
    # Length is checked centrally, on every id argument (gateway/api/arguments.py).
    await reject(grocery, ENROL, {"c": "c" * 129}, "enrolCustomer", {
        **blank, "message": "input.customerId must be at most 128 characters",
        "field": "input.customerId"})
    limited = await partner_api(gw, "grocery", scopes=PARTNER_SCOPES - {"members:link"},
                                name="grocery read-only")
    await reject(limited, ENROL, {"c": "g-1"}, "enrolCustomer", {
        "__typename": "ForbiddenError", "code": "FORBIDDEN",
        "message": "this token lacks the scope 'members:link' that this field needs",
        "field": None, "scope": "members:link"})


# --- linkCustomer -------------------------------------------------------------------------------
async def test_link_with_a_link_code_once(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery, electronics = await partner_api(gw, "grocery"), await partner_api(gw, "electronics")
    member = await enrol(grocery, "g-1")
    code = code_of(gw, member)
    clock.advance(timedelta(minutes=1))
    linked = (await electronics.gql(LINK, {"c": "e-1", "code": code.lower()}))["linkCustomer"]
    ref = reference(gw, "electronics", member)
    assert ref != reference(gw, "grocery", member)
    assert linked == {"__typename": "LinkCustomerSuccess", "created": True,
                      "member": {"customerId": "e-1", "memberReference": ref,
                                 "linkedAt": "2026-11-23T10:01:00+00:00"}}
    before = ledger_snapshot(gw)
    assert before["counts"]["linked_accounts"] == 2
    assert before["counts"]["members"] == 1
    with gw.services.engine.connect() as conn:
        event = conn.execute(select(t.link_events.c.via, t.link_events.c.actor)
                             .where(t.link_events.c.partner_id == "electronics")).one()
    assert tuple(event) == ("link_code", "partner:electronics")

    # Single use: the same code again is a wrong code, even for the partner that used it.
    clock.advance(timedelta(minutes=1))
    await reject(electronics, LINK, {"c": "e-1", "code": code}, "linkCustomer", BAD_CODE)
    # A fresh code for the same customer id and member: the existing link, not a new one.
    again = (await electronics.gql(LINK, {"c": "e-1", "code": code_of(gw, member)}))
    assert again["linkCustomer"] == {**linked, "created": False}


async def test_link_with_a_store_code(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery, fuel = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")
    member = await enrol(grocery, "g-1")
    shown = consent.issue_store_code(gw.services.engine, gw.services.clock, member)
    linked = (await fuel.gql(LINK, {"c": "f-1", "store": shown.qr_text}))["linkCustomer"]
    assert linked == {"__typename": "LinkCustomerSuccess", "created": True,
                      "member": {"customerId": "f-1",
                                 "memberReference": reference(gw, "fuel", member),
                                 "linkedAt": AT}}
    # The store code's one consent use is taken: typed as digits, it links nobody else.
    await reject(fuel, LINK, {"c": "f-2", "store": shown.digits}, "linkCustomer", {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
        "message": "this store code is not valid: wrong, expired or already used; ask the "
        "member to show a fresh one", "field": "storeCode"})


async def test_link_rejects(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery, electronics = await partner_api(gw, "grocery"), await partner_api(gw, "electronics")
    first, second = await enrol(grocery, "g-1"), await enrol(grocery, "g-2")
    await electronics.gql(LINK, {"c": "e-1", "code": code_of(gw, first)})
    await electronics.gql(LINK, {"c": "e-2", "code": code_of(gw, second)})

    # Wrong, malformed, expired and someone else's used code: one answer.
    await reject(electronics, LINK, {"c": "e-9", "code": "AAAAAAAA"}, "linkCustomer", BAD_CODE)
    await reject(electronics, LINK, {"c": "e-9", "code": "not a code"}, "linkCustomer",
                 BAD_CODE)
    stale = code_of(gw, first)
    clock.advance(timedelta(minutes=10))
    await reject(electronics, LINK, {"c": "e-9", "code": stale}, "linkCustomer", BAD_CODE)
    # e-2 already belongs to the second member.
    await reject(electronics, LINK, {"c": "e-2", "code": code_of(gw, first)}, "linkCustomer", {
        "__typename": "AlreadyLinkedError", "code": "ALREADY_LINKED",
        "message": "customer 'e-2' is linked to another member", "field": "customerId"})
    # The first member already is e-1 here; a second customer id for them is refused.
    await reject(electronics, LINK, {"c": "e-3", "code": code_of(gw, first)}, "linkCustomer", {
        "__typename": "AlreadyLinkedError", "code": "ALREADY_LINKED",
        "message": "this member is already linked at this partner under another customer id",
        "field": "linkCode"})
    await reject(electronics, LINK, {"c": "", "code": code_of(gw, first)}, "linkCustomer", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT",
        "message": "customerId must be 1 to 128 characters, not blank", "field": "customerId"})
    both = {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
            "message": "give exactly one of linkCode or storeCode"}
    await reject(electronics, LINK, {"c": "e-3"}, "linkCustomer", {**both, "field": "linkCode"})
    await reject(electronics, LINK, {"c": "e-3", "code": "AAAAAAAA", "store": "x"},
                 "linkCustomer", {**both, "field": "storeCode"})
    limited = await partner_api(gw, "electronics", scopes=PARTNER_SCOPES - {"members:link"},
                                name="electronics read-only")
    await reject(limited, LINK, {"c": "e-3", "code": code_of(gw, second)}, "linkCustomer", {
        "__typename": "ForbiddenError", "code": "FORBIDDEN",
        "message": "this token lacks the scope 'members:link' that this field needs",
        "field": None, "scope": "members:link"})


async def test_link_code_guesses_are_rate_limited(tmp_path: Path) -> None:
    """Five attempts a minute per customer id, thirty at once per partner: then RATE_LIMITED,
    even for a right code, and nothing is written."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    # The budgets on a stopped clock (real time would refill them while the test runs).
    gw.services.ledger.guesses = CodeGuesses.build(
        lambda per_minute, burst: InProcessRateLimiter(per_minute, burst=burst, now=lambda: 0.0))
    grocery, fuel = await partner_api(gw, "grocery"), await partner_api(gw, "fuel")
    member = await enrol(grocery, "g-1")
    for n in range(5):
        await reject(fuel, LINK, {"c": "f-1", "code": f"AAAAAAA{CODE_ALPHABET[n]}"},
                     "linkCustomer", BAD_CODE)
    limited = (await fuel.gql(LINK, {"c": "f-1", "code": code_of(gw, member)}))["linkCustomer"]
    assert limited["__typename"] == "RateLimitedError"
    assert limited["code"] == "RATE_LIMITED" and limited["retryAfterSeconds"] >= 1
    # Spread over customer ids, the partner's own budget stops the guessing.
    for n in range(25):
        await reject(fuel, LINK, {"c": f"f-{n + 2}", "code": "AAAAAAAA"}, "linkCustomer",
                     BAD_CODE)
    spread = (await fuel.gql(LINK, {"c": "f-99", "code": "AAAAAAAA"}))["linkCustomer"]
    assert spread["code"] == "RATE_LIMITED"
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.linked_accounts).where(
            t.linked_accounts.c.partner_id == "fuel")).scalar_one() == 0


# --- member: balance ----------------------------------------------------------------------------
async def test_member_balance_and_points_expiring_soon(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery, electronics = await partner_api(gw, "grocery"), await partner_api(gw, "electronics")
    member = await enrol(grocery, "g-1")
    await electronics.gql(LINK, {"c": "e-1", "code": code_of(gw, member)})
    await grocery.gql(EARN, {"c": "g-1", "amount": 120000, "p": "r-1"})  # 120, expire NOW+365d
    found = (await electronics.gql(BALANCE, {"c": "e-1"}))["member"]
    assert found == {"__typename": "Member", "customerId": "e-1",
                     "memberReference": reference(gw, "electronics", member),
                     "linkedAt": AT,
                     "balance": {"available": 120, "held": 0, "pending": 0, "debt": 0,
                                 "expiringSoon": 0,
                                 "expiringBefore": "2026-12-23T10:00:00+00:00"}}

    clock.advance(timedelta(days=100))
    await grocery.fetch_token()
    await grocery.gql(EARN, {"c": "g-1", "amount": 30000, "p": "r-2"})  # 30, expire NOW+465d

    # 31 days before the first lot expires: outside the 30-day window.
    clock.set(NOW + timedelta(days=334))
    await grocery.fetch_token()
    balance = (await grocery.gql(BALANCE, {"c": "g-1"}))["member"]["balance"]
    assert balance == {"available": 150, "held": 0, "pending": 0, "debt": 0,
                       "expiringSoon": 0, "expiringBefore": "2027-11-22T10:00:00+00:00"}
    # Exactly 30 days before: the first lot's 120 points are expiring soon, the 30 are not.
    clock.advance(timedelta(days=1))
    await grocery.fetch_token()
    balance = (await grocery.gql(BALANCE, {"c": "g-1"}))["member"]["balance"]
    assert balance == {"available": 150, "held": 0, "pending": 0, "debt": 0,
                       "expiringSoon": 120, "expiringBefore": "2027-11-23T10:00:00+00:00"}


async def test_member_rejects(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    await enrol(grocery, "g-1")
    await reject(grocery, BALANCE, {"c": "nobody"}, "member", {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
        "message": "no member is linked to customer 'nobody' here", "field": "customerId"})
    limited = await partner_api(gw, "grocery", scopes=PARTNER_SCOPES - {"members:read"},
                                name="grocery write-only")
    await reject(limited, BALANCE, {"c": "g-1"}, "member", {
        "__typename": "ForbiddenError", "code": "FORBIDDEN",
        "message": "this token lacks the scope 'members:read' that this field needs",
        "field": None, "scope": "members:read"})


# --- member: history ----------------------------------------------------------------------------
async def grocery_history_world(tmp_path: Path) -> tuple[Api, Api, list[str]]:
    """Four grocery operations on g-1 (two earns, a redeem, a return) and one at electronics;
    returns the grocery's operation ids, oldest first."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery, electronics = await partner_api(gw, "grocery"), await partner_api(gw, "electronics")
    member = await enrol(grocery, "g-1")
    await electronics.gql(LINK, {"c": "e-1", "code": code_of(gw, member)})
    ids = []
    for step in range(4):
        clock.advance(timedelta(minutes=1))
        if step == 0:
            data = (await grocery.gql(EARN, {"c": "g-1", "amount": 120000, "p": "r-1"}))
            ids.append(data["earnPoints"]["operationId"])
        elif step == 1:
            data = await grocery.gql(EARN, {"c": "g-1", "amount": 60000, "p": "r-2"})
            ids.append(data["earnPoints"]["operationId"])
        elif step == 2:
            data = await grocery.gql(REDEEM, {"c": "g-1", "points": 50, "key": "rd-1",
                                              "basket": {"amountMinor": 10000,
                                                         "currency": "UAH"}})
            ids.append(data["redeemPoints"]["operationId"])
        else:
            ids.append((await grocery.gql(RETURN))["returnPurchase"]["operationId"])
    clock.advance(timedelta(minutes=1))
    redeemed = await electronics.gql(REDEEM, {"c": "e-1", "points": 100, "key": "x-1",
                                              "basket": {"amountMinor": 100,
                                                         "currency": "EUR"}})
    assert redeemed["redeemPoints"]["available"] == 0  # 120 + 60 - 50 - 30 - 100
    return grocery, electronics, ids


def node(op: str, kind: str, points: int, minute: int, *, purchase: str | None = None,
         amount: int | None = None, currency: str = "UAH", channel: str | None = None,
         rule: int | None = 1) -> dict[str, Any]:
    at = f"2026-11-23T10:{minute:02d}:00+00:00"
    return {"id": op, "kind": kind, "points": points, "channel": channel, "purchaseId": purchase,
            "amount": None if amount is None else {"amountMinor": amount, "currency": currency},
            "ruleVersion": rule, "occurredAt": at, "recordedAt": at}


async def test_history_is_newest_first_and_pages(tmp_path: Path) -> None:
    grocery, _, (earn1, earn2, redeem, ret) = await grocery_history_world(tmp_path)
    page1 = (await grocery.gql(HISTORY, {"c": "g-1", "first": 2}))["member"]["history"]
    assert [e["node"] for e in page1["edges"]] == [
        node(ret, "return", -30, 4, purchase="r-1", amount=30000, rule=None),
        node(redeem, "redeem", -50, 3, amount=10000)]
    assert page1["pageInfo"] == {"hasNextPage": True,
                                 "endCursor": page1["edges"][1]["cursor"]}

    page2 = (await grocery.gql(HISTORY, {"c": "g-1", "first": 2,
                                         "after": page1["pageInfo"]["endCursor"]}))
    page2 = page2["member"]["history"]
    assert [e["node"] for e in page2["edges"]] == [
        node(earn2, "earn", 60, 2, purchase="r-2", amount=60000, channel="store"),
        node(earn1, "earn", 120, 1, purchase="r-1", amount=120000, channel="store")]
    assert page2["pageInfo"] == {"hasNextPage": False,
                                 "endCursor": page2["edges"][1]["cursor"]}

    exact = (await grocery.gql(HISTORY, {"c": "g-1", "first": 4}))["member"]["history"]
    assert [e["node"]["id"] for e in exact["edges"]] == [ret, redeem, earn2, earn1]
    assert exact["pageInfo"]["hasNextPage"] is False
    three = (await grocery.gql(HISTORY, {"c": "g-1", "first": 3}))["member"]["history"]
    assert [e["node"]["id"] for e in three["edges"]] == [ret, redeem, earn2]
    assert three["pageInfo"]["hasNextPage"] is True
    past_end = (await grocery.gql(HISTORY, {"c": "g-1", "first": 2,
                                            "after": page2["pageInfo"]["endCursor"]}))
    assert past_end["member"]["history"] == {"edges": [],
                                             "pageInfo": {"hasNextPage": False,
                                                          "endCursor": None}}


async def test_history_rejects_bad_page_arguments_as_graphql_errors(tmp_path: Path) -> None:
    """``history`` is a field of ``Member``, not a mutation: a bad ``first`` or ``after`` is a
    GraphQL error (data null), not a typed union member. A bad ``first`` is refused before
    anything runs (no path: gateway/api/pages.py); a bad cursor on the path member.history."""
    grocery, _, _ = await grocery_history_world(tmp_path)
    for first, after, message, field, path in (
        (0, None, "first must be between 1 and 100", "first", None),
        (101, None, "first must be between 1 and 100", "first", None),
        (2, "not-a-cursor", "after is not a cursor this API issued", "after",
         ["member", "history"]),
        (2, "eHg6MQ==", "after is not a cursor this API issued", "after",  # base64 "xx:1"
         ["member", "history"]),
    ):
        before = ledger_snapshot(grocery.gateway)
        response = await grocery.post(HISTORY, {"c": "g-1", "first": first, "after": after})
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert [(e["message"], e.get("path"), e["extensions"]) for e in body["errors"]] == [
            (message, path, {"code": "INVALID_INPUT", "field": field})]
        assert ledger_snapshot(grocery.gateway) == before
    hundred = (await grocery.gql(HISTORY, {"c": "g-1", "first": 100}))["member"]["history"]
    assert len(hundred["edges"]) == 4


# --- partner isolation --------------------------------------------------------------------------
async def test_a_partner_sees_only_its_own_customers_and_operations(tmp_path: Path) -> None:
    grocery, electronics, grocery_ops = await grocery_history_world(tmp_path)
    # The grocery's customer id means nothing at the electronics shop, and the reverse.
    await reject(electronics, BALANCE, {"c": "g-1"}, "member", {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
        "message": "no member is linked to customer 'g-1' here", "field": "customerId"})
    await reject(grocery, BALANCE, {"c": "e-1"}, "member", {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER",
        "message": "no member is linked to customer 'e-1' here", "field": "customerId"})

    seen = (await electronics.gql(HISTORY, {"c": "e-1", "first": 100}))["member"]["history"]
    assert [(e["node"]["kind"], e["node"]["points"], e["node"]["amount"]) for e in seen["edges"]
            ] == [("redeem", -100, {"amountMinor": 100, "currency": "EUR"})]
    assert not {e["node"]["id"] for e in seen["edges"]} & set(grocery_ops)
    own = (await grocery.gql(HISTORY, {"c": "g-1", "first": 100}))["member"]["history"]
    assert [e["node"]["id"] for e in own["edges"]] == grocery_ops[::-1]
    # One wallet across brands: both see the same balance.
    for api, customer in ((grocery, "g-1"), (electronics, "e-1")):
        found = (await api.gql(BALANCE, {"c": customer}))["member"]["balance"]
        assert (found["available"], found["debt"]) == (0, 0)
