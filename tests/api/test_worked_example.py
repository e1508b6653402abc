"""The worked example of docs/worked-example.md, through the public API with real tokens.

1,200.00 UAH at the grocery (1 point per 10.00 UAH) earns 120; 100 are redeemed at the
electronics shop; half the grocery purchase is returned. Exact balances and transfers after
each step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.db import tables as t
from gateway.ledger.verify import verify_ledger
from tests.support.harness import make_gateway, partner_api
from tests.support.members import LINK, link_code_for, member_id_of

ENROL = """mutation($c: ID!) { enrolCustomer(input: {customerId: $c}) {
  ... on EnrolCustomerSuccess { member { memberReference } } } }"""
EARN = """mutation { earnPoints(input: {customerId: "g-1", amount: {amountMinor: 120000,
  currency: "UAH"}, channel: STORE, purchaseId: "r-1", idempotencyKey: "e-1"}) {
  ... on EarnPointsSuccess { points ruleVersion available explanation } } }"""
REDEEM = """mutation { redeemPoints(input: {customerId: "e-7", points: 100, basketAmount:
  {amountMinor: 5000, currency: "EUR"}, idempotencyKey: "r-1"}) {
  ... on RedeemPointsSuccess { points value { amountMinor currency } available } } }"""
RETURN = """mutation { returnPurchase(input: {purchaseId: "r-1", amount: {amountMinor: 60000,
  currency: "UAH"}, idempotencyKey: "ret-1"}) { ... on ReturnPurchaseSuccess {
  pointsReversed pointsOwed pointsUnrecovered pointsRefunded available debt } } }"""
BALANCE = """query($c: ID!) { member(customerId: $c) { ... on Member {
  balance { available held pending debt } } } }"""


def transfers(gateway, operation_id: str) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    debit, credit = t.accounts.alias("d"), t.accounts.alias("c")
    query = (select(debit.c.code, credit.c.code, t.transfers.c.amount)
             .join(debit, debit.c.id == t.transfers.c.debit_account_id)
             .join(credit, credit.c.id == t.transfers.c.credit_account_id)
             .where(t.transfers.c.operation_id == operation_id).order_by(t.transfers.c.id))
    with gateway.services.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def last_operation(gateway, kind: str) -> str:  # type: ignore[no-untyped-def]
    with gateway.services.engine.connect() as conn:
        return str(conn.execute(select(t.operations.c.id).where(t.operations.c.kind == kind)
                                .order_by(t.operations.c.id.desc())).scalars().first())


async def test_worked_example(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    grocery = await partner_api(gw, "grocery")
    electronics = await partner_api(gw, "electronics")
    await grocery.gql(ENROL, {"c": "g-1"})
    member = member_id_of(gw, "grocery", "g-1")
    # The member makes a link code in the coalition app and gives it to the electronics shop.
    code = link_code_for(gw, "grocery", "g-1")
    assert (await electronics.gql(LINK, {"c": "e-7", "code": code}))["linkCustomer"][
        "__typename"] == "LinkCustomerSuccess"
    wallet, debt = f"member:{member}:wallet", f"member:{member}:debt"

    # Step 1: earn 120 at the grocery.
    earned = (await grocery.gql(EARN))["earnPoints"]
    assert earned == {"points": 120, "ruleVersion": 1, "available": 120,
                      "explanation": ["1200.00 UAH at 1 point per 10.00 UAH = 120 points"]}
    assert transfers(gw, last_operation(gw, "earn")) == [
        ("partner:grocery:issued", wallet, 120)]

    # Step 2: spend 100 at the electronics shop (1 point pays 0.01 EUR).
    redeemed = (await electronics.gql(REDEEM))["redeemPoints"]
    assert redeemed == {"points": 100, "value": {"amountMinor": 100, "currency": "EUR"},
                        "available": 20}
    assert transfers(gw, last_operation(gw, "redeem")) == [
        (wallet, "partner:electronics:redeemed", 100)]

    # Step 3: half the grocery purchase comes back: 60 points reversed, only 20 left in the
    # wallet, so 40 become debt (the grocery's policy allows it), repaid from future earns.
    returned = (await grocery.gql(RETURN))["returnPurchase"]
    assert returned == {"pointsReversed": 20, "pointsOwed": 40, "pointsUnrecovered": 0,
                        "pointsRefunded": 0, "available": 0, "debt": 40}
    assert transfers(gw, last_operation(gw, "return")) == [
        (wallet, "partner:grocery:issued", 20), (debt, "partner:grocery:issued", 40)]

    for api, customer in ((grocery, "g-1"), (electronics, "e-7")):
        balance = (await api.gql(BALANCE, {"c": customer}))["member"]["balance"]
        assert balance == {"available": 0, "held": 0, "pending": 0, "debt": 40}
    report = verify_ledger(gw.services.engine)
    assert report.ok, report.problems
