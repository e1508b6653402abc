"""Every query a partner's requests run is indexed and bounded (DESIGN §11, issue 11).

A scenario of every points mutation, a balance and history read and the membership lookups goes
through the real ASGI app on a SQLite file; every statement it sends is recorded and its plan
asked of SQLite (``EXPLAIN QUERY PLAN`` with the very parameters it ran with). A ``SCAN`` of a
table (or of a whole index) means the statement's cost grows with the table, not with the
request: the test names the statement and its plan. It runs on SQLite in both passes: the plans
checked are SQLite's; PostgreSQL uses the same indexes (``docs/benchmarks.md``)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.core.clock import FixedClock
from gateway.promotions.model import Window
from tests.api.test_points_api import (
    AUTHORISE,
    BALANCE,
    CAPTURE,
    EARN,
    ENROL,
    LINK,
    PREVIEW,
    REDEEM,
    RETURN,
    VOID,
    earn_input,
    redeem_input,
)
from tests.support import harness
from tests.support.campaigns import bonus_campaign, per_member, publish
from tests.support.harness import NOW, make_gateway, partner_api
from tests.support.members import link_code_for

# Not on a request's path: the rule book's publish check (``RuleBook._count``, at most every
# 2 s per process, over a table of a few rows per partner).
ALLOWED_SCANS = (re.compile(r"SELECT count\(\*\) AS count_1\s+FROM rule_versions"),)


# An index search bounded by the partner alone walks every operation of that partner: the daily
# cap once did (``ix_operations_partner_purchase (partner_id=?)``), growing with its history.
PARTNER_WIDE = re.compile(r"^SEARCH \w+ USING (COVERING )?INDEX \w+ \(partner_id=\?\)$")
# A search of transfers by account alone walks every transfer of that account: for a partner's
# or the coalition's account, every earn it ever issued. The daily cap once joined an earn's
# transfers this way (``ix_transfers_debit``, the partner's issued account) when SQLite had no
# statistics, so a member's second earn of the day at a partner cost that partner's history.
ACCOUNT_WIDE = re.compile(
    r"^SEARCH transfers USING (COVERING )?INDEX \w+ \((debit|credit)_account_id=\?\)$")

# The rows a request sends as one JSON parameter (an operation's transfers, its balance moves,
# its awards): walking them is bounded by the request, not by a table.
REQUEST_ROWS = "SCAN json_each VIRTUAL TABLE"


def _plan_problems(dbapi: Any, statement: str, parameters: Any) -> list[str]:
    rows = dbapi.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    details = [str(row[3]) for row in rows]
    return [d for d in details
            if (d.startswith("SCAN ") and d != "SCAN CONSTANT ROW"
                and not d.startswith(REQUEST_ROWS)) or PARTNER_WIDE.match(d)
            or ACCOUNT_WIDE.match(d)]


def _assert_bounded(engine: Any, seen: list[tuple[str, Any]],
                    allowed: tuple[re.Pattern[str], ...] = ALLOWED_SCANS,
                    what: str = "on a request path not bounded by the request") -> None:
    """Every recorded statement's plan, asked of SQLite with the parameters it ran with."""
    raw = engine.raw_connection()
    try:
        bad = []
        for statement, parameters in seen:
            if any(pattern.search(statement) for pattern in allowed):
                continue
            problems = _plan_problems(raw.driver_connection, statement, parameters)
            if problems:
                bad.append(f"{' '.join(statement.split())}\n    -> {problems}")
    finally:
        raw.close()
    assert not bad, f"statements {what}:\n" + "\n".join(sorted(set(bad)))


def _recorder(seen: list[tuple[str, Any]]) -> Any:
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(
                ("SELECT", "UPDATE", "DELETE", "WITH")):
            seen.append((statement, parameters))
    return record


