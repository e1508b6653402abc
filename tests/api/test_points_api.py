"""The points mutations and the earn preview over GraphQL, with real tokens on a real SQLite file.

For each mutation: the success case with exact numbers and transfers, a replay under the same
idempotency key (identical JSON, no new rows), and every typed error its union can return that a
partner can reach. Every rejection is checked the same way (``reject``): exact ``__typename``,
``code``, ``message`` and ``field``, and a ledger snapshot equal before and after.

Not reachable, so not tested here: ``CAP_EXCEEDED`` / ``RULE_NOT_IN_FORCE`` on capture
(the hold already passed those checks when authorised, against the rule of that time), and
``RATE_LIMITED`` (answered as HTTP 429 before GraphQL runs; see the rate-limit tests)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.core.clock import FixedClock
from gateway.db import tables as t
from gateway.jobs import run_expiry
from gateway.ledger.verify import verify_ledger
from gateway.rules.store import publish_rule_version
from tests.support.harness import (
    NOW,
    PARTNER_SCOPES,
    Api,
    ledger_snapshot,
    make_gateway,
    partner_api,
)
from tests.support.members import LINK, link_code_for, member_id_of

# --- queries ------------------------------------------------------------------------------------
ERROR = "... on Error { code message field }"
CAP = "... on CapExceededError { cap }"
SHORT = "... on InsufficientPointsError { requested available }"
CURRENCY = "... on CurrencyMismatchError { expected got }"
SCOPE = "... on ForbiddenError { scope }"
MONEY = "{ amountMinor currency }"

ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""
EARN = f"""mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ __typename
  ... on EarnPointsSuccess {{ operationId points ruleVersion explanation debtRepaid available
                              recordedAt }}
  {ERROR} {CAP} {CURRENCY} {SCOPE} }} }}"""
PREVIEW = f"""query($input: PreviewEarnInput!) {{ previewEarn(input: $input) {{ __typename
  ... on PreviewEarnSuccess {{ points uncappedPoints cappedBy ruleVersion explanation }}
  {ERROR} {CURRENCY} {SCOPE} }} }}"""
REDEEM = f"""mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{ __typename
  ... on RedeemPointsSuccess {{ operationId points value {MONEY} ruleVersion available }}
  {ERROR} {CAP} {SHORT} {CURRENCY} {SCOPE} }} }}"""
AUTHORISE = f"""mutation($input: RedeemPointsInput!) {{ authoriseRedemption(input: $input) {{
  __typename
  ... on AuthoriseRedemptionSuccess {{ operationId holdId points value {MONEY} ruleVersion
                                       expiresAt available }}
  {ERROR} {CAP} {SHORT} {CURRENCY} {SCOPE} }} }}"""
CAPTURE = f"""mutation($input: CaptureRedemptionInput!) {{ captureRedemption(input: $input) {{
  __typename
  ... on CaptureRedemptionSuccess {{ operationId holdId points released value {MONEY} available }}
  {ERROR} {CAP} {SHORT} {SCOPE} ... on CaptureExceedsHoldError {{ requested held }} }} }}"""
VOID = f"""mutation($input: VoidRedemptionInput!) {{ voidRedemption(input: $input) {{ __typename
  ... on VoidRedemptionSuccess {{ operationId holdId released available }}
  {ERROR} {SCOPE} }} }}"""
RETURN = f"""mutation($input: ReturnPurchaseInput!) {{ returnPurchase(input: $input) {{ __typename
  ... on ReturnPurchaseSuccess {{ operationId purchaseId pointsReversed pointsOwed
    pointsUnrecovered pointsRefunded amountReturnedTotal {MONEY} available debt }}
  {ERROR} {CURRENCY} {SCOPE} }} }}"""
BALANCE = """query($c: ID!) { member(customerId: $c) { ... on Member {
  balance { available held pending debt } history(first: 100) { edges { node { kind points } } }
} } }"""

ROOT = {EARN: "earnPoints", PREVIEW: "previewEarn", REDEEM: "redeemPoints",
        AUTHORISE: "authoriseRedemption", CAPTURE: "captureRedemption",
        VOID: "voidRedemption", RETURN: "returnPurchase"}


# --- world --------------------------------------------------------------------------------------
@dataclasses.dataclass
class World:
    """One member, enrolled at the grocery as g-1 and linked at electronics (e-1) and fuel (f-1)."""

    gw: Gateway
    clock: FixedClock
    grocery: Api
    electronics: Api
    fuel: Api
    member: str

    @property
    def wallet(self) -> str:
        return f"member:{self.member}:wallet"

    @property
    def held(self) -> str:
        return f"member:{self.member}:held"

    @property
    def debt(self) -> str:
        return f"member:{self.member}:debt"

    async def advance(self, delta: timedelta) -> None:
        """Move time; tokens live 10 minutes on the same clock, so fetch fresh ones."""
        self.clock.advance(delta)
        for api in (self.grocery, self.electronics, self.fuel):
            await api.fetch_token()


async def world(tmp_path: Path, at: datetime = NOW) -> World:
    clock = FixedClock(at)
    gw = make_gateway(tmp_path, clock=clock)
    grocery = await partner_api(gw, "grocery")
    electronics = await partner_api(gw, "electronics")
    fuel = await partner_api(gw, "fuel")
    await grocery.gql(ENROL, {"c": "g-1"})
    member = member_id_of(gw, "grocery", "g-1")
    for api, customer in ((electronics, "e-1"), (fuel, "f-1")):
        code = link_code_for(gw, "grocery", "g-1")
        linked = await api.gql(LINK, {"c": customer, "code": code})
        assert linked["linkCustomer"]["__typename"] == "LinkCustomerSuccess"
    return World(gw, clock, grocery, electronics, fuel, member)


def earn_input(**overrides: Any) -> dict[str, Any]:
    """1,200.00 UAH in store at the grocery: 120 points."""
    return {"customerId": "g-1", "amount": {"amountMinor": 120000, "currency": "UAH"},
            "channel": "STORE", "purchaseId": "r-1", "idempotencyKey": "e-1", **overrides}


def redeem_input(**overrides: Any) -> dict[str, Any]:
    """50 points (5.00 UAH) against a 100.00 UAH grocery basket."""
    return {"customerId": "g-1", "points": 50,
            "basketAmount": {"amountMinor": 10000, "currency": "UAH"},
            "idempotencyKey": "rd-1", **overrides}


def fuel_input(litres: int, key: str, **overrides: Any) -> dict[str, Any]:
    """A fuel purchase: 1 point per litre, 50.00 UAH a litre."""
    amount = litres * 5000
    return {"customerId": "f-1", "amount": {"amountMinor": amount, "currency": "UAH"},
            "channel": "STORE", "purchaseId": key, "idempotencyKey": key,
            "lines": [{"amountMinor": amount, "category": "fuel",
                       "quantityMilli": litres * 1000}], **overrides}


async def call(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await api.gql(query, {"input": variables})
    result: dict[str, Any] = data[ROOT[query]]
    return result


async def ok(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Call; expect the success type; return it without ``__typename``."""
    result = await call(api, query, variables)
    assert result.pop("__typename").endswith("Success"), result
    return result


