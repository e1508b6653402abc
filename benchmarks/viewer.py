"""Benchmark: the member's own ``viewer { wallet }`` query with 1,000,000 transfers stored,
against the same query on an empty ledger (same members, no transfers). Target: <= 1.2x (p50;
throughput at least 1/1.2 of the empty ledger's). The wallet reads stored balances and the
member's own lots through indexes led by the member id, so the rest of the ledger must not show.

Seeded through the raw driver (benchmarks/seed.py, progress on stderr); the member token is
minted by the gateway's own TokenService on the same database (signing keys are shared), for a
first-party ``app`` client, exactly as the portal gets one."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from benchmarks import seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.ledger.verify import verify_ledger

NAME = "viewer"
BODY = ('{"query": "query Wallet { viewer { __typename ... on Viewer { wallet { available held '
        'debt pending pendingReleases { releaseAt points } expiring { date points } } } '
        '... on Error { code message } } }", "variables": {}}')
MARKER = '"Viewer"'
MEMBER = 7  # the member whose wallet is read (seeded like every other one)


def _load(backend: Backend, plan: Plan, transfers: int) -> tuple[LoadResult, str]:
    label = f"{transfers:,} transfers"
    url = backend.fresh_database("viewer")
    gw = seed.prepare(url)
    engine = gw.services.engine
    wallets = seed.enrol(engine, plan.members, "v")
    if transfers:
        progress(f"[viewer] {backend.label}: loading {transfers:,} transfers")
        seed.earn_history(engine, wallets, 0, transfers, report=_bar, tag="v")
        progress("")
    report = verify_ledger(engine)
    app = gw.auth.clients.create(name="bench app", kind="app", partner_id=None,
                                 scopes=["member"], actor="bench")
    token = gw.auth.tokens.issue(app.client, ["member"],
                                 member_id=seed.member_id(MEMBER)).access_token
    engine.dispose()
    check = "verify clean" if report.ok else "verify FAILED: " + "; ".join(report.problems[:3])
    workers = serve.effective_workers(plan.workers, backend.name)
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        common: dict[str, Any] = {"token": token, "ok_marker": MARKER,
                                  "connections": plan.connections}
        if plan.warmup_seconds:
            wrk(f"{server.base_url}/graphql", BODY, seconds=plan.warmup_seconds,
                label=f"viewer warm-up ({label})", **common)
        result = wrk(f"{server.base_url}/graphql", BODY, seconds=plan.seconds,
                     label=f"viewer wallet ({label})", **common)
    return result, check


def _bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} transfers",
          end="", flush=True, file=sys.stderr)


def run(backend: Backend, plan: Plan) -> list[Row]:
    progress(f"[viewer] {backend.label}: empty ledger, {plan.members:,} members")
    empty, empty_check = _load(backend, plan, 0)
    full, full_check = _load(backend, plan, plan.transfers)
    note = (f"{plan.transfers:,} transfers over {plan.members:,} members; "
            f"empty: {empty_check}; full: {full_check}")
    failed = empty.bad + full.bad
    if failed:
        note += f"; {failed} failed, e.g. {empty.sample_bad or full.sample_bad}"
    p50 = ratio_row(NAME, backend.label, f"wallet p50 with {plan.transfers:,} transfers",
                    full.p50_ms, empty.p50_ms, at_most=1.2, unit="ms", note=note)
    rps = ratio_row(NAME, backend.label, "wallet throughput (req/s)", full.rps, empty.rps,
                    at_least=round(1 / 1.2, 2))
    p99 = ratio_row(NAME, backend.label, "wallet p99", full.p99_ms, empty.p99_ms, unit="ms")
    ok = "FAILED" not in note and not failed and empty.ok > 0 and full.ok > 0
    return [p50 if ok else replace(p50, met=False), rps, p99]