async def test_request_path_queries_use_indexes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Always SQLite: the plans checked are SQLite's, in both passes of the suite.
    monkeypatch.setattr("tests.support.harness.database_url",
                        lambda p: f"sqlite:///{p / 'plans.db'}")
    assert harness.test_settings(tmp_path).database_url.startswith("sqlite")
    clock = FixedClock(NOW)
    gw = make_gateway(tmp_path, clock=clock)
    grocery = await partner_api(gw, "grocery")
    fuel = await partner_api(gw, "fuel")
    await grocery.gql(ENROL, {"c": "g-1"})
    await grocery.gql(ENROL, {"c": "g-2"})
    await fuel.gql(LINK, {"c": "f-1", "code": link_code_for(gw, "grocery", "g-1")})

    seen: list[tuple[str, Any]] = []
    record = _recorder(seen)
    engine = gw.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async def run(query: str, variables: dict[str, Any]) -> None:
            data = await grocery.gql(query, {"input": variables})
            typename = next(iter(data.values()))["__typename"]
            assert typename.endswith("Success"), data

        await run(EARN, earn_input())
        await run(EARN, earn_input())  # a replay
        await run(EARN, earn_input(purchaseId="r-2", idempotencyKey="e-2"))
        await run(PREVIEW, earn_input(idempotencyKey="pv"))
        await run(REDEEM, redeem_input())
        held = await grocery.gql(AUTHORISE, {"input": redeem_input(idempotencyKey="a-1",
                                                                  points=100)})
        hold_id = held["authoriseRedemption"]["holdId"]
        await run(CAPTURE, {"holdId": hold_id, "points": 50, "idempotencyKey": "c-1"})
        held = await grocery.gql(AUTHORISE, {"input": redeem_input(idempotencyKey="a-2")})
        await run(VOID, {"holdId": held["authoriseRedemption"]["holdId"],
                         "idempotencyKey": "v-1"})
        await run(RETURN, {"purchaseId": "r-1", "idempotencyKey": "rt-1",
                           "amount": {"amountMinor": 60000, "currency": "UAH"}})
        await grocery.gql(AUTHORISE, {"input": redeem_input(idempotencyKey="a-3")})
        await grocery.gql(BALANCE, {"c": "g-1"})
        # A year on: the lots expire and the hold lapses, swept by the next write.
        clock.advance(timedelta(days=400))
        await grocery.fetch_token()
        await grocery.gql(BALANCE, {"c": "g-1"})
        await run(EARN, earn_input(purchaseId="r-3", idempotencyKey="e-3"))
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert len(seen) > 30, seen
    _assert_bounded(engine, seen)
    # The daily cap reads only this member's earns at this partner on this day.
    cap = [(s, p) for s, p in seen if "sum(transfers.amount)" in s]
    assert cap, "the scenario ran no daily-cap sum"
    raw = engine.raw_connection()
    try:
        statement, parameters = cap[0]
        plan = raw.driver_connection.execute(f"EXPLAIN QUERY PLAN {statement}",
                                             parameters).fetchall()
    finally:
        raw.close()
    assert "ix_operations_daily_cap (member_id=? AND partner_id=? AND kind=? AND recorded_at>? " \
        "AND recorded_at<?)" in str(plan), plan
    # ... and each of those earns' transfers by the operation, never the partner's account.
    assert "SEARCH transfers USING INDEX ix_transfers_operation (operation_id=?)" in str(plan), \
        plan


async def test_campaign_queries_on_the_earn_path_use_indexes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check with campaigns in force (issue 12): a per-member limit (the member's
    usage), a budget (counters locked), a coalition-wide campaign (another funder), earned
    twice by one member (the limit then skips), by a second member, and a partial return
    (awards reversed, counters released)."""
    monkeypatch.setattr("tests.support.harness.database_url",
                        lambda p: f"sqlite:///{p / 'plans.db'}")
    gw = make_gateway(tmp_path, clock=FixedClock(NOW))
    grocery = await partner_api(gw, "grocery")
    await grocery.gql(ENROL, {"c": "g-1"})
    await grocery.gql(ENROL, {"c": "g-2"})
    publish(gw, bonus_campaign("plan-limited", 10, per_member=per_member(Window.DAY, count=1)),
            bonus_campaign("plan-budget", 20, budget_points=10_000),
            bonus_campaign("plan-coalition", 5, partner=None,
                           partners=frozenset({"grocery", "fuel"})))
    seen: list[tuple[str, Any]] = []
    engine = gw.services.engine
    record = _recorder(seen)
    event.listen(engine, "before_cursor_execute", record)
    try:
        async def run(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            data = await grocery.gql(query, {"input": variables})
            result: dict[str, Any] = next(iter(data.values()))
            assert result["__typename"].endswith("Success"), data
            return result

        first = await run(EARN, earn_input())
        second = await run(EARN, earn_input(purchaseId="r-2", idempotencyKey="e-2"))
        await run(EARN, earn_input(customerId="g-2", purchaseId="r-3", idempotencyKey="e-3"))
        await run(RETURN, {"purchaseId": "r-1", "idempotencyKey": "rt-1",
                           "amount": {"amountMinor": 60000, "currency": "UAH"}})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # The campaigns applied (120 base + 10 + 20 + 5), and the daily limit skipped the second.
    assert (first["points"], second["points"]) == (155, 145), (first, second)
    assert any("promotion_awards" in s for s, _ in seen), "no member usage was read"
    assert any("campaign_counters" in s for s, _ in seen), "no counter was locked"
    _assert_bounded(engine, seen)