async def reject(api: Api, query: str, variables: dict[str, Any], expected: dict[str, Any]) -> None:
    """The call answers exactly ``expected`` (typename, code, message, field, extras) and the
    ledger is exactly as it was."""
    before = ledger_snapshot(api.gateway)
    result = await call(api, query, variables)
    after = ledger_snapshot(api.gateway)
    assert result == expected
    assert after == before


def err(typename: str, code: str, message: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"__typename": typename, "code": code, "message": message, "field": field, **extra}


def transfers(gw: Gateway, operation_id: str) -> list[tuple[str, str, int]]:
    debit, credit = t.accounts.alias("d"), t.accounts.alias("c")
    query = (select(debit.c.code, credit.c.code, t.transfers.c.amount)
             .join(debit, debit.c.id == t.transfers.c.debit_account_id)
             .join(credit, credit.c.id == t.transfers.c.credit_account_id)
             .where(t.transfers.c.operation_id == operation_id).order_by(t.transfers.c.id))
    with gw.services.engine.connect() as conn:
        return [(str(d), str(c), int(a)) for d, c, a in conn.execute(query)]


def net(gw: Gateway, code: str) -> int:
    """An account's balance from its transfers: credits minus debits."""
    with gw.services.engine.connect() as conn:
        account = conn.execute(select(t.accounts.c.id).where(t.accounts.c.code == code)
                               ).scalar_one()
        credits = conn.execute(select(func.coalesce(func.sum(t.transfers.c.amount), 0)).where(
            t.transfers.c.credit_account_id == account)).scalar_one()
        debits = conn.execute(select(func.coalesce(func.sum(t.transfers.c.amount), 0)).where(
            t.transfers.c.debit_account_id == account)).scalar_one()
    return int(credits) - int(debits)


def hold_status(gw: Gateway, hold_id: str) -> str:
    with gw.services.engine.connect() as conn:
        return str(conn.execute(select(t.holds.c.status).where(t.holds.c.id == hold_id))
                   .scalar_one())


async def balance(api: Api, customer: str) -> dict[str, int]:
    member = (await api.gql(BALANCE, {"c": customer}))["member"]
    found: dict[str, int] = member["balance"]
    return found


async def kinds(api: Api, customer: str) -> list[tuple[str, int]]:
    member = (await api.gql(BALANCE, {"c": customer}))["member"]
    return [(e["node"]["kind"], e["node"]["points"]) for e in member["history"]["edges"]]


def assert_clean(gw: Gateway) -> None:
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems


def forbidden(scope: str) -> dict[str, Any]:
    return err("ForbiddenError", "FORBIDDEN",
               f"this token lacks the scope {scope!r} that this field needs", None, scope=scope)


def reused(key: str) -> dict[str, Any]:
    return err("IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED",
               f"idempotency key {key!r} was already used for a different request; "
               "use a new key for a new operation", "idempotencyKey")


# --- earnPoints ---------------------------------------------------------------------------------
async def test_earn_in_store_and_in_the_app(tmp_path: Path) -> None:
    w = await world(tmp_path)

    store = await ok(w.grocery, EARN, earn_input())
    assert store == {
        "operationId": store["operationId"], "points": 120, "ruleVersion": 1,
        "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points"],
        "debtRepaid": 0, "available": 120, "recordedAt": "2026-11-23T10:00:00+00:00"}
    assert transfers(w.gw, store["operationId"]) == [("partner:grocery:issued", w.wallet, 120)]

    app = await ok(w.grocery, EARN, earn_input(channel="APP", purchaseId="r-2",
                                               idempotencyKey="e-2"))
    assert app == {
        "operationId": app["operationId"], "points": 240, "ruleVersion": 1,
        "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points",
                        "app channel ×2 → 240"],
        "debtRepaid": 0, "available": 360, "recordedAt": "2026-11-23T10:00:00+00:00"}
    assert transfers(w.gw, app["operationId"]) == [("partner:grocery:issued", w.wallet, 240)]
    assert await balance(w.grocery, "g-1") == {"available": 360, "held": 0, "pending": 0,
                                               "debt": 0}
    assert_clean(w.gw)


async def test_earn_replay_returns_the_same_json_and_writes_nothing(tmp_path: Path) -> None:
    w = await world(tmp_path)
    first = await w.grocery.post(EARN, {"input": earn_input()})
    before = ledger_snapshot(w.gw)
    await w.advance(timedelta(minutes=1))  # a later retry still answers with the original time
    again = await w.grocery.post(EARN, {"input": earn_input()})
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert first.json()["data"]["earnPoints"]["points"] == 120
    assert ledger_snapshot(w.gw) == before


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"customerId": "nobody"}, err(
        "UnknownMemberError", "UNKNOWN_MEMBER",
        "no member is linked to customer 'nobody' at this partner", "customerId"),
        id="unknown-member"),
    pytest.param({"amount": {"amountMinor": 120000, "currency": "EUR"}}, err(
        "CurrencyMismatchError", "CURRENCY_MISMATCH",
        "this partner trades in UAH; amount is in EUR",
        "amount", expected="UAH", got="EUR"), id="currency-mismatch"),
    pytest.param({"amount": {"amountMinor": 0, "currency": "UAH"}}, err(
        "InvalidAmountError", "INVALID_AMOUNT",
        "amount must be between 1 and 10000000000000 minor units", "amount"), id="zero-amount"),
    pytest.param({"amount": {"amountMinor": -100, "currency": "UAH"}}, err(
        "InvalidAmountError", "INVALID_AMOUNT",
        "amount must be between 1 and 10000000000000 minor units", "amount"),
        id="negative-amount"),
    pytest.param({"amount": {"amountMinor": 100, "currency": "uah"}}, err(
        "InvalidInputError", "INVALID_INPUT",
        "currency must be an ISO 4217 code of 3 capital letters, got 'uah'", "amount.currency"),
        id="malformed-currency"),
    pytest.param({"purchaseId": "   "}, err(
        "InvalidInputError", "INVALID_INPUT", "purchaseId must be 1 to 200 characters, not blank",
        "purchaseId"), id="blank-purchase-id"),
    pytest.param({"idempotencyKey": ""}, err(
        "InvalidInputError", "INVALID_INPUT", "idempotencyKey must be 1 to 200 characters",
        "idempotencyKey"), id="blank-key"),
    pytest.param({"lines": [{"amountMinor": 1}] * 101}, err(
        "InvalidInputError", "INVALID_INPUT", "at most 100 lines per purchase", "lines"),
        id="101-lines"),
    pytest.param({"lines": [{"amountMinor": 100000}, {"amountMinor": 10000}]}, err(
        "InvalidInputError", "INVALID_INPUT",
        "lines sum to 110000 minor units but amount is 120000", "lines"), id="lines-not-summing"),
    pytest.param({"lines": [{"amountMinor": 120000}, {"amountMinor": 0}]}, err(
        "InvalidAmountError", "INVALID_AMOUNT", "line 1: amount and quantity must be positive",
        "lines"), id="zero-line"),
    pytest.param({"occurredAt": "2026-11-23T10:06:00+00:00"}, err(
        "InvalidInputError", "INVALID_INPUT", "occurredAt is in the future", "occurredAt"),
        id="occurred-in-the-future"),
    # Backdating is bounded by the partner's window (7 days by default, issue 9): an older
    # sale would pick an old rule version or land in a closed settlement period.
    pytest.param({"occurredAt": "2026-11-16T09:59:59+00:00"}, err(
        "InvalidInputError", "INVALID_INPUT", "occurredAt is more than 7 days in the past "
        "(this partner's backdating window)", "occurredAt"), id="backdated-beyond-window"),
    pytest.param({"occurredAt": "2025-06-01T00:00:00+00:00"}, err(
        "InvalidInputError", "INVALID_INPUT", "occurredAt is more than 7 days in the past "
        "(this partner's backdating window)", "occurredAt"), id="before-any-rule"),
])
async def test_earn_rejects_bad_input(tmp_path: Path, overrides: dict[str, Any],
                                      expected: dict[str, Any]) -> None:
    w = await world(tmp_path)
    await reject(w.grocery, EARN, earn_input(**overrides), expected)


