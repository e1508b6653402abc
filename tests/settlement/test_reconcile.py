"""Reconciliation of a partner's CSV statement against the ledger: matched, missing on either
side, mismatched (field and both values), totals, CSV export; malformed files name the line and
column and nothing is compared."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.core.errors import NotFound
from gateway.settlement.errors import StatementMalformed
from gateway.settlement.model import Period
from gateway.settlement.reconcile import reconcile, statement_csv
from gateway.settlement.service import settlement_report
from tests.settlement.scenario import FEB, JAN, earn, run_worked_example

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
        "status,partner_reference,field,statement,ledger,statement_line",
        "mismatched,earn-e-p1,points,330,333,2", "missing_in_statement,e-r1,,,,"]
    assert r.mismatched[0].statement.line == 2 and r.differs


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


def test_unknown_partner_is_not_found_and_nothing_is_compared(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    with pytest.raises(NotFound) as caught:
        reconcile(gw.services.engine, "grocey", JAN, HEADER + "g-p1,earn,1,1,EUR,2026-01-10Z\n")
    assert (caught.value.code, caught.value.message, caught.value.field) == (
        "NOT_FOUND", "no partner 'grocey'", "partnerId")
    with pytest.raises(NotFound):
        statement_csv(gw.services.engine, "grocey", JAN)


def test_times_match_at_the_precision_the_statement_gives(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)  # the clock stands at 2026-03-02T10:00Z
    sent = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    earn(gw, "electronics", "e-1", 1_000, "EUR", "e-p2", occurred_at=sent)
    march = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    for written in ("2026-03-02T09:00:00Z", "2026-03-02T11:00:00+02:00",
                    "2026-03-02T09:00:00.1Z", "2026-03-02T09:00:00.123Z",
                    "2026-03-02T09:00:00.123456Z"):
        r = reconcile(gw.services.engine, "electronics", march,
                      HEADER + f"earn-e-p2,earn,10,1000,EUR,{written}\n")
        assert [x.partner_reference for x in r.matched] == ["earn-e-p2"], written
        assert not r.differs
    r = reconcile(gw.services.engine, "electronics", march,
                  HEADER + "earn-e-p2,earn,10,1000,EUR,2026-03-02T09:00:00.124Z\n")
    assert [(m.statement.line, [(d.field, d.statement, d.ledger) for d in m.differences])
            for m in r.mismatched] == [(2, [("occurred_at", "2026-03-02T09:00:00.124000+00:00",
                                             "2026-03-02T09:00:00.123000+00:00")])]
    r = reconcile(gw.services.engine, "electronics", march,
                  HEADER + "earn-e-p2,earn,10,1000,EUR,2026-03-02T09:00:01Z\n")
    assert [(d.statement, d.ledger) for d in r.mismatched[0].differences] == [
        ("2026-03-02T09:00:01+00:00", "2026-03-02T09:00:00+00:00")]


def test_one_rule_a_late_upload_belongs_to_the_period_it_was_recorded_in(
        tmp_path: Path) -> None:
    """The fuel earn occurred on 20 January and was recorded on 5 February, after January
    closed: the report shows it in February (an adjustment for January), and reconciliation
    finds it in February too; the partner's own statement export lists it there."""
    gw, _ = run_worked_example(tmp_path)
    line = "earn-f-p1,earn,50,100000,UAH,2026-01-20T10:00:00Z\n"
    january = reconcile(gw.services.engine, "fuel", JAN, HEADER + line)
    assert [(x.partner_reference, x.line) for x in january.missing_in_ledger] == [
        ("earn-f-p1", 2)]
    february = reconcile(gw.services.engine, "fuel", FEB, HEADER + line)
    assert [x.partner_reference for x in february.matched] == ["earn-f-p1"]
    assert not february.differs
    report = settlement_report(gw.services.engine, gw.services.rules, FEB, "EUR")
    fuel = report.line("fuel")
    assert fuel is not None
    assert [(a.period_id, a.figures.issued_points) for a in fuel.adjustments] == [
        (JAN.id, 50)]
    text, count = statement_csv(gw.services.engine, "fuel", FEB)
    assert (text, count) == (
        "partner_reference,operation_type,points,amount_minor,currency,occurred_at,recorded_at\n"
        "earn-f-p1,earn,50,100000,UAH,2026-01-20T10:00:00+00:00,2026-02-05T10:00:00+00:00\n", 1)
    assert statement_csv(gw.services.engine, "fuel", JAN) == (
        "partner_reference,operation_type,points,amount_minor,currency,occurred_at,"
        "recorded_at\n", 0)


def test_a_statement_export_reconciles_with_nothing_to_report(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    for partner, period in (("electronics", JAN), ("electronics", FEB), ("grocery", JAN),
                            ("charity", JAN), ("grocery", FEB)):
        text, count = statement_csv(gw.services.engine, partner, period)
        r = reconcile(gw.services.engine, partner, period, text)
        assert (len(r.matched), r.differs) == (count, False)
    text, count = statement_csv(gw.services.engine, "electronics", JAN)
    assert (text, count) == (
        "partner_reference,operation_type,points,amount_minor,currency,occurred_at,recorded_at\n"
        "earn-e-p1,earn,333,33300,EUR,2026-01-10T10:01:00+00:00,2026-01-10T10:01:00+00:00\n"
        "e-r1,redeem,-100,5000,EUR,2026-01-10T10:02:00+00:00,2026-01-10T10:02:00+00:00\n", 2)
