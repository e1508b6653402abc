"""GraphQL types of reconciliation and of the partner's own statement export.

A reconciliation compares a partner's CSV statement with its ledger lines recorded in a period
(``gateway.settlement.reconcile``); every line it reports carries its statement line number.
The resolvers live in ``gateway.api.settlement``; this module only shapes the answers."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.api.bigint import BigInt
from gateway.settlement.reconcile import Reconciliation, StatementLine


@strawberry.input
class ReconcileStatementInput:
    start: datetime
    end: datetime
    csv: str = strawberry.field(description="The statement; columns in docs/settlement.md.")
    partner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Coalition-wide clients name the partner; others omit it.")


@strawberry.type
class ReconciliationLine:
    partner_reference: str
    line: int | None = strawberry.field(
        description="Its line number in the statement (null: a line only the ledger has).")
    operation_type: str
    points: BigInt
    amount_minor: BigInt | None
    currency: str | None
    occurred_at: datetime


@strawberry.type
class ReconciliationDifference:
    field: str
    statement: str
    ledger: str


@strawberry.type
class ReconciliationMismatch:
    partner_reference: str
    line: int = strawberry.field(description="Its line number in the statement.")
    differences: list[ReconciliationDifference]


@strawberry.type
class ReconciliationTotals:
    count: int
    points: BigInt
    amount_minor: BigInt


@strawberry.type
class ReconcileStatementSuccess:
    matched: ReconciliationTotals
    missing_in_ledger: ReconciliationTotals
    missing_in_statement: ReconciliationTotals
    mismatched: ReconciliationTotals
    missing_in_ledger_lines: list[ReconciliationLine]
    missing_in_statement_lines: list[ReconciliationLine]
    mismatches: list[ReconciliationMismatch]
    csv: str = strawberry.field(description="The whole reconciliation as CSV.")


@strawberry.type(description="A partner's own ledger lines recorded in a period, as the CSV "
                 "statement reconcileStatement reads (plus a recorded_at column it ignores).")
class SettlementStatement:
    partner_id: strawberry.ID
    period_start: datetime
    period_end: datetime
    lines: int
    csv: str


def _line(x: StatementLine) -> ReconciliationLine:
    return ReconciliationLine(partner_reference=x.partner_reference, line=x.line or None,
                              operation_type=x.operation_type, points=x.points,
                              amount_minor=x.amount_minor, currency=x.currency,
                              occurred_at=x.occurred_at)


def reconciled(r: Reconciliation) -> ReconcileStatementSuccess:
    t = {k: ReconciliationTotals(count=v.count, points=v.points, amount_minor=v.amount_minor)
         for k, v in r.totals().items()}
    return ReconcileStatementSuccess(
        matched=t["matched"], missing_in_ledger=t["missing_in_ledger"],
        missing_in_statement=t["missing_in_statement"], mismatched=t["mismatched"],
        missing_in_ledger_lines=[_line(x) for x in r.missing_in_ledger],
        missing_in_statement_lines=[_line(x) for x in r.missing_in_statement],
        mismatches=[ReconciliationMismatch(
            partner_reference=m.statement.partner_reference, line=m.statement.line,
            differences=[ReconciliationDifference(field=d.field, statement=d.statement,
                                                  ledger=d.ledger) for d in m.differences])
            for m in r.mismatched],
        csv=r.to_csv())
