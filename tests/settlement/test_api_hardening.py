"""Settlement over GraphQL, as an outside finance analyst met it (issue 9, items 5 and 6):
unknown partners, the real reason a close is refused, periods that cannot be closed, the
partner's own statement export, statement line numbers, ``recordedAt`` on every answer, and
every view of a report balancing on its face."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from gateway.db import tables as t
from gateway.settlement import render
from gateway.settlement.html import report_html
from gateway.settlement.model import Period
from gateway.settlement.service import closed_periods, settlement_report
from tests.settlement.scenario import FEB, JAN, run_worked_example
from tests.settlement.test_api import CLOSE, JANUARY, RECONCILE, finance
from tests.support.harness import partner_api

STATEMENT = """query($s: DateTime!, $e: DateTime!, $p: ID) {
  settlementStatement(start: $s, end: $e, partnerId: $p) { __typename
  ... on SettlementStatement { partnerId periodStart periodEnd lines csv }
  ... on Error { code message field } } }"""
LINES = """mutation($s: DateTime!, $e: DateTime!, $csv: String!) {
  reconcileStatement(input: {start: $s, end: $e, csv: $csv}) { __typename
  ... on ReconcileStatementSuccess { mismatches { partnerReference line
    differences { field statement ledger } } missingInLedgerLines { partnerReference line }
    missingInStatementLines { partnerReference line } } } }"""
REPORT = """query($s: DateTime!, $e: DateTime!) { settlementReport(start: $s, end: $e) {
  __typename ... on SettlementReport { partners { name netMinor } coalition { netMinor }
  matrix { originName redeemerName points } } } }"""
HEADER = "partner_reference,operation_type,points,amount_minor,currency,occurred_at\n"


def _periods_closed(gw: Any) -> int:
    with gw.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.settlement_periods))
                   .scalar_one())


async def test_unknown_partner_is_not_found(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    wide = await finance(gw, None, ["settlement:read"])
    csv = HEADER + "earn-g-p1,earn,120,120000,UAH,2026-01-10T10:00:00Z\n"
    rec = (await wide.gql(RECONCILE, {**JANUARY, "csv": csv, "p": "grocey"}))
    assert rec["reconcileStatement"] == {"__typename": "NotFoundError", "code": "NOT_FOUND",
                                         "message": "no partner 'grocey'"}
    own = (await wide.gql(STATEMENT, {**JANUARY, "p": "grocey"}))["settlementStatement"]
    assert own == {"__typename": "NotFoundError", "code": "NOT_FOUND",
                   "message": "no partner 'grocey'", "field": "partnerId"}


async def test_a_bound_finance_client_is_told_why_it_cannot_close(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    bound = await finance(gw, "grocery", ["settlement:read"])
    # A client created before partner-bound clients lost settlement:close still holds it.
    with gw.services.engine.begin() as conn:
        conn.execute(update(t.oauth_clients).where(t.oauth_clients.c.client_id ==
                                                   bound.client_id)
                     .values(allowed_scopes="settlement:read settlement:close"))
    await bound.fetch_token()
    reason = ("a finance client bound to partner 'grocery' cannot close coalition periods; "
              "closing needs a coalition-wide finance client")
    for client in (bound, await finance(gw, "grocery", ["settlement:read"])):
        closed = (await client.gql(CLOSE, JANUARY))["closeSettlementPeriod"]
        assert closed == {"__typename": "ForbiddenError", "code": "FORBIDDEN",
                          "message": reason}
    assert _periods_closed(gw) == 0


async def test_periods_are_validated_before_anything_is_closed(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    closer = await finance(gw, None, ["settlement:read", "settlement:close"])
    query = CLOSE.replace("... on Error { code message }", "... on Error { code message field }")
    for start, end, field, message in (
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z", "start",
         "start 0001-01-01T00:00:00+00:00 is outside 2000-01-01 to 2100-01-01"),
        ("2026-01-01T00:00:00Z", "2126-01-01T00:00:00Z", "end",
         "end 2126-01-01T00:00:00+00:00 is outside 2000-01-01 to 2100-01-01"),
        ("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z", "end", "start must be before end"),
        ("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "end",
         "a period to close is at most 366 days long"),
        ("2026-01-01T00:00:00.5Z", "2026-02-01T00:00:00Z", "start",
         "start must be a whole second (periods are named to the second)"),
    ):
        closed = (await closer.gql(query, {"s": start, "e": end}))["closeSettlementPeriod"]
        assert closed == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                          "message": message, "field": field}, start
    assert _periods_closed(gw) == 0


async def test_partners_export_their_own_statement(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    shop = await finance(gw, "electronics", ["settlement:read"])
    own = (await shop.gql(STATEMENT, JANUARY))["settlementStatement"]
    assert own == {
        "__typename": "SettlementStatement", "partnerId": "electronics",
        "periodStart": "2026-01-01T00:00:00+00:00", "periodEnd": "2026-02-01T00:00:00+00:00",
        "lines": 2, "csv": (
            "partner_reference,operation_type,points,amount_minor,currency,occurred_at,"
            "recorded_at\n"
            "earn-e-p1,earn,333,33300,EUR,2026-01-10T10:01:00+00:00,2026-01-10T10:01:00+00:00\n"
            "e-r1,redeem,-100,5000,EUR,2026-01-10T10:02:00+00:00,2026-01-10T10:02:00+00:00\n")}
    other = (await shop.gql(STATEMENT, {**JANUARY, "p": "grocery"}))["settlementStatement"]
    assert other == {"__typename": "NotFoundError", "code": "NOT_FOUND",
                     "message": "no partner 'grocery'", "field": "partnerId"}
    wide = await finance(gw, None, ["settlement:read"])
    unnamed = (await wide.gql(STATEMENT, JANUARY))["settlementStatement"]
    assert unnamed == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                       "message": "a coalition-wide client names the partner",
                       "field": "partnerId"}
    named = (await wide.gql(STATEMENT, {**JANUARY, "p": "electronics"}))["settlementStatement"]
    assert named == own
    till = await partner_api(gw, "electronics")
    assert (await till.gql(STATEMENT, JANUARY))["settlementStatement"]["__typename"] == (
        "ForbiddenError")

    changed = own["csv"].replace(",333,", ",330,") + "x-9,earn,1,,,2026-01-11T00:00:00Z,\n"
    rec = (await shop.gql(LINES, {**JANUARY, "csv": changed}))["reconcileStatement"]
    assert rec == {"__typename": "ReconcileStatementSuccess",
                   "mismatches": [{"partnerReference": "earn-e-p1", "line": 2, "differences": [
                       {"field": "points", "statement": "330", "ledger": "333"}]}],
                   "missingInLedgerLines": [{"partnerReference": "x-9", "line": 4}],
                   "missingInStatementLines": []}
    rec = (await shop.gql(LINES, {**JANUARY, "csv": HEADER}))["reconcileStatement"]
    assert rec["missingInStatementLines"] == [{"partnerReference": "earn-e-p1", "line": None},
                                              {"partnerReference": "e-r1", "line": None}]


async def test_redeem_and_return_answers_carry_recorded_at(tmp_path: Path) -> None:
    gw, clock = run_worked_example(tmp_path)
    shop = await partner_api(gw, "electronics")
    redeemed = (await shop.gql("""mutation { redeemPoints(input: {customerId: "e-1",
      points: 100, basketAmount: {amountMinor: 5000, currency: "EUR"}, idempotencyKey: "rr-1"})
      { __typename ... on RedeemPointsSuccess { operationId recordedAt }
      ... on Error { code message } } }"""))["redeemPoints"]
    returned = (await shop.gql("""mutation { returnPurchase(input: {purchaseId: "e-p1",
      amount: {amountMinor: 1000, currency: "EUR"}, idempotencyKey: "rt-1"})
      { __typename ... on ReturnPurchaseSuccess { operationId recordedAt }
      ... on Error { code message } } }"""
                                ))["returnPurchase"]
    now = clock.now().isoformat()
    assert (redeemed["__typename"], redeemed["recordedAt"]) == ("RedeemPointsSuccess", now)
    assert (returned["__typename"], returned["recordedAt"]) == ("ReturnPurchaseSuccess", now)
    with gw.services.engine.connect() as conn:
        rows = conn.execute(select(t.operations.c.id, t.operations.c.recorded_at).where(
            t.operations.c.id.in_([redeemed["operationId"], returned["operationId"]]))).all()
    assert sorted((str(i), at.isoformat()) for i, at in rows) == sorted(
        [(redeemed["operationId"], now), (returned["operationId"], now)])


async def test_every_view_of_a_report_balances_on_its_face(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    wide = await finance(gw, None, ["settlement:read"])
    for period in (JAN, FEB):
        report = settlement_report(gw.services.engine, gw.services.rules, period, "EUR")
        variables = {"s": period.start.isoformat(), "e": period.end.isoformat()}
        seen = (await wide.gql(REPORT, variables))["settlementReport"]
        assert sum(int(p["netMinor"]) for p in seen["partners"]) + int(
            seen["coalition"]["netMinor"]) == 0
        assert [p["name"] for p in seen["partners"]] == [
            "Dobro Fund", "Volt Electronics", "Shlyakh Fuel", "Kolos Grocery"]
        assert [(m["originName"], m["redeemerName"], m["points"]) for m in seen["matrix"]] == (
            [("Volt Electronics", "Dobro Fund", "35"), ("Kolos Grocery", "Dobro Fund", "20"),
             ("Kolos Grocery", "Volt Electronics", "100")] if period == JAN else
            [("Kolos Grocery", "Volt Electronics", "-33")])
        body = json.loads(render.report_json(report))
        assert sum(p["net_minor"] for p in body["partners"]) + body["coalition"][
            "net_minor"] == 0
        rows = render.report_csv(report).splitlines()[1:]
        assert sum(int(r.split(",")[14]) for r in rows) == 0 and rows[-1].startswith(
            "coalition,")
        table = [r for r in render.report_text(report).split("\n\n")[1].splitlines()[2:]
                 if not r.startswith("  adjustment")]
        assert [r.split("  ")[0].strip() for r in table][-2:] == ["Coalition", "Total"]
        assert sum(Decimal(r.split()[-1]) for r in table[:-1]) == 0
        assert table[-1].split()[-1] == "0.00"
        page = report_html(report)
        nets = [Decimal(x) for x in re.findall(
            r'<td class="net">(-?[\d,.]+)</td>', page)]
        assert len(nets) == len(report.partners) + 2 and sum(nets[:-1]) == 0 and nets[-1] == 0
    assert "<th>returned</th><th>credited</th>" in page and "Shlyakh Fuel" in page


def test_titles_show_seconds_only_when_a_bound_has_them(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path)
    odd = Period(JAN.start.replace(second=30), JAN.end)
    for period, title in (
        (JAN, "Settlement 2026-01-01 00:00 to 2026-02-01 00:00 UTC"),
        (odd, "Settlement 2026-01-01 00:00:30 to 2026-02-01 00:00:00 UTC"),
    ):
        report = settlement_report(gw.services.engine, gw.services.rules, period, "EUR")
        assert f"<title>{title}</title>" in report_html(report)
        assert render.report_text(report).startswith(f"{title} (EUR;")


def test_a_period_closed_before_the_bounds_existed_breaks_nothing(tmp_path: Path) -> None:
    """A database where year 1 was closed (before periods were validated) still reports."""
    gw, clock = run_worked_example(tmp_path)
    with gw.services.engine.begin() as conn:
        conn.execute(t.settlement_periods.insert().values(
            id="10101T000000Z-10102T000000Z", start_at=datetime(1, 1, 1, tzinfo=UTC),
            end_at=datetime(1, 1, 2, tzinfo=UTC), closed_at=clock.now(), closed_by="probe",
            sha256="0" * 64))
    report = settlement_report(gw.services.engine, gw.services.rules, JAN, "EUR")
    assert report.coalition.net_minor == 288
    assert [c.id for c in closed_periods(gw.services.engine)] == [
        "10101T000000Z-10102T000000Z", JAN.id]