async def test_earn_rejects_a_reused_key_and_a_recorded_purchase(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    await reject(w.grocery, EARN, earn_input(amount={"amountMinor": 50000, "currency": "UAH"}),
                 reused("e-1"))
    await reject(w.grocery, EARN, earn_input(idempotencyKey="e-2"), err(
        "PurchaseAlreadyRecordedError", "PURCHASE_ALREADY_RECORDED",
        "purchase 'r-1' already earned points; to correct it, return it", "purchaseId"))
    assert await balance(w.grocery, "g-1") == {"available": 120, "held": 0, "pending": 0,
                                               "debt": 0}


async def test_earn_daily_cap_trims_then_refuses_until_the_next_day(tmp_path: Path) -> None:
    w = await world(tmp_path)
    first = await ok(w.fuel, EARN, fuel_input(400, "f-1"))
    assert (first["points"], first["available"]) == (400, 400)
    assert first["explanation"] == [
        "line 1 (fuel): quantity 400.000 at 1 point per 1.000 = 400 points"]

    trimmed = await ok(w.fuel, EARN, fuel_input(200, "f-2"))
    assert (trimmed["points"], trimmed["available"]) == (100, 500)
    assert trimmed["explanation"] == [
        "line 1 (fuel): quantity 200.000 at 1 point per 1.000 = 200 points",
        "capped at 500 per member per day (400 earned today) → 100"]

    await reject(w.fuel, EARN, fuel_input(10, "f-3"), err(
        "CapExceededError", "CAP_EXCEEDED",
        "the member reached this partner's earn cap; nothing was posted. line 1 (fuel): "
        "quantity 10.000 at 1 point per 1.000 = 10 points capped at 500 per member per day "
        "(500 earned today) → 0", "amount", cap=500))

    await w.advance(timedelta(hours=14))  # 00:00 the next day: a new day's cap
    fresh = await ok(w.fuel, EARN, fuel_input(10, "f-3"))
    assert (fresh["points"], fresh["available"]) == (10, 510)
    assert_clean(w.gw)


async def test_earn_at_a_partner_that_issues_no_points(tmp_path: Path) -> None:
    w = await world(tmp_path)
    charity = await partner_api(w.gw, "charity")
    code = link_code_for(w.gw, "grocery", "g-1")
    assert (await charity.gql(LINK, {"c": "d-1", "code": code}))["linkCustomer"][
        "__typename"] == "LinkCustomerSuccess"
    await reject(charity, EARN, earn_input(customerId="d-1"), err(
        "RuleNotInForceError", "RULE_NOT_IN_FORCE",
        "partner 'charity' does not issue points (rule version 1)", None))


# --- previewEarn --------------------------------------------------------------------------------
async def test_preview_explains_and_posts_nothing(tmp_path: Path) -> None:
    w = await world(tmp_path)
    before = ledger_snapshot(w.gw)
    app = await ok(w.grocery, PREVIEW, earn_input(channel="APP", customerId="not-enrolled"))
    assert app == {"points": 240, "uncappedPoints": 240, "cappedBy": None, "ruleVersion": 1,
                   "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points",
                                   "app channel ×2 → 240"]}
    capped = await ok(w.grocery, PREVIEW, earn_input(
        amount={"amountMinor": 6_000_000, "currency": "UAH"}))
    assert capped == {"points": 5000, "uncappedPoints": 6000, "cappedBy": "transaction_cap",
                      "ruleVersion": 1,
                      "explanation": ["60000.00 UAH at 1 point per 10.00 UAH = 6000 points",
                                      "capped at 5000 per transaction"]}
    organic = await ok(w.grocery, PREVIEW, earn_input(
        amount={"amountMinor": 1999, "currency": "UAH"},
        lines=[{"amountMinor": 999, "category": "organic"}, {"amountMinor": 1000}]))
    assert organic == {"points": 2, "uncappedPoints": 2, "cappedBy": None, "ruleVersion": 1,
                       "explanation": [
                           "line 1 (organic): 9.99 UAH at 1 point per 10.00 UAH = 0.999 points, "
                           "organic ×1.5 → 1.4985",
                           "line 2: 10.00 UAH at 1 point per 10.00 UAH = 1 point",
                           "lines total 2.4985", "rounded (floor) → 2 points"]}
    assert ledger_snapshot(w.gw) == before


async def test_preview_ignores_the_daily_cap(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.fuel, EARN, fuel_input(500, "f-1"))
    preview = await ok(w.fuel, PREVIEW, fuel_input(10, "f-2"))
    assert (preview["points"], preview["cappedBy"]) == (10, None)


@pytest.mark.parametrize(("partner", "overrides", "expected"), [
    pytest.param("grocery", {"amount": {"amountMinor": 100, "currency": "EUR"}}, err(
        "CurrencyMismatchError", "CURRENCY_MISMATCH",
        "this partner trades in UAH; amount is in EUR",
        "amount", expected="UAH", got="EUR"), id="currency-mismatch"),
    pytest.param("grocery", {"amount": {"amountMinor": 0, "currency": "UAH"}}, err(
        "InvalidAmountError", "INVALID_AMOUNT",
        "amount must be between 1 and 10000000000000 minor units", "amount"), id="zero-amount"),
    pytest.param("grocery", {"lines": [{"amountMinor": 1}]}, err(
        "InvalidInputError", "INVALID_INPUT", "lines sum to 1 minor units but amount is 120000",
        "lines"), id="lines-not-summing"),
    pytest.param("charity", {}, err(
        "RuleNotInForceError", "RULE_NOT_IN_FORCE",
        "partner 'charity' does not issue points (rule version 1)", None), id="charity"),
])
async def test_preview_rejects(tmp_path: Path, partner: str, overrides: dict[str, Any],
                               expected: dict[str, Any]) -> None:
    w = await world(tmp_path)
    api = await partner_api(w.gw, partner, name=f"{partner} preview")
    await reject(api, PREVIEW, earn_input(**overrides), expected)


