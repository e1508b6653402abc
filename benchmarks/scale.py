"""Benchmark 4 (issue 11): cost per request must be flat in the size of the data.

``earnPoints`` against a database of 1,000,000 members with 1,000,000 operations at the earning
partner, against the same on 10,000 + 10,000, in the same run: p50 latency and server CPU per
request, target <= 1.2x. Then the member balance query on the big database against the bare
Strawberry mutation (``benchmarks/bare.py``), target >= 0.5x in throughput. Both databases are
bulk-loaded through the raw driver (``seed.bulk_load``) and verified afterwards. CPU is read
from /proc for the server's whole process group, before and after each measured run, so it
counts the server's own work only (not wrk's, not the seeding's)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import balance, bare, earn, seed, serve
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.ledger.verify import verify_ledger

NAME = "scale"


@dataclass(frozen=True)
class Measured:
    result: LoadResult
    cpu_ms: float  # server CPU (all processes of its group) per successful request


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in group ``pgid`` (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _timed(pid: int, url: str, body: str, marker: str, plan: Plan, token: str, label: str,
           customers: int) -> Measured:
    common: dict[str, Any] = {"token": token, "ok_marker": marker, "customers": customers,
                              "connections": plan.connections}
    if plan.warmup_seconds:
        wrk(url, body, seconds=plan.warmup_seconds, label=f"{label} warm-up", **common)
    before = group_cpu_seconds(pid)
    result = wrk(url, body, seconds=plan.seconds, label=label, **common)
    cpu = group_cpu_seconds(pid) - before
    return Measured(result, 1000 * cpu / max(result.requests, 1))


def _bar(started: float) -> Any:
    def report(what: str, done: int, total: int) -> None:
        print(f"\r  {what}: {done:,}/{total:,} ({time.monotonic() - started:.0f} s)   ",
              end="", file=sys.stderr, flush=True)
    return report


def _verify(url: str) -> str:
    engine = seed.prepare(url).services.engine
    try:
        report = verify_ledger(engine)
    finally:
        engine.dispose()
    return "verify clean" if report.ok else "verify FAILED: " + "; ".join(report.problems[:3])


def _load(backend: Backend, size: int) -> str:
    started = time.monotonic()
    progress(f"[scale] {backend.label}: bulk-loading {size:,} members + {size:,} operations")
    url = backend.fresh_database(f"scale-{size}")
    engine = seed.prepare(url).services.engine
    seed.bulk_load(engine, size, size, report=_bar(started))
    engine.dispose()
    progress(f"\n  loaded in {time.monotonic() - started:.0f} s")
    return url


def run(backend: Backend, plan: Plan) -> list[Row]:
    workers = serve.effective_workers(plan.workers, backend.name)
    small, big = plan.scale_small, plan.scale_big
    measured: dict[int, Measured] = {}
    checks: dict[int, str] = {}
    read: Measured | None = None
    for size in (small, big):
        url = _load(backend, size)
        with serve.gateway(url, backend.workdir, workers=workers,
                           redis_url=backend.redis_url) as server:
            token = serve.token(server.base_url)
            graphql = f"{server.base_url}/graphql"
            measured[size] = _timed(server.pid, graphql, earn.BODY, "EarnPointsSuccess", plan,
                                    token, f"earnPoints at {size:,} members", size)
            if size == big:
                read = _timed(server.pid, graphql, balance.BODY, balance.MARKER, plan, token,
                              f"balance at {size:,} members", size)
        checks[size] = _verify(url)
    with serve.bare(backend.workdir, workers=workers) as server:
        base = _timed(server.pid, f"{server.base_url}/graphql", bare.BODY, "EarnSuccess", plan,
                      "", "bare mutation", big)
    assert read is not None
    at_small, at_big = measured[small], measured[big]
    failed = sum(m.result.bad for m in (at_small, at_big, read))
    note = (f"{workers} worker(s); {big:,} members + {big:,} grocery operations "
            f"({checks[big]}) vs {small:,} + {small:,} ({checks[small]}); "
            f"earn at {big:,}: {at_big.result.rps:,.0f} req/s, at {small:,}: "
            f"{at_small.result.rps:,.0f} req/s")
    if failed:
        sample = at_small.result.sample_bad or at_big.result.sample_bad or read.result.sample_bad
        note += f"; {failed} failed, e.g. {sample}"
    ok = not failed and "FAILED" not in note
    p50 = ratio_row(NAME, backend.label, f"earn p50, {big:,} vs {small:,} members",
                    at_big.result.p50_ms, at_small.result.p50_ms, at_most=1.2, unit="ms",
                    note=note)
    cpu = ratio_row(NAME, backend.label, f"earn CPU per request, {big:,} vs {small:,} members",
                    at_big.cpu_ms, at_small.cpu_ms, at_most=1.2, unit="ms")
    reads = ratio_row(NAME, backend.label,
                      f"balance query at {big:,} members vs bare mutation (req/s)",
                      read.result.rps, base.result.rps, at_least=0.5,
                      note=f"p50 {read.result.p50_ms:.2f} ms vs bare {base.result.p50_ms:.2f} ms;"
                           f" CPU per request {read.cpu_ms:.2f} ms vs bare {base.cpu_ms:.2f} ms")
    return [p50 if ok else replace(p50, met=False), cpu if ok else replace(cpu, met=False),
            reads if ok else replace(reads, met=False)]
