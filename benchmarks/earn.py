"""Benchmark 1: ``earnPoints`` (real JWT, rules, double-entry write) against a bare Strawberry
mutation on the same stack. Targets (issue 11): >= 0.45x (SQLite), >= 0.35x (PostgreSQL + Redis)
in throughput;
p99 <= 3x p50 at 70 % of the measured peak (a paced run, see benchmarks/wrk/graphql.lua)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from benchmarks import bare, seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.db.tables import operations
from gateway.ledger.verify import verify_ledger

NAME = "earn"
BODY = ('{"query": "mutation Earn($c: ID!, $k: String!) { earnPoints(input: {customerId: $c, '
        'amount: {amountMinor: 10000, currency: \\"UAH\\"}, channel: STORE, purchaseId: $k, '
        'idempotencyKey: $k}) { __typename ... on EarnPointsSuccess { points available } '
        '... on Error { code message } } }", "variables": {"c": "@CUSTOMER@", "k": "@KEY@"}}')
TARGET = {"sqlite": 0.45, "postgresql": 0.35}
PACED_SHARE = 0.7


def _measure(url: str, body: str, marker: str, plan: Plan, token: str, label: str,
             customers: int) -> tuple[LoadResult, LoadResult]:
    common: dict[str, Any] = {"token": token, "ok_marker": marker, "customers": customers,
              "connections": plan.connections}
    if plan.warmup_seconds:
        wrk(f"{url}/graphql", body, seconds=plan.warmup_seconds, label=f"{label} warm-up",
            **common)
    peak = wrk(f"{url}/graphql", body, seconds=plan.seconds, label=f"{label} peak", **common)
    paced = wrk(f"{url}/graphql", body, seconds=plan.seconds, rate=PACED_SHARE * peak.rps,
                label=f"{label} at 70 % of peak", **common)
    return peak, paced


def run(backend: Backend, plan: Plan) -> list[Row]:
    workers = serve.effective_workers(plan.workers, backend.name)
    progress(f"[earn] {backend.label}: enrolling {plan.members:,} customers")
    url = backend.fresh_database("earn")
    gw = seed.prepare(url)
    seed.enrol(gw.services.engine, plan.members, "c")
    body = seed.trusted_body(gw, BODY) if plan.trusted_documents else BODY
    gw.services.engine.dispose()
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        token = serve.token(server.base_url)
        earn, earn_paced = _measure(server.base_url, body, "EarnPointsSuccess", plan, token,
                                    "earnPoints", plan.members)
    with serve.bare(backend.workdir, workers=workers) as server:
        base, base_paced = _measure(server.base_url, bare.BODY, "EarnSuccess", plan, "",
                                    "bare mutation", plan.members)
    engine = seed.prepare(url).services.engine
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(operations)
                              .where(operations.c.kind == "earn")).scalar_one()
    report = verify_ledger(engine)
    engine.dispose()
    acknowledged = earn.ok + earn_paced.ok
    sent = "by trusted document id" if plan.trusted_documents else "as text"
    note = (f"earn sent {sent}; {workers} worker(s) each; {acknowledged:,} earns acknowledged "
            f"in the measured runs, {stored:,} stored in all (with warm-up), verify "
            f"{'clean' if report.ok else 'FAILED: ' + '; '.join(report.problems[:3])}")
    if earn.bad or earn_paced.bad:
        sample = earn.sample_bad or earn_paced.sample_bad
        note += f"; {earn.bad + earn_paced.bad} failed, e.g. {sample}"
    kind = "postgresql" if backend.name == "postgresql" else "sqlite"
    ok = report.ok and stored >= acknowledged and not (earn.bad or earn_paced.bad)
    throughput = ratio_row(NAME, backend.label, "throughput (req/s)", earn.rps, base.rps,
                           at_least=TARGET[kind], note=note)
    if not ok:
        throughput = replace(throughput, met=False)
    paced_target = earn_paced.p99_ms <= 3 * earn_paced.p50_ms
    return [
        throughput,
        ratio_row(NAME, backend.label, "p50 at peak", earn.p50_ms, base.p50_ms, unit="ms"),
        ratio_row(NAME, backend.label, "p99 at peak", earn.p99_ms, base.p99_ms, unit="ms"),
        Row(NAME, backend.label, "p99 / p50 at 70 % of peak", earn_paced.p99_ms,
            earn_paced.p50_ms, "<= 3x", paced_target, "ms",
            note=f"paced at {PACED_SHARE * earn.rps:,.0f}/s, achieved {earn_paced.rps:,.0f}/s; "
                 f"bare at 70 %: p50 {base_paced.p50_ms:.2f} ms, p99 {base_paced.p99_ms:.2f} ms"),
    ]