# --- redeemPoints and authoriseRedemption (same input, same checks) ------------------------------
async def test_redeem_pays_part_of_the_basket(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    redeemed = await ok(w.grocery, REDEEM, redeem_input())
    assert redeemed == {"operationId": redeemed["operationId"], "points": 50,
                        "value": {"amountMinor": 500, "currency": "UAH"}, "ruleVersion": 1,
                        "available": 70}
    assert transfers(w.gw, redeemed["operationId"]) == [
        (w.wallet, "partner:grocery:redeemed", 50)]
    # Exactly half of a 100.00 UAH basket: 500 points pay 50.00 UAH.
    at_cap = await ok(w.grocery, REDEEM, redeem_input(
        points=70, basketAmount={"amountMinor": 1400, "currency": "UAH"}, idempotencyKey="rd-2"))
    assert (at_cap["value"], at_cap["available"]) == ({"amountMinor": 700, "currency": "UAH"}, 0)
    assert await balance(w.grocery, "g-1") == {"available": 0, "held": 0, "pending": 0,
                                               "debt": 0}
    assert_clean(w.gw)


async def test_redeem_replay_returns_the_same_json_and_writes_nothing(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    first = await w.grocery.post(REDEEM, {"input": redeem_input()})
    before = ledger_snapshot(w.gw)
    again = await w.grocery.post(REDEEM, {"input": redeem_input()})
    assert again.json() == first.json()
    assert first.json()["data"]["redeemPoints"]["available"] == 70
    assert ledger_snapshot(w.gw) == before
    await reject(w.grocery, REDEEM, redeem_input(points=60), reused("rd-1"))


async def test_authorise_holds_points(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    placed = await ok(w.grocery, AUTHORISE, redeem_input(
        points=100, basketAmount={"amountMinor": 100000, "currency": "UAH"}))
    assert placed == {"operationId": placed["operationId"], "holdId": placed["holdId"],
                      "points": 100, "value": {"amountMinor": 1000, "currency": "UAH"},
                      "ruleVersion": 1, "expiresAt": "2026-11-23T10:15:00+00:00",
                      "available": 20}
    assert placed["holdId"].startswith("hold")
    assert transfers(w.gw, placed["operationId"]) == [(w.wallet, w.held, 100)]
    assert hold_status(w.gw, placed["holdId"]) == "authorised"
    assert await balance(w.grocery, "g-1") == {"available": 20, "held": 100, "pending": 0,
                                               "debt": 0}
    first = await w.grocery.post(AUTHORISE, {"input": redeem_input(
        points=100, basketAmount={"amountMinor": 100000, "currency": "UAH"})})
    before = ledger_snapshot(w.gw)
    assert first.json()["data"]["authoriseRedemption"] == {"__typename":
                                                           "AuthoriseRedemptionSuccess", **placed}
    assert ledger_snapshot(w.gw) == before
    assert_clean(w.gw)


SPEND_REJECTIONS = [
    pytest.param({"customerId": "nobody"}, err(
        "UnknownMemberError", "UNKNOWN_MEMBER",
        "no member is linked to customer 'nobody' at this partner", "customerId"),
        id="unknown-member"),
    pytest.param({"basketAmount": {"amountMinor": 10000, "currency": "EUR"}}, err(
        "CurrencyMismatchError", "CURRENCY_MISMATCH",
        "this partner trades in UAH; basketAmount is in EUR", "basketAmount",
        expected="UAH", got="EUR"), id="currency-mismatch"),
    pytest.param({"points": 0}, err(
        "InvalidAmountError", "INVALID_AMOUNT", "points must be between 1 and 1000000000000",
        "points"), id="zero-points"),
    pytest.param({"points": -5}, err(
        "InvalidAmountError", "INVALID_AMOUNT", "points must be between 1 and 1000000000000",
        "points"), id="negative-points"),
    pytest.param({"points": 49}, err(
        "InvalidAmountError", "INVALID_AMOUNT",
        "at least min_points=50 points per redemption; got 49", "points"), id="below-min-points"),
    pytest.param({"basketAmount": {"amountMinor": 0, "currency": "UAH"}}, err(
        "InvalidAmountError", "INVALID_AMOUNT", "basket amount must be positive, got 0 minor units",
        "basketAmount"), id="zero-basket"),
    pytest.param({"purchaseId": " "}, err(
        "InvalidInputError", "INVALID_INPUT", "purchaseId must be 1 to 200 characters, not blank",
        "purchaseId"), id="blank-purchase-id"),
    pytest.param({"idempotencyKey": "k" * 201}, err(  # checked centrally: gateway/api/arguments
        "InvalidInputError", "INVALID_INPUT", "input.idempotencyKey must be at most 200 characters",
        "input.idempotencyKey"), id="key-too-long"),
    pytest.param({"points": 101, "basketAmount": {"amountMinor": 2000, "currency": "UAH"}}, err(
        "CapExceededError", "CAP_EXCEEDED",
        "this basket accepts at most 100 points (50% of the basket); 101 requested", "points",
        cap=100), id="over-max-basket-share"),
    pytest.param({"points": 121, "basketAmount": {"amountMinor": 100000, "currency": "UAH"}}, err(
        "InsufficientPointsError", "INSUFFICIENT_POINTS",
        "the member has 120 points available; 121 were requested", "points",
        requested=121, available=120), id="insufficient-points"),
]


@pytest.mark.parametrize("query", [REDEEM, AUTHORISE], ids=["redeem", "authorise"])
@pytest.mark.parametrize(("overrides", "expected"), SPEND_REJECTIONS)
async def test_spend_rejects(tmp_path: Path, query: str, overrides: dict[str, Any],
                             expected: dict[str, Any]) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    await reject(w.grocery, query, redeem_input(**overrides), expected)


@pytest.mark.parametrize("query", [REDEEM, AUTHORISE], ids=["redeem", "authorise"])
async def test_spend_before_any_rule_is_in_force(tmp_path: Path, query: str) -> None:
    w = await world(tmp_path, at=datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    await reject(w.grocery, query, redeem_input(), err(
        "RuleNotInForceError", "RULE_NOT_IN_FORCE",
        "partner 'grocery' has no rules in force at 2025-12-31T23:00:00+00:00; its first "
        "version starts 2026-01-01T00:00:00+00:00", None))


@pytest.mark.parametrize("query", [REDEEM, AUTHORISE], ids=["redeem", "authorise"])
async def test_spend_where_the_rule_in_force_takes_no_points(tmp_path: Path, query: str) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    v2 = w.gw.services.rules.rule("grocery", 2)
    no_burn = dataclasses.replace(v2, version=3, burn=None,
                                  effective_from=datetime(2027, 6, 1, tzinfo=UTC))
    publish_rule_version(w.gw.services.engine, w.gw.services.rules, w.clock, no_burn,
                         actor="test")
    await w.advance(datetime(2027, 6, 1, tzinfo=UTC) - NOW)
    await reject(w.grocery, query, redeem_input(), err(
        "RedemptionNotAcceptedError", "REDEMPTION_NOT_ACCEPTED",
        "partner 'grocery' does not accept points (rule version 3)", None))


# --- captureRedemption and voidRedemption -------------------------------------------------------
async def authorised(w: World, points: int = 100, key: str = "a-1") -> str:
    """Earn 120 at the grocery (once) and hold ``points`` of them against a 1,000.00 UAH basket."""
    await ok(w.grocery, EARN, earn_input())
    placed = await ok(w.grocery, AUTHORISE, redeem_input(
        points=points, basketAmount={"amountMinor": 100000, "currency": "UAH"},
        idempotencyKey=key))
    hold_id: str = placed["holdId"]
    return hold_id


async def test_capture_in_full(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    captured = await ok(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1"})
    assert captured == {"operationId": captured["operationId"], "holdId": hold, "points": 100,
                        "released": 0, "value": {"amountMinor": 1000, "currency": "UAH"},
                        "available": 20}
    assert transfers(w.gw, captured["operationId"]) == [
        (w.held, "partner:grocery:redeemed", 100)]
    assert hold_status(w.gw, hold) == "captured"
    assert await balance(w.grocery, "g-1") == {"available": 20, "held": 0, "pending": 0,
                                               "debt": 0}
    # A retry after success answers the same, although the hold is settled now.
    first = await w.grocery.post(CAPTURE, {"input": {"holdId": hold, "idempotencyKey": "c-1"}})
    before = ledger_snapshot(w.gw)
    again = await w.grocery.post(CAPTURE, {"input": {"holdId": hold, "idempotencyKey": "c-1"}})
    assert again.json() == first.json()
    assert first.json()["data"]["captureRedemption"]["operationId"] == captured["operationId"]
    assert ledger_snapshot(w.gw) == before
    assert_clean(w.gw)


async def test_capture_in_part_gives_the_rest_back(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    captured = await ok(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1",
                                             "points": 60})
    assert captured == {"operationId": captured["operationId"], "holdId": hold, "points": 60,
                        "released": 40, "value": {"amountMinor": 600, "currency": "UAH"},
                        "available": 60}
    assert transfers(w.gw, captured["operationId"]) == [
        (w.held, "partner:grocery:redeemed", 60), (w.held, w.wallet, 40)]
    assert await balance(w.grocery, "g-1") == {"available": 60, "held": 0, "pending": 0,
                                               "debt": 0}
    assert await kinds(w.grocery, "g-1") == [("capture", -60), ("authorise", -100),
                                             ("earn", 120)]
    assert_clean(w.gw)


async def test_capture_rejects(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    await reject(w.grocery, CAPTURE, {"holdId": "hold_nope", "idempotencyKey": "c-1"}, err(
        "NotFoundError", "NOT_FOUND", "no hold 'hold_nope' at this partner", "holdId"))
    # Another partner's hold does not exist for this one.
    await reject(w.electronics, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1"}, err(
        "NotFoundError", "NOT_FOUND", f"no hold {hold!r} at this partner", "holdId"))
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1", "points": 0},
                 err("InvalidAmountError", "INVALID_AMOUNT", "points to capture must be positive",
                     "points"))
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1", "points": -1},
                 err("InvalidAmountError", "INVALID_AMOUNT", "points to capture must be positive",
                     "points"))
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1", "points": 49},
                 err("InvalidAmountError", "INVALID_AMOUNT",
                     "at least min_points=50 points per redemption; got 49", "points"))
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1", "points": 101},
                 err("CaptureExceedsHoldError", "CAPTURE_EXCEEDS_HOLD",
                     "the hold holds 100 points; 101 cannot be captured from it", "points",
                     requested=101, held=100))
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": ""}, err(
        "InvalidInputError", "INVALID_INPUT", "idempotencyKey must be 1 to 200 characters",
        "idempotencyKey"))
    # The authorisation's own key, now for a capture: a different request.
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "a-1"}, reused("a-1"))
    assert hold_status(w.gw, hold) == "authorised"


