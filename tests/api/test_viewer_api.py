"""The member's own API (``viewer`` and the member actions) over GraphQL with real member tokens
on a real database. Every rejection asserts the exact typed error and that nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.ledger.verify import verify_ledger
from tests.support.harness import NOW, Api, ledger_snapshot, make_gateway, partner_api
from tests.support.members import (
    LINK,
    card_of,
    give_activation_code,
    link_code_for,
    member_api,
    member_id_of,
)

ERROR = "... on Error { __typename code message field }"
VIEWER = f"""query($first: Int!, $after: String) {{ viewer {{ __typename
  ... on Viewer {{ cardNumber
    wallet {{ available held debt pending pendingReleases {{ releaseAt points }}
              expiring {{ date points }} }}
    history(first: $first, after: $after) {{
      edges {{ node {{ partnerId partnerName kind channel points explanation }} }}
      pageInfo {{ hasNextPage }} }}
    linkedBrands {{ partnerId partnerName consentVia }}
    consents {{ purpose partnerId partnerName granted at via }} }}
  {ERROR} ... on ForbiddenError {{ scope }} }} }}"""
WALLET = """query { viewer { __typename ... on Viewer { wallet { available pending debt } }
  ... on Error { code } } }"""
GONE = {"__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER"}
ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""
EARN = """mutation($c: ID!, $amount: MinorUnits!, $cur: String!, $p: String!) { earnPoints(input: {
  customerId: $c, amount: {amountMinor: $amount, currency: $cur}, channel: STORE,
  purchaseId: $p, idempotencyKey: $p}) { ... on EarnPointsSuccess { points } } }"""
MEMBER = """query($c: ID!) { member(customerId: $c) { __typename
  ... on Member { balance { available } } ... on Error { code } } }"""
DONATE = f"""mutation($to: ID!, $points: Int!, $key: String!) {{
  donatePoints(charityPartnerId: $to, points: $points, idempotencyKey: $key) {{ __typename
  ... on DonatePointsSuccess {{ charityPartnerId points available }} {ERROR}
  ... on InsufficientPointsError {{ requested available }} }} }}"""
UNLINK = f"""mutation($p: ID!) {{ unlinkBrand(partnerId: $p) {{ __typename
  ... on UnlinkBrandSuccess {{ partnerId linkedBrands {{ partnerId }} }} {ERROR} }} }}"""
CONSENT = f"""mutation($purpose: ConsentPurpose!, $p: ID, $g: Boolean!) {{
  setConsent(purpose: $purpose, partnerId: $p, granted: $g) {{ __typename
  ... on SetConsentSuccess {{ consent {{ purpose partnerId granted via }} }} {ERROR} }} }}"""
MERGE = f"""mutation($card: String!, $code: String!, $key: String!) {{
  mergeAccount(cardNumber: $card, activationCode: $code, idempotencyKey: $key) {{ __typename
  ... on MergeAccountSuccess {{ walletMoved pendingMoved debtMoved lotsMoved brandsMoved }}
  {ERROR} }} }}"""
EXPORT = "mutation { exportMyData { __typename ... on ExportMyDataSuccess { json } } }"
ERASE = f"""mutation($r: RemainingPoints!, $c: ID) {{
  eraseMe(remainingPoints: $r, charityPartnerId: $c) {{ __typename
  ... on EraseMeSuccess {{ forfeited donated linksClosed }} {ERROR} }} }}"""


async def world(tmp_path: Path) -> tuple[Gateway, FixedClock, Api, Api, Api, str]:
    """A member with 120 grocery points (g-1) and 50 electronics points (e-1)."""
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery = await partner_api(gw, "grocery")
    electronics = await partner_api(gw, "electronics")
    fuel = await partner_api(gw, "fuel")
    await grocery.gql(ENROL, {"c": "g-1"})
    member = member_id_of(gw, "grocery", "g-1")
    code = link_code_for(gw, "grocery", "g-1")  # the member makes it; electronics links with it
    assert (await electronics.gql(LINK, {"c": "e-1", "code": code}))["linkCustomer"][
        "__typename"] == "LinkCustomerSuccess"
    await grocery.gql(EARN, {"c": "g-1", "amount": 120000, "cur": "UAH", "p": "g-p1"})
    clock.advance(timedelta(minutes=1))
    await electronics.gql(EARN, {"c": "e-1", "amount": 5000, "cur": "EUR", "p": "e-p1"})
    return gw, clock, grocery, electronics, fuel, member


async def rejected(api: Api, query: str, variables: dict[str, Any], root: str,
                   expected: dict[str, Any]) -> None:
    before = ledger_snapshot(api.gateway)
    assert (await api.gql(query, variables))[root] == expected
    assert ledger_snapshot(api.gateway) == before


async def test_viewer_shows_the_members_own_wallet_history_links_and_consents(
        tmp_path: Path) -> None:
    gw, clock, _, _, _, member = await world(tmp_path)
    clock.advance(timedelta(days=300))  # the grocery lot (365 days) now expires within 90
    me = member_api(gw, member)
    body = (await me.gql(VIEWER, {"first": 1}))["viewer"]
    assert body == {
        "__typename": "Viewer", "cardNumber": card_of(gw, member),
        "wallet": {"available": 170, "held": 0, "debt": 0, "pending": 0, "pendingReleases": [],
                   "expiring": [{"date": "2027-11-23", "points": 170}]},
        "history": {"edges": [{"node": {
            "partnerId": "electronics", "partnerName": "Volt Electronics", "kind": "earn",
            "channel": "store", "points": 50,
            "explanation": body["history"]["edges"][0]["node"]["explanation"]}}],
            "pageInfo": {"hasNextPage": True}},
        "linkedBrands": [
            {"partnerId": "electronics", "partnerName": "Volt Electronics",
             "consentVia": "link_code"},
            {"partnerId": "grocery", "partnerName": "Kolos Grocery", "consentVia": "enrolment"}],
        "consents": []}
    assert body["history"]["edges"][0]["node"]["explanation"] != []
    second = (await me.gql(VIEWER, {"first": 100}))["viewer"]["history"]
    assert [e["node"]["partnerId"] for e in second["edges"]] == ["electronics", "grocery"]
    assert second["pageInfo"] == {"hasNextPage": False}


async def test_page_size_and_tokens_are_checked(tmp_path: Path) -> None:
    gw, _, grocery, _, _, member = await world(tmp_path)
    me = member_api(gw, member)
    response = await me.post(VIEWER, {"first": 101})
    errors = response.json()["errors"]
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [
        ("INVALID_INPUT", "first")]
    # A partner token cannot call viewer; a member token cannot call partner fields.
    assert (await grocery.gql(VIEWER, {"first": 1}))["viewer"] == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN", "field": None, "scope": "member",
        "message": "this token lacks the scope 'member' that this field needs"}
    assert (await me.gql(MEMBER, {"c": "g-1"}))["member"] == {
        "__typename": "ForbiddenError", "code": "FORBIDDEN"}
    earn = EARN.replace("{ points }", "{ points } ... on ForbiddenError { __typename scope }")
    await rejected(me, earn, {"c": "g-1", "amount": 1000, "cur": "UAH", "p": "x"},
                   "earnPoints", {"__typename": "ForbiddenError", "scope": "points:earn"})


async def test_member_a_never_sees_member_b(tmp_path: Path) -> None:
    gw, _, grocery, _, _, member = await world(tmp_path)
    await grocery.gql(ENROL, {"c": "g-2"})
    other = member_id_of(gw, "grocery", "g-2")
    await grocery.gql(EARN, {"c": "g-2", "amount": 30000, "cur": "UAH", "p": "g-p2"})
    b = (await member_api(gw, other).gql(VIEWER, {"first": 100}))["viewer"]
    assert b["cardNumber"] == card_of(gw, other) != card_of(gw, member)
    assert b["wallet"]["available"] == 30
    assert [e["node"]["points"] for e in b["history"]["edges"]] == [30]
    assert b["linkedBrands"] == [{"partnerId": "grocery", "partnerName": "Kolos Grocery",
                                  "consentVia": "enrolment"}]


async def test_consents_are_events_with_when_and_how(tmp_path: Path) -> None:
    gw, clock, _, _, _, member = await world(tmp_path)
    me = member_api(gw, member)
    ok = await me.gql(CONSENT, {"purpose": "MARKETING", "p": "grocery", "g": True})
    assert ok["setConsent"] == {"__typename": "SetConsentSuccess", "consent": {
        "purpose": "marketing", "partnerId": "grocery", "granted": True, "via": "app"}}
    clock.advance(timedelta(minutes=1))
    await me.gql(CONSENT, {"purpose": "MARKETING", "p": "grocery", "g": False})
    await me.gql(CONSENT, {"purpose": "PURCHASE_HISTORY", "p": None, "g": True})
    consents = (await me.gql(VIEWER, {"first": 1}))["viewer"]["consents"]
    assert consents == [
        {"purpose": "marketing", "partnerId": "grocery", "partnerName": "Kolos Grocery",
         "granted": False, "at": "2026-11-23T10:02:00+00:00", "via": "app"},
        {"purpose": "purchase_history", "partnerId": None, "partnerName": None,
         "granted": True, "at": "2026-11-23T10:02:00+00:00", "via": "app"}]
    for variables, field, message in (
        ({"purpose": "MARKETING", "p": None, "g": True}, "partnerId",
         "marketing consent is given per partner: name one"),
        ({"purpose": "PURCHASE_HISTORY", "p": "grocery", "g": True}, "partnerId",
         "purchase_history consent is coalition-wide: no partner"),
    ):
        await rejected(me, CONSENT, variables, "setConsent", {
            "__typename": "InvalidInputError", "code": "INVALID_INPUT", "field": field,
            "message": message})
    await rejected(me, CONSENT, {"purpose": "MARKETING", "p": "nope", "g": True}, "setConsent",
                   {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "partnerId",
                    "message": "no partner 'nope'"})
    assert _count(gw, t.consents) == 3


async def test_unlink_keeps_the_points_and_the_partner_loses_the_customer(
        tmp_path: Path) -> None:
    gw, _, grocery, _, _, member = await world(tmp_path)
    me = member_api(gw, member)
    done = (await me.gql(UNLINK, {"p": "grocery"}))["unlinkBrand"]
    assert done == {"__typename": "UnlinkBrandSuccess", "partnerId": "grocery",
                    "linkedBrands": [{"partnerId": "electronics"}]}
    assert (await grocery.gql(MEMBER, {"c": "g-1"}))["member"] == {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER"}
    assert (await me.gql(WALLET))["viewer"]["wallet"] == {"available": 170, "pending": 0,
                                                           "debt": 0}
    await rejected(me, UNLINK, {"p": "grocery"}, "unlinkBrand", {
        "__typename": "NotFoundError", "code": "NOT_FOUND", "field": "partnerId",
        "message": "no open link at partner 'grocery'"})


async def test_donate_moves_points_to_the_charity_once_per_key(tmp_path: Path) -> None:
    gw, _, _, _, _, member = await world(tmp_path)
    me = member_api(gw, member)
    first = (await me.gql(DONATE, {"to": "charity", "points": 60, "key": "d1"}))["donatePoints"]
    assert first == {"__typename": "DonatePointsSuccess", "charityPartnerId": "charity",
                     "points": 60, "available": 110}
    await rejected(me, DONATE, {"to": "charity", "points": 60, "key": "d1"}, "donatePoints",
                   first)
    await rejected(me, DONATE, {"to": "charity", "points": 61, "key": "d1"}, "donatePoints", {
        "__typename": "IdempotencyKeyReusedError", "code": "IDEMPOTENCY_KEY_REUSED",
        "field": "idempotencyKey",
        "message": "idempotency key 'd1' was already used for a different request; use a new "
                   "key for a new operation"})
    await rejected(me, DONATE, {"to": "grocery", "points": 1, "key": "d2"}, "donatePoints", {
        "__typename": "NotFoundError", "code": "NOT_FOUND", "field": "charityPartnerId",
        "message": "no charity partner 'grocery'"})
    await rejected(me, DONATE, {"to": "charity", "points": 111, "key": "d3"}, "donatePoints", {
        "__typename": "InsufficientPointsError", "code": "INSUFFICIENT_POINTS",
        "field": "points", "requested": 111, "available": 110,
        "message": "the member has 110 points available; 111 were requested"})
    await rejected(me, DONATE, {"to": "charity", "points": 0, "key": "d4"}, "donatePoints", {
        "__typename": "InvalidAmountError", "code": "INVALID_AMOUNT", "field": "points",
        "message": "points must be between 1 and 1000000000000"})
    with gw.services.engine.connect() as conn:
        lots = conn.execute(select(t.lots.c.origin_partner_id, t.lots.c.remaining)
                            .order_by(t.lots.c.id)).all()
    assert [tuple(r) for r in lots] == [("grocery", 60), ("electronics", 50)]
    assert verify_ledger(gw.services.engine).ok


async def test_merge_absorbs_a_second_account_the_member_proves(tmp_path: Path) -> None:
    gw, _, _, _, fuel, member = await world(tmp_path)
    await fuel.gql(ENROL, {"c": "f-1"})
    other = member_id_of(gw, "fuel", "f-1")
    await fuel.gql(EARN, {"c": "f-1", "amount": 100000, "cur": "UAH", "p": "f-p1"})
    code = give_activation_code(gw, other)
    me = member_api(gw, member)
    mine = give_activation_code(gw, member)
    await rejected(me, MERGE, {"card": card_of(gw, member), "code": mine, "key": "m0"},
                   "mergeAccount", {
                       "__typename": "InvalidInputError", "code": "INVALID_INPUT",
                       "field": "cardNumber",
                       "message": "an account cannot be merged into itself"})
    await rejected(me, MERGE, {"card": card_of(gw, other), "code": "WRONGCODE1", "key": "m1"},
                   "mergeAccount", {
                       "__typename": "NotFoundError", "code": "NOT_FOUND", "field": "cardNumber",
                       "message": "no account with this card number and activation code"})
    done = (await me.gql(MERGE, {"card": card_of(gw, other), "code": code, "key": "m1"}))
    assert done["mergeAccount"] == {"__typename": "MergeAccountSuccess", "walletMoved": 50,
                                    "pendingMoved": 0, "debtMoved": 0, "lotsMoved": 1,
                                    "brandsMoved": ["fuel"]}
    await rejected(me, MERGE, {"card": card_of(gw, other), "code": code, "key": "m1"},
                   "mergeAccount", done["mergeAccount"])
    assert (await fuel.gql(MEMBER, {"c": "f-1"}))["member"] == {
        "__typename": "Member", "balance": {"available": 220}}
    view = (await me.gql(VIEWER, {"first": 100}))["viewer"]
    assert [(e["node"]["partnerId"], e["node"]["kind"], e["node"]["points"])
            for e in view["history"]["edges"]] == [
        ("fuel", "merge", 50), ("fuel", "earn", 50), ("electronics", "earn", 50),
        ("grocery", "earn", 120)]
    assert [b["partnerId"] for b in view["linkedBrands"]] == ["electronics", "fuel", "grocery"]
    assert (await member_api(gw, other).gql(WALLET))["viewer"] == GONE
    assert verify_ledger(gw.services.engine).ok


async def test_export_holds_everything_and_erasure_removes_the_person(tmp_path: Path) -> None:
    gw, _, grocery, _, _, member = await world(tmp_path)
    me = member_api(gw, member)
    await me.gql(CONSENT, {"purpose": "MARKETING", "p": "grocery", "g": True})
    with gw.services.engine.begin() as conn:  # as sign-up and sign-in would leave them
        conn.execute(insert(t.member_credentials), {
            "member_id": member, "email": "olena@example.test", "password_hash": "$argon2id$x",
            "created_at": NOW, "updated_at": NOW})
        conn.execute(insert(t.member_sessions), {
            "token_hash": "f" * 64, "member_id": member, "created_at": NOW,
            "expires_at": NOW + timedelta(days=1)})
    text = (await me.gql(EXPORT))["exportMyData"]["json"]
    assert "$argon2id$x" not in text and "f" * 64 not in text  # secrets are not data
    exported = json.loads(text)
    assert exported["credentials"] == [{"email": "olena@example.test",
                                        "created_at": "2026-11-23T10:00:00+00:00",
                                        "updated_at": "2026-11-23T10:00:00+00:00"}]
    assert len(exported["sessions"]) == 1
    assert exported["profile"]["card_number"] == card_of(gw, member)
    assert [(link["partner_id"], link["customer_id"]) for link in exported["links"]] == [
        ("electronics", "e-1"), ("grocery", "g-1")]
    assert [op["points"] for op in exported["operations"]] == [120, 50]
    assert exported["balances"]["wallet"] == 170
    assert [c["purpose"] for c in exported["consents"]] == ["marketing"]

    await rejected(me, ERASE, {"r": "DONATE", "c": None}, "eraseMe", {
        "__typename": "InvalidInputError", "code": "INVALID_INPUT", "field": "charityPartnerId",
        "message": "DONATE needs a charityPartnerId"})
    erased = (await me.gql(ERASE, {"r": "FORFEIT", "c": None}))["eraseMe"]
    assert erased == {"__typename": "EraseMeSuccess", "forfeited": 170, "donated": 0,
                      "linksClosed": 2}
    assert (await grocery.gql(MEMBER, {"c": "g-1"}))["member"] == {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER"}
    assert (await me.gql(WALLET))["viewer"] == GONE
    await rejected(me, ERASE, {"r": "FORFEIT", "c": None}, "eraseMe", {
        "__typename": "UnknownMemberError", "code": "UNKNOWN_MEMBER", "field": None,
        "message": "no active coalition member to erase"})
    with gw.services.engine.connect() as conn:
        customers = conn.execute(select(t.link_events.c.customer_id)).scalars().all()
        row = conn.execute(select(t.members.c.status, t.members.c.card_number)
                           .where(t.members.c.id == member)).one()
        latest = conn.execute(select(t.consents.c.granted, t.consents.c.via)
                              .order_by(t.consents.c.id.desc())).first()
    assert customers and all(c.startswith("erased_") for c in customers)
    assert _count(gw, t.member_credentials) == _count(gw, t.member_sessions) == 0
    assert tuple(row) == ("erased", card_of(gw, member))
    assert tuple(latest or ()) == (0, "erasure")
    assert verify_ledger(gw.services.engine).ok


def _count(gw: Gateway, table: Any) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
