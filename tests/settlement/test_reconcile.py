"""Reconciliation of a partner's CSV statement against the ledger: matched, missing on either
side, mismatched (field and both values), totals, CSV export; malformed files name the line and
column and nothing is compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settlement.errors import StatementMalformed
from gateway.settlement.reconcile import reconcile
from tests.settlement.scenario import FEB, JAN, run_worked_example

HEADER = "partner_reference,operation_type,points,amount_minor,currency,occurred_at\n"


def test_matched_missing_and_mismatched(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    csv = HEADER + (
        "earn-e-p1,earn,333,33300,EUR,2026-01-10T10:01:00Z\n"       # matches
        "e-r1,redeem,-100,5000,EUR,2026-01-10T12:02:00+02:00\n"     # same instant: matches
        "x-9,earn,10,1000,EUR,2026-01-11T00:00:00Z\n")              # not in the ledger
    r = reconcile(gw.services.engine, "electronics", JAN, csv)
    assert [x.partner_reference for x in r.matched] == ["earn-e-p1", "e-r1"]
    assert [x.partner_reference for x in r.missing_in_ledger] == ["x-9"]
    assert r.missing_in_statement == [] and r.mismatched == []
    totals = r.totals()
    assert (totals["matched"].count, totals["matched"].points,
            totals["matched"].amount_minor) == (2, 233, 38300)
    assert (totals["missing_in_ledger"].count, totals["missing_in_ledger"].points) == (1, 10)

    wrong = HEADER + "earn-e-p1,earn,330,33300,EUR,2026-01-10T10:01:00Z\n"
    r = reconcile(gw.services.engine, "electronics", JAN, wrong)
    assert [(d.field, d.statement, d.ledger) for d in r.mismatched[0].differences] == [
        ("points", "330", "333")]
    assert [x.partner_reference for x in r.missing_in_statement] == ["e-r1"]
    assert r.to_csv().splitlines() == [
        "status,partner_reference,field,statement,ledger",
        "mismatched,earn-e-p1,points,330,333", "missing_in_statement,e-r1,,,"]


def test_returns_are_on_the_february_statement(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    r = reconcile(gw.services.engine, "grocery", FEB,
                  HEADER + "g-ret1,return,-60,60000,UAH,2026-02-03T10:00:00Z\n")
    assert [x.partner_reference for x in r.matched] == ["g-ret1"]


@pytest.mark.parametrize(("body", "line", "column"), [
    ("", 1, None),
    ("partner_reference,points\n", 1, "operation_type"),
    (HEADER + "a,earn,1,100,EUR,2026-01-10T10:00:00Z\nb,earn,ten,100,EUR,2026-01-10T10:00Z\n",
     3, "points"),
    (HEADER + "a,burn,1,100,EUR,2026-01-10T10:00:00Z\n", 2, "operation_type"),
    (HEADER + "a,earn,1,1.5,EUR,2026-01-10T10:00:00Z\n", 2, "amount_minor"),
    (HEADER + "a,earn,1,100,euro,2026-01-10T10:00:00Z\n", 2, "currency"),
    (HEADER + "a,earn,1,100,EUR,2026-01-10 10:00\n", 2, "occurred_at"),
    (HEADER + "a,earn,1,100,EUR,yesterday\n", 2, "occurred_at"),
    (HEADER + "a,earn,1,100,EUR\n", 2, None),
    (HEADER + "a,earn,1,100,EUR,2026-01-10T10:00Z\na,earn,1,100,EUR,2026-01-10T10:00Z\n",
     3, "partner_reference"),
])
def test_malformed_statement_names_line_and_column(tmp_path: Path, body: str, line: int,
                                                   column: str | None) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    with pytest.raises(StatementMalformed) as error:
        reconcile(gw.services.engine, "electronics", JAN, body)
    assert (error.value.line, error.value.column) == (line, column)
    assert error.value.code == "STATEMENT_MALFORMED"
    assert f"line {line}" in error.value.message