async def test_capture_after_void_and_void_after_capture(tmp_path: Path) -> None:
    w = await world(tmp_path)
    voided = await authorised(w, points=50, key="a-1")
    captured = (await ok(w.grocery, AUTHORISE, redeem_input(
        points=50, basketAmount={"amountMinor": 100000, "currency": "UAH"},
        idempotencyKey="a-2")))["holdId"]
    await ok(w.grocery, VOID, {"holdId": voided, "idempotencyKey": "v-1"})
    await ok(w.grocery, CAPTURE, {"holdId": captured, "idempotencyKey": "c-1"})

    await reject(w.grocery, CAPTURE, {"holdId": voided, "idempotencyKey": "c-2"}, err(
        "HoldAlreadySettledError", "HOLD_ALREADY_SETTLED", f"hold {voided} is voided already",
        "holdId"))
    await reject(w.grocery, VOID, {"holdId": captured, "idempotencyKey": "v-2"}, err(
        "HoldAlreadySettledError", "HOLD_ALREADY_SETTLED", f"hold {captured} is captured already",
        "holdId"))
    await reject(w.grocery, VOID, {"holdId": voided, "idempotencyKey": "v-3"}, err(
        "HoldAlreadySettledError", "HOLD_ALREADY_SETTLED", f"hold {voided} is voided already",
        "holdId"))
    assert await balance(w.grocery, "g-1") == {"available": 70, "held": 0, "pending": 0,
                                               "debt": 0}


