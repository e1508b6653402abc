"""Benchmark: member sign-in hashing never blocks the event loop (issue 10). The partner balance
query is paced at a steady rate under wrk, once alone and once while 20 clients sign in to the
portal without pause (each sign-in verifies an argon2id hash: ~50 ms of CPU, run in a worker
thread). Target: the balance query's p99 unchanged within noise (<= 1.5x, ratio reported).

Had the hash run on the event loop, every balance request arriving during a sign-in would wait
for it, and p99 would grow by about one hash time per queued sign-in. The load is paced well
below the server's peak, so the comparison shows waiting, not a saturated server. Each sign-in
comes from its own forwarded address (uvicorn trusts X-Forwarded-For from loopback) and the
accounts rotate, so the sign-in rate limits (decision 007) do not turn the hashes away: every
attempt is a real, successful sign-in (a 303 to the portal), counted in the note."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert

from benchmarks import seed, serve
from benchmarks.balance import BODY, MARKER
from benchmarks.env import Backend, Plan
from benchmarks.load import LoadResult, progress, wrk
from benchmarks.table import Row, ratio_row
from gateway.db.tables import member_credentials
from gateway.members.credentials import hash_password

NAME = "signin"
SIGNERS = 20
PASSWORD = "bench password, long enough"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Signers:
    """``SIGNERS`` threads signing in to the portal in a loop until stopped."""

    def __init__(self, url: str, accounts: int) -> None:
        self.url, self.accounts = url, accounts
        self.stop = threading.Event()
        self.ok = self.bad = 0
        self.sample_bad = ""
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(SIGNERS)]

    def __enter__(self) -> Signers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, index: int) -> None:
        n = index
        while not self.stop.is_set():
            account = n % self.accounts
            headers = {"X-Forwarded-For": f"10.{index}.{(n // 250) % 250}.{n % 250 + 1}"}
            try:
                with httpx.Client(base_url=self.url, timeout=30, headers=headers) as client:
                    page = client.get("/portal/sign-in")
                    found = _CSRF.search(page.text)
                    answer = client.post("/portal/sign-in", data={
                        "csrf": found.group(1) if found else "", "next": "/portal/",
                        "email": _email(account), "password": PASSWORD})
                good = answer.status_code == 303
                text = f"{answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as error:
                good, text = False, repr(error)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.bad += 1
                    self.sample_bad = self.sample_bad or text
            n += SIGNERS


def _email(n: int) -> str:
    return f"member{n}@bench.test"


def _credentials(engine: Any, count: int) -> None:
    """Sign-in credentials for the first ``count`` members: one argon2id hash for all (the
    verify cost is the same), inserted through the driver, not hashed ``count`` times."""
    encoded, now = hash_password(PASSWORD), datetime.now(UTC)
    with engine.begin() as conn:
        for base in range(0, count, 1000):
            conn.execute(insert(member_credentials), [
                {"member_id": seed.member_id(n), "email": _email(n), "password_hash": encoded,
                 "created_at": now, "updated_at": now}
                for n in range(base, min(base + 1000, count))])


def run(backend: Backend, plan: Plan) -> list[Row]:
    progress(f"[signin] {backend.label}: balance p99 alone and during {SIGNERS} sign-ins")
    url = backend.fresh_database("signin")
    gw = seed.prepare(url)
    engine = gw.services.engine
    seed.enrol(engine, plan.members, "s")
    _credentials(engine, plan.members)
    engine.dispose()
    rate = 20 if plan.seconds < 5 else 50
    workers = serve.effective_workers(plan.workers, backend.name)
    with serve.gateway(url, backend.workdir, workers=workers,
                       redis_url=backend.redis_url) as server:
        common: dict[str, Any] = {"token": serve.token(server.base_url), "ok_marker": MARKER,
                                  "customers": plan.members, "prefix": "s", "connections": 4,
                                  "rate": rate}
        target = f"{server.base_url}/graphql"
        if plan.warmup_seconds:
            wrk(target, BODY, seconds=plan.warmup_seconds, label="balance warm-up", **common)
        # Alternating runs, medians reported: the machine's other load moves between them.
        alone_runs: list[LoadResult] = []
        during_runs: list[LoadResult] = []
        signed = bad = 0
        sample = ""
        for _ in range(1 if plan.seconds < 5 else 3):
            alone_runs.append(wrk(target, BODY, seconds=plan.seconds, label="balance alone",
                                  **common))
            with Signers(server.base_url, plan.members) as signers:
                during_runs.append(wrk(target, BODY, seconds=plan.seconds,
                                       label=f"balance during {SIGNERS} sign-ins", **common))
                signed += signers.ok
            bad += signers.bad
            sample = sample or signers.sample_bad
            progress(f"      sign-ins: {signers.ok} ok, {signers.bad} failed {sample[:120]}")
    alone, during = _median(alone_runs), _median(during_runs)
    seconds = sum(r.seconds for r in during_runs)
    note = (f"balance paced at {rate}/s, median of {len(during_runs)} alternating runs; "
            f"{signed} sign-ins during them ({signed / seconds:.1f}/s), {bad} failed")
    failed = sum(r.bad for r in alone_runs + during_runs)
    if failed:
        note += f"; {failed} balance requests failed, e.g. " + next(
            r.sample_bad for r in alone_runs + during_runs if r.sample_bad)
    p99 = ratio_row(NAME, backend.label, f"balance p99 during {SIGNERS} sign-ins",
                    during.p99_ms, alone.p99_ms, at_most=1.5, unit="ms", note=note)
    p50 = ratio_row(NAME, backend.label, f"balance p50 during {SIGNERS} sign-ins",
                    during.p50_ms, alone.p50_ms, unit="ms")
    return [replace(p99, met=False) if failed or bad or signed == 0 else p99, p50]


def _median(runs: list[LoadResult]) -> LoadResult:
    """The run with the median p99 (its p50 is taken from the median p50)."""
    by_p99 = sorted(runs, key=lambda r: r.p99_ms)
    middle = by_p99[len(runs) // 2]
    p50 = sorted(r.p50_ms for r in runs)[len(runs) // 2]
    return replace(middle, p50_ms=p50)
