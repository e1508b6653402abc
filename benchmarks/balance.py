"""Benchmark 2: the member balance query with 1,000,000 transfers stored, against the same query
on an empty ledger (same members, no transfers). Target: <= 1.2x (p50 latency; throughput at
least 1/1.2 of the empty ledger's). A balance is a stored column plus an indexed aggregate over
the member's own lots, so history length elsewhere must not show."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from benchmarks import seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.ledger.verify import verify_ledger

NAME = "balance"
BODY = ('{"query": "query Balance($c: ID!) { member(customerId: $c) { __typename '
        '... on Member { balance { available held pending debt expiringSoon } } '
        '... on Error { code message } } }", "variables": {"c": "@CUSTOMER@"}}')
MARKER = '"Member"'


def _load(backend: Backend, plan: Plan, transfers: int) -> tuple[LoadResult, str]:
    label = f"{transfers:,} transfers"
    url = backend.fresh_database("balance")
    gw = seed.prepare(url)
    engine = gw.services.engine
    wallets = seed.enrol(engine, plan.members, "c")
    if transfers:
        progress(f"[balance] {backend.label}: loading {transfers:,} transfers")
        seed.earn_history(engine, wallets, 0, transfers, report=_bar)
        progress("")
    report = verify_ledger(engine)
    engine.dispose()
    check = "verify clean" if report.ok else "verify FAILED: " + "; ".join(report.problems[:3])
    workers = serve.effective_workers(plan.workers, backend.name)
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        token = serve.token(server.base_url)
        common: dict[str, Any] = {"token": token, "ok_marker": MARKER, "customers": plan.members,
                  "connections": plan.connections}
        if plan.warmup_seconds:
            wrk(f"{server.base_url}/graphql", BODY, seconds=plan.warmup_seconds,
                label=f"balance warm-up ({label})", **common)
        result = wrk(f"{server.base_url}/graphql", BODY, seconds=plan.seconds,
                     label=f"balance ({label})", **common)
    return result, check


def _bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} transfers",
          end="", flush=True, file=sys.stderr)


def run(backend: Backend, plan: Plan) -> list[Row]:
    progress(f"[balance] {backend.label}: empty ledger, {plan.members:,} members")
    empty, empty_check = _load(backend, plan, 0)
    full, full_check = _load(backend, plan, plan.transfers)
    note = (f"{plan.transfers:,} transfers over {plan.members:,} members; "
            f"empty: {empty_check}; full: {full_check}")
    failed = empty.bad + full.bad
    if failed:
        note += f"; {failed} failed, e.g. {empty.sample_bad or full.sample_bad}"
    p50 = ratio_row(NAME, backend.label, f"p50 with {plan.transfers:,} transfers",
                    full.p50_ms, empty.p50_ms, at_most=1.2, unit="ms", note=note)
    rps = ratio_row(NAME, backend.label, "throughput (req/s)", full.rps, empty.rps,
                    at_least=round(1 / 1.2, 2))
    p99 = ratio_row(NAME, backend.label, "p99", full.p99_ms, empty.p99_ms, unit="ms")
    ok = "FAILED" not in note and not failed
    return [p50 if ok else replace(p50, met=False), rps, p99]
