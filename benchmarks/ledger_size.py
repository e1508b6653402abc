"""The shape two benchmarks share: one read query against a ledger holding N transfers, and the
same query against an empty one (same members), each on a fresh database and a real server, the
full one's p50 and throughput as ratios of the empty one's. Target: <= 1.2x (p50; throughput at
least 1/1.2). Used by ``balance`` (a partner reads its customer's balance) and ``viewer`` (the
member reads their own wallet)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from benchmarks import seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.app import Gateway
from gateway.ledger.verify import verify_ledger


@dataclass(frozen=True)
class Read:
    name: str  # benchmark name in the table
    body: str  # the wrk request body (benchmarks/wrk/graphql.lua fills @CUSTOMER@)
    marker: str  # a success answer contains it
    prefix: str  # customer ids are {prefix}{n}
    metric: str = ""  # prefix of the metric names ("wallet ")
    spread: bool = True  # spread requests over every customer (else one member's token)
    # A token minted on the seeded database (e.g. a member token); None: the demo partner's,
    # fetched from the server's own token endpoint.
    mint: Callable[[Gateway], str] | None = None


def run(read: Read, backend: Backend, plan: Plan) -> list[Row]:
    progress(f"[{read.name}] {backend.label}: empty ledger, {plan.members:,} members")
    empty, empty_check = _load(read, backend, plan, 0)
    full, full_check = _load(read, backend, plan, plan.transfers)
    note = (f"{plan.transfers:,} transfers over {plan.members:,} members; "
            f"empty: {empty_check}; full: {full_check}")
    failed = empty.bad + full.bad
    if failed:
        note += f"; {failed} failed, e.g. {empty.sample_bad or full.sample_bad}"
    m = read.metric
    p50 = ratio_row(read.name, backend.label, f"{m}p50 with {plan.transfers:,} transfers",
                    full.p50_ms, empty.p50_ms, at_most=1.2, unit="ms", note=note)
    rps = ratio_row(read.name, backend.label, f"{m}throughput (req/s)", full.rps, empty.rps,
                    at_least=round(1 / 1.2, 2))
    p99 = ratio_row(read.name, backend.label, f"{m}p99", full.p99_ms, empty.p99_ms, unit="ms")
    ok = "FAILED" not in note and not failed and empty.ok > 0 and full.ok > 0
    return [p50 if ok else replace(p50, met=False), rps, p99]


def _load(read: Read, backend: Backend, plan: Plan, transfers: int) -> tuple[LoadResult, str]:
    label = f"{transfers:,} transfers"
    url = backend.fresh_database(read.name)
    gw = seed.prepare(url)
    engine = gw.services.engine
    wallets = seed.enrol(engine, plan.members, read.prefix)
    if transfers:
        progress(f"[{read.name}] {backend.label}: loading {transfers:,} transfers")
        seed.earn_history(engine, wallets, 0, transfers, report=_bar, tag=read.prefix)
        progress("")
    report = verify_ledger(engine)
    minted = read.mint(gw) if read.mint else None
    body = seed.trusted_body(gw, read.body) if plan.trusted_documents else read.body
    engine.dispose()
    check = "verify clean" if report.ok else "verify FAILED: " + "; ".join(report.problems[:3])
    if plan.trusted_documents:
        check += ", sent by trusted document id"
    workers = serve.effective_workers(plan.workers, backend.name)
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        common: dict[str, Any] = {
            "token": minted or serve.token(server.base_url), "ok_marker": read.marker,
            "connections": plan.connections,
            **({"customers": plan.members} if read.spread else {})}
        if plan.warmup_seconds:
            wrk(f"{server.base_url}/graphql", body, seconds=plan.warmup_seconds,
                label=f"{read.name} warm-up ({label})", **common)
        result = wrk(f"{server.base_url}/graphql", body, seconds=plan.seconds,
                     label=f"{read.name} ({label})", **common)
    return result, check


def _bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} transfers",
          end="", flush=True, file=sys.stderr)