async def test_void_releases_everything(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    voided = await ok(w.grocery, VOID, {"holdId": hold, "idempotencyKey": "v-1"})
    assert voided == {"operationId": voided["operationId"], "holdId": hold, "released": 100,
                      "available": 120}
    assert transfers(w.gw, voided["operationId"]) == [(w.held, w.wallet, 100)]
    assert hold_status(w.gw, hold) == "voided"
    assert await balance(w.grocery, "g-1") == {"available": 120, "held": 0, "pending": 0,
                                               "debt": 0}
    first = await w.grocery.post(VOID, {"input": {"holdId": hold, "idempotencyKey": "v-1"}})
    before = ledger_snapshot(w.gw)
    again = await w.grocery.post(VOID, {"input": {"holdId": hold, "idempotencyKey": "v-1"}})
    assert again.json() == first.json()
    assert first.json()["data"]["voidRedemption"]["released"] == 100
    assert ledger_snapshot(w.gw) == before
    assert_clean(w.gw)


async def test_void_rejects(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    await reject(w.grocery, VOID, {"holdId": "hold_nope", "idempotencyKey": "v-1"}, err(
        "NotFoundError", "NOT_FOUND", "no hold 'hold_nope' at this partner", "holdId"))
    await reject(w.electronics, VOID, {"holdId": hold, "idempotencyKey": "v-1"}, err(
        "NotFoundError", "NOT_FOUND", f"no hold {hold!r} at this partner", "holdId"))
    await reject(w.grocery, VOID, {"holdId": hold, "idempotencyKey": "a-1"}, reused("a-1"))
    await reject(w.grocery, VOID, {"holdId": hold, "idempotencyKey": ""}, err(
        "InvalidInputError", "INVALID_INPUT", "idempotencyKey must be 1 to 200 characters",
        "idempotencyKey"))
    assert hold_status(w.gw, hold) == "authorised"


# --- hold expiry --------------------------------------------------------------------------------
async def test_an_expired_hold_cannot_be_captured_and_the_next_write_releases_it(
        tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    await w.advance(timedelta(seconds=900))  # the grocery's hold TTL, to the second
    expired = err("HoldExpiredError", "HOLD_EXPIRED",
                  f"hold {hold} expired at 2026-11-23T10:15:00+00:00", "holdId")
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1"}, expired)
    # Not swept yet (the hold row is still authorised), but a read already shows the balance
    # the next write will see: the lapsed hold's points are back in the wallet.
    assert hold_status(w.gw, hold) == "authorised"
    assert await balance(w.grocery, "g-1") == {"available": 120, "held": 0, "pending": 0,
                                               "debt": 0}

    earned = await ok(w.grocery, EARN, earn_input(
        amount={"amountMinor": 10000, "currency": "UAH"}, purchaseId="r-2", idempotencyKey="e-2"))
    assert (earned["points"], earned["available"]) == (10, 130)
    assert hold_status(w.gw, hold) == "expired"
    assert await balance(w.grocery, "g-1") == {"available": 130, "held": 0, "pending": 0,
                                               "debt": 0}
    assert await kinds(w.grocery, "g-1") == [("earn", 10), ("hold_expired", 100),
                                             ("authorise", -100), ("earn", 120)]
    # Released by housekeeping, the hold still answers HOLD_EXPIRED, not "already settled".
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1"}, expired)
    assert_clean(w.gw)


async def test_the_expiry_job_releases_lapsed_holds(tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w)
    await w.advance(timedelta(seconds=899))
    assert run_expiry(w.gw.services.ledger) == 0
    assert hold_status(w.gw, hold) == "authorised"
    await w.advance(timedelta(seconds=1))
    assert run_expiry(w.gw.services.ledger) == 1
    assert hold_status(w.gw, hold) == "expired"
    assert await balance(w.grocery, "g-1") == {"available": 120, "held": 0, "pending": 0,
                                               "debt": 0}
    assert run_expiry(w.gw.services.ledger) == 0
    await reject(w.grocery, VOID, {"holdId": hold, "idempotencyKey": "v-1"}, err(
        "HoldAlreadySettledError", "HOLD_ALREADY_SETTLED", f"hold {hold} is expired already",
        "holdId"))
    assert_clean(w.gw)


# --- returnPurchase -----------------------------------------------------------------------------
def return_input(amount_minor: int, key: str, purchase: str = "r-1",
                 currency: str = "UAH") -> dict[str, Any]:
    return {"purchaseId": purchase, "amount": {"amountMinor": amount_minor, "currency": currency},
            "idempotencyKey": key}


async def test_return_in_parts_adds_up_to_the_whole(tmp_path: Path) -> None:
    w = await world(tmp_path)
    earned = await ok(w.grocery, EARN, earn_input(amount={"amountMinor": 123456,
                                                          "currency": "UAH"}))
    assert earned["points"] == 123  # 1,234.56 UAH, floor

    part = await ok(w.grocery, RETURN, return_input(10000, "ret-1"))
    assert part == {"operationId": part["operationId"], "purchaseId": "r-1",
                    "pointsReversed": 10, "pointsOwed": 0, "pointsUnrecovered": 0,
                    "pointsRefunded": 0,
                    "amountReturnedTotal": {"amountMinor": 10000, "currency": "UAH"},
                    "available": 113, "debt": 0}  # ceil(123 × 100.00 / 1,234.56) = 10
    assert transfers(w.gw, part["operationId"]) == [(w.wallet, "partner:grocery:issued", 10)]

    rest = await ok(w.grocery, RETURN, return_input(113456, "ret-2"))
    assert rest == {"operationId": rest["operationId"], "purchaseId": "r-1",
                    "pointsReversed": 113, "pointsOwed": 0, "pointsUnrecovered": 0,
                    "pointsRefunded": 0,
                    "amountReturnedTotal": {"amountMinor": 123456, "currency": "UAH"},
                    "available": 0, "debt": 0}
    assert transfers(w.gw, rest["operationId"]) == [(w.wallet, "partner:grocery:issued", 113)]

    await reject(w.grocery, RETURN, return_input(1, "ret-3"), err(
        "NothingToReturnError", "NOTHING_TO_RETURN", "purchase 'r-1' was fully returned already",
        "purchaseId"))
    first = await w.grocery.post(RETURN, {"input": return_input(10000, "ret-1")})
    before = ledger_snapshot(w.gw)
    again = await w.grocery.post(RETURN, {"input": return_input(10000, "ret-1")})
    assert again.json() == first.json()
    assert first.json()["data"]["returnPurchase"]["pointsReversed"] == 10
    assert ledger_snapshot(w.gw) == before
    assert_clean(w.gw)


async def test_return_refunds_points_spent_on_the_purchase(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    spent = await ok(w.grocery, REDEEM, redeem_input(
        basketAmount={"amountMinor": 120000, "currency": "UAH"}, purchaseId="r-1"))
    assert spent["available"] == 70

    half = await ok(w.grocery, RETURN, return_input(60000, "ret-1"))
    assert half == {"operationId": half["operationId"], "purchaseId": "r-1",
                    "pointsReversed": 60, "pointsOwed": 0, "pointsUnrecovered": 0,
                    "pointsRefunded": 25,
                    "amountReturnedTotal": {"amountMinor": 60000, "currency": "UAH"},
                    "available": 35, "debt": 0}
    assert transfers(w.gw, half["operationId"]) == [
        ("partner:grocery:redeemed", w.wallet, 25), (w.wallet, "partner:grocery:issued", 60)]

    rest = await ok(w.grocery, RETURN, return_input(60000, "ret-2"))
    assert (rest["pointsReversed"], rest["pointsRefunded"], rest["available"]) == (60, 25, 0)
    assert await balance(w.grocery, "g-1") == {"available": 0, "held": 0, "pending": 0,
                                               "debt": 0}
    assert_clean(w.gw)


async def test_return_beyond_the_wallet_becomes_debt_repaid_by_the_next_earn(
        tmp_path: Path) -> None:
    """The worked example (docs/worked-example.md) with its balances table, plus step 4."""
    w = await world(tmp_path)
    issued, redeemed = "partner:grocery:issued", "partner:electronics:redeemed"

    def balances() -> tuple[int, int, int, int]:
        return (net(w.gw, w.wallet), net(w.gw, w.debt), net(w.gw, issued), net(w.gw, redeemed))

    await ok(w.grocery, EARN, earn_input())
    assert balances() == (120, 0, -120, 0)
    await ok(w.electronics, REDEEM, {"customerId": "e-1", "points": 100, "idempotencyKey": "x-1",
                                     "basketAmount": {"amountMinor": 5000, "currency": "EUR"}})
    assert balances() == (20, 0, -120, 100)
    returned = await ok(w.grocery, RETURN, return_input(60000, "ret-1"))
    assert returned == {"operationId": returned["operationId"], "purchaseId": "r-1",
                        "pointsReversed": 20, "pointsOwed": 40, "pointsUnrecovered": 0,
                        "pointsRefunded": 0,
                        "amountReturnedTotal": {"amountMinor": 60000, "currency": "UAH"},
                        "available": 0, "debt": 40}
    assert transfers(w.gw, returned["operationId"]) == [
        (w.wallet, issued, 20), (w.debt, issued, 40)]
    assert balances() == (0, -40, -60, 100)

    # The next earn repays the debt first: 1,000.00 UAH earns 100, 40 of them settle the debt.
    earned = await ok(w.grocery, EARN, earn_input(
        amount={"amountMinor": 100000, "currency": "UAH"}, purchaseId="r-2", idempotencyKey="e-2"))
    assert (earned["points"], earned["debtRepaid"], earned["available"]) == (100, 40, 60)
    assert transfers(w.gw, earned["operationId"]) == [
        (issued, w.wallet, 100), (w.wallet, w.debt, 40)]
    assert balances() == (60, 0, -160, 100)
    assert await balance(w.grocery, "g-1") == {"available": 60, "held": 0, "pending": 0,
                                               "debt": 0}
    assert_clean(w.gw)


async def test_return_where_policy_forbids_debt_leaves_points_unrecovered(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.electronics, EARN, {"customerId": "e-1", "channel": "ONLINE", "purchaseId": "p-1",
                                   "idempotencyKey": "e-1",
                                   "amount": {"amountMinor": 20000, "currency": "EUR"}})
    await ok(w.electronics, REDEEM, {"customerId": "e-1", "points": 150, "idempotencyKey": "x-1",
                                     "basketAmount": {"amountMinor": 150, "currency": "EUR"}})
    returned = await ok(w.electronics, RETURN, return_input(20000, "ret-1", "p-1", "EUR"))
    assert returned == {"operationId": returned["operationId"], "purchaseId": "p-1",
                        "pointsReversed": 50, "pointsOwed": 0, "pointsUnrecovered": 150,
                        "pointsRefunded": 0,
                        "amountReturnedTotal": {"amountMinor": 20000, "currency": "EUR"},
                        "available": 0, "debt": 0}
    assert transfers(w.gw, returned["operationId"]) == [
        (w.wallet, "partner:electronics:issued", 50)]
    assert await balance(w.electronics, "e-1") == {"available": 0, "held": 0, "pending": 0,
                                                   "debt": 0}
    assert_clean(w.gw)


async def test_return_rejects(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())
    await ok(w.grocery, RETURN, return_input(60000, "ret-1"))
    await reject(w.grocery, RETURN, return_input(100, "ret-2", purchase="nope"), err(
        "NotFoundError", "NOT_FOUND", "no purchase 'nope' earned points at this partner",
        "purchaseId"))
    # The grocery's purchase does not exist for the electronics shop.
    await reject(w.electronics, RETURN, return_input(100, "ret-2", currency="EUR"), err(
        "NotFoundError", "NOT_FOUND", "no purchase 'r-1' earned points at this partner",
        "purchaseId"))
    await reject(w.grocery, RETURN, return_input(0, "ret-2"), err(
        "InvalidAmountError", "INVALID_AMOUNT", "amount returned must be positive", "amount"))
    await reject(w.grocery, RETURN, return_input(-100, "ret-2"), err(
        "InvalidAmountError", "INVALID_AMOUNT", "amount returned must be positive", "amount"))
    await reject(w.grocery, RETURN, return_input(60001, "ret-2"), err(
        "InvalidAmountError", "INVALID_AMOUNT",
        "only 600.00 UAH of this purchase is left to return", "amount"))
    await reject(w.grocery, RETURN, return_input(100, "ret-2", currency="EUR"), err(
        "CurrencyMismatchError", "CURRENCY_MISMATCH",
        "this partner trades in UAH; amount is in EUR",
        "amount", expected="UAH", got="EUR"))
    await reject(w.grocery, RETURN, return_input(100, "ret-2", purchase=" "), err(
        "InvalidInputError", "INVALID_INPUT", "purchaseId must be 1 to 200 characters, not blank",
        "purchaseId"))
    await reject(w.grocery, RETURN, return_input(100, "ret-1"), reused("ret-1"))


# --- scopes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "scope", "variables"), [
    pytest.param(EARN, "points:earn", earn_input(), id="earn"),
    pytest.param(PREVIEW, "points:earn", earn_input(), id="preview"),
    pytest.param(REDEEM, "points:redeem", redeem_input(), id="redeem"),
    pytest.param(AUTHORISE, "points:redeem", redeem_input(), id="authorise"),
    pytest.param(CAPTURE, "points:redeem", {"holdId": "HOLD", "idempotencyKey": "c-1"},
                 id="capture"),
    pytest.param(VOID, "points:redeem", {"holdId": "HOLD", "idempotencyKey": "v-1"}, id="void"),
    pytest.param(RETURN, "points:reverse", return_input(60000, "ret-1"), id="return"),
])
async def test_a_token_without_the_scope_is_refused(tmp_path: Path, query: str, scope: str,
                                                    variables: dict[str, Any]) -> None:
    w = await world(tmp_path)
    hold = await authorised(w, points=50)
    limited = await partner_api(w.gw, "grocery", scopes=PARTNER_SCOPES - {scope},
                                name="grocery limited")
    if variables.get("holdId") == "HOLD":
        variables = {**variables, "holdId": hold}
    await reject(limited, query, variables, forbidden(scope))


@pytest.mark.parametrize("variables", [
    {"c": "c\u0000", "k": "k-nul-1"},
    {"c": "c-ok", "k": "k\u0000"},
])
async def test_text_with_nul_is_invalid_input_on_every_backend(
    tmp_path: Path, variables: dict[str, str]
) -> None:
    """PostgreSQL cannot store NUL in text: it was an unexpected error there (schemathesis)."""
    gateway = make_gateway(tmp_path)
    api = await partner_api(gateway, "grocery")
    before = ledger_snapshot(gateway)
    response = await api.post(
        'mutation($c: ID!, $k: String!) { earnPoints(input: {customerId: $c, idempotencyKey: $k,'
        ' purchaseId: "p-nul", channel: STORE, amount: {amountMinor: 1000, currency: "UAH"}})'
        ' { __typename ... on Error { code message field } } }', variables)
    assert response.status_code == 200
    result = response.json()["data"]["earnPoints"]
    assert (result["__typename"], result["code"]) == ("InvalidInputError", "INVALID_INPUT")
    field = "input.customerId" if "\u0000" in variables["c"] else "input.idempotencyKey"
    assert result["field"] == field
    assert "NUL" in result["message"]
    assert ledger_snapshot(gateway) == before


async def test_money_is_64_bit_on_the_wire(tmp_path: Path) -> None:
    """A 25,000,000.00 UAH sale (2.5e9 minor units, above GraphQL's 32-bit Int) is recorded and
    read back as a JSON number; the transaction cap bounds its points (issue 9, item 3)."""
    w = await world(tmp_path)
    big = {"amountMinor": 2_500_000_000, "currency": "UAH"}
    earned = await ok(w.grocery, EARN, earn_input(amount=big))
    assert earned["points"] == 5000  # cap_per_transaction

    returned = await ok(w.grocery, RETURN, {
        "purchaseId": "r-1", "amount": big, "idempotencyKey": "ret-big"})
    assert returned["amountReturnedTotal"] == big
    assert returned["pointsReversed"] == 5000
    assert_clean(w.gw)


@pytest.mark.parametrize("amount", [2.5, 2**53, "12x", True])
async def test_money_outside_64_bit_integers_is_refused_before_anything_runs(
        tmp_path: Path, amount: object) -> None:
    w = await world(tmp_path)
    before = ledger_snapshot(w.gw)
    response = await w.grocery.post(EARN, {"input": earn_input(
        amount={"amountMinor": amount, "currency": "UAH"})})
    answer = response.json()
    assert answer.get("data") is None
    assert "MinorUnits" in answer["errors"][0]["message"], answer
    assert ledger_snapshot(w.gw) == before


# --- contract clarity (issue 9 item 5) ----------------------------------------------------------
HISTORY = """query($c: ID!) { member(customerId: $c) { ... on Member {
  balance { available } history(first: 100) { edges { node { kind points availableChange } } }
} } }"""


async def history(api: Api, customer: str) -> tuple[int, list[tuple[str, int, int]]]:
    member = (await api.gql(HISTORY, {"c": customer}))["member"]
    entries = [(e["node"]["kind"], e["node"]["points"], e["node"]["availableChange"])
               for e in member["history"]["edges"]]
    return member["balance"]["available"], entries


async def test_history_available_change_of_a_capture_adds_up_to_the_balance(
        tmp_path: Path) -> None:
    w = await world(tmp_path)
    hold = await authorised(w, points=80)
    # Over the hold: its own code, naming the hold's points (not the member's 40 available).
    await reject(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-0", "points": 81},
                 err("CaptureExceedsHoldError", "CAPTURE_EXCEEDS_HOLD",
                     "the hold holds 80 points; 81 cannot be captured from it", "points",
                     requested=81, held=80))
    captured = await ok(w.grocery, CAPTURE, {"holdId": hold, "idempotencyKey": "c-1",
                                             "points": 50})
    assert (captured["points"], captured["released"], captured["available"]) == (50, 30, 70)
    available, entries = await history(w.grocery, "g-1")
    assert entries == [("capture", -50, 30), ("authorise", -80, -80), ("earn", 120, 120)]
    assert available == 70 == sum(change for _, _, change in entries)
    assert_clean(w.gw)


async def test_history_available_change_of_an_earn_that_repaid_debt(tmp_path: Path) -> None:
    w = await world(tmp_path)
    await ok(w.grocery, EARN, earn_input())  # 120
    await ok(w.electronics, REDEEM, {"customerId": "e-1", "points": 100, "idempotencyKey": "x-1",
                                     "basketAmount": {"amountMinor": 5000, "currency": "EUR"}})
    returned = await ok(w.grocery, RETURN, return_input(36000, "ret-1"))  # reverses 36
    assert (returned["pointsReversed"], returned["pointsOwed"], returned["pointsUnrecovered"],
            returned["debt"]) == (20, 16, 0, 36 - 20)
    total = await w.grocery.gql("""mutation($input: ReturnPurchaseInput!) {
      returnPurchase(input: $input) { ... on ReturnPurchaseSuccess { pointsReversedTotal } } }""",
                                {"input": return_input(36000, "ret-1")})  # the replay
    assert total["returnPurchase"] == {"pointsReversedTotal": 36}
    earned = await ok(w.grocery, EARN, earn_input(
        amount={"amountMinor": 50000, "currency": "UAH"}, purchaseId="r-2", idempotencyKey="e-2"))
    assert (earned["points"], earned["debtRepaid"], earned["available"]) == (50, 16, 34)
    available, grocery = await history(w.grocery, "g-1")
    assert grocery == [("earn", 50, 34), ("return", -20, -20), ("earn", 120, 120)]
    _, electronics = await history(w.electronics, "e-1")
    assert electronics == [("redeem", -100, -100)]
    changes = [change for *_, change in grocery + electronics]
    assert available == 34 == sum(changes)
    assert_clean(w.gw)


async def test_preview_needs_no_idempotency_key_and_ignores_an_old_one(tmp_path: Path) -> None:
    w = await world(tmp_path)
    before = ledger_snapshot(w.gw)
    bare = {"customerId": "g-1", "channel": "STORE",
            "amount": {"amountMinor": 120000, "currency": "UAH"}}
    new = await ok(w.grocery, PREVIEW, bare)
    old = await ok(w.grocery, PREVIEW, {**bare, "purchaseId": "r-1", "idempotencyKey": "e-1"})
    assert new == old == {"points": 120, "uncappedPoints": 120, "cappedBy": None,
                          "ruleVersion": 1,
                          "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points"]}
    # An old client's inline literal with the key still validates and runs.
    inline = await w.grocery.gql("""query { previewEarn(input: {customerId: "g-1",
      channel: STORE, amount: {amountMinor: 120000, currency: "UAH"}, purchaseId: "r-1",
      idempotencyKey: "e-1"}) { ... on PreviewEarnSuccess { points } } }""", {})
    assert inline == {"previewEarn": {"points": 120}}
    assert ledger_snapshot(w.gw) == before
    members = await w.grocery.gql("""{ __type(name: "PreviewEarnResult") {
      possibleTypes { name } } }""", {})
    names = {t["name"] for t in members["__type"]["possibleTypes"]}
    assert "IdempotencyKeyReusedError" not in names
    assert names == {"PreviewEarnSuccess", "CurrencyMismatchError", "RuleNotInForceError",
                     "InvalidInputError", "ForbiddenError", "RateLimitedError",
                     "InvalidAmountError"}


async def test_backdating_within_the_window_is_accepted(tmp_path: Path) -> None:
    w = await world(tmp_path)
    earned = await ok(w.grocery, EARN, earn_input(occurredAt="2026-11-16T10:00:00+00:00"))
    assert earned["points"] == 120


async def test_a_quantity_implausible_for_its_price_is_refused(tmp_path: Path) -> None:
    """A 1.00 UAH fuel sale claiming 1,000,000 litres once earned the daily cap; fuel declares
    10.00 to 200.00 UAH a litre (partners/catalog/fuel.toml)."""
    w = await world(tmp_path)
    cheat = fuel_input(1, "f-cheat", amount={"amountMinor": 100, "currency": "UAH"},
                       lines=[{"amountMinor": 100, "category": "fuel",
                               "quantityMilli": 1_000_000_000}])
    await reject(w.fuel, EARN, cheat, err(
        "InvalidInputError", "INVALID_INPUT",
        "1,000,000.000 units for 100 minor units is not a plausible price here (one unit costs "
        "1000 to 20000 minor units)", "lines[0].quantityMilli"))
    dear = fuel_input(1, "f-dear", lines=[{"amountMinor": 5000, "category": "fuel",
                                            "quantityMilli": 100}])  # 500.00 UAH a litre
    await reject(w.fuel, EARN, dear, err(
        "InvalidInputError", "INVALID_INPUT",
        "0.100 units for 5000 minor units is not a plausible price here (one unit costs "
        "1000 to 20000 minor units)", "lines[0].quantityMilli"))
    assert (await ok(w.fuel, EARN, fuel_input(40, "f-ok")))["points"] == 40
