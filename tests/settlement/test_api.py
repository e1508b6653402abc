"""Settlement over GraphQL with real tokens: scopes, the partner-bound view, close, reconcile,
and the HTML page."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from gateway.db import tables as t
from tests.settlement.scenario import JAN, run_worked_example
from tests.support.harness import Api, partner_api

REPORT = """query($s: DateTime!, $e: DateTime!) { settlementReport(start: $s, end: $e) {
  __typename ... on SettlementReport { sha256 partners { partnerId netMinor
    figures { issuedMinor redeemedMinor feeMinor } }
  coalition { netMinor } matrix { origin redeemer points minor } }
  ... on Error { code message } ... on ForbiddenError { scope } } }"""
CLOSE = """mutation($s: DateTime!, $e: DateTime!) { closeSettlementPeriod(input: {start: $s,
  end: $e}) { __typename ... on CloseSettlementPeriodSuccess { periodId sha256 }
  ... on PeriodClosedError { periodId } ... on Error { code message } } }"""
RECONCILE = """mutation($s: DateTime!, $e: DateTime!, $csv: String!, $p: ID) {
  reconcileStatement(input: {start: $s, end: $e, csv: $csv, partnerId: $p}) { __typename
  ... on ReconcileStatementSuccess { matched { count points amountMinor }
    missingInStatement { count } mismatches { partnerReference
    differences { field statement ledger } } }
  ... on StatementMalformedError { line column } ... on Error { code message } } }"""
JANUARY = {"s": JAN.start.isoformat(), "e": JAN.end.isoformat()}


async def finance(gw, partner_id: str | None, scopes: list[str]) -> Api:  # type: ignore[no-untyped-def]
    created = gw.auth.clients.create(name=f"finance {partner_id}", kind="finance",
                                      partner_id=partner_id, scopes=scopes, actor="test")
    api = Api(gw, partner_id, created.client.client_id, created.secret)
    await api.fetch_token()
    return api


async def test_coalition_finance_sees_all_and_partner_finance_its_own(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    coalition = await finance(gw, None, ["settlement:read", "settlement:close"])
    report = (await coalition.gql(REPORT, JANUARY))["settlementReport"]
    assert report["__typename"] == "SettlementReport"
    assert [(p["partnerId"], p["netMinor"]) for p in report["partners"]] == [
        ("charity", "11"), ("electronics", "-269"), ("fuel", "0"), ("grocery", "-30")]
    assert report["coalition"] == {"netMinor": "288"} and len(report["sha256"]) == 64

    grocery = await finance(gw, "grocery", ["settlement:read"])
    own = (await grocery.gql(REPORT, JANUARY))["settlementReport"]
    assert [p["partnerId"] for p in own["partners"]] == ["grocery"]
    assert own["coalition"] is None and own["sha256"] is None
    assert {(m["origin"], m["redeemer"]) for m in own["matrix"]} == {
        ("grocery", "charity"), ("grocery", "electronics")}

    closed = (await grocery.gql(CLOSE, JANUARY))["closeSettlementPeriod"]
    assert closed["__typename"] == "ForbiddenError"  # read-only and partner-bound


async def test_partner_client_without_settlement_scopes_is_forbidden(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    shop = await partner_api(gw, "grocery")
    report = (await shop.gql(REPORT, JANUARY))["settlementReport"]
    assert report == {"__typename": "ForbiddenError", "code": "FORBIDDEN",
                      "message": report["message"], "scope": "settlement:read"}
    closed = (await shop.gql(CLOSE, JANUARY))["closeSettlementPeriod"]
    assert closed["__typename"] == "ForbiddenError"
    rec = (await shop.gql(RECONCILE, {**JANUARY, "csv": "x"}))["reconcileStatement"]
    assert rec["__typename"] == "ForbiddenError"
    with gw.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.settlement_periods)
                            ).scalar_one() == 0


async def test_close_once_then_period_closed(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    reader = await finance(gw, None, ["settlement:read"])
    assert (await reader.gql(CLOSE, JANUARY))["closeSettlementPeriod"][
        "__typename"] == "ForbiddenError"
    closer = await finance(gw, None, ["settlement:read", "settlement:close"])
    first = (await closer.gql(CLOSE, JANUARY))["closeSettlementPeriod"]
    assert first["__typename"] == "CloseSettlementPeriodSuccess"
    report = (await closer.gql(REPORT, JANUARY))["settlementReport"]
    assert report["sha256"] == first["sha256"]
    again = (await closer.gql(CLOSE, JANUARY))["closeSettlementPeriod"]
    assert again["__typename"] == "PeriodClosedError" and again["code"] == "PERIOD_CLOSED"
    assert again["periodId"] == JAN.id


async def test_reconcile_over_graphql(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    shop_finance = await finance(gw, "electronics", ["settlement:read"])
    csv = ("partner_reference,operation_type,points,amount_minor,currency,occurred_at\n"
           "earn-e-p1,earn,333,33300,EUR,2026-01-10T10:01:00Z\n")
    rec = (await shop_finance.gql(RECONCILE, {**JANUARY, "csv": csv}))["reconcileStatement"]
    assert rec["matched"] == {"count": 1, "points": "333", "amountMinor": "33300"}
    assert rec["missingInStatement"] == {"count": 1}
    other = (await shop_finance.gql(RECONCILE, {**JANUARY, "csv": csv, "p": "grocery"}))
    assert other["reconcileStatement"]["__typename"] == "NotFoundError"
    bad = (await shop_finance.gql(RECONCILE, {**JANUARY, "csv": csv + "x,earn,1\n"}))
    assert bad["reconcileStatement"] == {
        "__typename": "StatementMalformedError", "line": 3, "column": None,
        "code": "STATEMENT_MALFORMED", "message": "line 3: 3 fields; the header has 6"}


async def test_html_page_for_finance_clients(tmp_path: Path) -> None:
    gw, _ = run_worked_example(tmp_path, close_january=False)
    coalition = await finance(gw, None, ["settlement:read"])
    shop = await partner_api(gw, "grocery")
    url = "/settlement/report?start=2026-01-01T00:00:00%2B00:00&end=2026-02-01T00:00:00Z"
    async with coalition.http() as client:
        page = await client.get(url, headers={"Authorization": f"Bearer {coalition.token}"})
        anonymous = await client.get(url)
        forbidden = await client.get(url, headers={"Authorization": f"Bearer {shop.token}"})
    assert page.status_code == 200 and "net-positions" in page.text
    assert "origin-matrix" in page.text and "plotly" in page.text
    assert anonymous.status_code == 401 and forbidden.status_code == 403
    # plotly.js is linked, not inlined: the page is small, the script cacheable for a year.
    [src] = re.findall(r'<script[^>]* src="(/static/plotly-[^"]+\.min\.js)"', page.text)
    assert len(page.content) < 200_000, len(page.content)
    async with coalition.http() as client:
        script = await client.get(src)
    assert script.status_code == 200 and len(script.content) > 1_000_000
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
